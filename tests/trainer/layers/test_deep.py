"""DeepLayer (OptFusion's deep node) on a 2-dimensional input by hand."""
from __future__ import annotations

import numpy as np

from tests.trainer.layers.helpers import X1
from trainer.layers.deep import DeepLayer


def test_deep_layer_hand_computed():
    layer = DeepLayer()
    layer(X1)
    assert [w.shape.as_list() for w in layer.weights] == [[2, 2], [2]]
    layer.set_weights([np.array([[1, -1], [2, 0.5]], np.float32), np.array([0.5, -1], np.float32)])
    # x W = [1·1 + 2·2, 1·(-1) + 2·0.5] = [5, 0]; + b = [5.5, -1]; ReLU -> [5.5, 0]
    np.testing.assert_allclose(layer(X1).numpy(), [[5.5, 0.0]], rtol=1e-6)
