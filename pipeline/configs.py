"""Typed pipeline configuration and per-dataset presets (shared/design/algorithms.md §1.8)."""
from __future__ import annotations

import dataclasses
from typing import Any

from tfx.components.example_gen.utils import SPAN_SPEC

from trainer.config import ModelConfig, TrainConfig, TrainerConfig
from trainer.tuning import TuningConfig
from transform import features
from transform.spec import ReferenceSettings

PIPELINE_NAME = "fusionctr"

# User code is referenced by dotted names, so the same pipeline compiles for Kubeflow with the code baked
# into the image (no module-file upload at compile time).
PREPROCESSING_FN = "transform.preprocessing.preprocessing_fn"
RUN_FN = "trainer.train.run_fn"


def pipeline_name(dataset: str, layout: str | None = None) -> str:
    """The default pipeline name of a dataset layout, "fusionctr-<dataset>" ("fusionctr-tfrecord-<layout>" for
    TFRecords made from `layout`): the champion a model is judged against is the latest blessed model of its
    pipeline, so two layouts (whose examples and serving signatures differ) never judge each other's models."""
    if dataset == "tfrecord" and layout and layout != "tfrecord":
        return f"{PIPELINE_NAME}-tfrecord-{layout}"
    return f"{PIPELINE_NAME}-{dataset}"


@dataclasses.dataclass(frozen=True)
class DatasetConfig:
    """Where the click log is and how to read and split it.

    Attributes:
        name: layout (see transform.features.DATASETS): criteo, avazu, kdd12, frappe or tfrecord.
        input_base: folder holding the data files.
        file_pattern: glob of the data files inside input_base.
        split_ratios: train/eval/test hash buckets (8:1:1).
        split_seed: seed of the deterministic split (2022, as the reference's Criteo/Avazu split).
        max_rejected_fraction: the run fails when more rows than this are malformed.
        schema_path: a curated schema to pin (ImportSchemaGen) instead of the inferred one.
        vocabulary_over_all_splits: compute vocabularies over all splits, as the reference preprocessing
            does, instead of the training split only.
        splits: the splits of the data: train, eval and test; an OptFusion TFRecord folder without test_* files
            has no test (local_runner.tfrecord_splits).
        span_window: continuous training, with {SPAN} in a text log's file_pattern (input organised by day): each
            run ingests the latest span, and Transform and training read the latest `span_window` spans.

    Raises:
        ValueError: splits without train or eval, or with others than train, eval and test; a span window below 1,
            or over 1 without {SPAN} in file_pattern.
    """

    name: str
    input_base: str
    file_pattern: str = "*"
    split_ratios: tuple[int, int, int] = (8, 1, 1)
    split_seed: int = 2022
    max_rejected_fraction: float = 0.01
    schema_path: str | None = None
    vocabulary_over_all_splits: bool = False
    splits: tuple[str, ...] = ("train", "eval", "test")
    span_window: int = 1

    def __post_init__(self) -> None:
        if not {"train", "eval"} <= set(self.splits) <= {"train", "eval", "test"}:
            raise ValueError(f"splits must be train, eval and optionally test, got {self.splits}")
        if self.span_window < 1:
            raise ValueError(f"span_window must be at least 1, got {self.span_window}")
        if self.span_window > 1 and SPAN_SPEC not in self.file_pattern:
            raise ValueError(f"a window of {self.span_window} spans needs {SPAN_SPEC} in the log's file pattern (e.g. "
                             f"'day-{SPAN_SPEC}/*'), got {self.file_pattern!r}")

    @property
    def spec(self) -> features.DatasetSpec:
        """The layout's DatasetSpec (transform.features.DATASETS[name]).

        Raises:
            ValueError: an unknown layout name.
        """
        return features.get_dataset(self.name)


@dataclasses.dataclass(frozen=True)
class EvalConfig:
    """Blessing, on the eval split: AUC at least `min_auc`, and at most `max_auc_drop` below the champion's (the
    latest blessed model of the pipeline, hence of the dataset layout, whatever its family; none on a first run).

    Raises:
        ValueError: max_auc_drop < 0.
    """

    min_auc: float = 0.5
    max_auc_drop: float = 0.001

    def __post_init__(self) -> None:
        if self.max_auc_drop < 0:
            raise ValueError(f"max_auc_drop must be >= 0, got {self.max_auc_drop}")


