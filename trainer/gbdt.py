"""The GBDT stage of ResFusion: a thin interface over TF-DF's GradientBoostedTreesModel.

Everything the rest of the project needs from a gradient-boosted tree goes through four names, so the
backend can move to YDF (`ydf.GradientBoostedTreesLearner`) without touching callers:

    GbdtParams                 frozen hyper-parameters (trees, depth, shrinkage, early stopping)
    GbdtLearner(spec, params, task).fit(train, valid) -> GbdtModel
    GbdtModel.logits(dataset) / .keras_model / .save(path)
    GbdtModel.load(path)       a fresh, embeddable model from a saved one (any process)

Inputs are the RAW fields of a click log (transform.features.DatasetSpec), not Transform's ids:
integer fields are numerical (float32, NaN when absent), string fields categorical ("" when absent;
TF-DF treats both as missing values). Avazu's YYMMDDHH `hour` is numerical, plus its hour of day.

Tasks:
- "classification": binary logloss, `apply_link_function=False`, so the model outputs the raw score
  (the logit, log-odds) that ResFusion adds to the deep model's logit before the sigmoid
  (shared/design/algorithms.md §2.3).
- "regression": squared error with example weights; ResFusion uses it for the LogitBoost step (a GBDT
  fitted to the working response of a fixed logit offset, see trainer/residual.py).

Training is TF-DF's contract: one pass over a dataset of (features, label[, weight]) batches, no
shuffle, no repeat; early stopping (LOSS_INCREASE) on the validation dataset when one is given.
"""
from __future__ import annotations

import dataclasses
import json
import os
from typing import Any, Callable, Iterable, Mapping

import numpy as np
import tensorflow as tf

from transform import features

keras = tf.keras

TASKS = ("classification", "regression")
HOUR_OF_DAY = "hour_of_day"  # derived from Avazu's YYMMDDHH `hour`
# The YDF model files inside a TF-DF SavedModel.
_ASSETS = "assets"
METADATA_FILE = "gbdt_model.json"


@dataclasses.dataclass(frozen=True)
class GbdtParams:
    """Hyper-parameters of one gradient-boosted tree model.

    Attributes:
        num_trees: maximum number of trees (early stopping may keep fewer).
        max_depth: maximum depth of each tree.
        shrinkage: learning rate of the boosting.
        min_examples: minimum examples per leaf.
        early_stopping_look_ahead: trees without a better validation loss before stopping.
        max_vocab_count: most frequent values kept per categorical field (the rest are out-of-dictionary).
        min_vocab_frequency: values rarer than this are out-of-dictionary.
        seed: random seed of the learner.
        batch_size: rows per batch when reading data (does not change the model).
    """

    num_trees: int = 300
    max_depth: int = 6
    shrinkage: float = 0.1
    min_examples: int = 5
    early_stopping_look_ahead: int = 30
    max_vocab_count: int = 2000
    min_vocab_frequency: int = 5
    seed: int = 2024
    batch_size: int = 2048


# --- raw fields -> GBDT inputs -----------------------------------------------------------------------------------

def raw_parse_spec(spec: features.DatasetSpec) -> dict[str, tf.io.VarLenFeature]:
    """tf.io parse spec of a dataset's raw fields (every one may be absent), label excluded."""
    if spec.prebuilt_ids:
        raise ValueError("the GBDT stage reads raw log fields; OptFusion TFRecords (prebuilt ids) have none")
    return {field: tf.io.VarLenFeature(tf.int64 if spec.is_integer(field) else tf.string)
            for field in spec.raw_fields}


def feature_names(spec: features.DatasetSpec) -> tuple[str, ...]:
    """The GBDT's input features, in a fixed order."""
    derived = (HOUR_OF_DAY,) if spec.hour_field else ()
    return spec.raw_fields + derived


def is_numerical(spec: features.DatasetSpec, name: str) -> bool:
    return name == HOUR_OF_DAY or spec.is_integer(name)


def _first_value(x: Any, default: Any) -> tf.Tensor:
    """A raw field as [batch]: its first value, `default` when absent."""
    if isinstance(x, tf.SparseTensor):
        x = tf.sparse.to_dense(x, default_value=default)  # [batch, longest row]; 0 columns if all absent
    x = tf.convert_to_tensor(x)
    if x.shape.rank == 1:
        return x
    # [batch, n] -> [batch]: the first value, or `default` for an empty row.
    padded = tf.concat([x, tf.fill([tf.shape(x)[0], 1], tf.constant(default, x.dtype))], axis=1)
    return padded[:, 0]


