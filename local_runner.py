"""Runs the CTR pipeline locally: LocalDagRunner, SQLite MLMD, Beam DirectRunner.

    python local_runner.py                         # synthetic Criteo-layout data, DeepFM
    python local_runner.py --dataset criteo --data ../shared/data/criteo/train.txt --output-dir /tmp/run

Also the entry point of the TFX CLI (local engine):
    tfx pipeline create --engine local --pipeline_path local_runner.py
    tfx run create --engine local --pipeline_name fusionctr-criteo     # fusionctr-<dataset>: --pipeline-name
(the CLI passes no flags: put them in the FUSIONCTR_RUNNER_ARGS environment variable)

Output layout under --output-dir: metadata.sqlite, run_summary.json (the end-of-run summary), pipeline_root/,
serving_model/<version>/.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import shlex
import sys
import warnings
from typing import TYPE_CHECKING, Any

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
if "--verbose" not in sys.argv[1:] + shlex.split(os.environ.get("FUSIONCTR_RUNNER_ARGS", "")):
    # TensorFlow's native start-up lines (CUDA plug-ins on a CPU machine, CPU instructions); before its first import.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# Google's client libraries ask, once per library, for a Python newer than 3.10; TFX 1.16 needs 3.10.
warnings.filterwarnings("ignore", message="You are using a non-supported Python version", category=FutureWarning)

if TYPE_CHECKING:
    from pipeline.configs import PipelineConfig

REPO_ROOT = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OUTPUT_DIR = os.path.join(REPO_ROOT, "tfx_output")
DEFAULT_SYNTHETIC_ROWS = 20_000
_CODE_PACKAGES = ("components", "transform", "trainer")


def code_fingerprint(root: str = REPO_ROOT) -> str:
    """Digest of the Python code that components execute (part of their cache keys)."""
    digest = hashlib.sha256()
    for package in _CODE_PACKAGES:
        for folder, _, files in sorted(os.walk(os.path.join(root, package))):
            for name in sorted(files):
                if name.endswith(".py"):
                    path = os.path.join(folder, name)
                    digest.update(os.path.relpath(path, root).encode())
                    with open(path, "rb") as f:
                        digest.update(f.read())
    return digest.hexdigest()[:16]


def is_uri(path: str) -> bool:
    """True for a remote path (gs://, s3://, hdfs://...): kept as given, never made absolute or checked locally."""
    return "://" in path


def resolve_input(path: str) -> tuple[str, str]:
    """--data as (input_base, file_pattern): a folder means all its files, a file means just that file; a remote
    URI is a folder (a Kubeflow run reads it, not this machine)."""
    if is_uri(path):
        return path.rstrip("/"), "*"
    path = os.path.abspath(path)
    if os.path.isdir(path):
        return path, "*"
    if os.path.isfile(path):
        return os.path.dirname(path), os.path.basename(path)
    raise SystemExit(f"--data {path!r} is neither a file nor a folder")


TFRECORD_META_FILE = "meta.json"


def settings_layouts() -> tuple[str, ...]:
    """The layouts whose reference settings (learning rates, L2, embedding size) a TFRecord folder can take."""
    from transform import features
    return tuple(name for name in features.text_layouts() if features.get_dataset(name).reference is not None)


def settings_layout(dataset: str, input_base: str, layout: str | None = None) -> str:
    """The dataset whose per-dataset settings (algorithms.md §1.8 presets) a run uses.

    A text log is its own layout. OptFusion TFRecords hold only ids, so their layout comes from `layout`
    (--layout), else from the `dataset` key of `<input_base>/meta.json` (written beside the reference's
    TFRecords), else it stays "tfrecord" (Criteo's settings).

    Raises:
        SystemExit: `layout` given for a text log, or a meta.json naming an unknown layout.
    """
    if dataset != "tfrecord":
        if layout not in (None, dataset):
            raise SystemExit(f"--layout {layout} is only for --dataset tfrecord "
                             f"(--dataset {dataset} is its own layout)")
        return dataset
    if layout is not None:
        return layout
    import tensorflow as tf  # its file system reads gs:// too (a Kubeflow compile; --layout avoids the read)

    meta_path = os.path.join(input_base, TFRECORD_META_FILE)
    try:
        if not tf.io.gfile.exists(meta_path):
            logging.info("No %s in %s and no --layout: OptFusion TFRecords get Criteo's settings",
                         TFRECORD_META_FILE, input_base)
            return dataset
        with tf.io.gfile.GFile(meta_path) as f:
            named = json.load(f).get("dataset")
    except tf.errors.OpError as error:  # a bucket this machine cannot reach
        raise SystemExit(f"cannot read {meta_path} ({error.message.splitlines()[0]}): give --layout") from None
    if named is None:
        return dataset
    if named not in settings_layouts():
        raise SystemExit(f"{meta_path}: dataset {named!r} is not a known layout; choose --layout from "
                         f"{', '.join(settings_layouts())}")
    return named


def tfrecord_splits(input_base: str) -> tuple[str, ...]:
    """The splits an OptFusion TFRecord folder holds: train and eval (validation_* files), and test when it has
    test_* files; without them the run trains and blesses as usual, with no test split, and says so. A folder this
    machine cannot read (a Kubeflow compile against a bucket) is taken to hold all three.

    Raises:
        SystemExit: no train_* or no validation_* file.
    """
    import tensorflow as tf

    from pipeline.pipeline import SPLITS, TFRECORD_SPLIT_PATTERNS
    try:
        present = {split for split in SPLITS
                   if tf.io.gfile.glob(os.path.join(input_base, TFRECORD_SPLIT_PATTERNS[split]))}
    except tf.errors.OpError:
        return SPLITS
    missing = [TFRECORD_SPLIT_PATTERNS[split] for split in ("train", "eval") if split not in present]
    if missing:
        raise SystemExit(f"{input_base} has no {' and no '.join(missing)} file: an OptFusion TFRecord folder holds "
                         "train_*, validation_* and (optionally) test_* files (algorithms.md §1.7)")
    if "test" not in present:
        logging.warning("%s has no %s file: the run trains on train_* and blesses on validation_*; there is no test "
                        "split to report", input_base, TFRECORD_SPLIT_PATTERNS["test"])
    return tuple(split for split in SPLITS if split in present)


def _model_help() -> str:
    from pipeline import families
    by_summary: dict[str, list[str]] = {}
    for family in families.FAMILIES.values():
        by_summary.setdefault(family.summary, []).append(family.name)
    return "model to train (default: deepfm): " + "; ".join(
        f"{', '.join(names)} ({summary})" for summary, names in by_summary.items())


def parse_args(argv: list[str]) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def build_parser(description: str | None = __doc__) -> argparse.ArgumentParser:
    """The runner's flags (kubeflow.compile adds its own to the same parser)."""
    from pipeline import families
    from transform import features
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="criteo", choices=sorted(features.DATASETS),
                        help="layout of --data (default: criteo)")
    parser.add_argument("--data",
                        help="file or folder of the click log; default: a generated synthetic Criteo-layout log")
    parser.add_argument("--output-dir", default=DEFAULT_OUTPUT_DIR,
                        help="where metadata, artifacts and the pushed model go")
    parser.add_argument("--model", default="deepfm", choices=list(families.FAMILIES), metavar="MODEL",
                        help=_model_help())
    parser.add_argument("--preset", default="small", choices=("small", "full", "test"),
                        help="small: the shared samples (batch 256); full: full datasets (batch 4096); "
                             "test: tiny, one epoch")
    parser.add_argument("--epochs", type=int, help="override the preset's maximum epochs")
    parser.add_argument("--batch-size", type=int, help="override the preset's batch size")
    parser.add_argument("--schema", help="curated schema.pbtxt to pin instead of the inferred one (see schemas/)")
    parser.add_argument("--layout", choices=settings_layouts(),
                        help="tfrecord only: the dataset the TFRecords were made from, for its settings (default: "
                             "the `dataset` key of meta.json in the folder, else criteo)")
    parser.add_argument("--split-seed", type=int, default=2022)
    parser.add_argument("--seed", type=int,
                        help="training seed: initialisation and shuffling of every training step, GBDT included "
                             "(default 2024, the reference's); part of the cache key")
    parser.add_argument("--max-rejected-fraction", type=float, default=0.01,
                        help="fail when more than this fraction of rows is malformed (default 0.01)")
    parser.add_argument("--vocabulary-over-all-splits", action="store_true",
                        help="compute vocabularies over all splits, as the reference preprocessing does")
    parser.add_argument("--min-auc", type=float, default=0.5, help="blessing threshold on eval AUC (default 0.5)")
    parser.add_argument("--keep-versions", type=int,
                        help="model versions kept in serving_model/ after a push (default: PushConfig's, 5)")
    parser.add_argument("--file-pattern",
                        help="glob of the log files inside the --data folder (default: every file); {SPAN} in it "
                             "(e.g. 'day-{SPAN}/*') organises the input by day: each run ingests the latest span")
    parser.add_argument("--span-window", type=int, default=1,
                        help="continuous training: Transform and training read the latest N spans (default 1)")
    parser.add_argument("--warm-start", action="store_true",
                        help="Keras models start from the last blessed model's weights (embedding rows matched by "
                             "field value)")
    parser.add_argument("--keep-runs", type=int,
                        help="after a successful run, delete the data, models and caches that none of the last N "
                             "runs made or read (default: keep everything)")
    parser.add_argument("--rows", type=int, default=DEFAULT_SYNTHETIC_ROWS, help="rows of generated data (no --data)")
    parser.add_argument("--pipeline-name", default=None,
                        help="default fusionctr-<dataset> (fusionctr-tfrecord-<layout>): one pipeline, and one "
                             "champion, per dataset layout")
    parser.add_argument("--max-auc-drop", type=float,
                        help="blessing: how far the eval AUC may fall below the champion's (default: EvalConfig's, "
                             "0.001)")
    parser.add_argument("--max-drift", type=float,
                        help="the largest L-infinity distance a categorical field of the train split may move from "
                             "the data of the served model before the run stops (default: DataChecksConfig's, 0.2)")
    parser.add_argument("--max-drift-js", type=float,
                        help="the same bound on the Jensen-Shannon divergence (default: not checked)")
    parser.add_argument("--learning-rate", type=float, help="override the preset's learning rate (Keras models)")
    parser.add_argument("--tune", action="store_true",
                        help="run a Tuner (keras-tuner) before training; its best hyper-parameters train the model "
                             "(the family's search space: learning rate, L2, embedding size; OptFusion's "
                             "architecture learning rate too)")
    parser.add_argument("--tune-trials", type=int, help="--tune: trials in all (default: TuningConfig's, 10)")
    parser.add_argument("--tune-epochs", type=int,
                        help="--tune: epochs of each trial (default: the training's own epochs)")
    parser.add_argument("--tune-algorithm", choices=("bayesian", "random"), help="--tune: default bayesian")
    add_beam_flags(parser)
    parser.add_argument("--no-cache", action="store_true", help="re-run every component")
    parser.add_argument("--verbose", action="store_true",
                        help="print every log line of TFX, Beam and TensorFlow (default: one line per step and the "
                             "warnings; everything is in <output-dir>/run.log)")
    parser.add_argument("--residual-model",
                        help="ResFusion family: network of the deep stages (default deepfm): a Keras baseline's name, "
                             "or optfusion-hard / optfusion-soft (each deep stage searched and retrained on the "
                             "offset; --precision, --l2-mode and --from-scratch then apply to it)")
    parser.add_argument("--gbdt-training-fraction", dest="training_fraction", type=float,
                        help="ResFusion family: train the GBDT stages on this deterministic hash sample of the "
                             "training rows (default 1: all), for training sets beyond one machine's memory; every row "
                             "is still scored (docs/resfusion.md)")
    parser.add_argument("--gbdt-max-vocab-count", dest="max_vocab_count", type=int,
                        help="ResFusion family: most frequent values kept per categorical field by the GBDT stages "
                             "(default: 2,000 for raw logs, every id of OptFusion TFRecords; -1: every value). A "
                             "tree's cost grows with it (docs/scaling.md, \"The GBDT's cost\")")
    parser.add_argument("--rounds", type=int,
                        help="ResFusion family: K, residual rounds after the first stage (default 2)")
    parser.add_argument("--precision", choices=("float32", "mixed_bfloat16", "mixed_float16"),
                        help="OptFusion family: compute precision (float32 variables and loss; default float32)")
    parser.add_argument("--jit-compile", action="store_true", default=None,
                        help="OptFusion family: XLA-compile the forward and backward pass")
    parser.add_argument("--embedding-update", choices=("dense", "lazy"),
                        help="OptFusion: Adam on every row of the embedding table each step (dense, the reference) "
                             "or only on the rows in the batch (lazy: for full-size vocabularies)")
    parser.add_argument("--l2-mode", choices=("dense", "lazy"),
                        help="OptFusion family: coupled L2 on the whole embedding table every step (dense, the "
                             "reference) or only on the rows in the batch (lazy)")
    parser.add_argument("--from-scratch", dest="inherit_weights", action="store_false", default=None,
                        help="OptFusion family: retrain from fresh weights instead of the searched supernet's")
    parser.add_argument("--soft-rates", choices=("hard", "reference"),
                        help="OptFusion-Soft: retrain at the Hard row's learning rate (default) or at the "
                             "reference retrain.sh's (1e-7 on Avazu/Frappe, 3e-8 on KDD12)")
    return parser


