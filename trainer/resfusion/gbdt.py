"""The GBDT stage of ResFusion: a thin interface over TF-DF's GradientBoostedTreesModel.

Everything the rest of the project needs from a gradient-boosted tree goes through five names, so the
backend can move to YDF (`ydf.GradientBoostedTreesLearner`) without touching callers:

    GbdtParams                 frozen hyper-parameters (trees, depth, shrinkage, early stopping, categorical splits)
    GbdtInputs(spec[, F])      what the GBDT reads from a serialized tf.Example of one dataset layout
    GbdtLearner(inputs, params, task).fit(train, valid) -> GbdtModel
    GbdtModel.logits(dataset) / .keras_model / .save(path)
    GbdtModel.load(path)       a fresh, embeddable model from a saved one (any process)

Inputs (GbdtInputs):
- raw click logs (transform.features.DatasetSpec with raw fields): integer fields are numerical (float32,
  NaN when absent), string fields categorical ("" when absent; TF-DF treats both as missing values).
  Avazu's YYMMDDHH `hour` is numerical, plus its hour of day.
- OptFusion TFRecords (`prebuilt_ids`: `label` float[1], `feature` int64[F] global ids): the F id columns
  `id_000` .. are F categorical features, each id as its decimal string ("" when the column is absent or
  negative). That is how a tuned LightGBM reads these rows (ids as categorical features).

Tasks:
- "classification": binary logloss, `apply_link_function=False`, so the model outputs the raw score
  (the logit, log-odds) that ResFusion adds to the deep model's logit before the sigmoid
  (shared/design/algorithms.md §2.3).
- "regression": squared error with example weights; ResFusion uses it for the LogitBoost step (a GBDT
  fitted to the working response of a fixed logit offset, see trainer/resfusion/).

Training is TF-DF's contract: one pass over a dataset of (features, label[, weight]) batches, no
shuffle, no repeat; early stopping (LOSS_INCREASE) on the validation dataset when one is given.
"""
from __future__ import annotations

import dataclasses
import json
import os
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np
import tensorflow as tf

