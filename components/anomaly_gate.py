"""AnomalyGate: stops the pipeline before training when ExampleValidator found anomalies that matter.

The stock ExampleValidator and DistributionValidator only record anomalies. These fail the run here, with a message
naming split, field and anomaly:
- any anomaly in the label or in a dataset's required fields (they make a model meaningless);
- a change of the data's structure against the expected schema (the first run's, components/data_history.py): a new
  column, a changed type, a field that became multi-valued;
- a distribution shift found by the DriftValidator (its thresholds: pipeline/configs.py, DataChecksConfig).
Other anomalies (new values of a categorical field: Transform maps them to the OOV id) are logged as warnings.

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
from tfx.components.statistics_gen import stats_artifact_utils
from tfx.types import artifact_utils, standard_artifacts

ANOMALIES_FILE = "SchemaDiff.pb"
_TYPE = anomalies_pb2.AnomalyInfo.Type
# ExampleValidator anomalies that change what a field is, in any field: the data is not the data the model reads.
STRUCTURAL_ANOMALIES = frozenset({
    _TYPE.SCHEMA_NEW_COLUMN, _TYPE.UNEXPECTED_DATA_TYPE, _TYPE.FEATURE_TYPE_UNEXPECTED_REPEATED,
    _TYPE.FEATURE_TYPE_HIGH_NUMBER_VALUES, _TYPE.INT_TYPE_INT_EXPECTED, _TYPE.INT_TYPE_STRING_EXPECTED,
    _TYPE.INT_TYPE_NOT_INT_STRING, _TYPE.INT_TYPE_NOT_STRING, _TYPE.FLOAT_TYPE_NOT_FLOAT,
    _TYPE.FLOAT_TYPE_STRING_NOT_FLOAT, _TYPE.FLOAT_TYPE_NON_STRING, _TYPE.STRING_TYPE_NOW_FLOAT,
    _TYPE.STRING_TYPE_NOW_INT, _TYPE.ENUM_TYPE_BYTES_NOT_STRING, _TYPE.ENUM_TYPE_FLOAT_NOT_STRING,
    _TYPE.ENUM_TYPE_INT_NOT_STRING,
})
LABEL_RANGE = (0.0, 1.0)


class DataAnomalyError(RuntimeError):
    """The label or a required field is anomalous."""


def read_anomalies(artifact: standard_artifacts.ExampleAnomalies, folder_prefix: str = "Split-"
                   ) -> dict[str, anomalies_pb2.Anomalies]:
    """{split name: Anomalies} from each split's SchemaDiff.pb in an ExampleAnomalies artifact: in `Split-<name>/`
    (ExampleValidator), or `SplitPair-<name>/` (DistributionValidator: names such as "train_train").

    Raises:
        tf.errors.NotFoundError: a split has no SchemaDiff.pb.
    """
    result = {}
    for split in artifact_utils.decode_split_names(artifact.split_names):
        anomalies = anomalies_pb2.Anomalies()
        path = os.path.join(artifact.uri, f"{folder_prefix}{split}", ANOMALIES_FILE)
        anomalies.ParseFromString(tf.io.gfile.GFile(path, "rb").read())
        result[split] = anomalies
    return result


def read_statistics(artifact: standard_artifacts.ExampleStatistics
                    ) -> dict[str, statistics_pb2.DatasetFeatureStatisticsList]:
    """{split name: statistics} of an ExampleStatistics artifact (TFX's loader, whatever the artifact's format)."""
    return {split: stats_artifact_utils.load_statistics(artifact, split).proto()
            for split in artifact_utils.decode_split_names(artifact.split_names)}


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


def _describe(info: anomalies_pb2.AnomalyInfo) -> str:
    """"short description (description)" of an anomaly; from its reasons when it has none of its own (the
    DistributionValidator's comparison anomalies carry only reasons)."""
    if info.short_description or not info.reason:
        return f"{info.short_description} ({info.description})"
    return "; ".join(f"{reason.short_description} ({reason.description})" for reason in info.reason)


def describe_anomalies(anomalies_by_split: dict[str, anomalies_pb2.Anomalies], blocking_fields: set[str],
                       all_blocking: bool = False) -> tuple[list[str], list[str]]:
    """(blocking, other) anomaly descriptions, each naming the split and the field. Blocking: those in
    `blocking_fields`, the STRUCTURAL_ANOMALIES of any field, and every one when `all_blocking` (drift)."""
    blocking: list[str] = []
    other: list[str] = []
    for split, anomalies in sorted(anomalies_by_split.items()):
        for field, info in sorted(anomalies.anomaly_info.items()):
            message = f"split {split!r}, field {field!r}: {_describe(info)}"
            structural = any(reason.type in STRUCTURAL_ANOMALIES for reason in info.reason)
            (blocking if all_blocking or structural or field in blocking_fields else other).append(message)
        if anomalies.HasField("dataset_anomaly_info"):
            info = anomalies.dataset_anomaly_info
            blocking.append(f"split {split!r}, whole dataset: {info.short_description} ({info.description})")
    return blocking, other


def enforce(anomalies_by_split: dict[str, anomalies_pb2.Anomalies], blocking_fields: set[str],
            details_uri: str, label_anomalies: tuple[str, ...] = (),
            drift_by_split: dict[str, anomalies_pb2.Anomalies] | None = None) -> None:
    """Logs non-blocking anomalies; raises DataAnomalyError listing the blocking ones, `label_anomalies` and every
    drift anomaly."""
    blocking, other = describe_anomalies(anomalies_by_split, blocking_fields)
    blocking += label_anomalies
    blocking += describe_anomalies(drift_by_split or {}, set(), all_blocking=True)[0]
    for message in other:
        logging.warning("AnomalyGate: data anomaly (not blocking): %s", message)
    if blocking:
        raise DataAnomalyError(
            "training is blocked by data anomalies:\n  "
            + "\n  ".join(blocking)
            + f"\nDetails: {details_uri}. Fix the data. If the data is right and changed for good, pin a schema "
            "that describes it with --schema (a drift: accept it with a larger --max-drift for one run).")


@tfx.dsl.components.component
def AnomalyGate(anomalies: tfx.dsl.components.InputArtifact[standard_artifacts.ExampleAnomalies],
                statistics: tfx.dsl.components.InputArtifact[standard_artifacts.ExampleStatistics],
                blocking_fields: tfx.dsl.components.Parameter[str],
                label: tfx.dsl.components.Parameter[str],
                drift_anomalies: tfx.dsl.components.InputArtifact[standard_artifacts.ExampleAnomalies] = None
                ) -> None:
    """anomalies: ExampleValidator's; drift_anomalies: the DriftValidator's (absent: no drift check); blocking_fields:
    JSON list of field names (the label and the dataset's required fields); label: its name."""
    details = anomalies.uri + (f" and {drift_anomalies.uri}" if drift_anomalies is not None else "")
    enforce(read_anomalies(anomalies), set(json.loads(blocking_fields)), details,
            tuple(label_range_anomalies(read_statistics(statistics), label)),
            read_anomalies(drift_anomalies, "SplitPair-") if drift_anomalies is not None else None)
