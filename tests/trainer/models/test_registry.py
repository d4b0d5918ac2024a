"""The model registry: every baseline is built by name, predicts probabilities, survives save/load, gets a
gradient in every weight and its coupled L2 only when set; an unknown name lists the choices."""
from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from tests.trainer.models.helpers import BASELINES, _build, _ids
from trainer.config import ModelConfig, TrainConfig
from trainer.models import registry

keras = tf.keras


def test_registry_lists_every_baseline():
    assert set(BASELINES) | {"deepfm"} <= set(registry.LOGIT_BUILDERS)


@pytest.mark.parametrize("name", BASELINES)
def test_baseline_predicts_probabilities_and_survives_save_load(name, tmp_path):
    model = _build(name)
    ids = _ids()
    before = model({"feature": ids}).numpy()
    assert before.shape == (8, 1) and before.dtype == np.float32
    assert ((before > 0) & (before < 1)).all()
    if name != "lr":
        assert np.std(before) > 0  # random embeddings: the rows differ
    model.save(str(tmp_path / name), save_format="tf", save_traces=False)
    loaded = keras.models.load_model(str(tmp_path / name))
    np.testing.assert_array_equal(loaded({"feature": ids}).numpy(), before)


@pytest.mark.parametrize("name", BASELINES)
def test_every_weight_gets_a_gradient(name):
    model = _build(name)
    with tf.GradientTape() as tape:
        loss = keras.losses.BinaryCrossentropy()(tf.ones([8, 1]), model({"feature": _ids()})) + tf.add_n(model.losses)
    gradients = tape.gradient(loss, model.trainable_weights)
    assert model.trainable_weights and all(g is not None for g in gradients)


@pytest.mark.parametrize("name", BASELINES)
def test_coupled_l2_reaches_the_loss_only_when_set(name):
    assert _build(name, l2=1e-6).losses
    assert not _build(name, l2=0.0).losses


def test_unknown_model_name_lists_the_choices():
    with pytest.raises(ValueError, match="unknown model 'nope'; choose one of .*deepfm"):
        registry.build_model(ModelConfig(name="nope"), TrainConfig(), 2, 10)