@dataclasses.dataclass(frozen=True)
class PushConfig:
    """Pushing (components/versioned_pusher): how many versions stay in serving_model/ after a push.

    Raises:
        ValueError: keep_versions < 1.
    """

    keep_versions: int = 5

    def __post_init__(self) -> None:
        if self.keep_versions < 1:
            raise ValueError(f"keep_versions must be >= 1 (the version just pushed stays), got {self.keep_versions}")


@dataclasses.dataclass(frozen=True)
class DataChecksConfig:
    """What a run's data is held to besides the schema's own rules (components/data_history.py).

    Attributes:
        against_history: the expected schema is the first run's (not re-inferred), and the train split's categorical
            fields are compared with those of the data behind the served model. Needs MLMD queries that only the
            local orchestrator runs: off on Kubeflow, whose pipelines pin a schema with --schema.
        max_l_infinity: the largest L-infinity distance (the largest change of any value's share) a categorical
            field may move from the baseline; over it the run stops before training.
        max_jensen_shannon: the same with the Jensen-Shannon divergence; None: not checked (on fields of thousands
            of values, two samples of a few thousand rows differ by sampling noise alone).

    Raises:
        ValueError: a threshold outside (0, 1].
    """

    against_history: bool = True
    max_l_infinity: float = 0.2
    max_jensen_shannon: float | None = None

    def __post_init__(self) -> None:
        for name in ("max_l_infinity", "max_jensen_shannon"):
            value = getattr(self, name)
            if value is not None and not 0 < value <= 1:
                raise ValueError(f"{name} must be in (0, 1], got {value}")


@dataclasses.dataclass(frozen=True)
class PipelineConfig:
    """Everything create_pipeline needs; built by a runner (local_runner.py, kubeflow/)."""

    pipeline_root: str
    # The SQLite MLMD store of a local run; None on Kubeflow, whose backend keeps the metadata.
    metadata_path: str | None
    serving_model_dir: str
    dataset: DatasetConfig
    trainer: TrainerConfig = TrainerConfig()
    # Settings of a model family beyond TrainerConfig (a frozen dataclass of its family module: pipeline/families.py).
    model_options: Any = None
    evaluation: EvalConfig = EvalConfig()
    push: PushConfig = PushConfig()
    data_checks: DataChecksConfig = DataChecksConfig()
    # A Tuner before training (`--tune`): its best hyper-parameters feed the training step; None: no Tuner.
    tuning: TuningConfig | None = None
    pipeline_name: str = PIPELINE_NAME
    beam_pipeline_args: tuple[str, ...] = ("--direct_running_mode=in_memory", "--direct_num_workers=1")
    enable_cache: bool = True
    # Kubeflow: the input folder and the training epochs become pipeline parameters a run can change, with this
    # config's values as defaults (pipeline/runtime_parameters.py); LocalDagRunner takes the values themselves.
    runtime_parameters: bool = False
    # A digest of the project's code: part of Transform's and Trainer's cache keys, so editing the code
    # re-runs them (module paths alone would leave a stale model cached).
    code_fingerprint: str = ""


def refuse_warm_start(config: PipelineConfig, family: str) -> None:
    """For the families without a warm start (the champion's weights do not fit their training).

    Raises:
        ValueError: `config` asks for one.
    """
    if config.trainer.train.warm_start:
        raise ValueError(f"--warm-start is for the Keras baselines; {family} trains from fresh weights each run")


