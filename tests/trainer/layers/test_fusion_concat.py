"""ConcatFusion: hand-computed values, weights of a subset of inputs."""
from __future__ import annotations

import numpy as np

from tests.trainer.layers.helpers import CONCAT_BIAS, CONCAT_KERNEL, X1, X2
from trainer.layers.fusion_concat import ConcatFusion


def test_concat_fusion_hand_computed():
    layer = ConcatFusion()
    layer([X1, X2])
    assert [w.shape.as_list() for w in layer.weights] == [[4, 2], [2]]  # Linear(n·D → D)
    layer.set_weights([CONCAT_KERNEL, CONCAT_BIAS])
    # [x1; x2] = [1, 2, 3, -1]
    # y0 = 1·1 + 2·0 + 3·1 + (-1)·2 + 0.5 = 2.5;  y1 = 1·0 + 2·1 + 3·1 + (-1)·(-1) - 0.5 = 5.5
    np.testing.assert_allclose(layer([X1, X2]).numpy(), [[2.5, 5.5]], rtol=1e-6)
    # Keeping the kernel rows of input 1 only: y = x2 W[2:4] + b = [3 - 2 + 0.5, 3 + 1 - 0.5]
    sub = ConcatFusion()
    sub([X2])
    sub.set_weights(layer.weights_for_inputs([1]))
    np.testing.assert_allclose(sub([X2]).numpy(), [[1.5, 3.5]], rtol=1e-6)