def gbdt_inputs(spec: features.DatasetSpec, parsed: Mapping[str, Any]) -> dict[str, tf.Tensor]:
    """Parsed raw fields (sparse or dense) -> {feature: [batch]}: float32 (NaN = missing) or string ("")."""
    inputs: dict[str, tf.Tensor] = {}
    for field in spec.raw_fields:
        if spec.is_integer(field):
            ints = _first_value(parsed[field], tf.int64.min)
            inputs[field] = tf.where(ints == tf.int64.min, tf.constant(np.nan, tf.float32), tf.cast(ints, tf.float32))
        else:
            inputs[field] = _first_value(parsed[field], "")
    if spec.hour_field:
        hour = inputs[spec.hour_field]
        inputs[HOUR_OF_DAY] = tf.math.floormod(hour, 100.0)  # NaN stays NaN
    return inputs


def parse_raw(spec: features.DatasetSpec, serialized: tf.Tensor) -> dict[str, tf.Tensor]:
    """Serialized raw tf.Examples [batch] -> GBDT inputs."""
    return gbdt_inputs(spec, tf.io.parse_example(serialized, raw_parse_spec(spec)))


def assign_folds(serialized: tf.Tensor, folds: int, seed: int) -> tf.Tensor:
    """Deterministic fold of each serialized example [batch] -> int64 [batch] in [0, folds).

    A keyed hash (SipHash, `tf.strings.to_hash_bucket_strong`) of the example's bytes: the same bytes get
    the same fold on any machine and runner, and duplicate rows share a fold (no leak between folds).
    """
    if folds < 2:
        raise ValueError(f"folds must be >= 2, got {folds}")
    return tf.strings.to_hash_bucket_strong(serialized, folds, key=[int(seed), FOLD_HASH_KEY])


FOLD_RULE = "fold = to_hash_bucket_strong(serialized raw tf.Example, folds, key=[seed, 0x52657346])"
FOLD_HASH_KEY = 0x52657346  # "ResF"


def input_signature(spec: features.DatasetSpec) -> dict[str, tf.TensorSpec]:
    return {name: tf.TensorSpec([None], tf.float32 if is_numerical(spec, name) else tf.string, name=name)
            for name in feature_names(spec)}


# --- learner and model -------------------------------------------------------------------------------------------

def _tfdf():
    import tensorflow_decision_forests as tfdf  # registers the SimpleML ops; heavy, so imported on use
    return tfdf


class GbdtModel:
    """A trained GBDT: raw-field inputs {feature: [batch]} -> logit (or regression value) [batch, 1]."""

    def __init__(self, keras_model: keras.Model, spec: features.DatasetSpec, task: str):
        self.keras_model = keras_model
        self.spec = spec
        self.task = task

    def __call__(self, inputs: Mapping[str, tf.Tensor]) -> tf.Tensor:
        return self.keras_model(dict(inputs))

    def logits(self, dataset: tf.data.Dataset) -> np.ndarray:
        """Raw scores [n] over a dataset of input dicts (or (inputs, ...) tuples), in dataset order."""
        outputs = []
        for batch in dataset:
            inputs = batch[0] if isinstance(batch, tuple) else batch
            outputs.append(self._predict(inputs))
        return np.concatenate(outputs) if outputs else np.zeros([0], np.float32)

    @tf.function(reduce_retracing=True)
    def _predict_graph(self, inputs):
        return self.keras_model(inputs)

    def _predict(self, inputs: Mapping[str, tf.Tensor]) -> np.ndarray:
        return self._predict_graph(dict(inputs)).numpy().reshape([-1]).astype(np.float32)

    @property
    def num_trees(self) -> int:
        return self.keras_model.make_inspector().num_trees()

    def save(self, path: str, with_serving_signature: bool = False) -> None:
        """A TF-DF SavedModel, loadable by GbdtModel.load (its YDF model is in `assets/`).

        with_serving_signature: add `serving_default` (serialized raw tf.Examples -> `probability`
        float32 [batch, 1], the sigmoid of the logit; classification only) and `logit` (-> `logit`), so the
        model can be evaluated and served on its own like every model of the project.
        """
        signatures = None
        if with_serving_signature:
            if self.task != "classification":
                raise ValueError("only a classification GBDT has a probability to serve")
            signatures = self.serving_signatures()
        self.keras_model.save(path, save_format="tf", signatures=signatures)
        with tf.io.gfile.GFile(os.path.join(path, METADATA_FILE), "w") as f:
            json.dump({"dataset": self.spec.name, "task": self.task, "backend": "tensorflow_decision_forests"}, f)

    def serving_signatures(self) -> dict[str, Any]:
        model, spec = self.keras_model, self.spec

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
        def serve(examples: tf.Tensor) -> dict[str, tf.Tensor]:
            logit = tf.reshape(tf.cast(model(parse_raw(spec, examples)), tf.float32), [-1, 1])
            return {"probability": tf.sigmoid(logit)}

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
        def logit(examples: tf.Tensor) -> dict[str, tf.Tensor]:
            return {"logit": tf.reshape(tf.cast(model(parse_raw(spec, examples)), tf.float32), [-1, 1])}

        return {"serving_default": serve.get_concrete_function(), "logit": logit.get_concrete_function()}

    @staticmethod
    def is_saved_model(path: str) -> bool:
        return tf.io.gfile.exists(os.path.join(path, METADATA_FILE))

    @classmethod
    def load(cls, path: str) -> "GbdtModel":
        """Rebuilds the model from the YDF files of a saved one, as a fresh Keras model that can be embedded in
        another Keras model and saved again (a Keras-revived SavedModel cannot)."""
        tfdf = _tfdf()
        with tf.io.gfile.GFile(os.path.join(path, METADATA_FILE)) as f:
            meta = json.load(f)
        spec = features.get_dataset(meta["dataset"])
        ydf_dir = os.path.join(path, _ASSETS)
        inspector = tfdf.inspector.make_inspector(ydf_dir)
        model = tfdf.keras.core_inference.InferenceCoreModel(task=inspector.task, verbose=0)
        model._set_from_yggdrasil_model(  # pylint: disable=protected-access  (what yggdrasil_model_to_keras_model does)
            inspector, ydf_dir, input_model_signature_fn=lambda _: input_signature(spec))
        return cls(model, spec, meta["task"])


