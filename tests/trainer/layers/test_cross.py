"""CrossLayer (OptFusion's cross node) on a 2-dimensional input by hand."""
from __future__ import annotations

import numpy as np

from tests.trainer.layers.helpers import X1, X2
from trainer.layers.cross import CrossLayer


def test_cross_layer_hand_computed():
    layer = CrossLayer()
    layer(X1, X2)
    assert [w.shape.as_list() for w in layer.weights] == [[2, 1], [2]]
    np.testing.assert_array_equal(layer.bias.numpy(), [0.0, 0.0])  # cross bias starts at zero
    layer.set_weights([np.array([[0.5], [2.0]], np.float32), np.array([0.1, 0.2], np.float32)])
    # x0 = [1, 2], x_in = [3, -1], w = [0.5, 2]: w·x_in = 1.5 - 2 = -0.5
    # y = -0.5·x0 + b + x_in = [-0.5, -1] + [0.1, 0.2] + [3, -1] = [2.6, -1.8]
    np.testing.assert_allclose(layer(X1, X2).numpy(), [[2.6, -1.8]], rtol=1e-6)
