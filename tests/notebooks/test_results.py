"""The results notebook's figures (notebooks/results.py) on hand-computed inputs."""
import numpy as np
import pytest

from notebooks import results


def test_roc_points_step_through_each_distinct_score_with_ties_together():
    # Scores 0.9 (pos), 0.8 (neg), 0.8 (pos), 0.3 (neg): 2 positives, 2 negatives.
    fpr, tpr, auc = results.roc_points(np.array([1, 0, 1, 0]), np.array([0.9, 0.8, 0.8, 0.3]))
    assert fpr.tolist() == [0.0, 0.0, 0.5, 1.0] and tpr.tolist() == [0.0, 0.5, 1.0, 1.0]
    # Pairs (pos, neg): (0.9, 0.8) 1, (0.9, 0.3) 1, (0.8, 0.8) tie 0.5, (0.8, 0.3) 1 -> 3.5 / 4.
    assert auc == pytest.approx(0.875)
    with pytest.raises(ValueError, match="both classes"):
        results.roc_points(np.array([1, 1]), np.array([0.2, 0.4]))


def test_calibration_bins_average_prediction_and_outcome_per_bin():
    labels = np.array([0, 1, 0, 0, 1, 1])
    probabilities = np.array([0.05, 0.15, 0.12, 0.55, 0.95, 1.0])
    assert results.calibration_bins(labels, probabilities, bins=2) == [
        (pytest.approx((0.05 + 0.15 + 0.12) / 3), pytest.approx(1 / 3), 3),
        (pytest.approx((0.55 + 0.95 + 1.0) / 3), pytest.approx(2 / 3), 3)]
    assert [count for _, _, count in results.calibration_bins(labels, probabilities, bins=10)] == [1, 2, 1, 2]


def test_validation_curves_read_keras_and_optfusion_records_alike():
    keras_record = {"epochs_run": 2, "history": {"loss": [0.6, 0.5], "val_auc": [0.70, 0.72],
                                                 "val_logloss": [0.50, 0.48]}}
    assert results.validation_curves(keras_record) == results.Curves([1, 2], [0.70, 0.72], [0.50, 0.48])
    optfusion_record = {"history": [{"epoch": 0, "val_auc": 0.71, "val_logloss": 0.49, "examples": 0},
                                    {"epoch": 1, "val_auc": 0.73, "val_logloss": 0.47, "examples": 10}]}
    assert results.validation_curves(optfusion_record) == results.Curves([0, 1], [0.71, 0.73], [0.49, 0.47])
    assert results.validation_curves({"stages": []}) is None


def test_operation_weights_are_a_softmax_per_node():
    weights = results.op_weights([[0.0, 0.0, 0.0, 0.0], [np.log(3.0), 0.0, 0.0, 0.0]])
    np.testing.assert_allclose(weights, [[0.25] * 4, [0.5, 1 / 6, 1 / 6, 1 / 6]])


def test_the_architecture_drawing_puts_cross_left_deep_right_by_depth():
    layout = results.architecture_layout(num_blocks=1)  # emb, cross_0, cross_1, deep_1, output
    assert layout == {0: (0.5, 0.0), 1: (0.0, 1.0), 2: (0.0, 2.0), 3: (1.0, 2.0), 4: (0.5, 3.0)}


def test_the_served_model_is_this_runs_push_or_the_newest_version(tmp_path):
    summary = results.run_summary.RunSummary(
        pipeline_name="p", model="deepfm", rows={}, rejected_rows_file=None, eval_metrics={}, champion_metrics={},
        blessed=False, not_blessed_because=["auc"], pushed_to=None, next_commands=[])
    with pytest.raises(FileNotFoundError, match="no run has pushed one"):
        results.served_model_dir(str(tmp_path), summary)
    for version in ("9", "10", ".10.tmp"):
        (tmp_path / "serving_model" / version).mkdir(parents=True)
    assert results.served_model_dir(str(tmp_path), summary) == str(tmp_path / "serving_model" / "10")
