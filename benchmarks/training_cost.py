"""Training cost curves (issue 15): examples/s and peak memory of each training step at growing data sizes.

    TF_USE_LEGACY_KERAS=1 python -m benchmarks.training_cost --rows 10000 100000 1000000
    TF_USE_LEGACY_KERAS=1 python -m benchmarks.training_cost --rows 2000 --steps 4 --gbdt-trees 5 --no-doc  # quick
    make benchmark-training

For each size (rows of a generated Criteo-layout log, data_gen.synthetic_criteo):

1. Preparation, one child process: the project's pipeline (local_runner's config for `--model resfusion --preset
   test`, create_pipeline, LocalDagRunner, a partial run up to Transform) under --work-dir/rows_N: RawLogExampleGen
   -> StatisticsGen -> SchemaGen -> GbdtResidual -> Transform. GbdtResidual runs with the test preset (20 trees of
   depth 4, 2 folds) only to give the residual stage its offset; its time is not a training cost reported here. The
   Transform output (ids, plus the GBDT's logit, which the other steps do not read) feeds every deep step; the raw
   ExampleGen output feeds the GBDT. The preparation is cached by TFX: a re-run reuses it. Above --gbdt-max-rows
   (default 100k) the preparation is `--model deepfm` (no GbdtResidual: it took 7 min at 100k rows here, three TF-DF
   fits and a Beam scoring pass) and the residual stage trains on the raw train split with a zero offset (the
   offset's values do not change the stage's cost); the GBDT's own fit reads the raw rows, there at every size.
2. One fresh child process per training step, on those artifacts, with the --preset trainer settings ("small":
   the shared samples' settings at Criteo's dimensions, embedding 40 per field, batch 256):
   - deepfm: the Keras Trainer's model (trainer.models.registry, compiled by trainer.contract as trainer.train's
     fit_model does) on the tfxio input pipeline of the transformed train split (repeated), Keras fit;
   - search: the OptFusion search supernet (trainer.optfusion.training.build_supernet) and its TrainStep
     (optim.make_train_step: three Adam groups, the dataset's coupled L2, dense embedding update) on the same input;
   - retrain: the Hard retrain network of one fixed architecture (benchmarks.optfusion_throughput.hard_architecture,
     all connections), from scratch, two Adam groups;
   - gbdt: TF-DF GBDT (trainer.resfusion.gbdt.GbdtLearner, the preset's parameters) fitted on every raw training row
     with the eval split as validation, as GbdtResidual's executor fits its full model; --gbdt-trees trees (default
     20), early stopping unable to end it sooner (look-ahead = trees), so sizes compare;
   - residual: ResFusion's first deep stage (trainer.resfusion.residual: SplitRows of GbdtResidual's train split,
     ids through the Transform graph cached once, DeepFM with the GBDT's out-of-fold logit as a fixed offset);
   - gbdt_vocab: the GBDT's cost by dictionary size: for each --gbdt-vocab-sweep value of max_vocab_count (the most
     frequent values kept per categorical field), fits of 1 and SWEEP_TREES trees on the gbdt step's rows, so the
     cost per tree (their difference) and the fixed cost (reading the rows into TF-DF, its dataspec, tracing)
     separate. The profile behind it (docs/scaling.md): most of a tree's cost is in the categorical fields, and set by
     the size of their dictionaries more than by the rows.

Measured in the child: the deep steps run a fixed number of training steps (--steps overrides the per-step
defaults in FIXED_STEPS) after warm-up steps (tracing, first touch of the optimiser's slots); examples/s and seconds
per step are over the measured steps only (perf_counter; Keras steps are timed from the end of the last warm-up
batch to the end of the last batch). Validation, checkpoints and export are left out. The GBDT's step is its fit:
training rows / fit seconds, the fit including TF-DF's read of the rows into memory and the per-tree validation.
Set-up: the child's seconds after its imports outside the measured span (data passes, model build, warm-up).
Memory: the child's RSS after its imports (TensorFlow, TFX, TF-DF for the GBDT) and its peak RSS over the whole
child (psutil, every 0.1 s); "over imports" is their difference. MB means MiB.

Results go to <work-dir>/results.json after each step; --keep-results starts from it and replaces only what the
run measures again (e.g. one step at one size). Output: tables on stdout and the section "## Training cost curves
(issue 15)" of docs/benchmarks.md (replaced if present; other sections are left as they are): per size and step, ids
(Transform's vocabulary), parameters, examples/s, seconds per step, peak RSS; and how time per step and memory grow
from one size to the next.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from typing import Any, Optional, Sequence

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from benchmarks import optfusion_throughput as throughput  # noqa: E402 - after the path and environment set-up
from benchmarks import report  # noqa: E402

SECTION_HEADING = "## Training cost curves (issue 15)"
DEFAULT_DOC = throughput.DEFAULT_DOC
DEFAULT_WORK_DIR = os.path.join(REPO_ROOT, "tfx_output", "bench_training")
DEFAULT_ROWS = (10_000, 100_000, 1_000_000)
DATASET = "criteo"  # the generated logs' layout
PIPELINE_NAME = "training_cost_bench"
# The preparation's own preset: GbdtResidual only has to give the residual stage an offset, quickly.
PREP_PRESET = "test"
STEPS = ("deepfm", "search", "retrain", "gbdt", "residual", "gbdt_vocab")
STEP_LABELS = {"deepfm": "DeepFM (Keras Trainer)", "search": "OptFusion search", "retrain": "OptFusion Hard retrain",
               "gbdt": "TF-DF GBDT", "residual": "Residual stage (DeepFM on the GBDT offset)",
               "gbdt_vocab": "TF-DF GBDT by dictionary size"}
SWEEP = "gbdt_vocab"  # its own table, not a row of the steps' tables
# Measured training steps of the deep steps (batch: the preset's): about a minute each on 2 CPU cores at Criteo's
# dimensions (the search's step is about 3 s there, DeepFM's a tenth of that).
FIXED_STEPS = {"deepfm": 200, "search": 16, "retrain": 40, "residual": 200}
WARMUP_STEPS = {"deepfm": 5, "search": 2, "retrain": 3, "residual": 5}
# Trees of the GBDT fit (the preset's depth): few, so that the fit on 800k training rows takes minutes here.
DEFAULT_GBDT_TREES = 20
# Above this many rows the preparation leaves GbdtResidual out (`--model deepfm`): it took 7 min at 100k rows here
# (three TF-DF fits and a Beam scoring pass). The residual stage then trains on a zero offset.
DEFAULT_GBDT_MAX_ROWS = 100_000
# The gbdt_vocab step: max_vocab_count values (raw logs' default: 2,000), each fitted with 1 and SWEEP_TREES trees.
DEFAULT_VOCAB_SWEEP = (64, 250, 1000, 2000)
SWEEP_TREES = 4
INGESTION_NODES = ("RawLogExampleGen", "StatisticsGen", "SchemaGen", "GbdtResidual", "Transform")
_MB = 2 ** 20


# --- preparation (child) ----------------------------------------------------------------------------------------

def prepare(work_dir: str, rows: int, with_gbdt: bool = True) -> dict[str, Any]:
    """Runs the pipeline up to Transform (module docstring, 1.) in this process; returns the artifacts' uris, the
    generated log's size (MB) and each node's seconds (MLMD, registration to publication; None when cached).
    with_gbdt=False: `--model deepfm`, no GbdtResidual (residual_examples_uri None)."""
    from tfx import v1 as tfx
    from tfx.orchestration import pipeline as tfx_pipeline

    import local_runner
    from benchmarks.pipeline_scaling import _mlmd_timings  # pylint: disable=protected-access
    from pipeline import lineage
    from pipeline.pipeline import create_pipeline

    config = local_runner.build_config(local_runner.parse_args(
        ["--output-dir", work_dir, "--rows", str(rows), "--model", "resfusion" if with_gbdt else "deepfm",
         "--preset", PREP_PRESET,
         "--pipeline-name", PIPELINE_NAME]))
    started = time.perf_counter()
    tfx.orchestration.LocalDagRunner().run(create_pipeline(config),
                                           run_options=tfx_pipeline.RunOptions(to_nodes=["Transform"]))
    wall = time.perf_counter() - started
    metadata_path = str(config.metadata_path)  # a local run's SQLite file: never None
    store = lineage.open_store(metadata_path)
    raw = lineage.latest_output(store, "RawLogExampleGen", "examples")
    transformed = lineage.latest_output(store, "Transform", "transformed_examples")
    timings, _ = _mlmd_timings(metadata_path)
    seconds = {node: (t["end"] - t["start"] if t["state"] == "COMPLETE" else None)
               for node, t in timings.items() if node in INGESTION_NODES}
    # A re-run is cached by TFX (its executions took no time): the nodes keep the seconds of the run that made them.
    record = os.path.join(work_dir, "prep_seconds.json")
    if os.path.exists(record):
        with open(record) as f:
            earlier = json.load(f)
        seconds = {node: value if value is not None else earlier.get(node) for node, value in seconds.items()}
    with open(record, "w") as f:
        json.dump(seconds, f)
    data_file = os.path.join(config.dataset.input_base, config.dataset.file_pattern)
    return {"rows": rows, "input_mb": os.path.getsize(data_file) / _MB, "wall_seconds": wall, "node_seconds": seconds,
            "raw_examples_uri": raw.uri, "raw_split_names": raw.properties["split_names"].string_value,
            "residual_examples_uri": (lineage.latest_output(store, "GbdtResidual", "residual_examples").uri
                                      if with_gbdt else None),
            "examples_uri": transformed.uri, "split_names": transformed.properties["split_names"].string_value,
            "transform_uri": lineage.latest_output(store, "Transform", "transform_graph").uri}


# --- measurement helpers (child) --------------------------------------------------------------------------------

def split_files(uri: str, split_names: str, split: str) -> list[str]:
    """The data files of split `split` of the Examples artifact at `uri` (GbdtResidual's executor's rule)."""
    from tfx.types import standard_artifacts

    from components.gbdt_residual import executor
    examples = standard_artifacts.Examples()
    examples.uri, examples.split_names = uri, split_names
    return executor.split_files(examples, split)


def timed_fit(model: Any, dataset: Any, warmup: int, steps: int) -> float:
    """Keras fit of `warmup` + `steps` batches of `dataset` (repeated); seconds of the last `steps` (from the end of
    the last warm-up batch to the end of the last batch: a batch hook makes Keras wait for each step's result)."""
    import tensorflow as tf

    marks: dict[str, float] = {}

    class Clock(tf.keras.callbacks.Callback):
        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            if batch == warmup - 1:
                marks["start"] = time.perf_counter()
            if batch == warmup + steps - 1:
                marks["end"] = time.perf_counter()

    model.fit(dataset, steps_per_epoch=warmup + steps, epochs=1, verbose=0, callbacks=[Clock()])
    return marks["end"] - marks["start"]


def timed_train_step(step: Any, dataset: Any, warmup: int, steps: int) -> tuple[float, int]:
    """An OptFusion TrainStep: `warmup` steps, then (seconds, examples) of `steps` more, each run in one call (the
    loop stays in the tf.function, as fit.fit's calls of steps_per_execution steps do)."""
    iterator = iter(step.strategy.experimental_distribute_dataset(dataset))
    step.run(iterator, warmup)
    start = time.perf_counter()
    done, _, examples = step.run(iterator, steps)
    seconds = time.perf_counter() - start
    if done != steps:
        raise RuntimeError(f"the input ended after {done} of {steps} steps")
    return seconds, examples


def _transform_input(data: dict[str, Any]) -> tuple[Any, Any, int, int]:
    """(DataSource, TFTransformOutput, fields, ids) of the prepared Transform output."""
    import tensorflow_transform as tft

    from trainer import data as trainer_data
    source = throughput._data_source(data)  # pylint: disable=protected-access
    tft_output = tft.TFTransformOutput(source.transform_graph_path)
    fields, table_size = trainer_data.id_space(tft_output)
    return source, tft_output, fields, table_size


def _train_batches(source: Any, tft_output: Any, batch_size: int, seed: int) -> Any:
    """The steps' training input: trainer.data.make_dataset over the train split (shuffled), repeated, prefetched."""
    import tensorflow as tf

    from trainer import data as trainer_data
    return trainer_data.make_dataset(source.train_files, source.data_accessor, tft_output, batch_size, shuffle=True,
                                     seed=seed).repeat().prefetch(tf.data.AUTOTUNE)


def _deep_result(model: Any, table_size: int, batch: int, steps: int, seconds: float, **extra: Any) -> dict[str, Any]:
    return {"ids": table_size, "parameters": int(model.count_params()), "batch": batch, "steps": steps,
            "examples": batch * steps, "seconds": seconds, "examples_per_second": batch * steps / seconds,
            "seconds_per_step": seconds / steps, **extra}


# --- the steps (child) ------------------------------------------------------------------------------------------

def child_deepfm(data: dict[str, Any], preset: str, steps: int, warmup: int) -> dict[str, Any]:
    """DeepFM as the Keras Trainer builds and compiles it (trainer.train.fit_model), fixed steps."""
    import tensorflow as tf

    from pipeline import configs
    from trainer import contract
    from trainer.models import registry
    config = configs.trainer_preset(DATASET, "deepfm", preset)
    source, tft_output, fields, table_size = _transform_input(data)
    tf.keras.utils.set_random_seed(config.train.seed)
    model = registry.build_model(config.model, config.train, fields, table_size)
    contract.compile_model(model, config.train.learning_rate)
    seconds = timed_fit(model, _train_batches(source, tft_output, config.train.batch_size, config.train.seed),
                        warmup, steps)
    return _deep_result(model, table_size, config.train.batch_size, steps, seconds)


def child_optfusion(data: dict[str, Any], preset: str, steps: int, warmup: int, retrain: bool) -> dict[str, Any]:
    """The OptFusion search's supernet, or the Hard retrain of hard_architecture() from scratch, with the dataset's
    settings (pipeline.optfusion_steps.preset) and the TrainStep their executors run, fixed steps."""
    import tensorflow as tf

    from pipeline import optfusion_steps
    from trainer.optfusion import network, optim, training
    options = optfusion_steps.preset(DATASET, preset)
    search, run = options.search, options.search.run
    source, tft_output, fields, table_size = _transform_input(data)
    config = training.SupernetConfig(table_size=table_size, num_fields=fields, embedding_dim=search.embedding_dim,
                                     num_blocks=search.num_blocks, beta_init=search.beta_init,
                                     emb_init_std=search.emb_init_std)
    tf.keras.utils.set_random_seed(run.seed)
    with optim.precision_policy(run.precision):
        if retrain:
            model, _ = training.build_retrain(throughput.hard_architecture(), config, "hard")
        else:
            model, _ = training.build_supernet(config)
    groups = network.variable_groups(model)
    if retrain:
        groups, settings = {"emb": groups["emb"], "nn": groups["nn"]}, options.retrain("hard").groups()
    else:
        settings = search.groups()
    step = optim.make_train_step(model, groups, settings, l2_mode=run.l2_mode, precision=run.precision,
                                 jit_compile=run.jit_compile, embedding_update=run.embedding_update)
    seconds, examples = timed_train_step(step, _train_batches(source, tft_output, run.batch_size, run.seed),
                                         warmup, steps)
    return _deep_result(model, table_size, run.batch_size, steps, seconds, examples=examples,
                        examples_per_second=examples / seconds)


def _gbdt_setup(data: dict[str, Any], preset: str) -> tuple[Any, Any, list[str], list[str]]:
    """The gbdt steps' (GbdtParams of the preset, GbdtInputs, train files, eval files) from the raw ExampleGen
    output."""
    from pipeline import configs, resfusion_steps
    from trainer.resfusion import gbdt
    from transform import features
    train_config = configs.trainer_preset(DATASET, "resfusion", preset).train
    params = resfusion_steps.default_options(DATASET, preset, train_config).gbdt
    train_files = split_files(data["raw_examples_uri"], data["raw_split_names"], "train")
    eval_files = split_files(data["raw_examples_uri"], data["raw_split_names"], "eval")
    return params, gbdt.GbdtInputs.from_files(features.get_dataset(DATASET), train_files), train_files, eval_files


def _timed_fit(params: Any, inputs: Any, train_files: list[str], eval_files: list[str], trees: int,
               **changes: Any) -> tuple[Any, float]:
    """(GbdtModel, fit seconds) of `trees` trees, early stopping unable to end it sooner (look-ahead = trees), the
    eval split as validation, as GbdtResidual's executor fits its full model; `changes`: other GbdtParams fields."""
    import dataclasses

    from trainer.resfusion import gbdt
    params = dataclasses.replace(params, num_trees=trees, early_stopping_look_ahead=trees, **changes)
    start = time.perf_counter()
    model = gbdt.GbdtLearner(inputs, params, task="classification").fit(
        gbdt.examples_dataset(train_files, inputs, params.batch_size),
        gbdt.examples_dataset(eval_files, inputs, params.batch_size))
    return model, time.perf_counter() - start


def child_gbdt(data: dict[str, Any], preset: str, trees: int) -> dict[str, Any]:
    """TF-DF GBDT fitted on every raw training row (eval split as validation), `trees` trees whatever the validation
    loss does. Also one read pass over the training rows beforehand (rows counted, seconds), to tell reading from
    tree growing."""
    from trainer.resfusion import gbdt
    params, inputs, train_files, eval_files = _gbdt_setup(data, preset)
    start = time.perf_counter()
    rows = sum(int(labels.shape[0]) for _, labels in gbdt.examples_dataset(train_files, inputs, params.batch_size))
    read_seconds = time.perf_counter() - start
    model, seconds = _timed_fit(params, inputs, train_files, eval_files, trees)
    return {"ids": None, "parameters": None, "trees": trees, "kept_trees": model.num_trees,
            "max_depth": params.max_depth, "train_rows": rows, "read_seconds": read_seconds, "steps": 1,
            "examples": rows, "seconds": seconds, "examples_per_second": rows / seconds, "seconds_per_step": seconds}


def dictionary_items(model: Any) -> int:
    """Dictionary items over the categorical features of a fitted TF-DF model (its dataspec; each feature's count
    includes its out-of-dictionary item)."""
    dataspec = model.keras_model.make_inspector().dataspec
    return sum(column.categorical.number_of_unique_values for column in dataspec.columns
               if column.HasField("categorical") and column.name != "__LABEL")


def child_gbdt_vocab(data: dict[str, Any], preset: str, vocab_counts: Sequence[int],
                     trees: int = SWEEP_TREES) -> dict[str, Any]:
    """The GBDT's cost by dictionary size: per max_vocab_count, a fit of 1 tree and one of `trees` trees (the gbdt
    step's rows, parameters and validation), after one uncounted fit. Per tree: (t_trees - t_1) / (trees - 1); fixed:
    t_1 - per tree."""
    params, inputs, train_files, eval_files = _gbdt_setup(data, preset)

    def fit(count: int, n: int) -> tuple[Any, float]:
        return _timed_fit(params, inputs, train_files, eval_files, n, max_vocab_count=count)

    # The process's first fit also pays one-time costs (about 10 s here: TF-DF's ops, the first tracing), which
    # would count against the first value's 1-tree fit: one fit first, not counted.
    warmup_seconds = fit(min(vocab_counts), 1)[1]
    sweep, total = [], warmup_seconds
    for count in vocab_counts:
        seconds = {}
        for n in (1, trees):
            model, seconds[n] = fit(count, n)
        per_tree = (seconds[trees] - seconds[1]) / (trees - 1)
        sweep.append({"max_vocab_count": count, "dictionary_items": dictionary_items(model),
                      "seconds_1_tree": seconds[1], f"seconds_{trees}_trees": seconds[trees],
                      "seconds_per_tree": per_tree, "fixed_seconds": seconds[1] - per_tree})
        total += seconds[1] + seconds[trees]
    return {"trees": trees, "max_depth": params.max_depth, "sweep": sweep, "seconds": total,
            "warmup_fit_seconds": warmup_seconds}


def child_residual(data: dict[str, Any], preset: str, steps: int, warmup: int) -> dict[str, Any]:
    """ResFusion's first deep stage as trainer.resfusion.residual.fit_nn builds it, on GbdtResidual's train split
    (SplitRows: labels and logits in memory, ids cached through the Transform graph in one pass), fixed steps.
    Without GbdtResidual (a preparation without it), on the raw train split with a zero offset: the same cost."""
    import numpy as np
    import tensorflow as tf
    import tensorflow_transform as tft

    from pipeline import configs, resfusion_steps
    from trainer import contract
    from trainer.resfusion import gbdt
    from trainer.resfusion import models as residual_models
    from trainer.resfusion.residual import SplitRows, TransformIdEncoder
    from transform import features
    config = configs.trainer_preset(DATASET, "resfusion", preset)
    options = resfusion_steps.default_options(DATASET, preset, config.train)
    encoder = TransformIdEncoder(tft.TFTransformOutput(data["transform_uri"]))
    with_gbdt = data.get("residual_examples_uri") is not None
    files = split_files(data["residual_examples_uri"] if with_gbdt else data["raw_examples_uri"],
                        data["split_names"] if with_gbdt else data["raw_split_names"], "train")
    with tempfile.TemporaryDirectory(prefix="training_cost_ids_") as cache_dir:
        start = time.perf_counter()
        train = SplitRows("train", files, gbdt.GbdtInputs(features.get_dataset(DATASET)), config.train.batch_size)
        train.cache_ids(encoder, cache_dir)
        pass_seconds = time.perf_counter() - start
        seed = config.train.seed + 1  # fit_stages' seed of stage 1
        tf.keras.utils.set_random_seed(seed)
        logit_model = residual_models.build_logit_model(options.residual_model, config.model, config.train,
                                                        encoder.num_fields, encoder.table_size,
                                                        residual_models.stage_name(1, "nn"))
        model = residual_models.build_offset_model(logit_model)
        contract.compile_model(model, config.train.learning_rate)
        offsets = train.gbdt_logit if with_gbdt else np.zeros(len(train), np.float32)
        seconds = timed_fit(model, train.nn_dataset(offsets, shuffle_seed=seed).repeat(), warmup, steps)
    return _deep_result(model, encoder.table_size, config.train.batch_size, steps, seconds, train_rows=len(train),
                        read_seconds=pass_seconds, offset="GBDT logit" if with_gbdt else "zero")


CHILD_IMPORTS = {"gbdt": ("tensorflow_decision_forests",), SWEEP: ("tensorflow_decision_forests",)}


def run_child(args: argparse.Namespace) -> None:
    """One measurement in this process; writes its result (with RSS and set-up time) as JSON to args.out."""
    import importlib

    import psutil
    sampler = throughput.RssSampler()
    for module in ("tensorflow", "tensorflow_transform", "tfx.v1", *CHILD_IMPORTS.get(args.child, ())):
        importlib.import_module(module)  # the fixed cost of any step, before "after imports"
    rss_after_imports = psutil.Process().memory_info().rss / _MB
    imported = time.perf_counter()
    if args.child == "prepare":
        result = prepare(args.work_dir, args.rows[0], with_gbdt=args.rows[0] <= args.gbdt_max_rows)
    else:
        data = json.loads(args.data)
        steps, warmup = args.steps or FIXED_STEPS.get(args.child, 1), args.warmup or WARMUP_STEPS.get(args.child, 0)
        if args.child == "deepfm":
            result = child_deepfm(data, args.preset, steps, warmup)
        elif args.child in ("search", "retrain"):
            result = child_optfusion(data, args.preset, steps, warmup, retrain=args.child == "retrain")
        elif args.child == "gbdt":
            result = child_gbdt(data, args.preset, args.gbdt_trees)
        elif args.child == SWEEP:
            result = child_gbdt_vocab(data, args.preset, args.gbdt_vocab_sweep)
        else:
            result = child_residual(data, args.preset, steps, warmup)
        # Set-up: the child's time after its imports outside the measured span (data passes, model build, warm-up).
        result.update(warmup=warmup, setup_seconds=time.perf_counter() - imported - result["seconds"])
    result.update(rss_after_imports_mb=rss_after_imports, peak_rss_mb=max(sampler.mark(), rss_after_imports))
    sampler.stop()
    with open(args.out, "w") as f:
        json.dump(result, f)


# --- parent -----------------------------------------------------------------------------------------------------

def launch(kind: str, rows: int, work_dir: str, args: argparse.Namespace, data: Optional[dict[str, Any]] = None
           ) -> dict[str, Any]:
    """Runs one child (`kind`: "prepare" or a step) and returns its result, or {"error": ...} when it failed; its
    output goes to <work_dir>/logs/rows_<rows>_<kind>.log."""
    logs = os.path.join(work_dir, "logs")
    os.makedirs(logs, exist_ok=True)
    out = os.path.join(logs, f"rows_{rows}_{kind}.json")
    log_path = os.path.join(logs, f"rows_{rows}_{kind}.log")
    command = [sys.executable, "-m", "benchmarks.training_cost", "--child", kind, "--out", out, "--rows", str(rows),
               "--work-dir", os.path.join(work_dir, f"rows_{rows}"), "--preset", args.preset,
               "--gbdt-trees", str(args.gbdt_trees), "--gbdt-max-rows", str(args.gbdt_max_rows),
               "--gbdt-vocab-sweep", *map(str, args.gbdt_vocab_sweep)]
    command += ["--steps", str(args.steps)] if args.steps else []
    command += ["--warmup", str(args.warmup)] if args.warmup else []
    command += ["--data", json.dumps(data)] if data else []
    print(f"[{datetime.datetime.now():%H:%M:%S}] {rows:,} rows: {kind} ... (log: {log_path})", flush=True)
    load = os.getloadavg()[0]
    started = time.perf_counter()
    with open(log_path, "w") as log:
        try:
            code = subprocess.run(command, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT,
                                  timeout=args.timeout).returncode
        except subprocess.TimeoutExpired:
            code = None
    if code != 0 or not os.path.exists(out):
        with open(log_path, errors="replace") as log:
            tail = log.read()[-3000:]
        reason = "timed out" if code is None else f"exit {code}"
        print(f"    FAILED ({reason}); log tail:\n{tail}", flush=True)
        return {"error": reason, "log": log_path}
    with open(out) as f:
        result = json.load(f)
    result.update(process_seconds=time.perf_counter() - started, load=[load, os.getloadavg()[0]])
    if "examples_per_second" in result:
        print(f"    {result['examples_per_second']:,.1f} examples/s, {result['seconds_per_step']:.3f} s per step, "
              f"peak RSS {result['peak_rss_mb']:,.0f} MB ({result['process_seconds']:.0f} s)", flush=True)
    else:
        print(f"    done in {result['process_seconds']:.0f} s", flush=True)
    return result


def run_parent(args: argparse.Namespace) -> None:
    command = "TF_USE_LEGACY_KERAS=1 python -m benchmarks.training_cost " + shlex.join(sys.argv[1:])
    work_dir = os.path.abspath(args.work_dir)
    os.makedirs(work_dir, exist_ok=True)
    results_path = os.path.join(work_dir, "results.json")
    results: dict[str, Any] = {"prepared": {}, "steps": []}
    if (args.keep_results or args.render_only) and os.path.exists(results_path):
        with open(results_path) as f:
            results = json.load(f)
    if not args.render_only:
        results["commands"] = [*results.get("commands", []), command]
    for rows in () if args.render_only else sorted(set(args.rows)):
        # Kept results keep their preparation: TFX would re-run it whenever the project's code changed (its cache key).
        kept = results["prepared"].get(str(rows)) if args.keep_results else None
        prep = kept or launch("prepare", rows, work_dir, args)
        if "error" in prep:
            raise SystemExit(f"the preparation at {rows:,} rows failed: {prep['log']}")
        results["prepared"][str(rows)] = prep
        for step in args.only:
            result = {"step": step, "rows": rows, **launch(step, rows, work_dir, args, prep)}
            results["steps"] = [r for r in results["steps"] if (r["step"], r["rows"]) != (step, rows)] + [result]
            with open(results_path, "w") as f:  # what is done so far survives a later failure
                json.dump(results, f, indent=1)
    settings = {"preset": args.preset, "gbdt_trees": args.gbdt_trees, "steps": args.steps, "warmup": args.warmup,
                "gbdt_max_rows": args.gbdt_max_rows}  # the sweep's values are in its results
    section = render(results, command, settings)
    print(section)
    if not args.no_doc:
        report.write_section(args.doc, section)
        print(f"Wrote the section to {args.doc}")


# --- report (no TF) ---------------------------------------------------------------------------------------------

def not_measured(result: dict[str, Any]) -> str:
    """Why a run has no measurement ("failed (...)", or why it was not run), or "" when it has one."""
    if "error" in result:
        return f"failed ({result['error']})"
    return result.get("skipped", "")


def sweep_lines(results: Sequence[dict[str, Any]]) -> list[str]:
    """The gbdt_vocab table: per size and max_vocab_count, the dictionary's items, the fits' seconds, the cost per
    tree and the fixed cost (empty without a sweep)."""
    done = sorted((r for r in results if r["step"] == SWEEP and not not_measured(r)), key=lambda r: r["rows"])
    if not done:
        return []
    trees = done[0]["trees"]
    lines = [f"| rows | max_vocab_count | dictionary items | 1-tree fit s | {trees}-tree fit s | s per tree | "
             "fixed s |", "|---:|---:|---:|---:|---:|---:|---:|"]
    for r in done:
        for point in r["sweep"]:
            lines.append(f"| {r['rows']:,} | {point['max_vocab_count']:,} | {point['dictionary_items']:,} | "
                         f"{point['seconds_1_tree']:.1f} | {point[f'seconds_{trees}_trees']:.1f} | "
                         f"{point['seconds_per_tree']:.2f} | {point['fixed_seconds']:.1f} |")
    return lines


def over_imports(result: dict[str, Any]) -> float:
    """Peak RSS above the RSS after the child's imports, MB: the memory the step itself took."""
    return result["peak_rss_mb"] - result["rss_after_imports_mb"]


def growth(results: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """How each step grows between consecutive sizes: per step and pair of sizes (smaller, larger), the ratios
    larger / smaller of the data (rows), of seconds per step, of peak RSS and of peak over imports (None where the
    smaller one is not positive). Failed runs are left out."""
    lines = []
    for step in dict.fromkeys(r["step"] for r in results):
        done = sorted((r for r in results if r["step"] == step and not not_measured(r)), key=lambda r: r["rows"])
        for small, large in zip(done, done[1:]):
            base = over_imports(small)
            lines.append({"step": step, "rows": (small["rows"], large["rows"]), "data": large["rows"] / small["rows"],
                          "time": large["seconds_per_step"] / small["seconds_per_step"],
                          "peak": large["peak_rss_mb"] / small["peak_rss_mb"],
                          "over_imports": over_imports(large) / base if base > 0 else None})
    return lines


def _int(value: Optional[float]) -> str:
    return "-" if value is None else f"{value:,.0f}"


def _ratio(value: Optional[float]) -> str:
    return "-" if value is None else f"{value:.2f}x"


def measured_text(result: dict[str, Any]) -> str:
    """What a row measured, in words: "200 steps of 256" or, for the GBDT, its fit."""
    if result["step"] == "gbdt":
        return (f"fit: {result['trees']} trees of depth {result['max_depth']} on {result['train_rows']:,} rows "
                f"(kept {result['kept_trees']})")
    return f"{result['steps']} steps of {result['batch']}"


def table_lines(results: Sequence[dict[str, Any]]) -> list[str]:
    """The main table: one row per step and size."""
    lines = ["| step | rows | ids | parameters | measured | examples/s | s per step | set-up s | read pass s "
             "| peak RSS MB | RSS after imports MB | peak over imports MB |",
             "|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in sorted(results, key=lambda r: (STEPS.index(r["step"]) if r["step"] in STEPS else len(STEPS), r["rows"])):
        label = STEP_LABELS.get(r["step"], r["step"])
        if not_measured(r):
            lines.append(f"| {label} | {r['rows']:,} | {not_measured(r)} |  |  |  |  |  |  |  |  |  |")
            continue
        read = "-" if r.get("read_seconds") is None else f"{r['read_seconds']:.1f}"
        lines.append(f"| {label} | {r['rows']:,} | {_int(r.get('ids'))} | {_int(r.get('parameters'))} | "
                     f"{measured_text(r)} | {r['examples_per_second']:,.1f} | {r['seconds_per_step']:.3f} | "
                     f"{r['setup_seconds']:.1f} | {read} | {r['peak_rss_mb']:,.0f} | "
                     f"{r['rss_after_imports_mb']:,.0f} | {over_imports(r):,.0f} |")
    return lines


def growth_lines(results: Sequence[dict[str, Any]]) -> list[str]:
    """The growth table: one row per step and pair of consecutive sizes."""
    lines = ["| step | sizes | data | time per step | peak RSS | peak over imports |", "|---|---|---:|---:|---:|---:|"]
    for g in growth(results):
        small, large = g["rows"]
        lines.append(f"| {STEP_LABELS.get(g['step'], g['step'])} | {large:,} / {small:,} | {g['data']:g}x | "
                     f"{_ratio(g['time'])} | {_ratio(g['peak'])} | {_ratio(g['over_imports'])} |")
    return lines


def ingestion_lines(prepared: dict[str, dict[str, Any]]) -> list[str]:
    """The preparation runs' per-node seconds (MLMD), beside the training costs ("-": not in that run; "cached": run
    earlier, its time unknown)."""
    lines = ["| rows | input MB | " + " | ".join(INGESTION_NODES) + " | pipeline run s |",
             "|---:|---:|" + "---:|" * (len(INGESTION_NODES) + 1)]
    for rows, prep in sorted(prepared.items(), key=lambda item: int(item[0])):
        seconds = prep["node_seconds"]
        cells = ["-" if node not in seconds else "cached" if seconds[node] is None else f"{seconds[node]:.1f}"
                 for node in INGESTION_NODES]
        lines.append(f"| {int(rows):,} | {prep['input_mb']:.1f} | " + " | ".join(cells)
                     + f" | {prep['wall_seconds']:.1f} |")
    return lines


def render(results: dict[str, Any], command: str, settings: dict[str, Any]) -> str:
    """The docs/benchmarks.md section of a run: results = {"prepared": {rows: prepare()}, "steps": [child results]};
    settings: the run's preset, gbdt_trees, and steps / warmup (None: the defaults)."""
    from benchmarks.pipeline_scaling import machine_description, versions
    loads = [load for r in results["steps"] for load in r.get("load", [])]
    steps = [r for r in results["steps"] if r["step"] != SWEEP]  # the sweep has a table of its own
    fixed = {step: settings.get("steps") or count for step, count in FIXED_STEPS.items()}
    warmup = {step: settings.get("warmup") or count for step, count in WARMUP_STEPS.items()}
    lines = [SECTION_HEADING, "",
             f"- Date: {datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}",
             f"- Machine: {machine_description()}"
             + (f"; 1-minute load average at the start and end of each step {min(loads):.1f}-{max(loads):.1f} "
                "(other work on the machine slows every number)" if loads else ""),
             f"- Software: {versions()}",
             "- Command: " + "; then, keeping that run's other results, ".join(
                 f"`{c}`" for c in results.get("commands", [command])),
             f"- Data: per size, a generated Criteo-layout log, and one pipeline run up to Transform "
             f"(`--model resfusion --preset {PREP_PRESET}`: RawLogExampleGen -> StatisticsGen -> SchemaGen -> "
             "GbdtResidual -> Transform; the test preset's GBDT of 20 trees, 2 folds, only gives the residual stage "
             "its offset). Every step reads those artifacts, in a fresh child process of its own."
             + (f" Above {settings['gbdt_max_rows']:,} rows the run is `--model deepfm` (no GbdtResidual: it took "
                "7 min at 100k rows here, three TF-DF fits and a Beam scoring pass) and the residual stage trains on "
                "the raw train split with a zero offset (the same cost); the GBDT's fit reads the raw rows, there at "
                "every size."
                if any(int(rows) > settings.get("gbdt_max_rows", float("inf")) for rows in results["prepared"])
                else ""),
             f"- Steps, with the `{settings['preset']}` preset (Criteo's settings: embedding 40 per field, batch 256, "
             "3 hidden blocks of D = 1560): DeepFM as the Keras Trainer builds and compiles it, Keras fit on the "
             "tfxio input of the transformed train split; the OptFusion search supernet and its TrainStep (three Adam "
             "groups, dense coupled L2 and embedding update); the Hard retrain of one fixed architecture "
             "(benchmarks.optfusion_throughput.hard_architecture, from scratch); the TF-DF GBDT fitted on every raw "
             f"training row with the eval split as validation, {settings['gbdt_trees']} trees of the preset's depth "
             "whatever the validation loss does; ResFusion's first deep stage (DeepFM on the GBDT's out-of-fold "
             "logit as a fixed offset, ids cached once through the Transform graph).",
             "- Measured steps (after warm-up steps, which include tracing): "
             + ", ".join(f"{STEP_LABELS[s]} {fixed[s]} (+{warmup[s]})" for s in FIXED_STEPS)
             + "; the same number at every size, so a step's time per step and its memory show how it grows with "
               "the data and the vocabulary, not how long an epoch takes (an epoch of 800k training rows is 3,125 "
               "steps: hours for the OptFusion search on this CPU). Validation, checkpoints and export are left "
               "out. The GBDT's step is its fit (examples/s: training rows per fit second; it includes TF-DF's read "
               "of the rows into memory and per-tree validation); its read pass: one pass over the same rows "
               "through the same tf.data parser before the fit. Residual stage's read pass: SplitRows (labels, GBDT "
               "logits) and the id cache, one pass over the training rows.",
             "- Set-up s: the child's time after its imports outside the measured span (data passes, model build, "
             "warm-up; the GBDT's read pass). Peak RSS: the child's, over the whole process (psutil, every 0.1 s); "
             "RSS after imports: after importing TensorFlow, TF Transform, TFX (and TF-DF for the GBDT); peak over "
             "imports: the difference, the memory the step itself took.",
             "",
             "Preparation runs (MLMD seconds per node; the ingestion alone, without GbdtResidual, is in \"Ingestion "
             "scaling (ExampleGen + Transform)\" above):", ""]
    lines += ingestion_lines(results["prepared"])
    lines += ["", "Training steps:", ""] + table_lines(steps)
    lines += ["", "Growth from one size to the next (larger / smaller): data, seconds per step (the GBDT: per fit), "
                  "peak RSS and peak RSS over imports:", ""] + growth_lines(steps)
    sweep = sweep_lines(results["steps"])
    if sweep:
        lines += ["", "The GBDT's cost by dictionary size (`max_vocab_count`: the most frequent values kept per "
                      "categorical field, 2,000 by default for raw logs): fits of 1 and of several trees (the gbdt "
                      "step's rows, depth and validation), so the cost per tree (their difference per added tree) "
                      "and the fixed cost (the 1-tree fit less one tree: reading the rows into TF-DF, its dataspec, "
                      "tracing; one uncounted fit before them pays the process's one-time costs) separate. "
                      "Dictionary items: over the 26 categorical fields of the fitted model, each with its "
                      "out-of-dictionary item.", ""] + sweep
    return "\n".join(lines) + "\n"


# --- command line -----------------------------------------------------------------------------------------------

def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=list(DEFAULT_ROWS), help="generated rows per size")
    parser.add_argument("--only", nargs="+", choices=STEPS, default=list(STEPS), help="the steps to measure")
    parser.add_argument("--steps", type=int, help=f"measured steps of every deep step (default: {FIXED_STEPS})")
    parser.add_argument("--warmup", type=int, help=f"warm-up steps of every deep step (default: {WARMUP_STEPS})")
    parser.add_argument("--gbdt-trees", type=int, default=DEFAULT_GBDT_TREES, help="trees of the GBDT fit")
    parser.add_argument("--gbdt-max-rows", type=int, default=DEFAULT_GBDT_MAX_ROWS,
                        help="larger sizes: no GbdtResidual in the preparation (the residual stage: zero offset)")
    parser.add_argument("--gbdt-vocab-sweep", type=int, nargs="+", default=list(DEFAULT_VOCAB_SWEEP),
                        help="max_vocab_count values of the gbdt_vocab step")
    parser.add_argument("--keep-results", action="store_true",
                        help="start from the work dir's results.json (and its preparations), replacing the steps "
                             "and sizes measured now")
    parser.add_argument("--preset", default="small", choices=("small", "full", "test"),
                        help="trainer settings of the measured steps (local_runner's --preset)")
    parser.add_argument("--work-dir", default=DEFAULT_WORK_DIR, help="preparation runs (cached) and child logs")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds before a child is stopped")
    parser.add_argument("--render-only", action="store_true",
                        help="measure nothing: render the work dir's results.json (into the doc unless --no-doc)")
    parser.add_argument("--doc", default=DEFAULT_DOC)
    parser.add_argument("--no-doc", action="store_true", help="print only, do not write docs/benchmarks.md")
    parser.add_argument("--child", choices=("prepare", *STEPS), help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> None:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.child:
        run_child(args)
    else:
        run_parent(args)


if __name__ == "__main__":
    main()
