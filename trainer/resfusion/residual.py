"""ResFusion's stages: the rows of a split, the deep and GBDT stage fits, out-of-fold offsets, K rounds, and
which prefix is served (the method: trainer/resfusion/__init__.py)."""
from __future__ import annotations

import dataclasses
import logging
import os
import sys
import time
from typing import Any, Callable, Sequence

import numpy as np
import tensorflow as tf

from trainer import contract
from trainer.config import TrainerConfig
from trainer.metrics import auc, logloss
from trainer.optfusion.settings import MODEL_MODES as OPTFUSION_NETWORKS
from trainer.resfusion import gbdt
from trainer.resfusion import models as residual_models
from trainer.resfusion.settings import ResFusionOptions
from transform import features

keras = tf.keras

_SHUFFLE_BUFFER = 10_000


def sigmoid(x: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-x)) elementwise, float64 (x's shape): probabilities of logits."""
    return 1.0 / (1.0 + np.exp(-np.asarray(x, np.float64)))


def logitboost_targets(labels: np.ndarray, offsets: np.ndarray, z_max: float) -> tuple[np.ndarray, np.ndarray]:
    """LogitBoost working response and weights of a fixed logit offset F (see the module docstring).

    Returns (z, w), float32 [n]: p = sigmoid(F), w = p (1 - p), z = clip((y - p) / w, -z_max, z_max).
    """
    p = sigmoid(offsets)
    w = np.maximum(p * (1.0 - p), 1e-12)
    z = np.clip((np.asarray(labels, np.float64) - p) / w, -z_max, z_max)
    return z.astype(np.float32), w.astype(np.float32)


# --- ids for the deep stages ------------------------------------------------------------------------------------

class IdEncoder:
    """Serialized raw tf.Examples [B] -> int64 ids [B, F] for the deep stages.

    Attributes:
        num_fields: F.
        table_size: number of ids (embedding rows).
        trackable: what the exported model must hold for the encoder to work (e.g. the Transform layer),
            or None.
    """

    num_fields: int
    table_size: int
    trackable: Any = None

    def __call__(self, serialized: tf.Tensor) -> tf.Tensor:
        """Serialized raw tf.Examples string [B] -> ids int64 [B, F]; each encoder implements it."""
        raise NotImplementedError


class TransformIdEncoder(IdEncoder):
    """Ids from the Transform graph (the `feature` output of transform/preprocessing.py)."""

    def __init__(self, tft_output: Any):
        from trainer import data, export
        self.tft_output = tft_output
        self.num_fields, self.table_size = data.id_space(tft_output)
        self._spec = export.serving_feature_spec(tft_output)  # label and gbdt_logit left out
        self.trackable = tft_output.transform_features_layer()

    def __call__(self, serialized: tf.Tensor) -> tf.Tensor:
        """Serialized raw tf.Examples string [B] -> the Transform graph's `feature` ids int64 [B, F]."""
        return self.trackable(tf.io.parse_example(serialized, self._spec))[features.FEATURE_KEY]


# --- one split's rows -------------------------------------------------------------------------------------------

class SplitRows:
    """One split's examples in file order, with their labels, recorded GBDT logits and folds in memory.

    The examples themselves are streamed from the TFRecords every time they are needed; only one float per
    row and stage (the offsets) is held in memory.

    Args:
        name: the split's name (keys the offsets and the id cache).
        files: its TFRecord files (GZIP when named *.gz).
        inputs: what the GBDT stages read (trainer.resfusion.gbdt.GbdtInputs: a raw log's fields, or the F id columns
            of OptFusion TFRecords); also says the label's stored type (int64 or float32, 0/1).
        batch_size: rows per batch.

    Attributes:
        labels: float32 [n]; gbdt_logit: float32 [n] (NaN where not recorded); folds: int64 [n] (-1: none).

    Raises:
        ValueError: the split holds no examples.
    """

    def __init__(self, name: str, files: Sequence[str], inputs: gbdt.GbdtInputs, batch_size: int):
        self.name = name
        self.files = sorted(files)
        self.inputs = inputs
        self.batch_size = batch_size
        parse_spec = {**gbdt.label_parse_spec(inputs),
                      features.GBDT_LOGIT_KEY: tf.io.VarLenFeature(tf.float32),
                      features.FOLD_FEATURE: tf.io.VarLenFeature(tf.int64)}

        def parse(serialized):
            parsed = tf.io.parse_example(serialized, parse_spec)
            logit = tf.sparse.to_dense(parsed[features.GBDT_LOGIT_KEY], default_value=np.nan)
            fold = tf.sparse.to_dense(parsed[features.FOLD_FEATURE], default_value=features.NO_FOLD)
            def first(x: tf.Tensor, default: Any) -> tf.Tensor:  # the first value of each row, or `default`
                return tf.concat([x, tf.fill([tf.shape(x)[0], 1], tf.constant(default, x.dtype))], 1)[:, 0]

            return (tf.cast(parsed[features.LABEL_KEY][:, 0], tf.float32), first(logit, np.nan),
                    first(fold, features.NO_FOLD))

        labels, logits, folds = [], [], []
        for label, logit, fold in self.records().batch(batch_size).map(parse):
            labels.append(label.numpy())
            logits.append(logit.numpy())
            folds.append(fold.numpy())
        if not labels:
            raise ValueError(f"split {name!r} holds no examples ({self.files})")
        self.labels = np.concatenate(labels).astype(np.float32)
        self.gbdt_logit = np.concatenate(logits).astype(np.float32)
        self.folds = np.concatenate(folds).astype(np.int64)
        self._ids_cache: str | None = None
        self._samples: dict[tuple[float, int], np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def spec(self) -> features.DatasetSpec:
        """The split's dataset layout."""
        return self.inputs.spec

    @property
    def has_gbdt_logit(self) -> bool:
        """Whether every row has a recorded (finite) GBDT logit."""
        return bool(np.all(np.isfinite(self.gbdt_logit)))

    def records(self) -> tf.data.Dataset:
        """The split's serialized tf.Examples (string scalars), in file order, read from the files anew."""
        return gbdt.read_records(self.files)

    def assign_missing_folds(self, folds: int, seed: int) -> None:
        """Rows without a recorded fold get the same hash fold as components/gbdt_residual would give them."""
        missing = self.folds == features.NO_FOLD
        if missing.any():
            computed = np.concatenate([gbdt.assign_folds(batch, folds, seed).numpy()
                                       for batch in self.records().batch(self.batch_size)])
            self.folds = np.where(missing, computed, self.folds)

    def training_sample(self, fraction: float, seed: int) -> np.ndarray:
        """bool [n]: the rows in the GBDT's training sample (trainer.resfusion.gbdt.in_training_sample); computed in
        one pass over the records the first time, then kept (every LogitBoost fit and fold fit asks again)."""
        if (fraction, seed) not in self._samples:
            self._samples[(fraction, seed)] = np.concatenate([
                gbdt.in_training_sample(batch, fraction, seed).numpy()
                for batch in self.records().batch(self.batch_size)])
        return self._samples[(fraction, seed)]

    # Deep stages: ids, cached on local disk after the first pass (the encoder runs once per split).
    def cache_ids(self, encoder: IdEncoder, cache_dir: str) -> None:
        """Encodes every row once into `cache_dir` (a full pass); `ids` then reads the cache, so the encoder (the
        Transform graph) does not run again for every epoch and fold fit."""
        path = os.path.join(cache_dir, f"ids_{self.name}")
        # Batches are cached, not rows: tf.data's file cache holds an index entry per element in memory (about
        # 570 bytes: +457 MB for 800k cached rows, 13 MB for the same rows in batches of 256).
        batches = self.records().batch(self.batch_size).map(encoder).cache(path)
        for _ in batches:  # fills the cache (one full pass)
            pass
        self._ids_cache = path
        self._ids = batches.unbatch()

    def ids(self) -> tf.data.Dataset:
        """Each row's ids, int64 [F], unbatched, in file order.

        Raises:
            RuntimeError: `cache_ids` has not run.
        """
        if self._ids_cache is None:
            raise RuntimeError("call cache_ids first")
        return self._ids

    def _ids_with(self, extra_ids: np.ndarray | None) -> tf.data.Dataset:
        """Per-row ids, with extra id columns [n, k] appended (e.g. the GBDT2DeepFM bucket)."""
        if extra_ids is None:
            return self.ids()
        return tf.data.Dataset.zip((self.ids(), tf.data.Dataset.from_tensor_slices(extra_ids.astype(np.int64)))
                                   ).map(lambda ids, extra: tf.concat([ids, extra], axis=0))

    def nn_dataset(self, offsets: np.ndarray, rows: np.ndarray | None = None, shuffle_seed: int | None = None,
                   extra_ids: np.ndarray | None = None, batch_size: int | None = None) -> tf.data.Dataset:
        """({`feature`: ids, `offset`: [B, 1]}, label [B, 1]) batches of `batch_size` rows (default: the split's);
        rows: boolean mask to keep."""
        rows = np.ones(len(self), bool) if rows is None else rows
        extras = tf.data.Dataset.from_tensor_slices((offsets.astype(np.float32), self.labels, rows))
        ds = tf.data.Dataset.zip((self._ids_with(extra_ids), extras)).filter(lambda ids, e: e[2])
        if shuffle_seed is not None:
            ds = ds.shuffle(min(_SHUFFLE_BUFFER, len(self)), seed=shuffle_seed, reshuffle_each_iteration=True)
        return ds.batch(batch_size or self.batch_size).map(
            lambda ids, e: ({features.FEATURE_KEY: ids, residual_models.OFFSET_KEY: e[0][:, None]}, e[1][:, None])
        ).prefetch(tf.data.AUTOTUNE)

    def nn_logits(self, logit_model: tf.keras.Model, rows: np.ndarray | None = None,
                  extra_ids: np.ndarray | None = None) -> np.ndarray:
        """A deep logit model's logits, float32 [n] ([rows.sum()] with `rows`, a boolean mask [n] of the rows to
        score); extra_ids [n, k] are appended to the ids as in `nn_dataset`."""
        ds = self._ids_with(extra_ids)
        if rows is not None:
            ds = tf.data.Dataset.zip((ds, tf.data.Dataset.from_tensor_slices(rows))).filter(lambda ids, keep: keep).map(
                lambda kept_ids, _: kept_ids)
        return predict_logits(logit_model, ds.batch(self.batch_size))

    # GBDT stages: raw fields.
    def gbdt_dataset(self, targets: np.ndarray, weights: np.ndarray, rows: np.ndarray | None = None
                     ) -> tf.data.Dataset:
        """(GBDT inputs, target [B], weight [B]) batches of the kept rows, unshuffled (TF-DF's contract)."""
        rows = np.ones(len(self), bool) if rows is None else rows
        extras = tf.data.Dataset.from_tensor_slices((targets, weights, rows))
        inputs = self.inputs
        return (tf.data.Dataset.zip((self.records(), extras)).filter(lambda record, e: e[2]).batch(self.batch_size)
                .map(lambda batch, e: (inputs.parse(batch), e[0], e[1])).prefetch(tf.data.AUTOTUNE))

    def gbdt_logits(self, model: gbdt.GbdtModel, rows: np.ndarray | None = None) -> np.ndarray:
        """A GBDT's raw scores, float32 [n] ([rows.sum()] with `rows`, a boolean mask [n] of the rows to score)."""
        rows = np.ones(len(self), bool) if rows is None else rows
        inputs = self.inputs
        ds = (tf.data.Dataset.zip((self.records(), tf.data.Dataset.from_tensor_slices(rows)))
              .filter(lambda record, keep: keep).batch(self.batch_size).map(lambda batch, _: inputs.parse(batch)))
        return model.logits(ds)


def gbdt_leaves_rows(split: "SplitRows", model: gbdt.GbdtModel) -> np.ndarray:
    """The active leaf of every tree for every row, int64 [n, T] (for GBDT+LR)."""
    inputs = split.inputs
    forest = model.keras_model
    forest._ensure_model_get_leaves_ready()  # pylint: disable=protected-access
    leaves = tf.function(lambda x: forest.call_get_leaves(x), reduce_retracing=True)
    batches = split.records().batch(split.batch_size).map(inputs.parse)
    return np.concatenate([leaves(b).numpy() for b in batches]).astype(np.int64)


def predict_logits(logit_model: tf.keras.Model, batches: tf.data.Dataset) -> np.ndarray:
    """A logit model's outputs (inference mode) on a dataset of input batches, flattened and concatenated:
    float32 [n] (empty for no batches)."""
    predict = tf.function(lambda ids: logit_model(ids, training=False), reduce_retracing=True)
    outputs = [predict(ids).numpy().reshape([-1]) for ids in batches]
    return np.concatenate(outputs).astype(np.float32) if outputs else np.zeros([0], np.float32)


# --- fitting the stages -----------------------------------------------------------------------------------------

@dataclasses.dataclass
class Stage:
    """One fitted stage.

    Attributes:
        kind: "gbdt" or "nn".
        model: the model used at serving, fitted on every training row: keras.Model (deep: ids -> logit
            [B, 1]) or gbdt.GbdtModel.
        record: its entry of result.json / history.json (eval metrics of the prefix ending here, ...).
        train_logits: float32 [n train rows], the stage's logits on the training rows that the next stage's
            offset was built from: out-of-fold (row of fold j scored by fold_models[j]) when the stage has a
            successor, in-sample for the last stage; None when not kept.
        fold_models: the k fold models behind out-of-fold train_logits (fold j fitted on the rows outside
            fold j), empty when the logits are in-sample or were recorded by components/gbdt_residual.
    """

    kind: str
    model: Any  # keras.Model (deep: ids -> logit) or gbdt.GbdtModel
    record: dict[str, Any]
    train_logits: np.ndarray | None = None
    fold_models: list[Any] = dataclasses.field(default_factory=list)

    @property
    def keras_model(self) -> tf.keras.Model:
        """The stage's Keras model: the TF-DF model of a GBDT stage, the ids -> logit model of a deep one."""
        return self.model.keras_model if self.kind == "gbdt" else self.model


@dataclasses.dataclass
class FitContext:
    """What every stage fit needs: the GBDT inputs, the options, the deep stages' trainer settings and ids.

    Attributes:
        inputs: what the GBDT stages read (trainer.resfusion.gbdt.GbdtInputs).
        options: ResFusionOptions.
        trainer: the deep stages' TrainerConfig.
        encoder: serialized examples -> ids for the deep stages (None when there is none).
        log_dir: TensorBoard folder of the deep fits (None: none).
    """

    inputs: gbdt.GbdtInputs
    options: ResFusionOptions
    trainer: TrainerConfig
    encoder: IdEncoder | None
    log_dir: str | None = None

    @property
    def spec(self) -> features.DatasetSpec:
        """The run's dataset layout."""
        return self.inputs.spec

    @property
    def ids(self) -> IdEncoder:
        """The id encoder of the deep stages; raises ValueError when the run has none."""
        if self.encoder is None:
            raise ValueError("this ResFusion run has no id encoder, so it cannot fit a deep stage")
        return self.encoder


def fit_nn(ctx: FitContext, train: SplitRows, valid: SplitRows, offsets: dict[str, np.ndarray],
            rows: np.ndarray | None, name: str, seed: int, network: str | None = None,
            extra_ids: dict[str, np.ndarray] | None = None, extra_table: int = 0
            ) -> tuple[tf.keras.Model, dict[str, Any]]:
    """Trains one deep stage on offsets; early stopping on eval AUC of sigmoid(y_D + offset).

    network: defaults to options.residual_model; an OptFusion network is searched and retrained on the offset
    (trainer/resfusion/optfusion_stage.py). extra_ids: per split, id columns [n, k] appended to the encoder's ids,
    drawn from `extra_table` more ids (GBDT2DeepFM's GBDT bucket).
    """
    network = network or ctx.options.residual_model
    if network in OPTFUSION_NETWORKS:
        if extra_ids:
            raise ValueError(f"{network} takes no extra id columns (GBDT2DNN and GBDT2DeepFM are Keras networks)")
        from trainer.resfusion import optfusion_stage
        return optfusion_stage.fit(ctx, train, valid, offsets, rows, name, seed, OPTFUSION_NETWORKS[network])
    keras.utils.set_random_seed(seed)
    cfg = ctx.trainer
    extra_ids = extra_ids or {}
    width = ctx.ids.num_fields + (extra_ids[train.name].shape[1] if extra_ids else 0)
    logit_model = residual_models.build_logit_model(network, cfg.model, cfg.train,
                                                    width, ctx.ids.table_size + extra_table, name)
    model = residual_models.build_offset_model(logit_model)
    contract.compile_model(model, cfg.train.learning_rate)
    callbacks = [contract.EarlyStopping(cfg.train.early_stopping_patience).keras_callback()]
    if ctx.log_dir:
        callbacks.append(keras.callbacks.TensorBoard(log_dir=os.path.join(ctx.log_dir, name)))
    history = model.fit(
        train.nn_dataset(offsets[train.name], rows, shuffle_seed=seed, extra_ids=extra_ids.get(train.name)),
        validation_data=valid.nn_dataset(offsets[valid.name], extra_ids=extra_ids.get(valid.name)),
        epochs=cfg.train.epochs, verbose=1 if sys.stdout.isatty() else 2, callbacks=callbacks)
    return logit_model, contract.history_record(history)


def fit_gbdt(ctx: FitContext, train: SplitRows, valid: SplitRows, offsets: dict[str, np.ndarray],
              rows: np.ndarray | None) -> gbdt.GbdtModel:
    """One LogitBoost step: a regression GBDT on the working response of the offsets (module docstring), on the rows
    of `rows` (None: all) in the GBDT's training sample (GbdtParams.training_fraction)."""
    params = ctx.options.gbdt
    if params.training_fraction < 1.0:
        rows = train.training_sample(params.training_fraction, params.seed) & (True if rows is None else rows)
    z_train, w_train = logitboost_targets(train.labels, offsets[train.name], ctx.options.z_max)
    z_valid, w_valid = logitboost_targets(valid.labels, offsets[valid.name], ctx.options.z_max)
    learner = gbdt.GbdtLearner(ctx.inputs, ctx.options.gbdt, task="regression")
    return learner.fit(train.gbdt_dataset(z_train, w_train, rows), valid.gbdt_dataset(z_valid, w_valid))


def out_of_fold_logits(train: SplitRows, fold_ids: np.ndarray, fit: Callable[[np.ndarray, int], Any],
                       predict: Callable[[Any, np.ndarray], np.ndarray]) -> tuple[np.ndarray, list[Any]]:
    """Out-of-fold logits of every training row: fold model j = fit(rows outside fold j, j) scores fold j.

    Args:
        train: the training split.
        fold_ids: int64 [n], each row's fold in [0, k).
        fit: (boolean row mask [n], j) -> a model fitted on the masked rows only.
        predict: (model, boolean row mask [n]) -> its logits on the masked rows, float32 [mask.sum()].

    Returns:
        (float32 [n] logits, the k fold models).
    """
    num_folds = int(fold_ids.max()) + 1
    logits = np.zeros(len(train), np.float32)
    models = []
    for j in range(num_folds):
        model = fit(fold_ids != j, j)
        logits[fold_ids == j] = predict(model, fold_ids == j)
        models.append(model)
    return logits, models


def training_folds(options: ResFusionOptions, train: SplitRows) -> np.ndarray:
    """Each training row's fold, int64 [n]: the recorded `gbdt_fold`, else the same hash the component uses."""
    train.assign_missing_folds(options.folds, options.fold_seed)
    recorded = int(train.folds.max()) + 1
    if recorded != options.folds:
        logging.warning("ResFusion: the examples record %d folds, the options say %d; using %d",
                        recorded, options.folds, recorded)
    return train.folds


def fit_stages(ctx: FitContext, train: SplitRows, valid: SplitRows,
               first_gbdt: gbdt.GbdtModel | None = None) -> list[Stage]:
    """Fits stages 0..K (options.stage_kinds) on train, early-stopping each on valid.

    Every stage that feeds a later one hands it OUT-OF-FOLD logits on the training rows, whatever its kind:
    the stage-0 GBDT's are the ones components/gbdt_residual recorded, any later stage's come from k fold
    fits on the recorded folds (out_of_fold_logits). So GBDTRes+NN, NNres+GBDT and every K compare on the
    same footing: no stage trains on an offset fitted to its own rows. The last stage's training logits are
    in-sample (they only enter the reported train logloss). Eval rows and serving use each stage's model
    fitted on every training row.

    Each record holds the eval AUC / logloss of the prefix ending at that stage (the model with K = its
    index): select_served picks the prefix to export.

    Args:
        first_gbdt: the stage-0 GBDT (trained by components/gbdt_residual; its out-of-fold training logits and
            full-model eval logits are the examples' `gbdt_logit`). Required when the first stage is a GBDT.

    Raises:
        ValueError: a GBDT first stage without its model or recorded logits, deep stages without an encoder, or
            recorded eval logits that the GBDT model does not reproduce.
    """
    options = ctx.options
    kinds = options.stage_kinds
    if kinds[0] == "gbdt":
        if first_gbdt is None or not (train.has_gbdt_logit and valid.has_gbdt_logit):
            raise ValueError("a GBDT first stage needs the GBDT model and `gbdt_logit` in every example "
                             "(components/gbdt_residual)")
    if "nn" in kinds and ctx.encoder is None:
        raise ValueError("deep stages need an id encoder")
    last = len(kinds) - 1
    needs_folds = any(index < last and not (index == 0 and kind == "gbdt") for index, kind in enumerate(kinds))
    fold_ids = training_folds(options, train) if needs_folds else train.folds
    seed = ctx.trainer.train.seed

    offsets = {train.name: np.zeros(len(train), np.float32), valid.name: np.zeros(len(valid), np.float32)}
    stages: list[Stage] = []
    for index, kind in enumerate(kinds):
        started = time.time()
        has_successor = index < last
        name = residual_models.stage_name(index, kind)
        record: dict[str, Any] = {"index": index, "rounds": index, "kind": kind, "name": name}
        fold_models: list[Any] = []
        if index == 0 and kind == "gbdt":
            assert first_gbdt is not None  # checked above: a GBDT first stage needs the stage-0 GBDT
            model: Any = first_gbdt
            train_logits, valid_logits = train.gbdt_logit, valid.gbdt_logit
            record.update(fitted_by="components/gbdt_residual", num_trees=first_gbdt.num_trees,
                          train_offsets="out-of-fold (recorded gbdt_fold)")
            check = valid.gbdt_logits(first_gbdt)
            record["recorded_eval_logit_max_abs_diff"] = float(np.abs(check - valid_logits).max())
            if record["recorded_eval_logit_max_abs_diff"] > 1e-3:
                raise ValueError("the examples' eval gbdt_logit does not match the GBDT model "
                                 f"(max |diff| {record['recorded_eval_logit_max_abs_diff']:.3g})")
        elif kind == "gbdt":
            model = fit_gbdt(ctx, train, valid, offsets, rows=None)
            valid_logits = valid.gbdt_logits(model)
            record.update(fitted_by="LogitBoost regression GBDT", num_trees=model.num_trees)
            if has_successor:
                train_logits, fold_models = out_of_fold_logits(
                    train, fold_ids, lambda rows, j: fit_gbdt(ctx, train, valid, offsets, rows=rows),
                    lambda m, rows: train.gbdt_logits(m, rows=rows))
        else:
            model, fit_record = fit_nn(ctx, train, valid, offsets, rows=None, name=f"nn_{name}", seed=seed + index)
            record.update(fit_record)
            valid_logits = valid.nn_logits(model)
            if has_successor:
                train_logits, fold_models = out_of_fold_logits(
                    train, fold_ids,
                    # Called within this iteration (out_of_fold_logits fits every fold before returning).
                    lambda rows, j: fit_nn(ctx, train, valid, offsets, rows=rows,
                                            name=f"nn_{name}_fold_{j}",  # noqa: B023
                                            seed=seed + 1000 * (j + 1) + index)[0],  # noqa: B023
                    lambda m, rows: train.nn_logits(m, rows=rows))
        if fold_models:
            record["train_offsets"] = f"out-of-fold ({len(fold_models)} folds)"
        elif not (index == 0 and kind == "gbdt"):
            train_logits = train.gbdt_logits(model) if kind == "gbdt" else train.nn_logits(model)
            record["train_offsets"] = "in-sample (last stage)"
        offsets[train.name] = offsets[train.name] + train_logits
        offsets[valid.name] = offsets[valid.name] + valid_logits
        record.update(
            seconds=round(time.time() - started, 1),
            eval_auc=auc(valid.labels, offsets[valid.name]), eval_logloss=logloss(valid.labels, offsets[valid.name]),
            train_logloss=logloss(train.labels, offsets[train.name]))
        logging.info("ResFusion stage %d (%s): eval AUC %.4f, eval logloss %.4f, train logloss %.4f (%s s)",
                     index, kind, record["eval_auc"], record["eval_logloss"], record["train_logloss"],
                     record["seconds"])
        stages.append(Stage(kind, model, record, np.asarray(train_logits, np.float32), fold_models))
    return stages


def best_prefix(eval_loglosses: Sequence[float]) -> int:
    """Index of the stage that ends the prefix with the lowest eval logloss (the earliest on a tie).

    eval_loglosses[i]: the eval logloss of the model made of stages 0..i (K = i). A stage that makes the eval
    logloss worse is never served: e.g. [0.539, 0.557, 0.629] -> 0. NaN counts as worst.

    Raises:
        ValueError: no stages.
    """
    if not len(eval_loglosses):
        raise ValueError("no stages to choose from")
    values = [float("inf") if np.isnan(v) else float(v) for v in eval_loglosses]
    return int(min(range(len(values)), key=lambda i: (values[i], i)))


def select_served(stages: Sequence[Stage]) -> list[Stage]:
    """The prefix of stages to export: the one with the lowest eval logloss (best_prefix); marks each record
    with `served` (bool)."""
    best = best_prefix([s.record["eval_logloss"] for s in stages])
    for i, stage in enumerate(stages):
        stage.record["served"] = i <= best
    return list(stages[:best + 1])
