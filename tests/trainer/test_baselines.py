"""Baseline CTR models (LR, FM, DNN, DCN, DCNv2, xDeepFM, IPNN): layers by hand, models built, saved and reloaded."""
from __future__ import annotations

import math

import numpy as np
import pytest
import tensorflow as tf

from pipeline import configs
from trainer.config import ModelConfig, TrainConfig
from trainer.layers.cin import CompressedInteraction
from trainer.layers.full_rank_cross import FullRankCross
from trainer.layers.inner_product import InnerProduct
from trainer.models import registry

keras = tf.keras

BASELINES = ("lr", "fm", "dnn", "dcn", "dcnv2", "xdeepfm", "ipnn")
NUM_FIELDS, TABLE_SIZE, DIM = 4, 40, 3
HIDDEN = (16, 16)


@pytest.fixture(autouse=True)
def _clean_keras():
    keras.backend.clear_session()
    yield


def _ids(rows: int = 8) -> tf.Tensor:
    return tf.constant(np.random.default_rng(0).integers(0, TABLE_SIZE, size=(rows, NUM_FIELDS)), tf.int64)


def _build(name: str, l2: float = 1e-6) -> keras.Model:
    # HIDDEN is 16 wide: with PyTorch's init and 0.01-std embeddings a ReLU unit's sign is mostly its bias's, so a
    # layer of 4 was dead for every row about one build in 16 (a constant output; seen in a suite run).
    return registry.build_model(ModelConfig(name=name, embedding_dim=DIM, hidden_units=HIDDEN),
                                TrainConfig(l2_embedding=l2, l2_dense=l2), NUM_FIELDS, TABLE_SIZE)


# --- layers -----------------------------------------------------------------------------------------------------

def test_cin_one_layer_by_hand():
    # x0 rows v0 = (1, 2), v1 = (3, -1); one map with W[i·F + j] = (1, 0, 0, 2), b = 0.5:
    # 1·(v0⊙v0) + 2·(v1⊙v1) + 0.5 = (1, 4) + (18, 2) + 0.5 = (19.5, 6.5); pooled over dim: 26.
    cin = CompressedInteraction((1,), activation="linear")
    cin.build((None, 2, 2))
    cin.set_weights([np.array([[1.0], [0.0], [0.0], [2.0]], np.float32), np.array([0.5], np.float32)])
    x0 = tf.constant([[[1.0, 2.0], [3.0, -1.0]]])
    assert cin(x0).numpy().tolist() == [[26.0]]
    # Row i·F + j holds x^{k-1}_i ⊙ x0_j: W = (0, 1, 0, 0) picks v0⊙v1 = (3, -2); + 0.5 = (3.5, -1.5), sum 2.
    cin.set_weights([np.array([[0.0], [1.0], [0.0], [0.0]], np.float32), np.array([0.5], np.float32)])
    assert cin(x0).numpy().tolist() == [[2.0]]


def test_cin_two_layers_feed_forward_and_relu_clips():
    # Layer 1 (relu): map a = relu(v0⊙v0 - v1⊙v1) = relu((1-9, 4-1)) = (0, 3); map b = v0⊙v1 = (3, -2) -> (3, 0).
    # Layer 2 (one map): a⊙v0 = (0, 6) with weight 1 -> relu((0, 6)) = (0, 6). Pooled: (3, 3 | 6).
    cin = CompressedInteraction((2, 1))
    cin.build((None, 2, 2))
    w1 = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0], [-1.0, 0.0]], np.float32)  # rows (0,0) (0,1) (1,0) (1,1)
    w2 = np.array([[1.0], [0.0], [0.0], [0.0]], np.float32)  # rows (a,v0) (a,v1) (b,v0) (b,v1)
    cin.set_weights([w1, np.zeros(2, np.float32), w2, np.zeros(1, np.float32)])
    assert cin(tf.constant([[[1.0, 2.0], [3.0, -1.0]]])).numpy().tolist() == [[3.0, 3.0, 6.0]]


def test_cin_weights_init_and_config():
    cin = CompressedInteraction((5, 5, 5), l2=0.1)
    out = cin(tf.ones([2, 5, 3]))
    assert out.shape == (2, 15)
    assert [w.shape.as_list() for w in cin.weights] == [[25, 5], [5], [25, 5], [5], [25, 5], [5]]
    assert np.abs(cin.weights[0].numpy()).max() <= 1 / math.sqrt(25)  # PyTorch Conv1d bound 1/sqrt(fan_in)
    assert len(cin.losses) == 6
    clone = CompressedInteraction.from_config(cin.get_config())
    assert clone.layer_sizes == (5, 5, 5) and clone.activation == "relu" and clone.l2 == 0.1
    with pytest.raises(ValueError, match="layer_sizes"):
        CompressedInteraction(())


