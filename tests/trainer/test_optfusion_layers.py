"""OptFusion layers: hand-computed values on 2-dimensional inputs, gradients, modes, configs, mixed precision."""
from __future__ import annotations

import math

import numpy as np
import pytest
import tensorflow as tf

from trainer.layers import torch_init
from trainer.layers.connection_gate import ConnectionGate, binarize_connections, straight_through_step
from trainer.layers.cross import CrossLayer
from trainer.layers.deep import DeepLayer
from trainer.layers.fusion_attention import AttentionFusion
from trainer.layers.fusion_concat import ConcatFusion
from trainer.layers.fusion_node import FusionNode
from trainer.layers.fusion_ops import OPERATIONS, fuse_product, fuse_sum

keras = tf.keras

X1 = np.array([[1.0, 2.0]], np.float32)
X2 = np.array([[3.0, -1.0]], np.float32)
X3 = np.array([[-2.0, 0.5]], np.float32)

# Concat weights used throughout: kernel (2·D, D) = (4, 2), bias (2,).
CONCAT_KERNEL = np.array([[1, 0], [0, 1], [1, 1], [2, -1]], np.float32)
CONCAT_BIAS = np.array([0.5, -0.5], np.float32)
# α = log([1, 2, 3, 4]) gives softmax(α) = [0.1, 0.2, 0.3, 0.4] for (sum, product, concat, attention).
ALPHA = np.log(np.array([[1, 2, 3, 4]], np.float32))


def _zero_scorers(n: int) -> list[np.ndarray]:
    """Attention weights with W1 = 0, b1 = 0: every score is 0, so every a_j is uniform (1/D each)."""
    return [np.zeros((n, 2, 2), np.float32), np.zeros((n, 2), np.float32), np.zeros((n, 2, 2), np.float32)]


@pytest.fixture(autouse=True)
def _clean_keras():
    keras.backend.clear_session()
    yield
    keras.mixed_precision.set_global_policy("float32")


# --- initialisers -----------------------------------------------------------------------------------------------

def test_torch_init_bounds():
    kernel = torch_init.kernel_initializer()((400, 3)).numpy()
    bias = torch_init.bias_initializer(400)((3000,)).numpy()
    for values in (kernel, bias):  # U(±1/sqrt(400)) = U(±0.05); with ≥1200 draws the extremes come close to it
        assert np.abs(values).max() <= 0.05
        assert np.abs(values).max() > 0.045
    xavier = torch_init.xavier_normal()((200, 300)).numpy()
    assert xavier.std() == pytest.approx(math.sqrt(2 / 500), rel=0.05)
    assert np.abs(xavier).max() > 2 * math.sqrt(2 / 500)  # not truncated at 2 std like Keras' GlorotNormal
    assert torch_init.l2_regularizer(0.0) is None
    assert float(torch_init.l2_regularizer(0.5)(tf.constant([2.0]))) == pytest.approx(0.25 * 4.0)  # λ/2·w²


# --- cross and deep ---------------------------------------------------------------------------------------------

def test_cross_layer_hand_computed():
    layer = CrossLayer()
    layer(X1, X2)
    assert [w.shape.as_list() for w in layer.weights] == [[2, 1], [2]]
    np.testing.assert_array_equal(layer.bias.numpy(), [0.0, 0.0])  # cross bias starts at zero
    layer.set_weights([np.array([[0.5], [2.0]], np.float32), np.array([0.1, 0.2], np.float32)])
    # x0 = [1, 2], x_in = [3, -1], w = [0.5, 2]: w·x_in = 1.5 - 2 = -0.5
    # y = -0.5·x0 + b + x_in = [-0.5, -1] + [0.1, 0.2] + [3, -1] = [2.6, -1.8]
    np.testing.assert_allclose(layer(X1, X2).numpy(), [[2.6, -1.8]], rtol=1e-6)


def test_deep_layer_hand_computed():
    layer = DeepLayer()
    layer(X1)
    assert [w.shape.as_list() for w in layer.weights] == [[2, 2], [2]]
    layer.set_weights([np.array([[1, -1], [2, 0.5]], np.float32), np.array([0.5, -1], np.float32)])
    # x W = [1·1 + 2·2, 1·(-1) + 2·0.5] = [5, 0]; + b = [5.5, -1]; ReLU -> [5.5, 0]
    np.testing.assert_allclose(layer(X1).numpy(), [[5.5, 0.0]], rtol=1e-6)