def add_beam_flags(parser: argparse.ArgumentParser) -> None:
    """--beam-runner and what its presets need (pipeline/beam.py)."""
    from pipeline import beam
    parser.add_argument("--beam-runner", default=beam.DIRECT, choices=beam.RUNNERS,
                        help="where the Beam steps run (default direct: one in-memory worker); "
                             "direct-multiprocessing uses every core of one big machine; dataflow, flink and spark "
                             "need the --beam-* settings below (kubeflow/README.md)")
    parser.add_argument("--beam-project", help="dataflow: Google Cloud project")
    parser.add_argument("--beam-region", help="dataflow: region")
    parser.add_argument("--beam-temp-location", help="dataflow: gs:// folder for staging and temp files")
    parser.add_argument("--beam-sdk-container-image",
                        help="dataflow: worker image (kubeflow.compile: default the pipeline --image)")
    parser.add_argument("--beam-job-endpoint", help="flink, spark: the portable job server, host:port")
    parser.add_argument("--beam-worker-pool", default=beam.DEFAULT_WORKER_POOL,
                        help=f"flink, spark: the Beam worker pool, host:port (default {beam.DEFAULT_WORKER_POOL})")
    parser.add_argument("--beam-arg", action="append", default=[], metavar="OPTION",
                        help="one more Beam option, e.g. --beam-arg=--max_num_workers=20 (repeatable)")


