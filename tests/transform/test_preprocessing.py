"""The OptFusion preprocessing rules through the real tf.Transform analyzers, with hand-computed ids."""
import datetime
import functools

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_transform as tft
import tensorflow_transform.beam as tft_beam
from tensorflow_transform.tf_metadata import dataset_metadata, schema_utils

from trainer import data
from transform import features, preprocessing

MINI = features.DatasetSpec(name="mini", integer_fields=("I1",), categorical_fields=("C1",))
RAW_SPEC = {"label": tf.io.VarLenFeature(tf.int64), "I1": tf.io.VarLenFeature(tf.int64),
            "C1": tf.io.VarLenFeature(tf.string)}
TRAIN_ROWS = [  # (I1, C1); [] is a missing value
    ([3], [b"a"]), ([100], [b"a"]), ([], [b"b"]), ([-1], []), ([3], []), ([], [b"c"]),
]
# Hand-computed vocabularies. TF Transform orders by count, then by token bytes, descending.
# I1 tokens: "1" (3 -> floor(ln(3)^2) = 1) x2, "__missing__" x2, "21" (100 -> floor(4.605^2) = 21) x1, "-1" x1.
# Integer fields are exempt from the threshold: ids __missing__=0, 1=1, 21=2, -1=3, OOV=4 (5 ids).
# C1 tokens: a x2, __missing__ x2, b x1, c x1 -> threshold 2 keeps a=0, __missing__=1; OOV=2 (3 ids).
# Global ids: C1 is offset by I1's 5 ids -> a=5, __missing__=6, OOV=7; table size 8.


def test_log_square_bucket_values():
    values = tf.constant([-2, 0, 1, 2, 3, 100, 1000], tf.int64)
    # 3 -> floor(1.0986^2) = 1; 100 -> floor(4.6052^2) = 21; 1000 -> floor(6.9078^2) = 47; v <= 2 unchanged.
    assert preprocessing.log_square_bucket(values).numpy().tolist() == [-2, 0, 1, 2, 1, 21, 47]


def test_avazu_hour_expansion_matches_python_calendar():
    stamps, expected = [], []
    day = datetime.date(2014, 1, 1)
    while day < datetime.date(2016, 12, 31):
        stamps.append(int(day.strftime("%y%m%d")) * 100 + day.toordinal() % 24)
        # The reference's avazu2TF.py: weekday = strftime("%w") (Sunday = 0), weekend = Saturday or Sunday.
        expected.append((str(day.toordinal() % 24), day.strftime("%w"), str(int(day.strftime("%w") in ("0", "6")))))
        day += datetime.timedelta(days=3)
    tokens = preprocessing.avazu_hour_tokens(tf.constant(stamps, tf.int64), "hour")
    got = list(zip(*(tokens[k].numpy().astype(str) for k in ("hour", "weekday", "is_weekend"))))
    assert got == expected
    # 2014-10-21 was a Tuesday (2, counting from Sunday = 0); hour 00. 2014-10-26 a Sunday, 2014-10-25 a Saturday.
    days = preprocessing.avazu_hour_tokens(tf.constant([14102100, 14102623, 14102507], tf.int64), "hour")
    assert [days[k].numpy().tolist() for k in ("hour", "weekday", "is_weekend")] == [
        [b"0", b"23", b"7"], [b"2", b"0", b"6"], [b"0", b"1", b"1"]]


def _instances(rows, with_label=True):
    return [{**({"label": [i % 2]} if with_label else {}), "I1": i1, "C1": c1} for i, (i1, c1) in enumerate(rows)]


@pytest.fixture(scope="module")
def mini_transform(tmp_path_factory):
    """Analyzes TRAIN_ROWS with the real preprocessing_fn; returns (transform output dir, TFTransformOutput)."""
    features.DATASETS["mini"] = MINI
    metadata = dataset_metadata.DatasetMetadata(schema_utils.schema_from_feature_spec(RAW_SPEC))
    output_dir = str(tmp_path_factory.mktemp("transform"))
    fn = functools.partial(preprocessing.preprocessing_fn, custom_config={"dataset": "mini"})
    with tft_beam.Context(temp_dir=str(tmp_path_factory.mktemp("tmp"))):
        transform_fn = (_instances(TRAIN_ROWS), metadata) | tft_beam.AnalyzeDataset(fn)
        _ = transform_fn | tft_beam.WriteTransformFn(output_dir)
    yield tft.TFTransformOutput(output_dir)
    del features.DATASETS["mini"]


def _transform(tft_output, rows):
    layer = tft_output.transform_features_layer()
    columns = {}
    for name, dtype in (("I1", tf.int64), ("C1", tf.string)):
        values = [r[0] if name == "I1" else r[1] for r in rows]
        indices = [[i, 0] for i, v in enumerate(values) if v]
        columns[name] = tf.SparseTensor(indices=tf.constant(indices, tf.int64) if indices
                                        else tf.zeros([0, 2], tf.int64),
                                        values=tf.constant([v[0] for v in values if v], dtype),
                                        dense_shape=[len(rows), 1])
    return layer(columns)[features.FEATURE_KEY].numpy().tolist()


def test_training_rows_get_hand_computed_ids(mini_transform):
    assert _transform(mini_transform, TRAIN_ROWS) == [[1, 5], [2, 5], [0, 7], [3, 6], [1, 6], [0, 7]]


def test_unseen_and_rare_values_share_the_fields_oov_id(mini_transform):
    # 1000 -> bucket 47 (never seen) and 2 -> bucket 2 (never seen): I1's OOV id 4; "zzz" unseen, "b" seen once: 7.
    # 1 -> bucket 1, the same category as 3.
    rows = [([1000], [b"zzz"]), ([2], [b"b"]), ([1], [b"a"]), ([], [])]
    assert _transform(mini_transform, rows) == [[4, 7], [4, 7], [1, 5], [0, 6]]


def test_vocabulary_sizes_and_table_size_reach_the_trainer(mini_transform):
    assert data.field_vocabulary_sizes(mini_transform, MINI) == {"I1": 5, "C1": 3}
    assert data.id_space(mini_transform) == (2, 8)


def test_prebuilt_ids_pass_through_and_record_the_table_size(tmp_path):
    spec = {"label": tf.io.FixedLenFeature([1], tf.float32), "feature": tf.io.FixedLenFeature([3], tf.int64)}
    metadata = dataset_metadata.DatasetMetadata(schema_utils.schema_from_feature_spec(spec))
    rows = [{"label": [1.0], "feature": [0, 5, 9]}, {"label": [0.0], "feature": [1, 4, 11]}]
    fn = functools.partial(preprocessing.preprocessing_fn, custom_config={"dataset": "tfrecord"})
    with tft_beam.Context(temp_dir=str(tmp_path / "tmp")):
        (transformed, _), transform_fn = (rows, metadata) | tft_beam.AnalyzeAndTransformDataset(
            fn, output_record_batches=False)
        _ = transform_fn | tft_beam.WriteTransformFn(str(tmp_path / "out"))
    assert [r["feature"].tolist() for r in transformed] == [[0, 5, 9], [1, 4, 11]]
    assert np.allclose([r["label"] for r in transformed], [[1.0], [0.0]])
    output = tft.TFTransformOutput(str(tmp_path / "out"))
    # Largest id 11; one extra row (12) for ids outside [0, 11]: table size 13.
    assert data.id_space(output) == (3, 13)
    layer = output.transform_features_layer()
    served = layer({"feature": tf.constant([[3, 12, -1]], tf.int64)})["feature"].numpy().tolist()
    assert served == [[3, 12, 12]]
