"""Warm start of a Keras CTR model from the last blessed model (issue 13, continuous training).

Day N's model starts from day N-1's blessed weights instead of from random ones. The id space moves between days:
each field's vocabulary is recomputed (values come and go, and the count threshold of 2 admits new ones), so global
id 1234 is another value today than yesterday. Tables indexed by global ids (the shared embedding table, the
first-order weights) are therefore copied row by row through the values: today's row of (field, value) takes
yesterday's row of the same (field, value); a value new today keeps its fresh initialisation; each field's OOV row
takes yesterday's OOV row. Every other weight is copied as it is.

Warm start needs the same architecture: every weight of the new model must have a same-named weight in the base
model, of the same shape (tables: the same width). When it has not (the champion is another model family, or the
embedding size changed), the model starts fresh and the report says why: a run never fails for want of a warm
start.

The base model's vocabularies are its SavedModel's assets (`assets/<vocabulary name>`: the Transform graph travels
inside every exported model, trainer/export.py).
"""
from __future__ import annotations

import dataclasses
import logging
import os
from typing import Sequence

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft

from trainer import data
from transform import features
from transform import field_vocabularies as field_vocabularies_io

REPORT_FILE = "warm_start.json"  # WarmStartReport, in the model run folder
NEW_ROW = -1  # row_sources' mark of a row without a source (a value new today)


@dataclasses.dataclass(frozen=True)
class WarmStartReport:
    """What a warm start did, written as warm_start.json beside the model and recorded on its MLMD artifact.

    Attributes:
        base_model: the SavedModel the weights came from.
        copied_weights: weights copied (tables included).
        table_rows: rows of the new id-indexed tables.
        rows_from_base: of those, rows taken from the base model (same field and value, or the OOV row).
        skipped: why nothing was copied; None when the weights were copied.
    """

    base_model: str
    copied_weights: int = 0
    table_rows: int = 0
    rows_from_base: int = 0
    skipped: str | None = None


def row_sources(old_vocabularies: Sequence[Sequence[bytes]], new_vocabularies: Sequence[Sequence[bytes]]
                ) -> np.ndarray:
    """For every row of the new id space, the row of the old one holding the same field and value.

    Both id spaces lay the fields' vocabularies end to end in the same field order, each followed by its OOV id
    (transform/preprocessing.py). Args: one vocabulary (tokens in id order) per field, old and new.

    Returns:
        int64 [sum of (new vocabulary size + 1)]: the old row, or NEW_ROW for a value the old vocabulary lacks.

    Raises:
        ValueError: not the same number of fields.
    """
    if len(old_vocabularies) != len(new_vocabularies):
        raise ValueError(f"the base model has {len(old_vocabularies)} fields, this model {len(new_vocabularies)}")
    sources: list[int] = []
    old_offset = 0
    for old, new in zip(old_vocabularies, new_vocabularies):
        old_index = {token: old_offset + index for index, token in enumerate(old)}
        sources.extend(old_index.get(token, NEW_ROW) for token in new)
        sources.append(old_offset + len(old))  # the field's OOV row
        old_offset += len(old) + 1
    return np.asarray(sources, dtype=np.int64)


def remap_rows(old_table: np.ndarray, new_table: np.ndarray, sources: np.ndarray) -> np.ndarray:
    """`new_table` with each row that has a source (`sources` >= 0) replaced by that row of `old_table`.

    Shapes: old [old rows, width], new [new rows, width], sources [new rows].
    """
    result = new_table.copy()
    has_source = sources != NEW_ROW
    result[has_source] = old_table[sources[has_source]]
    return result


def field_vocabularies(spec: features.DatasetSpec, tft_output: tft.TFTransformOutput) -> dict[str, list[bytes]]:
    """{vocabulary name: tokens} of every model field in id-space order, from this run's Transform; {} for prebuilt
    ids (no vocabularies: the id space is fixed)."""
    if spec.prebuilt_ids:
        return {}
    vocabularies = data.field_vocabularies(tft_output, spec)
    return {features.vocabulary_name(field): tokens for field, tokens in vocabularies.items()}


def base_vocabularies(base_model: str, names: Sequence[str]) -> list[list[bytes]]:
    """The base model's vocabularies of `names` (its SavedModel's assets).

    Raises:
        FileNotFoundError: the base model lacks one.
    """
    try:
        return field_vocabularies_io.read_field_vocabularies(os.path.join(base_model, "assets"), names)
    except FileNotFoundError as error:
        raise FileNotFoundError(f"the base model has {error}") from None


def mismatch(new_weights: dict[str, tf.Variable], old_weights: dict[str, np.ndarray], table_rows: int) -> str | None:
    """Why the old weights cannot warm-start the new ones (a missing name or another shape), or None."""
    for name, variable in new_weights.items():
        if name not in old_weights:
            return f"the base model has no weight {name}"
        old_shape, new_shape = old_weights[name].shape, tuple(variable.shape)
        is_table = bool(new_shape) and new_shape[0] == table_rows
        if (old_shape[1:] if is_table else old_shape) != (new_shape[1:] if is_table else new_shape):
            return f"weight {name} is {old_shape} in the base model, {new_shape} here"
    return None


def warm_start(model: tf.keras.Model, base_model: str, vocabularies: dict[str, list[bytes]], table_rows: int
               ) -> WarmStartReport:
    """Copies the base model's weights into the built `model` (module docstring); returns what it did.

    Args:
        model: the new model, built (its weights exist), before training.
        base_model: the base model's SavedModel folder (the Trainer's `base_model`: the champion).
        vocabularies: today's `field_vocabularies` ({} for prebuilt ids).
        table_rows: rows of this model's id-indexed tables (trainer.data.id_space).
    """
    try:
        base = tf.keras.models.load_model(base_model, compile=False)
    except Exception as error:  # noqa: BLE001 - any model that does not load as Keras (a GBDT) means a fresh start
        return _skipped(base_model, f"it does not load as a Keras model ({type(error).__name__}: {error})")
    try:
        old_vocabularies = base_vocabularies(base_model, list(vocabularies))
    except FileNotFoundError as error:
        return _skipped(base_model, str(error))
    old_weights = {weight.name: weight.numpy() for weight in base.weights}
    new_weights = {weight.name: weight for weight in model.weights}
    reason = mismatch(new_weights, old_weights, table_rows)
    if reason is not None:
        return _skipped(base_model, reason)
    if vocabularies:
        sources = row_sources(old_vocabularies, list(vocabularies.values()))
    else:  # prebuilt ids: the id space is fixed, row i is row i
        sources = np.arange(table_rows, dtype=np.int64)
    if len(sources) != table_rows:
        return _skipped(base_model, f"its vocabularies give {len(sources)} ids, this model has {table_rows}")
    for name, variable in new_weights.items():
        old = old_weights[name]
        is_table = variable.shape.rank and variable.shape[0] == table_rows
        variable.assign(remap_rows(old, variable.numpy(), sources) if is_table else old)
    report = WarmStartReport(base_model=base_model, copied_weights=len(new_weights), table_rows=table_rows,
                             rows_from_base=int(np.sum(sources != NEW_ROW)))
    logging.info("Warm start from %s: %d weights; %d of %d table rows from the base model, the rest new values",
                 base_model, report.copied_weights, report.rows_from_base, report.table_rows)
    return report


def _skipped(base_model: str, reason: str) -> WarmStartReport:
    logging.warning("No warm start from %s: %s; training starts from fresh weights", base_model, reason)
    return WarmStartReport(base_model=base_model, skipped=reason)
