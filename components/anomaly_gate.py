"""AnomalyGate: stops the pipeline before training when ExampleValidator found anomalies that matter.

The stock ExampleValidator only records anomalies. Anomalies in the label or in a dataset's required
fields make a model meaningless, so they fail the run here with a message naming split and field;
anomalies in other fields are logged as warnings and let the run go on.
"""

# No `from __future__ import annotations`: the @component decorator reads real annotation objects.
import json
import logging
import os

import tensorflow as tf
from tensorflow_metadata.proto.v0 import anomalies_pb2
from tfx import v1 as tfx
from tfx.types import artifact_utils, standard_artifacts

ANOMALIES_FILE = "SchemaDiff.pb"


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
            details_uri: str) -> None:
    """Logs non-blocking anomalies; raises DataAnomalyError listing the blocking ones."""
    blocking, other = describe_anomalies(anomalies_by_split, blocking_fields)
    for message in other:
        logging.warning("AnomalyGate: data anomaly (not blocking): %s", message)
    if blocking:
        raise DataAnomalyError(
            "training is blocked by data anomalies in the label or required fields:\n  "
            + "\n  ".join(blocking)
            + f"\nDetails: {details_uri}. Fix the data, or pin a curated schema with --schema if the schema is wrong.")


@tfx.dsl.components.component
def AnomalyGate(anomalies: tfx.dsl.components.InputArtifact[standard_artifacts.ExampleAnomalies],
                blocking_fields: tfx.dsl.components.Parameter[str]) -> None:
    """blocking_fields: JSON list of field names (the label and the dataset's required fields)."""
    enforce(read_anomalies(anomalies), set(json.loads(blocking_fields)), anomalies.uri)
