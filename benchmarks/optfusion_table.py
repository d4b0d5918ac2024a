"""OptFusion quality benchmark: test AUC / logloss of OptFusion-Hard, OptFusion-Soft, the searched supernet and
every baseline, on the shared samples, over several seeds.

    TF_USE_LEGACY_KERAS=1 python -m benchmarks.optfusion_table --datasets criteo avazu frappe \\
        --seeds 2022 2023 2024 2025 2026 --work-dir /tmp/optfusion_bench
    TF_USE_LEGACY_KERAS=1 python -m benchmarks.optfusion_table --quick      # smoke: generated data, test preset

For every dataset (../shared/data/<name>/, every file but the *test* one) and seed, `local_runner.py` runs once
per model in a fresh child process, all in one output folder per (dataset, seed) with caching on: ingestion
and Transform are shared by every model, and the search by OptFusion-Hard and -Soft (same search settings).
The seed is the pipeline's `--split-seed` (a different random 8:1:1 split per seed). Reported per model, from
the run's own artifacts (MLMD): test AUC and logloss of the trained Model artifact (not the pushed one) on the
raw test split through `serving_default` (the test split is used by nothing else), the best eval epoch, and the
wall seconds of the training executions (Trainer, or OptFusionSearch + OptFusionRetrain).

"OptFusion search (supernet)" is the searched supernet itself (the OptFusionSearch step's `supernet` Model),
so both stages are reported. Mean ± standard error over the seeds; a difference is claimed only beyond 2
standard errors of the paired (by seed) difference. Output: a table on stdout and the section
"## OptFusion: test quality" of docs/benchmarks.md (replaced if present, other sections kept).
"""
from __future__ import annotations

import datetime
import json
import math
import os
import platform
import sys
from typing import Optional, Sequence

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

from benchmarks import report  # noqa: E402 - after the path set-up
from benchmarks import resfusion_table as common  # noqa: E402
from benchmarks.resfusion_table import Entry  # noqa: E402

SECTION_HEADING = "## OptFusion: test quality"
SUPERNET_LABEL = "OptFusion search (supernet)"
OPTFUSION_MODELS = ("optfusion-hard", "optfusion-soft")

ENTRIES: tuple[Entry, ...] = tuple(Entry(label, ("--model", model), "") for label, model in (
    ("LR", "lr"), ("FM", "fm"), ("DNN", "dnn"), ("DeepFM", "deepfm"), ("DCN", "dcn"), ("DCNv2", "dcnv2"),
    ("xDeepFM", "xdeepfm"), ("IPNN", "ipnn"), ("OptFusion-Hard", "optfusion-hard"),
    ("OptFusion-Soft", "optfusion-soft")))
BASELINES = ("LR", "FM", "DNN", "DeepFM", "DCN", "DCNv2", "xDeepFM", "IPNN")


def collect(out_dir: str, entry: Entry) -> dict[str, dict[str, float]]:
    """{label: metrics} of the latest run: the entry's model, and for OptFusion also the searched supernet."""
    from pipeline import lineage
    store = lineage.open_store(os.path.join(out_dir, "metadata.sqlite"))
    if entry.flags[1] not in OPTFUSION_MODELS:
        model = lineage.latest_output(store, "Trainer", "model")
        with open(os.path.join(lineage.latest_output(store, "Trainer", "model_run").uri, "history.json")) as f:
            epochs = common._epochs_to_converge(json.load(f))
        auc, logloss = common.test_metrics(store, model)
        return {entry.label: {"auc": auc, "logloss": logloss, "epochs": epochs,
                              "seconds": common.producer_seconds(store, model)}}
    supernet = lineage.latest_output(store, "OptFusionSearch", "supernet")
    model = lineage.latest_output(store, "OptFusionRetrain", "model")
    search_seconds = common.producer_seconds(store, supernet)
    results = {}
    for label, artifact, seconds in ((SUPERNET_LABEL, supernet, search_seconds),
                                     (entry.label, model, search_seconds + common.producer_seconds(store, model))):
        auc, logloss = common.test_metrics(store, artifact)
        results[label] = {"auc": auc, "logloss": logloss, "seconds": seconds,
                          "epochs": float(artifact.custom_properties["best_epoch"].int_value)}
    return results


