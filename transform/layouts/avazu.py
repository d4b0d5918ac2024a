"""Avazu (Kaggle CTR prediction): CSV of id, click, hour (YYMMDDHH) and 21 categorical fields."""
from __future__ import annotations

import csv
import datetime

from transform import parsers
from transform.spec import LABEL_KEY, DatasetSpec, OptFusionReference, ReferenceSettings, Row

CATEGORICAL_FIELDS = (
    "C1", "banner_pos", "site_id", "site_domain", "site_category", "app_id", "app_domain", "app_category",
    "device_id", "device_ip", "device_model", "device_type", "device_conn_type",
    "C14", "C15", "C16", "C17", "C18", "C19", "C20", "C21",
)
HEADER = ("id", "click", "hour") + CATEGORICAL_FIELDS


def _columns(line: str) -> list[str]:
    # csv's rules only when a field is quoted (an export from a spreadsheet or pandas): plain split is 3x faster.
    return next(csv.reader([line])) if '"' in line else line.split(",")


def is_header(line: str) -> bool:
    """A header row (id,click,hour,... or the unlabelled test file's id,hour,...), quoted or not."""
    return _columns(line)[:2] in (["id", "click"], ["id", "hour"])


def _parse_hour(text: str) -> int:
    try:
        if len(text) != 8 or not text.isdigit():
            raise ValueError(text)
        datetime.datetime.strptime(text, "%y%m%d%H")  # a real date and an hour 00-23
    except ValueError:
        raise parsers.RowError(f"bad hour: hour is {text!r}, expected YYMMDDHH") from None
    return int(text)


def _feature_columns(columns: list[str]) -> Row:
    row: Row = {"hour": _parse_hour(columns[0])}
    for field, text in zip(CATEGORICAL_FIELDS, columns[1:]):
        row[field] = parsers.category(text)
    return row


def parse(line: str) -> Row:
    """id (dropped), click (label), hour (YYMMDDHH), 21 categorical fields."""
    columns = _columns(line)
    parsers.check_column_count(columns, len(HEADER))
    return {LABEL_KEY: parsers.parse_label(columns[1], field="click"), **_feature_columns(columns[2:])}


def parse_unlabelled(line: str) -> Row:
    """Avazu's test.csv layout: id (dropped), hour, 21 categorical fields; no click column."""
    columns = _columns(line)
    parsers.check_column_count(columns, len(HEADER) - 1)
    return _feature_columns(columns[1:])


# algorithms.md §1.8 (hyperparam.md's Avazu column; LR and FM: grid choices, pipeline/configs.py).
REFERENCE = ReferenceSettings(
    embedding_dim=40,
    optfusion=OptFusionReference(search_lr=1e-3, arch_lr=1e-1, search_l2=0.0, hard=(1e-3, 0.0),
                                 soft_reference=(1e-7, 0.0)),
    baseline_lr_l2={"dnn": (1e-3, 3e-6), "deepfm": (3e-4, 3e-6), "ipnn": (1e-3, 3e-6), "dcn": (1e-4, 3e-6),
                    "xdeepfm": (2e-3, 2e-7), "dcnv2": (3e-4, 3e-6)},
)

LAYOUT = DatasetSpec(name="avazu", categorical_fields=CATEGORICAL_FIELDS, hour_field="hour", required_fields=("hour",),
                     parse=parse, parse_unlabelled=parse_unlabelled, is_header=is_header, reference=REFERENCE,
                     slice_field="banner_pos")
