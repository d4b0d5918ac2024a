"""Concatenation fusion: one Linear(n·D → D) over the concatenated inputs (reference `ConcatPooling`)."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import tensorflow as tf

from trainer.layers import torch_init
from trainer.layers.fusion_ops import as_shape_list, as_tensor_list

keras = tf.keras


@keras.utils.register_keras_serializable(package="fusionctr")
class ConcatFusion(tf.keras.layers.Layer):
    """y = [x_1; …; x_n] W + b, W of shape (n·D, D), W and b initialised U(±1/sqrt(n·D)) as PyTorch's nn.Linear.

    Every fusion node owns its own ConcatFusion. n is read from the number of inputs at build time.

    Args:
        l2: float, coupled L2 coefficient λ on W and b (Keras regulariser λ/2). Defaults to 0.

    Example:
        >>> concat = ConcatFusion()
        >>> y = concat([tf.ones([4, 8]), tf.ones([4, 8])])  # [4, 8]; W is (16, 8)
    """

    def __init__(self, l2: float = 0.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.l2 = l2
        self._regularizer = torch_init.l2_regularizer(l2)

    def build(self, input_shape: Sequence[tf.TensorShape] | tf.TensorShape) -> None:
        """Creates, for n inputs of width D, kernel W (n·D, D) and bias b (D,), both U(±1/sqrt(n·D)).

        Raises:
            ValueError: no inputs, or inputs whose last dimensions are unknown or differ.
        """
        shapes = as_shape_list(input_shape)
        if not shapes or any(s[-1] is None or s[-1] != shapes[0][-1] for s in shapes):
            raise ValueError(f"ConcatFusion needs one or more inputs of equal known width, got {input_shape}")
        self.num_inputs = len(shapes)
        dim = shapes[0][-1]
        fan_in = self.num_inputs * dim
        self.kernel = self.add_weight(name="kernel", shape=(fan_in, dim), initializer=torch_init.kernel_initializer(),
                                      regularizer=self._regularizer)
        self.bias = self.add_weight(name="bias", shape=(dim,), initializer=torch_init.bias_initializer(fan_in),
                                    regularizer=self._regularizer)
        super().build(input_shape)

    def call(self, inputs: Sequence[tf.Tensor] | tf.Tensor) -> tf.Tensor:
        """inputs: n tensors [batch, D] (one may be passed bare) -> [batch, D]."""
        stacked = tf.concat([tf.cast(x, self.compute_dtype) for x in as_tensor_list(inputs)], axis=-1)  # [batch, n·D]
        return tf.matmul(stacked, self.kernel) + self.bias

    def weights_for_inputs(self, indices: Sequence[int]) -> list[np.ndarray]:
        """The [kernel, bias] that a ConcatFusion over inputs `indices` (a subset, in order) of this one would have.

        Dropping an input whose value is always zero does not change the output, so this is how a retrained node
        with pruned inputs inherits the supernet's concat weights: keep the kernel rows of the kept inputs.
        """
        kernel, bias = self.get_weights()
        dim = bias.shape[0]
        blocks = kernel.reshape(self.num_inputs, dim, dim)
        return [blocks[list(indices)].reshape(len(indices) * dim, dim), bias]

    def get_config(self) -> dict[str, Any]:
        """Adds l2."""
        return {**super().get_config(), "l2": self.l2}
