"""xDeepFM (Lian et al., 2018): first-order weights + a CIN + an MLP, logits summed, over shared embeddings.

    linear = FirstOrder(ids)                               [batch, 1]
    cin    = Linear(CIN_{[F]×3}(embeddings))                CIN sizes (F, F, F): hyperparam.md's cin_dims
    deep   = Linear(MLP(flatten(embeddings)))               model.hidden_units (dnn.hidden_widths), ReLU
    logit  = linear + cin + deep
"""
from __future__ import annotations

import tensorflow as tf

from trainer.config import ModelConfig, TrainConfig
from trainer.layers.cin import CompressedInteraction
from trainer.layers.first_order import FirstOrder
from trainer.models import dnn

keras = tf.keras

NUM_CIN_LAYERS = 3


def build_xdeepfm_logit(ids: tf.Tensor, table_size: int, model: ModelConfig, train: TrainConfig) -> tf.Tensor:
    """ids [batch, fields] int64 -> logit [batch, 1] (float32)."""
    num_fields = ids.shape[-1]
    embeddings, flat = dnn.embed(ids, table_size, model, train)
    linear = FirstOrder(table_size, train.l2_embedding, name="first_order")(ids)
    cin = CompressedInteraction((num_fields,) * NUM_CIN_LAYERS, l2=train.l2_dense, name="cin")(embeddings)
    cin = dnn.linear_logit(cin, train.l2_dense, name="cin_out")
    deep = dnn.linear_logit(dnn.mlp(flat, dnn.hidden_widths(model, ids.shape[-1]), train.l2_dense), train.l2_dense,
                            name="deep_out")
    logit = keras.layers.Add(name="logit")([linear, cin, deep])
    return dnn.as_float32_logit(logit)
