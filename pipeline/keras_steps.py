"""The plain Keras family (`--model lr | fm | dnn | deepfm | dcn | dcnv2 | xdeepfm | ipnn`): one stock Trainer.

    Transform -> [Tuner (--tune)] -> Trainer (CtrTrainer: trainer.train.run_fn: the model of trainer.models.registry)
              -> Evaluator, Pusher

Every family module (this one, optfusion_steps, resfusion_steps) has the three functions of `families.FamilySteps`;
pipeline/families.py says which family a `--model` name belongs to.
"""
from __future__ import annotations

from tfx import v1 as tfx

from components.ctr_trainer import CtrTrainer
from pipeline import configs, runtime_parameters, tuner_step
from trainer.config import TrainConfig
from trainer.train import DATASET_KEY
from trainer.tuning import Choice, LogRange, SearchSpace

# What `--tune` searches for a Keras model (names: TrainerConfig.HYPERPARAMETERS). The ranges hold every value
# hyperparam.md gives the baselines (learning rates 1e-4..3e-3, L2 0..1e-5; embedding 16 or 40).
SEARCH_SPACE: SearchSpace = (
    LogRange("learning_rate", 1e-4, 1e-2),
    Choice("l2", (0.0, 1e-7, 1e-6, 1e-5)),
    Choice("embedding_dim", (8, 16, 32, 40)),
)
TRIAL_FN = "trainer.train.tuning_trial"


def default_options(dataset: str, size: str, train: TrainConfig) -> None:  # noqa: ARG001 - the family interface
    """No settings beyond the pipeline's TrainerConfig (trainer preset)."""
    return None


def pre_transform(config: configs.PipelineConfig, examples: tfx.dsl.Channel  # noqa: ARG001 - the family interface
                  ) -> tuple[list[tfx.types.BaseNode], tfx.dsl.Channel]:
    """No steps before Transform: Transform reads ExampleGen's examples."""
    return [], examples


def train(config: configs.PipelineConfig, transform: tfx.components.Transform, schema: tfx.dsl.Channel,
          champion: tfx.dsl.Channel) -> tuple[list[tfx.types.BaseNode], tfx.dsl.Channel]:
    """One stock Trainer on the transformed train split (early stopping on eval); returns its Model channel. Tuned
    (`--tune`): a Tuner over SEARCH_SPACE first, whose best values the Trainer applies (`hyperparameters`). With
    `warm_start` the Trainer starts from the champion's weights (trainer/warm_start.py): its `base_model`."""
    tuners, hyperparameters = [], None
    if config.tuning is not None:
        tuner = tuner_step.tuner_component(
            config, examples=transform.outputs["transformed_examples"],
            transform_graph=transform.outputs["transform_graph"], schema=schema, trial_fn=TRIAL_FN,
            space=SEARCH_SPACE, family_config=tuner_step.trainer_config_for_trials(config))
        tuners, hyperparameters = [tuner], tuner.outputs["best_hyperparameters"]
    trainer = CtrTrainer(
        run_fn=configs.RUN_FN,
        examples=transform.outputs["transformed_examples"],
        transform_graph=transform.outputs["transform_graph"],
        schema=schema,
        hyperparameters=hyperparameters,
        base_model=champion if config.trainer.train.warm_start else None,
        train_args=tfx.proto.TrainArgs(splits=["train"]),
        eval_args=tfx.proto.EvalArgs(splits=["eval"]),  # the test split is never seen by training
        custom_config={**config.trainer.to_custom_config(), "code_fingerprint": config.code_fingerprint,
                       DATASET_KEY: config.dataset.name},
        epochs=runtime_parameters.epochs(config),
    )
    return [*tuners, trainer], trainer.outputs["model"]
