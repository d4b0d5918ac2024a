"""FirstOrder against hand-computed values."""
from __future__ import annotations

import numpy as np
import tensorflow as tf

from trainer.layers.first_order import FirstOrder


def test_first_order_sums_one_weight_per_id_plus_bias():
    layer = FirstOrder(table_size=3)
    layer.build((None, 2))
    layer.set_weights([np.array([[0.5], [-1.0], [2.0]], np.float32), np.array([0.25], np.float32)])
    # ids (0, 2): 0.5 + 2.0 + 0.25 = 2.75; ids (1, 1): -1 - 1 + 0.25 = -1.75.
    assert layer(tf.constant([[0, 2], [1, 1]], tf.int64)).numpy().tolist() == [[2.75], [-1.75]]
