"""One OptFusion fusion node: combines a node's inputs with one or a mixture of four operations (§1.2–§1.5)."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import tensorflow as tf

from trainer.layers import torch_init
from trainer.layers.fusion_attention import AttentionFusion
from trainer.layers.fusion_concat import ConcatFusion
from trainer.layers.fusion_ops import OPERATIONS, as_shape_list, as_tensor_list, fuse_product, fuse_sum

keras = tf.keras

MODES: tuple[str, ...] = ("search", "soft", "hard", "sum")


@keras.utils.register_keras_serializable(package="fusionctr")
class FusionNode(tf.keras.layers.Layer):
    """Fuses the inputs x_1..x_n of one node of the OptFusion graph.

    The four operations (in OPERATIONS order) are: sum Σ x_j, Hadamard product ∏ x_j, concat Linear(n·D→D) over
    [x_1; …; x_n] (`ConcatFusion`), attention Σ a_j ⊙ x_j (`AttentionFusion`). Modes:

    - "search": y = Σ_k softmax(α)_k · op_k(x_1..x_n), α a trainable (1, 4) logit vector initialised as PyTorch's
      xavier_normal_ (std sqrt(2/5)). The inputs arrive already gated by a `ConnectionGate` (a pruned input is a
      zero tensor, so the product term is then zero, as in the reference search).
    - "soft": the same mixture with α frozen to `op_logits` (OptFusion-Soft retrain). No α variable.
    - "hard": only the operation `op` (by default argmax of `op_logits`) (OptFusion-Hard retrain).
    - "sum": y = Σ x_j, no weights (the reference's fusion_mode other than 1 or 2).

    With `connections` given (a fixed 0/1 vector over the n candidate inputs, used in retrain), the layer is
    called with the kept inputs only, in candidate order, and builds only what they need: the concat kernel
    covers the kept inputs, attention has one scorer per kept input. Pruned inputs are zero in the supernet, so
    they add nothing to sum, concat or attention. For the product the two retrain modes differ, as in the
    reference: "hard" multiplies only the kept inputs; "soft" keeps the search behaviour, so its product term is
    zero as soon as one candidate is pruned.

    A node whose every candidate is pruned is called with a single reference tensor (for the batch shape) and
    computes what the supernet computes on all-zero inputs, as the reference's retrain does (it runs the node's
    operations on zero tensors): sum, product and attention give 0, concat gives its projection's bias b. So a
    pruned "hard" concat node outputs b, a pruned "soft" node softmax(α)_concat · b, anything else zeros. The
    bias is the node's only weight then (`pruned_bias`, fan-in n·D as the supernet's concat; inherited from it).

    Args:
        mode: str, one of "search", "soft", "hard", "sum". Defaults to "search".
        connections: sequence of 0/1 ints or None, the fixed gates of the n candidate inputs; None means the
            inputs are all candidates (already gated in "search" / "sum"). Not allowed in "search".
            Defaults to None.
        op_logits: sequence of 4 floats or None, the searched α (OPERATIONS order). Required in "soft"; in
            "hard" it selects `op` when `op` is None. Defaults to None.
        op: str or None, the operation of a "hard" node, one of OPERATIONS. Defaults to None.
        l2: float, coupled L2 coefficient λ on the concat and attention weights (never on α). Defaults to 0.

    Example:
        >>> node = FusionNode("search")
        >>> y = node([tf.ones([4, 8]), tf.ones([4, 8])])  # [4, 8]
        >>> hard = FusionNode("hard", connections=[1, 0, 1], op="product")
        >>> y = hard([tf.ones([4, 8]), tf.ones([4, 8])])  # x_1 ⊙ x_3, [4, 8]
    """

    def __init__(self, mode: str = "search", connections: Sequence[int] | None = None,
                 op_logits: Sequence[float] | None = None, op: str | None = None, l2: float = 0.0,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if connections is not None:
            connections = [int(c) for c in connections]
            if not connections or any(c not in (0, 1) for c in connections):
                raise ValueError(f"connections must be a non-empty sequence of 0/1, got {connections}")
            if mode == "search":
                raise ValueError("connections are learned in mode 'search'; pass them only for retrain modes")
        if op_logits is not None:
            op_logits = [float(a) for a in op_logits]
            if len(op_logits) != len(OPERATIONS):
                raise ValueError(f"op_logits must have {len(OPERATIONS)} values, got {op_logits}")
        if mode == "soft" and op_logits is None:
            raise ValueError("mode 'soft' needs op_logits")
        if mode == "hard":
            if op is None:
                if op_logits is None:
                    raise ValueError("mode 'hard' needs op or op_logits")
                op = OPERATIONS[int(np.argmax(op_logits))]
            if op not in OPERATIONS:
                raise ValueError(f"op must be one of {OPERATIONS}, got {op!r}")
        elif op is not None:
            raise ValueError(f"op is only used in mode 'hard', got op={op!r} with mode={mode!r}")
        self.mode = mode
        self.connections = connections
        self.op_logits = op_logits
        self.op = op
        self.l2 = l2

    @property
    def kept(self) -> list[int] | None:
        """Indices of the kept candidate inputs, or None when the inputs are all the candidates."""
        return None if self.connections is None else [j for j, c in enumerate(self.connections) if c]

    @property
    def fully_pruned(self) -> bool:
        """True when every candidate input is pruned (the node then sees only zeros)."""
        return self.connections is not None and not any(self.connections)

    @property
    def uses(self) -> tuple[str, ...]:
        """The operations whose result can be non-zero: all four in search/soft, one in hard; of a fully pruned
        node, only concat (its bias), when the node computes concat at all."""
        if self.fully_pruned:
            return ("concat",) if self.mode == "soft" or (self.mode == "hard" and self.op == "concat") else ()
        if self.mode == "hard":
            assert self.op is not None  # __init__ resolves a hard node's op
            return (self.op,)
        if self.mode == "sum":
            return ("sum",)
        if self.mode == "soft" and self.connections is not None and not all(self.connections):
            return tuple(o for o in OPERATIONS if o != "product")  # the product of a pruned input is zero
        return OPERATIONS

    def build(self, input_shape: Sequence[tf.TensorShape] | tf.TensorShape) -> None:
        """Creates only what `mode` and `connections` need.

        In "search": alpha, float32 (1, 4), xavier_normal (algorithms.md §1.3). A `ConcatFusion` and an
        `AttentionFusion` sub-layer over the inputs when `uses` names concat / attention; a fully pruned node that
        computes concat gets pruned_bias (D,) instead, U(±1/sqrt(n·D)) with n the number of candidates.

        Raises:
            ValueError: the number of inputs is not the number of kept connections (1 for a fully pruned node).
        """
        shapes = as_shape_list(input_shape)
        expected = None if self.connections is None else max(sum(self.connections), 1)
        if expected is not None and len(shapes) != expected:
            raise ValueError(f"{self.name}: expected {expected} input(s) for connections {self.connections}, "
                             f"got {len(shapes)}")
        if self.mode == "search":
            self.alpha = self.add_weight(name="alpha", shape=(1, len(OPERATIONS)),
                                         initializer=torch_init.xavier_normal(), experimental_autocast=False)
        if self.fully_pruned and self.uses:
            # Concat over n zero inputs is its bias; the initialiser's fan-in is the supernet concat's, n·D.
            dim = shapes[0][-1]
            self.pruned_bias = self.add_weight(
                name="pruned_bias", shape=(dim,), regularizer=torch_init.l2_regularizer(self.l2),
                initializer=torch_init.bias_initializer(len(self.connections or ()) * dim))
        elif "concat" in self.uses:
            self.concat = ConcatFusion(l2=self.l2, dtype=self.dtype_policy, name="concat")
            with tf.name_scope(self.concat.name):
                self.concat.build(shapes)
        if "attention" in self.uses:
            self.attention = AttentionFusion(l2=self.l2, dtype=self.dtype_policy, name="attention")
            with tf.name_scope(self.attention.name):
                self.attention.build(shapes)
        super().build(input_shape)

    def mixture_weights(self) -> tf.Tensor:
        """softmax(α), float32 [4] in OPERATIONS order (modes "search" and "soft")."""
        if self.mode == "search":
            return tf.nn.softmax(self.alpha[0])
        if self.mode == "soft":
            return tf.nn.softmax(tf.constant(self.op_logits, tf.float32))
        raise ValueError(f"mode {self.mode!r} has no mixture weights")

    def _apply(self, op: str, inputs: list[tf.Tensor]) -> tf.Tensor:
        if op == "sum":
            return fuse_sum(inputs)
        if op == "product":
            return fuse_product(inputs)
        if op == "concat":
            return self.concat(inputs)
        return self.attention(inputs)

    def call(self, inputs: Sequence[tf.Tensor] | tf.Tensor) -> tf.Tensor:
        """inputs: n tensors [batch, D] (the kept ones when `connections` is set; one may be passed bare)
        -> [batch, D]."""
        inputs = [tf.cast(x, self.compute_dtype) for x in as_tensor_list(inputs)]
        uses = self.uses
        if not uses:
            return tf.zeros_like(inputs[0])
        if self.fully_pruned:  # every op sees zeros: only concat's bias is left
            bias = tf.cast(self.pruned_bias, self.compute_dtype)
            if self.mode == "soft":
                bias = tf.cast(self.mixture_weights()[OPERATIONS.index("concat")], self.compute_dtype) * bias
            return tf.zeros_like(inputs[0]) + bias
        if self.mode in ("hard", "sum"):
            return self._apply(uses[0], inputs)
        probs = tf.cast(self.mixture_weights(), self.compute_dtype)  # [4]
        terms = [probs[OPERATIONS.index(op)] * self._apply(op, inputs) for op in uses]
        return fuse_sum(terms)

    def inherit_from(self, source: "FusionNode") -> None:
        """Copy the weights of the same node of the supernet (`source`, built on all n candidates).

        Concat and attention weights are restricted to the kept inputs (`weights_for_inputs`); a fully pruned
        node takes the concat's bias; α is copied only when this node is itself in "search" mode. A "soft" node's
        frozen α comes from its `op_logits`.
        """
        if getattr(self, "pruned_bias", None) is not None:
            origin = getattr(source, "concat", None)
            if origin is None:
                raise ValueError(f"{self.name}: the source node {source.name} has no concat bias to inherit")
            self.pruned_bias.assign(origin.bias)
        for attr in ("concat", "attention"):
            target = getattr(self, attr, None)
            if target is None:
                continue
            origin = getattr(source, attr, None)
            if origin is None:
                raise ValueError(f"{self.name}: the source node {source.name} has no {attr} weights to inherit")
            if self.connections is None:
                indices = list(range(origin.num_inputs))
            elif len(self.connections) == origin.num_inputs:
                indices = self.kept or []
            else:
                raise ValueError(f"{self.name}: {len(self.connections)} candidates, but the source node has "
                                 f"{origin.num_inputs} inputs")
            target.set_weights(origin.weights_for_inputs(indices))
        if self.mode == "search" and getattr(source, "alpha", None) is not None:
            self.alpha.assign(source.alpha)

    def get_config(self) -> dict[str, Any]:
        """Adds mode, connections, op_logits, l2 and op (a "hard" node's op as resolved from op_logits)."""
        return {**super().get_config(), "mode": self.mode, "connections": self.connections,
                "op_logits": self.op_logits, "op": self.op, "l2": self.l2}
