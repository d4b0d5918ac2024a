"""DCN-v2 cross layer with a full-rank matrix: TFRS's `Cross`, initialised as PyTorch and built without AutoGraph."""
from __future__ import annotations

from typing import Any

import tensorflow as tf
import tensorflow_recommenders as tfrs

from trainer.layers import torch_init

keras = tf.keras


@keras.utils.register_keras_serializable(package="fusionctr")
class FullRankCross(tfrs.layers.dcn.Cross):
    """One DCN-v2 cross layer: y = x0 ⊙ (W x_in + b) + x_in, W a full D×D matrix (TFRS `Cross`, projection_dim None).

    W and b are initialised U(±1/sqrt(D)) as PyTorch's `nn.Linear(D, D)` (FuxiCTR's CrossNetV2), and carry
    a coupled L2 λ (Keras regulariser λ/2). The only change to TFRS's layer is that its `call` is exempt from
    AutoGraph: Keras converts the `call` of every layer defined outside Keras when a functional model is built,
    and converting `Cross.call` would recursively convert Keras' Dense internals (about 15 s per process on the
    2-core machines), although the call holds no tensor-dependent control flow.

    Args:
        l2: float, coupled L2 coefficient λ on W and b. Defaults to 0.

    Example:
        >>> cross = FullRankCross()
        >>> y = cross(tf.ones([4, 8]), tf.ones([4, 8]))  # [4, 8]

    References:
        Wang et al., "DCN V2: Improved Deep & Cross Network", https://arxiv.org/abs/2008.13535
    """

    def __init__(self, l2: float = 0.0, **kwargs: Any) -> None:
        super().__init__(projection_dim=None, kernel_initializer=torch_init.kernel_initializer(),
                         bias_initializer="zeros", kernel_regularizer=torch_init.l2_regularizer(l2),
                         bias_regularizer=torch_init.l2_regularizer(l2), **kwargs)
        self.l2 = l2

    def build(self, input_shape: tf.TensorShape) -> None:
        """Sets the bias initialiser to U(±1/sqrt(D)), then TFRS builds its Dense: kernel W (D, D) and bias b (D,).

        Raises:
            ValueError: the last input dimension is unknown.
        """
        dim = tf.TensorShape(input_shape)[-1]
        if dim is None:
            raise ValueError(f"FullRankCross needs a known last dimension, got input shape {input_shape}")
        self._bias_initializer = torch_init.bias_initializer(dim)
        super().build(input_shape)

    def call(self, x0: tf.Tensor, x: tf.Tensor | None = None) -> tf.Tensor:
        """x0: [batch, D] raw input; x: [batch, D] previous cross output (None: x0) -> [batch, D]."""
        return self._cross(x0, x)

    @tf.autograph.experimental.do_not_convert
    def _cross(self, x0: tf.Tensor, x: tf.Tensor | None) -> tf.Tensor:
        return super().call(x0, x)

    def get_config(self) -> dict[str, Any]:
        """The base Layer's config plus l2."""
        # The base Layer's config, not TFRS's: every Cross argument is fixed by `l2`.
        return {**keras.layers.Layer.get_config(self), "l2": self.l2}
