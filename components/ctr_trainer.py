"""CtrTrainer: TFX's Trainer with one more execution parameter, `epochs`, that a Kubeflow run can set.

The training epochs live in the Trainer's `custom_config` JSON (TrainerConfig.train.epochs), where TFX 1.16 accepts
no RuntimeParameter (it serializes one there as an opaque placeholder). An integer execution parameter does take
one, so a compiled pipeline exposes `epochs` as a pipeline parameter (pipeline/runtime_parameters.py) and the
executor writes it into custom_config before TFX's GenericExecutor calls the run_fn. Unset (local runs), the
Trainer is the stock one: same spec values, same run_fn input.
"""
from __future__ import annotations

import json
import os
from typing import Any

from tfx import types
from tfx.components.trainer import component as trainer_component
from tfx.components.trainer import executor as trainer_executor
from tfx.dsl.components.base import base_component, executor_spec
from tfx.orchestration import data_types
from tfx.proto import trainer_pb2
from tfx.types import artifact_utils, standard_artifacts, standard_component_specs
from tfx.types.component_spec import ExecutionParameter
from tfx.utils import json_utils

from components import provenance

EPOCHS_KEY = "epochs"


def epochs_override(exec_properties: dict[str, Any]) -> int | None:
    """The `epochs` execution parameter of a training step, or None when it is not set (a local run).

    Raises:
        ValueError: epochs < 1.
    """
    epochs = exec_properties.get(EPOCHS_KEY)
    if epochs is None:
        return None
    if int(epochs) < 1:
        raise ValueError(f"the training step's epochs must be >= 1, got {epochs}")
    return int(epochs)


def with_epochs(exec_properties: dict[str, Any]) -> dict[str, Any]:
    """`exec_properties` with custom_config's train.epochs set to the `epochs` property, when it is set.

    Raises:
        ValueError: epochs < 1.
    """
    epochs = epochs_override(exec_properties)
    if epochs is None:
        return exec_properties
    custom_config = json.loads(exec_properties.get(standard_component_specs.CUSTOM_CONFIG_KEY) or "{}")
    custom_config.setdefault("train", {})["epochs"] = epochs
    return {**exec_properties, standard_component_specs.CUSTOM_CONFIG_KEY: json.dumps(custom_config)}


class Executor(trainer_executor.GenericExecutor):
    """TFX's GenericExecutor (run_fn by dotted name) after `with_epochs`."""

    def Do(self, input_dict: dict[str, list[types.Artifact]], output_dict: dict[str, list[types.Artifact]],
           exec_properties: dict[str, Any]) -> None:
        """Runs the run_fn with custom_config's train.epochs set from `epochs` (when set); records the seed, the
        package versions and the warm start, if any, on the model (components/provenance.py)."""
        exec_properties = with_epochs(exec_properties)
        super().Do(input_dict, output_dict, exec_properties)
        custom_config = json.loads(exec_properties.get(standard_component_specs.CUSTOM_CONFIG_KEY) or "{}")
        model = artifact_utils.get_single_instance(output_dict[standard_component_specs.MODEL_KEY])
        provenance.record(model, custom_config.get("train", {}).get("seed"))
        from trainer import warm_start  # here, not at import: building a pipeline imports no trainer module

        model_run = artifact_utils.get_single_instance(output_dict[standard_component_specs.MODEL_RUN_KEY])
        provenance.record_warm_start(model, os.path.join(model_run.uri, warm_start.REPORT_FILE))


class CtrTrainerSpec(standard_component_specs.TrainerSpec):
    """TrainerSpec plus an optional integer `epochs`."""

    PARAMETERS = {**standard_component_specs.TrainerSpec.PARAMETERS,
                  EPOCHS_KEY: ExecutionParameter(type=int, optional=True)}


class CtrTrainer(trainer_component.Trainer):
    """The Trainer with `epochs` (see the module docstring); run_fn by dotted name only (no module file: the code is
    in the image, kubeflow/Dockerfile).

    Args:
        run_fn: dotted name of the run_fn.
        examples, transform_graph, schema, base_model, hyperparameters: the Trainer's input channels.
        train_args, eval_args: the splits to train and evaluate on.
        custom_config: JSON-able dict handed to the run_fn (fn_args.custom_config).
        epochs: overrides custom_config's train.epochs: an int or a RuntimeParameter; None keeps it.
        executor_class: the executor (a subclass of this module's Executor).
    """

    SPEC_CLASS = CtrTrainerSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)

    def __init__(self, run_fn: str, examples: types.BaseChannel, transform_graph: types.BaseChannel,
                 schema: types.BaseChannel, train_args: trainer_pb2.TrainArgs, eval_args: trainer_pb2.EvalArgs,
                 custom_config: dict[str, Any], base_model: types.BaseChannel | None = None,
                 hyperparameters: types.BaseChannel | None = None,
                 epochs: int | data_types.RuntimeParameter | None = None,
                 executor_class: type[Executor] = Executor):
        spec = CtrTrainerSpec(
            examples=examples, transform_graph=transform_graph, schema=schema, base_model=base_model,
            hyperparameters=hyperparameters, train_args=train_args, eval_args=eval_args, run_fn=run_fn,
            custom_config=json_utils.dumps(custom_config), epochs=epochs,
            model=types.Channel(type=standard_artifacts.Model),
            model_run=types.Channel(type=standard_artifacts.ModelRun))
        # Skip Trainer.__init__ (it builds the stock spec); stay a Trainer for TFX and its compilers.
        base_component.BaseComponent.__init__(
            self, spec=spec, custom_executor_spec=executor_spec.ExecutorClassSpec(executor_class))
        self.with_id("Trainer")  # the stock Trainer's node id (MLMD queries, folders and docs name it so)
