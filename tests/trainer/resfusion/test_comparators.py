"""The Table 2 comparators (trainer/resfusion/comparators.py): exports serve what was measured, the ensemble
weights, the feature-fusion buckets. The fitted comparators are conftest.py's, on OptFusion TFRecord rows."""
import numpy as np
import pytest
import tensorflow as tf

from tests import resfusion_data
from tests.trainer.resfusion.helpers import _serialized
from trainer import metrics
from trainer.resfusion import comparators, residual


@pytest.mark.parametrize("variant", comparators.COMPARATORS)
def test_comparator_exports_serve_what_was_measured_at_training(tfrecord_fitted, layouts, variant):
    """On OptFusion TFRecords: the exported comparator's eval AUC and logloss are the ones recorded while
    fitting it."""
    _, record, export_dir = tfrecord_fitted[variant]
    valid = layouts["tfrecord"][2]["eval"]
    served = tf.saved_model.load(export_dir).signatures["serving_default"](
        examples=tf.constant(_serialized(valid)))["probability"].numpy()[:, 0]
    assert metrics.auc(valid.labels, served) == pytest.approx(record["eval_auc"], abs=1e-4)
    logits = np.log(served) - np.log1p(-served)
    assert metrics.logloss(valid.labels, logits) == pytest.approx(record["eval_logloss"], abs=1e-4)
    assert record["eval_auc"] > 0.55


def test_ensemble_weights_are_fitted_on_out_of_fold_training_logits(tfrecord_fitted, layouts):
    """GBDT+DeepFM: (a, b, c) come from every training row's out-of-fold logits, never from the eval split."""
    record = tfrecord_fitted["gbdt+deepfm"][1]
    train = layouts["tfrecord"][2]["train"]
    assert record["ensemble_fitted_on"] == "train (out-of-fold logits)"
    assert record["ensemble_rows"] == len(train) and record["ensemble_folds"] == resfusion_data.FOLDS


def test_ensemble_weights_are_a_logistic_regression_of_the_two_logits():
    """With the labels drawn from sigmoid(2 * g - 1 * d + 0.5) itself, the fit recovers (2, -1), 0.5."""
    g, d = np.meshgrid(np.linspace(-2, 2, 41), np.linspace(-2, 2, 41))
    g, d = np.repeat(g.ravel(), 200), np.repeat(d.ravel(), 200)
    p = residual.sigmoid(2 * g - d + 0.5)
    # Exact proportions instead of random draws: of the 200 copies of a point, round(200 p) are clicks.
    labels = np.concatenate([np.arange(200) < round(200 * pi) for pi in p[::200]]).astype(np.float32)
    weights, bias = comparators.ensemble_weights(g, d, labels)
    np.testing.assert_allclose(weights, [2.0, -1.0], atol=0.02)
    assert bias == pytest.approx(0.5, abs=0.02)


def test_feature_fusion_buckets_agree_with_the_serving_layer():
    logits = np.array([-3.0, -1.0, -0.5, 0.0, 0.25, 2.0], np.float32)
    boundaries = comparators.quantile_boundaries(np.linspace(-2, 2, 101), buckets=4)
    layer = tf.keras.layers.Discretization(bin_boundaries=boundaries, output_mode="int")
    np.testing.assert_array_equal(layer(logits).numpy(), comparators.bucketize(logits, boundaries))
    np.testing.assert_array_equal(comparators.bucketize(np.float32(boundaries), boundaries), [1, 2, 3])
