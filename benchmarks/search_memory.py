"""OptFusion search memory at Criteo dimensions (issue 15): peak RSS of a fresh process running only the search.

    TF_USE_LEGACY_KERAS=1 python -m benchmarks.search_memory               # make benchmark-search-memory
    TF_USE_LEGACY_KERAS=1 python -m benchmarks.search_memory --steps 4 --no-doc   # quick check
    TF_USE_LEGACY_KERAS=1 python -m benchmarks.search_memory --profile     # + where the peak goes (needs memray)

Model state: the supernet's parameters x 16 bytes (float32 weights, gradients and Adam's two moments); at Criteo's
dimensions (39 fields x 40, about 241M weights) 3.6 GiB. Each run is a child process that imports, records its RSS
("after imports"), then runs only `trainer.optfusion.training.search` (what the OptFusionSearch executor runs:
tfxio input pipeline from the transformed TFRecords, grouped Adam, dense coupled L2, validation each epoch, the best
epoch's weights kept, the architecture folder written) for 2 epochs of --steps steps on the Transform output of
generated Criteo rows (`benchmarks.optfusion_throughput.prepare_data`, cached under its work dir), with RSS sampled
every 0.1 s (`benchmarks.optfusion_throughput.RssSampler`). Reported: peak RSS minus RSS after imports, its
ratio to the model state, and the 2nd epoch's training examples/s (the 1st includes tracing).

Variants, run interleaved (keras_copy, in_place, in_place, keras_copy) so a drift in the machine's load hits both:
- keras_copy: the best epoch's weights kept as Keras's EarlyStopping(restore_best_weights=True) keeps them,
  `model.get_weights()` per improved epoch (the search before issue 15);
- in_place: `trainer.contract.BestWeights` (one copy, overwritten in place), as trainer.optfusion.fit uses it.
- train_step (once): the search's TrainStep alone on in-memory synthetic ids (`benchmarks.embedding_update.child`,
  dense update: no input pipeline, no validation, no kept copy): the floor a search cannot go below without
  changing its maths.
With --profile, one more child of each of keras_copy and in_place runs under memray's Tracker; the allocations live
at its peak are grouped by the project's innermost frame that made them.

Output: a table on stdout and the section "## Search memory (issue 15)" of docs/benchmarks.md. Targets: in_place
peak over imports at most 1.5x the model state; in_place examples/s at least 0.95x keras_copy's (no slower, within
this machine's run-to-run noise).
"""
from __future__ import annotations

import argparse
import collections
import datetime
import json
import os
import subprocess
import sys
import tempfile
import time
from typing import Any

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from benchmarks import embedding_update, report  # noqa: E402 - after the path set-up
from benchmarks import optfusion_throughput as throughput  # noqa: E402

SECTION_HEADING = "## Search memory (issue 15)"
ORDER = ("keras_copy", "in_place", "in_place", "keras_copy")
VARIANTS = ("keras_copy", "in_place", "train_step")
STATE_BYTES_PER_PARAMETER = 16  # float32 weight, gradient, Adam m and v
MAX_STATE_RATIO = 1.5
MIN_SPEED_RATIO = 0.95
MIB = 2 ** 20


class KerasCopy:
    """The best epoch's weights as Keras's EarlyStopping keeps them: a fresh `get_weights()` list per improved
    epoch (the previous one is freed only after the new one exists). Same interface as fit.BestWeights."""

    def __init__(self, model: Any) -> None:
        self._model = model
        self._weights: list | None = None

    @property
    def kept(self) -> bool:
        return self._weights is not None

    def keep(self) -> None:
        self._weights = self._model.get_weights()

    def restore(self) -> None:
        self._model.set_weights(self._weights)


def child_search(variant: str, steps: int, data: dict[str, Any]) -> dict[str, Any]:
    """One search of 2 epochs x `steps` steps with the variant's way of keeping the best epoch."""
    from trainer.optfusion import fit
    if variant == "keras_copy":
        fit.BestWeights = KerasCopy  # type: ignore[misc, assignment]  # the search as it was before issue 15
    result = throughput.child_search("float32", data, steps)
    return {"examples_per_second": result["examples_per_second"], "parameters": result["parameters"]}


