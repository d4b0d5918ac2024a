"""The quality table (issue 9): every model on the OptFusion TFRecords of the shared samples, over training seeds.

    python -m benchmarks.quality_table                           # everything still missing, Frappe first
    python -m benchmarks.quality_table --datasets frappe --models deepfm optfusion-hard --seeds 2024 2025
    python -m benchmarks.quality_table --grid                    # the baseline grid (pipeline/configs.py)
    python -m benchmarks.quality_table --render                  # only re-render docs/benchmarks.md from the cells
    python -m benchmarks.quality_table --quick                   # smoke run: a tiny generated TFRecord folder

How it runs (one pipeline run per dataset, then in-process cells):

1. Preparation, once per dataset (`<work>/<dataset>/pipeline/`): the project's pipeline (`create_pipeline` of
   `local_runner.build_config`, `--dataset tfrecord` on `shared/data/optfusion_tfrecords/<dataset>`) runs up to
   Transform (a TFX partial run), and for the ResFusion rows a second partial run up to GbdtResidual (the stage-0
   GBDT, its out-of-fold logits, trained once, with the default seed). The artifact ids are recorded in
   `prep-*.json`; later runs reuse them and never re-run the pipeline (so code edits do not re-run Transform).
2. Cells: one per (row, training seed). A cell builds the pipeline of its row (`--model`, `--seed`, the row's
   flags), takes the training component(s) from it (the stock Trainer with `trainer.train.run_fn` or
   `trainer.resfusion.run.run_fn`, OptFusionSearch, OptFusionRetrain) and runs their executor in this process on the
   prepared artifacts: the same step code and settings as the pipeline. It then scores the exported SavedModel's
   `serving_default` on the test split (for these folders, the reference's test rows), and writes
   `<work>/<dataset>/cells/<row>/seed-<seed>.json` when it finishes. A re-run skips cells whose JSON exists
   (`--rerun-stale` re-runs those trained with settings that differ from the current presets).
   The OptFusion rows of one seed share that seed's search (the supernet row), as the pipeline's cache does.
3. Raw rows: DeepFM, OptFusion-Hard and GBDTRes+DeepFM through the whole pipeline (`local_runner.py` in a child
   process) on the raw samples (`shared/data/<dataset>`, every file but the `*test*` one), scored on that
   pipeline's own test split: a different test set, indicative only.

Then the section "## Quality table (issue 9)" of docs/benchmarks.md is rendered from every cell JSON found
(missing cells are shown as missing), with the paired claims and the issue's targets as PASS / FAIL / not shown.
`--grid` trains every (learning rate, L2) point of `configs.BASELINE_GRID` for the baselines algorithms.md §1.8
does not configure, once (seed 2024), and prints the eval-AUC winners for `configs.GRID_CHOICE_LR_L2`.
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime
import gc
import glob
import hashlib
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import time
import traceback
from typing import Any, Callable, Iterable, Optional, Sequence

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

from benchmarks import report  # noqa: E402 - after the path set-up

SECTION_HEADING = "## Quality table (issue 9)"
GRID_HEADING = "## Baseline grid (issue 9, fix 5)"
DEFAULT_DOC = os.path.join(REPO_ROOT, "docs", "benchmarks.md")
DEFAULT_WORK_DIR = "/tmp/quality_table"
DATA_DIR = os.environ.get("FUSIONCTR_DATA_DIR", os.path.join(REPO_ROOT, "..", "shared", "data"))
TFRECORD_DIR = os.path.join(DATA_DIR, "optfusion_tfrecords")

DATASETS = ("frappe", "criteo", "avazu")  # run order: Frappe's 5 seeds matter most
SEEDS = {"frappe": (2024, 2025, 2026, 2027, 2028), "criteo": (2024, 2025, 2026), "avazu": (2024, 2025, 2026)}
GRID_SEED = 2024
RAW_SEEDS = (2024,)  # the raw-sample rows (indicative only): one seed unless --seeds says otherwise
MIN_AUC_DIFFERENCE = 0.002  # a claim also needs the mean paired AUC difference to exceed this


@dataclasses.dataclass(frozen=True)
class Row:
    """One row of the table.

    kind: "keras" (stock Trainer, trainer.train.run_fn), "search" (OptFusionSearch: the supernet), "retrain"
        (OptFusionRetrain on the same seed's search), "gbdt" (GbdtResidual's model, deterministic), "residual"
        (the ResFusion family's Trainer, trainer.resfusion.run.run_fn, on GbdtResidual's examples), "raw" (the whole
        pipeline on a raw sample, in a child process), "derived" (no training of its own: the prefix K = `rounds`
        of the stages of the `source` row's fit, scored through its `stage_logits`).
    source: of a "derived" row, the row whose fit it scores; of a "retrain" row, the search row whose architecture
        (same seed) it retrains ("optfusion-supernet" when empty).
    only_on: the datasets the row applies to (empty: all).
    """

    key: str
    label: str
    kind: str
    model: str
    flags: tuple[str, ...] = ()
    source: str = ""
    rounds: int = 0
    only_on: tuple[str, ...] = ()

    def applies_to(self, dataset: str) -> bool:
        return not self.only_on or dataset in self.only_on

    @property
    def per_seed(self) -> bool:
        return self.kind != "gbdt"

    @property
    def prep(self) -> tuple[str, ...]:
        return {"gbdt": ("transform", "gbdt"), "residual": ("transform", "gbdt"), "raw": ()}.get(
            self.kind, ("transform",))


BASELINE_ROWS = tuple(Row(model, label, "keras", model) for model, label in (
    ("lr", "LR"), ("fm", "FM"), ("dnn", "DNN"), ("deepfm", "DeepFM"), ("dcn", "DCN"), ("dcnv2", "DCNv2"),
    ("xdeepfm", "xDeepFM"), ("ipnn", "IPNN")))
LAZY_EMBEDDING_UPDATE = ("--embedding-update", "lazy")
ROWS: tuple[Row, ...] = (
    Row("optfusion-supernet", "OptFusion search (supernet)", "search", "optfusion-hard"),
    Row("optfusion-hard", "OptFusion-Hard", "retrain", "optfusion-hard"),
    Row("optfusion-soft", "OptFusion-Soft (Hard's rate)", "retrain", "optfusion-soft"),
    # retrain.sh's Soft rate differs from the Hard row's on Avazu and Frappe (1e-7) only; on Criteo it is the same.
    Row("optfusion-soft-reference", "OptFusion-Soft (retrain.sh's rate)", "retrain", "optfusion-soft",
        ("--soft-rates", "reference"), only_on=("avazu", "frappe")),
    # Issue 15: the search and its Hard retrain with the sparse (LazyAdam) embedding update instead of PyTorch's dense
    # one, beside the two rows above.
    Row("optfusion-supernet-lazy", "OptFusion search (supernet), lazy embedding update", "search", "optfusion-hard",
        LAZY_EMBEDDING_UPDATE),
    Row("optfusion-hard-lazy", "OptFusion-Hard, lazy embedding update", "retrain", "optfusion-hard",
        LAZY_EMBEDDING_UPDATE, source="optfusion-supernet-lazy"),
    *BASELINE_ROWS,
    Row("gbdt", "TF-DF GBDT", "gbdt", "gbdt"),
    # One fit of K = 3 rounds gives K = 1, 2, 3: a stage is fitted on the earlier stages only (same seeds), so the
    # prefix K of a K = 3 fit is the K-round model; the served model is the prefix with the lowest eval logloss.
    Row("resfusion", "GBDTRes+DeepFM (served: K ≤ 3 by eval logloss)", "residual", "resfusion", ("--rounds", "3")),
    Row("resfusion-k1", "GBDTRes+DeepFM (K=1)", "derived", "resfusion", source="resfusion", rounds=1),
    Row("resfusion-k2", "GBDTRes+DeepFM (K=2)", "derived", "resfusion", source="resfusion", rounds=2),
    Row("resfusion-k3", "GBDTRes+DeepFM (K=3)", "derived", "resfusion", source="resfusion", rounds=3),
    # Beyond the papers (issue 14): OptFusion searched and Hard-retrained on the GBDT's out-of-fold logit, beside
    # OptFusion-Hard alone and GBDTRes+DeepFM (K=1). K = 1: the deep stage feeds no later one, so no fold models.
    Row("resfusion-optfusion-hard", "GBDTRes+OptFusion-Hard (served: K ≤ 1 by eval logloss)", "residual",
        "resfusion", ("--residual-model", "optfusion-hard", "--rounds", "1")),
    Row("resfusion-optfusion-hard-k1", "GBDTRes+OptFusion-Hard (K=1)", "derived", "resfusion",
        source="resfusion-optfusion-hard", rounds=1),
    Row("nnres-gbdt", "NNres+GBDT", "residual", "nnres-gbdt"),
    Row("gbdt-lr", "GBDT+LR", "residual", "gbdt-lr"),
    Row("gbdt2dnn", "GBDT2DNN", "residual", "gbdt2dnn"),
    Row("gbdt2deepfm", "GBDT2DeepFM", "residual", "gbdt2deepfm"),
    Row("gbdt+deepfm", "GBDT+DeepFM", "residual", "gbdt+deepfm"),
)
RAW_ROWS: tuple[Row, ...] = (
    Row("raw-deepfm", "DeepFM", "raw", "deepfm"),
    Row("raw-optfusion-hard", "OptFusion-Hard", "raw", "optfusion-hard"),
    Row("raw-resfusion", "GBDTRes+DeepFM (default: K ≤ 2 by eval logloss)", "raw", "resfusion"),
)
ALL_ROWS = ROWS + RAW_ROWS
ROWS_BY_KEY = {row.key: row for row in ALL_ROWS}
# The README's results table (summary_lines): the default model, the best baseline family, both methods and the GBDT.
SUMMARY_ROWS = ("deepfm", "dcnv2", "optfusion-hard", "gbdt", "resfusion-k1", "resfusion-optfusion-hard-k1")
README = os.path.join(REPO_ROOT, "README.md")
SUMMARY_BEGIN = "<!-- results: written by python -m benchmarks.quality_table from its cells; do not edit -->"
SUMMARY_END = "<!-- end of results -->"
QUICK_ROWS = ("deepfm", "optfusion-supernet", "optfusion-hard", "gbdt", "resfusion", "resfusion-k1", "resfusion-k2",
              "resfusion-k3")


# --- the claims rule (no TF) -------------------------------------------------------------------------------------

def mean_se(values: Sequence[float]) -> tuple[float, float]:
    """Mean and standard error of the mean (sample standard deviation / sqrt(n)); NaNs are left out."""
    values = [v for v in values if v is not None and not math.isnan(v)]
    if not values:
        return float("nan"), float("nan")
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, float("nan")
    variance = sum((v - mean) ** 2 for v in values) / (len(values) - 1)
    return mean, math.sqrt(variance / len(values))


@dataclasses.dataclass(frozen=True)
class Claim:
    """The paired comparison of A and B on test AUC: mean and standard error over seeds of A - B."""

    a: str
    b: str
    difference: float
    standard_error: float
    seeds: int
    verdict: str  # "A better", "B better", "no difference shown"

    def text(self) -> str:
        if self.seeds == 0:
            return f"{self.a} vs {self.b}: no common seed yet"
        se = "" if math.isnan(self.standard_error) else f" ± {self.standard_error:.4f}"
        verdict = {"A better": f"{self.a} better", "B better": f"{self.b} better"}.get(self.verdict, self.verdict)
        return f"{self.a} vs {self.b}: test AUC {self.difference:+.4f}{se} over {self.seeds} seed(s): {verdict}"


def paired_claim(a_label: str, a: dict[Any, float], b_label: str, b: dict[Any, float],
                 min_difference: float = MIN_AUC_DIFFERENCE) -> Claim:
    """a, b: {seed: test AUC}. A deterministic row ({None: auc}, one value) pairs with every seed of the other.

    An ordering is claimed only when |mean paired difference| exceeds twice its standard error over seeds AND
    `min_difference`; with fewer than two pairs, never.
    """
    if list(a) == [None]:
        a = {seed: a[None] for seed in b}
    if list(b) == [None]:
        b = {seed: b[None] for seed in a}
    seeds = sorted(set(a) & set(b), key=str)
    differences = [a[s] - b[s] for s in seeds]
    mean, se = mean_se(differences)
    verdict = "no difference shown"
    if len(differences) >= 2 and not math.isnan(se) and abs(mean) > 2 * se and abs(mean) > min_difference:
        verdict = "A better" if mean > 0 else "B better"
    return Claim(a_label, b_label, mean, se, len(differences), verdict)


# --- cells and their files (no TF) -------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Cell:
    dataset: str
    row: Row
    seed: Optional[int]  # None: a deterministic row, trained once

    def path(self, work_dir: str) -> str:
        name = "once.json" if self.seed is None else f"seed-{self.seed}.json"
        return os.path.join(work_dir, self.dataset, "cells", self.row.key, name)

    def name(self) -> str:
        return f"{self.dataset}/{self.row.key}" + ("" if self.seed is None else f"/seed {self.seed}")


def plan(datasets: Sequence[str], rows: Sequence[Row], seeds: Optional[Sequence[int]] = None) -> list[Cell]:
    """Every cell, in run order: dataset by dataset; deterministic rows first, then seed by seed (all rows of the
    first seed before the second, so a partial run has whole seeds); raw rows last, with RAW_SEEDS."""
    cells = []
    trained = [row for row in rows if row.kind != "derived"]
    for dataset in datasets:
        dataset_seeds = list(seeds) if seeds else list(SEEDS.get(dataset, SEEDS["criteo"]))
        here = [row for row in trained if row.applies_to(dataset)]
        cells += [Cell(dataset, row, None) for row in here if not row.per_seed and row.kind != "raw"]
        for seed in dataset_seeds:
            cells += [Cell(dataset, row, seed) for row in here if row.per_seed and row.kind != "raw"]
    for dataset in datasets:
        raw_seeds = list(seeds) if seeds else list(RAW_SEEDS)
        cells += [Cell(dataset, row, seed) for seed in raw_seeds for row in trained
                  if row.kind == "raw" and row.applies_to(dataset)]
    return cells


def read_cell(path: str) -> Optional[dict[str, Any]]:
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def write_json(path: str, value: Any) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(value, f, indent=1, sort_keys=True, default=str)
    os.replace(tmp, path)  # a cell file is whole or absent


def run_cells(cells: Sequence[Cell], work_dir: str, train: Callable[[Cell], dict[str, Any]],
              log: Callable[[str], None] = print) -> dict[str, int]:
    """Runs every cell whose JSON is missing and writes it when the cell finishes; a cell that raises is recorded
    in `<cell>.error.txt` and the others go on (NotImplementedError: the cell's family is not available yet).
    A cell another live process is training (its `<cell>.lock`) is skipped, so several runs can share a work dir.

    Returns counts: {"skipped", "done", "failed", "not_implemented", "busy"}.
    """
    counts = {"skipped": 0, "done": 0, "failed": 0, "not_implemented": 0, "busy": 0}
    for index, cell in enumerate(cells):
        path = cell.path(work_dir)
        if os.path.exists(path):
            counts["skipped"] += 1
            continue
        lock = path[:-len(".json")] + ".lock"
        if not take_lock(lock):
            counts["busy"] += 1
            log(f"[{index + 1}/{len(cells)}] {cell.name()}: another process is training it")
            continue
        try:
            run_cell(index, cell, cells, path, train, counts, log)
        finally:
            os.remove(lock)
    return counts


def take_lock(lock: str) -> bool:
    """Creates `lock` holding this process id; False when a live process holds it (a dead one's is taken over)."""
    os.makedirs(os.path.dirname(lock), exist_ok=True)
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            try:
                with open(lock) as f:
                    pid = int(f.read().strip() or 0)
                os.kill(pid, 0)
                return False  # alive (a stopped process counts as alive)
            except (ValueError, ProcessLookupError, FileNotFoundError):
                if os.path.exists(lock):
                    os.remove(lock)
                continue
        with os.fdopen(fd, "w") as f:
            f.write(str(os.getpid()))
        return True
    return False


def produce_once(path: str, produce: Callable[[], None], log: Callable[[str], None], waiting: str,
                 poll_seconds: float = 30.0) -> dict[str, Any]:
    """The JSON at `path`: read; else `produce()` writes it here, under `<path without .json>.lock`; else, while
    another live process holds that lock, `waiting` is logged and the file awaited. One producer per file, so
    several table runs can share a work dir.

    Raises:
        RuntimeError: `produce` returned without writing `path` (a failed cell leaves its .error.txt beside it).
    """
    lock = path[:-len(".json")] + ".lock"
    while (value := read_cell(path)) is None:
        if not take_lock(lock):
            log(waiting)
            time.sleep(poll_seconds)
            continue
        try:
            if read_cell(path) is None:
                produce()
        finally:
            os.remove(lock)
        value = read_cell(path)
        if value is None:
            raise RuntimeError(f"{path} was not written; see the .error.txt beside it")
    return value


def run_cell(index: int, cell: Cell, cells: Sequence[Cell], path: str, train: Callable[[Cell], dict[str, Any]],
             counts: dict[str, int], log: Callable[[str], None]) -> None:
    """Trains one cell and writes its JSON (or its error file); updates counts."""
    log(f"[{index + 1}/{len(cells)}] {cell.name()} ...")
    PauseClock.start()
    started, cpu_started, paused = time.time(), time.process_time(), PauseClock.paused()
    error_path = path[:-len(".json")] + ".error.txt"
    try:
        result = train(cell)
    except NotImplementedError as error:
        counts["not_implemented"] += 1
        log(f"  not implemented: {error}")
        write_text(error_path, f"NotImplementedError: {error}\n")
        return
    except Exception:  # noqa: BLE001 - one failed cell must not stop the table
        counts["failed"] += 1
        log(f"  FAILED:\n{traceback.format_exc()[-3000:]}")
        write_text(error_path, traceback.format_exc())
        return
    result = {**result, "dataset": cell.dataset, "row": cell.row.key, "label": cell.row.label,
              "seed": cell.seed, "cell_seconds": round(time.time() - started - (PauseClock.paused() - paused), 1),
              "paused_seconds": round(PauseClock.paused() - paused, 1),
              # CPU seconds of this process (not of the raw rows' child): less dependent on other load
              "cell_cpu_seconds": round(time.process_time() - cpu_started, 1),
              "finished": datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M:%S UTC")}
    write_json(path, result)
    if os.path.exists(error_path):
        os.remove(error_path)
    counts["done"] += 1
    log(f"  test AUC {result.get('test_auc', float('nan')):.4f}, "
        f"logloss {result.get('test_logloss', float('nan')):.4f}, "
        f"best epoch {result.get('best_epoch')}, {result['cell_seconds']:.0f} s")


def write_text(path: str, text: str) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def settings_digest(settings: Any) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:12]


# --- datasets ------------------------------------------------------------------------------------------------

def tfrecord_folder(dataset: str, work_dir: str) -> str:
    if dataset == "quick":
        return make_quick_tfrecords(os.path.join(work_dir, "input", "quick"))
    return os.path.abspath(os.path.join(TFRECORD_DIR, dataset))


def raw_input_folder(dataset: str, work_dir: str) -> str:
    """A folder of links to the raw sample's training files (the *test* file is held out, as the e2e tests do)."""
    folder = os.path.join(DATA_DIR, dataset)
    files = [f for f in sorted(os.listdir(folder)) if not f.startswith((".", "_", "README", "LICENSE"))
             and not f.endswith((".md", ".txt")) and "test" not in f.lower()]
    if not files:
        raise FileNotFoundError(f"no training files in {folder}")
    link_dir = os.path.join(work_dir, "input", f"raw-{dataset}")
    os.makedirs(link_dir, exist_ok=True)
    for f in files:
        link = os.path.join(link_dir, f)
        if not os.path.exists(link):
            os.symlink(os.path.abspath(os.path.join(folder, f)), link)
    return link_dir


def make_quick_tfrecords(folder: str, fields: int = 6, ids_per_field: int = 12, rows: tuple[int, int, int] = (
        3000, 500, 500), seed: int = 7) -> str:
    """A tiny OptFusion-layout TFRecord folder with planted structure: per-field effects and one pairwise effect.
    meta.json names it "frappe" (its settings layout)."""
    if os.path.exists(os.path.join(folder, "meta.json")):
        return folder
    import numpy as np
    import tensorflow as tf
    rng = np.random.default_rng(seed)
    effects = rng.normal(0, 1.0, [fields, ids_per_field])
    pair = rng.normal(0, 1.0, [ids_per_field, ids_per_field])
    os.makedirs(folder, exist_ok=True)
    meta = {"dataset": "frappe", "fields": fields, "max_id": fields * ids_per_field - 1, "splits": {}}
    for split, n in zip(("train", "validation", "test"), rows):
        local = rng.integers(0, ids_per_field, [n, fields])
        logit = effects[np.arange(fields), local].sum(1) + pair[local[:, 0], local[:, 1]] - 0.5
        labels = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.float32)
        ids = local + np.arange(fields) * ids_per_field
        with tf.io.TFRecordWriter(os.path.join(folder, f"{split}_0000.tfrecord")) as writer:
            for row_ids, label in zip(ids, labels):
                example = tf.train.Example()
                example.features.feature["label"].float_list.value.append(float(label))
                example.features.feature["feature"].int64_list.value.extend(int(i) for i in row_ids)
                writer.write(example.SerializeToString())
        meta["splits"][split] = {"rows": n, "positive_rate": round(float(labels.mean()), 4)}
    write_json(os.path.join(folder, "meta.json"), meta)
    return folder


# --- the pipeline's configuration of a cell ----------------------------------------------------------------------

class Runner:
    """Trains cells in this process from one prepared pipeline run per dataset."""

    def __init__(self, work_dir: str, preset: str = "small", keep_models: bool = False,
                 log: Callable[[str], None] = print):
        self.work_dir = work_dir
        self.preset = preset
        self.keep_models = keep_models
        self.log = log
        self._tests: dict[str, tuple[list[bytes], Any]] = {}
        self._preps: dict[tuple[str, str], dict[str, Any]] = {}

    # -- configuration ------------------------------------------------------------------------------------------

    def pipeline_dir(self, dataset: str) -> str:
        return os.path.join(self.work_dir, dataset, "pipeline")

    def argv(self, dataset: str, row: Row, seed: Optional[int], raw: bool = False) -> list[str]:
        if raw:
            data, layout = raw_input_folder(dataset, self.work_dir), dataset
            output = os.path.join(self.work_dir, dataset, "raw")
        else:
            data, layout = tfrecord_folder(dataset, self.work_dir), "tfrecord"
            output = self.pipeline_dir(dataset)
        argv = ["--dataset", layout, "--data", data, "--output-dir", output, "--model", row.model,
                "--preset", self.preset, "--min-auc", "0", *row.flags]
        if seed is not None:
            argv += ["--seed", str(seed)]
        return argv

    def config(self, dataset: str, row: Row, seed: Optional[int], trainer_overrides: Optional[dict] = None):
        """The PipelineConfig local_runner builds for this row and seed (flags the runner lacks: NotImplemented)."""
        import local_runner
        argv = self.argv(dataset, row, seed)
        try:
            args = local_runner.parse_args(argv)
        except SystemExit:
            raise NotImplementedError(f"local_runner.py does not take {' '.join(argv)}") from None
        config = local_runner.build_config(args)
        if trainer_overrides:
            train = dataclasses.replace(config.trainer.train, **trainer_overrides)
            config = dataclasses.replace(config, trainer=dataclasses.replace(config.trainer, train=train))
        return config

    def nodes(self, config) -> dict[str, Any]:
        from pipeline.pipeline import create_pipeline
        try:
            pipeline = create_pipeline(config)
        except (ValueError, TypeError) as error:
            raise NotImplementedError(f"{config.trainer.model.name} on {config.dataset.name}: {error}") from error
        return {node.id: node for node in pipeline.components}

    # -- preparation: one pipeline run per dataset, up to Transform (and GbdtResidual) --------------------------

    def prepared(self, dataset: str, stage: str) -> dict[str, Any]:
        """{"<node>.<output key>": artifact id, ...} of the dataset's preparation run `stage` ("transform": up to
        Transform; "gbdt": up to GbdtResidual), running it the first time."""
        if (dataset, stage) in self._preps:
            return self._preps[(dataset, stage)]
        marker = os.path.join(self.pipeline_dir(dataset), f"prep-{stage}.json")
        prep = produce_once(marker, lambda: write_json(marker, self._prepare(dataset, stage)), self.log,
                            f"{dataset}: waiting for another process's preparation ({stage})")
        self._preps[(dataset, stage)] = prep
        return prep

    def _prepare(self, dataset: str, stage: str) -> dict[str, Any]:
        from tfx import v1 as tfx
        from tfx.orchestration import pipeline as pipeline_py

        from pipeline import lineage
        from pipeline.pipeline import create_pipeline
        row = Row("prep", "prep", "keras", "deepfm" if stage == "transform" else "resfusion")
        config = self.config(dataset, row, None)
        target = "Transform" if stage == "transform" else "GbdtResidual"
        pipeline = create_pipeline(config)
        nodes = {node.id: node for node in pipeline.components}
        if target not in nodes:
            raise NotImplementedError(f"the {row.model} pipeline on {dataset} has no {target}")
        self.log(f"{dataset}: preparing ({stage}): pipeline up to {target} in {self.pipeline_dir(dataset)}")
        started = time.time()
        tfx.orchestration.LocalDagRunner().run(pipeline, run_options=pipeline_py.RunOptions(to_nodes=[target]))
        included = ancestors(nodes[target]) | {target}
        store = lineage.open_store(config.metadata_path)
        artifacts: dict[str, int] = {}
        seconds: dict[str, float] = {}
        for node_id in sorted(included):
            execution = latest_execution(store, node_id)
            seconds[node_id] = producer_seconds(execution)
            for key in nodes[node_id].outputs:
                artifacts[f"{node_id}.{key}"] = execution_output(store, execution, key).id
        prep = {"stage": stage, "artifacts": artifacts, "seconds": seconds,
                "wall_seconds": round(time.time() - started, 1),
                "metadata_path": config.metadata_path, "argv": self.argv(dataset, row, None),
                "code_fingerprint": config.code_fingerprint,
                "finished": datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M:%S UTC")}
        if stage == "transform":
            examples = self.artifacts_by_id(prep, [artifacts[k] for k in artifacts
                                                   if k.endswith("ExampleGen.examples")])
            prep["train_rows"] = count_records(split_files(examples[0], "train"))
        self.log(f"{dataset}: prepared ({stage}) in {prep['wall_seconds']:.0f} s")
        return prep

    def artifacts_by_id(self, prep: dict[str, Any], ids: Sequence[int]) -> list[Any]:
        from tfx.types import artifact_utils

        from pipeline import lineage
        store = lineage.open_store(prep["metadata_path"])
        result = []
        for artifact in store.get_artifacts_by_id(list(ids)):
            artifact_type = store.get_artifact_types_by_id([artifact.type_id])[0]
            result.append(artifact_utils.deserialize_artifact(artifact_type, artifact))
        return result

    def prep_artifact(self, dataset: str, name: str) -> Any:
        """The prepared artifact `<node>.<key>` (e.g. "Transform.transform_graph"), from whichever preparation has
        it."""
        for stage in ("transform", "gbdt"):
            prep = self._preps.get((dataset, stage)) or read_cell(
                os.path.join(self.pipeline_dir(dataset), f"prep-{stage}.json"))
            if prep and name in prep["artifacts"]:
                return self.artifacts_by_id(prep, [prep["artifacts"][name]])[0]
        raise LookupError(f"{dataset}: no prepared artifact {name}")

    def resolve_inputs(self, dataset: str, node: Any, extra: Optional[dict[str, list[Any]]] = None
                       ) -> dict[str, list[Any]]:
        """The node's inputs from the prepared artifacts (by producing node and output key); `extra` overrides."""
        inputs = dict(extra or {})
        for key, channel in node.inputs.items():
            if key in inputs:
                continue
            name = f"{channel.producer_component_id}.{channel.output_key}"
            if name.endswith("ExampleGen.examples"):
                name = self.example_gen_name(dataset) + ".examples"
            inputs[key] = [self.prep_artifact(dataset, name)]
        return inputs

    def example_gen_name(self, dataset: str) -> str:
        prep = self.prepared(dataset, "transform")
        return next(k for k in prep["artifacts"] if k.endswith("ExampleGen.examples")).split(".")[0]

    # -- the test split ------------------------------------------------------------------------------------------

    def test_examples(self, dataset: str) -> tuple[list[bytes], Any]:
        if dataset not in self._tests:
            examples = self.prep_artifact(dataset, self.example_gen_name(dataset) + ".examples")
            self._tests[dataset] = read_labelled(split_files(examples, "test"))
        return self._tests[dataset]

    # -- training a cell -----------------------------------------------------------------------------------------

    def train(self, cell: Cell, trainer_overrides: Optional[dict] = None, score: bool = True) -> dict[str, Any]:
        row = cell.row
        if row.kind == "raw":
            return self.train_raw(cell)
        for stage in row.prep:
            self.prepared(cell.dataset, stage)
        config = self.config(cell.dataset, row, cell.seed, trainer_overrides)
        nodes = self.cell_nodes(cell, config)
        out_dir = cell.path(self.work_dir)[:-len(".json")]
        if os.path.exists(out_dir):
            shutil.rmtree(out_dir)  # a cell that died half-way
        try:
            if row.kind == "gbdt":
                result = self._gbdt(cell, nodes)
            elif row.kind == "search":
                result = self._search(cell, nodes, out_dir)
            elif row.kind == "retrain":
                result = self._retrain(cell, nodes, out_dir)
            else:
                result = self._trainer(cell, nodes, out_dir, row.kind, score)
        finally:
            cleanup_tf()
        result["code_fingerprint"] = config.code_fingerprint
        result["argv"] = self.argv(cell.dataset, row, cell.seed)
        if trainer_overrides:
            result["trainer_overrides"] = trainer_overrides
        if not self.keep_models:
            for model_dir in result.pop("_model_dirs", []):
                shutil.rmtree(model_dir, ignore_errors=True)
        result.pop("_model_dirs", None)
        return result

    def cell_nodes(self, cell: Cell, config: Any) -> dict[str, Any]:
        """The pipeline nodes whose settings a cell trains with. The GBDT row is the preparation's GbdtResidual
        (the ResFusion pipeline's, with out-of-fold logits; its full model is the GBDT alone)."""
        if cell.row.kind == "gbdt":
            config = self.config(cell.dataset, Row("prep", "prep", "residual", "resfusion"), None)
        return self.nodes(config)

    def current_settings(self, cell: Cell) -> Optional[dict[str, Any]]:
        """The settings a cell would train with now (None for raw rows or when its family is unavailable)."""
        if cell.row.kind == "raw":
            return None
        try:
            nodes = self.cell_nodes(cell, self.config(cell.dataset, cell.row, cell.seed))
        except NotImplementedError:
            return None
        return node_settings(nodes, cell.row.kind)

    def _trainer(self, cell: Cell, nodes: dict[str, Any], out_dir: str, kind: str, score: bool) -> dict[str, Any]:
        node = nodes.get("Trainer")
        if node is None:
            raise NotImplementedError(f"the {cell.row.model} pipeline has no Trainer")
        inputs = self.resolve_inputs(cell.dataset, node)
        outputs, seconds, export_seconds = execute(node, inputs, out_dir)
        model_run = outputs["model_run"][0].uri
        with open(os.path.join(model_run, "history.json")) as f:
            history = json.load(f)
        train_rows = self.prepared(cell.dataset, "transform")["train_rows"]
        if kind == "keras":
            val_auc = history["history"]["val_auc"]
            best = max(range(len(val_auc)), key=lambda i: val_auc[i])
            best_epoch, epochs_run, best_val_auc = best + 1, len(val_auc), val_auc[best]
            trained_epochs = epochs_run
        else:
            best_epoch, epochs_run, best_val_auc, trained_epochs = residual_epochs(history)
        result = {"kind": kind, "train_seconds": round(seconds - export_seconds, 1),
                  "export_seconds": round(export_seconds, 1), "best_epoch": best_epoch,
                  "epochs_run": epochs_run, "best_val_auc": best_val_auc, "train_rows": train_rows,
                  "train_examples_per_second": train_rows * trained_epochs / (seconds - export_seconds),
                  "settings": node_settings(nodes, kind)}
        model_dir = serving_dir(outputs["model"][0].uri)
        result["_model_dirs"] = [model_dir]
        if kind == "residual":
            result["stages"] = [{k: v for k, v in s.items() if k != "history"} for s in history.get("stages", [])]
            result["trees"] = sum(int(s.get("num_trees") or 0) for s in history.get("stages", [])
                                  if s.get("served", True))
            result["served_rounds"] = history.get("served_rounds")
            if history.get("all_stages_model"):
                result["_model_dirs"].append(os.path.join(model_run, history["all_stages_model"]))
            if cell.row.model == "resfusion":
                result["by_rounds"] = self.score_rounds(cell.dataset, model_run, model_dir, history)
        result["settings_digest"] = settings_digest(result["settings"])
        if score:
            result.update(self.score(cell.dataset, model_dir))
        return result

    def _search(self, cell: Cell, nodes: dict[str, Any], out_dir: str) -> dict[str, Any]:
        node = nodes["OptFusionSearch"]
        outputs, seconds, export_seconds = execute(node, self.resolve_inputs(cell.dataset, node), out_dir)
        seconds -= export_seconds
        with open(os.path.join(outputs["model_run"][0].uri, "search_result.json")) as f:
            summary = json.load(f)
        train_rows = self.prepared(cell.dataset, "transform")["train_rows"]
        supernet_dir = serving_dir(outputs["supernet"][0].uri)
        settings = node_settings(nodes, "search")
        result = {"kind": "search", "train_seconds": round(seconds, 1), "export_seconds": round(export_seconds, 1),
                  "best_epoch": summary["best_epoch"],
                  "epochs_run": summary["epochs_run"], "best_val_auc": summary["best_val_auc"],
                  "train_rows": train_rows,
                  "train_examples_per_second": train_rows * summary["epochs_run"] / seconds,
                  "fit_examples_per_second": summary.get("train_examples_per_second"),
                  "parameters": summary.get("supernet_parameters"), "ops": summary.get("ops"),
                  "kept_connections": summary.get("kept_connections"), "settings": settings,
                  "settings_digest": settings_digest(settings),
                  "architecture_dir": outputs["architecture"][0].uri}
        result.update(self.score(cell.dataset, supernet_dir))
        result["_model_dirs"] = [supernet_dir]
        return result

    def _retrain(self, cell: Cell, nodes: dict[str, Any], out_dir: str) -> dict[str, Any]:
        search_cell = Cell(cell.dataset, ROWS_BY_KEY[cell.row.source or "optfusion-supernet"], cell.seed)
        search = self._wait_for_search(cell, search_cell)
        if not os.path.isdir(search["architecture_dir"]):
            # The architecture folder holds the supernet's weights the retrain starts from; a work dir copied from
            # the committed cell results has the search's result but not its artifacts.
            self.log(f"  {cell.name()}: {search_cell.name()}'s architecture folder is gone; running the search again")
            os.remove(search_cell.path(self.work_dir))
            search = self._wait_for_search(cell, search_cell)
        search_settings = nodes["OptFusionSearch"].exec_properties["settings"]
        recorded = with_current_defaults(search["settings"])["OptFusionSearch"]["settings"]
        if json.loads(recorded) != json.loads(search_settings):
            raise ValueError(f"{cell.name()}: the seed's search was run with other search settings; re-run "
                             f"{search_cell.name()} (--rerun-stale)")
        node = nodes["OptFusionRetrain"]
        architecture = node.inputs["architecture"].type()
        architecture.uri = search["architecture_dir"]
        outputs, seconds, export_seconds = execute(
            node, self.resolve_inputs(cell.dataset, node, {"architecture": [architecture]}), out_dir)
        seconds -= export_seconds
        with open(os.path.join(outputs["model_run"][0].uri, "result.json")) as f:
            summary = json.load(f)
        train_rows = self.prepared(cell.dataset, "transform")["train_rows"]
        settings = node_settings(nodes, "retrain")
        trained = [h for h in summary["history"] if h["epoch"] > 0]
        result = {"kind": "retrain", "train_seconds": round(seconds, 1), "export_seconds": round(export_seconds, 1),
                  "best_epoch": summary["best_epoch"],
                  "epochs_run": summary["epochs_run"], "best_val_auc": summary["best_val_auc"],
                  "val_auc_before_training": next((h["val_auc"] for h in summary["history"] if h["epoch"] == 0), None),
                  "train_rows": train_rows,
                  "train_examples_per_second": train_rows * len(trained) / seconds,
                  "fit_examples_per_second": summary.get("train_examples_per_second"),
                  "search_seconds": search.get("train_seconds"),
                  "parameters": summary.get("parameters"), "ops": summary.get("ops"), "settings": settings,
                  "settings_digest": settings_digest(settings)}
        model_dir = serving_dir(outputs["model"][0].uri)
        result.update(self.score(cell.dataset, model_dir))
        result["_model_dirs"] = [model_dir]
        return result

    def _wait_for_search(self, cell: Cell, search_cell: Cell) -> dict[str, Any]:
        """The seed's search cell: read, or run here when missing, or awaited while another process runs it."""
        path = search_cell.path(self.work_dir)

        def run_search() -> None:
            self.log(f"  {cell.name()} needs the search of seed {cell.seed}: running it first")
            run_cell(0, search_cell, [search_cell], path, self.train,
                     {"done": 0, "failed": 0, "not_implemented": 0}, self.log)

        return produce_once(path, run_search, self.log,
                            f"  {cell.name()}: waiting for another process's {search_cell.name()}")

    def _gbdt(self, cell: Cell, nodes: dict[str, Any]) -> dict[str, Any]:
        prep = self.prepared(cell.dataset, "gbdt")
        model = self.prep_artifact(cell.dataset, "GbdtResidual.model")
        settings = node_settings(nodes, "gbdt")
        result = {"kind": "gbdt", "train_seconds": prep["seconds"].get("GbdtResidual"), "best_epoch": None,
                  "train_rows": self.prepared(cell.dataset, "transform")["train_rows"], "settings": settings,
                  "settings_digest": settings_digest(settings),
                  "note": "GbdtResidual of the preparation run: the full model and its fold models"}
        trees = gbdt_trees(model.uri)
        if trees is not None:
            result["trees"] = trees
        result.update(self.score(cell.dataset, serving_dir(model.uri)))
        result["_model_dirs"] = []  # the prepared GBDT is shared by the ResFusion cells: keep it
        return result

    def score(self, dataset: str, model_dir: str) -> dict[str, Any]:
        serialized, labels = self.test_examples(dataset)
        return score_saved_model(model_dir, serialized, labels)

    def score_rounds(self, dataset: str, model_run: str, model_dir: str, history: dict[str, Any]
                     ) -> dict[str, dict[str, Any]]:
        """Test AUC / logloss of every prefix K of a ResFusion fit (trainer.resfusion.export.logits_by_rounds), with
        the eval metrics and epochs the fit recorded for it."""

        from trainer import metrics
        from trainer.resfusion import export
        serialized, labels = self.test_examples(dataset)
        by_rounds = export.logits_by_rounds(model_run, model_dir, serialized)
        stages = {s.get("rounds", s.get("index")): s for s in history.get("stages", [])}
        first_deep = next((s for s in history.get("stages", []) if s.get("kind") == "nn"), {})
        out = {}
        for rounds, logits in sorted(by_rounds.items()):
            auc, logloss = metrics.auc(labels, logits), metrics.logloss(labels, logits)  # no clipping: from logits
            stage = stages.get(rounds, {})
            out[str(rounds)] = {"test_auc": auc, "test_logloss": logloss, "eval_auc": stage.get("eval_auc"),
                                "eval_logloss": stage.get("eval_logloss"), "served": stage.get("served"),
                                "best_epoch": first_deep.get("best_epoch") if rounds >= 1 else None}
        return out

    # -- raw samples: the whole pipeline ---------------------------------------------------------------------------

    def train_raw(self, cell: Cell) -> dict[str, Any]:
        from pipeline import lineage
        argv = self.argv(cell.dataset, cell.row, cell.seed, raw=True)
        command = [sys.executable, os.path.join(REPO_ROOT, "local_runner.py"), *argv]
        log_path = cell.path(self.work_dir)[:-len(".json")] + ".log"
        os.makedirs(os.path.dirname(log_path), exist_ok=True)
        started = time.time()
        with open(log_path, "w") as log:
            code = subprocess.run(command, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT, check=False).returncode
        seconds = time.time() - started
        if code != 0:
            with open(log_path) as f:
                tail = f.read()[-3000:]
            if "unrecognized arguments" in tail:
                raise NotImplementedError(f"local_runner.py does not take {' '.join(argv)}")
            raise RuntimeError(f"{' '.join(command)} failed ({code}); log {log_path}:\n{tail}")
        store = lineage.open_store(os.path.join(self.work_dir, cell.dataset, "raw", "metadata.sqlite"))
        trainer_node = {"optfusion-hard": "OptFusionRetrain"}.get(cell.row.model, "Trainer")
        execution = latest_execution(store, trainer_node)
        model = execution_output(store, execution, "model")
        run_dir = execution_output(store, execution, "model_run").uri
        example_gen = latest_execution(store, "RawLogExampleGen")
        examples = execution_output(store, example_gen, "examples")
        serialized, labels = read_labelled(sorted(glob.glob(os.path.join(examples.uri, "Split-test", "*"))))
        result = {"kind": "raw", "pipeline_seconds": round(seconds, 1), "argv": argv,
                  "train_seconds": producer_seconds(execution),
                  "execution_state": lineage.execution_states_by_node(store).get(trainer_node, [])[-1:]}
        summary_file = "result.json" if trainer_node == "OptFusionRetrain" else "history.json"
        with open(os.path.join(run_dir, summary_file)) as f:
            summary = json.load(f)
        if trainer_node == "OptFusionRetrain":
            result.update(best_epoch=summary["best_epoch"], epochs_run=summary["epochs_run"])
        elif cell.row.model == "deepfm":
            val_auc = summary["history"]["val_auc"]
            result.update(best_epoch=max(range(len(val_auc)), key=lambda i: val_auc[i]) + 1, epochs_run=len(val_auc))
        else:
            result["best_epoch"], result["epochs_run"], _, _ = residual_epochs(summary)
            result.update(served_selection(summary))
        result.update(score_saved_model(serving_dir(model.uri), serialized, labels))
        cleanup_tf()
        return result


# --- helpers on TFX objects ----------------------------------------------------------------------------------

def ancestors(node: Any) -> set[str]:
    seen: set[str] = set()
    stack = list(node.upstream_nodes)
    while stack:
        current = stack.pop()
        if current.id not in seen:
            seen.add(current.id)
            stack.extend(current.upstream_nodes)
    return seen


def latest_execution(store: Any, node_id: str) -> Any:
    from pipeline import lineage
    executions = [e for e in store.get_executions() if lineage.node_id(store, e) == node_id]
    if not executions:
        raise LookupError(f"no execution of {node_id}")
    return max(executions, key=lambda e: e.id)


def execution_output(store: Any, execution: Any, key: str) -> Any:
    from ml_metadata.proto import metadata_store_pb2
    events = [e for e in store.get_events_by_execution_ids([execution.id])
              if e.type == metadata_store_pb2.Event.OUTPUT and any(s.key == key for s in e.path.steps)]
    if not events:
        raise LookupError(f"execution {execution.id} has no output {key!r}")
    return store.get_artifacts_by_id([max(e.artifact_id for e in events)])[0]


def producer_seconds(execution: Any) -> float:
    return round((execution.last_update_time_since_epoch - execution.create_time_since_epoch) / 1000.0, 1)


def exec_properties(node: Any) -> dict[str, Any]:
    """A node's execution properties as its executor receives them (protos as JSON)."""
    from google.protobuf import message
    from tfx.utils import proto_utils
    properties = {}
    for key, value in node.exec_properties.items():
        if value is None:
            continue
        if isinstance(value, message.Message):
            value = proto_utils.proto_to_json(value)
        properties[key] = value
    return properties


def node_settings(nodes: dict[str, Any], kind: str) -> dict[str, Any]:
    """What a cell trains with: its training node(s)' execution properties without the code fingerprint."""
    names = {"search": ("OptFusionSearch",), "retrain": ("OptFusionSearch", "OptFusionRetrain"),
             "gbdt": ("GbdtResidual",)}.get(kind, ("Trainer",))
    settings = {}
    for name in names:
        properties = exec_properties(nodes[name])
        if "custom_config" in properties:
            custom = json.loads(properties["custom_config"])
            custom.pop("code_fingerprint", None)
            properties["custom_config"] = json.dumps(custom, sort_keys=True)
        properties.pop("code_fingerprint", None)
        settings[name] = properties
    return settings


class ExportTimer:
    """Measures the seconds spent exporting SavedModels while a step runs (so that training throughput leaves the
    export out): wraps the project's export functions for the duration; behaviour is unchanged."""

    TARGETS = (("trainer.export", "export_serving_model"), ("trainer.resfusion.export", "save_model"))

    def __init__(self) -> None:
        self.seconds = 0.0
        self._saved: list[tuple[Any, str, Any]] = []

    def __enter__(self) -> "ExportTimer":
        import importlib
        for module_name, name in self.TARGETS:
            module = importlib.import_module(module_name)
            original = getattr(module, name)

            def timed(*args, _original=original, **kwargs):
                started = time.perf_counter()
                try:
                    return _original(*args, **kwargs)
                finally:
                    self.seconds += time.perf_counter() - started

            self._saved.append((module, name, original))
            setattr(module, name, timed)
        return self

    def __exit__(self, *exc: Any) -> None:
        for module, name, original in reversed(self._saved):
            setattr(module, name, original)
        self._saved.clear()


class PauseClock:
    """Seconds this process spent stopped (SIGSTOP, e.g. to give the machine to a timing benchmark), measured by a
    daemon thread that ticks every TICK seconds and counts any gap beyond GAP as a pause: wall times minus paused()
    leave pauses out. (Heavy load delays a tick by far less than GAP.)"""

    TICK, GAP = 0.5, 5.0
    _total = 0.0
    _started = False

    @classmethod
    def start(cls) -> None:
        if cls._started:
            return
        import threading
        cls._started = True

        def tick() -> None:
            last = time.monotonic()
            while True:
                time.sleep(cls.TICK)
                now = time.monotonic()
                if now - last > cls.GAP:
                    cls._total += now - last - cls.TICK
                last = now

        threading.Thread(target=tick, name="pause-clock", daemon=True).start()

    @classmethod
    def paused(cls) -> float:
        return cls._total


def execute(node: Any, inputs: dict[str, list[Any]], out_dir: str) -> tuple[dict[str, list[Any]], float, float]:
    """Runs a pipeline node's executor in this process: outputs under out_dir/<key>.

    Returns the outputs, the step's wall seconds and the seconds of that spent exporting SavedModels."""
    from tfx.dsl.io import fileio
    outputs = {}
    for key, channel in node.outputs.items():
        artifact = channel.type()
        artifact.uri = os.path.join(out_dir, key)
        fileio.makedirs(artifact.uri)
        outputs[key] = [artifact]
    executor = node.executor_spec.executor_class()
    PauseClock.start()
    started, paused = time.perf_counter(), PauseClock.paused()
    with ExportTimer() as timer:
        executor.Do(inputs, outputs, exec_properties(node))
    return outputs, time.perf_counter() - started - (PauseClock.paused() - paused), timer.seconds


def serving_dir(model_uri: str) -> str:
    from tfx.utils import path_utils
    return path_utils.serving_model_path(model_uri)


def split_files(examples: Any, split: str) -> list[str]:
    from tfx.types import artifact_utils
    uri = artifact_utils.get_split_uri([examples], split)
    return sorted(f for f in glob.glob(os.path.join(uri, "*")) if not os.path.basename(f).startswith((".", "_")))


def _records(files: Sequence[str]):
    import tensorflow as tf
    for path in files:
        compression = "GZIP" if path.endswith(".gz") else ""
        yield from tf.data.TFRecordDataset([path], compression_type=compression).as_numpy_iterator()


def count_records(files: Sequence[str]) -> int:
    return sum(1 for _ in _records(files))


def read_labelled(files: Sequence[str]) -> tuple[list[bytes], Any]:
    """Serialized examples and their labels (int64 or float `label`)."""
    import numpy as np
    import tensorflow as tf
    serialized, labels = [], []
    for record in _records(files):
        feature = tf.train.Example.FromString(record).features.feature["label"]
        values = feature.float_list.value or feature.int64_list.value
        serialized.append(record)
        labels.append(float(values[0]))
    return serialized, np.array(labels, np.float32)


def score_saved_model(model_dir: str, serialized: list[bytes], labels: Any, batch_size: int = 2048) -> dict[str, Any]:
    """Test AUC and logloss of a SavedModel's serving_default on serialized examples, and its trainable weights."""
    import numpy as np
    import tensorflow as tf
    import tensorflow_decision_forests  # noqa: F401 - the TF-DF ops, for models with GBDT stages

    from trainer import metrics
    loaded = tf.saved_model.load(model_dir)
    serve = loaded.signatures["serving_default"]
    outputs = [serve(examples=tf.constant(serialized[i:i + batch_size]))["probability"].numpy().reshape([-1])
               for i in range(0, len(serialized), batch_size)]
    probabilities = np.concatenate(outputs)  # metrics clips them for the logloss only, as sklearn does
    auc, logloss = metrics.auc(labels, probabilities), metrics.logloss_of_probabilities(labels, probabilities)
    return {"test_auc": auc, "test_logloss": logloss, "test_rows": len(labels),
            "parameters_saved_model": saved_model_weights(model_dir)}


def saved_model_weights(model_dir: str) -> Optional[int]:
    """Model weights in a SavedModel's checkpoint: every variable except optimizer state and Keras metrics."""
    import numpy as np
    import tensorflow as tf
    prefix = os.path.join(model_dir, "variables", "variables")
    if not tf.io.gfile.glob(prefix + "*"):
        return None
    total = 0
    for name, shape in tf.train.list_variables(prefix):
        if ("OPTIMIZER_SLOT" in name or name.startswith(("optimizer/", "save_counter", "_CHECKPOINTABLE_OBJECT_GRAPH"))
                or "keras_api/metrics" in name or "/metrics/" in name or not name.endswith("VARIABLE_VALUE")):
            continue
        total += int(np.prod(shape)) if shape else 1
    return total


def gbdt_trees(model_uri: str) -> Optional[int]:
    try:
        from trainer.resfusion import gbdt
        return int(gbdt.GbdtModel.load(serving_dir(model_uri)).num_trees)
    except Exception:  # noqa: BLE001 - the tree count is informative only
        return None


def residual_epochs(history: dict[str, Any]) -> tuple[Optional[int], Optional[int], Optional[float], int]:
    """(best epoch of the first deep stage, its epochs run, the final eval AUC, epochs of every deep stage: an
    OptFusion stage's search epochs count too)."""
    stages = history.get("stages", [])
    deep = [s for s in stages if s.get("epochs_run")]
    first = deep[0] if deep else {}
    return (first.get("best_epoch"), first.get("epochs_run"), history.get("eval_auc"),
            sum(int(s.get("epochs_run") or 0) + int((s.get("search") or {}).get("epochs_run") or 0) for s in deep))


def served_selection(history: dict[str, Any]) -> dict[str, Any]:
    """What a ResFusion fit served and why (its history.json): {"served_rounds": K, "eval_by_rounds": [{"rounds",
    "eval_auc", "eval_logloss"} per prefix K = 0..fitted]}; empty for a comparator (no served K)."""
    if history.get("served_rounds") is None:
        return {}
    return {"served_rounds": history["served_rounds"],
            "eval_by_rounds": [{"rounds": s.get("rounds", s.get("index")), "eval_auc": s.get("eval_auc"),
                                "eval_logloss": s.get("eval_logloss")} for s in history.get("stages", [])]}


def served_selection_lines(cells: dict[str, dict[Any, dict[str, Any]]], rows: Sequence[Row]) -> list[str]:
    """One line per cell of `rows` that recorded its served K (served_selection): the K and the eval figures of
    every prefix it was chosen from."""
    lines = []
    for row in rows:
        for seed, result in sorted(cells.get(row.key, {}).items(), key=lambda item: str(item[0])):
            if result.get("served_rounds") is None or not result.get("eval_by_rounds"):
                continue
            figures = "; ".join(f"K = {e['rounds']}: {e['eval_auc']:.4f} / {e['eval_logloss']:.4f}"
                                for e in result["eval_by_rounds"])
            lines.append(f"- {row.label}" + ("" if seed is None else f", seed {seed}")
                         + f": served K = {result['served_rounds']}, the lowest eval logloss (eval AUC / logloss: "
                         f"{figures}).")
    return lines


def cleanup_tf() -> None:
    import tensorflow as tf
    tf.keras.backend.clear_session()
    gc.collect()


# --- the grid (fix 5) ----------------------------------------------------------------------------------------

def grid_cells(datasets: Sequence[str], models: Optional[Sequence[str]] = None) -> list[tuple[str, str, float, float]]:
    """(dataset, model, lr, l2) for every baseline whose rate comes from the grid on that dataset."""
    from pipeline import configs
    cells = []
    for dataset in datasets:
        for model in configs.BASELINES:
            if models and model not in models:
                continue
            if configs.reference_lr_l2(dataset, model) is not None:
                continue
            cells += [(dataset, model, lr, l2) for lr in configs.BASELINE_GRID["learning_rate"]
                      for l2 in configs.BASELINE_GRID["l2"]]
    return cells


def grid_path(work_dir: str, dataset: str, model: str, lr: float, l2: float) -> str:
    return os.path.join(work_dir, dataset, "grid", model, f"lr{lr:g}-l2{l2:g}.json")


def run_grid(runner: Runner, datasets: Sequence[str], models: Optional[Sequence[str]]) -> dict[str, int]:
    counts = {"skipped": 0, "done": 0, "failed": 0}
    todo = grid_cells(datasets, models)
    for index, (dataset, model, lr, l2) in enumerate(todo):
        path = grid_path(runner.work_dir, dataset, model, lr, l2)
        if os.path.exists(path):
            counts["skipped"] += 1
            continue
        runner.log(f"[grid {index + 1}/{len(todo)}] {dataset}/{model} lr {lr:g} l2 {l2:g} ...")
        row = Row(f"grid-{model}", model, "keras", model)
        cell = Cell(dataset, row, GRID_SEED)
        started = time.time()
        try:
            result = runner.train(cell, trainer_overrides={"learning_rate": lr, "l2_embedding": l2, "l2_dense": l2},
                                  score=False)  # the grid sees the eval split only
        except Exception:  # noqa: BLE001
            counts["failed"] += 1
            runner.log(traceback.format_exc()[-3000:])
            continue
        finally:
            shutil.rmtree(os.path.dirname(cell.path(runner.work_dir)), ignore_errors=True)  # cells/grid-<model>/
        write_json(path, {**result, "dataset": dataset, "model": model, "learning_rate": lr, "l2": l2,
                          "seed": GRID_SEED, "cell_seconds": round(time.time() - started, 1)})
        counts["done"] += 1
        runner.log(f"  eval AUC {result['best_val_auc']:.4f} (epoch {result['best_epoch']})")
    return counts


def grid_results(work_dir: str) -> dict[tuple[str, str], list[dict[str, Any]]]:
    results: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for path in sorted(glob.glob(os.path.join(work_dir, "*", "grid", "*", "*.json"))):
        cell = read_cell(path)
        results.setdefault((cell["dataset"], cell["model"]), []).append(cell)
    return results


def render_grid(work_dir: str) -> str:
    from pipeline import configs
    lines = [GRID_HEADING, "",
             "Baselines whose learning rate and L2 algorithms.md §1.8 (hyperparam.md) does not give — LR and FM on "
             "every dataset, every baseline on Frappe — take the point of `configs.BASELINE_GRID` with the best "
             f"eval-split AUC: one training run per point (seed {GRID_SEED}, batch 256, at most 5 epochs, stop at the "
             "first epoch whose eval AUC does not improve), on the OptFusion TFRecords' train/validation rows; the "
             "test split is not scored. Command: `python -m benchmarks.quality_table --grid`. The winners are "
             "recorded in `pipeline/configs.py` (`GRID_CHOICE_LR_L2`, `GRID_EVIDENCE`).", "",
             "| dataset | model | "
             + " | ".join(f"lr {lr:g}, L2 {l2:g}" for lr in configs.BASELINE_GRID["learning_rate"]
                          for l2 in configs.BASELINE_GRID["l2"]) + " | chosen | in configs.py |",
             "|---|---|" + "---:|" * (len(configs.BASELINE_GRID["learning_rate"]) * len(configs.BASELINE_GRID["l2"]))
             + "---|---|"]
    results = grid_results(work_dir)
    def order(item: tuple[tuple[str, str], Any]) -> tuple[int, int]:
        (dataset, model), _ = item
        return (DATASETS.index(dataset) if dataset in DATASETS else len(DATASETS),
                configs.BASELINES.index(model) if model in configs.BASELINES else len(configs.BASELINES))

    for (dataset, model), cells in sorted(results.items(), key=order):
        by_point = {(c["learning_rate"], c["l2"]): c for c in cells}
        row = []
        for lr in configs.BASELINE_GRID["learning_rate"]:
            for l2 in configs.BASELINE_GRID["l2"]:
                c = by_point.get((lr, l2))
                row.append(f"{c['best_val_auc']:.4f} ({c['best_epoch']})" if c else "missing")
        best = max(cells, key=lambda c: c["best_val_auc"])
        complete = len(by_point) == len(row)
        chosen = f"{best['learning_rate']:g} / {best['l2']:g}" + ("" if complete else " (partial)")
        recorded = configs.GRID_CHOICE_LR_L2.get(model, {}).get(dataset)
        in_configs = (f"{recorded[0]:g} / {recorded[1]:g}" if recorded else "–") + (
            "" if recorded == (best["learning_rate"], best["l2"]) else " (differs)")
        lines.append(f"| {dataset} | {model} | " + " | ".join(row) + f" | {chosen} | {in_configs} |")
    lines += ["", "Cells: best eval AUC (its epoch)."]
    return "\n".join(lines)


def print_grid_choice(work_dir: str) -> None:
    choice: dict[str, dict[str, tuple[float, float]]] = {}
    for (dataset, model), cells in grid_results(work_dir).items():
        best = max(cells, key=lambda c: c["best_val_auc"])
        choice.setdefault(model, {})[dataset] = (best["learning_rate"], best["l2"])
        print(f"{dataset}/{model}: lr {best['learning_rate']:g}, l2 {best['l2']:g} "
              f"(eval AUC {best['best_val_auc']:.4f} "
              f"of {len(cells)} points)")
    print("GRID_CHOICE_LR_L2 updates:", json.dumps(choice))


# --- rendering -----------------------------------------------------------------------------------------------

def load_cells(work_dir: str, dataset: str) -> dict[str, dict[Any, dict[str, Any]]]:
    """{row key: {seed (None: deterministic): cell result}} of every finished cell of a dataset."""
    cells: dict[str, dict[Any, dict[str, Any]]] = {}
    for path in glob.glob(os.path.join(work_dir, dataset, "cells", "*", "*.json")):
        result = read_cell(path)
        cells.setdefault(result["row"], {})[result["seed"]] = result
    for row in ALL_ROWS:
        if row.kind != "derived":
            continue
        for seed, source in cells.get(row.source, {}).items():
            prefix = (source.get("by_rounds") or {}).get(str(row.rounds))
            if prefix:
                cells.setdefault(row.key, {})[seed] = {
                    **prefix, "kind": "derived", "row": row.key, "seed": seed,
                    "note": f"prefix K = {row.rounds} of the {row.source} fit (its training time and weights)"}
    return cells


def auc_by_seed(cells: dict[str, dict[Any, dict[str, Any]]], key: str) -> dict[Any, float]:
    return {seed: c["test_auc"] for seed, c in cells.get(key, {}).items() if c.get("test_auc") is not None}


def _cell(values: Sequence[float], digits: int = 4) -> str:
    mean, se = mean_se(values)
    if math.isnan(mean):
        return "missing"
    return f"{mean:.{digits}f} ± {se:.{digits}f}" if not math.isnan(se) else f"{mean:.{digits}f}"


def _int_cell(values: Sequence[Optional[float]]) -> str:
    values = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if not values:
        return "–"
    mean = sum(values) / len(values)
    return f"{mean:,.0f}"


def parameters_text(results: Sequence[dict[str, Any]]) -> str:
    if not results:
        return "missing"
    r = results[0]
    parameters = r.get("parameters") or r.get("parameters_saved_model")
    trees = r.get("trees")
    if r.get("kind") == "gbdt":
        return f"{trees} trees" if trees is not None else "–"
    if r.get("kind") == "derived":
        return "(one fit: row above)"
    text = f"{parameters:,}" if parameters else "–"
    return text + (f" + {trees} trees" if trees else "")


def table_lines(cells: dict[str, dict[Any, dict[str, Any]]], rows: Sequence[Row], seeds: Sequence[int],
                dataset: str = "") -> list[str]:
    lines = ["| model | seeds | test AUC | test logloss | epochs to best | train examples/s | train s | parameters |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for row in rows:
        if dataset and not row.applies_to(dataset):
            lines.append(f"| {row.label} | – | not run: the same settings as the row above on {dataset} | | | | | |")
            continue
        results = list(cells.get(row.key, {}).values())
        expected = 1 if not row.per_seed else len(seeds)
        if not results:
            lines.append(f"| {row.label} | 0/{expected} | missing | missing | – | – | – | missing |")
            continue
        done = f"{len(results)}/{expected}" if row.per_seed else "once"
        best_epochs = [r.get("best_epoch") for r in results if r.get("best_epoch") is not None]
        lines.append(
            f"| {row.label} | {done} | {_cell([r['test_auc'] for r in results])} | "
            f"{_cell([r['test_logloss'] for r in results])} | {_cell(best_epochs, 1) if best_epochs else '–'} | "
            f"{_int_cell([r.get('train_examples_per_second') for r in results])} | "
            f"{_int_cell([r.get('train_seconds') for r in results])} | {parameters_text(results)} |")
    return lines


def summary_lines(work_dir: str, datasets: Sequence[str] = DATASETS) -> list[str]:
    """The README's results table: test AUC, mean ± standard error over seeds (how many), of SUMMARY_ROWS on each
    dataset, from the finished cells."""
    cells = {dataset: load_cells(work_dir, dataset) for dataset in datasets}
    lines = ["| model (test AUC) | " + " | ".join(datasets) + " |", "|---|" + "---:|" * len(datasets)]
    for key in SUMMARY_ROWS:
        values = {dataset: list(auc_by_seed(cells[dataset], key).values()) for dataset in datasets}
        lines.append(f"| {ROWS_BY_KEY[key].label} | " + " | ".join(
            f"{_cell(v)} (n={len(v)})" if v else "missing" for v in values.values()) + " |")
    return lines


def write_readme_summary(readme_path: str, lines: Sequence[str]) -> None:
    """Replaces what lies between README's SUMMARY_BEGIN and SUMMARY_END markers with `lines`.

    Raises:
        ValueError: the README lacks the markers.
    """
    with open(readme_path) as f:
        text = f.read()
    start, end = text.find(SUMMARY_BEGIN), text.find(SUMMARY_END)
    if start < 0 or end < start:
        raise ValueError(f"{readme_path} has no {SUMMARY_BEGIN!r} ... {SUMMARY_END!r} block")
    text = text[:start + len(SUMMARY_BEGIN)] + "\n" + "\n".join(lines) + "\n" + text[end:]
    with open(readme_path, "w") as f:
        f.write(text)


def best_baseline(cells: dict[str, dict[Any, dict[str, Any]]]) -> Optional[str]:
    means = {row.key: mean_se(list(auc_by_seed(cells, row.key).values()))[0] for row in BASELINE_ROWS}
    means = {k: v for k, v in means.items() if not math.isnan(v)}
    return max(means, key=means.get) if means else None


def claim(cells: dict[str, dict[Any, dict[str, Any]]], a: str, b: str) -> Claim:
    return paired_claim(ROWS_BY_KEY[a].label, auc_by_seed(cells, a), ROWS_BY_KEY[b].label, auc_by_seed(cells, b))


def claims_lines(cells: dict[str, dict[Any, dict[str, Any]]]) -> list[str]:
    pairs = [("optfusion-hard", "optfusion-supernet"), ("optfusion-hard", "optfusion-soft"),
             ("optfusion-soft", "optfusion-soft-reference"), ("optfusion-supernet-lazy", "optfusion-supernet"),
             ("optfusion-hard-lazy", "optfusion-hard")]
    baseline = best_baseline(cells)
    if baseline:
        pairs.append(("optfusion-hard", baseline))
    pairs += [("resfusion-k1", "gbdt"), ("resfusion-k1", "deepfm"), ("resfusion", "gbdt"), ("resfusion", "deepfm"),
              ("resfusion-k2", "resfusion-k1"), ("resfusion-k3", "resfusion-k2"), ("resfusion-k1", "nnres-gbdt"),
              ("resfusion-optfusion-hard-k1", "optfusion-hard"), ("resfusion-optfusion-hard-k1", "resfusion-k1"),
              ("resfusion-optfusion-hard-k1", "gbdt")]
    pairs += [("resfusion-k1", comparator) for comparator in ("gbdt-lr", "gbdt2dnn", "gbdt2deepfm", "gbdt+deepfm")]
    lines = []
    for a, b in pairs:
        if cells.get(a) and cells.get(b):
            lines.append("- " + claim(cells, a, b).text())
    return lines


@dataclasses.dataclass(frozen=True)
class Target:
    status: str  # PASS, FAIL, not shown, missing
    text: str

    def line(self) -> str:
        return f"- {self.status}: {self.text}"


REFERENCE_FRAPPE = {"optfusion-supernet": 0.9320, "optfusion-hard": 0.9327}
LIGHTGBM_FRAPPE = 0.965


def not_worse_status(c: Claim) -> str:
    """"A at least as good as B": FAIL when B is claimed better, PASS when the pairs could have shown it (two
    seeds or more) and did not, else "not shown" (one pair can never claim, so it proves nothing)."""
    if c.verdict == "B better":
        return "FAIL"
    return "PASS" if c.seeds >= 2 else "not shown"


def targets(all_cells: dict[str, dict[str, dict[Any, dict[str, Any]]]]) -> list[Target]:
    """The issue's targets, each PASS / FAIL / not shown (the paired rule cannot order them) / missing."""
    out: list[Target] = []
    frappe = all_cells.get("frappe", {})
    for key, reference in REFERENCE_FRAPPE.items():
        mean, se = mean_se(list(auc_by_seed(frappe, key).values()))
        label = ROWS_BY_KEY[key].label
        if math.isnan(mean):
            out.append(Target("missing", f"Frappe {label} ≥ reference {reference:.4f} − 0.005"))
        else:
            out.append(Target("PASS" if mean >= reference - 0.005 else "FAIL",
                              f"Frappe {label} test AUC {mean:.4f} (± {se:.4f}) vs the reference's "
                              f"{reference:.4f} − 0.005 = "
                              f"{reference - 0.005:.4f} (difference to the reference {mean - reference:+.4f})"))
    criteo = all_cells.get("criteo", {})
    if criteo.get("optfusion-hard") and criteo.get("optfusion-supernet"):
        c = claim(criteo, "optfusion-hard", "optfusion-supernet")
        status = not_worse_status(c)
        out.append(Target(status, f"Criteo OptFusion-Hard not below the supernet beyond the paired rule: {c.text()}"))
    else:
        out.append(Target("missing", "Criteo OptFusion-Hard not below the supernet beyond the paired rule"))
    baseline = best_baseline(frappe)
    if frappe.get("optfusion-hard") and baseline:
        c = claim(frappe, "optfusion-hard", baseline)
        status = not_worse_status(c)
        out.append(Target(status, f"Frappe OptFusion-Hard at least as good as the best baseline "
                                  f"({ROWS_BY_KEY[baseline].label}, by mean test AUC): {c.text()}"))
    else:
        out.append(Target("missing", "Frappe OptFusion-Hard at least as good as the best baseline"))
    # GBDTRes+DeepFM: K = 1 is the paper's GBDTRes+NN.
    fused = "resfusion-k1"
    if frappe.get(fused) and frappe.get("gbdt") and frappe.get("deepfm"):
        claims_ = [claim(frappe, fused, other) for other in ("gbdt", "deepfm")]
        verdicts = [c.verdict for c in claims_]
        status = ("PASS" if all(v == "A better" for v in verdicts) else
                  "FAIL" if any(v == "B better" for v in verdicts) else "not shown")
        out.append(Target(status, "Frappe GBDTRes+DeepFM (K=1) beats both the GBDT and DeepFM alone: "
                          + "; ".join(c.text() for c in claims_)))
    else:
        out.append(Target("missing", "Frappe GBDTRes+DeepFM (K=1) beats both the GBDT and DeepFM alone"))
    directions = []
    for dataset in ("criteo", "avazu"):
        cells = all_cells.get(dataset, {})
        if cells.get(fused) and cells.get("gbdt") and cells.get("deepfm"):
            diffs = [claim(cells, fused, other).difference for other in ("gbdt", "deepfm")]
            directions.append((dataset, diffs))
    if directions:
        ok = [d for d, diffs in directions if all(x > 0 for x in diffs)]
        out.append(Target("PASS" if ok else "FAIL", "GBDTRes+DeepFM (K=1) above both the GBDT and DeepFM (mean paired "
                          "difference) on another dataset: " + "; ".join(
                              f"{d}: {diffs[0]:+.4f} vs GBDT, {diffs[1]:+.4f} vs DeepFM" for d, diffs in directions)))
    else:
        out.append(Target("missing", "GBDTRes+DeepFM above both the GBDT and DeepFM on another dataset"))
    epochs = {key: mean_se([c["best_epoch"] for c in frappe.get(key, {}).values() if c.get("best_epoch")])[0]
              for key in (fused, "deepfm")}
    if not any(math.isnan(v) for v in epochs.values()):
        out.append(Target("PASS" if epochs[fused] < epochs["deepfm"] else "FAIL",
                          f"Frappe GBDTRes+DeepFM (K=1) reaches its best in fewer epochs than DeepFM alone: "
                          f"{epochs[fused]:.1f} vs {epochs['deepfm']:.1f} (mean best epoch of its deep stage)"))
    else:
        out.append(Target("missing", "Frappe GBDTRes+DeepFM reaches its best in fewer epochs than DeepFM alone"))
    gbdt = mean_se(list(auc_by_seed(frappe, "gbdt").values()))[0]
    if not math.isnan(gbdt):
        out.append(Target("PASS" if gbdt >= LIGHTGBM_FRAPPE - 0.01 else "FAIL",
                          f"Frappe TF-DF GBDT within 0.01 AUC of the tuned LightGBM ({LIGHTGBM_FRAPPE:.3f}): "
                          f"{gbdt:.4f} ({gbdt - LIGHTGBM_FRAPPE:+.4f}); LightGBM and TF-DF settings on these rows: "
                          f"section \"GBDT: TF-DF against LightGBM\""))
        fused_means = {key: mean_se(list(auc_by_seed(frappe, key).values()))[0]
                       for key in ("resfusion-k1", "resfusion-k2", "resfusion-k3", "resfusion")}
        fused_means = {k: v for k, v in fused_means.items() if not math.isnan(v)}
        if fused_means:
            best = max(fused_means, key=fused_means.get)
            out.append(Target("PASS" if fused_means[best] >= LIGHTGBM_FRAPPE else "FAIL",
                              f"Frappe fused model at or above the LightGBM's {LIGHTGBM_FRAPPE:.3f}: best "
                              f"{ROWS_BY_KEY[best].label} {fused_means[best]:.4f} "
                              f"({fused_means[best] - LIGHTGBM_FRAPPE:+.4f}); " + ", ".join(
                                  f"{ROWS_BY_KEY[k].label} {v:.4f}" for k, v in fused_means.items())))
    else:
        out.append(Target("missing",
                          f"Frappe TF-DF GBDT within 0.01 AUC of the tuned LightGBM ({LIGHTGBM_FRAPPE:.3f})"))
    return out


def timing_lines(all_cells: dict[str, dict[str, dict[Any, dict[str, Any]]]], work_dir: str,
                 datasets: Sequence[str]) -> list[str]:
    """Seconds per cell kind and dataset (whole cell: training, scoring, export), and an estimate for the missing
    cells from the mean of finished cells of the same row (else kind) on the same dataset."""
    lines = ["| dataset | row kind | cells done | mean s per cell | mean CPU s per cell | total s |",
             "|---|---|---:|---:|---:|---:|"]
    remaining = 0.0
    unknown = 0
    for dataset in datasets:
        cells = all_cells.get(dataset, {})
        by_kind: dict[str, list[float]] = {}
        cpu_by_kind: dict[str, list[float]] = {}
        for seeds in cells.values():
            for c in seeds.values():
                if c.get("kind") == "derived":
                    continue
                by_kind.setdefault(c.get("kind", "?"), []).append(c.get("cell_seconds") or 0.0)
                if c.get("cell_cpu_seconds"):
                    cpu_by_kind.setdefault(c.get("kind", "?"), []).append(c["cell_cpu_seconds"])
        for kind, seconds in sorted(by_kind.items()):
            cpu = cpu_by_kind.get(kind)
            lines.append(f"| {dataset} | {kind} | {len(seconds)} | {sum(seconds) / len(seconds):,.0f} | "
                         f"{sum(cpu) / len(cpu):,.0f} | " if cpu else f"| {dataset} | {kind} | {len(seconds)} | "
                         f"{sum(seconds) / len(seconds):,.0f} | – | ")
            lines[-1] += f"{sum(seconds):,.0f} |"
        for cell in plan([dataset], ALL_ROWS):
            if os.path.exists(cell.path(work_dir)):
                continue
            same_row = [c.get("cell_seconds") for c in cells.get(cell.row.key, {}).values() if c.get("cell_seconds")]
            same_kind = by_kind.get(cell.row.kind, [])
            pool = same_row or same_kind
            if pool:
                remaining += sum(pool) / len(pool)
            else:
                unknown += 1
    lines += ["", f"Estimate for the missing cells of {', '.join(datasets)}: {remaining / 3600:.1f} h from the mean of "
              f"finished cells of the same row (else kind)" + (f", plus {unknown} cell(s) of kinds not measured yet"
                                                                if unknown else "") + "."]
    return lines


def stale_cells(runner: Runner, cells: Iterable[Cell]) -> list[Cell]:
    stale = []
    for cell in cells:
        result = read_cell(cell.path(runner.work_dir))
        if result is None or cell.row.kind == "raw":
            continue
        current = runner.current_settings(cell)
        if current is None:
            continue
        if "settings" in result:
            stale_settings = (settings_digest(comparable(with_current_defaults(result["settings"])))
                              != settings_digest(comparable(current)))
        else:
            stale_settings = result.get("settings_digest") != settings_digest(current)
        if stale_settings:
            stale.append(cell)
    return stale


def comparable(settings: dict[str, Any]) -> dict[str, Any]:
    """Settings without the dotted path of the Trainer's run_fn: where the code lives, not what it trains with
    (`trainer.residual.run_fn` became `trainer.resfusion.run.run_fn` with no change of behaviour); and without the
    dataset name in a custom_config (the cell names its dataset; the Keras Trainer is told it since warm start)."""
    result = {}
    for node, properties in settings.items():
        properties = {k: v for k, v in properties.items() if k != "run_fn"}
        if "custom_config" in properties:
            custom = json.loads(properties["custom_config"])
            custom.pop("dataset", None)
            properties["custom_config"] = json.dumps(custom, sort_keys=True)
        result[node] = properties
    return result


def _defaults_sites() -> tuple[tuple[Optional[str], str, tuple[str, ...], Any], ...]:
    """Where a cell's recorded settings hold a settings dataclass's fields: (node, or None for every node; the node
    property, a JSON string; the path of keys inside it; the dataclass). The ResFusion Trainer records its own fits'
    settings in its custom_config."""
    from trainer.config import TrainConfig
    from trainer.optfusion.settings import RunSettings
    from trainer.resfusion.gbdt import GbdtParams
    return (("OptFusionSearch", "settings", ("run",), RunSettings),
            ("OptFusionRetrain", "settings", ("run",), RunSettings),
            (None, "custom_config", ("train",), TrainConfig),
            (None, "custom_config", ("resfusion", "gbdt"), GbdtParams),
            (None, "custom_config", ("resfusion", "optfusion", "search", "run"), RunSettings),
            ("GbdtResidual", "gbdt_params", (), GbdtParams))


def _fill_defaults(tree: Any, path: Sequence[str], defaults: dict[str, Any]) -> Optional[dict[str, Any]]:
    """`tree` with `defaults` under the keys the dict at `path` lacks; None when there is no dict at `path`."""
    if not path:
        return {**defaults, **tree} if isinstance(tree, dict) else None
    filled = _fill_defaults(tree.get(path[0]) if isinstance(tree, dict) else None, path[1:], defaults)
    return None if filled is None else {**tree, path[0]: filled}


def with_current_defaults(settings: dict[str, Any]) -> dict[str, Any]:
    """Recorded cell settings with every GbdtParams, TrainConfig and OptFusion RunSettings field added since the cell
    ran set to its default, wherever the settings record one of them (_defaults_sites).

    A field is added with the default that keeps the earlier behaviour (`use_hessian_gain=False` is YDF's own
    default, `warm_start=False` trains from fresh weights), so a cell trained before it was added is not stale for
    its lack; any recorded value is kept.
    """
    for node, key, path, settings_class in _defaults_sites():
        defaults = {f.name: f.default for f in dataclasses.fields(settings_class)}
        for name, properties in settings.items():
            if node not in (None, name) or not properties.get(key):
                continue
            filled = _fill_defaults(json.loads(properties[key]), path, defaults)
            if filled is not None:
                settings = {**settings, name: {**properties, key: json.dumps(filled, sort_keys=True)}}
    return settings


def render(work_dir: str, datasets: Sequence[str], command: str, stale: Sequence[Cell] = (),
           seeds: Optional[Sequence[int]] = None, rows: Sequence[Row] = ALL_ROWS) -> str:
    """The section, from every finished cell of `datasets`. seeds: the seeds expected per dataset (default
    SEEDS); rows: the rows shown (default all)."""
    from pipeline import configs

    def expected(dataset: str) -> Sequence[int]:
        return list(seeds) if seeds else SEEDS.get(dataset, ())

    all_cells = {dataset: load_cells(work_dir, dataset) for dataset in datasets}
    lines = [SECTION_HEADING, "",
             f"- Rendered: {datetime.datetime.utcnow():%Y-%m-%d %H:%M} UTC from the cell results under `{work_dir}` "
             f"(machine: nproc {os.cpu_count()}, {platform.platform()}; other work on the machine slows the timings).",
             f"- Command: `{command}`; a re-run skips finished cells and re-renders this section.",
             "- Data: `shared/data/optfusion_tfrecords/<dataset>`, the reference's own rows, ids and 8:1:1 split "
             "(`--dataset tfrecord`); the test split is the reference's test rows, never used for training, early "
             "stopping or choices. One pipeline run per dataset produces the transformed examples (and the stage-0 "
             "GBDT of GbdtResidual); every cell then runs the pipeline's own training step (stock Trainer with "
             "`trainer.train.run_fn` / `trainer.resfusion.run.run_fn`, OptFusionSearch, OptFusionRetrain) "
             "in-process on "
             "those artifacts, with the settings `local_runner.py --dataset tfrecord --model <m> --seed <s>` builds "
             "(the folder's meta.json gives its settings layout).",
             "- Settings: batch 256, at most 5 epochs, stop at the first epoch whose eval AUC does not improve, best "
             "eval epoch kept. Baselines: 3 D-wide blocks (D = fields × 40), learning rate and L2 of algorithms.md "
             "§1.8 where it gives them, else the grid's choice on the validation split (section below). OptFusion: "
             "§1.8's per-dataset settings (Frappe: Avazu's, as the reference's Frappe run). OptFusion-Soft runs at "
             "the Hard row's rate (the default) and at retrain.sh's (1e-7 on Avazu/Frappe; on Criteo it is the Hard "
             "rate, so that row repeats the other). ResFusion: TF-DF GBDT (GbdtResidual, its stage-0 model and "
             "out-of-fold logits trained once per dataset) and DeepFM with the DeepFM baseline's settings.",
             "- Seeds are training seeds (initialisation, shuffling, the Trainer-side GBDT stages): "
             + "; ".join(f"{d} {', '.join(map(str, expected(d)))}" for d in datasets)
             + ". Deterministic rows (the stage-0 GBDT) once. Cells: mean ± standard error over seeds.",
             "- Columns: test AUC and logloss of the exported SavedModel's `serving_default` on the test rows; epochs "
             "to best: the best eval epoch (ResFusion: of its first deep stage); train examples/s: training rows × "
             "epochs trained / wall seconds of the training step (per-epoch validation and export included; "
             "ResFusion: its Trainer only, the stage-0 GBDT is trained once in GbdtResidual); parameters: trainable "
             "weights (OptFusion search: the whole supernet).",
             f"- Claims: A is called better than B only when the mean paired difference of test AUC (same seed, same "
             f"test rows) exceeds twice its standard error over seeds and {MIN_AUC_DIFFERENCE}; otherwise 'no "
             "difference shown'.", ""]
    if stale:
        lines += [f"- {len(stale)} cell(s) were trained with settings that differ from the current presets "
                  f"(re-run with `--rerun-stale`): " + ", ".join(c.name() for c in stale[:20]), ""]
    for dataset in datasets:
        cells = all_cells[dataset]
        meta_path = os.path.join(TFRECORD_DIR, dataset, "meta.json")
        described = dataset
        if os.path.exists(meta_path):
            with open(meta_path) as f:
                meta = json.load(f)
            splits = meta.get("splits", {})
            described += (f" (optfusion_tfrecords/{dataset}: {meta.get('fields')} fields, train / validation / test "
                          + " / ".join(f"{splits.get(s, {}).get('rows', 0):,}" for s in ("train", "validation", "test"))
                          + " rows)")
        lines += [f"### {described}", ""]
        lines += table_lines(cells, [r for r in rows if r.kind != "raw"], expected(dataset), dataset)
        raw_rows = [r for r in rows if r.kind == "raw"]
        if raw_rows:
            lines += ["", f"Raw sample `shared/data/{dataset}` through the whole pipeline (`local_runner.py --dataset "
                  f"{dataset}`): its own 8:1:1 split of the non-test files, so a different, smaller test set — "
                      "indicative only, not comparable with the rows above; one training seed unless `--seeds` "
                      "says otherwise.", ""]
            lines += table_lines(cells, raw_rows, list(seeds) if seeds else RAW_SEEDS, dataset)
            selection = served_selection_lines(cells, raw_rows)
            lines += ["", *selection] if selection else []
        claim_lines = claims_lines(cells)
        if claim_lines:
            lines += ["", "Paired comparisons (test AUC, A − B):", "", *claim_lines]
        lines.append("")
    lines += ["### Targets", "", *[t.line() for t in targets(all_cells)], "",
              "### Time per cell", "", *timing_lines(all_cells, work_dir, datasets), ""]
    lines += ["Learning rate and L2 of the baselines (`pipeline/configs.py`): " + "; ".join(
        f"{dataset}: " + ", ".join(
            f"{row.label} {configs.learning_rate_and_l2(dataset, row.model)[0]:g}/"
            f"{configs.learning_rate_and_l2(dataset, row.model)[1]:g}" for row in BASELINE_ROWS)
        for dataset in datasets if dataset in ("criteo", "avazu", "frappe")) + ".", ""]
    return "\n".join(lines)


# --- command line ------------------------------------------------------------------------------------------------

def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS))
    parser.add_argument("--models", nargs="+", help=f"row keys (default: all): {', '.join(ROWS_BY_KEY)}")
    parser.add_argument("--seeds", nargs="+", type=int, help="default: 5 on Frappe, 3 on Criteo and Avazu")
    parser.add_argument("--work-dir", default=DEFAULT_WORK_DIR)
    parser.add_argument("--preset", default="small", choices=("small", "test"))
    parser.add_argument("--doc", default=DEFAULT_DOC)
    parser.add_argument("--no-doc", action="store_true", help="print the section, do not write docs/benchmarks.md")
    parser.add_argument("--render", action="store_true", help="only render the section from the finished cells")
    parser.add_argument("--grid", action="store_true", help="run the baseline grid (fix 5) instead of the table")
    parser.add_argument("--no-raw", action="store_true", help="leave out the raw-sample rows")
    parser.add_argument("--rerun-stale", action="store_true",
                        help="re-run finished cells whose settings differ from the current presets")
    parser.add_argument("--keep-models", action="store_true", help="keep each cell's exported SavedModels")
    parser.add_argument("--quick", action="store_true",
                        help=f"smoke run: a tiny generated TFRecord folder, test preset, seed 2024, rows "
                             f"{', '.join(QUICK_ROWS)}; no doc")
    args = parser.parse_args(argv)
    if args.models:
        unknown = set(args.models) - set(ROWS_BY_KEY)
        if unknown:
            parser.error(f"unknown rows {sorted(unknown)}; choose from {', '.join(ROWS_BY_KEY)}")
    if args.quick:
        args.datasets, args.seeds, args.preset, args.no_doc = ["quick"], [2024], "test", True
        args.models = args.models or list(QUICK_ROWS)
        if args.work_dir == DEFAULT_WORK_DIR:
            args.work_dir = DEFAULT_WORK_DIR + "_quick"
    return args


def main(argv: Optional[Sequence[str]] = None) -> dict[str, int]:
    args = parse_args(argv)
    command = "python -m benchmarks.quality_table " + " ".join(sys.argv[1:] if argv is None else argv)

    def log(message: str) -> None:
        print(f"{datetime.datetime.now():%H:%M:%S} {message}", flush=True)

    runner = Runner(args.work_dir, args.preset, args.keep_models, log=log)
    counts: dict[str, int] = {}
    if args.grid:
        counts = run_grid(runner, args.datasets, args.models)
        print_grid_choice(args.work_dir)
        section = render_grid(args.work_dir)
        print(section)
        if not args.no_doc:
            report.write_section(args.doc, section)
        return counts
    rows = [ROWS_BY_KEY[k] for k in args.models] if args.models else list(ALL_ROWS)
    if args.no_raw:
        rows = [r for r in rows if r.kind != "raw"]
    cells = plan(args.datasets, rows, args.seeds)
    stale = stale_cells(runner, cells) if not args.quick else []
    if stale:
        log(f"{len(stale)} finished cell(s) have other settings than the current presets: "
            + ", ".join(c.name() for c in stale) + ("; re-running them" if args.rerun_stale else
                                                    " (kept; --rerun-stale re-runs them)"))
        if args.rerun_stale:
            for cell in stale:
                os.remove(cell.path(args.work_dir))
            stale = []
    if not args.render:
        counts = run_cells(cells, args.work_dir, runner.train, log=log)
        log(f"cells: {counts}")
    # The section shows every dataset (missing cells as missing), whatever part this run trained.
    datasets = args.datasets if args.quick else list(DATASETS) + [d for d in args.datasets if d not in DATASETS]
    section = render(args.work_dir, datasets, command, stale, seeds=args.seeds if args.quick else None,
                     rows=rows if args.quick else ALL_ROWS)
    print(section)
    if not args.no_doc:
        report.write_section(args.doc, section)
        report.write_section(args.doc, render_grid(args.work_dir))
        if not args.quick:
            write_readme_summary(README, summary_lines(args.work_dir))
    return counts


if __name__ == "__main__":
    main()
