"""GbdtResidual's executor: out-of-fold GBDT logits written into the examples, and the GBDT exported as a Model.

The executor runs once per layout (tests.resfusion_data.shared_gbdt_residual, shared with the trainer tests)
on generated rows: raw Criteo-layout rows (RawLogExampleGen's layout) and the same rows as OptFusion
TFRecords (`label` float[1], `feature` int64[39], ImportExampleGen's layout, whose 39 id columns the GBDT
reads as categorical features). Every test reads what it produced.
"""
import dataclasses
import json
import os

import numpy as np
import pytest
import tensorflow as tf
from tfx.types import artifact_utils

from components.gbdt_residual import executor
from tests import helpers, resfusion_data
from trainer import metrics
from trainer.resfusion import gbdt
from transform import features

FOLDS = resfusion_data.FOLDS
SEED = resfusion_data.FOLD_SEED
PARAMS = resfusion_data.TINY_GBDT


def _key(example: tf.train.Example) -> tuple:
    """A row's content without the residual features (to match output rows with input rows)."""
    feature = example.features.feature
    return tuple(sorted((name, feature[name].SerializeToString()) for name in feature
                        if name not in (features.GBDT_LOGIT_KEY, features.FOLD_FEATURE)))


@pytest.fixture(scope="module", params=resfusion_data.LAYOUTS)
def produced(request):
    out = resfusion_data.shared_gbdt_residual(request.param)
    split_rows = resfusion_data.SPLIT_ROWS[request.param]
    raw = {split: out.raw_records(split) for split in split_rows}
    written = {split: helpers.read_examples(artifact_utils.get_split_uri([out.residual], split))
               for split in split_rows}
    return {"layout": request.param, "split_rows": split_rows, "examples": out.examples, "residual": out.residual,
            "model": out.model, "raw": raw, "written": written}


def _logits(model: gbdt.GbdtModel, serialized: list[bytes]) -> np.ndarray:
    return model.logits_of_examples(serialized)


def test_every_row_of_every_split_gets_a_logit_and_a_fold(produced):
    for split, rows in produced["split_rows"].items():
        written = produced["written"][split]
        assert len(written) == rows
        assert {_key(e) for e in written} == {_key(tf.train.Example.FromString(s)) for s in produced["raw"][split]}
        for example in written:
            feature = example.features.feature
            assert len(feature[features.GBDT_LOGIT_KEY].float_list.value) == 1
            fold = feature[features.FOLD_FEATURE].int64_list.value[0]
            assert fold in (range(FOLDS) if split == "train" else (features.NO_FOLD,))


def test_recorded_folds_are_the_deterministic_hash_of_the_raw_row(produced):
    raw = produced["raw"]["train"]
    expected = dict(zip((_key(tf.train.Example.FromString(s)) for s in raw),
                        gbdt.assign_folds(tf.constant(raw), FOLDS, SEED).numpy()))
    recorded = {_key(e): e.features.feature[features.FOLD_FEATURE].int64_list.value[0]
                for e in produced["written"]["train"]}
    assert recorded == expected
    sizes = np.bincount(list(recorded.values()), minlength=FOLDS)
    assert sizes.min() > 0.4 * len(raw)  # two roughly equal folds


def test_training_logits_are_out_of_fold(produced):
    """Each training row's logit is the one of the fold model that did not see it, not the in-sample one."""
    model_uri = produced["model"].uri
    fold_models = [gbdt.GbdtModel.load(executor.fold_model_dir(model_uri, j)) for j in range(FOLDS)]
    full = gbdt.GbdtModel.load(os.path.join(model_uri, "Format-Serving"))
    written = produced["written"]["train"]
    folds = np.array([e.features.feature[features.FOLD_FEATURE].int64_list.value[0] for e in written])
    recorded = np.array([e.features.feature[features.GBDT_LOGIT_KEY].float_list.value[0] for e in written])
    serialized = [e.SerializeToString() for e in written]
    for j, model in enumerate(fold_models):
        rows = np.flatnonzero(folds == j)
        # Fold model j was trained on exactly the rows outside fold j ...
        assert model.keras_model.make_inspector().dataspec.created_num_rows == len(written) - len(rows)
        # ... and it is the one that scored the rows of fold j.
        np.testing.assert_allclose(recorded[rows], _logits(model, [serialized[i] for i in rows]), rtol=0, atol=1e-6)
        other = fold_models[1 - j]
        assert np.abs(recorded[rows] - _logits(other, [serialized[i] for i in rows])).max() > 1e-3
    in_sample = _logits(full, serialized)
    assert np.mean(np.abs(recorded - in_sample) > 1e-6) > 0.9
    # In-sample logits fit the training labels better than out-of-fold ones: the optimism OOF avoids.
    labels = np.array([_label(e) for e in written], np.float32)
    bce = tf.keras.losses.BinaryCrossentropy(from_logits=True)
    assert float(bce(labels, in_sample)) < float(bce(labels, recorded))


def _label(example: tf.train.Example) -> float:
    label = example.features.feature["label"]
    return float(label.int64_list.value[0] if label.int64_list.value else label.float_list.value[0])


def test_eval_and_test_logits_come_from_the_model_trained_on_all_training_rows(produced):
    full = gbdt.GbdtModel.load(os.path.join(produced["model"].uri, "Format-Serving"))
    assert full.keras_model.make_inspector().dataspec.created_num_rows == produced["split_rows"]["train"]
    for split in ("eval", "test"):
        written = produced["written"][split]
        recorded = np.array([e.features.feature[features.GBDT_LOGIT_KEY].float_list.value[0] for e in written])
        np.testing.assert_allclose(recorded, _logits(full, [e.SerializeToString() for e in written]), atol=1e-6)