def test_inner_product_of_three_fields():
    # v0 = (1, 2), v1 = (3, 4), v2 = (0, -1): <v0,v1> = 11, <v0,v2> = -2, <v1,v2> = -4.
    v = tf.constant([[[1.0, 2.0], [3.0, 4.0], [0.0, -1.0]]])
    assert InnerProduct()(v).numpy().tolist() == [[11.0, -2.0, -4.0]]
    with pytest.raises(ValueError, match="fields >= 2"):
        InnerProduct()(tf.ones([1, 1, 2]))


def test_full_rank_cross_by_hand():
    # x0 = (1, 2), x = (3, -1), W = [[1, 2], [0, 1]] (Dense kernel: W x = x @ kernel), b = (0.5, 0):
    # x @ kernel = (3, 5); + b = (3.5, 5); x0 ⊙ that = (3.5, 10); + x = (6.5, 9).
    cross = FullRankCross(l2=0.1)
    cross(tf.ones([1, 2]))  # TFRS builds its Dense on the first call
    cross.set_weights([np.array([[1.0, 2.0], [0.0, 1.0]], np.float32), np.array([0.5, 0.0], np.float32)])
    assert cross(tf.constant([[1.0, 2.0]]), tf.constant([[3.0, -1.0]])).numpy().tolist() == [[6.5, 9.0]]
    assert len(cross.losses) == 2  # coupled L2 on W and b
    clone = FullRankCross.from_config(cross.get_config())
    assert clone.l2 == 0.1 and clone.name == cross.name


def test_full_rank_cross_init_is_pytorch_linear():
    cross = FullRankCross()
    cross(tf.ones([2, 100]))
    kernel, bias = (w.numpy() for w in cross.weights)
    assert kernel.shape == (100, 100) and bias.shape == (100,)
    for values in (kernel, bias):  # U(±1/sqrt(100))
        assert np.abs(values).max() <= 0.1 and np.abs(values).max() > 0.09


# --- models -----------------------------------------------------------------------------------------------------

def test_registry_lists_every_baseline():
    assert set(BASELINES) | {"deepfm"} <= set(registry.LOGIT_BUILDERS)


@pytest.mark.parametrize("name", BASELINES)
def test_baseline_predicts_probabilities_and_survives_save_load(name, tmp_path):
    model = _build(name)
    ids = _ids()
    before = model({"feature": ids}).numpy()
    assert before.shape == (8, 1) and before.dtype == np.float32
    assert ((before > 0) & (before < 1)).all()
    if name != "lr":
        assert np.std(before) > 0  # random embeddings: the rows differ
    model.save(str(tmp_path / name), save_format="tf", save_traces=False)
    loaded = keras.models.load_model(str(tmp_path / name))
    np.testing.assert_array_equal(loaded({"feature": ids}).numpy(), before)


@pytest.mark.parametrize("name", BASELINES)
def test_every_weight_gets_a_gradient(name):
    model = _build(name)
    with tf.GradientTape() as tape:
        loss = keras.losses.BinaryCrossentropy()(tf.ones([8, 1]), model({"feature": _ids()})) + tf.add_n(model.losses)
    gradients = tape.gradient(loss, model.trainable_weights)
    assert model.trainable_weights and all(g is not None for g in gradients)


def test_lr_with_zero_weights_outputs_sigmoid_of_bias():
    model = _build("lr")
    layer = model.get_layer("first_order")
    assert not layer.weights_per_id.numpy().any()  # zero-initialised
    layer.bias.assign([0.7])
    np.testing.assert_allclose(model({"feature": _ids()}).numpy(), np.full((8, 1), 1 / (1 + math.exp(-0.7))),
                               rtol=1e-6)


def test_fm_is_first_order_plus_pairwise_dot_products():
    model = _build("fm")
    rng = np.random.default_rng(1)
    w = rng.normal(size=(TABLE_SIZE, 1)).astype(np.float32)
    model.get_layer("first_order").set_weights([w, np.array([0.3], np.float32)])
    table = model.get_layer("embedding").embeddings.numpy()
    ids = _ids().numpy()
    v = table[ids]  # [batch, F, E]
    pairs = sum((v[:, i] * v[:, j]).sum(-1) for i in range(NUM_FIELDS) for j in range(i + 1, NUM_FIELDS))
    logit = w[ids, 0].sum(1) + 0.3 + pairs
    np.testing.assert_allclose(model({"feature": ids}).numpy()[:, 0], 1 / (1 + np.exp(-logit)), rtol=1e-5)


def test_cross_networks_have_three_layers_of_the_right_rank():
    width = NUM_FIELDS * DIM
    dcn = _build("dcn")
    assert [dcn.get_layer(f"cross_{i}").kernel.shape.as_list() for i in range(3)] == [[width, 1]] * 3
    dcnv2 = _build("dcnv2")
    kernels = [w for i in range(3) for w in dcnv2.get_layer(f"cross_{i}").trainable_weights]
    assert [w.shape.as_list() for w in kernels] == [[width, width], [width]] * 3  # full-rank W_l, b_l
    assert dcnv2.get_layer("output").kernel.shape.as_list() == [width + HIDDEN[-1], 1]  # concat(x_3, MLP) -> Linear


