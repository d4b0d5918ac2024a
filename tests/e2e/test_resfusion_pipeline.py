"""`--model resfusion` end to end on generated Criteo-layout data: LocalDagRunner, SQLite MLMD, real components.

One run (test preset: few trees, 2 folds, short epochs) produces the GBDT, the residual targets, GBDTRes+NN
with K = 2 (every K reported, the best eval-logloss prefix served) and a blessed, pushed model; every test
reads that run.
"""
import glob
import json
import os

import numpy as np
import pytest
import tensorflow as tf

import local_runner
from components.gbdt_residual import executor as gbdt_residual
from pipeline import lineage
from tests import helpers
from tests.e2e import checks
from tests.e2e.conftest import PipelineRun, write_generated_input
from transform import features

pytestmark = pytest.mark.e2e

FLAGS = ["--model", "resfusion", "--preset", "test", "--epochs", "2"]


@pytest.fixture(scope="module")
def resfusion_run(tmp_path_factory) -> PipelineRun:
    root = tmp_path_factory.mktemp("resfusion_generated")
    input_dir, input_file, heldout = write_generated_input(root)
    argv = ["--dataset", "criteo", "--data", input_dir, "--output-dir", str(root / "out"), *FLAGS]
    local_runner.run(argv)
    return PipelineRun("criteo", str(root / "out"), (input_file,), heldout, tuple(argv))


def _artifact(run, node, key):
    return lineage.latest_output(lineage.open_store(run.metadata_path), node, key)


def test_every_step_ran_once(resfusion_run):
    states = lineage.execution_states_by_node(lineage.open_store(resfusion_run.metadata_path))
    for node in ("RawLogExampleGen", "GbdtResidual", "Transform", "Trainer", "Evaluator", "Pusher"):
        assert states[node] == ["COMPLETE"], (node, states)


def test_gbdt_is_a_tracked_model_with_fold_models(resfusion_run):
    model = _artifact(resfusion_run, "GbdtResidual", "model")
    assert model.custom_properties["folds"].int_value == 2
    assert model.custom_properties["num_trees"].int_value >= 1
    assert os.path.exists(os.path.join(model.uri, "Format-Serving", "saved_model.pb"))
    for fold in range(2):
        assert os.path.exists(os.path.join(gbdt_residual.fold_model_dir(model.uri, fold), "saved_model.pb"))


def test_residual_targets_are_in_every_split_with_out_of_fold_training_logits(resfusion_run):
    residual = _artifact(resfusion_run, "GbdtResidual", "residual_examples")
    assert residual.custom_properties["gbdt_folds"].int_value == 2
    assert residual.custom_properties["gbdt_train_logits"].string_value == "out-of-fold"
    counts = checks.split_counts(resfusion_run)
    for split in checks.SPLITS:
        examples = helpers.read_examples(os.path.join(residual.uri, f"Split-{split}"))
        assert len(examples) == counts[split]
        folds = {e.features.feature[features.FOLD_FEATURE].int64_list.value[0] for e in examples}
        assert folds == ({0, 1} if split == "train" else {features.NO_FOLD})
        assert all(len(e.features.feature[features.GBDT_LOGIT_KEY].float_list.value) == 1 for e in examples)


def _result(run) -> dict:
    run_dir = _artifact(run, "Trainer", "model_run").uri
    with open(os.path.join(run_dir, "result.json")) as f:
        return json.load(f)


def test_trainer_fits_gbdtres_nn_with_two_residual_rounds(resfusion_run):
    run_dir = _artifact(resfusion_run, "Trainer", "model_run").uri
    with open(os.path.join(run_dir, "history.json")) as f:
        history = json.load(f)
    stages = history["stages"]
    assert [s["kind"] for s in stages] == ["gbdt", "nn", "gbdt"]
    assert history["options"]["residual_model"] == "deepfm"
    assert stages[0]["recorded_eval_logit_max_abs_diff"] < 1e-5
    assert stages[1]["train_offsets"] == "out-of-fold (2 folds)"  # the deep stage feeds the second GBDT
    assert stages[2]["train_offsets"] == "in-sample (last stage)"
    assert stages[-1]["train_logloss"] < stages[0]["train_logloss"]


