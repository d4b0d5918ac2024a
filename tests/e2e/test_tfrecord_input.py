"""The pipeline on existing OptFusion-format TFRecords (ImportExampleGen): ids used as they are."""
import json

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_transform as tft

import local_runner
from data_gen import optfusion_tfrecords, synthetic_criteo
from pipeline import lineage
from serving import batch_score
from trainer import data, metrics

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def tfrecord_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("tfrecord")
    log = synthetic_criteo.generate(str(root / "log.tsv"), rows=3000, seed=5)
    sizes = optfusion_tfrecords.write(log, str(root / "records"))
    local_runner.run(["--dataset", "tfrecord", "--data", str(root / "records"), "--output-dir", str(root / "out"),
                      "--preset", "test", "--epochs", "3"])
    return root, sizes


def _records(path):
    return [r.numpy() for r in tf.data.TFRecordDataset([path])]


def test_splits_follow_the_files_and_the_table_size_covers_every_id(tfrecord_run):
    root, sizes = tfrecord_run
    store = lineage.open_store(str(root / "out" / "metadata.sqlite"))
    examples = lineage.latest_output(store, "ImportExampleGen", "examples")
    assert json.loads(examples.properties["split_names"].string_value) == ["train", "eval", "test"]
    largest = max(max(tf.train.Example.FromString(r).features.feature["feature"].int64_list.value)
                  for name in ("train", "validation", "test")
                  for r in _records(str(root / "records" / f"{name}_0000.tfrecord")))
    graph = lineage.latest_output(store, "Transform", "transform_graph")
    # The ids are used as they are: the largest id of any split + 1, and one row for out-of-range ids.
    assert data.id_space(tft.TFTransformOutput(graph.uri)) == (39, largest + 2)


def test_pushed_model_scores_the_test_records(tfrecord_run):
    root, sizes = tfrecord_run
    records = _records(str(root / "records" / "test_0000.tfrecord"))
    labels = np.array([tf.train.Example.FromString(r).features.feature["label"].float_list.value[0] for r in records])
    probabilities = batch_score.score(str(root / "out" / "serving_model"), records)
    assert probabilities.shape == (sizes["test"],)
    auc = metrics.auc(labels, probabilities)
    assert auc > 0.6


def test_labels_of_minus_1_and_1_stop_the_run_before_training(tfrecord_run):
    """../shared/cases/10: libFM's -1/1 labels trained to a negative logloss, then failed deep inside TFMA. The folder
    also has no test_* file, which is not an error (local_runner.tfrecord_splits): the run gets as far as the gate."""
    root, _ = tfrecord_run
    (root / "records_pm1").mkdir()
    for name in ("train", "validation"):
        with tf.io.TFRecordWriter(str(root / "records_pm1" / f"{name}_0000.tfrecord")) as writer:
            for record in _records(str(root / "records" / f"{name}_0000.tfrecord"))[:300]:
                example = tf.train.Example.FromString(record)
                label = example.features.feature["label"].float_list.value
                label[0] = 1.0 if label[0] == 1.0 else -1.0
                writer.write(example.SerializeToString())
    out = root / "out_pm1"
    with pytest.raises(Exception, match=r"split 'train', field 'label': values from -1 to 1, outside \[0, 1\]"):
        local_runner.run(["--dataset", "tfrecord", "--data", str(root / "records_pm1"), "--output-dir", str(out),
                          "--preset", "test", "--epochs", "1"])
    store = lineage.open_store(str(out / "metadata.sqlite"))
    states = lineage.execution_states_by_node(store)
    assert states["AnomalyGate"] == ["FAILED"] and "Trainer" not in states and "Transform" not in states
    examples = lineage.latest_output(store, "ImportExampleGen", "examples")
    assert json.loads(examples.properties["split_names"].string_value) == ["train", "eval"]


def test_a_new_column_against_the_first_runs_schema_stops_the_run(tfrecord_run, tmp_path):
    """The first run's schema is the expected one (components/data_history.py): a batch whose examples gained a
    feature is stopped before training, naming it; re-inferring the schema each run would have accepted it."""
    import shutil
    root, _ = tfrecord_run
    out = tmp_path / "out"
    out.mkdir()
    shutil.copy(root / "out" / "metadata.sqlite", out / "metadata.sqlite")
    (tmp_path / "records").mkdir()
    for name in ("train", "validation", "test"):
        with tf.io.TFRecordWriter(str(tmp_path / "records" / f"{name}_0000.tfrecord")) as writer:
            for record in _records(str(root / "records" / f"{name}_0000.tfrecord"))[:400]:
                example = tf.train.Example.FromString(record)
                example.features.feature["campaign"].bytes_list.value.append(b"new-field")
                writer.write(example.SerializeToString())
    with pytest.raises(Exception, match=r"split 'train', field 'campaign': New column"):
        local_runner.run(["--dataset", "tfrecord", "--data", str(tmp_path / "records"), "--output-dir", str(out),
                          "--preset", "test", "--epochs", "1"])
    states = lineage.execution_states_by_node(lineage.open_store(str(out / "metadata.sqlite")))
    assert states["AnomalyGate"][-1] == "FAILED" and len(states["Trainer"]) == 1  # the first run's only
