"""The Architecture artifact (trainer/optfusion/training.py writes and reads it): a round trip through MLMD,
the supernet reloaded from it and the retrain model built from it."""
from __future__ import annotations

import json

import numpy as np
import tensorflow as tf
from tfx.types import artifact_utils

from components.optfusion import OptFusionArchitecture, executor
from tests.trainer.optfusion.helpers import DIM, FIELDS, TABLE, _batch, _supernet
from trainer.optfusion import network, training


def test_architecture_artifact_round_trip(tmp_path):
    model, _ = _supernet()
    beta = model.get_layer(network.GATE_LAYER).beta
    beta.assign(tf.tensor_scatter_nd_update(beta, [[4, 0], [8, 3]], [-0.1, -0.2]))  # prune two connections
    config = training.SupernetConfig(TABLE, FIELDS, DIM)
    architecture = network.Architecture.derive(model, best_val_auc=0.625)
    artifact = OptFusionArchitecture()
    artifact.uri = str(tmp_path / "architecture")
    training.write_architecture_dir(artifact.uri, architecture, model, config, {"best_epoch": 2})
    executor.record_search(artifact, architecture, {"best_val_auc": 0.625, "best_epoch": 2, "epochs_run": 3})

    # Through MLMD's representation and back: the same type, the same properties.
    restored = artifact_utils.deserialize_artifact(artifact.artifact_type, artifact.mlmd_artifact)
    assert isinstance(restored, OptFusionArchitecture) and restored.type_name == OptFusionArchitecture.TYPE_NAME
    assert restored.get_float_custom_property("best_val_auc") == 0.625
    assert restored.get_string_custom_property("ops") == ",".join(architecture.ops)
    assert restored.get_int_custom_property("kept_connections") == 31

    loaded = training.read_architecture(restored.uri)
    assert loaded == architecture
    assert loaded.connections[4][0] == 0 and loaded.connections[8][3] == 0
    with open(tmp_path / "architecture" / training.ARCHITECTURE_FILE) as f:
        assert json.load(f)["best_val_auc"] == 0.625  # human-readable JSON
    assert training.read_supernet_config(restored.uri) == config
    supernet = training.load_supernet(restored.uri)
    features, _ = _batch()
    np.testing.assert_array_equal(supernet(features).numpy(), model(features).numpy())

    # The retrain model built from the artifact inherits the supernet's weights.
    logit_model, probability_model = training.build_retrain(loaded, config, "soft")
    inherited = network.inherit_weights(supernet, logit_model)
    assert network.EMBEDDING_LAYER in inherited
    np.testing.assert_allclose(tf.sigmoid(logit_model(features)).numpy(), probability_model(features).numpy(),
                               rtol=1e-6)
