"""The training contract (trainer/contract.py): the probability output, compile_model, the EarlyStopping
policy and history_record, on hand-computed values."""
import math

import numpy as np
import pytest
import tensorflow as tf

from trainer import contract

keras = tf.keras


def test_probability_output_is_a_float32_sigmoid_named_probability_even_under_mixed_precision():
    logit = keras.Input(shape=(1,), dtype=tf.float16)
    model = keras.Model(logit, contract.probability_output(logit))
    assert model.output.dtype == tf.float32 and model.layers[-1].name == contract.PROBABILITY_KEY
    out = model(np.array([[0.0], [math.log(3.0)], [-math.log(3.0)]], np.float16)).numpy()
    np.testing.assert_allclose(out[:, 0], [0.5, 0.75, 0.25], atol=1e-3)  # float16 log(3) rounds at 1e-3


def test_compiled_model_reports_auc_and_logloss_of_its_probabilities():
    probability = keras.Input(shape=(1,))
    model = keras.Model(probability, keras.layers.Activation("linear")(probability))  # passes probabilities through
    contract.compile_model(model, learning_rate=0.01)
    assert model.optimizer.epsilon == pytest.approx(1e-8) and model.optimizer.learning_rate.numpy() == \
        pytest.approx(0.01)
    labels = np.array([[1.0], [0.0], [1.0], [0.0]], np.float32)
    predicted = np.array([[0.75], [0.25], [0.5], [0.5]], np.float32)
    result = model.evaluate(predicted, labels, verbose=0, return_dict=True)
    expected_logloss = -(2 * math.log(0.75) + 2 * math.log(0.5)) / 4
    assert result["logloss"] == pytest.approx(expected_logloss, rel=1e-4)
    assert result["loss"] == pytest.approx(expected_logloss, rel=1e-4)
    # Positives score .75 and .5, negatives .25 and .5: 3 of the 4 pairs ranked right, the tie counts a half.
    assert result["auc"] == pytest.approx(3.5 / 4, abs=0.01)


def test_early_stopping_counts_epochs_without_a_strictly_higher_auc():
    policy = contract.EarlyStopping(patience=2)
    assert policy.is_improvement(0.71, 0.70) and not policy.is_improvement(0.70, 0.70)
    assert not policy.is_improvement(float("nan"), -np.inf)  # a one-class eval split never improves
    assert not policy.should_stop(1) and policy.should_stop(2)
    assert contract.EarlyStopping().patience == contract.REFERENCE_PATIENCE == 1


def test_early_stopping_rejects_a_patience_below_one():
    with pytest.raises(ValueError, match="patience must be >= 1, got 0"):
        contract.EarlyStopping(0)


class ScriptedAuc(keras.callbacks.Callback):
    """Sets epoch e's `val_auc` to aucs[e] and the model's one weight to e + 1, so the weights name their epoch."""

    def __init__(self, aucs):
        super().__init__()
        self.aucs = list(aucs)

    def on_epoch_end(self, epoch, logs=None):
        logs["val_auc"] = self.aucs[epoch]
        self.model.layers[-1].set_weights([np.full((1, 1), epoch + 1.0, np.float32)])


def _fit_scripted(aucs, stopping: keras.callbacks.Callback) -> tuple[dict, float]:
    """(history_record, the weight left in the model: the epoch whose weights were kept)."""
    x = keras.Input(shape=(1,))
    model = keras.Model(x, keras.layers.Dense(1, use_bias=False, trainable=False)(x))
    model.compile(loss="mse")
    history = model.fit(np.ones((4, 1)), np.ones((4, 1)), epochs=len(aucs), verbose=0,
                        callbacks=[ScriptedAuc(aucs), stopping])
    return contract.history_record(history), float(model.layers[-1].get_weights()[0][0, 0])


def test_keras_fit_stops_and_keeps_the_best_epoch_as_the_policy_says():
    """Eval AUC .5 (epoch 1), up (2), down (3): patience 1 stops after epoch 3 and restores epoch 2's weights."""
    record, kept_epoch = _fit_scripted([0.5, 0.7, 0.6, 0.8, 0.9], contract.EarlyStopping(1).keras_callback(verbose=0))
    assert (record["epochs_run"], record["best_epoch"], kept_epoch) == (3, 2, 2.0)


NAN = float("nan")


@pytest.mark.parametrize("aucs, patience, expected", [
    ([0.5, 0.7, 0.6, 0.8, 0.9], 1, (3, 2.0)),
    ([0.5, 0.6, 0.7, 0.8], 1, (4, 4.0)),  # never stops: the last epoch is the best and is kept
    ([0.5, 0.7, 0.6, 0.65, 0.9], 2, (4, 2.0)),
    ([NAN, NAN, NAN], 1, (2, 1.0)),  # a one-class eval split: the first epoch kept, no stop before the second
    ([NAN, 0.6, 0.5, 0.7], 1, (3, 2.0)),
])
def test_the_keras_callback_stops_and_restores_as_keras_early_stopping_does(aucs, patience, expected):
    """The project's callback (one in-place copy) against tf-keras's EarlyStopping(restore_best_weights=True) on the
    same scripted AUCs: same epochs run, same epoch's weights restored."""
    ours = _fit_scripted(aucs, contract.EarlyStopping(patience).keras_callback(verbose=0))
    theirs = _fit_scripted(aucs, keras.callbacks.EarlyStopping(monitor="val_auc", mode="max", patience=patience,
                                                               restore_best_weights=True))
    assert (ours[0]["epochs_run"], ours[1]) == (theirs[0]["epochs_run"], theirs[1]) == expected


def test_the_keras_callback_says_what_is_missing_without_an_eval_auc():
    x = keras.Input(shape=(1,))
    model = keras.Model(x, keras.layers.Dense(1)(x))
    model.compile(loss="mse")
    with pytest.raises(KeyError, match="needs `val_auc`.*got \\['loss'\\]"):
        model.fit(np.ones((4, 1)), np.ones((4, 1)), epochs=1, verbose=0,
                  callbacks=[contract.EarlyStopping(1).keras_callback(verbose=0)])


def test_best_weights_overwrites_one_copy_and_restores_it():
    model = tf.keras.Sequential([tf.keras.layers.Dense(2, input_shape=(3,))])
    best = contract.BestWeights(model)
    with pytest.raises(ValueError, match="no weights were kept"):
        best.restore()
    model.set_weights([np.ones((3, 2)), np.zeros(2)])
    best.keep()
    buffers = [id(b) for b in best._buffers or []]
    model.set_weights([np.full((3, 2), 2.0), np.ones(2)])
    best.keep()
    assert best.kept and [id(b) for b in best._buffers or []] == buffers  # the same buffers, overwritten
    model.set_weights([np.zeros((3, 2)), np.zeros(2)])
    best.restore()
    np.testing.assert_array_equal(model.get_weights()[0], np.full((3, 2), 2.0))
    np.testing.assert_array_equal(model.get_weights()[1], np.ones(2))


def test_history_record_has_no_best_epoch_without_a_finite_auc():
    history = keras.callbacks.History()
    history.history = {"loss": [0.5, 0.4], "val_auc": [float("nan"), float("nan")]}
    assert contract.history_record(history)["best_epoch"] is None
    history.history = {"loss": [0.5]}
    assert contract.history_record(history) == {"epochs_run": 1, "best_epoch": None, "history": {"loss": [0.5]}}
