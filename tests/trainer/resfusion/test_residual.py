"""ResFusion stages (trainer/resfusion/residual.py): the LogitBoost step, K = 1, 2, 3 on a tiny preset,
out-of-fold offsets, which K is served, and both stage orders on OptFusion TFRecord rows.

The fitted stages are conftest.py's, on the GbdtResidual runs shared with
tests/components/gbdt_residual/test_executor.py (tests.resfusion_data).
"""
import json

import numpy as np
import pytest
import tensorflow as tf

from tests import resfusion_data
from tests.trainer.resfusion.helpers import SPEC, TINY_TRAINER, _options, _record, _stage_logits
from trainer import metrics
from trainer.resfusion import export, gbdt, residual
from trainer.resfusion.settings import ResFusionOptions

# --- LogitBoost ---------------------------------------------------------------------------------------------------

def test_logitboost_targets_are_the_newton_step_of_the_logloss():
    rng = np.random.default_rng(0)
    labels = (rng.random(500) < 0.3).astype(np.float32)
    offsets = rng.normal(-1.0, 0.5, 500).astype(np.float32)
    z, w = residual.logitboost_targets(labels, offsets, z_max=1e9)
    p = residual.sigmoid(offsets)
    np.testing.assert_allclose(w, p * (1 - p), rtol=1e-5)
    np.testing.assert_allclose(z * w, labels - p, atol=1e-5)  # w z = -gradient of the logloss
    # The best constant h under the weighted squared error is the Newton step for an intercept.
    newton = np.sum(labels - p) / np.sum(p * (1 - p))
    assert np.sum(w * z) / np.sum(w) == pytest.approx(newton, rel=1e-5)
    # ... and it lowers the logloss, as a Newton step on this convex function should.
    assert metrics.logloss(labels, offsets + newton) < metrics.logloss(labels, offsets)
    clipped, _ = residual.logitboost_targets(np.array([1.0, 0.0]), np.array([-8.0, 0.0]), z_max=4.0)
    np.testing.assert_allclose(clipped, [4.0, -2.0], rtol=1e-6)


def _hand_made_rows(path: str, rows: int, seed: int) -> str:
    """Criteo-layout rows whose click log-odds are -1 + 0.3 * I1 - 1.5 * [C1 == "b"] (I1 in 0..9)."""
    rng = np.random.default_rng(seed)
    with tf.io.TFRecordWriter(path, "GZIP") as writer:
        for _ in range(rows):
            i1, c1 = int(rng.integers(0, 10)), str(rng.choice(["a", "b"]))
            label = int(rng.random() < residual.sigmoid(-1.0 + 0.3 * i1 - 1.5 * (c1 == "b")))
            example = tf.train.Example()
            example.features.feature["label"].int64_list.value.append(label)
            example.features.feature["I1"].int64_list.value.append(i1)
            example.features.feature["C1"].bytes_list.value.append(c1.encode())
            writer.write(example.SerializeToString())
    return path


def test_logitboost_stage_decreases_training_logloss_against_the_offset_alone(tmp_path):
    inputs = gbdt.GbdtInputs(SPEC)
    train = residual.SplitRows("train", [_hand_made_rows(str(tmp_path / "train.gz"), 2000, 1)], inputs, 256)
    valid = residual.SplitRows("eval", [_hand_made_rows(str(tmp_path / "eval.gz"), 500, 2)], inputs, 256)
    options = ResFusionOptions(rounds=1, gbdt=gbdt.GbdtParams(num_trees=40, max_depth=3, early_stopping_look_ahead=10))
    ctx = residual.FitContext(inputs, options, TINY_TRAINER, encoder=None)
    cases = {
        "base rate only": lambda s: np.full(len(s), -0.2, np.float32),
        "C1 effect backwards": lambda s: np.where(np.array(_field(s, "C1")) == b"b", 1.0, -1.0).astype(np.float32),
    }
    for name, make_offsets in cases.items():
        offsets = {s.name: make_offsets(s) for s in (train, valid)}
        model = residual.fit_gbdt(ctx, train, valid, offsets, rows=None)
        for split in (train, valid):
            before = metrics.logloss(split.labels, offsets[split.name])
            after = metrics.logloss(split.labels, offsets[split.name] + split.gbdt_logits(model))
            assert after < before - 0.02, (name, split.name, before, after)


