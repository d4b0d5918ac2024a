"""Tiny baseline models shared by the model tests: 4 fields, a 40-row table, 3-wide embeddings."""
from __future__ import annotations

import numpy as np
import tensorflow as tf

from trainer.config import ModelConfig, TrainConfig
from trainer.models import registry

keras = tf.keras


BASELINES = ("lr", "fm", "dnn", "dcn", "dcnv2", "xdeepfm", "ipnn")
NUM_FIELDS, TABLE_SIZE, DIM = 4, 40, 3
HIDDEN = (16, 16)


def _ids(rows: int = 8) -> tf.Tensor:
    return tf.constant(np.random.default_rng(0).integers(0, TABLE_SIZE, size=(rows, NUM_FIELDS)), tf.int64)


def _build(name: str, l2: float = 1e-6) -> keras.Model:
    # HIDDEN is 16 wide: with PyTorch's init and 0.01-std embeddings a ReLU unit's sign is mostly its bias's, so a
    # layer of 4 was dead for every row about one build in 16 (a constant output; seen in a suite run).
    return registry.build_model(ModelConfig(name=name, embedding_dim=DIM, hidden_units=HIDDEN),
                                TrainConfig(l2_embedding=l2, l2_dense=l2), NUM_FIELDS, TABLE_SIZE)
