"""FusionNode in every mode (search, hard, soft, sum): hand-computed values, pruned inputs, validation; the
config round trip of the OptFusion layers and their mixed-precision compute dtype."""
from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from tests.trainer.layers.helpers import ALPHA, CONCAT_BIAS, CONCAT_KERNEL, X1, X2, X3, _zero_scorers
from trainer.layers.connection_gate import ConnectionGate
from trainer.layers.cross import CrossLayer
from trainer.layers.deep import DeepLayer
from trainer.layers.fusion_attention import AttentionFusion
from trainer.layers.fusion_concat import ConcatFusion
from trainer.layers.fusion_node import FusionNode

keras = tf.keras


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
