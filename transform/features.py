"""The supported click-log layouts, named once for ExampleGen, Transform, the trainer and serving.

Every raw-log dataset is stored as tf.Examples with an int64 `label` (0/1) and one feature per raw field,
named as in the log. After Transform, every dataset has the same two features: `feature`, an int64
vector of global ids (one per model field, each field owning a contiguous id range) and `label` (float).
The OptFusion TFRecord layout (`tfrecord`) is already in that form.

A layout is a module of transform/layouts/ (fields, parser, reference settings: transform/spec.py); DATASETS below
registers it.
"""
from __future__ import annotations

from transform.layouts import avazu, criteo, frappe, kdd12, tfrecord
from transform.parsers import RowError
from transform.spec import FEATURE_KEY, FOLD_FEATURE, GBDT_LOGIT_KEY, LABEL_KEY, NO_FOLD, DatasetSpec, Row

__all__ = ["DATASETS", "FEATURE_KEY", "FOLD_FEATURE", "GBDT_LOGIT_KEY", "LABEL_KEY", "NO_FOLD", "DatasetSpec",
           "get_dataset", "is_header", "parse_line", "skipped_line", "text_layouts", "vocabulary_name",
           "HEADER_LINE", "EMPTY_LINE"]

DATASETS: dict[str, DatasetSpec] = {
    layout.LAYOUT.name: layout.LAYOUT for layout in (criteo, avazu, kdd12, frappe, tfrecord)
}


def get_dataset(name: str) -> DatasetSpec:
    """The layout called `name`; raises ValueError listing the known ones."""
    try:
        return DATASETS[name]
    except KeyError:
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}") from None


def text_layouts() -> tuple[str, ...]:
    """The layouts read from text logs (those with a line parser), in registry order."""
    return tuple(name for name, spec in DATASETS.items() if spec.parse is not None)


def parse_line(log_format: str, line: str, labelled: bool = True) -> Row:
    """One line (without its newline) of a `log_format` log -> Row; `labelled=False`: a line of the layout's
    unlabelled (test-file) form, parsed to a Row without the label.

    Raises:
        RowError: an empty or malformed line (the reason names the field).
        ValueError: `log_format` is not a text layout, or has no unlabelled form.
    """
    spec = get_dataset(log_format)
    if spec.parse is None:
        raise ValueError(f"{log_format!r} is not a text log; choose one of {', '.join(text_layouts())}")
    parse = spec.parse if labelled else spec.parse_unlabelled
    if parse is None:
        raise ValueError(f"{log_format!r} lines always hold a label; it has no unlabelled form")
    if line.strip() == "":
        raise RowError("empty line")
    return parse(line)


def is_header(log_format: str, line: str) -> bool:
    """Whether `line` is a header row of the layout, to skip: at the top of a file, or anywhere in it (files
    concatenated with `cat` repeat their headers). A header can never be a data row: its label is not one."""
    spec = get_dataset(log_format)
    return spec.is_header is not None and spec.is_header(line)


# Lines that are not data: skipped, and counted by kind (RawLogExampleGen's `header_line_count`, `empty_line_count`).
HEADER_LINE, EMPTY_LINE = "header_line", "empty_line"


def skipped_line(log_format: str, line: str) -> str | None:
    """HEADER_LINE or EMPTY_LINE for a line that is not data and is skipped (and counted) rather than rejected;
    None for a line to parse."""
    if is_header(log_format, line):
        return HEADER_LINE
    return EMPTY_LINE if not line.strip() else None


def vocabulary_name(field: str) -> str:
    """Name of the TF Transform vocabulary file of a model field."""
    return f"vocab_{field}"
