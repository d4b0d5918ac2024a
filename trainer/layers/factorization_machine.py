"""Second-order factorization machine interaction over field embeddings."""
from __future__ import annotations

from typing import Any

import tensorflow as tf

keras = tf.keras


@keras.utils.register_keras_serializable(package="fusionctr")
class FactorizationMachine(tf.keras.layers.Layer):
    """Pairwise interactions sum_{i<j} <v_i, v_j> = 0.5 * sum_k ((sum_i v_ik)^2 - sum_i v_ik^2).

    Input [batch, fields, dim] -> output [batch, 1]. No weights: the embeddings are the factors.
    """

    def call(self, embeddings: tf.Tensor) -> tf.Tensor:
        """embeddings: [batch, fields, dim] -> [batch, 1]."""
        square_of_sum = tf.square(tf.reduce_sum(embeddings, axis=1))
        sum_of_squares = tf.reduce_sum(tf.square(embeddings), axis=1)
        return 0.5 * tf.reduce_sum(square_of_sum - sum_of_squares, axis=1, keepdims=True)

    def get_config(self) -> dict[str, Any]:
        """The base Layer's config: the layer has no arguments of its own."""
        return super().get_config()