def beam_pipeline_args(args: argparse.Namespace) -> tuple[str, ...]:
    """The beam_pipeline_args of the --beam-* flags.

    Raises:
        SystemExit: a setting the runner needs is missing (the message names the flag).
    """
    from pipeline import beam
    try:
        return beam.pipeline_args(beam.BeamSettings(
            runner=args.beam_runner, project=args.beam_project, region=args.beam_region,
            temp_location=args.beam_temp_location, sdk_container_image=args.beam_sdk_container_image,
            job_endpoint=args.beam_job_endpoint, worker_pool=args.beam_worker_pool,
            extra_args=tuple(args.beam_arg)))
    except ValueError as error:
        raise SystemExit(str(error)) from None


def build_config(args: argparse.Namespace) -> PipelineConfig:
    from data_gen import synthetic_criteo
    from pipeline import configs

    output_dir = args.output_dir if is_uri(args.output_dir) else os.path.abspath(args.output_dir)
    if getattr(args, "keep_runs", None) is not None and args.keep_runs < 1:
        raise SystemExit(f"--keep-runs must be at least 1 (the run just finished), got {args.keep_runs}")
    if args.data:
        input_base, pattern = resolve_input(args.data)
        if args.file_pattern:
            if pattern != "*":
                raise SystemExit("--file-pattern needs --data to be a folder")
            pattern = args.file_pattern
    else:
        if args.file_pattern:
            raise SystemExit("--file-pattern needs --data (a folder)")
        if args.dataset != "criteo":
            raise SystemExit("generated data is in the Criteo layout: give --data for other datasets")
        generated = os.path.join(output_dir, "data", f"synthetic_criteo_{args.rows}.tsv")
        logging.info("No --data: using synthetic Criteo-layout data at %s",
                     synthetic_criteo.generate(generated, args.rows))
        input_base, pattern = os.path.dirname(generated), os.path.basename(generated)
    layout = settings_layout(args.dataset, input_base, args.layout)
    trainer = trainer_config(args, layout)
    return configs.PipelineConfig(
        pipeline_name=args.pipeline_name or configs.pipeline_name(args.dataset, layout),
        pipeline_root=os.path.join(output_dir, "pipeline_root"),
        metadata_path=os.path.join(output_dir, "metadata.sqlite"),
        serving_model_dir=os.path.join(output_dir, "serving_model"),
        dataset=configs.DatasetConfig(
            name=args.dataset, input_base=input_base, file_pattern=pattern, span_window=args.span_window,
            split_seed=args.split_seed,
            max_rejected_fraction=args.max_rejected_fraction,
            schema_path=os.path.abspath(args.schema) if args.schema else None,
            vocabulary_over_all_splits=args.vocabulary_over_all_splits,
            splits=tfrecord_splits(input_base) if args.dataset == "tfrecord" else ("train", "eval", "test")),
        trainer=trainer,
        model_options=family_options(args, layout, trainer.train),
        evaluation=configs.EvalConfig(min_auc=args.min_auc, **(
            {} if args.max_auc_drop is None else {"max_auc_drop": args.max_auc_drop})),
        push=configs.PushConfig(**({} if args.keep_versions is None else {"keep_versions": args.keep_versions})),
        data_checks=configs.DataChecksConfig(
            max_jensen_shannon=args.max_drift_js,
            **({} if args.max_drift is None else {"max_l_infinity": args.max_drift})),
        tuning=tuning_config(args),
        beam_pipeline_args=beam_pipeline_args(args),
        enable_cache=not args.no_cache,
        code_fingerprint=code_fingerprint(),
    )


