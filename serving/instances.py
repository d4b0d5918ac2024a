"""TF Serving's REST request format, read into the serialized tf.Examples a served model scores.

    {"instances": [{"I1": 3, "C1": "68fd1e64", ...}, {"b64": "<serialized tf.Example>"}, ...]}
    -> [bytes, ...]  (one serialized raw tf.Example per instance, in order)

An instance is a row of raw feature values (field name -> value; what a click log holds) or a serialized tf.Example
as {"b64": ...} (TF Serving's binary form; also {"examples": {"b64": ...}}, the named-input form). `"inputs"` (TF
Serving's columnar form) is read the same way when it is a list of instances or {"examples": [...]}.

Input is treated as training treats it: an absent feature (left out, or null) is a missing value, and a categorical
value never seen in training is valid (Transform maps it to the OOV id). What the model cannot read is a
`RequestError` naming the instance and the field: an unknown feature name, text where an integer belongs, several
values for a single-valued field, a malformed body or b64 string, a batch over the server's limit.
"""
from __future__ import annotations

import base64
import binascii
import functools
import json
from typing import Any, Mapping, Sequence

import tensorflow as tf

from serving.feature_spec import FeatureSpec
from transform.parsers import INT64_MAX, INT64_MIN

SERVING_SIGNATURE = "serving_default"
DEFAULT_MAX_BATCH_SIZE = 1024  # instances per request (the server's --max_batch_size)


class RequestError(ValueError):
    """A request the server cannot score: the client's error (HTTP 400); the message says what and where."""


def parse_body(body: bytes | str | Mapping[str, Any]) -> Mapping[str, Any]:
    """The JSON object of a request body (already decoded, or bytes / text).

    Raises:
        RequestError: not JSON, or not a JSON object.
    """
    if isinstance(body, (bytes, str)):
        try:
            body = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise RequestError(f"the request body is not valid JSON: {error}") from None
    if not isinstance(body, Mapping):
        raise RequestError(f'the request body must be a JSON object {{"instances": [...]}}, got {type(body).__name__}')
    return body


def _instances(body: Mapping[str, Any]) -> Sequence[Any]:
    signature = body.get("signature_name", SERVING_SIGNATURE)
    if signature != SERVING_SIGNATURE:
        raise RequestError(f"unknown signature_name {signature!r}; this server serves {SERVING_SIGNATURE!r}")
    if "instances" in body:
        instances = body["instances"]
    elif "inputs" in body:
        instances = body["inputs"]
        if isinstance(instances, Mapping) and set(instances) == {"examples"}:
            instances = instances["examples"]
    else:
        raise RequestError('the request has no "instances": send {"instances": [row or {"b64": ...}, ...]}')
    if not isinstance(instances, list):
        raise RequestError(f'"instances" must be a list, got {type(instances).__name__}')
    return instances


def _where(index: int, name: str) -> str:
    return f"instance {index}: feature {name!r}"


def _integer(value: Any, index: int, name: str) -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise RequestError(f"{_where(index, name)} is an integer field, got {json.dumps(value)}")
    if not INT64_MIN <= value <= INT64_MAX:
        raise RequestError(f"{_where(index, name)}: {value} does not fit in int64")
    return value