def profile_groups(capture: str) -> dict[str, float]:
    """MiB of the allocations live at the capture's peak, by the innermost frame of this repository's code (not
    the venv's) that made them."""
    from memray import FileReader
    sizes: collections.Counter[str] = collections.Counter()
    for record in FileReader(capture).get_high_watermark_allocation_records(merge_threads=True):
        frames = [f for f in record.stack_trace() if f[1].startswith(REPO_ROOT) and "/.venv/" not in f[1]]
        key = (f"{os.path.relpath(frames[0][1], REPO_ROOT)}:{frames[0][2]} ({frames[0][0]})" if frames
               else "outside the project's code")
        sizes[key] += record.size
    return {key: size / MIB for key, size in sizes.items()}


def profile_rows(profiles: dict[str, dict[str, float]], top: int = 8) -> list[tuple[str, list[float]]]:
    """(frame, MiB per variant) of the `top` frames by their largest size over the variants, then "other" (the
    rest) and "total"; variants in `profiles` order."""
    variants = list(profiles)
    frames = sorted({f for sizes in profiles.values() for f in sizes},
                    key=lambda f: -max(profiles[v].get(f, 0.0) for v in variants))
    rows = [(f, [profiles[v].get(f, 0.0) for v in variants]) for f in frames[:top]]
    rows.append(("other", [sum(profiles[v].get(f, 0.0) for f in frames[top:]) for v in variants]))
    rows.append(("total", [sum(profiles[v].values()) for v in variants]))
    return rows


def run_child(args: argparse.Namespace) -> None:
    with open(args.data) as f:
        data = json.load(f)
    # Imported before the first RSS reading, which so leaves imports out.
    import psutil
    import tensorflow  # noqa: F401

    from components.optfusion import executor  # noqa: F401
    from trainer.optfusion import training  # noqa: F401
    rss_after_imports = psutil.Process().memory_info().rss / MIB
    sampler = throughput.RssSampler()
    if args.child == "train_step":
        result = embedding_update.child("dense", args.table_size, args.steps)
    elif args.profile_capture:
        import memray
        with memray.Tracker(args.profile_capture):
            result = child_search(args.child, args.steps, data)
    else:
        result = child_search(args.child, args.steps, data)
    peak = max(sampler.mark(), rss_after_imports)
    sampler.stop()
    result.update(variant=args.child, rss_after_imports_mb=rss_after_imports, peak_rss_mb=peak,
                  peak_over_imports_mb=peak - rss_after_imports)
    with open(args.out, "w") as f:
        json.dump(result, f)


def launch(variant: str, steps: int, data_file: str, table_size: int, out_dir: str,
           profile_capture: str | None = None) -> dict[str, Any]:
    out = os.path.join(out_dir, f"{variant}_{time.time_ns()}.json")
    print(f"[{datetime.datetime.now():%H:%M:%S}] {variant}{' (memray)' if profile_capture else ''} ...", flush=True)
    command = [sys.executable, "-m", "benchmarks.search_memory", "--child", variant, "--steps", str(steps),
               "--data", data_file, "--table-size", str(table_size), "--out", out]
    if profile_capture:
        command += ["--profile-capture", profile_capture]
    subprocess.run(command, check=True, cwd=REPO_ROOT)
    with open(out) as f:
        result = json.load(f)
    print(f"    {result['examples_per_second']:.1f} examples/s, peak over imports "
          f"{result['peak_over_imports_mb']:,.0f} MB", flush=True)
    return result


def state_mb(parameters: int) -> float:
    return parameters * STATE_BYTES_PER_PARAMETER / MIB


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """A variant's runs: mean examples/s, the largest peak over imports, its ratio to the model state."""
    peak = max(r["peak_over_imports_mb"] for r in runs)
    return {"runs": len(runs), "examples_per_second": sum(r["examples_per_second"] for r in runs) / len(runs),
            "peak_over_imports_mb": peak, "state_ratio": peak / state_mb(runs[0]["parameters"]),
            "rss_after_imports_mb": max(r["rss_after_imports_mb"] for r in runs),
            "parameters": runs[0]["parameters"]}


def verdicts(summary: dict[str, dict[str, Any]]) -> list[str]:
    in_place, keras_copy = summary["in_place"], summary["keras_copy"]
    speed = in_place["examples_per_second"] / keras_copy["examples_per_second"]
    return [f"- {'PASS' if in_place['state_ratio'] <= MAX_STATE_RATIO else 'FAIL'}: in_place peak over imports "
            f"{in_place['state_ratio']:.2f}x the model state (target at most {MAX_STATE_RATIO}x)",
            f"- {'PASS' if speed >= MIN_SPEED_RATIO else 'FAIL'}: in_place examples/s {speed:.2f}x keras_copy's "
            f"(target at least {MIN_SPEED_RATIO}x)"]


