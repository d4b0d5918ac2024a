"""DeepFM (Guo et al., 2017): first-order weights + FM interactions + an MLP, all over shared embeddings."""
from __future__ import annotations

import tensorflow as tf

from trainer.config import ModelConfig, TrainConfig
from trainer.layers.factorization_machine import FactorizationMachine
from trainer.layers.field_embedding import FieldEmbedding
from trainer.layers.first_order import FirstOrder
from trainer.models import dnn

keras = tf.keras


def build_deepfm_logit(ids: tf.Tensor, table_size: int, model: ModelConfig, train: TrainConfig) -> tf.Tensor:
    """ids [batch, fields] int64 -> logit [batch, 1] (float32)."""
    num_fields = ids.shape[-1]
    dense_l2 = keras.regularizers.L2(train.l2_dense / 2.0) if train.l2_dense else None
    embeddings = FieldEmbedding(table_size, model.embedding_dim, model.embedding_init_std, train.l2_embedding,
                                name="embedding")(ids)
    linear = FirstOrder(table_size, train.l2_embedding, name="first_order")(ids)
    fm = FactorizationMachine(name="fm")(embeddings)
    deep = keras.layers.Reshape((num_fields * model.embedding_dim,), name="flatten_embeddings")(embeddings)
    for i, units in enumerate(dnn.hidden_widths(model, num_fields)):
        deep = keras.layers.Dense(units, activation="relu", kernel_regularizer=dense_l2, name=f"deep_{i}")(deep)
    deep = keras.layers.Dense(1, kernel_regularizer=dense_l2, name="deep_out")(deep)
    logit = keras.layers.Add(name="logit")([linear, fm, deep])
    return keras.layers.Activation("linear", dtype="float32", name="logit_float32")(logit)
