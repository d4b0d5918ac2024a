"""AnomalyGate: stops the pipeline before training when ExampleValidator found anomalies that matter.

The stock ExampleValidator only records anomalies. Anomalies in the label or in a dataset's required
fields make a model meaningless, so they fail the run here with a message naming split and field;
anomalies in other fields are logged as warnings and let the run go on.

The label is also held to [0, 1] from StatisticsGen's statistics, whatever the schema says: an inferred schema
(OptFusion TFRecords have no curated one) accepts any label, and libFM's -1/1 labels would train to a negative
logloss and fail deep inside TFMA (../shared/cases/10). The text layouts' parsers already reject such rows.
"""

# No `from __future__ import annotations`: the @component decorator reads real annotation objects.
import json
import logging
import os

import tensorflow as tf
from tensorflow_metadata.proto.v0 import anomalies_pb2, statistics_pb2
from tfx import v1 as tfx
from tfx.types import artifact_utils, standard_artifacts

ANOMALIES_FILE = "SchemaDiff.pb"
STATISTICS_FILE = "FeatureStats.pb"
LABEL_RANGE = (0.0, 1.0)


class DataAnomalyError(RuntimeError):
    """The label or a required field is anomalous."""


def read_anomalies(artifact: standard_artifacts.ExampleAnomalies) -> dict[str, anomalies_pb2.Anomalies]:
    """{split name: Anomalies} from each split's SchemaDiff.pb in an ExampleAnomalies artifact.

    Raises:
        tf.errors.NotFoundError: a split has no SchemaDiff.pb.
    """
    result = {}
    for split in artifact_utils.decode_split_names(artifact.split_names):
        anomalies = anomalies_pb2.Anomalies()
        path = os.path.join(artifact_utils.get_split_uri([artifact], split), ANOMALIES_FILE)
        anomalies.ParseFromString(tf.io.gfile.GFile(path, "rb").read())
        result[split] = anomalies
    return result


def read_statistics(artifact: standard_artifacts.ExampleStatistics
                    ) -> dict[str, statistics_pb2.DatasetFeatureStatisticsList]:
    """{split name: statistics} from each split's FeatureStats.pb in an ExampleStatistics artifact."""
    result = {}
    for split in artifact_utils.decode_split_names(artifact.split_names):
        path = os.path.join(artifact_utils.get_split_uri([artifact], split), STATISTICS_FILE)
        result[split] = statistics_pb2.DatasetFeatureStatisticsList.FromString(tf.io.gfile.GFile(path, "rb").read())
    return result


def label_range_anomalies(statistics_by_split: dict[str, statistics_pb2.DatasetFeatureStatisticsList],
                          label: str) -> list[str]:
    """A description per split whose `label` values leave LABEL_RANGE, naming the split, the field and its values."""
    low, high = LABEL_RANGE
    found = []
    for split, statistics in sorted(statistics_by_split.items()):
        for dataset in statistics.datasets:
            for feature in dataset.features:
                if feature.path.step != [label] or not feature.HasField("num_stats"):
                    continue
                stats = feature.num_stats
                if stats.min < low or stats.max > high:
                    found.append(
                        f"split {split!r}, field {label!r}: values from {stats.min:g} to {stats.max:g}, outside "
                        f"[{low:g}, {high:g}]: a click label is 0 or 1 (libFM's -1/1 labels: write -1 as 0)")
    return found


def describe_anomalies(anomalies_by_split: dict[str, anomalies_pb2.Anomalies],
                       blocking_fields: set[str]) -> tuple[list[str], list[str]]:
    """(blocking, other) anomaly descriptions, each naming the split and the field."""
    blocking: list[str] = []
    other: list[str] = []
    for split, anomalies in sorted(anomalies_by_split.items()):
        for field, info in sorted(anomalies.anomaly_info.items()):
            message = f"split {split!r}, field {field!r}: {info.short_description} ({info.description})"
            (blocking if field in blocking_fields else other).append(message)
        if anomalies.HasField("dataset_anomaly_info"):
            info = anomalies.dataset_anomaly_info
            blocking.append(f"split {split!r}, whole dataset: {info.short_description} ({info.description})")
    return blocking, other


def enforce(anomalies_by_split: dict[str, anomalies_pb2.Anomalies], blocking_fields: set[str],
            details_uri: str, label_anomalies: tuple[str, ...] = ()) -> None:
    """Logs non-blocking anomalies; raises DataAnomalyError listing the blocking ones and `label_anomalies`."""
    blocking, other = describe_anomalies(anomalies_by_split, blocking_fields)
    blocking += label_anomalies
    for message in other:
        logging.warning("AnomalyGate: data anomaly (not blocking): %s", message)
    if blocking:
        raise DataAnomalyError(
            "training is blocked by data anomalies in the label or required fields:\n  "
            + "\n  ".join(blocking)
            + f"\nDetails: {details_uri}. Fix the data, or pin a curated schema with --schema if the schema is wrong.")


@tfx.dsl.components.component
def AnomalyGate(anomalies: tfx.dsl.components.InputArtifact[standard_artifacts.ExampleAnomalies],
                statistics: tfx.dsl.components.InputArtifact[standard_artifacts.ExampleStatistics],
                blocking_fields: tfx.dsl.components.Parameter[str],
                label: tfx.dsl.components.Parameter[str]) -> None:
    """blocking_fields: JSON list of field names (the label and the dataset's required fields); label: its name."""
    enforce(read_anomalies(anomalies), set(json.loads(blocking_fields)), anomalies.uri,
            tuple(label_range_anomalies(read_statistics(statistics), label)))
