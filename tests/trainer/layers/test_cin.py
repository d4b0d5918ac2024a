"""CompressedInteraction (xDeepFM's CIN): hand-computed values, weights, config."""
from __future__ import annotations

import math

import numpy as np
import pytest
import tensorflow as tf

from trainer.layers.cin import CompressedInteraction


def test_cin_one_layer_by_hand():
    # x0 rows v0 = (1, 2), v1 = (3, -1); one map with W[i·F + j] = (1, 0, 0, 2), b = 0.5:
    # 1·(v0⊙v0) + 2·(v1⊙v1) + 0.5 = (1, 4) + (18, 2) + 0.5 = (19.5, 6.5); pooled over dim: 26.
    cin = CompressedInteraction((1,), activation="linear")
    cin.build((None, 2, 2))
    cin.set_weights([np.array([[1.0], [0.0], [0.0], [2.0]], np.float32), np.array([0.5], np.float32)])
    x0 = tf.constant([[[1.0, 2.0], [3.0, -1.0]]])
    assert cin(x0).numpy().tolist() == [[26.0]]
    # Row i·F + j holds x^{k-1}_i ⊙ x0_j: W = (0, 1, 0, 0) picks v0⊙v1 = (3, -2); + 0.5 = (3.5, -1.5), sum 2.
    cin.set_weights([np.array([[0.0], [1.0], [0.0], [0.0]], np.float32), np.array([0.5], np.float32)])
    assert cin(x0).numpy().tolist() == [[2.0]]


def test_cin_two_layers_feed_forward_and_relu_clips():
    # Layer 1 (relu): map a = relu(v0⊙v0 - v1⊙v1) = relu((1-9, 4-1)) = (0, 3); map b = v0⊙v1 = (3, -2) -> (3, 0).
    # Layer 2 (one map): a⊙v0 = (0, 6) with weight 1 -> relu((0, 6)) = (0, 6). Pooled: (3, 3 | 6).
    cin = CompressedInteraction((2, 1))
    cin.build((None, 2, 2))
    w1 = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0], [-1.0, 0.0]], np.float32)  # rows (0,0) (0,1) (1,0) (1,1)
    w2 = np.array([[1.0], [0.0], [0.0], [0.0]], np.float32)  # rows (a,v0) (a,v1) (b,v0) (b,v1)
    cin.set_weights([w1, np.zeros(2, np.float32), w2, np.zeros(1, np.float32)])
    assert cin(tf.constant([[[1.0, 2.0], [3.0, -1.0]]])).numpy().tolist() == [[3.0, 3.0, 6.0]]


def test_cin_weights_init_and_config():
    cin = CompressedInteraction((5, 5, 5), l2=0.1)
    out = cin(tf.ones([2, 5, 3]))
    assert out.shape == (2, 15)
    assert [w.shape.as_list() for w in cin.weights] == [[25, 5], [5], [25, 5], [5], [25, 5], [5]]
    assert np.abs(cin.weights[0].numpy()).max() <= 1 / math.sqrt(25)  # PyTorch Conv1d bound 1/sqrt(fan_in)
    assert len(cin.losses) == 6
    clone = CompressedInteraction.from_config(cin.get_config())
    assert clone.layer_sizes == (5, 5, 5) and clone.activation == "relu" and clone.l2 == 0.1
    with pytest.raises(ValueError, match="layer_sizes"):
        CompressedInteraction(())
