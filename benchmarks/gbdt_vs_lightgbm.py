"""The TF-DF GBDT against a tuned LightGBM on the same OptFusion TFRecord rows (issue 9's GBDT target).

    python -m benchmarks.gbdt_vs_lightgbm                      # Frappe: writes its section of docs/benchmarks.md
    python -m benchmarks.gbdt_vs_lightgbm --datasets frappe criteo avazu --no-doc
    python -m benchmarks.gbdt_vs_lightgbm --quick              # smoke run on a tiny generated folder

The reference figure (shared/data/README.md, algorithms.md §3): a LightGBM with the F id columns as categorical
features reaches test AUC ≈ .965 on Frappe's 8:1:1 split. Both libraries here read the same rows of
`optfusion_tfrecords/<dataset>` (train / validation / test files), every id column categorical, early stopping on
the validation split; each library's setting is chosen by validation AUC and scored once on the test split. The
TF-DF settings are `trainer.resfusion.gbdt.GbdtParams`: the project default (what the ResFusion stage and the
"TF-DF GBDT"
row of the quality table use) and LightGBM-like variants (leaf-wise growth, smaller steps, the second-order
(hessian) split gain and categorical L2 that LightGBM uses by default).
Fit seconds are wall time in this process (data already in memory for LightGBM; TF-DF reads a tf.data pipeline,
as the pipeline's GBDT stage does), reported as a ratio to LightGBM's default setting in the same run; other
work on the machine inflates them.
"""
from __future__ import annotations

import argparse
import dataclasses
import glob
import os
import sys
import time
from typing import Any, Optional, Sequence

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

from benchmarks import report  # noqa: E402 - after the path set-up

SECTION_HEADING = "## GBDT: TF-DF against LightGBM (issue 9)"
DEFAULT_DOC = os.path.join(REPO_ROOT, "docs", "benchmarks.md")
DATA_DIR = os.environ.get("FUSIONCTR_DATA_DIR", os.path.join(REPO_ROOT, "..", "shared", "data"))
SPLITS = ("train", "validation", "test")
LIGHTGBM_REFERENCE_AUC = {"frappe": 0.965, "criteo": 0.73, "avazu": 0.71}  # shared/data/README.md ("≈")

# LightGBM: the documented parameters that matter for categorical ids (a small grid; the rest at their defaults).
LIGHTGBM_GRID: dict[str, dict[str, Any]] = {
    "default (31 leaves, lr .1)": {},
    "31 leaves, lr .05": {"learning_rate": 0.05},
    "31 leaves, lr .05, cat_l2 1, min_data_per_group 20": {"learning_rate": 0.05, "cat_l2": 1.0,
                                                           "min_data_per_group": 20},
    "127 leaves, lr .05": {"learning_rate": 0.05, "num_leaves": 127},
    "127 leaves, lr .05, cat_l2 1, min_data_per_group 20": {"learning_rate": 0.05, "num_leaves": 127,
                                                            "cat_l2": 1.0, "min_data_per_group": 20},
}
# TF-DF: overrides of trainer.resfusion.gbdt.GbdtParams.
TFDF_GRID: dict[str, dict[str, Any]] = {
    "project default (depth 6, lr .1)": {},
    # YDF applies l2_categorical_regularization in its hessian gain only: without it, cat L2 10 changes nothing.
    "depth 6, lr .1, cat L2 10": {"l2_categorical_regularization": 10.0},
    "depth 6, lr .1, hessian gain, cat L2 10": {"use_hessian_gain": True, "l2_categorical_regularization": 10.0},
    "leaf-wise 31 leaves, lr .05": {"growing_strategy": "BEST_FIRST_GLOBAL", "max_num_nodes": 61,
                                    "shrinkage": 0.05, "num_trees": 1000, "min_examples": 20},
    "leaf-wise 31 leaves, lr .05, hessian gain, cat L2 10": {
        "growing_strategy": "BEST_FIRST_GLOBAL", "max_num_nodes": 61, "shrinkage": 0.05, "num_trees": 1000,
        "min_examples": 20, "use_hessian_gain": True, "l2_categorical_regularization": 10.0},
}
QUICK_LIGHTGBM = ("default (31 leaves, lr .1)", "31 leaves, lr .05")
QUICK_TFDF = ("project default (depth 6, lr .1)",)


@dataclasses.dataclass(frozen=True)
class Fit:
    """One fitted setting: its validation and test metrics (AUC, logloss) and cost."""

    library: str
    setting: str
    trees: int
    fit_seconds: float
    validation_auc: float
    test_auc: float
    test_logloss: float


