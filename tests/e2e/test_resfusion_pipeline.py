"""`--model resfusion` end to end on generated Criteo-layout data: LocalDagRunner, SQLite MLMD, real components.

One run (test preset: few trees, 2 folds, short epochs) produces the GBDT, the residual targets, GBDTRes+NN
with K = 2 and a blessed, pushed model; every test reads that run.
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
        folds = {e.features.feature[gbdt_residual.FOLD_FEATURE].int64_list.value[0] for e in examples}
        assert folds == ({0, 1} if split == "train" else {gbdt_residual.NO_FOLD})
        assert all(len(e.features.feature[features.GBDT_LOGIT_KEY].float_list.value) == 1 for e in examples)


def test_trainer_fits_gbdtres_nn_with_two_residual_rounds(resfusion_run):
    run_dir = _artifact(resfusion_run, "Trainer", "model_run").uri
    with open(os.path.join(run_dir, "history.json")) as f:
        history = json.load(f)
    stages = history["stages"]
    assert [s["kind"] for s in stages] == ["gbdt", "nn", "gbdt"]
    assert history["options"]["residual_model"] == "deepfm"
    assert stages[0]["recorded_eval_logit_max_abs_diff"] < 1e-5
    assert stages[2]["train_offsets"] == "in-sample (last stage)"
    assert stages[-1]["train_logloss"] < stages[0]["train_logloss"]


def test_model_is_blessed_on_eval_metrics_and_pushed(resfusion_run):
    metrics = checks.check_blessed_and_pushed(resfusion_run)
    assert metrics["auc"] > 0.55


def test_pushed_model_scores_heldout_raw_rows_in_a_fresh_process(resfusion_run):
    assert checks.score_heldout(resfusion_run) > 0.55


def test_pushed_model_holds_the_gbdt_and_the_deep_model_in_one_graph(resfusion_run):
    """The served stage-0 logit is the GBDT's recorded one; the probability is sigmoid of the stage sum."""
    residual = _artifact(resfusion_run, "GbdtResidual", "residual_examples")
    examples = helpers.read_examples(os.path.join(residual.uri, "Split-eval"))[:200]
    recorded = np.array([e.features.feature[features.GBDT_LOGIT_KEY].float_list.value[0] for e in examples])
    raw = []
    for example in examples:  # what a client sends: the raw fields only
        for name in (features.LABEL_KEY, features.GBDT_LOGIT_KEY, gbdt_residual.FOLD_FEATURE):
            del example.features.feature[name]
        raw.append(example.SerializeToString())
    model = tf.saved_model.load(glob.glob(os.path.join(resfusion_run.serving_model_dir, "*"))[0])
    stage_logits = model.signatures["stage_logits"](examples=tf.constant(raw))
    probability = model.signatures["serving_default"](examples=tf.constant(raw))["probability"].numpy()
    np.testing.assert_allclose(stage_logits["stage_0_gbdt"].numpy()[:, 0], recorded, atol=1e-5)
    total = sum(v.numpy() for v in stage_logits.values())
    np.testing.assert_allclose(probability, tf.sigmoid(total).numpy(), rtol=1e-5, atol=1e-6)
    assert sorted(stage_logits) == ["stage_0_gbdt", "stage_1_nn", "stage_2_gbdt"]
