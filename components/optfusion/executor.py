"""Executors of the OptFusion components: artifacts in, trainer/optfusion/training.py, artifacts out."""
from __future__ import annotations

import dataclasses
import json
import logging
import os
from typing import TYPE_CHECKING, Any

from tfx import types
from tfx.components.trainer import fn_args_utils
from tfx.dsl.components.base import base_executor
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import io_utils, path_utils

from components import ctr_trainer, provenance

if TYPE_CHECKING:
    from trainer.optfusion import training
    from trainer.optfusion.network import Architecture

# trainer/ is imported when a step runs, not when the pipeline is built (docs/architecture.md).

EXAMPLES_KEY = standard_component_specs.EXAMPLES_KEY  # "examples"
TRANSFORM_GRAPH_KEY = standard_component_specs.TRANSFORM_GRAPH_KEY  # "transform_graph"
TRAIN_ARGS_KEY = standard_component_specs.TRAIN_ARGS_KEY  # "train_args"
EVAL_ARGS_KEY = standard_component_specs.EVAL_ARGS_KEY  # "eval_args"
MODEL_KEY = standard_component_specs.MODEL_KEY  # "model"
MODEL_RUN_KEY = standard_component_specs.MODEL_RUN_KEY  # "model_run"
ARCHITECTURE_KEY = "architecture"
SUPERNET_KEY = "supernet"
SETTINGS_KEY = "settings"
HYPERPARAMETERS_KEY = standard_component_specs.HYPERPARAMETERS_KEY  # "hyperparameters": a Tuner's best values
CODE_FINGERPRINT_KEY = "code_fingerprint"
EPOCHS_KEY = ctr_trainer.EPOCHS_KEY  # optional: overrides the settings' run.epochs (a pipeline parameter)


def data_source(input_dict: dict[str, list[types.Artifact]], exec_properties: dict[str, Any]
                ) -> training.DataSource:
    """Train/eval file patterns and a DataAccessor from the inputs, exactly as the stock Trainer builds them."""
    from trainer.optfusion import training
    fn_args = fn_args_utils.get_common_fn_args(input_dict, exec_properties)
    return training.DataSource(train_files=fn_args.train_files, eval_files=fn_args.eval_files,
                               data_accessor=fn_args.data_accessor,
                               transform_graph_path=fn_args.transform_graph_path)


def read_hyperparameters(input_dict: dict[str, list[types.Artifact]]) -> dict[str, Any] | None:
    """The Tuner's `best_hyperparameters` (keras-tuner's HyperParameters config) when the `hyperparameters` input is
    connected, as the stock Trainer reads it; None otherwise."""
    if not input_dict.get(HYPERPARAMETERS_KEY):
        return None
    path = io_utils.get_only_uri_in_dir(artifact_utils.get_single_uri(input_dict[HYPERPARAMETERS_KEY]))
    return json.loads(io_utils.read_string_file(path))


def record_search(artifact: types.Artifact, architecture: Architecture, search_result: dict[str, Any]) -> None:
    """Sets an OptFusionArchitecture artifact's custom properties from a search result (the search writes the
    payload itself). A function, not a method: an executor may receive the artifact as a generic Artifact."""
    artifact.set_float_custom_property("best_val_auc", float(search_result["best_val_auc"]))
    artifact.set_int_custom_property("best_epoch", int(search_result["best_epoch"]))
    artifact.set_int_custom_property("epochs_run", int(search_result["epochs_run"]))
    artifact.set_string_custom_property("ops", ",".join(architecture.ops))
    artifact.set_int_custom_property("kept_connections", int(sum(map(sum, architecture.connections))))
    artifact.set_int_custom_property("num_blocks", architecture.num_blocks)


def _record_fit(artifact: types.Artifact, result: dict[str, Any]) -> None:
    artifact.set_float_custom_property("best_val_auc", float(result["best_val_auc"]))
    artifact.set_float_custom_property("best_val_logloss", float(result["best_val_logloss"]))
    artifact.set_int_custom_property("best_epoch", int(result["best_epoch"]))
    artifact.set_int_custom_property("epochs_run", int(result["epochs_run"]))
    artifact.set_float_custom_property("train_examples_per_second", float(result["train_examples_per_second"]))


def with_epochs(settings: Any, exec_properties: dict[str, Any]) -> Any:
    """`settings` (SearchSettings or RetrainSettings) with run.epochs set to the `epochs` property, when it is set.

    Raises:
        ValueError: epochs < 1.
    """
    epochs = ctr_trainer.epochs_override(exec_properties)
    if epochs is None:
        return settings
    return dataclasses.replace(settings, run=dataclasses.replace(settings.run, epochs=epochs))


