"""TF Transform preprocessing_fn: the OptFusion data rules, applied identically in training and serving.

Rules (shared/design/algorithms.md §1.7):
- every categorical field gets its own vocabulary; values seen fewer than `frequency_threshold` (2)
  times map to that field's single OOV id, and so do values first seen at serving time;
- a missing value is a category of its own (a sentinel token: TF Transform drops empty strings from
  vocabularies, which would silently merge "missing" with the rare values);
- Criteo integers become the category floor(ln(v)^2) when v > 2, else int(v); missing is its own
  category; integer fields are exempt from the threshold;
- Avazu `hour` (YYMMDDHH) becomes hour of day plus `weekday` (Sunday = 0, as the reference's
  strftime("%w")) and `is_weekend`.

The output is one int64 vector `feature` of global ids: field f's local id plus the total size of the
fields before it, so one embedding table serves all fields. Its schema records the id range, from
which the trainer reads the table size.
"""
from __future__ import annotations

from typing import Any, Mapping, Optional

import tensorflow as tf
import tensorflow_transform as tft
from tensorflow_transform import schema_inference

from transform import features, field_vocabularies

MISSING_TOKEN = "__missing__"
# Criteo's I2 can be negative, so "missing" needs a sentinel outside any real column range.
_MISSING_INT = tf.int64.min
FREQUENCY_THRESHOLD = 2

Tensor = Any  # tf.Tensor | tf.SparseTensor


def single_value(x: Tensor, default: Any, field: str) -> tf.Tensor:
    """A raw field as a dense [batch] tensor; absent values (sparse input) become `default`.

    Every raw field of a click-log layout holds one value or none. An example with more (a client sending a list) is
    an error naming the field (tf.errors.InvalidArgumentError at run time), not an index error deep in the graph
    (../shared/cases/07), and never a silent choice of one of the values.
    """
    if not isinstance(x, tf.SparseTensor):
        return tf.reshape(x, [-1])
    one_value = tf.debugging.assert_less_equal(
        x.dense_shape[1], tf.constant(1, tf.int64),
        message=f"feature {field} has more than one value in an example; it takes one value, or none when missing")
    with tf.control_dependencies([one_value]):
        dense = tft.sparse_tensor_to_dense_with_shape(x, [None, 1], default_value=default)
    return tf.reshape(dense, [-1])


def log_square_bucket(values: tf.Tensor) -> tf.Tensor:
    """Criteo integer discretisation: floor(ln(v)^2) if v > 2 else v (int64 in, int64 out)."""
    safe = tf.cast(tf.maximum(values, 1), tf.float64)
    return tf.where(values > 2, tf.cast(tf.floor(tf.square(tf.math.log(safe))), tf.int64), values)


def integer_tokens(x: Tensor, field: str) -> tf.Tensor:
    """Criteo integer field -> bucket tokens, with missing as its own token."""
    values = single_value(x, _MISSING_INT, field)
    return tf.where(values == _MISSING_INT, MISSING_TOKEN, tf.strings.as_string(log_square_bucket(values)))


def category_tokens(x: Tensor, field: str) -> tf.Tensor:
    """Categorical field -> [batch] string tokens; absent and empty values become MISSING_TOKEN, a category of its
    own (the reference counts NaN as a value, algorithms.md §1.7).
    """
    values = single_value(x, MISSING_TOKEN, field)
    return tf.where(values == "", MISSING_TOKEN, values)


