"""One OptFusion deep node: Linear(D→D) + ReLU (algorithms.md §1.2, `MLP_Layer`; no BatchNorm, no dropout)."""
from __future__ import annotations

from typing import Any

import tensorflow as tf

from trainer.layers import torch_init

keras = tf.keras


@keras.utils.register_keras_serializable(package="fusionctr")
class DeepLayer(tf.keras.layers.Layer):
    """y = ReLU(x W + b), with W and b initialised U(±1/sqrt(D_in)) as PyTorch's nn.Linear.

    In OptFusion the width always equals the input width D (`mlp_dims` only sets the number of blocks).

    Args:
        units: int or None, output width H; None keeps the input width D. Defaults to None.
        l2: float, coupled L2 coefficient λ on W and b (Keras regulariser λ/2). Defaults to 0.

    Example:
        >>> deep = DeepLayer()
        >>> y = deep(tf.ones([4, 8]))  # [4, 8]
    """

    def __init__(self, units: int | None = None, l2: float = 0.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if units is not None and units <= 0:
            raise ValueError(f"units must be positive or None, got {units}")
        self.units = units
        self.l2 = l2
        self._regularizer = torch_init.l2_regularizer(l2)

    def build(self, input_shape: tf.TensorShape) -> None:
        """Creates kernel W (D, H) and bias b (H,), both U(±1/sqrt(D)); H is `units`, or D when None.

        Raises:
            ValueError: the last input dimension is unknown.
        """
        fan_in = tf.TensorShape(input_shape)[-1]
        if fan_in is None:
            raise ValueError(f"DeepLayer needs a known last dimension, got input shape {input_shape}")
        units = self.units or fan_in
        self.kernel = self.add_weight(name="kernel", shape=(fan_in, units), initializer=torch_init.kernel_initializer(),
                                      regularizer=self._regularizer)
        self.bias = self.add_weight(name="bias", shape=(units,), initializer=torch_init.bias_initializer(fan_in),
                                    regularizer=self._regularizer)
        super().build(input_shape)

    def call(self, inputs: tf.Tensor) -> tf.Tensor:
        """inputs: [batch, D] -> [batch, H] (H = units, or D)."""
        inputs = tf.cast(inputs, self.compute_dtype)
        return tf.nn.relu(tf.matmul(inputs, self.kernel) + self.bias)

    def get_config(self) -> dict[str, Any]:
        """Adds units and l2."""
        return {**super().get_config(), "units": self.units, "l2": self.l2}