class SearchExecutor(base_executor.BaseExecutor):
    """Trains the supernet; publishes the Architecture (json + supernet weights), the supernet as a serving Model
    (Format-Serving, when `export_supernet`), and the run's logs (ModelRun)."""

    def Do(self, input_dict: dict[str, list[types.Artifact]], output_dict: dict[str, list[types.Artifact]],
           exec_properties: dict[str, Any]) -> None:
        """Reads the examples, the transform graph and the SearchSettings JSON (with a Tuner's best values applied
        when `hyperparameters` is connected); runs training.search (algorithms.md
        §1.4) and writes `architecture`, `supernet` (Format-Serving when export_supernet) and `model_run`, recording the
        best eval AUC, the epochs and the derived architecture as custom properties.
        """
        from trainer.optfusion import training
        from trainer.optfusion.settings import SearchSettings

        self._log_startup(input_dict, output_dict, exec_properties)
        from trainer.tuning import tuned_values

        tuned = tuned_values(read_hyperparameters(input_dict))
        settings = with_epochs(SearchSettings.from_json(exec_properties[SETTINGS_KEY]), exec_properties
                               ).with_hyperparameters(tuned)
        architecture = artifact_utils.get_single_instance(output_dict[ARCHITECTURE_KEY])
        supernet = artifact_utils.get_single_instance(output_dict[SUPERNET_KEY])
        model_run = artifact_utils.get_single_instance(output_dict[MODEL_RUN_KEY])
        serving_dir = path_utils.serving_model_dir(supernet.uri) if settings.export_supernet else None
        result = training.search(data_source(input_dict, exec_properties), settings, architecture.uri,
                                 model_run.uri, serving_dir)
        derived = training.read_architecture(architecture.uri)
        record_search(architecture, derived, result)
        _record_fit(supernet, result)
        for artifact in (architecture, supernet):
            artifact.set_string_custom_property(HYPERPARAMETERS_KEY, json.dumps(tuned, sort_keys=True))
        supernet.set_int_custom_property("exported", int(serving_dir is not None))
        supernet.set_string_custom_property("stage", "search")
        provenance.record(supernet, settings.run.seed)
        logging.info("OptFusionSearch: architecture at %s, %s", architecture.uri, json.dumps(derived.ops))


class RetrainExecutor(base_executor.BaseExecutor):
    """Retrains the derived architecture; publishes a standard Model (SavedModel in Format-Serving with the
    raw-tf.Example serving signature) for the Evaluator and Pusher, and the run's logs (ModelRun)."""

    def Do(self, input_dict: dict[str, list[types.Artifact]], output_dict: dict[str, list[types.Artifact]],
           exec_properties: dict[str, Any]) -> None:
        """Reads the examples, the transform graph, `architecture` and the RetrainSettings JSON; runs training.retrain
        (algorithms.md §1.5) into `model` (Format-Serving) and `model_run`, recording the fit, mode and parameter count.

        Raises:
            RuntimeError: the retrain wrote no SavedModel.
        """
        from trainer.optfusion import training
        from trainer.optfusion.settings import RetrainSettings

        self._log_startup(input_dict, output_dict, exec_properties)
        settings = with_epochs(RetrainSettings.from_json(exec_properties[SETTINGS_KEY]), exec_properties)
        architecture = artifact_utils.get_single_instance(input_dict[ARCHITECTURE_KEY])
        model = artifact_utils.get_single_instance(output_dict[MODEL_KEY])
        model_run = artifact_utils.get_single_instance(output_dict[MODEL_RUN_KEY])
        serving_dir = path_utils.serving_model_dir(model.uri)
        result = training.retrain(data_source(input_dict, exec_properties), settings, architecture.uri,
                                  serving_dir, model_run.uri)
        if not os.path.exists(os.path.join(serving_dir, "saved_model.pb")):
            raise RuntimeError(f"OptFusionRetrain wrote no SavedModel to {serving_dir}")
        _record_fit(model, result)
        model.set_string_custom_property("stage", f"retrain-{settings.mode}")
        model.set_string_custom_property("mode", settings.mode)
        model.set_int_custom_property("inherit_weights", int(settings.inherit_weights))
        model.set_int_custom_property("parameters", int(result["parameters"]))
        provenance.record(model, settings.run.seed)
