"""Binary connection gates with a straight-through gradient (OptFusion connection search, algorithms.md §1.3).

Every candidate connection producer j → consumer i carries a real parameter β[i, j]. The forward pass uses the
gate g = step(β) = 1 if β > 0 else 0 and multiplies the producer's output by it; the backward pass treats the
step as the identity (dg/dβ = 1). There is no sigmoid, softmax or Gumbel noise. β starts at +0.5, so the
supernet starts fully connected and a connection is pruned only once its β has been pushed below 0.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import tensorflow as tf

keras = tf.keras


@tf.custom_gradient
def straight_through_step(beta: tf.Tensor) -> tuple[tf.Tensor, Any]:
    """Forward: 1 where beta > 0, else 0 (same dtype and shape). Backward: the upstream gradient, unchanged."""
    gate = tf.cast(beta > 0, beta.dtype)

    def grad(upstream: tf.Tensor) -> tf.Tensor:
        return upstream

    return gate, grad


def binarize_connections(beta: np.ndarray | tf.Tensor | Sequence[Sequence[float]]) -> np.ndarray:
    """Threshold connection parameters as the retrain stage does: int 1 where beta > 0, else 0 (same shape)."""
    return (np.asarray(beta, dtype=np.float64) > 0).astype(np.int64)


@keras.utils.register_keras_serializable(package="fusionctr")
class ConnectionGate(tf.keras.layers.Layer):
    """Holds the [N, N] connection parameters β of an N-node DAG and gates a consumer's candidate inputs.

    Rows index consumers and columns producers, in topological order. Calling the layer for consumer `row`
    with its n candidate inputs (producers 0..n-1, in column order) returns x_j * step(β[row, j]) for each j.
    The same layer is shared by every consumer of the graph, so all gates live in one matrix (the reference's
    `arch_weight.npy`). β is kept in float32 under a mixed-precision policy; the 0/1 gate is then cast to the
    layer's compute dtype.

    Args:
        num_nodes: int, N, number of nodes of the DAG (the matrix is N × N).
        init_value: float, initial value of every β. Defaults to 0.5 (reference `init_constant`).

    Example:
        >>> gate = ConnectionGate(num_nodes=3)
        >>> g0, g1 = gate([tf.ones([4, 8]), tf.ones([4, 8])], row=2)  # two [4, 8] tensors
    """

    def __init__(self, num_nodes: int, init_value: float = 0.5, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if num_nodes <= 1:
            raise ValueError(f"num_nodes must be at least 2, got {num_nodes}")
        self.num_nodes = num_nodes
        self.init_value = init_value

    def build(self, input_shape: Any) -> None:
        """Creates beta, float32 (num_nodes, num_nodes), every entry `init_value`; input_shape is not used."""
        self.beta = self.add_weight(name="beta", shape=(self.num_nodes, self.num_nodes),
                                    initializer=keras.initializers.Constant(self.init_value),
                                    experimental_autocast=False)
        super().build(input_shape)

    def gates(self) -> tf.Tensor:
        """The [N, N] float32 0/1 gate matrix step(β), with a straight-through gradient to β."""
        return straight_through_step(tf.convert_to_tensor(self.beta))

    def call(self, inputs: Sequence[tf.Tensor] | tf.Tensor, row: int) -> list[tf.Tensor]:
        """inputs: n tensors [batch, D] (producers 0..n-1 of consumer `row`; one may be passed bare)
        -> n gated tensors [batch, D]."""
        inputs = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
        if not 0 < row < self.num_nodes:
            raise ValueError(f"row must be in [1, {self.num_nodes}), got {row}")
        if not 0 < len(inputs) <= row:
            raise ValueError(f"consumer {row} can have 1..{row} candidate inputs, got {len(inputs)}")
        gates = tf.cast(straight_through_step(self.beta[row, :len(inputs)]), self.compute_dtype)  # [n]
        return [tf.cast(x, self.compute_dtype) * gates[j] for j, x in enumerate(inputs)]

    def get_config(self) -> dict[str, Any]:
        """Adds num_nodes and init_value."""
        return {**super().get_config(), "num_nodes": self.num_nodes, "init_value": self.init_value}
