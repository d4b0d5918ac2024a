"""OptFusion end to end on the Criteo sample: raw log -> search -> retrain -> evaluation -> push.

The run is the Criteo sample's shared one (tests/e2e/conftest.py: `local_runner --model optfusion-hard --preset
test --epochs 3` on its training files); test_shared_samples.py checks its held-out AUC and serving signature.
"""
from __future__ import annotations

import glob
import json
import os

import pytest
import tensorflow as tf
from ml_metadata.proto import metadata_store_pb2

from pipeline import lineage
from tests.e2e import checks
from tests.e2e.conftest import PipelineRun
from trainer.optfusion import training
from trainer.optfusion.network import Architecture

pytestmark = pytest.mark.e2e

ARCHITECTURE_TYPE = "fusionctr.OptFusionArchitecture"


@pytest.fixture(scope="module")
def optfusion_run(sample_run) -> PipelineRun:
    """The Criteo sample's OptFusion-Hard run (conftest.SAMPLE_MODELS)."""
    return sample_run("criteo")


def _executions_with_event(store, artifact_id: int, event_type: int) -> list[str]:
    events = [e for e in store.get_events_by_artifact_ids([artifact_id]) if e.type == event_type]
    executions = store.get_executions_by_id([e.execution_id for e in events])
    return sorted(lineage.node_id(store, execution) for execution in executions)


def _architecture_artifact(store) -> metadata_store_pb2.Artifact:
    artifacts = store.get_artifacts_by_type(ARCHITECTURE_TYPE)
    assert len(artifacts) == 1, artifacts
    return artifacts[0]


def test_search_and_retrain_ran_as_pipeline_steps(optfusion_run):
    states = lineage.execution_states_by_node(lineage.open_store(optfusion_run.metadata_path))
    for node in ("OptFusionSearch", "OptFusionRetrain", "Evaluator", "Pusher"):
        assert states[node] == ["COMPLETE"], states
    assert "Trainer" not in states


def test_architecture_lineage_search_produces_retrain_consumes(optfusion_run):
    store = lineage.open_store(optfusion_run.metadata_path)
    architecture = _architecture_artifact(store)
    assert _executions_with_event(store, architecture.id, metadata_store_pb2.Event.OUTPUT) == ["OptFusionSearch"]
    assert _executions_with_event(store, architecture.id, metadata_store_pb2.Event.INPUT) == ["OptFusionRetrain"]
    # The retrained model (not the supernet) is what the Evaluator judges and the Pusher pushes.
    model = lineage.latest_output(store, "OptFusionRetrain", "model")
    assert _executions_with_event(store, model.id, metadata_store_pb2.Event.INPUT) == ["Evaluator", "Pusher"]
    supernet = lineage.latest_output(store, "OptFusionSearch", "supernet")
    assert _executions_with_event(store, supernet.id, metadata_store_pb2.Event.INPUT) == []


def test_architecture_json_reloads_to_the_same_derived_graph(optfusion_run):
    store = lineage.open_store(optfusion_run.metadata_path)
    artifact = _architecture_artifact(store)
    with open(os.path.join(artifact.uri, training.ARCHITECTURE_FILE)) as f:
        text = f.read()
    architecture = Architecture.from_json(text)
    assert json.loads(text)["ops"] == artifact.custom_properties["ops"].string_value.split(",")
    assert Architecture.from_json(architecture.to_json()) == architecture
    # Rebuilt from the JSON, the Hard network has exactly the pushed model's layers and weight shapes.
    config = training.read_supernet_config(artifact.uri)
    _, rebuilt = training.build_retrain(architecture, config, "hard")
    pushed = tf.keras.models.load_model(glob.glob(os.path.join(optfusion_run.serving_model_dir, "*"))[0])

    def graph(model):
        return [(layer.name, type(layer).__name__, tuple(tuple(w.shape) for w in layer.weights))
                for layer in model.layers if "TransformFeaturesLayer" not in type(layer).__name__]

    assert graph(rebuilt) == graph(pushed)  # (the export attaches Transform's layers to the model as well)


def test_both_steps_record_the_best_validation_auc(optfusion_run):
    store = lineage.open_store(optfusion_run.metadata_path)
    artifact = _architecture_artifact(store)
    with open(os.path.join(artifact.uri, training.ARCHITECTURE_FILE)) as f:
        searched_auc = json.load(f)["best_val_auc"]
    assert artifact.custom_properties["best_val_auc"].double_value == pytest.approx(searched_auc)
    assert 0.5 < searched_auc <= 1.0
    model = lineage.latest_output(store, "OptFusionRetrain", "model")
    assert 0.5 < model.custom_properties["best_val_auc"].double_value <= 1.0
    assert model.custom_properties["mode"].string_value == "hard"
    with open(os.path.join(lineage.latest_output(store, "OptFusionRetrain", "model_run").uri,
                           training.RESULT_FILE)) as f:
        result = json.load(f)
    assert result["best_val_auc"] == pytest.approx(model.custom_properties["best_val_auc"].double_value)
    # Epoch 0 (the inherited weights, before training) is reported, never kept.
    assert 1 <= result["best_epoch"] <= result["epochs_run"]
    assert [h["epoch"] for h in result["history"]] == list(range(result["epochs_run"] + 1))
    assert result["val_auc_before_training"] == result["history"][0]["val_auc"]


