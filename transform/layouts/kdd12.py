"""KDD Cup 2012 track 2: TSV of the click count, then 11 categorical fields (as in the reference)."""
from __future__ import annotations

from transform import parsers
from transform.spec import LABEL_KEY, DatasetSpec, OptFusionReference, ReferenceSettings, Row

CATEGORICAL_FIELDS = tuple(f"I{i}" for i in range(1, 12))


def parse(line: str) -> Row:
    """click count (label = clicks > 0), then 11 categorical fields I1..I11."""
    columns = line.split("\t")
    parsers.check_column_count(columns, 1 + len(CATEGORICAL_FIELDS))
    clicks = parsers.parse_int(columns[0], "clicks")
    if clicks is None or clicks < 0:
        raise parsers.RowError(f"bad label: clicks is {columns[0]!r}, expected a count >= 0")
    return {LABEL_KEY: int(clicks > 0), **_feature_columns(columns[1:])}


def _feature_columns(columns: list[str]) -> Row:
    return {field: parsers.category(text) for field, text in zip(CATEGORICAL_FIELDS, columns)}


def parse_unlabelled(line: str) -> Row:
    """The 11 categorical fields without the click count (a log of impressions to score)."""
    columns = line.split("\t")
    parsers.check_column_count(columns, len(CATEGORICAL_FIELDS))
    return _feature_columns(columns)


# algorithms.md §1.8 (hyperparam.md's KDD12 column; LR and FM: grid choices, pipeline/configs.py). Embedding 16:
# retrain.sh's 40 is a bug of the reference (§1.5 item 2).
REFERENCE = ReferenceSettings(
    embedding_dim=16,
    optfusion=OptFusionReference(search_lr=3e-3, arch_lr=1e-2, search_l2=0.0, hard=(2e-3, 0.0),
                                 soft_reference=(3e-8, 0.0)),
    baseline_lr_l2={"dnn": (3e-5, 1e-6), "deepfm": (3e-5, 1e-5), "ipnn": (3e-5, 1e-6), "dcn": (3e-5, 1e-6),
                    "xdeepfm": (3e-5, 1e-6), "dcnv2": (3e-5, 1e-7)},
)

LAYOUT = DatasetSpec(name="kdd12", categorical_fields=CATEGORICAL_FIELDS, parse=parse,
                     parse_unlabelled=parse_unlabelled, reference=REFERENCE)
