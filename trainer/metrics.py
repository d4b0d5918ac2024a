"""Metrics of a trained model's logits, as the reference computes them: sklearn's ROC AUC, log-loss."""
from __future__ import annotations

import numpy as np


def logloss(labels: np.ndarray, logits: np.ndarray) -> float:
    """Mean binary cross-entropy of sigmoid(logits), computed stably from the logits."""
    logits = np.asarray(logits, np.float64)
    labels = np.asarray(labels, np.float64)
    return float(np.mean(np.logaddexp(0.0, logits) - labels * logits))


def auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """ROC AUC of any monotone score (logits or probabilities); nan when the labels hold one class."""
    from sklearn.metrics import roc_auc_score
    if len(np.unique(labels)) < 2:
        return float("nan")
    return float(roc_auc_score(labels, scores))