def render(summary: dict[str, dict[str, Any]], steps: int, table_size: int, command: str,
           profiles: dict[str, dict[str, float]] | None) -> str:
    from benchmarks.pipeline_scaling import machine_description, versions
    parameters = summary["in_place"]["parameters"]
    lines = [SECTION_HEADING, "",
             f"- Date: {datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}; machine: {machine_description()}",
             f"- Software: {versions()}", f"- Command: `{command}`",
             f"- The OptFusion search at Criteo's dimensions (39 fields x 40, {parameters:,} parameters with a "
             f"{table_size:,}-id table), batch {throughput.BATCH}, float32, CPU; model state = parameters x 16 bytes "
             f"= {state_mb(parameters):,.0f} MB. Each run is a fresh process running only the search (2 epochs of "
             f"{steps} steps); peak RSS minus the RSS after imports. keras_copy: the best epoch kept with "
             "`model.get_weights()` per improved epoch (Keras's restore_best_weights; the search before issue 15); "
             "in_place: `fit.BestWeights`; train_step: the search's TrainStep alone on in-memory ids (the floor). "
             "MB means MiB.", "",
             "| variant | runs | examples/s (2nd epoch) | RSS after imports MB | peak over imports MB | "
             "/ model state |", "|---|---:|---:|---:|---:|---:|"]
    for variant in VARIANTS:
        if variant in summary:
            s = summary[variant]
            lines.append(f"| {variant} | {s['runs']} | {s['examples_per_second']:.1f} | "
                         f"{s['rss_after_imports_mb']:,.0f} | {s['peak_over_imports_mb']:,.0f} | "
                         f"{s['state_ratio']:.2f}x |")
    lines += ["", *verdicts(summary)]
    if profiles:
        lines += ["", "Where the peak goes (memray, one more run of each variant: the allocations live at the run's "
                  "peak, grouped by the project's innermost frame that made them; memray counts the bytes asked of "
                  "the allocator, RSS the pages touched, so the totals differ from the table above):", "",
                  "| frame | " + " | ".join(f"{v} MB" for v in profiles) + " |",
                  "|---|" + "---:|" * len(profiles)]
        lines += [f"| {frame if frame in ('other', 'total') else f'`{frame}`'} | "
                  + " | ".join(f"{size:,.0f}" for size in sizes) + " |" for frame, sizes in profile_rows(profiles)]
    return "\n".join(lines) + "\n"


def run_parent(args: argparse.Namespace, command: str) -> None:
    data = throughput.prepare_data(args.work_dir, args.rows)
    table_size = throughput._table_size(data)  # pylint: disable=protected-access
    profiles: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as out_dir:
        data_file = os.path.join(out_dir, "data.json")
        with open(data_file, "w") as f:
            json.dump(data, f)
        runs: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
        for variant in (*ORDER, "train_step"):
            runs[variant].append(launch(variant, args.steps, data_file, table_size, out_dir))
        for variant in ("keras_copy", "in_place") if args.profile else ():
            capture = os.path.join(out_dir, f"{variant}.memray")
            launch(variant, args.steps, data_file, table_size, out_dir, profile_capture=capture)
            profiles[variant] = profile_groups(capture)
    summary = {variant: summarize(variant_runs) for variant, variant_runs in runs.items()}
    section = render(summary, args.steps, table_size, command, profiles or None)
    print(section)
    if not args.no_doc:
        report.write_section(args.doc, section)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=12, help="training steps per epoch (2 epochs)")
    parser.add_argument("--rows", type=int, default=20_000, help="generated rows for the Transform output")
    parser.add_argument("--work-dir", default=throughput.DEFAULT_WORK_DIR)
    parser.add_argument("--profile", action="store_true", help="one more run under memray (pip install memray)")
    parser.add_argument("--doc", default=throughput.DEFAULT_DOC)
    parser.add_argument("--no-doc", action="store_true", help="print only, do not write docs/benchmarks.md")
    parser.add_argument("--child", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--table-size", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--profile-capture", help=argparse.SUPPRESS)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    if args.child:
        run_child(args)
        return
    if args.profile:
        try:
            import memray  # noqa: F401
        except ImportError:
            parser.error("--profile needs memray: pip install memray (it is not in requirements.lock)")
    run_parent(args, "python -m benchmarks.search_memory " + " ".join(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    main()