def tuning_config(args: argparse.Namespace) -> Any:
    """The TuningConfig of --tune and its --tune-* flags; None without --tune.

    Raises:
        SystemExit: a --tune-* flag without --tune.
    """
    from trainer.tuning import TuningConfig

    values = {field: value for field, value in (("max_trials", args.tune_trials), ("trial_epochs", args.tune_epochs),
                                                 ("algorithm", args.tune_algorithm)) if value is not None}
    if not args.tune:
        if values:
            raise SystemExit("--tune-trials, --tune-epochs and --tune-algorithm need --tune")
        return None
    return TuningConfig(**values)


# Flags that set a field of the model family's options (the field name: the flag).
FAMILY_FLAGS = {"residual_model": "--residual-model", "rounds": "--rounds",
                "training_fraction": "--gbdt-training-fraction", "max_vocab_count": "--gbdt-max-vocab-count",
                "precision": "--precision",
                "jit_compile": "--jit-compile", "l2_mode": "--l2-mode", "embedding_update": "--embedding-update",
                "inherit_weights": "--from-scratch",
                "soft_rates": "--soft-rates"}


def trainer_config(args: argparse.Namespace, layout: str | None = None) -> Any:
    """The TrainerConfig of the preset for `layout` (default: --dataset) and --model, with --epochs, --batch-size,
    --seed, --learning-rate and --warm-start applied."""
    import dataclasses

    from pipeline import configs

    trainer = configs.trainer_preset(layout or args.dataset, args.model, args.preset)
    overrides = {k: v for k, v in (("epochs", args.epochs), ("batch_size", args.batch_size), ("seed", args.seed),
                                   ("learning_rate", args.learning_rate), ("warm_start", args.warm_start or None))
                 if v is not None}
    if overrides:
        trainer = dataclasses.replace(trainer, train=dataclasses.replace(trainer.train, **overrides))
    return trainer


