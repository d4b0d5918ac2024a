"""OptFusion supernet, derived architecture and retrain models: topology, sizes, equivalences, save/load.

The equivalence tests compare two computations on the same (random) weights, never against numbers pasted from
a run: a derived model that inherits the supernet's weights must compute what the supernet computes with the
same gates, whenever the reference's semantics make them equal.
"""
from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from trainer.layers.connection_gate import ConnectionGate
from trainer.layers.cross import CrossLayer
from trainer.layers.deep import DeepLayer
from trainer.layers.fusion_node import FusionNode
from trainer.layers.fusion_ops import OPERATIONS
from trainer.optfusion import network
from trainer.optfusion.network import Architecture

keras = tf.keras

TABLE, FIELDS, DIM = 20, 2, 2  # D = 4
IDS = np.array([[0, 11], [3, 15], [7, 19], [5, 10]], np.int64)

# β entries pushed below 0 (consumer row, producer column), see network.node_names for the indices:
PRUNED = [
    (1, 0),  # cross_0 <- emb: cross_0 sees a zero input (all of its candidates pruned)
    (4, 0),  # cross_2 <- emb
    (5, 2),  # deep_2 <- cross_1
    (8, 3),  # output <- deep_1
    (8, 7),  # output <- deep_3: deep_3 has no other consumer, so it is dead in the derived model
]
# Chosen operation per op node (cross_1, deep_1, cross_2, deep_2, cross_3, deep_3, output). "product" only where
# no input is pruned, since search and Hard retrain treat a pruned product input differently (§1.5, item 4).
OPS = ["attention", "concat", "sum", "concat", "product", "product", "attention"]


@pytest.fixture(autouse=True)
def _float32_policy():
    yield
    keras.mixed_precision.set_global_policy("float32")


