"""Inputs and weights shared by the layer tests: three 2-dimensional inputs, the concat weights, α and zero
attention scorers."""
from __future__ import annotations

import numpy as np

X1 = np.array([[1.0, 2.0]], np.float32)
X2 = np.array([[3.0, -1.0]], np.float32)
X3 = np.array([[-2.0, 0.5]], np.float32)


# Concat weights used throughout: kernel (2·D, D) = (4, 2), bias (2,).
CONCAT_KERNEL = np.array([[1, 0], [0, 1], [1, 1], [2, -1]], np.float32)
CONCAT_BIAS = np.array([0.5, -0.5], np.float32)
# α = log([1, 2, 3, 4]) gives softmax(α) = [0.1, 0.2, 0.3, 0.4] for (sum, product, concat, attention).
ALPHA = np.log(np.array([[1, 2, 3, 4]], np.float32))


def _zero_scorers(n: int) -> list[np.ndarray]:
    """Attention weights with W1 = 0, b1 = 0: every score is 0, so every a_j is uniform (1/D each)."""
    return [np.zeros((n, 2, 2), np.float32), np.zeros((n, 2), np.float32), np.zeros((n, 2, 2), np.float32)]
