"""ResFusion benchmark: the shape of the paper's Table 2 (comparators) and Table 3 (K rounds).

    TF_USE_LEGACY_KERAS=1 python -m benchmarks.resfusion_table --datasets criteo avazu frappe \\
        --seeds 2022 2023 2024 2025 2026 --work-dir /tmp/resfusion_bench
    TF_USE_LEGACY_KERAS=1 python -m benchmarks.resfusion_table --quick      # smoke: generated data, test preset

For every dataset (the shared samples in ../shared/data/<name>/, every file but the *test* one) and every
seed, the pipeline runs once per model, each in a fresh child process (`local_runner.py`), all in one
output folder per (dataset, seed) with caching on, so ingestion, Transform and the GBDT are shared between
the models that use them. The seed is the pipeline's `--split-seed`: a different random 8:1:1 split (and
therefore different trees and networks) per seed. Reported per model, from the run's own artifacts:

- test AUC and logloss: the model the run trained (its Model artifact, not the pushed one) scores the raw
  test split through `serving_default`; the test split is never used by training, early stopping or blessing;
- epochs to converge: the epoch with the best eval AUC of the (first) deep stage;
- training seconds: wall time (MLMD) of the executions that produced the model: GbdtResidual + Trainer.

Mean ± standard error over the seeds; an ordering is claimed only beyond 2 standard errors of the
difference (paired by seed). Output: a table on stdout and the section "## ResFusion: Table 2 and Table 3"
of docs/benchmarks.md (replaced if present, other sections kept).
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime
import glob
import json
import math
import os
import platform
import subprocess
import sys
from typing import Any, Callable, Optional, Sequence

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

from benchmarks import report  # noqa: E402 - after the path set-up

SECTION_HEADING = "## ResFusion: Table 2 and Table 3"
DEFAULT_DOC = os.path.join(REPO_ROOT, "docs", "benchmarks.md")
DATA_DIR = os.environ.get("FUSIONCTR_DATA_DIR", os.path.join(REPO_ROOT, "..", "shared", "data"))


@dataclasses.dataclass(frozen=True)
class Entry:
    """One row of the table: a label and the local_runner flags that train it."""

    label: str
    flags: tuple[str, ...]
    table: str  # "2" or "3"


ENTRIES: tuple[Entry, ...] = (
    Entry("LR", ("--model", "lr"), "2"),
    Entry("FM", ("--model", "fm"), "2"),
    Entry("GBDT", ("--model", "gbdt"), "2"),
    Entry("DeepFM", ("--model", "deepfm"), "2"),
    Entry("GBDT+LR", ("--model", "gbdt-lr"), "2"),
    Entry("GBDT2DNN", ("--model", "gbdt2dnn"), "2"),
    Entry("GBDT2DeepFM", ("--model", "gbdt2deepfm"), "2"),
    Entry("GBDT+DeepFM", ("--model", "gbdt+deepfm"), "2"),
    Entry("NNres+GBDT", ("--model", "nnres-gbdt"), "2"),
    Entry("GBDTRes+NN (K=1)", ("--model", "resfusion", "--rounds", "1"), "2"),
    Entry("K=2", ("--model", "resfusion", "--rounds", "2"), "3"),
    Entry("K=3", ("--model", "resfusion", "--rounds", "3"), "3"),
)


def available_entries() -> list[Entry]:
    """Entries whose model exists in this checkout (LR and FM come with the baseline models)."""
    from pipeline import model_steps
    from trainer.models import registry
    known = set(model_steps.FAMILY_MODULES) | set(registry.LOGIT_BUILDERS)
    return [e for e in ENTRIES if e.flags[1] in known]


# --- one pipeline run ------------------------------------------------------------------------------------------

def run_model(dataset: str, data: str, out_dir: str, seed: int, entry: Entry, preset: str,
              extra: Sequence[str] = ()) -> None:
    argv = [sys.executable, os.path.join(REPO_ROOT, "local_runner.py"), "--dataset", dataset, "--data", data,
            "--output-dir", out_dir, "--split-seed", str(seed), "--preset", preset, "--min-auc", "0",
            *entry.flags, *extra]
    result = subprocess.run(argv, cwd=REPO_ROOT, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{entry.label} on {dataset} (seed {seed}) failed:\n{result.stderr[-4000:]}")


def producer_seconds(store, artifact) -> float:
    """Wall seconds of the execution that produced an artifact (MLMD registration to publication)."""
    from ml_metadata.proto import metadata_store_pb2
    events = [e for e in store.get_events_by_artifact_ids([artifact.id])
              if e.type == metadata_store_pb2.Event.OUTPUT]
    execution = store.get_executions_by_id([events[0].execution_id])[0]
    return (execution.last_update_time_since_epoch - execution.create_time_since_epoch) / 1000.0


def test_metrics(store, model) -> tuple[float, float]:
    """(AUC, logloss) of a Model artifact's serving signature on the raw test split of the latest ExampleGen run."""
    import numpy as np
    import tensorflow as tf
    import tensorflow_decision_forests  # noqa: F401 - the TF-DF ops, to load GBDT models

    from pipeline import lineage
    from serving import batch_score
    examples = lineage.latest_output(store, "RawLogExampleGen", "examples")
    files = sorted(glob.glob(os.path.join(examples.uri, "Split-test", "*")))
    serialized = [r.numpy() for r in tf.data.TFRecordDataset(files, compression_type="GZIP")]
    labels = np.array([tf.train.Example.FromString(s).features.feature["label"].int64_list.value[0]
                       for s in serialized], np.float32)
    probabilities = batch_score.score(os.path.join(model.uri, "Format-Serving"), serialized)
    return batch_score.auc_and_logloss(labels, np.clip(probabilities, 1e-7, 1 - 1e-7))


