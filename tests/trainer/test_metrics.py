"""trainer/metrics.py: hand-computed values and sklearn."""
import math

import numpy as np
import pytest

from trainer import metrics


def test_logloss_of_probabilities_matches_the_logits_version_and_sklearn_on_saturated_values():
    from sklearn.metrics import log_loss
    labels = np.array([1, 0, 1, 0], np.float32)
    logits = np.array([math.log(3.0), -math.log(3.0), 0.0, 0.0])
    probabilities = 1 / (1 + np.exp(-logits))
    assert metrics.logloss_of_probabilities(labels, probabilities) == pytest.approx(metrics.logloss(labels, logits))
    saturated = np.array([1.0, 0.0, 0.0, 1.0], np.float32)  # two right, two wrong at probability 0 / 1
    assert metrics.logloss_of_probabilities(labels, saturated) == pytest.approx(
        log_loss(labels, saturated, labels=[0, 1]), rel=1e-6)
    assert math.isfinite(metrics.logloss_of_probabilities(labels, saturated))
