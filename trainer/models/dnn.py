"""DNN: an MLP over the flattened field embeddings; its tower and output helpers serve every deep baseline.

All dense weights follow PyTorch's `nn.Linear` (kernel and bias U(±1/sqrt(fan_in)), coupled L2 λ on both:
algorithms.md §1.11), no dropout, no BatchNorm (§1.8).

Hidden widths: a width of `D_WIDE` (0) in `ModelConfig.hidden_units` means D = fields × embedding, the width of
the flattened embeddings, as the reference sizes every baseline's MLP ([1560]×3 on Criteo's 39 fields × 40,
[960]×3 on Avazu's 24, [400]×3 on Frappe's 10). The field count is known only once the model sees its input
(after Transform), so the rule is resolved here, when the model is built (`hidden_widths`).
"""
from __future__ import annotations

from typing import Sequence

import tensorflow as tf

from trainer.config import ModelConfig, TrainConfig
from trainer.layers import torch_init
from trainer.layers.deep import DeepLayer
from trainer.layers.field_embedding import FieldEmbedding

keras = tf.keras

D_WIDE = 0  # a hidden width meaning "D = fields × embedding", resolved by hidden_widths when the model is built


def hidden_widths(model: ModelConfig, num_fields: int) -> tuple[int, ...]:
    """model.hidden_units with every D_WIDE entry replaced by D = num_fields · model.embedding_dim."""
    if any(units < 0 for units in model.hidden_units):
        raise ValueError(f"hidden widths must be positive or D_WIDE ({D_WIDE}), got {model.hidden_units}")
    return tuple(num_fields * model.embedding_dim if units == D_WIDE else units for units in model.hidden_units)


def embed(ids: tf.Tensor, table_size: int, model: ModelConfig, train: TrainConfig) -> tuple[tf.Tensor, tf.Tensor]:
    """ids [batch, F] -> (embeddings [batch, F, E], flattened embeddings [batch, F·E])."""
    embeddings = FieldEmbedding(table_size, model.embedding_dim, model.embedding_init_std, train.l2_embedding,
                                name="embedding")(ids)
    flat = keras.layers.Reshape((ids.shape[-1] * model.embedding_dim,), name="flatten_embeddings")(embeddings)
    return embeddings, flat


def mlp(inputs: tf.Tensor, hidden_units: Sequence[int], l2: float, prefix: str = "deep") -> tf.Tensor:
    """[batch, D] -> ReLU MLP -> [batch, hidden_units[-1]] (inputs unchanged when hidden_units is empty)."""
    x = inputs
    for i, units in enumerate(hidden_units):
        x = DeepLayer(units, l2, name=f"{prefix}_{i}")(x)
    return x


def linear_logit(inputs: tf.Tensor, l2: float, name: str) -> tf.Tensor:
    """[batch, D] -> Linear(D→1) with bias -> [batch, 1], initialised as PyTorch's nn.Linear."""
    fan_in = inputs.shape[-1]
    regularizer = torch_init.l2_regularizer(l2)
    return keras.layers.Dense(1, kernel_initializer=torch_init.kernel_initializer(),
                              bias_initializer=torch_init.bias_initializer(fan_in), kernel_regularizer=regularizer,
                              bias_regularizer=regularizer, name=name)(inputs)


def as_float32_logit(logit: tf.Tensor) -> tf.Tensor:
    """The model's logit in float32 (also under a mixed-precision policy)."""
    return keras.layers.Activation("linear", dtype="float32", name="logit_float32")(logit)


def build_dnn_logit(ids: tf.Tensor, table_size: int, model: ModelConfig, train: TrainConfig) -> tf.Tensor:
    """ids [batch, fields] int64 -> logit [batch, 1] (float32): Linear(MLP(flatten(embeddings)))."""
    _, flat = embed(ids, table_size, model, train)
    deep = mlp(flat, hidden_widths(model, ids.shape[-1]), train.l2_dense)
    return as_float32_logit(linear_logit(deep, train.l2_dense, name="deep_out"))