def claims(by_label: dict[str, list[dict[str, float]]]) -> list[str]:
    """OptFusion-Hard against the best baseline (by mean test AUC) and against its own supernet."""
    lines = []
    hard = by_label.get("OptFusion-Hard")
    baselines = {label: runs for label, runs in by_label.items() if label in BASELINES and runs}
    if not hard:
        return lines
    others = []
    if baselines:
        best = max(baselines, key=lambda label: common.mean_se([r["auc"] for r in baselines[label]])[0])
        others.append((f"the best baseline ({best})", baselines[best]))
    if by_label.get(SUPERNET_LABEL):
        others.append(("its supernet", by_label[SUPERNET_LABEL]))
    for name, runs in others:
        diff, se = common.paired_difference([r["auc"] for r in hard], [r["auc"] for r in runs])
        if math.isnan(se):
            lines.append(f"- OptFusion-Hard vs {name}: test AUC {diff:+.4f} (one seed: no claim)")
            continue
        verdict = "better" if diff > 2 * se else "worse" if diff < -2 * se else "no difference claimed"
        lines.append(f"- OptFusion-Hard vs {name}: test AUC {diff:+.4f} ± {se:.4f} ({verdict})")
    return lines


def render(results: dict[str, dict[str, list[dict[str, float]]]], seeds: Sequence[int], preset: str) -> str:
    """results[dataset][label] = one metrics dict per seed."""
    lines = [SECTION_HEADING, "",
             f"- Date: {datetime.datetime.utcnow():%Y-%m-%d %H:%M} UTC; machine: nproc {os.cpu_count()}, "
             f"{platform.platform()}",
             f"- Command: `python -m benchmarks.optfusion_table {' '.join(sys.argv[1:])}`",
             f"- Split: RawLogExampleGen's random 8:1:1 train/eval/test, one split per seed "
             f"({', '.join(map(str, seeds))}); every model early-stops on eval; everything is reported on test.",
             f"- Preset `{preset}` (per-dataset learning rates and L2 of algorithms.md §1.8); mean ± standard error "
             f"over {len(seeds)} seed(s). A difference is claimed only beyond 2 standard errors of the paired "
             "difference.", ""]
    for dataset, by_label in results.items():
        lines += [f"### {dataset}", "", "| model | test AUC | test logloss | best eval epoch | training s |",
                  "|---|---:|---:|---:|---:|"]
        for label, runs in by_label.items():
            if runs:
                lines.append(f"| {label} | {common.format_cell([r['auc'] for r in runs])} | "
                             f"{common.format_cell([r['logloss'] for r in runs])} | "
                             f"{common.format_cell([r['epochs'] for r in runs], 1)} | "
                             f"{common.format_cell([r['seconds'] for r in runs], 0)} |")
        lines += ["", *claims(by_label), ""]
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> None:
    args = common.parse_table_args(argv, __doc__, "/tmp/optfusion_bench", "DeepFM and OptFusion-Hard")
    entries = list(ENTRIES)
    if args.quick:
        entries = [e for e in entries if e.label in ("DeepFM", "OptFusion-Hard")]
    elif args.models:
        entries = [e for e in entries if e.label in args.models]
    # Hard and Soft share one (cached) search: its supernet is collected once per seed.
    results = common.run_table(args, entries, collect, [*[e.label for e in entries], SUPERNET_LABEL])
    section = render(results, args.seeds, args.preset)
    print(section)
    if not args.no_doc:
        report.write_section(args.doc, section)


if __name__ == "__main__":
    main()
