"""AttentionFusion: hand-computed values and initial weights."""
from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

from tests.trainer.layers.helpers import X1, X2
from trainer.layers.fusion_attention import AttentionFusion


def test_attention_fusion_hand_computed():
    layer = AttentionFusion()
    layer([X1, X2])
    assert [w.shape.as_list() for w in layer.weights] == [[2, 2, 2], [2, 2], [2, 2, 2]]
    hidden_kernel = np.stack([np.eye(2), [[1, 2], [0, 1]]]).astype(np.float32)
    hidden_bias = np.array([[0, 0], [-5, -1]], np.float32)
    score_kernel = np.stack([np.eye(2), [[1, 0], [0, -1]]]).astype(np.float32)
    layer.set_weights([hidden_kernel, hidden_bias, score_kernel])
    # input 0, x1 = [1, 2]: h = ReLU(x1 I) = [1, 2]; s = h I = [1, 2]; a = softmax([1, 2]) = [1, e]/(1 + e)
    #   a ⊙ x1 = [1/(1+e), 2e/(1+e)]
    # input 1, x2 = [3, -1]: x2 W1 = [3, 6 - 1] = [3, 5]; + b1 = [-2, 4]; ReLU -> [0, 4];
    #   s = [0·1 + 4·0, 0·0 + 4·(-1)] = [0, -4]; a = [1, e⁻⁴]/(1 + e⁻⁴); a ⊙ x2 = [3, -e⁻⁴]/(1 + e⁻⁴)
    e = math.e
    expected = [1 / (1 + e) + 3 / (1 + e ** -4), 2 * e / (1 + e) - e ** -4 / (1 + e ** -4)]
    np.testing.assert_allclose(layer([X1, X2]).numpy(), [expected], rtol=1e-6)
    # The scorer of input 1 alone reproduces its term.
    sub = AttentionFusion()
    sub([X2])
    sub.set_weights(layer.weights_for_inputs([1]))
    np.testing.assert_allclose(sub([X2]).numpy(), [[3 / (1 + e ** -4), -e ** -4 / (1 + e ** -4)]], rtol=1e-6)


def test_fusion_layers_have_independent_initial_weights():
    layer = AttentionFusion()
    layer([tf.ones([1, 8]), tf.ones([1, 8])])
    hidden_kernel, _, score_kernel = layer.get_weights()
    assert not np.allclose(hidden_kernel, score_kernel)
    assert np.abs(hidden_kernel).max() <= 1 / math.sqrt(8)  # U(±1/sqrt(D)), not U(±1/sqrt(n·D))
    assert np.abs(hidden_kernel).max() > 1 / math.sqrt(16)
