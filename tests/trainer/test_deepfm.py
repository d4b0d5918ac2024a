"""DeepFM building blocks against hand-computed values, and a save/load round trip."""
import numpy as np
import pytest
import tensorflow as tf

from trainer.config import ModelConfig, TrainConfig
from trainer.layers.factorization_machine import FactorizationMachine
from trainer.layers.field_embedding import FieldEmbedding
from trainer.layers.first_order import FirstOrder
from trainer.models import registry

keras = tf.keras


def test_field_embedding_looks_up_global_ids():
    layer = FieldEmbedding(table_size=4, embedding_dim=2)
    layer.build((None, 2))
    layer.set_weights([np.array([[0, 0], [1, 2], [3, 4], [5, 6]], np.float32)])
    assert layer(tf.constant([[1, 3], [2, 2]], tf.int64)).numpy().tolist() == [[[1, 2], [5, 6]], [[3, 4], [3, 4]]]


def test_factorization_machine_is_the_sum_of_pairwise_dot_products():
    # Three fields: v1 = (1, 2), v2 = (3, 4), v3 = (0, -1).
    # <v1,v2> = 3 + 8 = 11; <v1,v3> = -2; <v2,v3> = -4; total 5.
    v = tf.constant([[[1.0, 2.0], [3.0, 4.0], [0.0, -1.0]]])
    assert FactorizationMachine()(v).numpy().tolist() == [[5.0]]


def test_first_order_sums_one_weight_per_id_plus_bias():
    layer = FirstOrder(table_size=3)
    layer.build((None, 2))
    layer.set_weights([np.array([[0.5], [-1.0], [2.0]], np.float32), np.array([0.25], np.float32)])
    # ids (0, 2): 0.5 + 2.0 + 0.25 = 2.75; ids (1, 1): -1 - 1 + 0.25 = -1.75.
    assert layer(tf.constant([[0, 2], [1, 1]], tf.int64)).numpy().tolist() == [[2.75], [-1.75]]


def test_coupled_l2_matches_pytorch_weight_decay_gradient():
    # PyTorch Adam(weight_decay=lambda) adds lambda * w to the gradient; the Keras regulariser must too.
    layer = FieldEmbedding(table_size=2, embedding_dim=1, l2=0.1)
    layer.build((None, 1))
    layer.set_weights([np.array([[2.0], [-4.0]], np.float32)])
    with tf.GradientTape() as tape:
        penalty = tf.add_n(layer.losses)
    gradient = tape.gradient(penalty, layer.embeddings)
    np.testing.assert_allclose(gradient.numpy(), [[0.2], [-0.4]], rtol=1e-6)


def test_deepfm_save_and_load_give_identical_predictions(tmp_path):
    model = registry.build_model(ModelConfig(embedding_dim=3, hidden_units=(8, 4)), TrainConfig(), num_fields=5,
                                 table_size=50)
    ids = tf.constant(np.random.default_rng(0).integers(0, 50, size=(16, 5)), tf.int64)
    before = model({"feature": ids}).numpy()
    assert before.shape == (16, 1) and ((before > 0) & (before < 1)).all()
    model.save(str(tmp_path / "m"), save_format="tf")
    loaded = keras.models.load_model(str(tmp_path / "m"))
    np.testing.assert_array_equal(loaded({"feature": ids}).numpy(), before)


def test_unknown_model_name_lists_the_choices():
    with pytest.raises(ValueError, match="unknown model 'nope'; choose one of .*deepfm"):
        registry.build_model(ModelConfig(name="nope"), TrainConfig(), 2, 10)


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