def test_the_served_k_has_the_lowest_eval_logloss_and_every_k_is_reported(resfusion_run):
    """result.json lists K = 0, 1, 2 with their eval metrics; the pushed model holds exactly the served prefix,
    and the Model artifact carries the served K and the stage metrics (MLMD)."""
    from trainer.resfusion import residual
    result = _result(resfusion_run)
    stages = result["stages"]
    assert [s["rounds"] for s in stages] == [0, 1, 2] and result["fitted_rounds"] == 2
    served = residual.best_prefix([s["eval_logloss"] for s in stages])
    assert result["served_rounds"] == served
    assert [s["served"] for s in stages] == [s["rounds"] <= served for s in stages]
    assert result["eval_logloss"] == stages[served]["eval_logloss"]
    assert result["best_epoch"] == stages[1]["best_epoch"] >= 1
    assert (result["all_stages_model"] is None) == (served == 2)
    model = _artifact(resfusion_run, "Trainer", "model")
    assert model.custom_properties["served_rounds"].int_value == served
    assert model.custom_properties["eval_logloss"].double_value == pytest.approx(result["eval_logloss"])
    recorded = json.loads(model.custom_properties["stage_metrics"].string_value)
    assert [s["eval_auc"] for s in recorded] == pytest.approx([s["eval_auc"] for s in stages])
    pushed = tf.saved_model.load(glob.glob(os.path.join(resfusion_run.serving_model_dir, "*"))[0])
    assert sorted(pushed.signatures["stage_logits"].structured_outputs) == sorted(
        s["name"] for s in stages[:served + 1])


def test_model_is_blessed_on_eval_metrics_and_pushed(resfusion_run):
    metrics = checks.check_blessed_and_pushed(resfusion_run)
    assert metrics["auc"] > 0.55


def test_pushed_model_scores_heldout_raw_rows_in_a_fresh_process(resfusion_run):
    assert checks.score_heldout(resfusion_run) > 0.55


def test_pushed_model_holds_its_stages_in_one_graph(resfusion_run):
    """The served stage-0 logit is the GBDT's recorded one; the probability is sigmoid of the stage sum."""
    residual = _artifact(resfusion_run, "GbdtResidual", "residual_examples")
    examples = helpers.read_examples(os.path.join(residual.uri, "Split-eval"))[:200]
    recorded = np.array([e.features.feature[features.GBDT_LOGIT_KEY].float_list.value[0] for e in examples])
    raw = []
    for example in examples:  # what a client sends: the raw fields only
        for name in (features.LABEL_KEY, features.GBDT_LOGIT_KEY, features.FOLD_FEATURE):
            del example.features.feature[name]
        raw.append(example.SerializeToString())
    model = tf.saved_model.load(glob.glob(os.path.join(resfusion_run.serving_model_dir, "*"))[0])
    stage_logits = model.signatures["stage_logits"](examples=tf.constant(raw))
    probability = model.signatures["serving_default"](examples=tf.constant(raw))["probability"].numpy()
    np.testing.assert_allclose(stage_logits["stage_0_gbdt"].numpy()[:, 0], recorded, atol=1e-5)
    total = sum(v.numpy() for v in stage_logits.values())
    np.testing.assert_allclose(probability, tf.sigmoid(total).numpy(), rtol=1e-5, atol=1e-6)


def test_a_tuner_trial_fits_the_gbdt_and_one_deep_stage_with_the_trials_values(resfusion_run, tmp_path):
    """What `--tune` runs for ResFusion, on this run's artifacts: a trial (run.tuning_trial) is run_fn with the
    trial's values on the variant with one deep stage (resfusion_steps.tuning_options: K = 1), scored by that
    stage's eval AUC; the values reach the deep stage (history.json)."""
    from pipeline import resfusion_steps
    from trainer.resfusion import run as resfusion_run_module
    from trainer.resfusion.settings import ResFusionOptions
    store = lineage.open_store(resfusion_run.metadata_path)
    trainer = [e for e in store.get_executions() if lineage.node_id(store, e) == "Trainer"][-1]
    custom = json.loads(trainer.custom_properties["custom_config"].string_value)
    options = resfusion_steps.tuning_options("resfusion", ResFusionOptions.from_dict(custom["resfusion"]))
    custom = {**custom, "resfusion": options.to_dict()}
    fn_args = checks.step_fn_args(resfusion_run, ("GbdtResidual", "residual_examples"), custom,
                                  base_model=("GbdtResidual", "model"))
    values = {"embedding_dim": 8, "learning_rate": 1e-3, "l2": 0.0}
    score = resfusion_run_module.tuning_trial(fn_args, values, str(tmp_path))
    with open(tmp_path / "logs" / "history.json") as f:
        history = json.load(f)
    assert [s["kind"] for s in history["stages"]] == ["gbdt", "nn"]
    assert score == history["stages"][-1]["eval_auc"] and history["hyperparameters"] == values
    # The deep stage trained with the trial's values. (The exported model is not loaded here: a TF-DF SavedModel
    # loaded in the test process can crash it at teardown; the fresh-process test above loads one.)
    assert history["trainer"]["model"]["embedding_dim"] == 8 and history["trainer"]["train"]["learning_rate"] == 1e-3
