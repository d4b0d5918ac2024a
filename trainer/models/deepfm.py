"""DeepFM (Guo et al., 2017): first-order weights + FM interactions + an MLP, all over shared embeddings.

The MLP and its output layer are dnn.py's (PyTorch `nn.Linear` initialisation, coupled L2 on kernel and bias), as
in every other deep baseline (algorithms.md §1.8, §1.11).
"""
from __future__ import annotations

import tensorflow as tf

from trainer.config import ModelConfig, TrainConfig
from trainer.layers.factorization_machine import FactorizationMachine
from trainer.layers.first_order import FirstOrder
from trainer.models import dnn

keras = tf.keras


def build_deepfm_logit(ids: tf.Tensor, table_size: int, model: ModelConfig, train: TrainConfig) -> tf.Tensor:
    """ids [batch, fields] int64 -> logit [batch, 1] (float32): first order + FM + Linear(MLP(flatten(embeddings)))."""
    embeddings, flat = dnn.embed(ids, table_size, model, train)
    linear = FirstOrder(table_size, train.l2_embedding, name="first_order")(ids)
    fm = FactorizationMachine(name="fm")(embeddings)
    deep = dnn.mlp(flat, dnn.hidden_widths(model, ids.shape[-1]), train.l2_dense)
    deep = dnn.linear_logit(deep, train.l2_dense, name="deep_out")
    return dnn.as_float32_logit(keras.layers.Add(name="logit")([linear, fm, deep]))