def test_xdeepfm_cin_has_num_fields_maps_per_layer_and_ipnn_feeds_products():
    assert _build("xdeepfm").get_layer("cin").layer_sizes == (NUM_FIELDS,) * 3
    ipnn = _build("ipnn")
    assert ipnn.get_layer("deep_0").kernel.shape.as_list() == [NUM_FIELDS * DIM + 6, HIDDEN[0]]  # F·E + F(F-1)/2


@pytest.mark.parametrize("name", BASELINES)
def test_coupled_l2_reaches_the_loss_only_when_set(name):
    assert _build(name, l2=1e-6).losses
    assert not _build(name, l2=0.0).losses


# --- presets ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dataset, model, lr, l2", [
    ("criteo", "xdeepfm", 3e-3, 3e-7),
    ("avazu", "dcn", 1e-4, 3e-6),
    ("kdd12", "dcnv2", 3e-5, 1e-7),
    ("criteo", "ipnn", 3e-3, 3e-6),
    ("avazu", "deepfm", 3e-4, 3e-6),
    ("criteo", "dnn", 1e-3, 3e-6),  # the DNN baseline takes hyperparam.md's FNN row
])
def test_presets_use_the_reference_rates_at_both_sizes(dataset, model, lr, l2):
    for size, batch in (("full", 4096), ("small", 256)):  # no learning-rate floor on the samples
        preset = configs.trainer_preset(dataset, model, size)
        assert preset.model.name == model and preset.train.batch_size == batch
        assert (preset.train.learning_rate, preset.train.l2_embedding, preset.train.l2_dense) == (lr, l2, l2)
        assert configs.lr_l2_source(dataset, model).startswith("algorithms.md §1.8")


def test_presets_are_three_d_wide_blocks_and_the_test_preset_is_tiny():
    from trainer.models.dnn import D_WIDE
    small = configs.trainer_preset("avazu", "dcn", "small")
    assert small.model.hidden_units == (D_WIDE,) * 3 and small.model.embedding_dim == 40
    assert configs.trainer_preset("kdd12", "dnn", "full").model.embedding_dim == 16
    test = configs.trainer_preset("kdd12", "ipnn", "test")
    assert (test.model.embedding_dim, test.model.hidden_units, test.train.learning_rate, test.train.l2_dense) == (
        4, (16,), 3e-3, 0.0)


@pytest.mark.parametrize("name", ["dnn", "deepfm", "dcn", "dcnv2", "xdeepfm", "ipnn"])
def test_d_wide_is_resolved_from_the_field_count_when_the_model_is_built(name):
    from trainer.models.dnn import D_WIDE
    model = registry.build_model(ModelConfig(name=name, embedding_dim=DIM, hidden_units=(D_WIDE, D_WIDE, 5)),
                                 TrainConfig(), NUM_FIELDS, TABLE_SIZE)
    d = NUM_FIELDS * DIM
    assert [model.get_layer(f"deep_{i}").units for i in range(3)] == [d, d, 5]


def test_grid_models_and_frappe_take_the_grid_choice():
    assert configs.learning_rate_and_l2("criteo", "lr") == configs.GRID_CHOICE_LR_L2["lr"]["criteo"]
    for model in configs.BASELINES:  # hyperparam.md has no Frappe column: every baseline is chosen on the grid
        lr, l2 = configs.learning_rate_and_l2("frappe", model)
        assert lr in configs.BASELINE_GRID["learning_rate"] and l2 in configs.BASELINE_GRID["l2"]
        assert configs.lr_l2_source("frappe", model).startswith("grid choice")
    for model in ("lr", "fm"):
        for dataset in ("criteo", "avazu", "kdd12"):
            lr, l2 = configs.learning_rate_and_l2(dataset, model)
            assert lr in configs.BASELINE_GRID["learning_rate"] and l2 in configs.BASELINE_GRID["l2"]
    # Models of neither table (OptFusion, ResFusion families) take DeepFM's values, Frappe's included.
    assert configs.learning_rate_and_l2("kdd12", "optfusion-hard") == (3e-5, 1e-5)
    assert configs.learning_rate_and_l2("frappe", "resfusion") == configs.learning_rate_and_l2("frappe", "deepfm")
    assert configs.learning_rate_and_l2("tfrecord", "dcn") == (2e-3, 3e-6)  # unknown TFRecords: Criteo's column


def test_baseline_grid_spans_lr_and_l2():
    grid = configs.baseline_grid("criteo", "fm", "small")
    assert [(c.train.learning_rate, c.train.l2_embedding, c.train.l2_dense) for c in grid] == [
        (lr, l2, l2) for lr in (3e-4, 1e-3, 3e-3) for l2 in (0.0, 1e-6)]
    assert {c.model.name for c in grid} == {"fm"} and {c.train.batch_size for c in grid} == {256}
