"""The OptFusion model family (`--model optfusion-hard | optfusion-soft`): search, then retrain, as pipeline steps.

    Transform -> OptFusionSearch -> architecture (OptFusionArchitecture) -> OptFusionRetrain -> model
              -> Evaluator, Pusher

`default_options(dataset, size)` gives the per-dataset settings of algorithms.md §1.8 (Frappe uses Avazu's);
`train(...)` turns them into one SearchSettings and one RetrainSettings and wires the two components. The search
gets only search settings, so optfusion-hard and optfusion-soft runs with the same search settings share one
(cached) search.
"""
from __future__ import annotations

import dataclasses

from tfx import v1 as tfx

from components.optfusion import OptFusionRetrain, OptFusionSearch
from pipeline import configs, keras_steps
from trainer.config import TrainConfig
from trainer.optfusion.settings import RETRAIN_MODES, SOFT_RATES, RetrainSettings, RunSettings, SearchSettings

MODEL_MODES = {"optfusion-hard": "hard", "optfusion-soft": "soft"}


@dataclasses.dataclass(frozen=True)
class OptFusionOptions:
    """OptFusion settings of a pipeline run (reference values: algorithms.md §1.8, Criteo column by default).

    Attributes:
        embedding_dim: E per field (40 for Criteo/Avazu, 16 for KDD12).
        search_lr_emb, search_lr_nn, search_arch_lr: Adam learning rates of the search's three groups.
        search_l2_emb, search_l2_nn: coupled L2 of the search's embedding and network groups (arch: none).
        retrain_lr_hard, retrain_l2_hard: learning rate and coupled L2 (both groups) of the Hard retrain.
        soft_rates: the Soft retrain's learning rate and L2: "hard" (the Hard row's, the default) or "reference"
            (retrain.sh's: 1e-7 on Avazu/Frappe, 3e-8 on KDD12; at that rate the retrain is an evaluation of the
            supernet, algorithms.md §1.5 problem 3).
        retrain_lr_soft_reference, retrain_l2_soft_reference: retrain.sh's Soft rate and L2 (soft_rates "reference").
        mode: "hard" or "soft"; None takes it from --model (optfusion-hard / optfusion-soft).
        inherit_weights: retrain from the supernet's weights (the reference default) or from scratch.
        batch_size, epochs: None takes them from the pipeline's TrainConfig (the preset, --batch-size, --epochs).
        max_steps_per_epoch: cap on training steps per epoch (smoke runs), None for whole epochs.
        early_stopping_patience: epochs without a better eval AUC before stopping (reference 1).
        num_blocks: (cross, deep) blocks of the supernet (reference 3).
        l2_mode: "dense" (the reference: the whole embedding table every step) or "lazy" (rows in the batch).
        precision: "float32", "mixed_bfloat16" or "mixed_float16".
        jit_compile: XLA-compile the forward/backward pass.
        steps_per_execution: training steps per tf.function call.
        seed: initialisation and shuffling seed (reference 2024).
        export_supernet: also export the searched supernet as a serving Model (to score the search stage).
    """

    embedding_dim: int = 40
    search_lr_emb: float = 3e-4
    search_lr_nn: float = 3e-4
    search_arch_lr: float = 3e-1
    search_l2_emb: float = 3e-6
    search_l2_nn: float = 3e-6
    retrain_lr_hard: float = 3e-4
    retrain_l2_hard: float = 3e-6
    soft_rates: str = "hard"
    retrain_lr_soft_reference: float = 3e-4
    retrain_l2_soft_reference: float = 3e-6
    mode: str | None = None
    inherit_weights: bool = True
    batch_size: int | None = None
    epochs: int | None = None
    max_steps_per_epoch: int | None = None
    early_stopping_patience: int = 1
    num_blocks: int = 3
    l2_mode: str = "dense"
    precision: str = "float32"
    jit_compile: bool = False
    steps_per_execution: int = 16
    seed: int = 2024
    export_supernet: bool = True

    def run_settings(self, train: TrainConfig) -> RunSettings:
        """The RunSettings shared by search and retrain; batch size and epochs fall back to `train` (the pipeline's
        TrainConfig: the preset, --batch-size, --epochs).
        """
        return RunSettings(batch_size=self.batch_size or train.batch_size, epochs=self.epochs or train.epochs,
                           early_stopping_patience=self.early_stopping_patience,
                           max_steps_per_epoch=self.max_steps_per_epoch, steps_per_execution=self.steps_per_execution,
                           l2_mode=self.l2_mode, precision=self.precision, jit_compile=self.jit_compile,
                           seed=self.seed)

    def search_settings(self, train: TrainConfig) -> SearchSettings:
        """The search stage's SearchSettings (algorithms.md §1.4, §1.8): embedding E, blocks, the three groups' learning
        rates, the embedding and network L2, export_supernet, and run_settings(train).
        """
        return SearchSettings(embedding_dim=self.embedding_dim, num_blocks=self.num_blocks,
                              lr_emb=self.search_lr_emb, lr_nn=self.search_lr_nn, arch_lr=self.search_arch_lr,
                              l2_emb=self.search_l2_emb, l2_nn=self.search_l2_nn,
                              export_supernet=self.export_supernet, run=self.run_settings(train))

    def retrain_settings(self, mode: str, train: TrainConfig) -> RetrainSettings:
        """The retrain stage's RetrainSettings for `mode` "hard" or "soft" (algorithms.md §1.5).

        Both variable groups take the Hard row's learning rate and L2, or retrain.sh's Soft ones when `mode` is "soft"
        and soft_rates is "reference".

        Raises:
            ValueError: an unknown mode or soft_rates.
        """
        if mode not in RETRAIN_MODES:
            raise ValueError(f"mode must be one of {RETRAIN_MODES}, got {mode!r}")
        if self.soft_rates not in SOFT_RATES:
            raise ValueError(f"soft_rates must be one of {SOFT_RATES}, got {self.soft_rates!r}")
        lr, l2 = self.retrain_lr_hard, self.retrain_l2_hard
        if mode == "soft" and self.soft_rates == "reference":
            lr, l2 = self.retrain_lr_soft_reference, self.retrain_l2_soft_reference
        return RetrainSettings(mode=mode, inherit_weights=self.inherit_weights, lr_emb=lr, lr_nn=lr, l2_emb=l2,
                               l2_nn=l2, run=self.run_settings(train))


