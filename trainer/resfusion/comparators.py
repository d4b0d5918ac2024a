"""ResFusion's Table 2 fusion comparators, as the paper defines them (shared/design/algorithms.md §2.5).

Each starts from the stage-0 GBDT of components/gbdt_residual (TF-DF) and exports one fused
SavedModel with the same signatures as ResFusion (trainer.resfusion.export.make_signatures):

- `gbdt-lr` (GBDT+LR, He et al. 2014): the index of the active leaf of every tree, one-hot, into a logistic
  regression (one weight per (tree, leaf), Adam on BCE, early stopping on eval AUC). The leaves come from the
  GBDT trained on every training row, as in the original (the LR sees in-sample leaves).
- `gbdt2dnn` / `gbdt2deepfm` (feature fusion): the GBDT's prediction is one more input of a DNN / DeepFM. The
  networks take categorical ids, so the logit enters as one more field: its quantile bucket (boundaries from
  the training rows' logits). Training rows use the OUT-OF-FOLD logits the component recorded (the network
  never sees a GBDT score fitted on the same row); eval rows and serving the full model's.
- `gbdt+deepfm` (prediction fusion): the GBDT and a DeepFM trained independently, combined as
  sigmoid(a * y_gbdt + b * y_D + c); (a, b, c) is a logistic regression fitted on the TRAINING rows'
  out-of-fold logits: the GBDT's recorded by components/gbdt_residual, the DeepFM's from k fold fits on the
  same folds (trainer.resfusion.residual.out_of_fold_logits). Neither logit was fitted on the row it scores, so the
  weights are not tilted towards the in-sample DeepFM, and the eval split that early-stops and blesses the
  model never fits them. Serving uses the GBDT and the DeepFM fitted on every training row.

Every comparator reads the dataset's layout as the ResFusion stages do (trainer.resfusion.gbdt.GbdtInputs): a raw
log's fields, or the F id columns of OptFusion TFRecords as categorical features.
"""
from __future__ import annotations

import logging
from typing import Any

import numpy as np
import tensorflow as tf

from trainer import contract, metrics
from trainer.resfusion import gbdt, residual
from trainer.resfusion import models as residual_models

keras = tf.keras

COMPARATORS = ("gbdt-lr", "gbdt2dnn", "gbdt2deepfm", "gbdt+deepfm")
NUM_GBDT_BUCKETS = 32


def _metrics(record: dict[str, Any], train: residual.SplitRows, valid: residual.SplitRows, train_logits: np.ndarray,
             valid_logits: np.ndarray) -> dict[str, Any]:
    record.update(eval_auc=metrics.auc(valid.labels, valid_logits),
                  eval_logloss=metrics.logloss(valid.labels, valid_logits),
                  train_logloss=metrics.logloss(train.labels, train_logits))
    logging.info("Comparator %s: eval AUC %.4f, eval logloss %.4f", record.get("variant"), record["eval_auc"],
                 record["eval_logloss"])
    return record


def quantile_boundaries(logits: np.ndarray, buckets: int = NUM_GBDT_BUCKETS) -> list[float]:
    """Distinct inner quantiles of the logits: at most buckets - 1 boundaries."""
    inner = np.quantile(np.asarray(logits, np.float64), np.linspace(0, 1, buckets + 1)[1:-1])
    # float32 values, so that numpy (training) and the Discretization layer (serving) bucket alike.
    return sorted({float(np.float32(b)) for b in inner})


def bucketize(logits: np.ndarray, boundaries: list[float]) -> np.ndarray:
    """Bucket of each logit as keras.layers.Discretization computes it: i with b[i-1] <= x < b[i]."""
    return np.digitize(np.asarray(logits, np.float32), np.asarray(boundaries, np.float32)).astype(np.int64)


