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


def test_keras_fit_stops_and_keeps_the_best_epoch_as_the_policy_says():
    """A model whose eval AUC goes .5 (epoch 1), up (2), down (3): patience 1 stops after epoch 3 and restores 2."""
    class ScriptedAuc(keras.callbacks.Callback):
        def __init__(self, aucs):
            super().__init__()
            self.aucs = list(aucs)

        def on_epoch_end(self, epoch, logs=None):
            logs["val_auc"] = self.aucs[epoch]
            self.model.layers[-1].set_weights([np.full((1, 1), epoch + 1.0, np.float32)])

    x = keras.Input(shape=(1,))
    model = keras.Model(x, keras.layers.Dense(1, use_bias=False, trainable=False)(x))
    model.compile(loss="mse")
    history = model.fit(np.ones((4, 1)), np.ones((4, 1)), epochs=5, verbose=0,
                        callbacks=[ScriptedAuc([0.5, 0.7, 0.6, 0.8, 0.9]),
                                   contract.EarlyStopping(1).keras_callback(verbose=0)])
    record = contract.history_record(history)
    assert (record["epochs_run"], record["best_epoch"]) == (3, 2)
    assert model.layers[-1].get_weights()[0][0, 0] == 2.0  # epoch 2's weights


def test_history_record_has_no_best_epoch_without_a_finite_auc():
    history = keras.callbacks.History()
    history.history = {"loss": [0.5, 0.4], "val_auc": [float("nan"), float("nan")]}
    assert contract.history_record(history)["best_epoch"] is None
    history.history = {"loss": [0.5]}
    assert contract.history_record(history) == {"epochs_run": 1, "best_epoch": None, "history": {"loss": [0.5]}}
