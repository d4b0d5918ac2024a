"""The GBDT's inputs and parameters (trainer/resfusion/gbdt.py): what it reads from an OptFusion TFRecord, its
vocabulary defaults and its leaf bound."""
import json

import pytest
import tensorflow as tf

from tests import resfusion_data
from trainer.resfusion import gbdt
from transform import features

TFRECORD = features.get_dataset("tfrecord")


def test_tfrecord_id_columns_are_categorical_features():
    """`feature` int64[F] -> F string features id_000..: the id's decimal string, "" when absent or negative."""
    inputs = gbdt.GbdtInputs(TFRECORD, 3)
    assert inputs.feature_names == ("id_000", "id_001", "id_002")
    assert not any(inputs.is_numerical(name) for name in inputs.feature_names)
    assert all(s.dtype == tf.string for s in inputs.input_signature().values())
    rows = [resfusion_data.tfrecord_example(1.0, [7, 12, 40]), resfusion_data.tfrecord_example(0.0, [8]),
            resfusion_data.tfrecord_example(0.0, [9, -1, 41, 99])]
    parsed = inputs.parse(tf.constant([r.SerializeToString() for r in rows]))
    assert {name: [v.decode() for v in values.numpy()] for name, values in parsed.items()} == {
        "id_000": ["7", "8", "9"], "id_001": ["12", "", ""], "id_002": ["40", "", "41"]}


def test_tfrecord_width_is_read_from_the_first_record_and_required(tmp_path):
    path = str(tmp_path / "train_0000.tfrecord")
    with tf.io.TFRecordWriter(path) as writer:
        writer.write(resfusion_data.tfrecord_example(1.0, [3, 5, 8, 13]).SerializeToString())
    inputs = gbdt.GbdtInputs.from_files(TFRECORD, [path])
    assert inputs.num_id_fields == 4 and inputs.label_dtype == tf.float32
    assert gbdt.GbdtInputs.from_dict(json.loads(json.dumps(inputs.to_dict()))) == inputs
    assert gbdt.GbdtInputs.from_files(features.get_dataset("criteo"), [path]).num_id_fields == 0
    with pytest.raises(ValueError, match="num_id_fields"):
        gbdt.GbdtLearner(TFRECORD)  # prebuilt ids without their width
    with pytest.raises(ValueError, match="num_id_fields must be 0"):
        gbdt.GbdtInputs(features.get_dataset("criteo"), 3)


def test_prebuilt_ids_keep_every_id_in_the_dictionary_unless_set():
    """OptFusion ids are already thresholded: by default every id is a category (-1: no cap, frequency >= 1);
    raw values keep the 2,000 most frequent seen >= 5 times; set values win."""
    ids, raw = gbdt.GbdtInputs(TFRECORD, 10), gbdt.GbdtInputs(features.get_dataset("frappe"))
    assert gbdt.GbdtParams().vocabulary(ids) == (-1, 1)
    assert gbdt.GbdtParams().vocabulary(raw) == (2000, 5)
    assert gbdt.GbdtParams(max_vocab_count=500, min_vocab_frequency=3).vocabulary(ids) == (500, 3)


def test_leaf_bound_follows_the_growing_strategy():
    """GBDT+LR gives every (tree, leaf) an id below this bound."""
    assert gbdt.GbdtParams(max_depth=4).max_leaves == 16
    assert gbdt.GbdtParams(growing_strategy="BEST_FIRST_GLOBAL", max_num_nodes=63, max_depth=-1).max_leaves == 32
    assert gbdt.GbdtParams(growing_strategy="BEST_FIRST_GLOBAL", max_num_nodes=63, max_depth=3).max_leaves == 8


def test_raw_fields_take_one_value_or_none_and_more_is_an_error_naming_the_field():
    """As in the Transform graph of the other models: never a silent first value (../shared/cases/07)."""
    inputs = gbdt.GbdtInputs(features.get_dataset("criteo"))
    one, two = tf.train.Example(), tf.train.Example()
    one.features.feature["I1"].int64_list.value.append(4)
    two.features.feature["C1"].bytes_list.value.extend([b"68fd1e64", b"05db9164"])
    parsed = inputs.parse(tf.constant([one.SerializeToString(), tf.train.Example().SerializeToString()]))
    assert parsed["I1"].numpy().tolist()[0] == 4.0 and parsed["C1"].numpy().tolist() == [b"", b""]
    with pytest.raises(tf.errors.InvalidArgumentError, match="feature C1 has more than one value in an example"):
        inputs.parse(tf.constant([one.SerializeToString(), two.SerializeToString()]))
