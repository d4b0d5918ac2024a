"""Keras initialisers that reproduce PyTorch's defaults (algorithms.md §1.11, item 1).

PyTorch's `nn.Linear(fan_in, fan_out)` draws both its weight and its bias from U(-1/sqrt(fan_in), +1/sqrt(fan_in)).
Keras' `VarianceScaling(scale=1/3, mode="fan_in", distribution="uniform")` draws a 2-D kernel of shape
(fan_in, fan_out) from U(-limit, limit) with limit = sqrt(3 * scale / fan_in) = 1/sqrt(fan_in): the same law.
A bias has no fan-in of its own, so its bound is passed explicitly.

`torch.nn.init.xavier_normal_` is an *untruncated* normal with std = sqrt(2 / (fan_in + fan_out)); Keras'
`GlorotNormal` truncates, so `xavier_normal` uses the untruncated variant.
"""
from __future__ import annotations

import math

import tensorflow as tf

keras = tf.keras


def linear_bound(fan_in: int) -> float:
    """The PyTorch `nn.Linear` init bound 1/sqrt(fan_in)."""
    if fan_in <= 0:
        raise ValueError(f"fan_in must be positive, got {fan_in}")
    return 1.0 / math.sqrt(fan_in)


def kernel_initializer(seed: int | None = None) -> tf.keras.initializers.Initializer:
    """U(±1/sqrt(fan_in)) for a 2-D kernel of shape (fan_in, fan_out), fan_in read from the shape."""
    return keras.initializers.VarianceScaling(scale=1.0 / 3.0, mode="fan_in", distribution="uniform", seed=seed)


def uniform_initializer(fan_in: int, seed: int | None = None) -> tf.keras.initializers.Initializer:
    """U(±1/sqrt(fan_in)) for any shape: a Linear bias, or a stack of kernels whose fan-in is not shape[-2]."""
    bound = linear_bound(fan_in)
    return keras.initializers.RandomUniform(minval=-bound, maxval=bound, seed=seed)


def bias_initializer(fan_in: int, seed: int | None = None) -> tf.keras.initializers.Initializer:
    """U(±1/sqrt(fan_in)) for the bias of a Linear layer with `fan_in` inputs."""
    return uniform_initializer(fan_in, seed=seed)


def xavier_normal(seed: int | None = None) -> tf.keras.initializers.Initializer:
    """PyTorch `xavier_normal_`: Normal(0, sqrt(2 / (fan_in + fan_out))), not truncated."""
    return keras.initializers.VarianceScaling(scale=1.0, mode="fan_avg", distribution="untruncated_normal",
                                              seed=seed)


def l2_regularizer(l2: float) -> tf.keras.regularizers.Regularizer | None:
    """Coupled L2 as PyTorch Adam's `weight_decay=l2` (gradient l2 * w): a Keras L2 of l2 / 2, or None for 0."""
    if l2 < 0:
        raise ValueError(f"l2 must be >= 0, got {l2}")
    return keras.regularizers.L2(l2 / 2.0) if l2 else None