# Baseline settings (issue 9, fix 5): as the reference compares them (algorithms.md §1.8, hyperparam.md).
# - Width: every deep baseline's MLP has 3 blocks of D = fields × embedding units ("D-wide", as OptFusion's deep
#   blocks: 1560 on Criteo, 960 on Avazu, 400 on Frappe). The field count is known only after Transform, so the
#   preset holds the rule (trainer.models.dnn.D_WIDE) and the model builders resolve it.
# - Learning rate and coupled L2 (the same λ on embeddings and network): hyperparam.md's where it lists the model and
#   the dataset (the layout's `reference.baseline_lr_l2`, transform/layouts/), at every batch size (no floor: the
#   samples train at batch 256 with these rates).
# - Where it does not (LR and FM everywhere, every baseline on Frappe): the point of BASELINE_GRID with the best
#   eval-split AUC (GRID_CHOICE_LR_L2, with the measurement it came from in GRID_EVIDENCE).
BASELINES: tuple[str, ...] = ("lr", "fm", "dnn", "deepfm", "dcn", "dcnv2", "xdeepfm", "ipnn")
# The documented small grid for what hyperparam.md does not give: every (learning rate, L2) pair, one training run
# each (seed 2024, the preset's batch and epochs), the best eval-split AUC wins. Run it with
# `python -m benchmarks.quality_table --grid` (benchmarks/quality_table.py), which prints the winners.
BASELINE_GRID: dict[str, tuple[float, ...]] = {"learning_rate": (3e-4, 1e-3, 3e-3), "l2": (0.0, 1e-6)}
GRID_CHOICE_LR_L2: dict[str, dict[str, tuple[float, float]]] = {
    "lr": {"criteo": (0.003, 1e-06), "avazu": (0.003, 1e-06), "kdd12": (0.0003, 0.0), "frappe": (0.003, 1e-06)},
    "fm": {"criteo": (0.001, 1e-06), "avazu": (0.001, 1e-06), "kdd12": (0.0003, 1e-06), "frappe": (0.003, 1e-06)},
    "dnn": {"frappe": (0.001, 0.0)},
    "deepfm": {"frappe": (0.003, 0.0)},
    "dcn": {"frappe": (0.003, 0.0)},
    "dcnv2": {"frappe": (0.003, 0.0)},
    "xdeepfm": {"frappe": (0.003, 1e-06)},
    "ipnn": {"frappe": (0.003, 1e-06)},
}
# Where each GRID_CHOICE_LR_L2 entry comes from (model -> dataset -> text): the winner's eval AUC (its best epoch /
# epochs run) and the range of the other five points, measured by `python -m benchmarks.quality_table --grid`
# (2026-11-29, seed 2024, batch 256; docs/benchmarks.md "Baseline grid"); entries not listed were not measured.
_NOT_MEASURED = "not measured: the grid's middle rate (KDD12: its smallest, hyperparam.md gives KDD12 3e-5)"
GRID_EVIDENCE: dict[str, dict[str, str]] = {
    "lr": {
        "kdd12": _NOT_MEASURED,
        "criteo": "eval AUC 0.7002 (epoch 5/5, the top rate); others 0.6762-0.6998",
        "frappe": "eval AUC 0.9249 (epoch 5/5, the top rate); others 0.8978-0.9248",
        "avazu": "eval AUC 0.7160 (epoch 5/5, the top rate); others 0.5789-0.7160",
    },
    "fm": {
        "kdd12": _NOT_MEASURED,
        "criteo": "eval AUC 0.7000 (epoch 4/5); others 0.6843-0.6998",
        "frappe": "eval AUC 0.9425 (epoch 5/5, the top rate); others 0.9270-0.9417",
        "avazu": "eval AUC 0.7181 (epoch 5/5); others 0.5631-0.7178",
    },
    "dnn": {
        "frappe": "eval AUC 0.9289 (epoch 2/3); others 0.9283-0.9289",
    },
    "deepfm": {
        "frappe": "eval AUC 0.9417 (epoch 5/5, the top rate); others 0.9296-0.9385 (re-run 2026-11-30 after DeepFM's "
                  "tower took dnn.py's initialisation)",
    },
    "dcn": {
        "frappe": "eval AUC 0.9310 (epoch 1/2, the top rate); others 0.9291-0.9310",
    },
    "dcnv2": {
        "frappe": "eval AUC 0.9413 (epoch 5/5, the top rate); others 0.9294-0.9412",
    },
    "xdeepfm": {
        "frappe": "eval AUC 0.9499 (epoch 5/5, the top rate); others 0.9297-0.9471",
    },
    "ipnn": {
        "frappe": "eval AUC 0.9521 (epoch 3/4, the top rate); others 0.9295-0.9510",
    },
}
# Models in neither table (the OptFusion and ResFusion families) keep DeepFM's values.
_FALLBACK_MODEL = "deepfm"
NUM_HIDDEN_BLOCKS = 3


def reference(dataset: str) -> ReferenceSettings:
    """The reference settings a run on `dataset` takes: its layout's, or those of the layout it names in
    `settings_of` (OptFusion TFRecords of unknown origin: Criteo's; local_runner.settings_layout first resolves a
    TFRecord folder's meta.json to its dataset).

    Raises:
        ValueError: an unknown dataset, or one without reference settings.
    """
    spec = features.get_dataset(features.get_dataset(dataset).settings_layout)
    if spec.reference is None:
        raise ValueError(f"dataset {dataset!r} has no reference settings")
    return spec.reference


