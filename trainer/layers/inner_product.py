"""Pairwise inner products of field embeddings: the product layer of IPNN."""
from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf

keras = tf.keras


@keras.utils.register_keras_serializable(package="fusionctr")
class InnerProduct(tf.keras.layers.Layer):
    """p_{ij} = <v_i, v_j> for every field pair i < j, in row-major order (0,1), (0,2), …, (F-2,F-1).

    Input [batch, F, D] -> output [batch, F·(F-1)/2]. No weights. IPNN feeds these products, concatenated
    with the flattened embeddings, to its MLP (the product layer's linear signals l_z and l_p then are the
    MLP's first layer).

    Example:
        >>> p = InnerProduct()(tf.ones([4, 3, 8]))  # [4, 3], every entry 8

    References:
        Qu et al., "Product-based Neural Networks for User Response Prediction", https://arxiv.org/abs/1611.00144
    """

    def build(self, input_shape: tf.TensorShape) -> None:
        """Precomputes the int32 row and column indices of the F·(F-1)/2 field pairs i < j; no weights.

        Raises:
            ValueError: the input is not [batch, fields >= 2, dim] with a known number of fields.
        """
        input_shape = tf.TensorShape(input_shape)
        if input_shape.rank != 3 or input_shape[1] is None or input_shape[1] < 2:
            raise ValueError(f"InnerProduct needs [batch, fields >= 2, dim], got {input_shape}")
        rows, cols = np.triu_indices(input_shape[1], k=1)
        self._rows = rows.astype(np.int32)
        self._cols = cols.astype(np.int32)
        super().build(input_shape)

    def call(self, embeddings: tf.Tensor) -> tf.Tensor:
        """embeddings: [batch, fields, dim] -> [batch, fields·(fields-1)/2]."""
        embeddings = tf.cast(embeddings, self.compute_dtype)
        left = tf.gather(embeddings, self._rows, axis=1)  # [batch, pairs, dim]
        right = tf.gather(embeddings, self._cols, axis=1)
        return tf.reduce_sum(left * right, axis=2)

    def compute_output_shape(self, input_shape: tf.TensorShape) -> tf.TensorShape:
        """[batch, F, D] -> [batch, F·(F-1)/2]."""
        num_fields = tf.TensorShape(input_shape)[1]
        return tf.TensorShape([input_shape[0], num_fields * (num_fields - 1) // 2])

    def get_config(self) -> dict[str, Any]:
        """The base Layer's config: the layer has no arguments of its own."""
        return super().get_config()