def avazu_hour_tokens(x: Tensor, field: str) -> dict[str, tf.Tensor]:
    """YYMMDDHH -> tokens of hour of day, weekday and is_weekend.

    weekday counts from Sunday = 0, as the reference's avazu2TF.py (date.strftime("%w")), so the tokens are the
    reference's values; is_weekend is 1 on Saturday (6) and Sunday (0).
    """
    value = single_value(x, _MISSING_INT, field)
    missing = value == _MISSING_INT
    hour = value % 100
    day = (value // 100) % 100
    month = (value // 10_000) % 100
    year = 2000 + value // 1_000_000
    # Sakamoto's day-of-week: 0 = Sunday.
    shift = (14 - month) // 12
    y = year - shift
    m = month + 12 * shift - 2
    weekday = (day + y + y // 4 - y // 100 + y // 400 + (31 * m) // 12) % 7
    weekend = (weekday == 0) | (weekday == 6)

    def token(v: tf.Tensor) -> tf.Tensor:
        return tf.where(missing, MISSING_TOKEN, tf.strings.as_string(v))

    return {"hour": token(hour), "weekday": token(weekday), "is_weekend": token(tf.cast(weekend, tf.int64))}


def model_field_tokens(spec: features.DatasetSpec, inputs: Mapping[str, Tensor]) -> dict[str, tf.Tensor]:
    """Every model field of a raw-log dataset as a [batch] string tensor of category tokens."""
    tokens: dict[str, tf.Tensor] = {}
    if spec.hour_field:
        tokens.update(avazu_hour_tokens(inputs[spec.hour_field], spec.hour_field))
    for field in spec.integer_fields:
        tokens[field] = integer_tokens(inputs[field], field)
    for field in spec.categorical_fields:
        tokens[field] = category_tokens(inputs[field], field)
    return {field: tokens[field] for field in spec.model_fields}


def frequency_threshold(spec: features.DatasetSpec, field: str) -> Optional[int]:
    """A field's vocabulary threshold: integer fields keep every value (None; tft warns that 1 is a no-op), the
    others FREQUENCY_THRESHOLD (Avazu's hour-derived fields too)."""
    return None if spec.is_integer(field) and field != spec.hour_field else FREQUENCY_THRESHOLD


def _laid_end_to_end(spec: features.DatasetSpec, local_ids: Mapping[str, tf.Tensor],
                     id_counts: Mapping[str, tf.Tensor]) -> tf.Tensor:
    """Local ids per field, `id_counts[field]` of them (its vocabulary and one OOV id) -> global ids [batch, F]."""
    columns, offset = [], tf.constant(0, tf.int64)
    for field in spec.model_fields:
        columns.append(local_ids[field] + offset)
        offset += id_counts[field]
    ids = tf.stack(columns, axis=1)
    schema_inference.set_tensor_schema_override(ids, tf.constant(0, tf.int64), offset - 1)
    return ids


def global_ids(spec: features.DatasetSpec, tokens: Mapping[str, tf.Tensor]) -> tf.Tensor:
    """Per-field vocabularies (+1 OOV id each) laid end to end: [batch] tokens -> [batch, fields] ids, from one
    analyzer pass over every field and one lookup table (transform/field_vocabularies.py)."""
    fields = spec.model_fields
    ids, id_count = field_vocabularies.global_ids({field: tokens[field] for field in fields},
                                                  {field: frequency_threshold(spec, field) for field in fields})
    schema_inference.set_tensor_schema_override(ids, tf.constant(0, tf.int64), id_count - 1)
    return ids


def global_ids_per_field_analyzers(spec: features.DatasetSpec, tokens: Mapping[str, tf.Tensor]) -> tf.Tensor:
    """`global_ids` with one `tft.compute_and_apply_vocabulary` per field, as before issue 15: the same files and ids
    at several times the analysis cost. Kept for the comparison (tests and benchmarks.pipeline_scaling)."""
    local, sizes = {}, {}
    for field in spec.model_fields:
        name = features.vocabulary_name(field)
        local[field] = tft.compute_and_apply_vocabulary(tokens[field], frequency_threshold=frequency_threshold(
            spec, field), num_oov_buckets=1, vocab_filename=name)
        sizes[field] = tft.experimental.get_vocabulary_size_by_name(name) + 1
    return _laid_end_to_end(spec, local, sizes)


def prebuilt_ids(x: Tensor) -> tf.Tensor:
    """OptFusion TFRecords: ids in [0, largest id seen] are used as they are.

    One more row, largest + 1, takes any id outside that range (a negative id, or one first seen at
    serving time), so an unknown id can never index past the embedding table. Table size: largest + 2.
    """
    if isinstance(x, tf.SparseTensor):
        raise ValueError("`feature` must have the same length in every example; pin a schema with its shape")
    ids = tf.cast(x, tf.int64)
    largest = tft.max(ids)
    out_of_range = largest + 1
    ids = tf.where((ids < 0) | (ids > largest), out_of_range, ids)
    schema_inference.set_tensor_schema_override(ids, tf.constant(0, tf.int64), out_of_range)
    return ids


VOCABULARY_ANALYSES = {"one_pass": global_ids, "per_field": global_ids_per_field_analyzers}


def preprocessing_fn(inputs: Mapping[str, Tensor], custom_config: Optional[Mapping[str, Any]] = None
                     ) -> dict[str, tf.Tensor]:
    """tf.Transform entry point. custom_config: {"dataset": name (see transform.features.DATASETS),
    "vocabulary_analysis": "one_pass" (default) or "per_field" (the slower analysis, same output: for comparisons)}.
    """
    config = custom_config or {}
    spec = features.get_dataset(config.get("dataset", "criteo"))
    if spec.prebuilt_ids:
        ids = prebuilt_ids(inputs[features.FEATURE_KEY])
    else:
        ids = VOCABULARY_ANALYSES[config.get("vocabulary_analysis", "one_pass")](spec, model_field_tokens(spec, inputs))
    outputs = {features.FEATURE_KEY: ids}
    for key, default in ((features.LABEL_KEY, 0), (features.GBDT_LOGIT_KEY, 0.0)):
        if key in inputs:
            outputs[key] = tf.reshape(tf.cast(single_value(inputs[key], default, key), tf.float32), [-1, 1])
    return outputs