def fit_gbdt_lr(ctx: residual.FitContext, train: residual.SplitRows, valid: residual.SplitRows, first: gbdt.GbdtModel
                ) -> tuple[tf.keras.Model, dict[str, Any]]:
    """GBDT+LR (He et al. 2014; the paper's Table 2): a logistic regression on the one-hot active leaf of every tree.

    One weight per (tree, leaf) (FirstOrder over the ids leaf + tree · max_leaves), trained as the deep stages are
    (Adam, l2_embedding, early stopping on eval AUC); the GBDT `first` (fitted on every training row) is frozen.

    Returns:
        (the fused serving model: raw GBDT inputs {name: [B]} -> probability float32 [B, 1], its record for
        history.json with eval AUC / logloss and train logloss).
    """
    from trainer.layers.first_order import FirstOrder
    num_trees = first.num_trees
    max_leaves = ctx.options.gbdt.max_leaves
    leaves = {s.name: residual.gbdt_leaves_rows(s, first) + np.arange(num_trees)[None, :] * max_leaves
              for s in (train, valid)}
    cfg = ctx.trainer.train
    keras.utils.set_random_seed(cfg.seed)
    leaf_ids = keras.Input(shape=(num_trees,), dtype=tf.int64, name="leaf_ids")
    lr_logit = keras.Model(leaf_ids, FirstOrder(num_trees * max_leaves, cfg.l2_embedding, name="lr")(leaf_ids),
                           name="gbdt_lr_logit")
    model = keras.Model(leaf_ids, contract.probability_output(lr_logit(leaf_ids)))
    contract.compile_model(model, cfg.learning_rate)

    def dataset(split: residual.SplitRows, shuffle: bool) -> tf.data.Dataset:
        ds = tf.data.Dataset.from_tensor_slices((leaves[split.name], split.labels[:, None]))
        if shuffle:
            ds = ds.shuffle(min(len(split), 100_000), seed=cfg.seed, reshuffle_each_iteration=True)
        return ds.batch(cfg.batch_size)

    history = model.fit(dataset(train, True), validation_data=dataset(valid, False), epochs=cfg.epochs, verbose=2,
                        callbacks=[contract.EarlyStopping(cfg.early_stopping_patience).keras_callback()])
    record = {"variant": "gbdt-lr", "num_trees": num_trees, "max_leaves_per_tree": max_leaves,
              **contract.history_record(history)}
    fused = residual_models.build_gbdt_lr_model(first.keras_model, lr_logit, num_trees, max_leaves,
                                                ctx.inputs.input_signature())
    def predict(split: residual.SplitRows) -> np.ndarray:
        batches = tf.data.Dataset.from_tensor_slices(leaves[split.name]).batch(cfg.batch_size)
        return residual.predict_logits(lr_logit, batches)

    return fused, _metrics(record, train, valid, predict(train), predict(valid))


def fit_feature_fusion(ctx: residual.FitContext, train: residual.SplitRows, valid: residual.SplitRows,
                       first: gbdt.GbdtModel, network: str) -> tuple[tf.keras.Model, dict[str, Any]]:
    """GBDT2DNN / GBDT2DeepFM (the paper's Table 2): the GBDT's logit is one more categorical field of a network.

    The field is the logit's quantile bucket (at most NUM_GBDT_BUCKETS, boundaries from the training rows'
    recorded out-of-fold logits), an id past the encoder's table; `network` ("dnn" or "deepfm", a name of
    trainer.models.registry.LOGIT_BUILDERS) trains as a deep stage on a zero offset.

    Returns:
        (the fused serving model: {`feature` ids int64 [B, F], raw GBDT inputs} -> probability float32 [B, 1], its
        record for history.json).

    Raises:
        ValueError: the run has no id encoder, or an unknown network.
    """
    boundaries = quantile_boundaries(train.gbdt_logit)
    buckets = {s.name: bucketize(s.gbdt_logit, boundaries)[:, None] + ctx.ids.table_size
               for s in (train, valid)}
    zero = {s.name: np.zeros(len(s), np.float32) for s in (train, valid)}
    logit_model, record = residual.fit_nn(ctx, train, valid, zero, rows=None, name=f"gbdt2{network}_network",
                                      seed=ctx.trainer.train.seed, network=network, extra_ids=buckets,
                                      extra_table=len(boundaries) + 1)
    record.update(variant=f"gbdt2{network}", gbdt_buckets=len(boundaries) + 1,
                  train_gbdt_feature="out-of-fold (recorded gbdt_logit)")
    fused = residual_models.build_feature_fusion_model(
        first.keras_model, logit_model, boundaries, ctx.ids.table_size, ctx.ids.num_fields,
        ctx.inputs.input_signature(), name=f"gbdt2{network}")
    return fused, _metrics(record, train, valid, train.nn_logits(logit_model, extra_ids=buckets[train.name]),
                           valid.nn_logits(logit_model, extra_ids=buckets[valid.name]))


