"""First-order (linear) term of LR, FM and DeepFM: one weight per feature id, summed over fields, plus a bias."""
from __future__ import annotations

from typing import Any

import tensorflow as tf

keras = tf.keras


@keras.utils.register_keras_serializable(package="fusionctr")
class FirstOrder(tf.keras.layers.Layer):
    """ids [batch, fields] -> sum_f w[ids[:, f]] + b, shape [batch, 1].

    Args:
        table_size: int, number of feature ids.
        l2: float, coupled L2 coefficient on the weights (regulariser lambda / 2). Defaults to 0.
    """

    def __init__(self, table_size: int, l2: float = 0.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.table_size = table_size
        self.l2 = l2

    def build(self, input_shape: tf.TensorShape) -> None:
        """Creates weights (table_size, 1), zeros, L2 regulariser λ/2 when l2 > 0; bias (1,), zeros, no regulariser."""
        self.weights_per_id = self.add_weight(
            name="weights", shape=(self.table_size, 1), initializer="zeros",
            regularizer=keras.regularizers.L2(self.l2 / 2.0) if self.l2 else None)
        self.bias = self.add_weight(name="bias", shape=(1,), initializer="zeros")
        super().build(input_shape)

    def call(self, ids: tf.Tensor) -> tf.Tensor:
        """ids: int [batch, fields] -> [batch, 1]."""
        weights = tf.gather(self.weights_per_id, tf.cast(ids, tf.int32))  # [batch, fields, 1]
        return tf.cast(tf.reduce_sum(weights, axis=1) + self.bias, self.compute_dtype)

    def get_config(self) -> dict[str, Any]:
        """Adds table_size and l2."""
        return {**super().get_config(), "table_size": self.table_size, "l2": self.l2}
