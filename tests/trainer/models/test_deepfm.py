"""DeepFM: a save/load round trip gives identical predictions."""
from __future__ import annotations

import numpy as np
import tensorflow as tf

from trainer.config import ModelConfig, TrainConfig
from trainer.models import registry

keras = tf.keras


def test_deepfm_save_and_load_give_identical_predictions(tmp_path):
    model = registry.build_model(ModelConfig(embedding_dim=3, hidden_units=(8, 4)), TrainConfig(), num_fields=5,
                                 table_size=50)
    ids = tf.constant(np.random.default_rng(0).integers(0, 50, size=(16, 5)), tf.int64)
    before = model({"feature": ids}).numpy()
    assert before.shape == (16, 1) and ((before > 0) & (before < 1)).all()
    model.save(str(tmp_path / "m"), save_format="tf")
    loaded = keras.models.load_model(str(tmp_path / "m"))
    np.testing.assert_array_equal(loaded({"feature": ids}).numpy(), before)
