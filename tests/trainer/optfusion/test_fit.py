"""OptFusion's epoch loop (trainer/optfusion/fit.py): early stopping, the kept epoch, epoch 0."""
from __future__ import annotations

import numpy as np
import tensorflow as tf

from tests.trainer.optfusion.helpers import _batch, _supernet
from trainer.optfusion import fit, network, optim


def test_fit_stops_at_the_first_non_improving_epoch_and_keeps_the_best():
    model, _ = _supernet()
    groups = network.variable_groups(model)
    frozen = {k: optim.GroupSettings(0.0) for k in groups}  # lr 0: every epoch has the same validation AUC
    step = optim.make_train_step(model, groups, frozen)
    features, labels = _batch(rows=64)
    labels[:32], labels[32:] = 0.0, 1.0
    data = tf.data.Dataset.from_tensor_slices((features, labels)).batch(16)
    result = fit.fit(step, data, data, epochs=5, patience=1, verbose=0)
    assert (result.epochs_run, result.best_epoch) == (2, 1)
    assert [h["epoch"] for h in result.history] == [1, 2]
    assert result.history[0]["examples"] == 64 and result.train_examples_per_second > 0
    assert 0.0 <= result.best_val_auc <= 1.0


def test_fit_reports_epoch_0_but_keeps_the_best_trained_epoch():
    """The reference's retrain logs its evaluation before training and keeps the best *trained* epoch: epoch 0 is
    in the history, but neither a candidate for the kept weights nor the yardstick of early stopping."""
    model, _ = _supernet()
    groups = network.variable_groups(model)
    frozen = {k: optim.GroupSettings(0.0) for k in groups}  # lr 0: epochs 0, 1, 2 have the same validation AUC
    step = optim.make_train_step(model, groups, frozen)
    features, labels = _batch(rows=64)
    labels[:32], labels[32:] = 0.0, 1.0
    data = tf.data.Dataset.from_tensor_slices((features, labels)).batch(16)
    result = fit.fit(step, data, data, epochs=3, patience=1, verbose=0, evaluate_before_training=True,
                     max_steps_per_epoch=2)
    # Epoch 1 ties epoch 0 and is kept (it is the first trained epoch); epoch 2 ties epoch 1 and stops the run.
    assert (result.epochs_run, result.best_epoch) == (2, 1)
    assert [h["epoch"] for h in result.history] == [0, 1, 2] and result.history[1]["examples"] == 32
    assert result.val_auc_before_training == result.history[0]["val_auc"] == result.best_val_auc
    assert result.to_dict()["val_auc_before_training"] == result.val_auc_before_training


def test_fit_restores_the_weights_of_the_best_epoch_when_a_later_one_is_worse(monkeypatch):
    model, _ = _supernet()
    groups = network.variable_groups(model)
    step = optim.make_train_step(model, groups, {k: optim.GroupSettings(0.01) for k in groups})
    features, labels = _batch(rows=64)
    data = tf.data.Dataset.from_tensor_slices((features, labels)).batch(16)
    aucs = iter([0.6, 0.7, 0.65])  # epoch 2 is the best; epoch 3 is worse and stops the run
    monkeypatch.setattr(fit.metrics, "auc", lambda labels, logits: next(aucs))
    weights_at: dict[int, list[np.ndarray]] = {}
    result = fit.fit(step, data, data, epochs=5, patience=1, verbose=0,
                     on_epoch_end=lambda entry: weights_at.__setitem__(entry["epoch"], model.get_weights()))
    assert (result.epochs_run, result.best_epoch, result.best_val_auc) == (3, 2, 0.7)
    assert any(not np.array_equal(a, b) for a, b in zip(weights_at[3], weights_at[2]))  # epoch 3 trained on
    for kept, now in zip(weights_at[2], model.get_weights()):
        np.testing.assert_array_equal(now, kept)