def test_model_is_blessed_on_eval_metrics_and_pushed(optfusion_run):
    metrics = checks.check_blessed_and_pushed(optfusion_run)
    assert metrics["auc"] > 0.5


def test_a_tuner_trial_is_a_search_with_the_trials_values_and_the_search_step_applies_tuned_ones(optfusion_run,
                                                                                                  tmp_path):
    """What `--tune` runs for OptFusion, on this run's Transform output: a trial (training.tuning_trial) searches
    with its values and scores the search's best eval AUC; the search step given a Tuner's best values
    (`hyperparameters`) searches with them and records them in MLMD."""
    from tfx.types import standard_artifacts

    from components.optfusion import OptFusionArchitecture, executor
    from trainer.optfusion.settings import TRIAL_SETTINGS_KEY, SearchSettings
    store = lineage.open_store(optfusion_run.metadata_path)
    search_execution = [e for e in store.get_executions() if lineage.node_id(store, e) == "OptFusionSearch"][-1]
    # One search epoch is enough here (the run searched three).
    settings_json = executor.with_epochs(SearchSettings.from_json(
        search_execution.custom_properties["settings"].string_value), {executor.EPOCHS_KEY: 1}).to_json()
    values = {"embedding_dim": 8, "arch_learning_rate": 0.05, "learning_rate": 3e-3, "l2": 0.0}

    fn_args = checks.step_fn_args(optfusion_run, ("Transform", "transformed_examples"),
                                  {TRIAL_SETTINGS_KEY: settings_json})
    score = training.tuning_trial(fn_args, values, str(tmp_path / "trial"))
    with open(tmp_path / "trial" / "logs" / training.SEARCH_RESULT_FILE) as f:
        assert score == json.load(f)["best_val_auc"]
    config = training.read_supernet_config(str(tmp_path / "trial" / "architecture"))
    assert config.embedding_dim == 8 and not os.path.exists(tmp_path / "trial" / "serving")

    best = standard_artifacts.HyperParameters()
    best.uri = str(tmp_path / "best")
    os.makedirs(best.uri)
    with open(os.path.join(best.uri, "best_hyperparameters.txt"), "w") as f:
        json.dump({"space": [], "values": {"embedding_dim": 8, "arch_learning_rate": 0.05}}, f)
    outputs = {key: [cls()] for key, cls in ((executor.ARCHITECTURE_KEY, OptFusionArchitecture),
                                              (executor.SUPERNET_KEY, standard_artifacts.Model),
                                              (executor.MODEL_RUN_KEY, standard_artifacts.ModelRun))}
    for key, (artifact,) in outputs.items():
        artifact.uri = str(tmp_path / key)
    inputs = {executor.EXAMPLES_KEY: [checks.latest_artifact(optfusion_run, "Transform", "transformed_examples")],
              executor.TRANSFORM_GRAPH_KEY: [checks.latest_artifact(optfusion_run, "Transform", "transform_graph")],
              executor.HYPERPARAMETERS_KEY: [best]}
    settings = SearchSettings.from_json(settings_json)
    executor.SearchExecutor().Do(inputs, outputs, {
        executor.SETTINGS_KEY: settings.to_json(), executor.TRAIN_ARGS_KEY: json.dumps({"splits": ["train"]}),
        executor.EVAL_ARGS_KEY: json.dumps({"splits": ["eval"]})})
    (architecture,) = outputs[executor.ARCHITECTURE_KEY]
    assert training.read_supernet_config(architecture.uri).embedding_dim == 8 != settings.embedding_dim
    assert json.loads(architecture.get_string_custom_property("hyperparameters")) == {
        "embedding_dim": 8, "arch_learning_rate": 0.05}


def test_the_results_notebook_draws_the_searched_architecture(optfusion_run, tmp_path):
    notebook = checks.execute_results_notebook(optfusion_run, str(tmp_path))
    for name in (*checks.NOTEBOOK_FIGURES, "optfusion_architecture.png"):
        assert (tmp_path / name).stat().st_size > 10_000, name
    assert "not an OptFusion run" not in checks.notebook_text(notebook)