def reference_lr_l2(dataset: str, model: str) -> tuple[float, float] | None:
    """hyperparam.md's (learning rate, L2) of `model` on `dataset` (algorithms.md §1.8), or None where it has none."""
    return reference(dataset).baseline_lr_l2.get(model)


def learning_rate_and_l2(dataset: str, model: str) -> tuple[float, float]:
    """(learning rate, L2) of `model` on `dataset`: hyperparam.md's where it gives it, else the grid's choice
    (GRID_CHOICE_LR_L2); models of neither (OptFusion, ResFusion families) take DeepFM's."""
    column = features.get_dataset(dataset).settings_layout
    for name in (model, _FALLBACK_MODEL):
        found = reference_lr_l2(dataset, name) or GRID_CHOICE_LR_L2.get(name, {}).get(column)
        if found is not None:
            return found
    raise KeyError(f"no learning rate for {model!r} on {dataset!r}")


def lr_l2_source(dataset: str, model: str) -> str:
    """Where `learning_rate_and_l2(dataset, model)` comes from, in words (for reports)."""
    column = features.get_dataset(dataset).settings_layout
    known = reference_lr_l2(dataset, model) is not None or column in GRID_CHOICE_LR_L2.get(model, {})
    name = model if known else _FALLBACK_MODEL
    prefix = "" if name == model else f"{_FALLBACK_MODEL}'s: "
    if reference_lr_l2(dataset, name) is not None:
        return prefix + "algorithms.md §1.8 (hyperparam.md" + (", FNN's row)" if name == "dnn" else ")")
    evidence = GRID_EVIDENCE.get(name, {}).get(column, "not measured yet")
    return prefix + f"grid choice ({evidence})"


def trainer_preset(dataset: str, model: str = "deepfm", size: str = "small") -> TrainerConfig:
    """Model and optimiser settings by dataset (its settings layout: frappe for Frappe TFRecords) and data size.

    size: "small" (the shared samples: batch 256), "full" (full datasets: batch 4096, the reference), both with
    3 D-wide blocks and the learning rate and L2 of `learning_rate_and_l2`; "test" (tiny embeddings, one epoch:
    for tests and smoke runs).
    """
    learning_rate, l2 = learning_rate_and_l2(dataset, model)
    if size == "test":
        return TrainerConfig(ModelConfig(name=model, embedding_dim=4, hidden_units=(16,)),
                             TrainConfig(batch_size=256, epochs=1, learning_rate=3e-3, l2_embedding=0.0, l2_dense=0.0))
    if size not in ("small", "full"):
        raise ValueError(f"unknown preset size {size!r}; choose small, full or test")
    from trainer.models.dnn import D_WIDE
    return TrainerConfig(ModelConfig(name=model, embedding_dim=reference(dataset).embedding_dim,
                                     hidden_units=(D_WIDE,) * NUM_HIDDEN_BLOCKS),
                         TrainConfig(batch_size=256 if size == "small" else 4096, epochs=5,
                                     learning_rate=learning_rate, l2_embedding=l2, l2_dense=l2))


def baseline_grid(dataset: str, model: str, size: str = "small") -> list[TrainerConfig]:
    """`trainer_preset` with every (learning rate, L2) of BASELINE_GRID: 6 configs, lr-major order.

    To re-run the grid (e.g. FM on the Criteo sample), train each config on the same data and keep the one whose
    best eval-split `val_auc` (the Trainer's `history.json`) is highest; only the Trainer re-runs, the rest is
    cached:

        import dataclasses, local_runner
        from tfx import v1 as tfx
        from pipeline import configs, pipeline
        base = local_runner.build_config(local_runner.parse_args(["--dataset", "criteo", "--data", DATA,
                                                                  "--model", "fm", "--preset", "small"]))
        for trainer in configs.baseline_grid("criteo", "fm", "small"):
            tfx.orchestration.LocalDagRunner().run(pipeline.create_pipeline(dataclasses.replace(base, trainer=trainer)))

    `python -m benchmarks.quality_table --grid` does this for every model and dataset that needs it, in-process
    from one Transform run per dataset; write the winners into GRID_CHOICE_LR_L2 and GRID_EVIDENCE.
    """
    preset = trainer_preset(dataset, model, size)
    return [dataclasses.replace(preset, train=dataclasses.replace(preset.train, learning_rate=learning_rate,
                                                                  l2_embedding=l2, l2_dense=l2))
            for learning_rate in BASELINE_GRID["learning_rate"] for l2 in BASELINE_GRID["l2"]]