def test_model_artifact_serves_raw_examples_like_every_model(produced):
    loaded = tf.saved_model.load(os.path.join(produced["model"].uri, "Format-Serving"))
    raw = produced["raw"]["eval"][:50]
    probability = loaded.signatures["serving_default"](examples=tf.constant(raw))["probability"].numpy()
    logit = loaded.signatures["logit"](examples=tf.constant(raw))["logit"].numpy()
    assert probability.shape == (50, 1) and probability.dtype == np.float32
    np.testing.assert_allclose(probability, tf.sigmoid(logit).numpy(), atol=1e-6)
    full = gbdt.GbdtModel.load(os.path.join(produced["model"].uri, "Format-Serving"))
    np.testing.assert_allclose(logit[:, 0], _logits(full, raw), atol=1e-6)


def test_fold_assignment_and_metrics_are_recorded_as_artifact_properties(produced):
    residual, model = produced["residual"], produced["model"]
    assert residual.get_int_custom_property("gbdt_folds") == FOLDS
    assert residual.get_int_custom_property("gbdt_fold_seed") == SEED
    assert residual.get_string_custom_property("gbdt_fold_rule") == gbdt.FOLD_RULE
    assert residual.get_string_custom_property("gbdt_train_logits") == "out-of-fold"
    assert artifact_utils.decode_split_names(residual.split_names) == list(produced["split_rows"])
    for split, rows in produced["split_rows"].items():
        assert residual.get_int_custom_property(f"{split}_count") == rows
        assert 0.2 < residual.get_float_custom_property(f"{split}_logloss") < 0.7
    assert 1 <= model.get_int_custom_property("num_trees") <= PARAMS.num_trees
    assert model.get_int_custom_property("folds") == FOLDS


def test_eval_metrics_of_the_full_model_are_recorded(produced):
    """`eval_auc` / `eval_logloss` on the Model artifact are the full model's on the eval split's rows."""
    model = produced["model"]
    full = gbdt.GbdtModel.load(os.path.join(model.uri, "Format-Serving"))
    raw = produced["raw"]["eval"]
    labels = np.array([_label(tf.train.Example.FromString(s)) for s in raw], np.float32)
    logits = _logits(full, raw)
    assert model.get_float_custom_property("eval_auc") == pytest.approx(metrics.auc(labels, logits), abs=1e-6)
    assert model.get_float_custom_property("eval_logloss") == pytest.approx(metrics.logloss(labels, logits), abs=1e-6)
    with open(os.path.join(model.uri, executor.METRICS_FILE)) as f:
        summary = json.load(f)
    assert summary["eval_auc"] == pytest.approx(model.get_float_custom_property("eval_auc"))
    width = resfusion_data.TFRECORD_FIELDS if produced["layout"] == "tfrecord" else 0
    assert summary["inputs"] == {"dataset": produced["layout"], "num_id_fields": width}


def test_a_training_fraction_trains_on_a_hash_sample_and_still_scores_every_row(tmp_path):
    """GbdtParams.training_fraction: the GBDT trains on the rows in_training_sample keeps, fold model j on the
    sampled rows outside fold j (TF-DF records how many rows it read); every row of every split is still scored,
    the training rows out-of-fold."""
    split_rows = {"train": 800, "eval": 200, "test": 100}
    params = dataclasses.replace(PARAMS, training_fraction=0.5)
    out = resfusion_data.run_gbdt_residual(str(tmp_path), split_rows, FOLDS, SEED, params, seed=9)
    train = out.raw_records("train")
    kept = gbdt.in_training_sample(tf.constant(train), 0.5, params.seed).numpy()
    folds = gbdt.assign_folds(tf.constant(train), FOLDS, SEED).numpy()
    assert 0.4 < kept.mean() < 0.6  # a half, give or take the binomial noise of 800 rows
    full_dir = os.path.join(out.model.uri, "Format-Serving")
    assert gbdt.GbdtModel.load(full_dir).keras_model.make_inspector().dataspec.created_num_rows == kept.sum()
    for j in range(FOLDS):
        fold_model = gbdt.GbdtModel.load(executor.fold_model_dir(out.model.uri, j))
        assert fold_model.keras_model.make_inspector().dataspec.created_num_rows == (kept & (folds != j)).sum()
    with open(os.path.join(out.model.uri, executor.METRICS_FILE)) as f:
        summary = json.load(f)
    assert summary["training_fraction"] == 0.5 and summary["training_sample_rule"] == gbdt.SAMPLE_RULE
    assert summary["train_logits"] == "out-of-fold"
    for split, rows in split_rows.items():
        written = helpers.read_examples(artifact_utils.get_split_uri([out.residual], split))
        assert len(written) == rows
        assert all(len(e.features.feature[features.GBDT_LOGIT_KEY].float_list.value) == 1 for e in written)


def test_the_training_sample_is_deterministic_and_independent_of_the_folds():
    rows = tf.constant([f"row {i}".encode() for i in range(4000)])
    kept = gbdt.in_training_sample(rows, 0.25, 7).numpy()
    np.testing.assert_array_equal(kept, gbdt.in_training_sample(rows, 0.25, 7).numpy())  # same bytes, same answer
    assert gbdt.in_training_sample(rows, 1.0, 7).numpy().all()
    folds = gbdt.assign_folds(rows, 2, 7).numpy()
    for fold in (0, 1):  # about a quarter of each fold: the sample's hash is not the folds'
        assert 0.2 < kept[folds == fold].mean() < 0.3
    with pytest.raises(ValueError, match="training_fraction must be in"):
        gbdt.GbdtParams(training_fraction=0.0)
