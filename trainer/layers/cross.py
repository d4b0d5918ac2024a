"""DCN-v1 cross layer with a vector weight, as used in every OptFusion cross node (algorithms.md §1.2)."""
from __future__ import annotations

from typing import Any

import tensorflow as tf

from trainer.layers import torch_init

keras = tf.keras


@keras.utils.register_keras_serializable(package="fusionctr")
class CrossLayer(tf.keras.layers.Layer):
    """One DCN-v1 cross layer: y = (w · x_in) x0 + b + x_in.

    w is a length-D vector (a bias-free Linear(D→1), initialised U(±1/sqrt(D)) as in PyTorch) and b a length-D
    bias initialised to zero. x0 is the raw flattened embedding; x_in is this node's fused input. This is the
    vector-weight cross of DCN (Wang et al., 2017), not the matrix of DCN-v2.

    Args:
        l2: float, coupled L2 coefficient λ on w and b (PyTorch Adam weight_decay; Keras regulariser λ/2).
            Defaults to 0.

    Example:
        >>> cross = CrossLayer()
        >>> y = cross(tf.ones([4, 8]), tf.ones([4, 8]))  # [4, 8]

    References:
        Wang et al., "Deep & Cross Network for Ad Click Predictions", https://arxiv.org/abs/1708.05123
    """

    def __init__(self, l2: float = 0.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.l2 = l2
        self._regularizer = torch_init.l2_regularizer(l2)

    def build(self, input_shape: tf.TensorShape) -> None:
        """Creates kernel w (D, 1), U(±1/sqrt(D)), and bias b (D,), zeros; D is x0's last dimension.

        Raises:
            ValueError: the last input dimension is unknown.
        """
        dim = tf.TensorShape(input_shape)[-1]
        if dim is None:
            raise ValueError(f"CrossLayer needs a known last dimension, got input shape {input_shape}")
        self.kernel = self.add_weight(name="kernel", shape=(dim, 1), initializer=torch_init.kernel_initializer(),
                                      regularizer=self._regularizer)
        self.bias = self.add_weight(name="bias", shape=(dim,), initializer="zeros", regularizer=self._regularizer)
        super().build(input_shape)

    def call(self, x0: tf.Tensor, x_in: tf.Tensor) -> tf.Tensor:
        """x0: [batch, D] raw embedding; x_in: [batch, D] fused input -> [batch, D]."""
        x0 = tf.cast(x0, self.compute_dtype)
        x_in = tf.cast(x_in, self.compute_dtype)
        scale = tf.matmul(x_in, self.kernel)  # [batch, 1]
        return scale * x0 + self.bias + x_in

    def get_config(self) -> dict[str, Any]:
        """Adds l2."""
        return {**super().get_config(), "l2": self.l2}
