"""Every `--model` name and the family of pipeline steps that trains it: the one registry of model families.

    FAMILIES["dcn"]            -> Family("dcn", keras_steps, ...)      one stock Trainer
    FAMILIES["optfusion-hard"] -> Family(..., optfusion_steps, ...)    OptFusionSearch -> OptFusionRetrain
    FAMILIES["resfusion"]      -> Family(..., resfusion_steps, ...)    GbdtResidual -> Trainer (residual stages)

The names come from where each family defines them, so a new model is one entry there: a Keras baseline in
trainer.models.registry.LOGIT_BUILDERS, an OptFusion retrain mode in trainer.optfusion.settings.MODEL_MODES, a ResFusion
variant in resfusion_steps.VARIANTS. Their keys are local_runner.py's `--model` choices.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Protocol

from tfx import v1 as tfx

from pipeline import configs, keras_steps, optfusion_steps, resfusion_steps
from trainer.config import TrainConfig
from trainer.models import registry


class FamilySteps(Protocol):
    """What a family module provides (pipeline/keras_steps.py is the simplest)."""

    def default_options(self, dataset: str, size: str, train: TrainConfig) -> Any:
        """The family's settings for a dataset, a preset size and the pipeline's TrainConfig (batch size, epochs,
        seed after the flags): a frozen dataclass passed to the family's steps unchanged, or None."""

    def pre_transform(self, config: configs.PipelineConfig, examples: tfx.dsl.Channel
                      ) -> tuple[list[tfx.types.BaseNode], tfx.dsl.Channel]:
        """Steps before Transform, and the examples Transform reads."""

    def train(self, config: configs.PipelineConfig, transform: tfx.components.Transform, schema: tfx.dsl.Channel,
              champion: tfx.dsl.Channel) -> tuple[list[tfx.types.BaseNode], tfx.dsl.Channel]:
        """The training steps, and the Model channel the Evaluator judges and the Pusher pushes (a SavedModel with
        the raw-tf.Example serving signature). `champion`: the latest blessed model, the base of a warm start
        (TrainConfig.warm_start; the families without one raise ValueError when it is set)."""


@dataclasses.dataclass(frozen=True)
class Family:
    """One `--model` choice.

    Attributes:
        name: the `--model` value.
        steps: the family module that adds its pipeline steps (FamilySteps).
        summary: what it trains, in a few words (for --help and errors).
    """

    name: str
    steps: FamilySteps
    summary: str


def _families() -> dict[str, Family]:
    keras = {name: Family(name, keras_steps, "Keras baseline, one Trainer") for name in registry.LOGIT_BUILDERS}
    optfusion = {name: Family(name, optfusion_steps, f"OptFusion search, then the {mode} retrain")
                 for name, mode in optfusion_steps.MODEL_MODES.items()}
    resfusion = {name: Family(name, resfusion_steps, variant.summary)
                 for name, variant in resfusion_steps.VARIANTS.items()}
    return {**keras, **optfusion, **resfusion}


FAMILIES: dict[str, Family] = _families()


def get_family(model: str) -> Family:
    """The family of `--model` name `model`.

    Raises:
        ValueError: an unknown name; the message lists the valid ones.
    """
    try:
        return FAMILIES[model]
    except KeyError:
        raise ValueError(f"unknown model {model!r}; choose one of {', '.join(FAMILIES)}") from None