def family_options(args: argparse.Namespace, layout: str | None = None, train: Any = None) -> Any:
    """The model family's settings for `layout` (default: --dataset) and the pipeline's TrainConfig `train`
    (default: trainer_config's), with each family flag given (FAMILY_FLAGS) set on the field of that name, wherever
    it is in the settings (OptFusion's precision is in search.run), and --seed on every `seed` field (the GBDT's too).

    Raises:
        SystemExit: a family flag the model's settings have no field for.
    """
    from pipeline import families

    dataset = layout or args.dataset
    train = train if train is not None else trainer_config(args, dataset).train
    options = families.get_family(args.model).steps.default_options(dataset, args.preset, train)
    overrides = {k: getattr(args, k) for k in FAMILY_FLAGS if getattr(args, k) is not None}
    missing = []
    for name, value in overrides.items():
        options, found = set_fields(options, name, value)
        if not found:
            missing.append(FAMILY_FLAGS[name])
    if missing:
        raise SystemExit(f"--model {args.model} takes no {', '.join(missing)}")
    if getattr(args, "seed", None) is not None:
        options, _ = set_fields(options, "seed", args.seed)
    return options


def set_fields(settings: Any, name: str, value: Any) -> tuple[Any, int]:
    """(settings with every field called `name` set to `value`, in it and in its nested dataclasses; how many were
    set). Settings that are not a dataclass (None) are returned unchanged."""
    import dataclasses

    if not dataclasses.is_dataclass(settings) or isinstance(settings, type):
        return settings, 0
    changes, count = {}, 0
    for field in dataclasses.fields(settings):
        if field.name == name:
            changes[name], count = value, count + 1
            continue
        nested, found = set_fields(getattr(settings, field.name), name, value)
        if found:
            changes[field.name], count = nested, count + found
    return (dataclasses.replace(settings, **changes) if changes else settings), count