def _number(value: Any, index: int, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RequestError(f"{_where(index, name)} is a float field, got {json.dumps(value)}")
    return float(value)


def _text(value: Any, index: int, name: str) -> bytes:
    # Categorical ids are often numbers (Avazu's C1 = 1005, banner_pos = 0): an integer is its decimal text.
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise RequestError(f"{_where(index, name)} is a categorical (text) field, got {json.dumps(value)}")
    return value.encode("utf-8")


_CONVERTERS = {"int64": _integer, "float": _number, "string": _text}


@functools.lru_cache(maxsize=262_144)
def _feature_entry(name: str, dtype: str, values: tuple) -> bytes:
    """The serialized `Features.feature` map entry of one feature: what a serialized tf.Example holds for it.

    A serialized Features message is its map entries one after another, so a row's Example is the concatenation of
    its features' entries inside one length-delimited field (`row_example`). Click logs repeat their values (the
    same ids, small counts), so the entries are cached: a row costs dictionary lookups, not protobuf building
    (docs/benchmarks.md "Model server": the conversion time per row).
    """
    feature = tf.train.Feature()
    if dtype == "int64":
        feature.int64_list.value.extend(values)
    elif dtype == "float":
        feature.float_list.value.extend(values)
    else:
        feature.bytes_list.value.extend(values)
    return tf.train.Features(feature={name: feature}).SerializeToString()


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _check_count(feature_spec: FeatureSpec, count: int, index: int, name: str) -> None:
    """A variable-length feature takes one value, a fixed-length one `length`; none (absent) is valid for both.

    Raises:
        RequestError: another count.
    """
    if feature_spec.length is None:
        if count > 1:
            raise RequestError(f"{_where(index, name)} takes one value, got {count}")
    elif count not in (0, feature_spec.length):
        raise RequestError(f"{_where(index, name)} takes {feature_spec.length} values, got {count}")


def row_example(row: Mapping[str, Any], spec: Mapping[str, FeatureSpec], index: int) -> bytes:
    """The serialized tf.Example of one row of raw values (`index`: its place in the request, for messages).

    Raises:
        RequestError: an unknown feature, a value of the wrong type, or the wrong number of values.
    """
    entries = []
    for name, value in row.items():
        feature_spec = spec.get(name)
        if feature_spec is None:
            raise RequestError(f"instance {index}: unknown feature {name!r}; the model reads {', '.join(sorted(spec))}")
        if value is None:
            continue  # absent: a missing value, as in the logs
        convert = _CONVERTERS[feature_spec.dtype]
        if not isinstance(value, list):
            if feature_spec.length is not None and feature_spec.length != 1:
                raise RequestError(f"{_where(index, name)} takes {feature_spec.length} values, got 1")
            entries.append(_feature_entry(name, feature_spec.dtype, (convert(value, index, name),)))
            continue
        _check_count(feature_spec, len(value), index, name)
        if value:  # [] is absent too
            entries.append(_feature_entry(name, feature_spec.dtype, tuple(convert(v, index, name) for v in value)))
    features = b"".join(entries)
    # Example { features (field 1, length-delimited) }; no feature at all is the empty Example, b"".
    return b"\n" + _varint(len(features)) + features if features else b""


_KINDS = {"int64": "int64_list", "float": "float_list", "string": "bytes_list"}


def check_example(example: tf.train.Example, spec: Mapping[str, FeatureSpec], index: int) -> None:
    """Holds a client's tf.Example to the model's raw features, so one bad instance is a 400 naming it and the
    field, and not an error of the whole batch inside the model (../shared/cases/07). Features the model does not
    read (the label, say) are ignored, as the model's parser ignores them.

    Raises:
        RequestError: a feature of the wrong type, or with the wrong number of values.
    """
    for name, feature in example.features.feature.items():
        feature_spec = spec.get(name)
        if feature_spec is None:
            continue
        kind = feature.WhichOneof("kind")
        if kind is None:
            continue  # an empty Feature: absent
        if kind != _KINDS[feature_spec.dtype]:
            raise RequestError(f"{_where(index, name)} is {feature_spec.dtype}, got a {kind}")
        _check_count(feature_spec, len(getattr(feature, kind).value), index, name)


def _b64_example(encoded: Any, index: int, spec: Mapping[str, FeatureSpec]) -> bytes:
    if not isinstance(encoded, str):
        raise RequestError(f'instance {index}: "b64" must be a base64 string, got {json.dumps(encoded)[:80]}')
    try:
        serialized = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as error:
        raise RequestError(f'instance {index}: "b64" is not valid base64: {error}') from None
    try:
        example = tf.train.Example.FromString(serialized)
    except Exception as error:  # protobuf's DecodeError
        raise RequestError(f"instance {index}: the b64 bytes are not a serialized tf.Example: {error}") from None
    check_example(example, spec, index)
    return serialized


def examples_of(body: Mapping[str, Any], spec: Mapping[str, FeatureSpec], max_batch_size: int) -> list[bytes]:
    """The serialized tf.Examples of a request's instances (module docstring), in order.

    Args:
        body: the request's JSON object (parse_body).
        spec: the model's raw features (serving.feature_spec.signature_feature_spec); empty: b64 instances only.
        max_batch_size: the most instances one request may hold.

    Raises:
        RequestError: as the module docstring lists.
    """
    instances = _instances(body)
    if not instances:
        raise RequestError('"instances" is empty')
    if len(instances) > max_batch_size:
        raise RequestError(f"{len(instances)} instances is over the server's limit of {max_batch_size} per request "
                           "(--max_batch_size): split the batch")
    serialized = []
    for index, instance in enumerate(instances):
        named = isinstance(instance, Mapping) and set(instance) == {"examples"}
        if named and isinstance(instance["examples"], Mapping):  # TF Serving's named-input form
            instance = instance["examples"]
        if isinstance(instance, Mapping) and set(instance) == {"b64"}:
            serialized.append(_b64_example(instance["b64"], index, spec))
        elif isinstance(instance, Mapping):
            if not spec:
                raise RequestError(f"instance {index}: this model takes serialized tf.Examples only: send "
                                   '{"b64": ...}')
            serialized.append(row_example(instance, spec, index))
        else:
            raise RequestError(f"instance {index}: expected a row of features or {{\"b64\": ...}}, got "
                               f"{json.dumps(instance)[:80]}")
    return serialized