# --- fusion operations ------------------------------------------------------------------------------------------

def test_parameter_free_operations():
    assert OPERATIONS == ("sum", "product", "concat", "attention")
    np.testing.assert_allclose(fuse_sum([X1, X2, X3]).numpy(), [[2.0, 1.5]])  # [1+3-2, 2-1+0.5]
    np.testing.assert_allclose(fuse_product([X1, X2, X3]).numpy(), [[-6.0, -1.0]])  # [1·3·(-2), 2·(-1)·0.5]
    np.testing.assert_allclose(fuse_product([X1]).numpy(), X1)


def test_concat_fusion_hand_computed():
    layer = ConcatFusion()
    layer([X1, X2])
    assert [w.shape.as_list() for w in layer.weights] == [[4, 2], [2]]  # Linear(n·D → D)
    layer.set_weights([CONCAT_KERNEL, CONCAT_BIAS])
    # [x1; x2] = [1, 2, 3, -1]
    # y0 = 1·1 + 2·0 + 3·1 + (-1)·2 + 0.5 = 2.5;  y1 = 1·0 + 2·1 + 3·1 + (-1)·(-1) - 0.5 = 5.5
    np.testing.assert_allclose(layer([X1, X2]).numpy(), [[2.5, 5.5]], rtol=1e-6)
    # Keeping the kernel rows of input 1 only: y = x2 W[2:4] + b = [3 - 2 + 0.5, 3 + 1 - 0.5]
    sub = ConcatFusion()
    sub([X2])
    sub.set_weights(layer.weights_for_inputs([1]))
    np.testing.assert_allclose(sub([X2]).numpy(), [[1.5, 3.5]], rtol=1e-6)


def test_attention_fusion_hand_computed():
    layer = AttentionFusion()
    layer([X1, X2])
    assert [w.shape.as_list() for w in layer.weights] == [[2, 2, 2], [2, 2], [2, 2, 2]]
    hidden_kernel = np.stack([np.eye(2), [[1, 2], [0, 1]]]).astype(np.float32)
    hidden_bias = np.array([[0, 0], [-5, -1]], np.float32)
    score_kernel = np.stack([np.eye(2), [[1, 0], [0, -1]]]).astype(np.float32)
    layer.set_weights([hidden_kernel, hidden_bias, score_kernel])
    # input 0, x1 = [1, 2]: h = ReLU(x1 I) = [1, 2]; s = h I = [1, 2]; a = softmax([1, 2]) = [1, e]/(1 + e)
    #   a ⊙ x1 = [1/(1+e), 2e/(1+e)]
    # input 1, x2 = [3, -1]: x2 W1 = [3, 6 - 1] = [3, 5]; + b1 = [-2, 4]; ReLU -> [0, 4];
    #   s = [0·1 + 4·0, 0·0 + 4·(-1)] = [0, -4]; a = [1, e⁻⁴]/(1 + e⁻⁴); a ⊙ x2 = [3, -e⁻⁴]/(1 + e⁻⁴)
    e = math.e
    expected = [1 / (1 + e) + 3 / (1 + e ** -4), 2 * e / (1 + e) - e ** -4 / (1 + e ** -4)]
    np.testing.assert_allclose(layer([X1, X2]).numpy(), [expected], rtol=1e-6)
    # The scorer of input 1 alone reproduces its term.
    sub = AttentionFusion()
    sub([X2])
    sub.set_weights(layer.weights_for_inputs([1]))
    np.testing.assert_allclose(sub([X2]).numpy(), [[3 / (1 + e ** -4), -e ** -4 / (1 + e ** -4)]], rtol=1e-6)


def test_fusion_layers_have_independent_initial_weights():
    layer = AttentionFusion()
    layer([tf.ones([1, 8]), tf.ones([1, 8])])
    hidden_kernel, _, score_kernel = layer.get_weights()
    assert not np.allclose(hidden_kernel, score_kernel)
    assert np.abs(hidden_kernel).max() <= 1 / math.sqrt(8)  # U(±1/sqrt(D)), not U(±1/sqrt(n·D))
    assert np.abs(hidden_kernel).max() > 1 / math.sqrt(16)


# --- connection gate (straight-through estimator) --------------------------------------------------------------

