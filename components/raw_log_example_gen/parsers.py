"""Line parsers for the supported click-log layouts. Pure functions: text line in, field values out.

A parser returns a dict {field: value} with the label under `label` (0 or 1), integers as int,
categories as str, and a missing value as None; or raises `RowError` with a reason that names the
field. The caller adds the file name and line number.
"""
from __future__ import annotations

import datetime
from typing import Callable, Optional, Union

from transform import features

Value = Union[int, str, None]
Row = dict[str, Value]


class RowError(ValueError):
    """A malformed row; the message says what is wrong and names the field."""


def _check_column_count(columns: list[str], expected: int) -> None:
    if len(columns) != expected:
        raise RowError(f"wrong column count: expected {expected}, got {len(columns)}")


def _parse_label(text: str, field: str = "label", allowed: tuple[str, ...] = ("0", "1")) -> int:
    if text not in allowed:
        raise RowError(f"bad label: {field} is {text!r}, expected one of {', '.join(allowed)}")
    return 1 if text == allowed[-1] else 0


def _parse_int(text: str, field: str) -> Optional[int]:
    if text == "":
        return None
    try:
        return int(text)
    except ValueError:
        raise RowError(f"non-numeric integer field: {field} is {text!r}") from None


def _category(text: str) -> Optional[str]:
    return text if text != "" else None


_CRITEO = features.DATASETS["criteo"]


def parse_criteo(line: str) -> Row:
    """Criteo Kaggle TSV: label, I1..I13 (integers, may be empty), C1..C26 (hex strings, may be empty)."""
    columns = line.split("\t")
    _check_column_count(columns, 1 + len(_CRITEO.integer_fields) + len(_CRITEO.categorical_fields))
    row: Row = {features.LABEL_KEY: _parse_label(columns[0])}
    n_int = len(_CRITEO.integer_fields)
    for field, text in zip(_CRITEO.integer_fields, columns[1:1 + n_int]):
        row[field] = _parse_int(text, field)
    for field, text in zip(_CRITEO.categorical_fields, columns[1 + n_int:]):
        row[field] = _category(text)
    return row


AVAZU_HEADER = ("id", "click", "hour") + features.AVAZU_CATEGORICAL


def is_avazu_header(line: str) -> bool:
    return line.split(",")[:2] == ["id", "click"]


def _parse_avazu_hour(text: str) -> int:
    try:
        if len(text) != 8 or not text.isdigit():
            raise ValueError(text)
        datetime.datetime.strptime(text, "%y%m%d%H")  # a real date and an hour 00-23
    except ValueError:
        raise RowError(f"bad hour: hour is {text!r}, expected YYMMDDHH") from None
    return int(text)


def parse_avazu(line: str) -> Row:
    """Avazu CSV: id (dropped), click (label), hour (YYMMDDHH), 21 categorical fields."""
    columns = line.split(",")
    _check_column_count(columns, len(AVAZU_HEADER))
    row: Row = {features.LABEL_KEY: _parse_label(columns[1], field="click"), "hour": _parse_avazu_hour(columns[2])}
    for field, text in zip(features.AVAZU_CATEGORICAL, columns[3:]):
        row[field] = _category(text)
    return row


def parse_kdd12(line: str) -> Row:
    """KDD Cup 2012 track 2 TSV: click count (label = clicks > 0), then 11 categorical fields I1..I11."""
    columns = line.split("\t")
    fields = features.DATASETS["kdd12"].categorical_fields
    _check_column_count(columns, 1 + len(fields))
    clicks = _parse_int(columns[0], "clicks")
    if clicks is None or clicks < 0:
        raise RowError(f"bad label: clicks is {columns[0]!r}, expected a count >= 0")
    row: Row = {features.LABEL_KEY: int(clicks > 0)}
    for field, text in zip(fields, columns[1:]):
        row[field] = _category(text)
    return row


def parse_frappe(line: str) -> Row:
    """Frappe libFM: label -1/1, then one `id:value` token per field (10 fields); the id is the category."""
    tokens = line.split()
    fields = features.FRAPPE_FIELDS
    _check_column_count(tokens, 1 + len(fields))
    row: Row = {features.LABEL_KEY: _parse_label(tokens[0], allowed=("-1", "1"))}
    for field, token in zip(fields, tokens[1:]):
        feature_id, sep, _ = token.partition(":")
        if not sep or not feature_id.isdigit():
            raise RowError(f"bad libFM token: {field} is {token!r}, expected id:value")
        row[field] = feature_id
    return row


PARSERS: dict[str, Callable[[str], Row]] = {
    "criteo": parse_criteo,
    "avazu": parse_avazu,
    "kdd12": parse_kdd12,
    "frappe": parse_frappe,
}


def parse_line(log_format: str, line: str) -> Row:
    """Parses one line (without its newline); raises RowError for empty or malformed rows."""
    if line.strip() == "":
        raise RowError("empty line")
    return PARSERS[log_format](line)


def is_header(log_format: str, line: str, line_number: int) -> bool:
    """Avazu files may start with a header row; it is skipped, not rejected."""
    return log_format == "avazu" and line_number == 1 and is_avazu_header(line)
