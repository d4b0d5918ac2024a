"""Logistic regression: one weight per feature id plus a bias, no embeddings."""
from __future__ import annotations

import tensorflow as tf

from trainer.config import ModelConfig, TrainConfig
from trainer.layers.first_order import FirstOrder

keras = tf.keras


def build_lr_logit(ids: tf.Tensor, table_size: int, model: ModelConfig, train: TrainConfig) -> tf.Tensor:
    """ids [batch, fields] int64 -> logit [batch, 1] (float32): sum_f w[ids[:, f]] + b.

    The weights (zero-initialised) are an id table, so they take the embedding group's L2 (`l2_embedding`);
    `model`'s embedding and MLP sizes are unused.
    """
    del model  # LR has no embeddings and no MLP
    linear = FirstOrder(table_size, train.l2_embedding, name="first_order")(ids)
    return keras.layers.Activation("linear", dtype="float32", name="logit_float32")(linear)
