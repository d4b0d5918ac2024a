"""OptFusion (Zhang et al., WSDM 2025): learned fusion of a cross network and a deep network.

Graph (algorithms.md §1.2), nodes in topological order, with their index in the connection matrix:

    0 emb        flattened field embeddings e, length D = F·E (never gated; also x0 of every cross layer)
    1 cross_0    CrossLayer(e, g[1,0]·e)
    2 cross_1, 3 deep_1, 4 cross_2, 5 deep_2, 6 cross_3, 7 deep_3
                 block i: CrossLayer(e, fuse(...)) and DeepLayer(fuse(...)) side by side, each fed by every
                 node before block i
    8 output     Linear(D→1)(fuse(all nodes 0..7)) -> logit

Every candidate connection producer j → consumer i has a gate step(β[i, j]) (one shared 9×9 β, 33 gates used);
every node except cross_0 has a 4-way operation choice α (7 nodes). The search supernet mixes the operations
with softmax(α) (`FusionNode` "search"); `Architecture.derive` reads the thresholded gates and α off a trained
supernet; `build_retrain_model` builds the derived network (OptFusion-Hard or -Soft) with only the modules it
uses, and `inherit_weights` warm-starts it from the supernet (the reference's `initialize_mode = 1`).

The number of blocks is a parameter (the reference uses len(mlp_dims) = 3); with B blocks there are 2B + 3
nodes. Every model maps int64 ids [batch, F] to a float32 logit [batch, 1]; the loss is BCE with logits.
"""
from __future__ import annotations

import dataclasses
import json
from typing import Any, Sequence

import numpy as np
import tensorflow as tf

from trainer.layers import torch_init
from trainer.layers.connection_gate import ConnectionGate, binarize_connections
from trainer.layers.cross import CrossLayer
from trainer.layers.deep import DeepLayer
from trainer.layers.field_embedding import REFERENCE_INIT_STD, FieldEmbedding
from trainer.layers.fusion_node import FusionNode
from trainer.layers.fusion_ops import OPERATIONS

keras = tf.keras

NUM_BLOCKS = 3
RETRAIN_MODES: tuple[str, ...] = ("hard", "soft", "sum")
SUPERNET_MODES: tuple[str, ...] = ("search", "sum")

EMBEDDING_LAYER = "embedding"
FLATTEN_LAYER = "flatten_embedding"
GATE_LAYER = "connection_gate"
OUTPUT_LAYER = "output"
LOGIT_LAYER = "logit"


# --- graph topology ---------------------------------------------------------------------------------------------

def node_names(num_blocks: int = NUM_BLOCKS) -> tuple[str, ...]:
    """Node names in topological order = connection-matrix index: emb, cross_0, cross_1, deep_1, …, output."""
    if num_blocks < 1:
        raise ValueError(f"num_blocks must be >= 1, got {num_blocks}")
    blocks = [name for i in range(1, num_blocks + 1) for name in (f"cross_{i}", f"deep_{i}")]
    return ("emb", "cross_0", *blocks, "output")