def _randomize(model: keras.Model, seed: int = 0) -> None:
    """Weights ~ N(0, 0.5²) everywhere except β, so that every path carries a visible signal."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if not isinstance(layer, ConnectionGate):
            layer.set_weights([rng.normal(0, 0.5, w.shape).astype(np.float32) for w in layer.get_weights()])


def _searched_supernet(alpha_scale: float = 1.0, fusion_mode: str = "search") -> keras.Model:
    """A tiny supernet with PRUNED gates off and α peaked (by alpha_scale) on OPS."""
    supernet = network.build_supernet(TABLE, FIELDS, DIM, fusion_mode=fusion_mode)
    _randomize(supernet)
    gate = supernet.get_layer(network.GATE_LAYER)
    beta = gate.beta.numpy()
    for row, col in PRUNED:
        beta[row, col] = -0.25
    gate.beta.assign(beta)
    if fusion_mode == "search":
        names = network.node_names()
        for row, op in zip(network.op_rows(), OPS):
            logits = np.zeros((1, 4), np.float32)
            logits[0, OPERATIONS.index(op)] = alpha_scale
            supernet.get_layer(f"fuse_{names[row]}").alpha.assign(logits)
    return supernet


def _predict(model: keras.Model) -> np.ndarray:
    return model(IDS, training=False).numpy()


@pytest.fixture(scope="module")
def searched() -> keras.Model:
    """The searched supernet shared by the tests that only read it (building one takes about a second)."""
    return _searched_supernet()


@pytest.fixture(scope="module")
def arch(searched: keras.Model) -> Architecture:
    return Architecture.derive(searched)


# --- topology ---------------------------------------------------------------------------------------------------

def test_topology_matches_the_candidate_table():
    assert network.node_names() == ("emb", "cross_0", "cross_1", "deep_1", "cross_2", "deep_2", "cross_3",
                                    "deep_3", "output")
    assert network.candidate_inputs(1) == (0,)
    assert network.candidate_inputs(2) == network.candidate_inputs(3) == (0, 1)
    assert network.candidate_inputs(4) == network.candidate_inputs(5) == (0, 1, 2, 3)
    assert network.candidate_inputs(6) == network.candidate_inputs(7) == (0, 1, 2, 3, 4, 5)
    assert network.candidate_inputs(8) == tuple(range(8))
    assert network.candidate_mask().sum() == 33  # 1 + 2·2 + 2·4 + 2·6 + 8
    assert network.op_rows() == (2, 3, 4, 5, 6, 7, 8)  # 7 operation choices


def test_supernet_structure_and_variable_groups():
    supernet = network.build_supernet(TABLE, FIELDS, DIM)
    gate = supernet.get_layer("connection_gate")
    np.testing.assert_array_equal(gate.beta.numpy(), np.full((9, 9), 0.5))
    nodes = [layer for layer in supernet.layers if isinstance(layer, FusionNode)]
    assert [n.name for n in nodes if n.mode == "search"] == [f"fuse_{name}" for name in network.node_names()[2:]]
    assert supernet.get_layer("fuse_cross_0").mode == "sum"  # cross_0 has no operation choice
    assert [n.attention.num_inputs for n in nodes if n.mode == "search"] == [2, 2, 4, 4, 6, 6, 8]
    logit = _predict(supernet)
    assert logit.shape == (4, 1) and logit.dtype == np.float32
    groups = network.variable_groups(supernet)
    assert [v.name for v in groups["emb"]] == ["embedding/embeddings:0"]
    assert [v.name for v in groups["arch"]] == ["connection_gate/beta:0"] + [f"{n.name}/alpha:0" for n in nodes[1:]]
    assert len(groups["nn"]) == 4 * 2 + 3 * 2 + 7 * 5 + 2  # cross (w, b), deep (W, b), concat + attention, output
    assert len(supernet.trainable_weights) == sum(len(g) for g in groups.values())


def test_supernet_gradient_reaches_every_candidate_gate_and_alpha(searched):
    supernet = searched
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(keras.losses.binary_crossentropy(tf.ones([4, 1]), supernet(IDS), from_logits=True))
    groups = network.variable_groups(supernet)
    grads = tape.gradient(loss, groups["arch"])
    beta_grad = grads[0].numpy()
    mask = network.candidate_mask()
    assert (beta_grad[mask == 0] == 0).all()  # the unused entries of the 9 × 9 matrix get nothing
    # deep_3 (row 7) only feeds the output through a closed gate, so nothing flows back into its input gates;
    # every other candidate gate gets a gradient, the closed ones too (the straight-through backward is identity).
    assert (beta_grad[7] == 0).all()
    mask[7] = 0
    assert (beta_grad[mask == 1] != 0).all()
    assert beta_grad[8, 7] != 0 and beta_grad[8, 3] != 0
    alpha_grads = [np.abs(g.numpy()).sum() for g in grads[1:]]  # cross_1, deep_1, …, deep_3, output
    assert alpha_grads[5] == 0 and all(g > 0 for i, g in enumerate(alpha_grads) if i != 5)  # deep_3 is dead


def test_supernet_parameter_counts_at_criteo_dimensions():
    # Criteo: 39 fields × 40 = D 1560; a 10-row table so that only the network counts. Built in a graph, so the
    # 241M weights are declared but never initialised.
    with tf.Graph().as_default():
        supernet = network.build_supernet(10, 39, 40)
        counts = {"cross_deep_fc": 0, "concat": 0, "attention": 0, "arch": 0}
        for layer in supernet.layers:
            if isinstance(layer, (CrossLayer, DeepLayer, keras.layers.Dense)):
                counts["cross_deep_fc"] += layer.count_params()
            elif isinstance(layer, FusionNode) and layer.mode == "search":
                counts["concat"] += layer.concat.count_params()
                counts["attention"] += layer.attention.count_params()
                counts["arch"] += int(np.prod(layer.alpha.shape))
            elif isinstance(layer, ConnectionGate):
                counts["arch"] += layer.count_params()
        embedding = supernet.get_layer("embedding").count_params()
        total = supernet.count_params()
    d2 = 1560 ** 2  # 2,433,600
    # cross_0..cross_3: 4·(D + D); deep_1..3: 3·(D² + D); output Linear(D→1): D + 1
    assert counts["cross_deep_fc"] == 4 * 2 * 1560 + 3 * (d2 + 1560) + 1561 == 7_319_521
    # concat at 7 nodes with n = 2, 2, 4, 4, 6, 6, 8 inputs: Σ (n·D² + D) = 32·D² + 7·D
    assert counts["concat"] == 32 * d2 + 7 * 1560 == 77_886_120
    # attention: one scorer (D² + D) + (D²) per input, 32 inputs: 64·D² + 32·D
    assert counts["attention"] == 64 * d2 + 32 * 1560 == 155_800_320
    assert counts["arch"] == 81 + 7 * 4
    non_embedding = total - embedding
    assert non_embedding == 7_319_521 + 77_886_120 + 155_800_320 + 109
    # The table of algorithms.md §1.6, to 3 significant digits (the 109 architecture parameters do not show):
    assert [round(counts[k] / 1e6, 2) for k in ("cross_deep_fc",)] == [7.32]
    assert round(counts["concat"] / 1e6, 1) == 77.9 and round(counts["attention"] / 1e6, 1) == 155.8
    assert round(non_embedding / 1e6, 1) == 241.0


# --- deriving the architecture ----------------------------------------------------------------------------------

def test_derive_prunes_gates_pushed_below_zero_and_takes_argmax_ops(searched):
    arch = Architecture.derive(searched, best_val_auc=0.8)
    expected = network.candidate_mask()
    for row, col in PRUNED:
        expected[row, col] = 0
    np.testing.assert_array_equal(arch.connections, expected)
    assert arch.ops == OPS
    assert arch.op_logits[0] == [0.0, 0.0, 0.0, 1.0]
    assert arch.best_val_auc == 0.8
    assert arch.live_nodes() == [0, 1, 2, 3, 4, 5, 6, 8]  # deep_3 (7) feeds nothing kept
    untouched = Architecture.derive(network.build_supernet(TABLE, FIELDS, DIM))
    np.testing.assert_array_equal(untouched.connections, network.candidate_mask())  # β = 0.5: all kept


def test_architecture_validation(arch):
    bad = [row[:] for row in arch.connections]
    bad[2][3] = 1  # cross_1 <- deep_1 is not a candidate (same block)
    with pytest.raises(ValueError, match="outside the candidate"):
        Architecture(bad, arch.op_logits, arch.ops)
    with pytest.raises(ValueError, match="ops must be"):
        Architecture(arch.connections, arch.op_logits, arch.ops[:-1] + ["max"])
    with pytest.raises(ValueError, match="N × N"):
        Architecture([[0] * 4] * 4, arch.op_logits, arch.ops)


# --- retrain models ---------------------------------------------------------------------------------------------

def test_soft_retrain_inherits_the_supernet_exactly(searched, arch):
    # Soft = frozen softmax(α) mixture with the same gates: with inherited weights it is the supernet itself.
    supernet = searched
    soft = network.build_retrain_model(arch, TABLE, FIELDS, DIM, "soft")
    copied = network.inherit_weights(supernet, soft)
    assert "deep_3" not in copied and "fuse_deep_3" not in [layer.name for layer in soft.layers]
    assert all("alpha" not in v.name and "beta" not in v.name for v in soft.weights)
    np.testing.assert_allclose(_predict(soft), _predict(supernet), rtol=1e-5, atol=1e-6)


def test_hard_retrain_builds_only_what_it_uses_and_matches_a_one_hot_supernet():
    # With α = 60·onehot the supernet mixture is the chosen op up to e^-60; Hard retrain keeps only that op.
    supernet = _searched_supernet(alpha_scale=60.0)
    arch = Architecture.derive(supernet)
    hard = network.build_retrain_model(arch, TABLE, FIELDS, DIM, "hard")
    network.inherit_weights(supernet, hard)
    names = {layer.name for layer in hard.layers}
    assert "deep_3" not in names and "fuse_deep_3" not in names and "connection_gate" not in names
    assert hard.get_layer("fuse_cross_2").weights == []  # "sum"
    assert hard.get_layer("fuse_cross_0").weights == []
    deep_2 = hard.get_layer("fuse_deep_2")  # concat over 3 kept of 4 candidates
    assert deep_2.op == "concat" and not hasattr(deep_2, "attention")
    assert deep_2.concat.kernel.shape == (3 * 4, 4)
    output = hard.get_layer("fuse_output")  # attention over 6 kept of 8 candidates
    assert output.attention.hidden_kernel.shape == (6, 4, 4) and not hasattr(output, "concat")
    np.testing.assert_allclose(_predict(hard), _predict(supernet), rtol=1e-5, atol=1e-6)


def test_sum_retrain_matches_sum_supernet():
    supernet = _searched_supernet(fusion_mode="sum")
    arch = Architecture.derive(supernet)
    assert arch.ops == ["sum"] * 7
    model = network.build_retrain_model(arch, TABLE, FIELDS, DIM, "sum")
    network.inherit_weights(supernet, model)
    assert not [layer for layer in model.layers if isinstance(layer, FusionNode) and layer.weights]
    np.testing.assert_allclose(_predict(model), _predict(supernet), rtol=1e-5, atol=1e-6)


def test_architecture_json_round_trip_reproduces_the_derived_model(searched):
    supernet = searched
    arch = Architecture.derive(supernet, best_val_auc=0.8123)
    restored = Architecture.from_json(arch.to_json())
    assert restored == arch
    for mode in ("hard", "soft"):
        first = network.build_retrain_model(arch, TABLE, FIELDS, DIM, mode)
        second = network.build_retrain_model(restored, TABLE, FIELDS, DIM, mode)
        assert [(layer.name, type(layer)) for layer in first.layers] == [
            (layer.name, type(layer)) for layer in second.layers]
        assert [w.shape for w in first.weights] == [w.shape for w in second.weights]
        network.inherit_weights(supernet, first)
        network.inherit_weights(supernet, second)
        np.testing.assert_array_equal(_predict(first), _predict(second))


# The Hard model is saved as the pipeline will export it, with traced call functions. The supernet and the Soft
# model are saved without traces only to keep this file fast (on 2 busy cores a traced save takes 5-15 s); their
# traced saves work too and reload to identical predictions.
@pytest.mark.parametrize("kind, save_traces", [("supernet", False), ("hard", True), ("soft", False)])
def test_save_and_load_give_identical_predictions(kind, save_traces, searched, arch, tmp_path):
    model = searched
    if kind != "supernet":
        model = network.build_retrain_model(arch, TABLE, FIELDS, DIM, kind)
        network.inherit_weights(searched, model)
    expected = _predict(model)
    model.save(str(tmp_path / kind), save_format="tf", save_traces=save_traces)
    loaded = keras.models.load_model(str(tmp_path / kind))
    assert [(lay.name, type(lay)) for lay in loaded.layers] == [(lay.name, type(lay)) for lay in model.layers]
    assert [layer.get_config() for layer in loaded.layers] == [layer.get_config() for layer in model.layers]
    np.testing.assert_array_equal(_predict(loaded), expected)
    if kind == "supernet":
        assert Architecture.derive(loaded) == Architecture.derive(model)


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_models_output_float32(policy, searched, arch):
    reference = searched
    keras.mixed_precision.set_global_policy(policy)
    for model in (network.build_supernet(TABLE, FIELDS, DIM),
                  network.build_retrain_model(arch, TABLE, FIELDS, DIM, "soft")):
        network.inherit_weights(reference, model)  # supernet -> supernet also copies β and α
        logit = model(IDS)
        assert logit.dtype == tf.float32
        assert model.get_layer("output").compute_dtype != "float32"
        np.testing.assert_allclose(logit.numpy(), _predict(reference), rtol=0.05, atol=0.05)


# --- real rows: a searched supernet and the networks derived from it ------------------------------------------

def _frappe_tfrecords(split: str, rows: int) -> tuple[np.ndarray, np.ndarray]:
    """(ids int64 [rows, 10], labels float32 [rows, 1]) from the reference's Frappe TFRecords in shared/data."""
    import glob
    import os

    from tests.e2e.conftest import DATA_DIR, REQUIRE_DATA
    files = sorted(glob.glob(os.path.join(DATA_DIR, "optfusion_tfrecords", "frappe", f"{split}_*.tfrecord")))
    if not files:
        message = f"no optfusion_tfrecords/frappe/{split}_*.tfrecord under {DATA_DIR} (set FUSIONCTR_DATA_DIR)"
        if REQUIRE_DATA:
            pytest.fail(message)
        pytest.skip(message)
    spec = {"feature": tf.io.FixedLenFeature([10], tf.int64), "label": tf.io.FixedLenFeature([1], tf.float32)}
    batch = next(iter(tf.data.TFRecordDataset(files).batch(rows).map(lambda x: tf.io.parse_example(x, spec))))
    return batch["feature"].numpy(), batch["label"].numpy()


