"""The raw features a served model reads, recovered from its `serving_default` signature.

Every model of the project takes serialized tf.Examples (trainer/export.py) and parses them with `tf.io.parse_example`
inside the SavedModel, so the parse op holds the feature names, their types and shapes. The model server reads them
from there to turn a JSON row of raw values into the tf.Example the model expects, and to reject what the model
cannot read (an unknown name, text for an integer field) with a message naming the field: any SavedModel exported
this way serves rows, whichever dataset layout or model family it came from.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Iterator

import tensorflow as tf

_PARSE_OPS = ("ParseExampleV2",)
_DTYPES = {tf.int64.as_datatype_enum: "int64", tf.string.as_datatype_enum: "string",
           tf.float32.as_datatype_enum: "float"}


@dataclasses.dataclass(frozen=True)
class FeatureSpec:
    """One raw feature of the serving signature.

    Attributes:
        dtype: "int64", "float" or "string" (a tf.Example's int64_list, float_list or bytes_list).
        length: the number of values of a fixed-length feature (OptFusion TFRecords' `feature` ids: the field
            count); None for a variable-length one, which in this project's layouts holds one value, or none (absent:
            a missing value, as in the click logs).
    """

    dtype: str
    length: int | None = None


def _nodes(graph_def: Any) -> Iterator[tuple[dict[str, Any], Any]]:
    """(the node table of its function, node) for every node of the graph and of its function library."""
    top = {node.name: node for node in graph_def.node}
    yield from ((top, node) for node in graph_def.node)
    for function in graph_def.library.function:
        table = {node.name: node for node in function.node_def}
        yield from ((table, node) for node in function.node_def)


def _constant(table: dict[str, Any], input_name: str) -> list[str]:
    node = table[input_name.split(":")[0].lstrip("^")]
    return [v.decode() if isinstance(v, bytes) else str(v) for v in tf.make_ndarray(node.attr["value"].tensor).ravel()]


def _dtype(enum: int, name: str) -> str:
    if enum not in _DTYPES:
        raise ValueError(f"feature {name!r} has dtype {tf.dtypes.as_dtype(enum).name}, which a JSON row cannot carry")
    return _DTYPES[enum]


def signature_feature_spec(signature: Any) -> dict[str, FeatureSpec]:
    """{feature name: FeatureSpec} that a `serving_default` signature parses its serialized tf.Examples with.

    Args:
        signature: a loaded SavedModel's signature (`tf.saved_model.load(path).signatures["serving_default"]`).

    Raises:
        ValueError: the signature parses no tf.Example (it takes other inputs), or a feature of another dtype.
    """
    spec: dict[str, FeatureSpec] = {}
    for table, node in _nodes(signature.graph.as_graph_def()):
        if node.op not in _PARSE_OPS:
            continue
        # ParseExampleV2(serialized, names, sparse_keys, dense_keys, ragged_keys, dense_defaults...)
        sparse_keys, dense_keys = _constant(table, node.input[2]), _constant(table, node.input[3])
        for name, enum in zip(sparse_keys, node.attr["sparse_types"].list.type):
            spec[name] = FeatureSpec(_dtype(enum, name))
        for name, enum, shape in zip(dense_keys, node.attr["Tdense"].list.type, node.attr["dense_shapes"].list.shape):
            dims = [d.size for d in shape.dim]
            spec[name] = FeatureSpec(_dtype(enum, name), int(dims[0]) if dims else 1)
    if not spec:
        raise ValueError("the serving signature parses no tf.Example (no ParseExampleV2 op): send serialized "
                         'tf.Examples as {"b64": ...}')
    return spec
