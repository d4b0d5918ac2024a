"""The plain Keras family (`--model lr | fm | dnn | deepfm | dcn | dcnv2 | xdeepfm | ipnn`): one stock Trainer.

    Transform -> Trainer (trainer.train.run_fn: the model of trainer.models.registry) -> Evaluator, Pusher

Every family module (this one, optfusion_steps, resfusion_steps) has the three functions of `families.FamilySteps`;
pipeline/families.py says which family a `--model` name belongs to.
"""
from __future__ import annotations

from tfx import v1 as tfx

from pipeline import configs
from trainer.config import TrainConfig


def default_options(dataset: str, size: str, train: TrainConfig) -> None:  # noqa: ARG001 - the family interface
    """No settings beyond the pipeline's TrainerConfig (trainer preset)."""
    return None


def pre_transform(config: configs.PipelineConfig, examples: tfx.dsl.Channel  # noqa: ARG001 - the family interface
                  ) -> tuple[list[tfx.types.BaseNode], tfx.dsl.Channel]:
    """No steps before Transform: Transform reads ExampleGen's examples."""
    return [], examples


def train(config: configs.PipelineConfig, transform: tfx.components.Transform, schema: tfx.dsl.Channel
          ) -> tuple[list[tfx.types.BaseNode], tfx.dsl.Channel]:
    """One stock Trainer on the transformed train split (early stopping on eval); returns its Model channel."""
    trainer = tfx.components.Trainer(
        run_fn=configs.RUN_FN,
        examples=transform.outputs["transformed_examples"],
        transform_graph=transform.outputs["transform_graph"],
        schema=schema,
        train_args=tfx.proto.TrainArgs(splits=["train"]),
        eval_args=tfx.proto.EvalArgs(splits=["eval"]),  # the test split is never seen by training
        custom_config={**config.trainer.to_custom_config(), "code_fingerprint": config.code_fingerprint},
    )
    return [trainer], trainer.outputs["model"]