class GbdtLearner:
    """Trains a TF-DF GradientBoostedTreesModel on raw fields.

    Args:
        spec: the dataset's raw fields.
        params: hyper-parameters.
        task: "classification" (binary logloss; outputs the logit) or "regression" (weighted squared error).
    """

    def __init__(self, spec: features.DatasetSpec, params: GbdtParams = GbdtParams(), task: str = "classification"):
        if task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {task!r}")
        raw_parse_spec(spec)  # rejects datasets without raw fields
        self.spec = spec
        self.params = params
        self.task = task

    def _make_model(self) -> keras.Model:
        tfdf = _tfdf()
        semantics = [
            tfdf.keras.FeatureUsage(
                name=name,
                semantic=tfdf.keras.FeatureSemantic.NUMERICAL if is_numerical(self.spec, name)
                else tfdf.keras.FeatureSemantic.CATEGORICAL,
                min_vocab_frequency=None if is_numerical(self.spec, name) else self.params.min_vocab_frequency)
            for name in feature_names(self.spec)]
        p = self.params
        return tfdf.keras.GradientBoostedTreesModel(
            task=tfdf.keras.Task.CLASSIFICATION if self.task == "classification" else tfdf.keras.Task.REGRESSION,
            features=semantics,
            exclude_non_specified_features=True,
            apply_link_function=False,  # the raw score: a logit for classification
            num_trees=p.num_trees,
            max_depth=p.max_depth,
            shrinkage=p.shrinkage,
            min_examples=p.min_examples,
            early_stopping="LOSS_INCREASE",
            early_stopping_num_trees_look_ahead=p.early_stopping_look_ahead,
            max_vocab_count=p.max_vocab_count,
            # NA conditions (YDF >= 1.5) are left off: older inference engines (TF Serving's) cannot read them.
            allow_na_conditions=False,
            random_seed=p.seed,
            verbose=0,
        )

    def fit(self, train: tf.data.Dataset, valid: tf.data.Dataset | None = None) -> GbdtModel:
        """train/valid: one pass of (inputs, label[, weight]) batches, unshuffled. Early-stops on `valid`."""
        model = self._make_model()
        model.fit(train, validation_data=valid, verbose=0)
        return GbdtModel(model, self.spec, self.task)


def read_records(files: Iterable[str]) -> tf.data.Dataset:
    """Serialized records of TFRecord files, in file order (".gz" files are GZIP-compressed)."""
    files = sorted(files)
    if not files:
        raise FileNotFoundError("no TFRecord files to read")
    compressed = {f.endswith(".gz") for f in files}
    if len(compressed) != 1:
        raise ValueError(f"mixed compressed and plain TFRecord files: {files}")
    return tf.data.TFRecordDataset(files, compression_type="GZIP" if compressed.pop() else "")


def examples_dataset(files: Iterable[str], spec: features.DatasetSpec, batch_size: int,
                     row_filter: Callable[[tf.Tensor], tf.Tensor] | None = None) -> tf.data.Dataset:
    """One unshuffled pass over raw tf.Example TFRecords as (GBDT inputs, label float32 [batch]) batches.

    row_filter: keeps the serialized rows for which it returns True (e.g. the rows outside one fold).
    """
    label_spec = {features.LABEL_KEY: tf.io.FixedLenFeature([1], tf.int64)}
    parse_spec = {**raw_parse_spec(spec), **label_spec}

    def parse(serialized):
        parsed = tf.io.parse_example(serialized, parse_spec)
        return gbdt_inputs(spec, parsed), tf.cast(tf.reshape(parsed[features.LABEL_KEY], [-1]), tf.float32)

    records = read_records(files)
    if row_filter is not None:
        records = records.filter(row_filter)
    return records.batch(batch_size).map(parse).prefetch(tf.data.AUTOTUNE)
