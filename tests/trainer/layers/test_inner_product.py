"""InnerProduct (IPNN): pairwise inner products by hand."""
from __future__ import annotations

import pytest
import tensorflow as tf

from trainer.layers.inner_product import InnerProduct


def test_inner_product_of_three_fields():
    # v0 = (1, 2), v1 = (3, 4), v2 = (0, -1): <v0,v1> = 11, <v0,v2> = -2, <v1,v2> = -4.
    v = tf.constant([[[1.0, 2.0], [3.0, 4.0], [0.0, -1.0]]])
    assert InnerProduct()(v).numpy().tolist() == [[11.0, -2.0, -4.0]]
    with pytest.raises(ValueError, match="fields >= 2"):
        InnerProduct()(tf.ones([1, 1, 2]))
