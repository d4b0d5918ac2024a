"""DCN (Wang et al., 2017): a cross network beside an MLP, both over the flattened embeddings (parallel fusion).

    x0 = flatten(embeddings)                      [batch, D], D = F·E
    cross: x_{l+1} = (w_l · x_l) x0 + b_l + x_l   three CrossLayer (vector weight), x_0 = x0
    deep:  MLP(x0)                                 model.hidden_units (dnn.hidden_widths), ReLU
    logit = Linear(concat(x_3, deep))              as DeepCTR's dcn.py (concatenation, then one Dense(1))
"""
from __future__ import annotations

import tensorflow as tf

from trainer.config import ModelConfig, TrainConfig
from trainer.layers.cross import CrossLayer
from trainer.models import dnn

keras = tf.keras

NUM_CROSS_LAYERS = 3


def build_dcn_logit(ids: tf.Tensor, table_size: int, model: ModelConfig, train: TrainConfig) -> tf.Tensor:
    """ids [batch, fields] int64 -> logit [batch, 1] (float32)."""
    _, x0 = dnn.embed(ids, table_size, model, train)
    cross = x0
    for i in range(NUM_CROSS_LAYERS):
        cross = CrossLayer(train.l2_dense, name=f"cross_{i}")(x0, cross)
    deep = dnn.mlp(x0, dnn.hidden_widths(model, ids.shape[-1]), train.l2_dense)
    fused = keras.layers.Concatenate(name="cross_deep")([cross, deep])
    return dnn.as_float32_logit(dnn.linear_logit(fused, train.l2_dense, name="output"))