def preset(dataset: str, size: str = "small") -> OptFusionOptions:
    """Per-dataset reference settings. size "small"/"full" keep them (batch and epochs come from the pipeline's
    TrainConfig: 256 / 4096, 5 epochs); "test" is tiny: embedding 4, batches of 64, at most 100 steps per
    epoch (the test TrainConfig gives one epoch)."""
    reference = configs.reference(dataset)
    ref = reference.optfusion
    options = OptFusionOptions(
        embedding_dim=reference.embedding_dim, search_lr_emb=ref.search_lr, search_lr_nn=ref.search_lr,
        search_arch_lr=ref.arch_lr, search_l2_emb=ref.search_l2, search_l2_nn=ref.search_l2,
        retrain_lr_hard=ref.hard[0], retrain_l2_hard=ref.hard[1],
        retrain_lr_soft_reference=ref.soft_reference[0], retrain_l2_soft_reference=ref.soft_reference[1])
    if size == "test":
        # Smoke runs: learn something from a few thousand rows in one short epoch, keep the search gentle enough
        # that the architecture is not pruned to nothing in a handful of steps.
        return dataclasses.replace(options, embedding_dim=4, search_lr_emb=3e-3, search_lr_nn=3e-3,
                                   search_arch_lr=1e-2, search_l2_emb=0.0, search_l2_nn=0.0,
                                   retrain_lr_hard=3e-3, retrain_l2_hard=0.0, retrain_lr_soft_reference=3e-3,
                                   retrain_l2_soft_reference=0.0, batch_size=64, max_steps_per_epoch=100)
    if size not in ("small", "full"):
        raise ValueError(f"unknown preset size {size!r}; choose small, full or test")
    return options


# --- the family interface (pipeline.families.FamilySteps) -------------------------------------------------------------

def default_options(dataset: str, size: str) -> OptFusionOptions:
    """The family interface: `preset(dataset, size)`.

    Raises:
        ValueError: an unknown dataset or preset size.
    """
    return preset(dataset, size)


def pre_transform(config: configs.PipelineConfig, examples: tfx.dsl.Channel
                  ) -> tuple[list[tfx.types.BaseNode], tfx.dsl.Channel]:
    """The family interface: no steps before Transform (keras_steps.pre_transform): Transform reads `examples`."""
    return keras_steps.pre_transform(config, examples)


def mode_of(config: configs.PipelineConfig, options: OptFusionOptions) -> str:
    """The retrain mode, "hard" or "soft": options.mode when set, else the --model name's (MODEL_MODES).

    Raises:
        ValueError: options.mode is None and --model is not an OptFusion model.
    """
    if options.mode is not None:
        return options.mode
    try:
        return MODEL_MODES[config.trainer.model.name]
    except KeyError:
        raise ValueError(f"model {config.trainer.model.name!r} is not an OptFusion model; "
                         f"choose one of {sorted(MODEL_MODES)} or set OptFusionOptions.mode") from None


def train(config: configs.PipelineConfig, transform: tfx.components.Transform, schema: tfx.dsl.Channel
          ) -> tuple[list[tfx.types.BaseNode], tfx.dsl.Channel]:
    """OptFusionSearch -> OptFusionRetrain; returns the retrained Model channel for the Evaluator and Pusher."""
    del schema  # the transformed schema inside the transform graph is what the steps read
    options = config.model_options
    if options is None:
        options = preset(config.dataset.name)
    if not isinstance(options, OptFusionOptions):
        raise TypeError(f"model_options must be OptFusionOptions, got {type(options).__name__}")
    train_config = config.trainer.train
    search = OptFusionSearch(
        examples=transform.outputs["transformed_examples"],
        transform_graph=transform.outputs["transform_graph"],
        settings=options.search_settings(train_config),
        code_fingerprint=config.code_fingerprint)
    retrain = OptFusionRetrain(
        examples=transform.outputs["transformed_examples"],
        transform_graph=transform.outputs["transform_graph"],
        architecture=search.outputs["architecture"],
        settings=options.retrain_settings(mode_of(config, options), train_config),
        code_fingerprint=config.code_fingerprint)
    return [search, retrain], retrain.outputs["model"]
