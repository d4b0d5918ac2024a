"""Curated schemas: committed files are current, every raw field is optional unless required, and a
bad label found by TFDV against the schema blocks training through the AnomalyGate."""
import os

import pytest
import tensorflow as tf
import tensorflow_data_validation as tfdv
from tensorflow_transform.tf_metadata import schema_utils

from components import anomaly_gate
from tests.helpers import REPO_ROOT
from transform import curated_schema, features, parsers


@pytest.mark.parametrize("name", curated_schema.CURATED_DATASETS)
def test_committed_schema_files_are_up_to_date(tmp_path, name):
    curated_schema.write_all(str(tmp_path))
    with open(tmp_path / f"{name}.pbtxt") as fresh, open(os.path.join(REPO_ROOT, "schemas", f"{name}.pbtxt")) as kept:
        assert kept.read() == fresh.read(), "run `make schemas`"


def test_every_raw_field_may_be_absent_so_serving_accepts_partial_examples():
    schema = curated_schema.curated_schema(features.get_dataset("criteo"))
    spec = schema_utils.schema_as_feature_spec(schema).feature_spec
    assert len(spec) == 40
    assert all(isinstance(s, tf.io.VarLenFeature) for s in spec.values())
    assert spec["I1"].dtype == tf.int64 and spec["C1"].dtype == tf.string


def _anomalies(tmp_path, rows, dataset):
    path = str(tmp_path / "data.tfrecord")
    with tf.io.TFRecordWriter(path) as writer:
        for row in rows:
            writer.write(parsers.row_to_example(row).SerializeToString())
    stats = tfdv.generate_statistics_from_tfrecord(path, pipeline_options=None)
    return tfdv.validate_statistics(stats, curated_schema.curated_schema(features.get_dataset(dataset)))


def test_label_out_of_domain_blocks_training(tmp_path):
    rows = [{"label": 2, "hour": 14102100, "C1": "a"}, {"label": 0, "hour": 14102101, "C1": None}]
    anomalies = _anomalies(tmp_path, rows, "avazu")
    with pytest.raises(anomaly_gate.DataAnomalyError, match="field 'label'"):
        anomaly_gate.enforce({"train": anomalies}, {"label", "hour"}, str(tmp_path))


def test_missing_required_field_blocks_and_missing_optional_field_does_not(tmp_path):
    rows = [{"label": 1, "hour": None, "C1": "a"}, {"label": 0, "hour": 14102101, "C1": None}]
    anomalies = _anomalies(tmp_path, rows, "avazu")
    assert set(anomalies.anomaly_info) == {"hour"}
    with pytest.raises(anomaly_gate.DataAnomalyError, match="field 'hour'"):
        anomaly_gate.enforce({"train": anomalies}, {"label", "hour"}, str(tmp_path))
