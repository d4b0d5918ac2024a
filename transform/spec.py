"""What a click-log layout is: its fields, its line parser, and the settings the papers' reference runs used on it.

One module per layout under transform/layouts/ fills a `DatasetSpec`; transform/features.py registers it. Adding a
layout touches those two files (docs/architecture.md, "Adding a dataset layout").
"""
from __future__ import annotations

import dataclasses
from typing import Callable, Mapping, Optional, Union

LABEL_KEY = "label"
FEATURE_KEY = "feature"  # transformed: int64 [num_fields] global ids
GBDT_LOGIT_KEY = "gbdt_logit"  # ResFusion: the tree stage's logit, passed through Transform unchanged
FOLD_FEATURE = "gbdt_fold"  # ResFusion: a training row's out-of-fold GBDT fold, written with GBDT_LOGIT_KEY
NO_FOLD = -1  # FOLD_FEATURE of eval/test rows, and of every row when the GBDT stage has no folds

Value = Union[int, str, None]
Row = dict[str, Value]
"""A parsed line: {field: value} with the label under LABEL_KEY (0 or 1), integers as int, categories as str and a
missing value as None."""


@dataclasses.dataclass(frozen=True)
class OptFusionReference:
    """OptFusion's search and retrain settings on one dataset (algorithms.md §1.8: search.sh, retrain.sh).

    Attributes:
        search_lr: Adam learning rate of the search's embedding and network groups.
        arch_lr: Adam learning rate of the architecture parameters (gates and operation weights).
        search_l2: coupled L2 of the search's embedding and network groups (the architecture: none).
        hard: (learning rate, coupled L2) of the Hard retrain; the Soft retrain's default too.
        soft_reference: (learning rate, coupled L2) of retrain.sh's Soft retrain (1e-7 on Avazu, 3e-8 on KDD12: at
            that rate retraining is an evaluation of the supernet, algorithms.md §1.5 problem 3).
    """

    search_lr: float
    arch_lr: float
    search_l2: float
    hard: tuple[float, float]
    soft_reference: tuple[float, float]


@dataclasses.dataclass(frozen=True)
class ReferenceSettings:
    """The settings the reference runs used on one dataset (algorithms.md §1.8).

    Attributes:
        embedding_dim: embedding width per field of every model (40 on Criteo and Avazu, 16 on KDD12).
        optfusion: OptFusion's search and retrain settings.
        baseline_lr_l2: baseline name -> (Adam learning rate, coupled L2), where hyperparam.md gives them; the other
            baselines take a grid choice (pipeline/configs.py, GRID_CHOICE_LR_L2).
    """

    embedding_dim: int
    optfusion: OptFusionReference
    baseline_lr_l2: Mapping[str, tuple[float, float]] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    """The raw fields of one click-log layout, how its lines parse, and how Transform turns them into model fields.

    Attributes:
        name: dataset key, as given to `--dataset`.
        integer_fields: int64 fields bucketed by floor(ln(v)^2) (Criteo); exempt from the count threshold.
        categorical_fields: string fields, each with its own vocabulary (count threshold applies).
        hour_field: Avazu's YYMMDDHH field, expanded into hour of day, weekday and is_weekend.
        required_fields: fields besides the label whose absence or anomalies block training.
        prebuilt_ids: the data already hold global ids in `feature` (OptFusion TFRecords).
        parse: one text line (without its newline) -> Row; raises transform.parsers.RowError naming the field.
            None for layouts that are not text (TFRecords).
        parse_unlabelled: the layout's line without its label column (its test-file layout, as Criteo's test.txt)
            -> Row without LABEL_KEY; raises RowError. None: the layout's lines always hold a label (libFM).
        is_header: whether a line is a header row (skipped and counted, not rejected); None: the layout has none.
        reference: the reference runs' settings on this dataset; None where there are none (TFRecords).
        settings_of: the layout whose reference settings and grid choices a run takes (TFRecords of unknown
            origin: Criteo's); None: its own.
        slice_field: a categorical field of few values whose slices the Evaluator reports beside the whole eval
            split; None: none (TFRecords hold ids only; KDD12's fields are anonymous).
    """

    name: str
    integer_fields: tuple[str, ...] = ()
    categorical_fields: tuple[str, ...] = ()
    hour_field: Optional[str] = None
    required_fields: tuple[str, ...] = ()
    prebuilt_ids: bool = False
    parse: Optional[Callable[[str], Row]] = dataclasses.field(default=None, compare=False)
    parse_unlabelled: Optional[Callable[[str], Row]] = dataclasses.field(default=None, compare=False)
    is_header: Optional[Callable[[str], bool]] = dataclasses.field(default=None, compare=False)
    reference: Optional[ReferenceSettings] = None
    settings_of: Optional[str] = None
    slice_field: Optional[str] = None

    @property
    def raw_fields(self) -> tuple[str, ...]:
        """Raw input fields in log order, label excluded."""
        hour = (self.hour_field,) if self.hour_field else ()
        return hour + self.integer_fields + self.categorical_fields

    @property
    def model_fields(self) -> tuple[str, ...]:
        """Fields after Transform, in the order of the `feature` vector (empty for prebuilt ids)."""
        if self.hour_field:
            return (self.hour_field,) + self.integer_fields + self.categorical_fields + ("weekday", "is_weekend")
        return self.integer_fields + self.categorical_fields

    @property
    def settings_layout(self) -> str:
        """The layout whose reference settings this one takes (`settings_of`, else its own name)."""
        return self.settings_of or self.name

    def is_integer(self, field: str) -> bool:
        """Whether raw field `field` is int64 in the log: an integer field (Criteo) or the hour field (YYMMDDHH)."""
        return field in self.integer_fields or field == self.hour_field