def collect(out_dir: str, entry: Entry) -> dict[str, float]:
    """Test metrics, epochs and training time of the model the latest run trained."""
    from pipeline import lineage
    store = lineage.open_store(os.path.join(out_dir, "metadata.sqlite"))
    gbdt_only = entry.flags[1] == "gbdt"
    model = lineage.latest_output(store, "GbdtResidual" if gbdt_only else "Trainer", "model")
    seconds = producer_seconds(store, model)
    if entry.flags[1] not in ("deepfm", "lr", "fm", "nnres-gbdt") and not gbdt_only:
        seconds += producer_seconds(store, lineage.latest_output(store, "GbdtResidual", "model"))
    auc, logloss = test_metrics(store, model)
    epochs = float("nan")
    if not gbdt_only:
        run_dir = lineage.latest_output(store, "Trainer", "model_run").uri
        with open(os.path.join(run_dir, "history.json")) as f:
            history = json.load(f)
        epochs = _epochs_to_converge(history)
    return {"auc": auc, "logloss": logloss, "epochs": epochs, "seconds": seconds}


def _epochs_to_converge(history: dict[str, Any]) -> float:
    """Best-eval-AUC epoch of the first deep stage (ResFusion) or of the model (plain Keras trainer)."""
    for stage in history.get("stages", []):
        if stage.get("best_epoch"):
            return float(stage["best_epoch"])
    val_auc = history.get("history", {}).get("val_auc")
    if val_auc:
        return float(max(range(len(val_auc)), key=lambda i: val_auc[i]) + 1)
    return float("nan")


# --- aggregation -----------------------------------------------------------------------------------------------

def mean_se(values: Sequence[float]) -> tuple[float, float]:
    values = [v for v in values if not math.isnan(v)]
    if not values:
        return float("nan"), float("nan")
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, float("nan")
    variance = sum((v - mean) ** 2 for v in values) / (len(values) - 1)
    return mean, math.sqrt(variance / len(values))


def paired_difference(a: Sequence[float], b: Sequence[float]) -> tuple[float, float]:
    """Mean and standard error of a - b over seeds (paired)."""
    return mean_se([x - y for x, y in zip(a, b)])


def format_cell(values: Sequence[float], digits: int = 4) -> str:
    mean, se = mean_se(values)
    if math.isnan(mean):
        return "–"
    return f"{mean:.{digits}f} ± {se:.{digits}f}" if not math.isnan(se) else f"{mean:.{digits}f}"


def render(results: dict[str, dict[str, list[dict[str, float]]]], seeds: Sequence[int], preset: str) -> str:
    """results[dataset][label] = one metrics dict per seed."""
    lines = [SECTION_HEADING, "",
             f"- Date: {datetime.datetime.utcnow():%Y-%m-%d %H:%M} UTC; machine: nproc {os.cpu_count()}, "
             f"{platform.platform()}",
             f"- Command: `python -m benchmarks.resfusion_table {' '.join(sys.argv[1:])}`",
             f"- Split: RawLogExampleGen's random 8:1:1 train/eval/test, one split per seed ({', '.join(map(str, seeds))}); "
             "the GBDT early-stops and the deep models early-stop on eval; everything is reported on test.",
             f"- Preset `{preset}`; mean ± standard error over {len(seeds)} seed(s). An ordering is claimed only "
             "beyond 2 standard errors of the paired difference.", ""]
    for dataset, by_label in results.items():
        lines += [f"### {dataset}", "", "| model | test AUC | test logloss | epochs to converge | training s |",
                  "|---|---:|---:|---:|---:|"]
        for label, runs in by_label.items():
            lines.append(f"| {label} | {format_cell([r['auc'] for r in runs])} | "
                         f"{format_cell([r['logloss'] for r in runs])} | {format_cell([r['epochs'] for r in runs], 1)} | "
                         f"{format_cell([r['seconds'] for r in runs], 0)} |")
        lines.append("")
        ours = by_label.get("GBDTRes+NN (K=1)")
        for other in ("GBDT", "DeepFM"):
            if ours and other in by_label:
                diff, se = paired_difference([r["auc"] for r in ours], [r["auc"] for r in by_label[other]])
                if math.isnan(se):
                    lines.append(f"- GBDTRes+NN vs {other}: test AUC {diff:+.4f} (one seed: no claim)")
                    continue
                verdict = "better" if diff > 2 * se else "worse" if diff < -2 * se else "no difference claimed"
                lines.append(f"- GBDTRes+NN vs {other}: test AUC {diff:+.4f} ± {se:.4f} ({verdict})")
        lines.append("")
    return "\n".join(lines)


