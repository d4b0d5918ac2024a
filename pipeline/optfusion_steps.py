"""The OptFusion model family (`--model optfusion-hard | optfusion-soft`): search, then retrain, as pipeline steps.

    Transform -> [Tuner (--tune)] -> OptFusionSearch -> architecture (OptFusionArchitecture) -> OptFusionRetrain
              -> model -> Evaluator, Pusher

`default_options(dataset, size, train)` gives the family's one settings object, OptFusionSettings
(trainer/optfusion/settings.py), with the per-dataset values of algorithms.md §1.8 (Frappe uses Avazu's);
`train(...)` passes its `search` to the search step unchanged and `retrain(mode)` to the retrain step. The search
gets only search settings, so optfusion-hard and optfusion-soft runs with the same search settings share one
(cached) search.
"""
from __future__ import annotations

import dataclasses

from tfx import v1 as tfx

from components.optfusion import OptFusionRetrain, OptFusionSearch
from pipeline import configs, keras_steps, runtime_parameters, tuner_step
from trainer.config import TrainConfig
from trainer.optfusion.settings import (
    MODEL_MODES,
    TRIAL_SETTINGS_KEY,
    OptFusionSettings,
    RetrainRates,
    RunSettings,
    SearchSettings,
)
from trainer.tuning import Choice, LogRange, SearchSpace

# What `--tune` searches for the OptFusion search step (names: SearchSettings.HYPERPARAMETERS); the retrain inherits
# the tuned embedding size. The ranges hold every dataset's reference value (algorithms.md §1.8).
SEARCH_SPACE: SearchSpace = (
    LogRange("learning_rate", 1e-4, 1e-2),
    Choice("l2", (0.0, 1e-6, 3e-6, 1e-5)),
    Choice("embedding_dim", (8, 16, 32, 40)),
    LogRange("arch_learning_rate", 1e-3, 1.0),
)
TRIAL_FN = "trainer.optfusion.training.tuning_trial"


def preset(dataset: str, size: str = "small", train: TrainConfig | None = None) -> OptFusionSettings:
    """Per-dataset reference settings (algorithms.md §1.8; Frappe uses Avazu's) at the batch size, epochs and seed
    of the pipeline's TrainConfig `train` (default: configs.trainer_preset's for `size`: 256 / 4096 rows, 5 epochs,
    seed 2024). "test" is tiny: embedding 4, batches of 64, at most 100 steps per epoch.

    Raises:
        ValueError: an unknown dataset or preset size.
    """
    reference = configs.reference(dataset)
    ref = reference.optfusion
    preset_train = configs.trainer_preset(dataset, size=size).train  # raises on an unknown size
    train = train or preset_train
    run = RunSettings(batch_size=train.batch_size, epochs=train.epochs, seed=train.seed)
    settings = OptFusionSettings(
        search=SearchSettings(embedding_dim=reference.embedding_dim, lr_emb=ref.search_lr, lr_nn=ref.search_lr,
                              arch_lr=ref.arch_lr, l2_emb=ref.search_l2, l2_nn=ref.search_l2, run=run),
        hard=RetrainRates(*ref.hard), soft_reference=RetrainRates(*ref.soft_reference))
    if size != "test":
        return settings
    # Smoke runs: learn something from a few thousand rows in one short epoch, keep the search gentle enough that
    # the architecture is not pruned to nothing in a handful of steps.
    search = dataclasses.replace(settings.search, embedding_dim=4, lr_emb=3e-3, lr_nn=3e-3, arch_lr=1e-2, l2_emb=0.0,
                                 l2_nn=0.0, run=dataclasses.replace(run, batch_size=64, max_steps_per_epoch=100))
    gentle = RetrainRates(3e-3, 0.0)
    return dataclasses.replace(settings, search=search, hard=gentle, soft_reference=gentle)


# --- the family interface (pipeline.families.FamilySteps) -------------------------------------------------------------

def default_options(dataset: str, size: str, train: TrainConfig) -> OptFusionSettings:
    """The family interface: `preset(dataset, size, train)`.

    Raises:
        ValueError: an unknown dataset or preset size.
    """
    return preset(dataset, size, train)


def pre_transform(config: configs.PipelineConfig, examples: tfx.dsl.Channel
                  ) -> tuple[list[tfx.types.BaseNode], tfx.dsl.Channel]:
    """The family interface: no steps before Transform (keras_steps.pre_transform): Transform reads `examples`."""
    return keras_steps.pre_transform(config, examples)


def mode_of(config: configs.PipelineConfig, options: OptFusionSettings) -> str:
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
                         f"choose one of {sorted(MODEL_MODES)} or set OptFusionSettings.mode") from None


def train(config: configs.PipelineConfig, transform: tfx.components.Transform, schema: tfx.dsl.Channel,
          champion: tfx.dsl.Channel) -> tuple[list[tfx.types.BaseNode], tfx.dsl.Channel]:  # noqa: ARG001 - the family interface
    """OptFusionSearch -> OptFusionRetrain; returns the retrained Model channel for the Evaluator and Pusher. Tuned
    (`--tune`): a Tuner over SEARCH_SPACE first, each trial a search; the search step applies the best values.

    Raises:
        ValueError: warm start asked for (a new search each run: its gates start open).
    """
    configs.refuse_warm_start(config, "OptFusion")
    options = config.model_options
    if options is None:  # a PipelineConfig built by hand: the small preset, at its TrainConfig's batch and epochs
        options = preset(config.dataset.name, "small", config.trainer.train)
    if not isinstance(options, OptFusionSettings):
        raise TypeError(f"model_options must be OptFusionSettings, got {type(options).__name__}")
    tuners, hyperparameters = [], None
    if config.tuning is not None:
        run = dataclasses.replace(options.search.run,
                                  epochs=tuner_step.trial_epochs(config, options.search.run.epochs))
        trial_settings = dataclasses.replace(options.search, run=run, export_supernet=False)
        tuner = tuner_step.tuner_component(
            config, examples=transform.outputs["transformed_examples"],
            transform_graph=transform.outputs["transform_graph"], schema=schema, trial_fn=TRIAL_FN,
            space=SEARCH_SPACE, family_config={TRIAL_SETTINGS_KEY: trial_settings.to_json()})
        tuners, hyperparameters = [tuner], tuner.outputs["best_hyperparameters"]
    search = OptFusionSearch(
        examples=transform.outputs["transformed_examples"],
        transform_graph=transform.outputs["transform_graph"],
        settings=options.search,
        code_fingerprint=config.code_fingerprint,
        hyperparameters=hyperparameters,
        epochs=runtime_parameters.epochs(config))
    retrain = OptFusionRetrain(
        examples=transform.outputs["transformed_examples"],
        transform_graph=transform.outputs["transform_graph"],
        architecture=search.outputs["architecture"],
        settings=options.retrain(mode_of(config, options)),
        code_fingerprint=config.code_fingerprint,
        epochs=runtime_parameters.epochs(config))
    return [*tuners, search, retrain], retrain.outputs["model"]