def test_logitboost_stage_trains_on_the_gbdt_training_sample(tmp_path):
    """GbdtParams.training_fraction: a later GBDT stage reads the sampled rows only (of the rows it is given)."""
    inputs = gbdt.GbdtInputs(SPEC)
    train = residual.SplitRows("train", [_hand_made_rows(str(tmp_path / "train.gz"), 1000, 1)], inputs, 256)
    valid = residual.SplitRows("eval", [_hand_made_rows(str(tmp_path / "eval.gz"), 300, 2)], inputs, 256)
    params = gbdt.GbdtParams(num_trees=5, max_depth=3, early_stopping_look_ahead=5, training_fraction=0.3)
    ctx = residual.FitContext(inputs, ResFusionOptions(rounds=1, gbdt=params), TINY_TRAINER, encoder=None)
    offsets = {s.name: np.zeros(len(s), np.float32) for s in (train, valid)}
    first_half = np.arange(len(train)) < 500
    model = residual.fit_gbdt(ctx, train, valid, offsets, rows=first_half)
    sampled = train.training_sample(0.3, params.seed)
    assert model.keras_model.make_inspector().dataspec.created_num_rows == (sampled & first_half).sum() > 0


def _field(split: residual.SplitRows, field: str) -> list:
    values = []
    for serialized in split.records():
        feature = tf.train.Example.FromString(serialized.numpy()).features.feature[field]
        values.append(feature.bytes_list.value[0] if feature.bytes_list.value else feature.int64_list.value[0])
    return values


# --- K rounds -----------------------------------------------------------------------------------------------------

def test_k_rounds_alternate_stages_and_every_stage_feeding_another_is_out_of_fold(k3):
    stages, _ = k3
    assert tuple(s.kind for s in stages) == ("gbdt", "nn", "gbdt", "nn")
    records = [s.record for s in stages]
    assert records[0]["train_offsets"].startswith("out-of-fold")
    assert records[0]["recorded_eval_logit_max_abs_diff"] < 1e-5
    for record in records[1:-1]:  # the deep stage and the GBDT stage that feed a later one
        assert record["train_offsets"] == f"out-of-fold ({resfusion_data.FOLDS} folds)", record
    assert records[-1]["train_offsets"] == "in-sample (last stage)"
    assert [r["rounds"] for r in records] == [0, 1, 2, 3]
    for record in records:
        assert 0.5 < record["eval_auc"] <= 1.0 and 0.2 < record["eval_logloss"] < 0.8


def test_cached_ids_are_the_encoders_ids_of_each_row_in_file_order(layouts):
    _, encoder, rows = layouts["criteo"]
    train = rows["train"]
    expected = np.concatenate([encoder(batch).numpy() for batch in train.records().batch(7)])
    cached = np.stack([ids.numpy() for ids in train.ids()])  # one row at a time, from the cache of batches
    assert cached.shape == (len(train), encoder.num_fields)
    np.testing.assert_array_equal(cached, expected)


