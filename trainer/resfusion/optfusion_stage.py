"""A ResFusion deep stage that is an OptFusion network: searched on the stage's offset, then retrained on it
(`--model resfusion --residual-model optfusion-hard | optfusion-soft`).

Beyond the papers (issue 14). The search (algorithms.md §1.2-§1.4) and the retrain (§1.5) run as in
trainer/optfusion/training.py (the same layers, grouped Adam, early stopping and weight inheritance), with one
change: the network's logit is added to the stage's fixed offset (the sum of the earlier stages' logits: for
GBDTRes+NN the GBDT's out-of-fold logit) before the loss. So the search keeps the connections and operations that
best correct the earlier stages, and both fits early-stop on the eval AUC of that sum, as every deep stage does.
Learning rates, L2, embedding size, batch size and epochs are the dataset's OptFusion settings
(ResFusionOptions.optfusion: pipeline/optfusion_steps.preset); the seed is the stage's.

Cost: one search and one retrain per deep stage, and per fold model when the stage feeds a later one
(K >= 2 fits k + 1 of each on the training rows).
"""
from __future__ import annotations

import dataclasses
import json
import os
from typing import TYPE_CHECKING, Any

import numpy as np
import tensorflow as tf

from trainer.optfusion import network, optim, training
from trainer.resfusion import models as residual_models
from transform import features

if TYPE_CHECKING:
    from trainer.resfusion.residual import FitContext, SplitRows

keras = tf.keras


def _ids_input(num_fields: int) -> tf.keras.KerasTensor:
    return keras.Input(shape=(num_fields,), dtype=tf.int64, name=features.FEATURE_KEY)


def _curves(history: list[dict[str, Any]]) -> dict[str, list[float]]:
    """A fit.FitResult history's trained epochs as Keras' History.history ({metric: [per epoch]})."""
    trained = [h for h in history if h["epoch"] > 0]
    return {key: [float(h[key]) for h in trained] for key in ("loss", "val_auc", "val_logloss")}


def fit(ctx: FitContext, train: SplitRows, valid: SplitRows, offsets: dict[str, np.ndarray],
        rows: np.ndarray | None, name: str, seed: int, mode: str) -> tuple[tf.keras.Model, dict[str, Any]]:
    """Searches the OptFusion supernet on the offsets, derives its architecture and retrains it (`mode`: "hard" or
    "soft"), warm-started from the supernet when the settings say so.

    Args:
        ctx: the fit context; ctx.options.optfusion holds the OptFusion settings.
        train, valid: the splits; offsets: per split name, float32 [n] fixed logits added to the network's.
        rows: boolean mask [n train rows] of the rows to train on (a fold model), None for all.
        name: the stage fit's name (Keras model name, TensorBoard folder).
        seed: initialisation and shuffling seed.

    Returns:
        (the retrained network ids int64 [B, F] -> logit float32 [B, 1], its record: epochs_run, best_epoch and
        a Keras-style history of the retrain; the search's result; the architecture; inherited layers).

    Raises:
        ValueError: the options have no OptFusion settings.
    """
    settings = ctx.options.optfusion
    if settings is None:
        raise ValueError(f"{ctx.options.residual_model} residual stages need ResFusionOptions.optfusion")
    search = settings.search
    run = dataclasses.replace(search.run, seed=seed)
    retrain = dataclasses.replace(settings.retrain(mode), run=run)
    keras.utils.set_random_seed(seed)
    num_fields, table_size = ctx.ids.num_fields, ctx.ids.table_size
    train_batches = train.nn_dataset(offsets[train.name], rows, shuffle_seed=seed, batch_size=run.batch_size)
    valid_batches = valid.nn_dataset(offsets[valid.name], batch_size=run.batch_size)
    log_dir = os.path.join(ctx.log_dir, name) if ctx.log_dir else None
    strategy = optim.choose_strategy()

    with optim.precision_policy(run.precision), strategy.scope():
        ids = _ids_input(num_fields)
        supernet = keras.Model(ids, network.supernet_logit(
            ids, table_size, search.embedding_dim, num_blocks=search.num_blocks, beta_init=search.beta_init,
            emb_init_std=search.emb_init_std), name=f"{name}_supernet")
        searching = residual_models.build_offset_logit_model(supernet)
    searched = training.fit_groups(f"{name}_search", searching, network.variable_groups(supernet), search.groups(),
                                   run, strategy, train_batches, valid_batches, log_dir)
    architecture = network.Architecture.derive(supernet, best_val_auc=searched.best_val_auc)

    with optim.precision_policy(run.precision), strategy.scope():
        ids = _ids_input(num_fields)
        derived = keras.Model(ids, network.retrain_logit(ids, table_size, search.embedding_dim, architecture, mode,
                                                         emb_init_std=search.emb_init_std), name=name)
        retraining = residual_models.build_offset_logit_model(derived)
    inherited = network.inherit_weights(supernet, derived) if retrain.inherit_weights else []
    del supernet, searching
    groups = network.variable_groups(derived)
    retrained = training.fit_groups(
        f"{name}_retrain_{mode}", retraining, {"emb": groups["emb"], "nn": groups["nn"]}, retrain.groups(), run,
        strategy, train_batches, valid_batches, log_dir,
        evaluate_before_training=retrain.evaluate_before_training and retrain.inherit_weights)
    record = {"network": f"optfusion-{mode}", "epochs_run": retrained.epochs_run, "best_epoch": retrained.best_epoch,
              "history": _curves(retrained.history), "val_auc_before_training": retrained.val_auc_before_training,
              "search": searched.to_dict(), "architecture": json.loads(architecture.to_json()),
              "inherited_layers": inherited, "parameters": int(derived.count_params())}
    return derived, record