def test_straight_through_step_forward_and_gradient():
    beta = tf.Variable([-1.5, 0.0, 2.5, 1e9, -1e-9])
    upstream = tf.constant([1.0, 2.0, 3.0, 4.0, 5.0])
    with tf.GradientTape() as tape:
        gate = straight_through_step(beta)
        loss = tf.reduce_sum(gate * upstream)
    np.testing.assert_array_equal(gate.numpy(), [0, 0, 1, 1, 0])  # exact 0/1, also for huge β
    np.testing.assert_array_equal(tape.gradient(loss, beta).numpy(), upstream.numpy())  # identity backward
    np.testing.assert_array_equal(binarize_connections([[0.5, -0.1], [0.0, 3.0]]), [[1, 0], [0, 1]])


def test_connection_gate_gates_and_passes_gradient_straight_through():
    gate = ConnectionGate(num_nodes=3)
    x_a, x_b = tf.constant([[1.0, 2.0]]), tf.constant([[-1.0, 0.5]])
    gate([x_a, x_b], row=2)
    np.testing.assert_array_equal(gate.beta.numpy(), np.full((3, 3), 0.5))  # init constant 0.5: all on
    gate.beta.assign([[0.5, 0.5, 0.5], [0.3, 0.5, 0.5], [-0.2, 0.7, 0.5]])
    u_a, u_b = tf.constant([[3.0, 4.0]]), tf.constant([[2.0, 2.0]])
    with tf.GradientTape() as tape:
        y_a, y_b = gate([x_a, x_b], row=2)
        loss = tf.reduce_sum(y_a * u_a) + tf.reduce_sum(y_b * u_b)
    np.testing.assert_array_equal(y_a.numpy(), [[0.0, 0.0]])  # β[2,0] = -0.2 -> gate 0
    np.testing.assert_array_equal(y_b.numpy(), x_b.numpy())  # β[2,1] = 0.7 -> gate 1
    # dL/dg_j = Σ u_j ⊙ x_j and dg/dβ = 1: dβ[2,0] = 3·1 + 4·2 = 11 (although the gate is 0), dβ[2,1] = -2 + 1 = -1
    expected = np.zeros((3, 3), np.float32)
    expected[2, 0], expected[2, 1] = 11.0, -1.0
    np.testing.assert_allclose(tape.gradient(loss, gate.beta).numpy(), expected)
    np.testing.assert_array_equal(gate.gates().numpy(), [[1, 1, 1], [1, 1, 1], [0, 1, 1]])


def test_connection_gate_rejects_bad_rows():
    gate = ConnectionGate(num_nodes=3)
    with pytest.raises(ValueError, match="candidate inputs"):
        gate([X1, X1, X1], row=2)
    with pytest.raises(ValueError, match="num_nodes"):
        ConnectionGate(num_nodes=1)


# --- fusion node ------------------------------------------------------------------------------------------------

def _set_mixture_weights(node: FusionNode) -> None:
    """α = log([1, 2, 3, 4]) (search mode), the concat weights above, zero attention scorers; two inputs."""
    if node.mode == "search":
        node.alpha.assign(ALPHA)
    node.concat.set_weights([CONCAT_KERNEL, CONCAT_BIAS])
    node.attention.set_weights(_zero_scorers(2))


def test_search_node_is_the_softmax_mixture():
    node = FusionNode("search")
    node([X1, X2])
    assert node.alpha.shape == (1, 4) and node.alpha.dtype == tf.float32
    _set_mixture_weights(node)
    np.testing.assert_allclose(node.mixture_weights().numpy(), [0.1, 0.2, 0.3, 0.4], rtol=1e-6)
    # sum = [4, 1]; product = [3, -2]; concat = [2.5, 5.5] (test above);
    # attention with zero scorers: a_j = [1/2, 1/2], so Σ a_j ⊙ x_j = (x1 + x2)/2 = [2, 0.5]
    # 0.1·[4, 1] + 0.2·[3, -2] + 0.3·[2.5, 5.5] + 0.4·[2, 0.5] = [0.4+0.6+0.75+0.8, 0.1-0.4+1.65+0.2] = [2.55, 1.55]
    with tf.GradientTape() as tape:
        y = node([X1, X2])
        loss = tf.reduce_sum(y)
    np.testing.assert_allclose(y.numpy(), [[2.55, 1.55]], rtol=1e-6)
    grad = tape.gradient(loss, node.alpha).numpy()
    # d/dα_k Σ_k p_k·s_k = p_k (s_k - Σ p s), s = per-op sums [5, 1, 8, 2.5], Σ p s = 0.5+0.2+2.4+1 = 4.1
    np.testing.assert_allclose(grad, [[0.1 * 0.9, 0.2 * -3.1, 0.3 * 3.9, 0.4 * -1.6]], rtol=1e-5)


