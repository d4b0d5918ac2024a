"""Criteo (Kaggle display advertising challenge): TSV of label, 13 integer and 26 categorical fields."""
from __future__ import annotations

from transform import parsers
from transform.spec import LABEL_KEY, DatasetSpec, OptFusionReference, ReferenceSettings, Row

INTEGER_FIELDS = tuple(f"I{i}" for i in range(1, 14))
CATEGORICAL_FIELDS = tuple(f"C{i}" for i in range(1, 27))


def _feature_columns(columns: list[str]) -> Row:
    row: Row = {}
    for field, text in zip(INTEGER_FIELDS, columns[:len(INTEGER_FIELDS)]):
        row[field] = parsers.parse_int(text, field)
    for field, text in zip(CATEGORICAL_FIELDS, columns[len(INTEGER_FIELDS):]):
        row[field] = parsers.category(text)
    return row


def parse(line: str) -> Row:
    """label, I1..I13 (integers, may be empty), C1..C26 (hex strings, may be empty)."""
    columns = line.split("\t")
    parsers.check_column_count(columns, 1 + len(INTEGER_FIELDS) + len(CATEGORICAL_FIELDS))
    return {LABEL_KEY: parsers.parse_label(columns[0]), **_feature_columns(columns[1:])}


def parse_unlabelled(line: str) -> Row:
    """Criteo's test.txt layout: I1..I13 and C1..C26 without the label column."""
    columns = line.split("\t")
    parsers.check_column_count(columns, len(INTEGER_FIELDS) + len(CATEGORICAL_FIELDS))
    return _feature_columns(columns)


# algorithms.md §1.8. Baselines: hyperparam.md's Criteo column (the DNN baseline is its FNN network, an MLP over the
# field embeddings, so it takes FNN's row); LR and FM: grid choices (pipeline/configs.py).
REFERENCE = ReferenceSettings(
    embedding_dim=40,
    optfusion=OptFusionReference(search_lr=3e-4, arch_lr=3e-1, search_l2=3e-6, hard=(3e-4, 3e-6),
                                 soft_reference=(3e-4, 3e-6)),
    baseline_lr_l2={"dnn": (1e-3, 3e-6), "deepfm": (3e-4, 1e-6), "ipnn": (3e-3, 3e-6), "dcn": (2e-3, 3e-6),
                    "xdeepfm": (3e-3, 3e-7), "dcnv2": (1e-3, 5e-6)},
)

# C9: 3 values in the full Criteo log (C1 has over a thousand), and one of the planted effects of data_gen's rows.
LAYOUT = DatasetSpec(name="criteo", integer_fields=INTEGER_FIELDS, categorical_fields=CATEGORICAL_FIELDS, parse=parse,
                     parse_unlabelled=parse_unlabelled,
                     reference=REFERENCE, slice_field="C9")
