"""OptFusionSearch and OptFusionRetrain: custom TFX components (class-based: a spec, an executor, a component).

    OptFusionSearch(examples, transform_graph[, hyperparameters]) -> architecture (OptFusionArchitecture),
                                                                     supernet (Model), model_run (ModelRun)
    OptFusionRetrain(examples, transform_graph, architecture)     -> model (Model), model_run (ModelRun)

Settings travel as JSON execution parameters (trainer.optfusion.settings.SearchSettings / RetrainSettings), so they
are part of each component's cache key, together with `code_fingerprint` (a digest of the project's code).
Training reads the `train_args` splits and validates (early stopping) on the `eval_args` splits; the test split
is never read.
"""
from __future__ import annotations

from typing import Protocol

from tfx import types
from tfx.dsl.components.base import base_component, executor_spec
from tfx.orchestration import data_types
from tfx.proto import trainer_pb2
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter, ExecutionParameter

from components.optfusion import executor
from components.optfusion.artifacts import OptFusionArchitecture


class JsonSettings(Protocol):
    """Settings that serialise to the JSON execution parameter a step's executor parses
    (trainer.optfusion.settings.SearchSettings / RetrainSettings)."""

    def to_json(self) -> str:
        """The settings as JSON."""

_COMMON_PARAMETERS = {
    executor.TRAIN_ARGS_KEY: ExecutionParameter(type=trainer_pb2.TrainArgs),
    executor.EVAL_ARGS_KEY: ExecutionParameter(type=trainer_pb2.EvalArgs),
    executor.SETTINGS_KEY: ExecutionParameter(type=str),
    executor.CODE_FINGERPRINT_KEY: ExecutionParameter(type=str, optional=True),
    # Overrides the settings' epochs; an int execution parameter, so a Kubeflow run can set it (RuntimeParameter).
    executor.EPOCHS_KEY: ExecutionParameter(type=int, optional=True),
}
_DATA_INPUTS = {
    executor.EXAMPLES_KEY: ChannelParameter(type=standard_artifacts.Examples),
    executor.TRANSFORM_GRAPH_KEY: ChannelParameter(type=standard_artifacts.TransformGraph),
}


class OptFusionSearchSpec(types.ComponentSpec):
    """OptFusionSearch's parameters (train/eval args, settings JSON, code fingerprint), inputs (examples, transform
    graph, optionally a Tuner's best hyper-parameters) and outputs (architecture, supernet, model_run).
    """
    PARAMETERS = _COMMON_PARAMETERS
    INPUTS = {**_DATA_INPUTS,
              executor.HYPERPARAMETERS_KEY: ChannelParameter(type=standard_artifacts.HyperParameters, optional=True)}
    OUTPUTS = {
        executor.ARCHITECTURE_KEY: ChannelParameter(type=OptFusionArchitecture),
        executor.SUPERNET_KEY: ChannelParameter(type=standard_artifacts.Model),
        executor.MODEL_RUN_KEY: ChannelParameter(type=standard_artifacts.ModelRun),
    }


class OptFusionRetrainSpec(types.ComponentSpec):
    """OptFusionRetrain's parameters (as OptFusionSearchSpec), inputs (examples, transform graph, architecture) and
    outputs (model, model_run).
    """
    PARAMETERS = _COMMON_PARAMETERS
    INPUTS = {**_DATA_INPUTS, executor.ARCHITECTURE_KEY: ChannelParameter(type=OptFusionArchitecture)}
    OUTPUTS = {
        executor.MODEL_KEY: ChannelParameter(type=standard_artifacts.Model),
        executor.MODEL_RUN_KEY: ChannelParameter(type=standard_artifacts.ModelRun),
    }


def _split_args(train_splits: tuple[str, ...], eval_splits: tuple[str, ...]) -> dict:
    return {executor.TRAIN_ARGS_KEY: trainer_pb2.TrainArgs(splits=list(train_splits)),
            executor.EVAL_ARGS_KEY: trainer_pb2.EvalArgs(splits=list(eval_splits))}


class OptFusionSearch(base_component.BaseComponent):
    """Searches the OptFusion supernet on transformed examples.

    Args:
        examples: Transform's transformed examples.
        transform_graph: Transform's graph (id space, and the serving export of the supernet).
        settings: the search settings.
        train_splits, eval_splits: splits to train on and to validate (early-stop) on.
        code_fingerprint: digest of the project's code, to re-run when it changes.
        hyperparameters: a Tuner's `best_hyperparameters`, applied to `settings` (SearchSettings.with_hyperparameters),
            as the stock Trainer's `hyperparameters` input.
        epochs: overrides settings.run.epochs: an int or a RuntimeParameter (pipeline/runtime_parameters.py).
    """

    SPEC_CLASS = OptFusionSearchSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.SearchExecutor)

    def __init__(self, examples: types.BaseChannel, transform_graph: types.BaseChannel, settings: JsonSettings,
                 train_splits: tuple[str, ...] = ("train",), eval_splits: tuple[str, ...] = ("eval",),
                 code_fingerprint: str = "", hyperparameters: types.BaseChannel | None = None,
                 epochs: int | data_types.RuntimeParameter | None = None):
        super().__init__(spec=OptFusionSearchSpec(
            examples=examples, transform_graph=transform_graph, hyperparameters=hyperparameters,
            settings=settings.to_json(), code_fingerprint=code_fingerprint, epochs=epochs,
            **_split_args(train_splits, eval_splits),
            architecture=types.Channel(type=OptFusionArchitecture),
            supernet=types.Channel(type=standard_artifacts.Model),
            model_run=types.Channel(type=standard_artifacts.ModelRun)))


class OptFusionRetrain(base_component.BaseComponent):
    """Retrains a searched OptFusion architecture (Hard or Soft) and exports it for serving.

    Args:
        examples, transform_graph: as OptFusionSearch.
        architecture: OptFusionSearch's `architecture` output.
        settings: the retrain settings (mode, inheritance, learning rates, ...).
        train_splits, eval_splits, code_fingerprint, epochs: as OptFusionSearch.
    """

    SPEC_CLASS = OptFusionRetrainSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.RetrainExecutor)

    def __init__(self, examples: types.BaseChannel, transform_graph: types.BaseChannel,
                 architecture: types.BaseChannel, settings: JsonSettings,
                 train_splits: tuple[str, ...] = ("train",), eval_splits: tuple[str, ...] = ("eval",),
                 code_fingerprint: str = "", epochs: int | data_types.RuntimeParameter | None = None):
        super().__init__(spec=OptFusionRetrainSpec(
            examples=examples, transform_graph=transform_graph, architecture=architecture,
            settings=settings.to_json(), code_fingerprint=code_fingerprint, epochs=epochs,
            **_split_args(train_splits, eval_splits),
            model=types.Channel(type=standard_artifacts.Model),
            model_run=types.Channel(type=standard_artifacts.ModelRun)))
