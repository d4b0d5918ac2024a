"""FullRankCross (DCNv2): hand-computed values, PyTorch's init."""
from __future__ import annotations

import numpy as np
import tensorflow as tf

from trainer.layers.full_rank_cross import FullRankCross


def test_full_rank_cross_by_hand():
    # x0 = (1, 2), x = (3, -1), W = [[1, 2], [0, 1]] (Dense kernel: W x = x @ kernel), b = (0.5, 0):
    # x @ kernel = (3, 5); + b = (3.5, 5); x0 ⊙ that = (3.5, 10); + x = (6.5, 9).
    cross = FullRankCross(l2=0.1)
    cross(tf.ones([1, 2]))  # TFRS builds its Dense on the first call
    cross.set_weights([np.array([[1.0, 2.0], [0.0, 1.0]], np.float32), np.array([0.5, 0.0], np.float32)])
    assert cross(tf.constant([[1.0, 2.0]]), tf.constant([[3.0, -1.0]])).numpy().tolist() == [[6.5, 9.0]]
    assert len(cross.losses) == 2  # coupled L2 on W and b
    clone = FullRankCross.from_config(cross.get_config())
    assert clone.l2 == 0.1 and clone.name == cross.name


def test_full_rank_cross_init_is_pytorch_linear():
    cross = FullRankCross()
    cross(tf.ones([2, 100]))
    kernel, bias = (w.numpy() for w in cross.weights)
    assert kernel.shape == (100, 100) and bias.shape == (100,)
    for values in (kernel, bias):  # U(±1/sqrt(100))
        assert np.abs(values).max() <= 0.1 and np.abs(values).max() > 0.09
