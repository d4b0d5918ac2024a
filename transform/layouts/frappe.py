"""Frappe (app usage context): libFM lines of label -1/1 and one `id:value` token per field (10 fields)."""
from __future__ import annotations

from transform import parsers
from transform.layouts import avazu
from transform.spec import LABEL_KEY, DatasetSpec, ReferenceSettings, Row

FIELDS = ("user", "item", "daytime", "weekday", "isweekend", "homework", "cost", "weather", "country", "city")


def parse(line: str) -> Row:
    """label -1/1, then one `id:value` token per field; the id is the category."""
    tokens = line.split()
    parsers.check_column_count(tokens, 1 + len(FIELDS))
    row: Row = {LABEL_KEY: parsers.parse_label(tokens[0], allowed=("-1", "1"))}
    for field, token in zip(FIELDS, tokens[1:]):
        feature_id, sep, _ = token.partition(":")
        if not sep or not feature_id.isdigit():
            raise parsers.RowError(f"bad libFM token: {field} is {token!r}, expected id:value")
        row[field] = feature_id
    return row


# No reference settings for Frappe: OptFusion takes Avazu's, as the reference runs on the Frappe sample did
# (shared/data/README.md); every baseline takes a grid choice (pipeline/configs.py).
REFERENCE = ReferenceSettings(embedding_dim=40, optfusion=avazu.REFERENCE.optfusion)

LAYOUT = DatasetSpec(name="frappe", categorical_fields=FIELDS, required_fields=FIELDS, parse=parse,
                     reference=REFERENCE, slice_field="daytime")