def test_search_node_product_with_a_pruned_input_is_zero():
    node = FusionNode("search")
    node([X1, X2, X3])
    # Inputs arrive gated: a pruned x2 is a zero tensor, so the product term vanishes (reference search).
    node.alpha.assign([[-30.0, 30.0, -30.0, -30.0]])  # softmax ≈ [0, 1, 0, 0]
    np.testing.assert_allclose(node([X1, np.zeros_like(X2), X3]).numpy(), [[0.0, 0.0]], atol=1e-12)


def test_hard_node_picks_argmax_and_skips_pruned_inputs_in_the_product():
    node = FusionNode("hard", connections=[1, 0, 1], op_logits=[0.0, 3.0, 1.0, 2.0])
    assert node.op == "product"
    # Called with the kept inputs x1, x3 only: [1·(-2), 2·0.5] = [-2, 1] (not 0 as with the pruned x2 included)
    np.testing.assert_allclose(node([X1, X3]).numpy(), [[-2.0, 1.0]])
    assert node.weights == []
    hard_sum = FusionNode("hard", connections=[1, 1], op_logits=[5.0, 0.0, 0.0, 0.0])
    np.testing.assert_allclose(hard_sum([X1, X2]).numpy(), [[4.0, 1.0]])
    assert hard_sum.op == "sum" and hard_sum.weights == []  # a Hard "sum" node has no weights


def test_hard_node_builds_only_its_operation_for_kept_inputs():
    concat = FusionNode("hard", connections=[0, 1, 1], op="concat")
    concat([X2, X3])
    assert not hasattr(concat, "attention") and not hasattr(concat, "alpha")
    assert [w.shape.as_list() for w in concat.weights] == [[4, 2], [2]]  # 2 kept inputs, not 3
    attention = FusionNode("hard", connections=[1, 0, 1, 0], op="attention")
    attention([X1, X3])
    assert not hasattr(attention, "concat")
    assert [w.shape.as_list() for w in attention.weights] == [[2, 2, 2], [2, 2], [2, 2, 2]]  # no pruned scorer


def test_soft_node_equals_the_frozen_mixture():
    node = FusionNode("soft", connections=[1, 1], op_logits=ALPHA[0].tolist())
    node([X1, X2])
    assert not hasattr(node, "alpha") and len(node.trainable_weights) == 5  # concat 2 + attention 3, α frozen
    _set_mixture_weights(node)
    np.testing.assert_allclose(node([X1, X2]).numpy(), [[2.55, 1.55]], rtol=1e-6)  # same as the search node
    # Soft keeps the search product: with x2 pruned, the product term is 0 and the rest sees x1, x3 only:
    # 0.1·(x1 + x3) + 0.3·concat(x1, x3) + 0.4·(x1 + x3)/2, with x1 + x3 = [-1, 2.5] and [x1; x3] = [1, 2, -2, 0.5]:
    # concat = [1 + 0 - 2 + 1 + 0.5, 0 + 2 - 2 - 0.5 - 0.5] = [0.5, -1]
    # -> [-0.1 + 0.15 - 0.2, 0.25 - 0.3 + 0.5] = [-0.15, 0.45]
    pruned = FusionNode("soft", connections=[1, 0, 1], op_logits=ALPHA[0].tolist())
    pruned([X1, X3])
    assert pruned.uses == ("sum", "concat", "attention")
    _set_mixture_weights(pruned)
    np.testing.assert_allclose(pruned([X1, X3]).numpy(), [[-0.15, 0.45]], rtol=1e-6)