def split_files(folder: str) -> dict[str, list[str]]:
    """{split: its TFRecord files} of an OptFusion TFRecord folder, by the pipeline's own file patterns
    (pipeline.pipeline.TFRECORD_SPLIT_PATTERNS; the pipeline calls the validation split "eval").

    Raises:
        FileNotFoundError: a split has no file matching its pattern.
    """
    from pipeline.pipeline import TFRECORD_SPLIT_PATTERNS
    patterns = {"train": TFRECORD_SPLIT_PATTERNS["train"], "validation": TFRECORD_SPLIT_PATTERNS["eval"],
                "test": TFRECORD_SPLIT_PATTERNS["test"]}
    files = {split: sorted(glob.glob(os.path.join(folder, patterns[split]))) for split in SPLITS}
    for split, found in files.items():
        if not found:
            raise FileNotFoundError(f"{folder}: no {patterns[split]} file (is it an OptFusion TFRecord folder?)")
    return files


def read_ids(files: Sequence[str]) -> tuple[Any, Any]:
    """The id matrix int32 [rows, F] and the labels float32 [rows] of OptFusion TFRecords, in file order."""
    import numpy as np
    import tensorflow as tf

    from trainer.resfusion import gbdt
    from transform import features
    ids, labels = [], []
    for serialized in gbdt.read_records(files).batch(8192):
        parsed = tf.io.parse_example(serialized, {features.FEATURE_KEY: tf.io.VarLenFeature(tf.int64),
                                                  features.LABEL_KEY: tf.io.FixedLenFeature([1], tf.float32)})
        ids.append(tf.sparse.to_dense(parsed[features.FEATURE_KEY]).numpy().astype(np.int32))
        labels.append(parsed[features.LABEL_KEY].numpy()[:, 0])
    return np.concatenate(ids), np.concatenate(labels)


def fit_lightgbm(data: dict[str, tuple[Any, Any]], setting: str, overrides: dict[str, Any], seed: int) -> Fit:
    """LightGBM on every id column as a categorical feature, early stopping (50 rounds) on validation logloss."""
    import lightgbm

    from trainer import metrics
    params = {"objective": "binary", "metric": "binary_logloss", "verbosity": -1, "seed": seed,
              "num_threads": os.cpu_count() or 1, **overrides}
    (x_train, y_train), (x_valid, y_valid), (x_test, y_test) = (data[split] for split in SPLITS)
    columns = list(range(x_train.shape[1]))
    train = lightgbm.Dataset(x_train, y_train, categorical_feature=columns, free_raw_data=False)
    valid = lightgbm.Dataset(x_valid, y_valid, categorical_feature=columns, reference=train)
    train.construct()  # the binning (and LightGBM's lazy imports) outside the timed fit
    valid.construct()
    started = time.perf_counter()
    booster = lightgbm.train(params, train, num_boost_round=3000, valid_sets=[valid],
                             callbacks=[lightgbm.early_stopping(50, verbose=False)])
    seconds = time.perf_counter() - started
    valid_logits = booster.predict(x_valid, raw_score=True, num_iteration=booster.best_iteration)
    test_logits = booster.predict(x_test, raw_score=True, num_iteration=booster.best_iteration)
    return Fit("LightGBM", setting, booster.best_iteration, seconds, float(metrics.auc(y_valid, valid_logits)),
               float(metrics.auc(y_test, test_logits)), float(metrics.logloss(y_test, test_logits)))


def fit_tfdf(files: dict[str, list[str]], data: dict[str, tuple[Any, Any]], setting: str, overrides: dict[str, Any],
             seed: int) -> Fit:
    """The project's GbdtLearner (TF-DF) with GbdtParams overridden, as the pipeline's GBDT stage trains it.
    data: read_ids of the same files, whose labels (same order) score the validation and test logits."""
    from trainer import metrics
    from trainer.resfusion import gbdt
    from transform import features
    inputs = gbdt.GbdtInputs.from_files(features.get_dataset("tfrecord"), files["train"])
    params = dataclasses.replace(gbdt.GbdtParams(seed=seed), **overrides)
    datasets = {split: gbdt.examples_dataset(files[split], inputs, params.batch_size) for split in SPLITS}
    started = time.perf_counter()
    model = gbdt.GbdtLearner(inputs, params).fit(datasets["train"], datasets["validation"])
    seconds = time.perf_counter() - started
    scores = {}
    for split in ("validation", "test"):
        labels, logits = data[split][1], model.logits(datasets[split])
        scores[split] = (float(metrics.auc(labels, logits)), float(metrics.logloss(labels, logits)))
    return Fit("TF-DF", setting, model.num_trees, seconds, scores["validation"][0], *scores["test"])


