"""FieldEmbedding: global-id look-up and coupled L2."""
from __future__ import annotations

import numpy as np
import tensorflow as tf

from trainer.layers.field_embedding import FieldEmbedding


def test_field_embedding_looks_up_global_ids():
    layer = FieldEmbedding(table_size=4, embedding_dim=2)
    layer.build((None, 2))
    layer.set_weights([np.array([[0, 0], [1, 2], [3, 4], [5, 6]], np.float32)])
    assert layer(tf.constant([[1, 3], [2, 2]], tf.int64)).numpy().tolist() == [[[1, 2], [5, 6]], [[3, 4], [3, 4]]]


def test_coupled_l2_matches_pytorch_weight_decay_gradient():
    # PyTorch Adam(weight_decay=lambda) adds lambda * w to the gradient; the Keras regulariser must too.
    layer = FieldEmbedding(table_size=2, embedding_dim=1, l2=0.1)
    layer.build((None, 1))
    layer.set_weights([np.array([[2.0], [-4.0]], np.float32)])
    with tf.GradientTape() as tape:
        penalty = tf.add_n(layer.losses)
    gradient = tape.gradient(penalty, layer.embeddings)
    np.testing.assert_allclose(gradient.numpy(), [[0.2], [-0.4]], rtol=1e-6)
