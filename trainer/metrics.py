"""Offline metrics of a split's predictions, as the reference computes them: sklearn's ROC AUC, log-loss.

Every offline figure of the project (OptFusion's validation, ResFusion's stage selection, benchmarks,
serving.batch_score) comes from here; `Model.fit`'s per-epoch `auc` / `logloss` are trainer.contract's Keras metrics.
"""
from __future__ import annotations

import numpy as np


def logloss(labels: np.ndarray, logits: np.ndarray) -> float:
    """Mean binary cross-entropy of sigmoid(logits), computed stably from the logits."""
    logits = np.asarray(logits, np.float64)
    labels = np.asarray(labels, np.float64)
    return float(np.mean(np.logaddexp(0.0, logits) - labels * logits))


def logloss_of_probabilities(labels: np.ndarray, probabilities: np.ndarray) -> float:
    """Mean binary cross-entropy of probabilities [n] (a served model's float32 output), clipped to [ε, 1 - ε] with
    ε float32's machine epsilon, as sklearn's log_loss clips a float32 array: a saturated 0 or 1 costs a finite loss."""
    eps = float(np.finfo(np.float32).eps)
    p = np.clip(np.asarray(probabilities, np.float64), eps, 1 - eps)
    labels = np.asarray(labels, np.float64)
    return float(-np.mean(labels * np.log(p) + (1 - labels) * np.log1p(-p)))


def auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """ROC AUC of any monotone score (logits or probabilities); nan when the labels hold one class."""
    from sklearn.metrics import roc_auc_score
    if len(np.unique(labels)) < 2:
        return float("nan")
    return float(roc_auc_score(labels, scores))
