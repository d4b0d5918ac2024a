"""FactorizationMachine against hand-computed values."""
from __future__ import annotations

import tensorflow as tf

from trainer.layers.factorization_machine import FactorizationMachine


def test_factorization_machine_is_the_sum_of_pairwise_dot_products():
    # Three fields: v1 = (1, 2), v2 = (3, 4), v3 = (0, -1).
    # <v1,v2> = 3 + 8 = 11; <v1,v3> = -2; <v2,v3> = -4; total 5.
    v = tf.constant([[[1.0, 2.0], [3.0, 4.0], [0.0, -1.0]]])
    assert FactorizationMachine()(v).numpy().tolist() == [[5.0]]
