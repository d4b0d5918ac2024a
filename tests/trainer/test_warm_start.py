"""Warm start (trainer/warm_start.py): embedding rows follow their field value from yesterday's id space to today's."""
import os

import numpy as np
import pytest
import tensorflow as tf

from trainer import warm_start
from trainer.layers.field_embedding import FieldEmbedding

keras = tf.keras

# Yesterday: field f1 = [a, b], f2 = [x]; today: f1 = [b, c, a], f2 = [y, x]. Each field ends with its OOV id.
OLD = {"vocab_f1": [b"a", b"b"], "vocab_f2": [b"x"]}
NEW = {"vocab_f1": [b"b", b"c", b"a"], "vocab_f2": [b"y", b"x"]}
# Old ids: a 0, b 1, OOV(f1) 2, x 3, OOV(f2) 4. New rows: b c a OOV(f1) y x OOV(f2).
EXPECTED_SOURCES = [1, warm_start.NEW_ROW, 0, 2, warm_start.NEW_ROW, 3, 4]


def test_row_sources_match_rows_by_field_and_value_and_oov_by_field():
    sources = warm_start.row_sources(list(OLD.values()), list(NEW.values()))
    assert sources.tolist() == EXPECTED_SOURCES
    with pytest.raises(ValueError, match="the base model has 2 fields, this model 1"):
        warm_start.row_sources(list(OLD.values()), [NEW["vocab_f1"]])


def test_remap_rows_copies_rows_with_a_source_and_keeps_the_others():
    old = np.array([[1.0], [2.0], [3.0]])
    new = np.array([[10.0], [20.0], [30.0], [40.0]])
    result = warm_start.remap_rows(old, new, np.array([2, warm_start.NEW_ROW, 0, 1]))
    assert result.tolist() == [[3.0], [20.0], [1.0], [2.0]]
    assert new.tolist() == [[10.0], [20.0], [30.0], [40.0]]  # not modified in place


def _model(table_rows: int, dim: int = 2) -> keras.Model:
    ids = keras.Input(shape=(2,), dtype=tf.int64, name="feature")
    embedded = FieldEmbedding(table_rows, dim, name="embedding")(ids)
    logit = keras.layers.Dense(1, name="out")(keras.layers.Flatten()(embedded))
    return keras.Model({"feature": ids}, logit)


def _saved_base(tmp_path) -> tuple[str, keras.Model]:
    base = _model(5)
    base.get_layer("embedding").embeddings.assign(np.arange(10, dtype=np.float32).reshape(5, 2))
    path = str(tmp_path / "base")
    base.save(path, save_format="tf")
    for name, tokens in OLD.items():  # as the Transform graph's assets of an exported model
        with open(os.path.join(path, "assets", name), "wb") as f:
            f.write(b"".join(token + b"\n" for token in tokens))
    return path, base


def test_warm_start_copies_every_weight_with_table_rows_matched_by_value(tmp_path):
    path, base = _saved_base(tmp_path)
    model = _model(7)
    fresh = model.get_layer("embedding").embeddings.numpy()
    report = warm_start.warm_start(model, path, NEW, table_rows=7)
    assert report == warm_start.WarmStartReport(base_model=path, copied_weights=3, table_rows=7, rows_from_base=5)
    table = model.get_layer("embedding").embeddings.numpy()
    old_table = np.arange(10, dtype=np.float32).reshape(5, 2)
    for row, source in enumerate(EXPECTED_SOURCES):
        np.testing.assert_array_equal(table[row], fresh[row] if source == warm_start.NEW_ROW else old_table[source])
    np.testing.assert_array_equal(model.get_layer("out").kernel.numpy(), base.get_layer("out").kernel.numpy())


def test_another_architecture_or_a_model_that_is_not_keras_means_a_fresh_start(tmp_path):
    path, _ = _saved_base(tmp_path)
    model = _model(7, dim=3)
    fresh = model.get_layer("embedding").embeddings.numpy()
    report = warm_start.warm_start(model, path, NEW, table_rows=7)
    assert report.skipped == "weight embedding/embeddings:0 is (5, 2) in the base model, (7, 3) here"
    assert report.copied_weights == 0
    np.testing.assert_array_equal(model.get_layer("embedding").embeddings.numpy(), fresh)
    not_keras = tmp_path / "not_a_model"
    not_keras.mkdir()
    report = warm_start.warm_start(_model(7), str(not_keras), NEW, table_rows=7)
    assert report.skipped.startswith("it does not load as a Keras model (OSError")


def test_a_base_model_without_a_fields_vocabulary_means_a_fresh_start(tmp_path):
    path, _ = _saved_base(tmp_path)
    report = warm_start.warm_start(_model(7), path, {**NEW, "vocab_f3": [b"z"]}, table_rows=7)
    assert report.skipped == (f"the base model has no vocabulary vocab_f3 ({path}/assets holds neither global_ids nor "
                              "vocab_f3)")
