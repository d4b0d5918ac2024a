"""IPNN (Qu et al., 2016): an MLP over the flattened embeddings and their pairwise inner products.

    z = flatten(embeddings)                  [batch, F·E]
    p = <v_i, v_j> for i < j                  [batch, F·(F-1)/2]
    logit = Linear(MLP(concat(z, p)))         model.hidden_units (dnn.hidden_widths), ReLU
                                              (as DeepCTR's PNN with use_inner)
"""
from __future__ import annotations

import tensorflow as tf

from trainer.config import ModelConfig, TrainConfig
from trainer.layers.inner_product import InnerProduct
from trainer.models import dnn

keras = tf.keras


def build_ipnn_logit(ids: tf.Tensor, table_size: int, model: ModelConfig, train: TrainConfig) -> tf.Tensor:
    """ids [batch, fields] int64 -> logit [batch, 1] (float32)."""
    embeddings, flat = dnn.embed(ids, table_size, model, train)
    products = InnerProduct(name="inner_product")(embeddings)
    product_layer = keras.layers.Concatenate(name="product_layer")([flat, products])
    deep = dnn.mlp(product_layer, dnn.hidden_widths(model, ids.shape[-1]), train.l2_dense)
    return dnn.as_float32_logit(dnn.linear_logit(deep, train.l2_dense, name="output"))
