"""PyTorch-style initialisers and the coupled L2 regulariser."""
from __future__ import annotations

import math

import numpy as np
import pytest
import tensorflow as tf

from trainer.layers import torch_init


def test_torch_init_bounds():
    kernel = torch_init.kernel_initializer()((400, 3)).numpy()
    bias = torch_init.bias_initializer(400)((3000,)).numpy()
    for values in (kernel, bias):  # U(±1/sqrt(400)) = U(±0.05); with ≥1200 draws the extremes come close to it
        assert np.abs(values).max() <= 0.05
        assert np.abs(values).max() > 0.045
    xavier = torch_init.xavier_normal()((200, 300)).numpy()
    assert xavier.std() == pytest.approx(math.sqrt(2 / 500), rel=0.05)
    assert np.abs(xavier).max() > 2 * math.sqrt(2 / 500)  # not truncated at 2 std like Keras' GlorotNormal
    assert torch_init.l2_regularizer(0.0) is None
    assert float(torch_init.l2_regularizer(0.5)(tf.constant([2.0]))) == pytest.approx(0.25 * 4.0)  # λ/2·w²
