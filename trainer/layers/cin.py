"""Compressed interaction network (CIN) of xDeepFM: explicit vector-wise interactions of bounded degree."""
from __future__ import annotations

from typing import Any, Sequence

import tensorflow as tf

from trainer.layers import torch_init

keras = tf.keras


@keras.utils.register_keras_serializable(package="fusionctr")
class CompressedInteraction(tf.keras.layers.Layer):
    """CIN: X^k[h, :] = act(sum_{i, j} W^k[i·F + j, h] · (X^{k-1}[i, :] ⊙ X^0[j, :]) + b^k[h]), then sum pooling.

    X^0 [F, D] are the field embeddings and X^k [H_k, D] the k-th layer's feature maps (H_0 = F). Every layer
    is a PyTorch `Conv1d(H_{k-1}·F, H_k, kernel_size=1)` over the H_{k-1}·F Hadamard products: kernel and bias
    U(±1/sqrt(H_{k-1}·F)). The output concatenates each layer's maps summed over the embedding dimension:
    p^k[h] = sum_d X^k[h, d], so its width is sum_k H_k. Every layer's full output feeds the next (no
    "split half"; the reference's CIN sizes [F]×3 are odd for Criteo and KDD12).

    Args:
        layer_sizes: sequence of int, feature maps H_k per layer; the reference uses (F, F, F).
        activation: str, activation applied to each layer's maps (Keras name). Defaults to "relu" (as
            DeepCTR's and pytorch-fm's CIN).
        l2: float, coupled L2 coefficient λ on kernels and biases (Keras regulariser λ/2). Defaults to 0.

    Example:
        >>> cin = CompressedInteraction((3, 3))
        >>> p = cin(tf.ones([4, 3, 8]))  # [4, 6]

    References:
        Lian et al., "xDeepFM: Combining Explicit and Implicit Feature Interactions for Recommender Systems",
        https://arxiv.org/abs/1803.05170
    """

    def __init__(self, layer_sizes: Sequence[int], activation: str = "relu", l2: float = 0.0,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        layer_sizes = tuple(int(size) for size in layer_sizes)
        if not layer_sizes or min(layer_sizes) <= 0:
            raise ValueError(f"layer_sizes must be a non-empty sequence of positive ints, got {layer_sizes}")
        self.layer_sizes = layer_sizes
        self.activation = activation
        self.l2 = l2
        self._activation = keras.activations.get(activation)
        self._regularizer = torch_init.l2_regularizer(l2)

    def build(self, input_shape: tf.TensorShape) -> None:
        """Creates, per layer k, kernel_k (H_{k-1}·F, H_k) and bias_k (H_k,), both U(±1/sqrt(H_{k-1}·F)).

        Raises:
            ValueError: the input is not [batch, fields, dim] with a known number of fields.
        """
        input_shape = tf.TensorShape(input_shape)
        if input_shape.rank != 3 or input_shape[1] is None:
            raise ValueError(f"CompressedInteraction needs [batch, fields, dim] with known fields, got {input_shape}")
        num_fields = input_shape[1]
        self.kernels: list[tf.Variable] = []
        self.biases: list[tf.Variable] = []
        previous = num_fields
        for k, size in enumerate(self.layer_sizes):
            fan_in = previous * num_fields
            self.kernels.append(self.add_weight(
                name=f"kernel_{k}", shape=(fan_in, size), initializer=torch_init.kernel_initializer(),
                regularizer=self._regularizer))
            self.biases.append(self.add_weight(
                name=f"bias_{k}", shape=(size,), initializer=torch_init.bias_initializer(fan_in),
                regularizer=self._regularizer))
            previous = size
        super().build(input_shape)

    def call(self, embeddings: tf.Tensor) -> tf.Tensor:
        """embeddings: [batch, fields, dim] -> pooled maps [batch, sum(layer_sizes)]."""
        x0 = tf.cast(embeddings, self.compute_dtype)
        num_fields, dim = x0.shape[1], tf.shape(x0)[2]
        hidden = x0
        pooled = []
        for kernel, bias in zip(self.kernels, self.biases):
            # [batch, H_{k-1}, 1, D] ⊙ [batch, 1, F, D] -> [batch, H_{k-1}·F, D], row i·F + j.
            products = tf.expand_dims(hidden, 2) * tf.expand_dims(x0, 1)
            products = tf.reshape(products, [-1, hidden.shape[1] * num_fields, dim])
            hidden = self._activation(tf.einsum("bnd,nh->bhd", products, kernel) + bias[:, None])
            pooled.append(tf.reduce_sum(hidden, axis=2))
        return tf.concat(pooled, axis=1)

    def compute_output_shape(self, input_shape: tf.TensorShape) -> tf.TensorShape:
        """[batch, fields, dim] -> [batch, sum(layer_sizes)]."""
        return tf.TensorShape([input_shape[0], sum(self.layer_sizes)])

    def get_config(self) -> dict[str, Any]:
        """Adds layer_sizes (as a list), activation and l2."""
        return {**super().get_config(), "layer_sizes": list(self.layer_sizes), "activation": self.activation,
                "l2": self.l2}
