"""Dense against lazy embedding update at full-size vocabularies (issue 15): the search's train step on synthetic ids.

    TF_USE_LEGACY_KERAS=1 python -m benchmarks.embedding_update                       # 1M and 6.8M ids
    TF_USE_LEGACY_KERAS=1 python -m benchmarks.embedding_update --ids 200000 --steps 4 --no-doc   # quick check

For each table size and update, one child process builds the OptFusion search supernet at Criteo's dimensions (39
fields x 40) with that many embedding rows and runs the search's TrainStep (`trainer.optfusion.optim`: three Adam
groups from one gradient, Criteo's search rates and coupled L2) on in-memory synthetic ids, batch 256, on CPU:
- dense: the reference, PyTorch's Adam over every row of the table each step, coupled L2 on every row;
- lazy: `--embedding-update lazy`, Adam and L2 on the batch's rows only.
Measured: training examples per wall second and per CPU second (the process's, all threads: less sensitive to
other load on the machine) after two warm-up steps, and the child's peak RSS (psutil, every 0.1 s). Each size runs
dense, lazy, lazy, dense, and each figure is the mean of its two runs, so a drift in the machine's load hits both
updates alike; the ratio lazy / dense is taken within this run. Output: a table on stdout and the section
"## Embedding update at full vocabularies (issue 15)" of docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
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

from benchmarks import optfusion_throughput as throughput  # noqa: E402 - after the path set-up
from benchmarks import report  # noqa: E402

SECTION_HEADING = "## Embedding update at full vocabularies (issue 15)"
DEFAULT_IDS = (1_000_000, 6_800_000)
UPDATES = ("dense", "lazy")


def child(update: str, table_size: int, steps: int) -> dict[str, Any]:
    """The search TrainStep with `table_size` ids and the `update` embedding update; examples/s."""
    import numpy as np
    import tensorflow as tf

    from trainer.optfusion import network, optim, training
    tf.keras.utils.set_random_seed(0)
    model, _ = training.build_supernet(training.SupernetConfig(table_size, throughput.FIELDS,
                                                               throughput.EMBEDDING_DIM))
    settings = {"emb": optim.GroupSettings(throughput.LR, throughput.L2),
                "nn": optim.GroupSettings(throughput.LR, throughput.L2),
                "arch": optim.GroupSettings(throughput.ARCH_LR)}
    step = optim.make_train_step(model, network.variable_groups(model), settings,
                                 l2_mode="lazy" if update == "lazy" else "dense", embedding_update=update)
    rng = np.random.default_rng(0)
    rows = (steps + 2) * throughput.BATCH
    ids = rng.integers(0, table_size, (rows, throughput.FIELDS)).astype(np.int64)
    labels = rng.integers(0, 2, (rows, 1)).astype(np.float32)
    iterator = iter(tf.data.Dataset.from_tensor_slices(({"feature": ids}, labels)).batch(throughput.BATCH))
    step.run(iterator, 2)  # warm-up: tracing, first touch of the moments
    start, cpu_start = time.perf_counter(), time.process_time()
    _, _, examples = step.run(iterator, steps)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    return {"examples_per_second": examples / seconds, "examples_per_cpu_second": examples / cpu_seconds,
            "seconds": seconds, "parameters": int(model.count_params())}


def launch(update: str, table_size: int, steps: int, out_dir: str) -> dict[str, Any]:
    out = os.path.join(out_dir, f"{update}_{table_size}_{time.time_ns()}.json")
    print(f"[{datetime.datetime.now():%H:%M:%S}] {update} update, {table_size:,} ids ...", flush=True)
    subprocess.run([sys.executable, "-m", "benchmarks.embedding_update", "--child", update, "--ids", str(table_size),
                    "--steps", str(steps), "--out", out], check=True, cwd=REPO_ROOT)
    with open(out) as f:
        result = json.load(f)
    print(f"    {result['examples_per_second']:.1f} examples/s, {result['examples_per_cpu_second']:.1f} per CPU s, "
          f"peak RSS {result['peak_rss_mb']:,.0f} MB", flush=True)
    return result


ORDER = ("dense", "lazy", "lazy", "dense")


def mean_runs(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The mean of each measured figure over an update's runs (peak RSS: the largest)."""
    return {"examples_per_second": sum(r["examples_per_second"] for r in runs) / len(runs),
            "examples_per_cpu_second": sum(r["examples_per_cpu_second"] for r in runs) / len(runs),
            "peak_rss_mb": max(r["peak_rss_mb"] for r in runs), "parameters": runs[0]["parameters"],
            "runs": len(runs)}


def render(results: dict[int, dict[str, dict[str, Any]]], steps: int, command: str) -> str:
    from benchmarks.pipeline_scaling import machine_description, versions
    lines = [SECTION_HEADING, "",
             f"- Date: {datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}; machine: {machine_description()}",
             f"- Software: {versions()}", f"- Command: `{command}`",
             f"- The OptFusion search supernet at Criteo's dimensions (39 fields x 40) with N embedding rows, the "
             f"search's TrainStep on synthetic in-memory ids, batch {throughput.BATCH}, float32, CPU; {steps} measured "
             "steps after two warm-up steps; Criteo's search rates and coupled L2. dense: the reference (Adam and L2 "
             "on every row each step); lazy: `--embedding-update lazy` (the batch's rows only).", "",
             "| ids | parameters | examples/s dense | lazy | lazy / dense | examples per CPU s dense | lazy | "
             "lazy / dense | peak RSS MB dense | lazy |", "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for table_size, by_update in sorted(results.items()):
        dense, lazy = by_update["dense"], by_update["lazy"]
        lines.append(f"| {table_size:,} | {dense['parameters']:,} | {dense['examples_per_second']:.1f} | "
                     f"{lazy['examples_per_second']:.1f} | "
                     f"{lazy['examples_per_second'] / dense['examples_per_second']:.2f}x | "
                     f"{dense['examples_per_cpu_second']:.1f} | {lazy['examples_per_cpu_second']:.1f} | "
                     f"{lazy['examples_per_cpu_second'] / dense['examples_per_cpu_second']:.2f}x | "
                     f"{dense['peak_rss_mb']:,.0f} | {lazy['peak_rss_mb']:,.0f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ids", type=int, nargs="+", default=list(DEFAULT_IDS), help="embedding rows per run")
    parser.add_argument("--steps", type=int, default=8, help="measured training steps per run")
    parser.add_argument("--doc", default=throughput.DEFAULT_DOC)
    parser.add_argument("--no-doc", action="store_true", help="print only, do not write docs/benchmarks.md")
    parser.add_argument("--child", choices=UPDATES, help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    if args.child:
        sampler = throughput.RssSampler()
        result = child(args.child, args.ids[0], args.steps)
        result["peak_rss_mb"] = sampler.mark()
        sampler.stop()
        with open(args.out, "w") as f:
            json.dump(result, f)
        return
    command = "python -m benchmarks.embedding_update " + " ".join(sys.argv[1:] if argv is None else argv)
    results: dict[int, dict[str, dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory() as out_dir:
        for table_size in args.ids:
            runs: dict[str, list[dict[str, Any]]] = {update: [] for update in UPDATES}
            for update in ORDER:
                runs[update].append(launch(update, table_size, args.steps, out_dir))
            results[table_size] = {update: mean_runs(update_runs) for update, update_runs in runs.items()}
    section = render(results, args.steps, command)
    print(section)
    if not args.no_doc:
        report.write_section(args.doc, section)


if __name__ == "__main__":
    main()