from trainer import contract
from transform import features, preprocessing

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
        max_vocab_count: most frequent values kept per categorical field (the rest are out-of-dictionary);
            -1 keeps every value; None (default): by layout, see vocabulary(). A tree's training time grows with
            it more than with the rows (docs/scaling.md, "The GBDT's cost").
        min_vocab_frequency: values rarer than this are out-of-dictionary; None (default): by layout.
        categorical_algorithm: how a categorical feature is split: "CART" (values ordered by their mean
            gradient, one threshold: LightGBM's approach), "RANDOM" or "ONE_HOT" (YDF's names).
        l2_categorical_regularization: L2 on categorical splits (YDF; LightGBM's cat_l2). YDF uses it in the
            hessian split gain only: without use_hessian_gain, 1.0 and 10.0 give the same model (measured on
            Frappe, benchmarks/gbdt_vs_lightgbm.py).
        l2_regularization: L2 on the leaf values of every split.
        growing_strategy: "LOCAL" (depth-wise, max_depth) or "BEST_FIRST_GLOBAL" (leaf-wise as LightGBM,
            at most max_num_nodes nodes per tree).
        max_num_nodes: node budget of a tree under BEST_FIRST_GLOBAL (ignored otherwise).
        subsample: fraction of the training rows each tree sees (1.0: all).
        use_hessian_gain: score splits with the second-order (gradient / hessian) gain, as LightGBM and XGBoost
            do, instead of YDF's default first-order gain.
        seed: random seed of the learner.
        batch_size: rows per batch when reading data (does not change the model).
        training_fraction: the share of the training rows the GBDT and its fold models train on (1.0: all), a
            deterministic hash sample (in_training_sample) for training sets beyond one worker's memory: TF-DF
            holds its training rows in memory. Every row is still scored, in a Beam pass, and the training rows'
            logits stay out-of-fold (fold model j trains on sampled rows outside fold j). docs/resfusion.md, "The
            GBDT beyond one machine".
    """

    num_trees: int = 300
    max_depth: int = 6
    shrinkage: float = 0.1
    min_examples: int = 5
    early_stopping_look_ahead: int = 30
    max_vocab_count: int | None = None
    min_vocab_frequency: int | None = None
    categorical_algorithm: str = "CART"
    l2_categorical_regularization: float = 1.0
    l2_regularization: float = 0.0
    growing_strategy: str = "LOCAL"
    max_num_nodes: int = 63
    subsample: float = 1.0
    use_hessian_gain: bool = False
    seed: int = contract.REFERENCE_SEED
    batch_size: int = 2048
    training_fraction: float = 1.0

    def __post_init__(self) -> None:
        if not 0.0 < self.training_fraction <= 1.0:
            raise ValueError(f"training_fraction must be in (0, 1], got {self.training_fraction}")

    @property
    def max_leaves(self) -> int:
        """An upper bound of the leaves of one tree: 2^max_depth (LOCAL), at most (max_num_nodes + 1) / 2
        under BEST_FIRST_GLOBAL (a negative max_depth: no depth limit)."""
        by_depth = 2 ** self.max_depth if self.max_depth >= 0 else None
        if self.growing_strategy == "BEST_FIRST_GLOBAL":
            by_nodes = (self.max_num_nodes + 1) // 2
            return min(by_nodes, by_depth) if by_depth is not None else by_nodes
        if by_depth is None:
            raise ValueError("a LOCAL-grown tree needs max_depth >= 0")
        return by_depth

    def vocabulary(self, inputs: "GbdtInputs") -> tuple[int, int]:
        """(max_vocab_count, min_vocab_frequency) for a layout: the set values, else by layout.

        Raw logs: the 2,000 most frequent values of a field, each seen >= 5 times (raw values are unfiltered).
        OptFusion TFRecords (prebuilt ids): every id, however rare (-1, 1): the reference preprocessing already
        kept only values seen >= 2 times and gave each field one OOV id, so a further cut only sends kept ids
        out of the dictionary (Frappe's item field alone has 4,082 ids). Measured on Frappe's TFRecord
        validation split (300 trees of depth 6 at most, early stopping): eval AUC .919 with (2000, 5), .932
        with every id.
        """
        prebuilt = inputs.spec.prebuilt_ids
        return (self.max_vocab_count if self.max_vocab_count is not None else (-1 if prebuilt else 2000),
                self.min_vocab_frequency if self.min_vocab_frequency is not None else (1 if prebuilt else 5))


# --- tf.Example -> GBDT inputs ----------------------------------------------------------------------------------

ID_COLUMN_PREFIX = "id_"  # prebuilt ids: column i of `feature` is the categorical feature id_{i:03d}
MISSING_ID = -1


def _single_value(x: Any, default: Any, field: str) -> tf.Tensor:
    """A raw field as [batch], `default` when absent; more than one value is an error naming the field, as in the
    Transform graph of the other models (transform.preprocessing.single_value)."""
    if isinstance(x, tf.SparseTensor):
        return preprocessing.single_value(x, default, field)
    x = tf.convert_to_tensor(x)
    return x if x.shape.rank == 1 else tf.reshape(x, [-1])  # a dense [batch, 1]


def _fixed_width(x: Any, width: int, default: int) -> tf.Tensor:
    """int64 [batch, n] (sparse or dense, n any) -> [batch, width]: padded with `default`, or cut."""
    if isinstance(x, tf.SparseTensor):
        x = tf.sparse.to_dense(x, default_value=default)
    x = tf.convert_to_tensor(x)
    if x.shape.rank == 1:
        x = x[:, None]
    padded = tf.concat([x, tf.fill([tf.shape(x)[0], width], tf.constant(default, x.dtype))], axis=1)
    return padded[:, :width]


@dataclasses.dataclass(frozen=True)
class GbdtInputs:
    """What a GBDT reads from the serialized tf.Examples of one dataset layout, and its label.

    Attributes:
        spec: the dataset layout (transform.features.DATASETS).
        num_id_fields: F, the length of `feature` for a prebuilt-id layout (OptFusion TFRecords: each id
            column is one categorical feature); 0 for raw click logs, whose fields the spec names.

    Raises:
        ValueError: a prebuilt-id layout without F >= 1, or a raw layout with F.
    """

    spec: features.DatasetSpec
    num_id_fields: int = 0

    def __post_init__(self) -> None:
        if self.spec.prebuilt_ids and self.num_id_fields < 1:
            raise ValueError(f"{self.spec.name}: prebuilt ids need num_id_fields >= 1 (the length of "
                             f"`{features.FEATURE_KEY}`), got {self.num_id_fields}")
        if not self.spec.prebuilt_ids and self.num_id_fields:
            raise ValueError(f"{self.spec.name} has raw fields, not prebuilt ids; num_id_fields must be 0")

    @classmethod
    def from_files(cls, spec: features.DatasetSpec, files: Iterable[str]) -> "GbdtInputs":
        """The layout of a dataset's TFRecords; for prebuilt ids F is read from the first record.

        Raises:
            ValueError: prebuilt ids and the first record has no `feature` ids.
        """
        if not spec.prebuilt_ids:
            return cls(spec)
        for serialized in read_records(files).take(1):
            example = tf.train.Example.FromString(serialized.numpy())
            width = len(example.features.feature[features.FEATURE_KEY].int64_list.value)
            if width < 1:
                raise ValueError(f"the first record of {sorted(files)[0]} has no `{features.FEATURE_KEY}` ids")
            return cls(spec, width)
        raise ValueError(f"no records in {sorted(files)}")

    @property
    def label_dtype(self) -> tf.DType:
        """The stored label's type: int64 in raw logs, float32 in OptFusion TFRecords."""
        return tf.float32 if self.spec.prebuilt_ids else tf.int64

    @property
    def feature_names(self) -> tuple[str, ...]:
        """The GBDT's input features, in a fixed order."""
        if self.spec.prebuilt_ids:
            width = max(3, len(str(self.num_id_fields - 1)))
            return tuple(f"{ID_COLUMN_PREFIX}{i:0{width}d}" for i in range(self.num_id_fields))
        derived = (HOUR_OF_DAY,) if self.spec.hour_field else ()
        return self.spec.raw_fields + derived

    def is_numerical(self, name: str) -> bool:
        """Whether input feature `name` is numerical (float32, NaN = missing) rather than categorical (string)."""
        return not self.spec.prebuilt_ids and (name == HOUR_OF_DAY or self.spec.is_integer(name))

    def parse_spec(self) -> dict[str, tf.io.VarLenFeature]:
        """tf.io parse spec of what the GBDT reads (every field may be absent), label excluded."""
        if self.spec.prebuilt_ids:
            return {features.FEATURE_KEY: tf.io.VarLenFeature(tf.int64)}
        return {field: tf.io.VarLenFeature(tf.int64 if self.spec.is_integer(field) else tf.string)
                for field in self.spec.raw_fields}

    def from_parsed(self, parsed: Mapping[str, Any]) -> dict[str, tf.Tensor]:
        """Parsed fields (sparse or dense) -> {feature: [batch]}: float32 (NaN = missing) or string ("")."""
        inputs: dict[str, tf.Tensor] = {}
        if self.spec.prebuilt_ids:
            ids = _fixed_width(parsed[features.FEATURE_KEY], self.num_id_fields, MISSING_ID)  # int64 [batch, F]
            tokens = tf.where(ids < 0, tf.constant("", tf.string), tf.strings.as_string(ids))
            for i, name in enumerate(self.feature_names):
                inputs[name] = tokens[:, i]
            return inputs
        spec = self.spec
        for field in spec.raw_fields:
            if spec.is_integer(field):
                ints = _single_value(parsed[field], tf.int64.min, field)
                inputs[field] = tf.where(ints == tf.int64.min, tf.constant(np.nan, tf.float32),
                                         tf.cast(ints, tf.float32))
            else:
                inputs[field] = _single_value(parsed[field], "", field)
        if spec.hour_field:
            inputs[HOUR_OF_DAY] = tf.math.floormod(inputs[spec.hour_field], 100.0)  # NaN stays NaN
        return inputs

    def parse(self, serialized: tf.Tensor) -> dict[str, tf.Tensor]:
        """Serialized tf.Examples [batch] -> GBDT inputs {feature: [batch]}."""
        return self.from_parsed(tf.io.parse_example(serialized, self.parse_spec()))

    def input_signature(self) -> dict[str, tf.TensorSpec]:
        """{feature: TensorSpec([None], float32 or string)}: the GBDT model's inputs, as `parse` returns them."""
        return {name: tf.TensorSpec([None], tf.float32 if self.is_numerical(name) else tf.string, name=name)
                for name in self.feature_names}

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form: {"dataset": the layout's name, "num_id_fields": F}."""
        return {"dataset": self.spec.name, "num_id_fields": self.num_id_fields}

    @classmethod
    def from_dict(cls, config: Mapping[str, Any]) -> "GbdtInputs":
        """Inverse of `to_dict`; raises ValueError on an unknown dataset or an invalid F."""
        return cls(features.get_dataset(config["dataset"]), int(config.get("num_id_fields", 0)))


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
SAMPLE_HASH_KEY = 0x53616D70  # "Samp": independent of the folds' hash
SAMPLE_BUCKETS = 1_000_000
SAMPLE_RULE = (f"kept = to_hash_bucket_strong(serialized raw tf.Example, {SAMPLE_BUCKETS}, key=[seed, 0x53616D70]) "
               f"< training_fraction * {SAMPLE_BUCKETS}")


def in_training_sample(serialized: tf.Tensor, fraction: float, seed: int) -> tf.Tensor:
    """Whether each serialized example [batch] is in the GBDT's training sample, bool [batch] (SAMPLE_RULE): a keyed
    hash of its bytes, so the sample is the same on any machine and runner and independent of the folds."""
    buckets = tf.strings.to_hash_bucket_strong(serialized, SAMPLE_BUCKETS, key=[int(seed), SAMPLE_HASH_KEY])
    return buckets < int(round(fraction * SAMPLE_BUCKETS))


# --- learner and model -------------------------------------------------------------------------------------------

def _tfdf():
    import tensorflow_decision_forests as tfdf  # registers the SimpleML ops; heavy, so imported on use
    return tfdf


class GbdtModel:
    """A trained GBDT: GBDT inputs {feature: [batch]} (GbdtInputs) -> logit (or regression value) [batch, 1]."""

    def __init__(self, keras_model: tf.keras.Model, inputs: GbdtInputs, task: str):
        self.keras_model = keras_model
        self.inputs = inputs
        self.task = task

    @property
    def spec(self) -> features.DatasetSpec:
        """The dataset layout the model reads."""
        return self.inputs.spec

    def __call__(self, inputs: Mapping[str, tf.Tensor]) -> tf.Tensor:
        """GBDT inputs {feature: [B]} -> raw score (logit, or regression value) float32 [B, 1]."""
        return self.keras_model(dict(inputs))

    def logits(self, dataset: tf.data.Dataset) -> np.ndarray:
        """Raw scores [n] over a dataset of input dicts (or (inputs, ...) tuples), in dataset order."""
        outputs = []
        for batch in dataset:
            inputs = batch[0] if isinstance(batch, tuple) else batch
            outputs.append(self.predict_logits(inputs))
        return np.concatenate(outputs) if outputs else np.zeros([0], np.float32)

    def logits_of_examples(self, serialized: Sequence[bytes] | tf.Tensor) -> np.ndarray:
        """Raw scores float32 [n] of serialized tf.Examples [n] (one batch)."""
        return self.predict_logits(self.inputs.parse(tf.constant(serialized) if not tf.is_tensor(serialized)
                                                     else serialized))

    @tf.function(reduce_retracing=True)
    def _predict_graph(self, inputs):
        return self.keras_model(inputs)

    def predict_logits(self, inputs: Mapping[str, tf.Tensor]) -> np.ndarray:
        """Raw scores float32 [B] of parsed GBDT inputs {name: [B]} (GbdtInputs.parse / from_parsed)."""
        return self._predict_graph(dict(inputs)).numpy().reshape([-1]).astype(np.float32)

    @property
    def num_trees(self) -> int:
        """The number of trees the model kept (early stopping may stop before GbdtParams.num_trees)."""
        return self.keras_model.make_inspector().num_trees()

    def save(self, path: str, with_serving_signature: bool = False) -> None:
        """A TF-DF SavedModel, loadable by GbdtModel.load (its YDF model is in `assets/`).

        with_serving_signature: add `serving_default` (serialized tf.Examples of the dataset's layout ->
        `probability` float32 [batch, 1], the sigmoid of the logit; classification only) and `logit`
        (-> `logit`), so the model can be evaluated and served on its own like every model of the project.
        """
        signatures = None
        if with_serving_signature:
            if self.task != "classification":
                raise ValueError("only a classification GBDT has a probability to serve")
            signatures = self.serving_signatures()
        self.keras_model.save(path, save_format="tf", signatures=signatures)
        with tf.io.gfile.GFile(os.path.join(path, METADATA_FILE), "w") as f:
            json.dump({**self.inputs.to_dict(), "task": self.task, "backend": "tensorflow_decision_forests"}, f)

    def serving_signatures(self) -> dict[str, Any]:
        """`serving_default` (-> `probability` float32 [batch, 1]) and `logit` (-> `logit` float32 [batch, 1]), both
        on serialized tf.Examples of the dataset's layout (trainer.export.example_signatures)."""
        from trainer import export
        model, inputs = self.keras_model, self.inputs

        def logit(examples: tf.Tensor) -> tf.Tensor:
            return tf.reshape(tf.cast(model(inputs.parse(examples)), tf.float32), [-1, 1])

        return export.example_signatures(model, lambda examples: tf.sigmoid(logit(examples)),
                                         extra={"logit": lambda examples: {"logit": logit(examples)}})

    @staticmethod
    def is_saved_model(path: str) -> bool:
        """Whether `path` holds a model saved by `save` (its metadata file)."""
        return tf.io.gfile.exists(os.path.join(path, METADATA_FILE))

    @classmethod
    def load(cls, path: str) -> "GbdtModel":
        """Rebuilds the model from the YDF files of a saved one, as a fresh Keras model that can be embedded in
        another Keras model and saved again (a Keras-revived SavedModel cannot)."""
        tfdf = _tfdf()
        with tf.io.gfile.GFile(os.path.join(path, METADATA_FILE)) as f:
            meta = json.load(f)
        inputs = GbdtInputs.from_dict(meta)
        ydf_dir = os.path.join(path, _ASSETS)
        inspector = tfdf.inspector.make_inspector(ydf_dir)
        model = tfdf.keras.core_inference.InferenceCoreModel(task=inspector.task, verbose=0)
        model._set_from_yggdrasil_model(  # pylint: disable=protected-access  (what yggdrasil_model_to_keras_model does)
            inspector, ydf_dir, input_model_signature_fn=lambda _: inputs.input_signature())
        return cls(model, inputs, meta["task"])


class GbdtLearner:
    """Trains a TF-DF GradientBoostedTreesModel on the GBDT inputs of a dataset layout.

    Args:
        inputs: what the GBDT reads (GbdtInputs; a raw-log DatasetSpec is accepted and wrapped).
        params: hyper-parameters.
        task: "classification" (binary logloss; outputs the logit) or "regression" (weighted squared error).

    Raises:
        ValueError: an unknown task, or a prebuilt-id DatasetSpec without its width (give GbdtInputs).
    """

    def __init__(self, inputs: GbdtInputs | features.DatasetSpec, params: GbdtParams = GbdtParams(),
                 task: str = "classification"):
        if task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {task!r}")
        self.inputs = inputs if isinstance(inputs, GbdtInputs) else GbdtInputs(inputs)
        self.params = params
        self.task = task

    @property
    def spec(self) -> features.DatasetSpec:
        """The dataset layout the learner reads."""
        return self.inputs.spec

    def _make_model(self) -> tf.keras.Model:
        tfdf = _tfdf()
        p = self.params
        max_vocab_count, min_vocab_frequency = p.vocabulary(self.inputs)
        semantics = [
            tfdf.keras.FeatureUsage(
                name=name,
                semantic=tfdf.keras.FeatureSemantic.NUMERICAL if self.inputs.is_numerical(name)
                else tfdf.keras.FeatureSemantic.CATEGORICAL,
                min_vocab_frequency=None if self.inputs.is_numerical(name) else min_vocab_frequency)
            for name in self.inputs.feature_names]
        optional = {}
        if p.growing_strategy == "BEST_FIRST_GLOBAL":
            optional["max_num_nodes"] = p.max_num_nodes
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
            max_vocab_count=max_vocab_count,
            categorical_algorithm=p.categorical_algorithm,
            l2_categorical_regularization=p.l2_categorical_regularization,
            l2_regularization=p.l2_regularization,
            growing_strategy=p.growing_strategy,
            subsample=p.subsample,
            use_hessian_gain=p.use_hessian_gain,
            # NA conditions (YDF >= 1.5) are left off: older inference engines (TF Serving's) cannot read them.
            allow_na_conditions=False,
            random_seed=p.seed,
            verbose=0,
            **optional,
        )

    def fit(self, train: tf.data.Dataset, valid: tf.data.Dataset | None = None) -> GbdtModel:
        """train/valid: one pass of (inputs, label[, weight]) batches, unshuffled. Early-stops on `valid`."""
        model = self._make_model()
        model.fit(train, validation_data=valid, verbose=0)
        return GbdtModel(model, self.inputs, self.task)


def read_records(files: Iterable[str]) -> tf.data.Dataset:
    """Serialized records of TFRecord files, in file order (".gz" files are GZIP-compressed)."""
    files = sorted(files)
    if not files:
        raise FileNotFoundError("no TFRecord files to read")
    compressed = {f.endswith(".gz") for f in files}
    if len(compressed) != 1:
        raise ValueError(f"mixed compressed and plain TFRecord files: {files}")
    return tf.data.TFRecordDataset(files, compression_type="GZIP" if compressed.pop() else "")


def label_parse_spec(inputs: GbdtInputs) -> dict[str, tf.io.FixedLenFeature]:
    """The label as stored in the layout (int64 0/1 in raw logs, float32 0/1 in OptFusion TFRecords), [1]."""
    return {features.LABEL_KEY: tf.io.FixedLenFeature([1], inputs.label_dtype)}


def examples_dataset(files: Iterable[str], inputs: GbdtInputs, batch_size: int,
                     row_filter: Callable[[tf.Tensor], tf.Tensor] | None = None) -> tf.data.Dataset:
    """One unshuffled pass over tf.Example TFRecords as (GBDT inputs, label float32 [batch]) batches.

    row_filter: keeps the serialized rows for which it returns True (e.g. the rows outside one fold).
    """
    parse_spec = {**inputs.parse_spec(), **label_parse_spec(inputs)}

    def parse(serialized):
        parsed = tf.io.parse_example(serialized, parse_spec)
        return inputs.from_parsed(parsed), tf.cast(tf.reshape(parsed[features.LABEL_KEY], [-1]), tf.float32)

    records = read_records(files)
    if row_filter is not None:
        records = records.filter(row_filter)
    return records.batch(batch_size).map(parse).prefetch(tf.data.AUTOTUNE)
