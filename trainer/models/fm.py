"""Factorization machine (Rendle, 2010): first-order weights + pairwise embedding inner products."""
from __future__ import annotations

import tensorflow as tf

from trainer.config import ModelConfig, TrainConfig
from trainer.layers.factorization_machine import FactorizationMachine
from trainer.layers.field_embedding import FieldEmbedding
from trainer.layers.first_order import FirstOrder

keras = tf.keras


def build_fm_logit(ids: tf.Tensor, table_size: int, model: ModelConfig, train: TrainConfig) -> tf.Tensor:
    """ids [batch, fields] int64 -> logit [batch, 1] (float32): first_order(ids) + sum_{i<j} <v_i, v_j>.

    DeepFM without its MLP (`model.hidden_units` is unused).
    """
    embeddings = FieldEmbedding(table_size, model.embedding_dim, model.embedding_init_std, train.l2_embedding,
                                name="embedding")(ids)
    linear = FirstOrder(table_size, train.l2_embedding, name="first_order")(ids)
    fm = FactorizationMachine(name="fm")(embeddings)
    logit = keras.layers.Add(name="logit")([linear, fm])
    return keras.layers.Activation("linear", dtype="float32", name="logit_float32")(logit)