def run(argv: list[str] | None = None) -> None:
    """Runs the pipeline of the flags `argv` (default: sys.argv, or FUSIONCTR_RUNNER_ARGS for the TFX CLI); prints one
    line per step and the run summary (everything else: <output-dir>/run.log, or the console with --verbose).

    Raises:
        SystemExit: a flag error, another run on the output folder, or a failed step (the message says which).
    """
    if argv is None:
        # The TFX CLI (`tfx run create`) runs this file without flags: FUSIONCTR_RUNNER_ARGS supplies them.
        argv = sys.argv[1:] or shlex.split(os.environ.get("FUSIONCTR_RUNNER_ARGS", ""))
    args = parse_args(argv)
    from pipeline import output_lock, run_log

    output_dir = os.path.abspath(args.output_dir)
    try:
        # Before anything is written there (the log, generated data, metadata): one run per output folder.
        with output_lock.hold(output_dir, [sys.argv[0], *argv]), \
                run_log.quiet_console(output_dir, args.verbose) as log_path:
            summary = _run_and_summarize(args, log_path)
    except output_lock.OutputFolderInUse as error:
        raise SystemExit(str(error)) from None
    print(summary, flush=True)


def _run_and_summarize(args: argparse.Namespace, log_path: str) -> str:
    from tfx import v1 as tfx

    from pipeline import lineage, retention, run_summary
    from pipeline.pipeline import create_pipeline

    try:
        config = build_config(args)
        pipeline = create_pipeline(config)
    except ValueError as error:  # a setting the pipeline cannot take (the message names it)
        raise SystemExit(str(error)) from None
    tfx.orchestration.LocalDagRunner().run(pipeline)
    failed = lineage.failed_nodes_of_latest_run(lineage.open_store(str(config.metadata_path)))
    if not failed and args.keep_runs is not None:
        retention.delete_unused(str(config.metadata_path), config.pipeline_name, config.pipeline_root, args.keep_runs)
    if failed:  # a step whose inputs did not resolve: TFX logs it and runs the next steps without raising
        raise SystemExit(f"the run failed at {', '.join(failed)} (the log says why: {log_path}); nothing it blocks "
                         f"was pushed. Its record: {config.metadata_path}")
    output_dir = os.path.dirname(str(config.metadata_path))
    summary = run_summary.summarize(lineage.open_store(str(config.metadata_path)), config.pipeline_name,
                                    config.trainer.model.name, config.serving_model_dir, output_dir)
    run_summary.write(summary, os.path.join(output_dir, run_summary.SUMMARY_FILE))
    return run_summary.render(summary) + f"\n  full log: {log_path}"


if __name__ == "__main__":
    run()
