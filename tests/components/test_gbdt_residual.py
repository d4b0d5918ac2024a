"""GbdtResidual: out-of-fold GBDT logits written into the raw examples, and the GBDT exported as a Model.

The executor runs once (module fixture) on generated Criteo-layout rows written as a raw Examples artifact
(the layout RawLogExampleGen writes); every test reads what it produced.
"""
import json
import os

import numpy as np
import pytest
import tensorflow as tf
from tfx.types import artifact_utils, standard_artifacts

from components.gbdt_residual import executor
from components.gbdt_residual.component import GbdtResidual
from tests import helpers, resfusion_data
from trainer import gbdt
from transform import features

SPLIT_ROWS = {"train": 1600, "eval": 400, "test": 300}
FOLDS = 2
SEED = 7
PARAMS = gbdt.GbdtParams(num_trees=15, max_depth=4, early_stopping_look_ahead=5, batch_size=256)


def _key(example: tf.train.Example) -> tuple:
    """A row's content without the residual features (to match output rows with input rows)."""
    feature = example.features.feature
    return tuple(sorted((name, feature[name].SerializeToString()) for name in feature
                        if name not in (features.GBDT_LOGIT_KEY, executor.FOLD_FEATURE)))


@pytest.fixture(scope="module")
def produced(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("gbdt_residual"))
    out = resfusion_data.run_gbdt_residual(root, SPLIT_ROWS, FOLDS, SEED, PARAMS)
    examples, residual, model = out.examples, out.residual, out.model
    raw = {split: [r.numpy() for r in tf.data.TFRecordDataset(executor.split_files(examples, split), "GZIP")]
           for split in SPLIT_ROWS}
    written = {split: helpers.read_examples(artifact_utils.get_split_uri([residual], split)) for split in SPLIT_ROWS}
    return {"examples": examples, "residual": residual, "model": model, "raw": raw, "written": written}


def _logits(model: gbdt.GbdtModel, serialized: list[bytes]) -> np.ndarray:
    return model._predict(gbdt.parse_raw(model.spec, tf.constant(serialized)))


def test_every_row_of_every_split_gets_a_logit_and_a_fold(produced):
    for split, rows in SPLIT_ROWS.items():
        written = produced["written"][split]
        assert len(written) == rows
        assert {_key(e) for e in written} == {_key(tf.train.Example.FromString(s)) for s in produced["raw"][split]}
        for example in written:
            feature = example.features.feature
            assert len(feature[features.GBDT_LOGIT_KEY].float_list.value) == 1
            fold = feature[executor.FOLD_FEATURE].int64_list.value[0]
            assert fold in (range(FOLDS) if split == "train" else (executor.NO_FOLD,))


def test_recorded_folds_are_the_deterministic_hash_of_the_raw_row(produced):
    raw = produced["raw"]["train"]
    expected = dict(zip((_key(tf.train.Example.FromString(s)) for s in raw),
                        gbdt.assign_folds(tf.constant(raw), FOLDS, SEED).numpy()))
    recorded = {_key(e): e.features.feature[executor.FOLD_FEATURE].int64_list.value[0]
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
    folds = np.array([e.features.feature[executor.FOLD_FEATURE].int64_list.value[0] for e in written])
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
    labels = np.array([e.features.feature["label"].int64_list.value[0] for e in written], np.float32)
    bce = tf.keras.losses.BinaryCrossentropy(from_logits=True)
    assert float(bce(labels, in_sample)) < float(bce(labels, recorded))


def test_eval_and_test_logits_come_from_the_model_trained_on_all_training_rows(produced):
    full = gbdt.GbdtModel.load(os.path.join(produced["model"].uri, "Format-Serving"))
    assert full.keras_model.make_inspector().dataspec.created_num_rows == SPLIT_ROWS["train"]
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
    assert artifact_utils.decode_split_names(residual.split_names) == list(SPLIT_ROWS)
    for split, rows in SPLIT_ROWS.items():
        assert residual.get_int_custom_property(f"{split}_count") == rows
        assert 0.2 < residual.get_float_custom_property(f"{split}_logloss") < 0.7
    assert 1 <= model.get_int_custom_property("num_trees") <= PARAMS.num_trees
    assert model.get_int_custom_property("folds") == FOLDS


def test_component_wiring():
    source = standard_artifacts.Examples
    from tfx.types import channel_utils
    component = GbdtResidual(examples=channel_utils.as_channel([source()]), dataset="criteo", folds=3)
    assert set(component.outputs) == {"residual_examples", "model"}
    assert component.exec_properties["folds"] == 3
    assert gbdt.GbdtParams(**json.loads(component.exec_properties["gbdt_params"])) == gbdt.GbdtParams()
    with pytest.raises(ValueError, match="folds must be 0"):
        GbdtResidual(examples=channel_utils.as_channel([source()]), dataset="criteo", folds=1)