def test_node_with_every_input_pruned_computes_its_operations_on_zeros():
    """The reference runs a fully pruned node's operations on zero inputs: sum, product and attention give 0,
    concat gives its projection's bias. The derived node must compute what the supernet node computes."""
    bias = np.array([0.5, -1.0], np.float32)
    # Hard concat: the bias itself, the node's only weight.
    hard_concat = FusionNode("hard", connections=[0, 0], op="concat")
    hard_concat([X1])
    assert [w.shape.as_list() for w in hard_concat.weights] == [[2]]
    hard_concat.set_weights([bias])
    np.testing.assert_allclose(hard_concat([np.concatenate([X1, X2])]).numpy(), [[0.5, -1.0], [0.5, -1.0]])
    # Soft: softmax(α)_concat · b; with α = log(1, 2, 3, 4) the concat weight is 3/10.
    soft = FusionNode("soft", connections=[0, 0, 0], op_logits=ALPHA[0].tolist())
    soft([X1])
    soft.set_weights([bias])
    np.testing.assert_allclose(soft([X1]).numpy(), [[0.15, -0.3]], rtol=1e-6)
    # Anything else: zeros, no weights.
    for node in (FusionNode("hard", connections=[0, 0], op="attention"), FusionNode("hard", connections=[0], op="sum"),
                 FusionNode("hard", connections=[0, 0], op="product"), FusionNode("sum", connections=[0, 0])):
        np.testing.assert_array_equal(node([X1]).numpy(), [[0.0, 0.0]])
        assert node.weights == []


def test_fully_pruned_node_equals_the_supernet_node_with_the_same_gates():
    """A search node fed only zeros (every gate off) and the derived node inheriting from it agree."""
    search = FusionNode("search")
    zeros = [np.zeros_like(X1)] * 3
    search(zeros)
    search.alpha.assign(ALPHA)
    search.concat.bias.assign([0.25, 2.0])
    for derived in (FusionNode("soft", connections=[0, 0, 0], op_logits=ALPHA[0].tolist()),
                    FusionNode("hard", connections=[0, 0, 0], op="concat")):
        derived([X1])
        derived.inherit_from(search)
        expected = search(zeros).numpy() if derived.mode == "soft" else [[0.25, 2.0]]
        np.testing.assert_allclose(derived([X1]).numpy(), expected, rtol=1e-6)
    np.testing.assert_allclose(search(zeros).numpy(), [[0.075, 0.6]], rtol=1e-6)  # 3/10 · b


def test_sum_node_sums_gated_inputs():
    np.testing.assert_allclose(FusionNode("sum")([X1, X2, X3]).numpy(), [[2.0, 1.5]])


def test_fusion_node_validates_arguments():
    with pytest.raises(ValueError, match="mode must be"):
        FusionNode("mix")
    with pytest.raises(ValueError, match="needs op_logits"):
        FusionNode("soft")
    with pytest.raises(ValueError, match="needs op or op_logits"):
        FusionNode("hard")
    with pytest.raises(ValueError, match="op must be"):
        FusionNode("hard", op="max")
    with pytest.raises(ValueError, match="learned in mode 'search'"):
        FusionNode("search", connections=[1, 1])
    with pytest.raises(ValueError, match="expected 1 input"):
        FusionNode("hard", connections=[1, 0], op="sum")([X1, X2])


@pytest.mark.parametrize("layer", [
    CrossLayer(l2=1e-3), DeepLayer(units=3), ConcatFusion(), AttentionFusion(l2=0.1), ConnectionGate(9, 0.25),
    FusionNode("search"), FusionNode("soft", connections=[1, 0], op_logits=[1, 2, 3, 4]),
    FusionNode("hard", connections=[1, 1, 0], op="attention"), FusionNode("hard", connections=[0, 0], op="concat"),
], ids=lambda layer: type(layer).__name__ + "_" + getattr(layer, "mode", ""))
def test_config_round_trip(layer):
    restored = keras.layers.deserialize(keras.layers.serialize(layer))
    assert type(restored) is type(layer)
    assert restored.get_config() == layer.get_config()


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_layers_compute_in_the_policy_dtype(policy):
    keras.mixed_precision.set_global_policy(policy)
    compute = tf.float16 if policy == "mixed_float16" else tf.bfloat16
    node = FusionNode("search")
    gate = ConnectionGate(3)
    x = [tf.cast(X1, compute), tf.cast(X2, compute)]
    y = node(gate(x, row=2))
    assert y.dtype == compute
    assert node.alpha.dtype == tf.float32 and gate.beta.dtype == tf.float32
    assert node.concat.kernel.dtype == tf.float32  # variables stay float32
    assert CrossLayer()(x[0], x[1]).dtype == compute and DeepLayer()(x[0]).dtype == compute
