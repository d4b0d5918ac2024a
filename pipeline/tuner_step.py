"""The Tuner step a model family puts before its training step when the pipeline is tuned (`--tune`).

    Transform -> Tuner (components/tuner.py; trainer/tuner.py: tuner_fn, trials of `trial_fn`)
              -> best_hyperparameters -> the family's training step (`hyperparameters` input)

Each family module declares its SEARCH_SPACE and its trial function, and calls `tuner_component` in its `train`.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Any

from tfx import v1 as tfx

from components.tuner import Tuner
from pipeline import configs
from trainer import tuning

TUNER_FN = "trainer.tuner.tuner_fn"
TRIALS_FOLDER = "trials"  # <pipeline_root>/Tuner/trials/<search digest>/trial_<id>/: resumable across runs


def trial_epochs(config: configs.PipelineConfig, epochs: int) -> int:
    """The epochs of each trial: the TuningConfig's trial_epochs, else the family's `epochs`."""
    assert config.tuning is not None
    return config.tuning.trial_epochs or epochs


def trainer_config_for_trials(config: configs.PipelineConfig) -> dict[str, Any]:
    """The TrainerConfig custom_config of the pipeline's Keras training at the trials' epochs."""
    trainer = config.trainer
    train = dataclasses.replace(trainer.train, epochs=trial_epochs(config, trainer.train.epochs))
    return dataclasses.replace(trainer, train=train).to_custom_config()


def tuner_component(config: configs.PipelineConfig, *, examples: tfx.dsl.Channel, transform_graph: tfx.dsl.Channel,
                    schema: tfx.dsl.Channel, trial_fn: str, space: tuning.SearchSpace, family_config: dict[str, Any],
                    base_model: tfx.dsl.Channel | None = None) -> Tuner:
    """The Tuner of `config.tuning` over `space`: each trial calls `trial_fn` (a dotted name, e.g.
    "trainer.train.tuning_trial") with `family_config` as the training config; it trains on the train split and is
    scored on eval (the test split is never read).

    Raises:
        ValueError: the pipeline is not tuned (config.tuning is None).
    """
    if config.tuning is None:
        raise ValueError("tuner_component needs PipelineConfig.tuning (--tune)")
    return Tuner(
        tuner_fn=TUNER_FN,
        examples=examples,
        transform_graph=transform_graph,
        schema=schema,
        base_model=base_model,
        train_args=tfx.proto.TrainArgs(splits=["train"]),
        eval_args=tfx.proto.EvalArgs(splits=["eval"]),
        custom_config={
            **family_config,
            tuning.TRIAL_FN_KEY: trial_fn,
            tuning.SEARCH_SPACE_KEY: tuning.space_to_json(space),
            tuning.TUNING_KEY: dataclasses.asdict(config.tuning),
            tuning.TRIALS_DIR_KEY: os.path.join(config.pipeline_root, "Tuner", TRIALS_FOLDER),
            "code_fingerprint": config.code_fingerprint,
        },
    )