def candidate_inputs(row: int, num_blocks: int = NUM_BLOCKS) -> tuple[int, ...]:
    """The producers (matrix columns) that node `row` may read, in order (the table of algorithms.md §1.2)."""
    last = 2 * num_blocks + 2
    if not 1 <= row <= last:
        raise ValueError(f"row must be in [1, {last}], got {row}")
    if row == 1:
        return (0,)
    if row == last:
        return tuple(range(last))
    return tuple(range(2 * (row // 2)))  # every node before the block; the block's sibling is excluded


def op_rows(num_blocks: int = NUM_BLOCKS) -> tuple[int, ...]:
    """Matrix rows of the nodes with an operation choice: cross_1, deep_1, …, output (cross_0 has none)."""
    return tuple(range(2, 2 * num_blocks + 3))


def candidate_mask(num_blocks: int = NUM_BLOCKS) -> np.ndarray:
    """int [N, N], 1 at every candidate connection (33 for 3 blocks)."""
    size = 2 * num_blocks + 3
    mask = np.zeros((size, size), dtype=np.int64)
    for row in range(1, size):
        mask[row, list(candidate_inputs(row, num_blocks))] = 1
    return mask


def _fuse_name(node: str) -> str:
    return f"fuse_{node}"


# --- the derived architecture -----------------------------------------------------------------------------------

@dataclasses.dataclass
class Architecture:
    """A discrete OptFusion architecture, as read off a searched supernet.

    Attributes:
        connections: N × N nested list of 0/1 (N = 2·blocks + 3), [consumer][producer]; 1 keeps the connection.
            Only candidate entries (see `candidate_inputs`) may be 1.
        op_logits: one list of 4 α logits (OPERATIONS order) per node with an operation choice, in the order
            cross_1, deep_1, …, output (the reference's fusion_weight_{0..6}.npy).
        ops: the chosen (argmax) operation name of each of those nodes, same order.
        best_val_auc: validation AUC of the search epoch the architecture was taken from, if known.
    """

    connections: list[list[int]]
    op_logits: list[list[float]]
    ops: list[str]
    best_val_auc: float | None = None

    def __post_init__(self) -> None:
        self.connections = [[int(c) for c in row] for row in self.connections]
        self.op_logits = [[float(a) for a in row] for row in self.op_logits]
        self.ops = [str(op) for op in self.ops]
        if self.best_val_auc is not None:
            self.best_val_auc = float(self.best_val_auc)
        size = len(self.connections)
        if size < 5 or (size - 3) % 2 or any(len(row) != size for row in self.connections):
            raise ValueError(f"connections must be an N × N matrix with N = 2·blocks + 3, got {size} rows")
        matrix = np.asarray(self.connections)
        if not np.isin(matrix, (0, 1)).all():
            raise ValueError("connections must hold only 0 and 1")
        if (matrix * (1 - candidate_mask(self.num_blocks))).any():
            raise ValueError("connections has a 1 outside the candidate connections")
        rows = len(op_rows(self.num_blocks))
        if len(self.op_logits) != rows or any(len(a) != len(OPERATIONS) for a in self.op_logits):
            raise ValueError(f"op_logits must be {rows} lists of {len(OPERATIONS)} logits")
        if len(self.ops) != rows or any(op not in OPERATIONS for op in self.ops):
            raise ValueError(f"ops must be {rows} names from {OPERATIONS}, got {self.ops}")

    @property
    def num_blocks(self) -> int:
        """Number of (cross, deep) block pairs: the matrix has N = 2·blocks + 3 rows."""
        return (len(self.connections) - 3) // 2

    @classmethod
    def from_parameters(cls, beta: np.ndarray | Sequence[Sequence[float]], alphas: Sequence[Sequence[float]],
                        best_val_auc: float | None = None) -> "Architecture":
        """Threshold raw β (N × N; connection kept iff β > 0) and take ops = argmax α (one (4,) or (1, 4) per node).

        Also reads the reference's artifacts: `arch_weight.npy` as beta and `fusion_weight_{k}.npy` as alphas.
        """
        beta = np.asarray(beta, dtype=np.float64)
        num_blocks = (beta.shape[0] - 3) // 2
        connections = binarize_connections(beta) * candidate_mask(num_blocks)
        logits = [np.asarray(a, dtype=np.float32).reshape(-1) for a in alphas]
        return cls(connections=connections.tolist(), op_logits=[a.tolist() for a in logits],
                   ops=[OPERATIONS[int(np.argmax(a))] for a in logits],
                   best_val_auc=None if best_val_auc is None else float(best_val_auc))

    @classmethod
    def derive(cls, supernet: tf.keras.Model, best_val_auc: float | None = None) -> "Architecture":
        """Read the architecture off a (trained) supernet built by `build_supernet` / `supernet_logit`.

        A supernet built with fusion_mode "sum" has no α: its op logits are zeros and every op is "sum".
        """
        gate = supernet.get_layer(GATE_LAYER)
        beta = gate.beta.numpy()
        num_blocks = (beta.shape[0] - 3) // 2
        names = node_names(num_blocks)
        alphas: list[Any] = []  # one (4,) or (1, 4) array per node
        for row in op_rows(num_blocks):
            node = supernet.get_layer(_fuse_name(names[row]))
            alpha = getattr(node, "alpha", None)
            alphas.append(np.zeros(len(OPERATIONS)) if alpha is None else alpha.numpy())
        return cls.from_parameters(beta, alphas, best_val_auc)

    def node_connections(self, row: int) -> list[int]:
        """The 0/1 gates of node `row` over its candidate inputs, in candidate order."""
        return [self.connections[row][j] for j in candidate_inputs(row, self.num_blocks)]

    def live_nodes(self) -> list[int]:
        """Rows of the nodes the output depends on through kept connections (emb always), ascending."""
        last = len(self.connections) - 1
        live = {0, last}
        for row in range(last, 0, -1):
            if row in live:
                live.update(j for j in candidate_inputs(row, self.num_blocks) if self.connections[row][j])
        return sorted(live)

    def to_json(self) -> str:
        """A JSON object with the four fields, one matrix row per line. Floats round-trip exactly."""
        def rows(matrix: list[list[Any]]) -> str:
            return "[\n" + ",\n".join(f"    {json.dumps(row)}" for row in matrix) + "\n  ]"

        return (f'{{\n  "best_val_auc": {json.dumps(self.best_val_auc)},\n'
                f'  "connections": {rows(self.connections)},\n'
                f'  "op_logits": {rows(self.op_logits)},\n'
                f'  "ops": {json.dumps(self.ops)}\n}}\n')

    @classmethod
    def from_json(cls, text: str) -> "Architecture":
        """Inverse of `to_json`.

        Raises:
            ValueError: an unknown field, or an invalid architecture (the checks of `__post_init__`).
            TypeError: a missing field.
        """
        fields = json.loads(text)
        unknown = set(fields) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"unknown Architecture fields: {sorted(unknown)}")
        return cls(**fields)


# --- model builders ---------------------------------------------------------------------------------------------

def _embed(ids: tf.Tensor, table_size: int, embedding_dim: int, emb_init_std: float, l2_emb: float) -> tf.Tensor:
    num_fields = ids.shape[-1]
    if num_fields is None:
        raise ValueError(f"ids need a known number of fields, got shape {ids.shape}")
    emb = FieldEmbedding(table_size, embedding_dim, emb_init_std, l2_emb, name=EMBEDDING_LAYER)(ids)
    return keras.layers.Reshape((num_fields * embedding_dim,), name=FLATTEN_LAYER)(emb)  # [batch, D]


def _head(fused: tf.Tensor, l2_nn: float) -> tf.Tensor:
    dim = fused.shape[-1]
    regularizer = torch_init.l2_regularizer(l2_nn)
    logit = keras.layers.Dense(1, kernel_initializer=torch_init.kernel_initializer(),
                               bias_initializer=torch_init.bias_initializer(dim), kernel_regularizer=regularizer,
                               bias_regularizer=regularizer, name=OUTPUT_LAYER)(fused)
    return keras.layers.Activation("linear", dtype="float32", name=LOGIT_LAYER)(logit)  # [batch, 1] float32


def _node_layer(name: str, l2_nn: float) -> tf.keras.layers.Layer:
    return CrossLayer(l2=l2_nn, name=name) if name.startswith("cross") else DeepLayer(l2=l2_nn, name=name)


def supernet_logit(ids: tf.Tensor, table_size: int, embedding_dim: int, *, num_blocks: int = NUM_BLOCKS,
                   fusion_mode: str = "search", beta_init: float = 0.5, emb_init_std: float = REFERENCE_INIT_STD,
                   l2_emb: float = 0.0, l2_nn: float = 0.0) -> tf.Tensor:
    """The search supernet on symbolic ids int [batch, F] -> logit float32 [batch, 1].

    Args:
        ids: Keras input of global feature ids, [batch, F].
        table_size: rows of the shared embedding table.
        embedding_dim: E; the graph width is D = F·E.
        num_blocks: number of (cross, deep) blocks (reference 3).
        fusion_mode: "search" (softmax(α) mixture of the 4 operations, reference fusion_mode 1) or "sum".
        beta_init: initial value of every connection parameter β (reference 0.5).
        emb_init_std: std of the Normal embedding initialiser (reference 0.01).
        l2_emb, l2_nn: coupled L2 λ of the embedding group and of every other non-architecture weight
            (PyTorch Adam weight_decay). Leave 0 when the optimiser applies the decay itself.
    """
    if fusion_mode not in SUPERNET_MODES:
        raise ValueError(f"fusion_mode must be one of {SUPERNET_MODES}, got {fusion_mode!r}")
    names = node_names(num_blocks)
    e = _embed(ids, table_size, embedding_dim, emb_init_std, l2_emb)
    gate = ConnectionGate(len(names), init_value=beta_init, name=GATE_LAYER)
    outputs: dict[int, tf.Tensor] = {0: e}
    for row in range(1, len(names)):
        gated = gate([outputs[j] for j in candidate_inputs(row, num_blocks)], row=row)
        mode = "sum" if row == 1 else fusion_mode
        fused = FusionNode(mode, l2=l2_nn, name=_fuse_name(names[row]))(gated)
        if row == len(names) - 1:
            return _head(fused, l2_nn)
        layer = _node_layer(names[row], l2_nn)
        outputs[row] = layer(e, fused) if isinstance(layer, CrossLayer) else layer(fused)
    raise AssertionError("unreachable")


def retrain_logit(ids: tf.Tensor, table_size: int, embedding_dim: int, architecture: Architecture,
                  mode: str = "hard", *, emb_init_std: float = REFERENCE_INIT_STD, l2_emb: float = 0.0,
                  l2_nn: float = 0.0) -> tf.Tensor:
    """The derived (retrain) network on symbolic ids int [batch, F] -> logit float32 [batch, 1].

    Only what the architecture uses is built: nodes the output does not depend on are dropped, a node's fusion
    sees only its kept inputs, a "hard" node builds only its chosen operation and a "soft" node only the
    operations whose result can be non-zero (`FusionNode.uses`).

    Args:
        ids, table_size, embedding_dim, emb_init_std, l2_emb, l2_nn: as in `supernet_logit`.
        architecture: the derived architecture; its size sets the number of blocks.
        mode: "hard" (argmax op, OptFusion-Hard), "soft" (frozen softmax(α) mixture, OptFusion-Soft) or "sum".
    """
    if mode not in RETRAIN_MODES:
        raise ValueError(f"mode must be one of {RETRAIN_MODES}, got {mode!r}")
    num_blocks = architecture.num_blocks
    names = node_names(num_blocks)
    e = _embed(ids, table_size, embedding_dim, emb_init_std, l2_emb)
    outputs: dict[int, tf.Tensor] = {0: e}
    for row in architecture.live_nodes()[1:]:
        candidates = candidate_inputs(row, num_blocks)
        connections = architecture.node_connections(row)
        kept = [outputs[j] for j, c in zip(candidates, connections) if c] or [e]  # e: shape reference only
        if row == 1:
            node = FusionNode("sum", connections=connections, l2=l2_nn, name=_fuse_name(names[row]))
        else:
            k = row - 2
            node = FusionNode(mode, connections=connections,
                              op_logits=None if mode == "sum" else architecture.op_logits[k],
                              op=architecture.ops[k] if mode == "hard" else None,
                              l2=l2_nn, name=_fuse_name(names[row]))
        fused = node(kept)
        if row == len(names) - 1:
            return _head(fused, l2_nn)
        layer = _node_layer(names[row], l2_nn)
        outputs[row] = layer(e, fused) if isinstance(layer, CrossLayer) else layer(fused)
    raise AssertionError("unreachable: the output node is always live")


def build_supernet(table_size: int, num_fields: int, embedding_dim: int, *, num_blocks: int = NUM_BLOCKS,
                   fusion_mode: str = "search", beta_init: float = 0.5, emb_init_std: float = REFERENCE_INIT_STD,
                   l2_emb: float = 0.0, l2_nn: float = 0.0, input_name: str = "feature",
                   name: str = "optfusion_supernet") -> tf.keras.Model:
    """A functional model ids int64 [batch, num_fields] -> logit float32 [batch, 1]; see `supernet_logit`."""
    ids = keras.Input(shape=(num_fields,), dtype=tf.int64, name=input_name)
    logit = supernet_logit(ids, table_size, embedding_dim, num_blocks=num_blocks, fusion_mode=fusion_mode,
                           beta_init=beta_init, emb_init_std=emb_init_std, l2_emb=l2_emb, l2_nn=l2_nn)
    return keras.Model(ids, logit, name=name)


def build_retrain_model(architecture: Architecture, table_size: int, num_fields: int, embedding_dim: int,
                        mode: str = "hard", *, emb_init_std: float = REFERENCE_INIT_STD, l2_emb: float = 0.0,
                        l2_nn: float = 0.0, input_name: str = "feature", name: str | None = None) -> tf.keras.Model:
    """A functional model ids int64 [batch, num_fields] -> logit float32 [batch, 1]; see `retrain_logit`."""
    ids = keras.Input(shape=(num_fields,), dtype=tf.int64, name=input_name)
    logit = retrain_logit(ids, table_size, embedding_dim, architecture, mode, emb_init_std=emb_init_std,
                          l2_emb=l2_emb, l2_nn=l2_nn)
    return keras.Model(ids, logit, name=name or f"optfusion_{mode}")


# --- weights ----------------------------------------------------------------------------------------------------

def inherit_weights(supernet: tf.keras.Model, model: tf.keras.Model) -> list[str]:
    """Copy the supernet's weights into a model built from it (reference retrain `initialize_mode = 1`).

    Layers are matched by name. Fusion nodes copy only the weights of their kept inputs and chosen operations
    (`FusionNode.inherit_from`); architecture parameters (β, α) are not copied into retrain models. Returns the
    names of the layers that received weights.
    """
    copied = []
    for layer in model.layers:
        if not layer.weights:
            continue
        source = supernet.get_layer(layer.name)
        if isinstance(layer, FusionNode):
            layer.inherit_from(source)
        else:
            layer.set_weights(source.get_weights())
        copied.append(layer.name)
    return copied


def variable_groups(model: tf.keras.Model) -> dict[str, list[tf.Variable]]:
    """Trainable variables split as the reference's optimisers: "emb" (the table), "arch" (β and every α) and
    "nn" (everything else). Each group gets its own learning rate and coupled L2 (none for "arch")."""
    groups: dict[str, list[tf.Variable]] = {"emb": [], "nn": [], "arch": []}
    for layer in model.layers:
        if isinstance(layer, FieldEmbedding):
            groups["emb"].extend(layer.trainable_weights)
        elif isinstance(layer, ConnectionGate):
            groups["arch"].extend(layer.trainable_weights)
        else:
            alpha = getattr(layer, "alpha", None) if isinstance(layer, FusionNode) else None
            for variable in layer.trainable_weights:
                is_alpha = alpha is not None and variable.ref() == alpha.ref()
                groups["arch" if is_alpha else "nn"].append(variable)
    return groups