def test_out_of_fold_offsets_come_from_fold_models_that_never_saw_the_row(k3, layouts):
    """Stages 1 (deep) and 2 (GBDT) hand the next stage, for a row of fold j, the logit of fold model j, which
    was fitted without fold j; not the logit of the stage model fitted on every row."""
    stages, _ = k3
    train = layouts["criteo"][2]["train"]
    folds = train.folds
    for stage in stages[1:3]:
        assert len(stage.fold_models) == resfusion_data.FOLDS
        for j, fold_model in enumerate(stage.fold_models):
            rows = folds == j
            if stage.kind == "gbdt":  # fitted on exactly the rows outside fold j
                assert fold_model.keras_model.make_inspector().dataspec.created_num_rows == int((~rows).sum())
                scored = train.gbdt_logits(fold_model, rows=rows)
            else:
                scored = train.nn_logits(fold_model, rows=rows)
            np.testing.assert_allclose(stage.train_logits[rows], scored, rtol=1e-5, atol=1e-6)
        in_sample = _stage_logits(train, stage)
        assert np.mean(np.abs(stage.train_logits - in_sample) > 1e-6) > 0.9, stage.kind


def test_tfrecord_rows_run_gbdtres_nn_and_nnres_gbdt_with_out_of_fold_offsets(tfrecord_fitted, layouts):
    """Both orders on OptFusion TFRecords, each first stage handing out-of-fold logits to the second; the GBDT
    loaded from the component reproduces its recorded eval logits; NNres+GBDT's export scores the input's
    records (label, `feature`) as the sum of its stage logits."""
    _, _, rows = layouts["tfrecord"]
    for name, kinds in (("resfusion", ["gbdt", "nn"]), ("nnres-gbdt", ["nn", "gbdt"])):
        stages = tfrecord_fitted[name][0]
        assert [s.kind for s in stages] == kinds
        assert stages[0].record["train_offsets"].startswith("out-of-fold"), stages[0].record
    assert tfrecord_fitted["resfusion"][0][0].record["recorded_eval_logit_max_abs_diff"] < 1e-5
    stages, _, export_dir = tfrecord_fitted["nnres-gbdt"]
    assert stages[1].record["fitted_by"] == "LogitBoost regression GBDT"
    expected = sum(_stage_logits(rows["test"], stage) for stage in stages)
    raw = layouts["tfrecord"][0].raw_records("test")
    served = tf.saved_model.load(export_dir).signatures["serving_default"](examples=tf.constant(raw))
    np.testing.assert_allclose(served["probability"].numpy()[:, 0], residual.sigmoid(expected), rtol=1e-5, atol=1e-6)


# --- which K is served ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("loglosses, best", [
    ([0.539, 0.557, 0.629], 0),          # the Criteo run of the issue: every residual stage hurt
    ([0.50, 0.45, 0.46, 0.44], 3),
    ([0.50, 0.45, 0.45], 1),             # a tie keeps the shorter model
    ([0.50, float("nan"), 0.49], 2),     # NaN counts as worst
    ([0.7], 0),
])
def test_the_served_prefix_has_the_lowest_eval_logloss(loglosses, best):
    assert residual.best_prefix(loglosses) == best


def test_a_stage_that_worsens_the_eval_logloss_is_not_served_and_every_k_is_reported():
    stages = [residual.Stage("gbdt", None, _record(0, "gbdt", 0.685, 0.539, num_trees=40)),
              residual.Stage("nn", None, _record(1, "nn", 0.716, 0.557, best_epoch=2, epochs_run=3)),
              residual.Stage("gbdt", None, _record(2, "gbdt", 0.702, 0.629, num_trees=12))]
    served = residual.select_served(stages)
    assert [s.kind for s in served] == ["gbdt"]
    result = export.summarize("resfusion", _options(2), [s.record for s in stages])
    assert result["served_rounds"] == 0 and result["fitted_rounds"] == 2
    assert (result["eval_auc"], result["eval_logloss"]) == (0.685, 0.539)
    assert result["best_epoch"] == 2  # the first deep stage's
    assert [(s["rounds"], s["eval_auc"], s["eval_logloss"], s["served"]) for s in result["stages"]] == [
        (0, 0.685, 0.539, True), (1, 0.716, 0.557, False), (2, 0.702, 0.629, False)]
    assert json.loads(json.dumps(result)) == result
