"""What each supported click log contains, named once for ExampleGen, Transform, the trainer and serving.

Every raw-log dataset is stored as tf.Examples with an int64 `label` (0/1) and one feature per raw field,
named as in the log. After Transform, every dataset has the same two features: `feature`, an int64
vector of global ids (one per model field, each field owning a contiguous id range) and `label` (float).
The OptFusion TFRecord layout (`tfrecord`) is already in that form.
"""
from __future__ import annotations

import dataclasses

LABEL_KEY = "label"
FEATURE_KEY = "feature"  # transformed: int64 [num_fields] global ids
GBDT_LOGIT_KEY = "gbdt_logit"  # ResFusion: the tree stage's logit, passed through Transform unchanged


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    """The raw fields of one click-log layout and how Transform turns them into model fields.

    Attributes:
        name: dataset key, as given to `--dataset`.
        integer_fields: int64 fields bucketed by floor(ln(v)^2) (Criteo); exempt from the count threshold.
        categorical_fields: string fields, each with its own vocabulary (count threshold applies).
        hour_field: Avazu's YYMMDDHH field, expanded into hour of day, weekday and is_weekend.
        required_fields: fields besides the label whose absence or anomalies block training.
        prebuilt_ids: the data already hold global ids in `feature` (OptFusion TFRecords).
    """

    name: str
    integer_fields: tuple[str, ...] = ()
    categorical_fields: tuple[str, ...] = ()
    hour_field: str | None = None
    required_fields: tuple[str, ...] = ()
    prebuilt_ids: bool = False

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

    def is_integer(self, field: str) -> bool:
        return field in self.integer_fields or field == self.hour_field


AVAZU_CATEGORICAL = (
    "C1", "banner_pos", "site_id", "site_domain", "site_category", "app_id", "app_domain", "app_category",
    "device_id", "device_ip", "device_model", "device_type", "device_conn_type",
    "C14", "C15", "C16", "C17", "C18", "C19", "C20", "C21",
)
FRAPPE_FIELDS = ("user", "item", "daytime", "weekday", "isweekend", "homework", "cost", "weather", "country", "city")

DATASETS: dict[str, DatasetSpec] = {
    "criteo": DatasetSpec(
        name="criteo",
        integer_fields=tuple(f"I{i}" for i in range(1, 14)),
        categorical_fields=tuple(f"C{i}" for i in range(1, 27)),
    ),
    "avazu": DatasetSpec(name="avazu", categorical_fields=AVAZU_CATEGORICAL, hour_field="hour",
                         required_fields=("hour",)),
    # KDD Cup 2012 track 2: the 11 columns after the click count, all categorical (as in the reference).
    "kdd12": DatasetSpec(name="kdd12", categorical_fields=tuple(f"I{i}" for i in range(1, 12))),
    "frappe": DatasetSpec(name="frappe", categorical_fields=FRAPPE_FIELDS, required_fields=FRAPPE_FIELDS),
    "tfrecord": DatasetSpec(name="tfrecord", prebuilt_ids=True, required_fields=(FEATURE_KEY,)),
}


def get_dataset(name: str) -> DatasetSpec:
    try:
        return DATASETS[name]
    except KeyError:
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}") from None


def vocabulary_name(field: str) -> str:
    """Name of the TF Transform vocabulary file of a model field."""
    return f"vocab_{field}"