def test_derived_networks_compute_the_searched_supernet_on_real_rows_with_a_fully_pruned_node():
    """Search briefly on real Frappe rows (the reference's TFRecords), prune every input of cross_2 while deep_2,
    cross_3 and the output still read it, then derive: Soft (frozen mixture) is the supernet itself, and Hard is
    the supernet whose α is one-hot (no product at a node with a pruned input, where Hard differs by design)."""
    from trainer.optfusion import fit, optim
    ids, labels = _frappe_tfrecords("train", 512)
    table = 5263  # max id + 1 (optfusion_tfrecords/frappe/meta.json)
    keras.utils.set_random_seed(3)
    supernet = network.build_supernet(table, 10, 4)  # D = 40
    groups = network.variable_groups(supernet)
    settings = {"emb": optim.GroupSettings(1e-2), "nn": optim.GroupSettings(1e-2), "arch": optim.GroupSettings(1e-1)}
    data = tf.data.Dataset.from_tensor_slices((ids, labels)).batch(64)
    fit.fit(optim.make_train_step(supernet, groups, settings), data, data.take(2), epochs=1, verbose=0)
    gate = supernet.get_layer(network.GATE_LAYER)
    beta = gate.beta.numpy()
    beta[4, :4] = -0.25  # cross_2 <- emb, cross_0, cross_1, deep_1: all pruned
    beta[5, :4] = np.abs(beta[5, :4]) + 0.1  # deep_2 keeps its inputs
    beta[6:9, 4] = 0.25  # cross_3, deep_3 and the output read cross_2
    gate.beta.assign(beta)
    rows, _ = _frappe_tfrecords("test", 256)

    arch = Architecture.derive(supernet)
    assert arch.node_connections(4) == [0, 0, 0, 0] and 4 in arch.live_nodes()
    soft = network.build_retrain_model(arch, table, 10, 4, "soft")
    network.inherit_weights(supernet, soft)
    np.testing.assert_allclose(soft(rows).numpy(), supernet(rows).numpy(), rtol=1e-4, atol=1e-5)

    names = network.node_names()
    for row, op in zip(network.op_rows(), ["attention", "sum", "concat", "concat", "attention", "sum", "concat"]):
        logits = np.zeros((1, 4), np.float32)
        logits[0, OPERATIONS.index(op)] = 60.0  # softmax = one-hot up to e^-60
        supernet.get_layer(f"fuse_{names[row]}").alpha.assign(logits)
    arch = Architecture.derive(supernet)
    hard = network.build_retrain_model(arch, table, 10, 4, "hard")
    network.inherit_weights(supernet, hard)
    assert [w.name.split("/")[-1] for w in hard.get_layer("fuse_cross_2").weights] == ["pruned_bias:0"]
    np.testing.assert_allclose(hard(rows).numpy(), supernet(rows).numpy(), rtol=1e-4, atol=1e-5)
