"""The DNN tower (dnn.py, also DeepFM's): D_WIDE widths, PyTorch's nn.Linear init and coupled L2."""
from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from tests.trainer.models.helpers import DIM, NUM_FIELDS, TABLE_SIZE
from trainer.config import ModelConfig, TrainConfig
from trainer.models import registry


@pytest.mark.parametrize("name", ["dnn", "deepfm", "dcn", "dcnv2", "xdeepfm", "ipnn"])
def test_d_wide_is_resolved_from_the_field_count_when_the_model_is_built(name):
    from trainer.models.dnn import D_WIDE
    model = registry.build_model(ModelConfig(name=name, embedding_dim=DIM, hidden_units=(D_WIDE, D_WIDE, 5)),
                                 TrainConfig(), NUM_FIELDS, TABLE_SIZE)
    d = NUM_FIELDS * DIM
    assert [model.get_layer(f"deep_{i}").units for i in range(3)] == [d, d, 5]


@pytest.mark.parametrize("name", ["dnn", "deepfm"])
def test_deep_tower_is_initialised_and_regularised_as_pytorch_nn_linear(name):
    # DeepFM's tower is dnn.py's (algorithms.md §1.11): kernel and bias ~ U(±1/sqrt(fan_in)), coupled L2 λ on both.
    # Keras' Dense default (Glorot kernel, zero bias, no bias L2) fails every assertion here.
    l2 = 0.1
    model = registry.build_model(ModelConfig(name=name, embedding_dim=3, hidden_units=(64, 64)),
                                 TrainConfig(l2_embedding=0.0, l2_dense=l2), num_fields=5, table_size=50)
    for layer_name, fan_in in (("deep_0", 15), ("deep_1", 64), ("deep_out", 64)):
        kernel, bias = model.get_layer(layer_name).get_weights()
        bound = 1.0 / np.sqrt(fan_in)
        assert np.abs(kernel).max() <= bound and np.abs(bias).max() <= bound
        assert np.abs(bias).min() > 0  # drawn, not zeros
    deep_weights = [w for layer in ("deep_0", "deep_1", "deep_out") for w in model.get_layer(layer).get_weights()]
    expected_penalty = l2 / 2 * sum(float(np.sum(w.astype(np.float64) ** 2)) for w in deep_weights)
    np.testing.assert_allclose(float(tf.add_n(model.losses)), expected_penalty, rtol=1e-5)
