"""The parameter-free OptFusion fusion operations, and the names of all four (algorithms.md §1.2).

The two operations with weights live in their own layers: `ConcatFusion` (fusion_concat.py) and
`AttentionFusion` (fusion_attention.py). The order of OPERATIONS is the order of the α logits of every node.
"""
from __future__ import annotations

import functools
from typing import Any, Sequence

import tensorflow as tf

OPERATIONS: tuple[str, ...] = ("sum", "product", "concat", "attention")
"""Operation names, in the order of the reference's `fusion_types` and of each node's α logits."""


def fuse_sum(inputs: Sequence[tf.Tensor]) -> tf.Tensor:
    """Pointwise addition Σ_j x_j: n tensors [batch, D] -> [batch, D]."""
    if not inputs:
        raise ValueError("fuse_sum needs at least one input")
    return tf.convert_to_tensor(inputs[0]) if len(inputs) == 1 else tf.add_n(list(inputs))


def fuse_product(inputs: Sequence[tf.Tensor]) -> tf.Tensor:
    """Hadamard product ∏_j x_j (element-wise): n tensors [batch, D] -> [batch, D]."""
    if not inputs:
        raise ValueError("fuse_product needs at least one input")
    return functools.reduce(tf.multiply, inputs[1:], tf.convert_to_tensor(inputs[0]))


def as_tensor_list(inputs: Sequence[tf.Tensor] | tf.Tensor) -> list[tf.Tensor]:
    """A list of input tensors. Keras passes a one-element input list bare after a SavedModel reload."""
    return list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]


def as_shape_list(input_shape: Any) -> list[tf.TensorShape]:
    """The shapes of a list of inputs, given either a list of shapes or (for one input) a single shape."""
    if isinstance(input_shape, tf.TensorShape):
        return [input_shape]
    items = list(input_shape)
    if not items or items[0] is None or isinstance(items[0], int):
        return [tf.TensorShape(items)]
    return [tf.TensorShape(s) for s in items]