def dataset_input(name: str, work_dir: str) -> str:
    """A folder of links to the shared sample's training files (the *test* file is left out)."""
    folder = os.path.join(DATA_DIR, name)
    files = [f for f in sorted(os.listdir(folder)) if not f.startswith((".", "_", "README", "LICENSE"))
             and not f.endswith(".md") and "test" not in f.lower()]
    if not files:
        raise FileNotFoundError(f"no training files in {folder}")
    link_dir = os.path.join(work_dir, "input", name)
    os.makedirs(link_dir, exist_ok=True)
    for f in files:
        link = os.path.join(link_dir, f)
        if not os.path.exists(link):
            os.symlink(os.path.abspath(os.path.join(folder, f)), link)
    return link_dir


def parse_table_args(argv: Optional[Sequence[str]], description: str, work_dir: str,
                     quick_models: str) -> argparse.Namespace:
    """The flags of a quality-table benchmark; --quick turns into one generated dataset, one seed, the test
    preset and no doc."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=["criteo", "avazu", "frappe"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[2022, 2023, 2024, 2025, 2026])
    parser.add_argument("--preset", default="small", choices=("small", "full", "test"))
    parser.add_argument("--work-dir", default=work_dir)
    parser.add_argument("--doc", default=DEFAULT_DOC)
    parser.add_argument("--no-doc", action="store_true")
    parser.add_argument("--models", nargs="*", help="labels to run (default: every available one)")
    parser.add_argument("--quick", action="store_true",
                        help=f"smoke run: 4000 generated Criteo-layout rows, test preset, one seed, {quick_models}, "
                             "no doc")
    args = parser.parse_args(argv)
    if args.quick:
        args.datasets, args.seeds, args.preset, args.no_doc = ["generated"], [2022], "test", True
    return args


def dataset_source(dataset: str, work_dir: str) -> tuple[str, str]:
    """(data path, log layout) of a benchmark dataset: "generated" (4000 generated Criteo-layout rows) or the
    name of a shared sample."""
    if dataset == "generated":
        from data_gen import synthetic_criteo
        return synthetic_criteo.generate(os.path.join(work_dir, "input", "generated.tsv"), 4000), "criteo"
    return dataset_input(dataset, work_dir), dataset


def run_table(args: argparse.Namespace, entries: Sequence[Entry],
              collect_run: Callable[[str, Entry], dict[str, dict[str, float]]],
              labels: Sequence[str]) -> dict[str, dict[str, list[dict[str, float]]]]:
    """Runs every entry for every dataset and seed (one output folder per dataset and seed, cache on) and
    collects results[dataset][label] = one metrics dict per seed, rows in the order of `labels`.

    collect_run(out_dir, entry) returns {label: metrics} of the run just made; a label already collected for
    the same seed is skipped (a cached step shared by several entries, e.g. OptFusion's search, counts once).
    """
    results: dict[str, dict[str, list[dict[str, float]]]] = {}
    for dataset in args.datasets:
        data, layout = dataset_source(dataset, args.work_dir)
        results[dataset] = {label: [] for label in labels}
        for seed in args.seeds:
            out_dir = os.path.join(args.work_dir, dataset, str(seed))
            collected: set[str] = set()
            for entry in entries:
                print(f"{dataset} seed {seed}: {entry.label} ...", flush=True)
                run_model(layout, data, out_dir, seed, entry, args.preset)
                for label, metrics in collect_run(out_dir, entry).items():
                    if label in collected:
                        continue
                    collected.add(label)
                    print(f"  {label}: {json.dumps(metrics)}", flush=True)
                    results[dataset][label].append(metrics)
    return results


def main(argv: Optional[Sequence[str]] = None) -> None:
    args = parse_table_args(argv, __doc__, "/tmp/resfusion_bench", "GBDT, DeepFM and GBDTRes+NN (K=1)")
    entries = available_entries()
    if args.quick:
        entries = [e for e in entries if e.label in ("GBDT", "DeepFM", "GBDTRes+NN (K=1)")]
    elif args.models:
        entries = [e for e in entries if e.label in args.models]
    results = run_table(args, entries, lambda out_dir, entry: {entry.label: collect(out_dir, entry)},
                        [e.label for e in entries])
    section = render(results, args.seeds, args.preset)
    print(section)
    if not args.no_doc:
        report.write_section(args.doc, section)


if __name__ == "__main__":
    main()
