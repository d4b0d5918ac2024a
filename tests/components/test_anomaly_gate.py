"""AnomalyGate: anomalies in the label or required fields block training, others are only reported."""
import pytest
from tensorflow_metadata.proto.v0 import anomalies_pb2

from components import anomaly_gate


def _anomalies(**fields):
    proto = anomalies_pb2.Anomalies()
    for name, short in fields.items():
        proto.anomaly_info[name].short_description = short
        proto.anomaly_info[name].description = f"details of {name}"
    return proto


def test_label_and_required_fields_block_and_other_fields_do_not():
    blocking, other = anomaly_gate.describe_anomalies(
        {"train": _anomalies(C3="Unexpected string values"),
         "eval": _anomalies(label="Out-of-range values", hour="Column dropped")},
        blocking_fields={"label", "hour"})
    assert blocking == [
        "split 'eval', field 'hour': Column dropped (details of hour)",
        "split 'eval', field 'label': Out-of-range values (details of label)",
    ]
    assert other == ["split 'train', field 'C3': Unexpected string values (details of C3)"]


def test_no_anomalies_means_nothing_to_report():
    assert anomaly_gate.describe_anomalies({"train": _anomalies(), "eval": _anomalies()}, {"label"}) == ([], [])


def test_dataset_level_anomalies_block():
    proto = _anomalies()
    proto.dataset_anomaly_info.short_description = "Low num examples"
    proto.dataset_anomaly_info.description = "fewer than expected"
    blocking, _ = anomaly_gate.describe_anomalies({"eval": proto}, {"label"})
    assert blocking == ["split 'eval', whole dataset: Low num examples (fewer than expected)"]


def test_enforce_raises_naming_split_field_and_what_to_do(caplog):
    with pytest.raises(anomaly_gate.DataAnomalyError) as error:
        anomaly_gate.enforce({"eval": _anomalies(label="Out-of-range values", C3="New values")}, {"label"},
                             "/runs/ExampleValidator/anomalies/5")
    message = str(error.value)
    assert "split 'eval', field 'label': Out-of-range values" in message
    assert "C3" not in message
    assert "/runs/ExampleValidator/anomalies/5" in message and "--schema" in message
    assert "field 'C3': New values" in caplog.text


def test_enforce_lets_non_blocking_anomalies_pass():
    anomaly_gate.enforce({"train": _anomalies(C3="New values")}, {"label"}, "/runs/x")


def _label_statistics(low: float, high: float):
    from tensorflow_metadata.proto.v0 import statistics_pb2
    statistics = statistics_pb2.DatasetFeatureStatisticsList()
    feature = statistics.datasets.add().features.add()
    feature.path.step.append("label")
    feature.num_stats.min, feature.num_stats.max = low, high
    return statistics


def test_labels_outside_0_1_block_naming_split_field_and_values():
    """../shared/cases/10: OptFusion TFRecords with libFM's -1/1 labels."""
    found = anomaly_gate.label_range_anomalies(
        {"train": _label_statistics(-1.0, 1.0), "eval": _label_statistics(0.0, 1.0)}, "label")
    assert found == ["split 'train', field 'label': values from -1 to 1, outside [0, 1]: a click label is 0 or 1 "
                     "(libFM's -1/1 labels: write -1 as 0)"]
    assert anomaly_gate.label_range_anomalies({"train": _label_statistics(0.0, 1.0)}, "label") == []
    with pytest.raises(anomaly_gate.DataAnomalyError, match="field 'label': values from -1 to 1"):
        anomaly_gate.enforce({"train": _anomalies()}, {"label"}, "/runs/x", tuple(found))


def test_drift_anomalies_block_and_are_described_by_their_reasons():
    """The DistributionValidator's anomalies carry their text only in `reason` (TFX 1.16)."""
    drift = anomalies_pb2.Anomalies()
    reason = drift.anomaly_info["C9"].reason.add()
    reason.type = anomalies_pb2.AnomalyInfo.COMPARATOR_L_INFTY_HIGH
    reason.short_description = "High Linfty distance between current and previous"
    reason.description = "The Linfty distance between current and previous is 1 (up to six significant digits)"
    with pytest.raises(anomaly_gate.DataAnomalyError) as error:
        anomaly_gate.enforce({"train": _anomalies()}, {"label"}, "/runs/x", drift_by_split={"train_train": drift})
    assert ("split 'train_train', field 'C9': High Linfty distance between current and previous (The Linfty distance "
            "between current and previous is 1 (up to six significant digits))") in str(error.value)


def test_a_new_column_or_a_changed_type_blocks_in_any_field():
    proto = _anomalies(C3="New column")
    proto.anomaly_info["C3"].reason.add().type = anomalies_pb2.AnomalyInfo.SCHEMA_NEW_COLUMN
    proto.anomaly_info["C4"].short_description = "Unexpected string values"
    proto.anomaly_info["C4"].reason.add().type = anomalies_pb2.AnomalyInfo.ENUM_TYPE_UNEXPECTED_STRING_VALUES
    blocking, other = anomaly_gate.describe_anomalies({"train": proto}, {"label"})
    assert [m.split(":")[0] for m in blocking] == ["split 'train', field 'C3'"]
    assert [m.split(":")[0] for m in other] == ["split 'train', field 'C4'"]  # new categories: the OOV id