def best_by_validation(fits: Sequence[Fit], library: str) -> Optional[Fit]:
    """The fit of `library` with the highest validation AUC (None when it has none)."""
    candidates = [fit for fit in fits if fit.library == library]
    return max(candidates, key=lambda fit: fit.validation_auc) if candidates else None


def render(dataset: str, rows: dict[str, int], fits: Sequence[Fit], command: str) -> list[str]:
    """The markdown lines of one dataset: every fit, the chosen setting of each library, the gap."""
    base = next((fit for fit in fits if fit.library == "LightGBM"), None)
    lines = [f"### {dataset} ({', '.join(f'{split} {n:,}' for split, n in rows.items())} rows)", "",
             "| library | setting | trees | fit s | fit time / LightGBM default | validation AUC | test AUC "
             "| test logloss |", "|---|---|---:|---:|---:|---:|---:|---:|"]
    for fit in fits:
        ratio = f"{fit.fit_seconds / base.fit_seconds:.2f}×" if base and base.fit_seconds > 0 else "–"
        lines.append(f"| {fit.library} | {fit.setting} | {fit.trees} | {fit.fit_seconds:.1f} | {ratio} | "
                     f"{fit.validation_auc:.4f} | {fit.test_auc:.4f} | {fit.test_logloss:.4f} |")
    tfdf, lgbm = best_by_validation(fits, "TF-DF"), best_by_validation(fits, "LightGBM")
    lines.append("")
    if tfdf and lgbm:
        lines.append(f"Chosen by validation AUC: TF-DF \"{tfdf.setting}\" test AUC {tfdf.test_auc:.4f}, LightGBM "
                     f"\"{lgbm.setting}\" {lgbm.test_auc:.4f}: TF-DF {tfdf.test_auc - lgbm.test_auc:+.4f} "
                     f"(target: within 0.01). The reference's LightGBM: ≈ {LIGHTGBM_REFERENCE_AUC.get(dataset, '–')}.")
    lines += ["", f"Command: `{command}`", ""]
    return lines


def run_dataset(folder: str, quick: bool, seed: int, log=print) -> tuple[dict[str, int], list[Fit]]:
    files = split_files(folder)
    data = {split: read_ids(files[split]) for split in SPLITS}
    rows = {split: int(data[split][1].shape[0]) for split in SPLITS}
    fits = []
    for setting, overrides in LIGHTGBM_GRID.items():
        if not quick or setting in QUICK_LIGHTGBM:
            fits.append(fit_lightgbm(data, setting, overrides, seed))
            log(f"  {fits[-1]}")
    for setting, overrides in TFDF_GRID.items():
        if not quick or setting in QUICK_TFDF:
            fits.append(fit_tfdf(files, data, setting, overrides, seed))
            log(f"  {fits[-1]}")
    return rows, fits


def main(argv: Optional[Sequence[str]] = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=["frappe"], choices=sorted(LIGHTGBM_REFERENCE_AUC))
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--doc", default=DEFAULT_DOC)
    parser.add_argument("--no-doc", action="store_true", help="print the section, do not write docs/benchmarks.md")
    parser.add_argument("--quick", action="store_true", help="a tiny generated folder, two LightGBM and one "
                                                            "TF-DF setting (smoke run; implies --no-doc)")
    parser.add_argument("--work-dir", default="/tmp/gbdt_vs_lightgbm", help="where --quick writes its folder")
    args = parser.parse_args(argv)
    command = "python -m benchmarks.gbdt_vs_lightgbm" + (f" {' '.join(argv)}" if argv else "")
    lines = [SECTION_HEADING, "", __doc__.split("\n\n", 2)[2].strip(), ""]
    for dataset in (["quick"] if args.quick else args.datasets):
        if args.quick:
            from benchmarks.quality_table import make_quick_tfrecords
            folder = make_quick_tfrecords(os.path.join(args.work_dir, "quick"))
        else:
            folder = os.path.join(DATA_DIR, "optfusion_tfrecords", dataset)
        print(f"{dataset}: {folder}", flush=True)
        rows, fits = run_dataset(folder, args.quick, args.seed)
        lines += render(dataset, rows, fits, command)
    section = "\n".join(lines)
    print(section)
    if not (args.no_doc or args.quick):
        report.write_section(args.doc, section)
    return section


if __name__ == "__main__":
    main(sys.argv[1:])
