"""ConnectionGate and the straight-through estimator: forward values and gradients."""
from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from tests.trainer.layers.helpers import X1
from trainer.layers.connection_gate import ConnectionGate, binarize_connections, straight_through_step


def test_straight_through_step_forward_and_gradient():
    beta = tf.Variable([-1.5, 0.0, 2.5, 1e9, -1e-9])
    upstream = tf.constant([1.0, 2.0, 3.0, 4.0, 5.0])
    with tf.GradientTape() as tape:
        gate = straight_through_step(beta)
        loss = tf.reduce_sum(gate * upstream)
    np.testing.assert_array_equal(gate.numpy(), [0, 0, 1, 1, 0])  # exact 0/1, also for huge β
    np.testing.assert_array_equal(tape.gradient(loss, beta).numpy(), upstream.numpy())  # identity backward
    np.testing.assert_array_equal(binarize_connections([[0.5, -0.1], [0.0, 3.0]]), [[1, 0], [0, 1]])


def test_connection_gate_gates_and_passes_gradient_straight_through():
    gate = ConnectionGate(num_nodes=3)
    x_a, x_b = tf.constant([[1.0, 2.0]]), tf.constant([[-1.0, 0.5]])
    gate([x_a, x_b], row=2)
    np.testing.assert_array_equal(gate.beta.numpy(), np.full((3, 3), 0.5))  # init constant 0.5: all on
    gate.beta.assign([[0.5, 0.5, 0.5], [0.3, 0.5, 0.5], [-0.2, 0.7, 0.5]])
    u_a, u_b = tf.constant([[3.0, 4.0]]), tf.constant([[2.0, 2.0]])
    with tf.GradientTape() as tape:
        y_a, y_b = gate([x_a, x_b], row=2)
        loss = tf.reduce_sum(y_a * u_a) + tf.reduce_sum(y_b * u_b)
    np.testing.assert_array_equal(y_a.numpy(), [[0.0, 0.0]])  # β[2,0] = -0.2 -> gate 0
    np.testing.assert_array_equal(y_b.numpy(), x_b.numpy())  # β[2,1] = 0.7 -> gate 1
    # dL/dg_j = Σ u_j ⊙ x_j and dg/dβ = 1: dβ[2,0] = 3·1 + 4·2 = 11 (although the gate is 0), dβ[2,1] = -2 + 1 = -1
    expected = np.zeros((3, 3), np.float32)
    expected[2, 0], expected[2, 1] = 11.0, -1.0
    np.testing.assert_allclose(tape.gradient(loss, gate.beta).numpy(), expected)
    np.testing.assert_array_equal(gate.gates().numpy(), [[1, 1, 1], [1, 1, 1], [0, 1, 1]])


def test_connection_gate_rejects_bad_rows():
    gate = ConnectionGate(num_nodes=3)
    with pytest.raises(ValueError, match="candidate inputs"):
        gate([X1, X1, X1], row=2)
    with pytest.raises(ValueError, match="num_nodes"):
        ConnectionGate(num_nodes=1)