def ensemble_weights(gbdt_logits: np.ndarray, deep_logits: np.ndarray, labels: np.ndarray
                     ) -> tuple[list[float], float]:
    """(a, b), c of sigmoid(a * y_gbdt + b * y_D + c): an (almost) unregularised logistic regression.

    Args: three float arrays [n] (labels 0/1). Returns ([a, b], c).
    """
    from sklearn.linear_model import LogisticRegression
    combiner = LogisticRegression(C=1e6, max_iter=1000).fit(
        np.stack([np.asarray(gbdt_logits, np.float64), np.asarray(deep_logits, np.float64)], axis=1),
        np.asarray(labels))
    return [float(w) for w in combiner.coef_[0]], float(combiner.intercept_[0])


def fit_ensemble(ctx: residual.FitContext, train: residual.SplitRows, valid: residual.SplitRows, first: gbdt.GbdtModel
                 ) -> tuple[tf.keras.Model, dict[str, Any]]:
    """GBDT+DeepFM: weights fitted on the training rows' out-of-fold logits of both models (module docstring).

    Raises:
        ValueError: the training rows have no out-of-fold GBDT logits (GbdtResidual ran with folds = 0).
    """
    if not train.has_gbdt_logit or not np.all(train.folds >= 0):
        raise ValueError("gbdt+deepfm fits its weights on out-of-fold training logits: run GbdtResidual with "
                         "folds >= 2")
    zero = {s.name: np.zeros(len(s), np.float32) for s in (train, valid)}
    seed = ctx.trainer.train.seed
    logit_model, record = residual.fit_nn(ctx, train, valid, zero, rows=None, name="deep_alone", seed=seed)
    fold_ids = residual.training_folds(ctx.options, train)
    deep_oof, fold_models = residual.out_of_fold_logits(
        train, fold_ids,
        lambda rows, j: residual.fit_nn(ctx, train, valid, zero, rows=rows, name=f"deep_alone_fold_{j}",
                                    seed=seed + 1000 * (j + 1))[0],
        lambda m, rows: train.nn_logits(m, rows=rows))
    weights, bias = ensemble_weights(train.gbdt_logit, deep_oof, train.labels)
    record.update(variant="gbdt+deepfm", deep_model=ctx.options.residual_model, ensemble_weights=weights,
                  ensemble_bias=bias, ensemble_fitted_on="train (out-of-fold logits)",
                  ensemble_rows=len(train), ensemble_folds=len(fold_models))
    fused = residual_models.build_ensemble_model(first.keras_model, logit_model, weights, bias,
                                                 ctx.ids.num_fields, ctx.inputs.input_signature())
    combined_train = weights[0] * train.gbdt_logit + weights[1] * deep_oof + bias
    combined_valid = weights[0] * valid.gbdt_logit + weights[1] * valid.nn_logits(logit_model) + bias
    return fused, _metrics(record, train, valid, combined_train, combined_valid)


def fit_comparator(variant: str, ctx: residual.FitContext, train: residual.SplitRows, valid: residual.SplitRows,
                   first: gbdt.GbdtModel) -> tuple[tf.keras.Model, dict[str, Any]]:
    """Fits a Table 2 comparator; returns the fused serving model and its record for history.json."""
    if variant == "gbdt-lr":
        return fit_gbdt_lr(ctx, train, valid, first)
    if variant in ("gbdt2dnn", "gbdt2deepfm"):
        return fit_feature_fusion(ctx, train, valid, first, network=variant[len("gbdt2"):])
    if variant == "gbdt+deepfm":
        return fit_ensemble(ctx, train, valid, first)
    raise ValueError(f"unknown comparator {variant!r}; choose one of {COMPARATORS}")
