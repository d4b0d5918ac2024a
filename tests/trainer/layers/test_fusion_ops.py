"""The parameter-free fusion operations by hand."""
from __future__ import annotations

import numpy as np

from tests.trainer.layers.helpers import X1, X2, X3
from trainer.layers.fusion_ops import OPERATIONS, fuse_product, fuse_sum


def test_parameter_free_operations():
    assert OPERATIONS == ("sum", "product", "concat", "attention")
    np.testing.assert_allclose(fuse_sum([X1, X2, X3]).numpy(), [[2.0, 1.5]])  # [1+3-2, 2-1+0.5]
    np.testing.assert_allclose(fuse_product([X1, X2, X3]).numpy(), [[-6.0, -1.0]])  # [1·3·(-2), 2·(-1)·0.5]
    np.testing.assert_allclose(fuse_product([X1]).numpy(), X1)
