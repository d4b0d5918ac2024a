"""OptFusion as ResFusion's residual network (trainer/resfusion/optfusion_stage.py): the supernet is searched and
the derived network retrained on the GBDT's logit as a fixed offset, and the fused export serves their sum.
The GbdtResidual run and the split rows are conftest.py's."""
import dataclasses
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from pipeline import optfusion_steps
from tests import helpers
from tests.trainer.resfusion.helpers import TINY_TRAINER, _options, _serialized
from trainer import metrics
from trainer.layers.connection_gate import ConnectionGate
from trainer.layers.fusion_node import FusionNode
from trainer.optfusion import network
from trainer.resfusion import export, gbdt, residual
from trainer.resfusion import models as residual_models
from transform import features

keras = tf.keras


def test_offset_logit_model_adds_the_offset_to_the_logit():
    """Hand-computed: a network whose logit is the sum of the ids, plus each row's offset, in float32."""
    ids = keras.Input(shape=(3,), dtype=tf.int64)
    logit = keras.layers.Lambda(lambda x: tf.reduce_sum(tf.cast(x, tf.float32), axis=1, keepdims=True))(ids)
    with_offset = residual_models.build_offset_logit_model(keras.Model(ids, logit))
    out = with_offset({features.FEATURE_KEY: tf.constant([[1, 2, 3], [0, 0, 4]], tf.int64),
                       residual_models.OFFSET_KEY: tf.constant([[0.5], [-4.0]])})
    assert out.dtype == tf.float32
    np.testing.assert_allclose(out.numpy(), [[6.5], [0.0]])
    assert with_offset.trainable_weights == []  # the offset is an input: nothing of it is trained


@pytest.fixture(scope="module")
def optfusion_hard_k1(layouts, tmp_path_factory):
    """GBDTRes+OptFusion-Hard (K = 1) on raw Criteo-layout rows, exported: (stages, export_dir, the split rows)."""
    produced, encoder, rows = layouts["criteo"]
    options = _options(1, residual_model="optfusion-hard",
                       optfusion=optfusion_steps.preset("criteo", "test", TINY_TRAINER.train))
    ctx = residual.FitContext(rows["train"].inputs, options, TINY_TRAINER, encoder,
                              log_dir=str(tmp_path_factory.mktemp("optfusion_stage_logs")))
    stages = residual.fit_stages(ctx, rows["train"], rows["eval"], gbdt.GbdtModel.load(produced.full_model_dir))
    export_dir = str(tmp_path_factory.mktemp("optfusion_hard_k1"))
    export.export_model(stages, encoder, rows["train"].inputs, export_dir)
    return stages, export_dir, rows


def test_stage_is_the_retrained_hard_network_of_the_searched_architecture(optfusion_hard_k1):
    stages, _, _ = optfusion_hard_k1
    assert [s.kind for s in stages] == ["gbdt", "nn"]
    record = stages[1].record
    assert record["network"] == "optfusion-hard"
    architecture = network.Architecture.from_json(json.dumps(record["architecture"]))
    assert set(architecture.ops) <= {"sum", "product", "concat", "attention"}
    model = stages[1].model
    # A retrain network holds no architecture parameters (no connection gate β, no operation weights α), and it
    # inherited the searched supernet's weights.
    assert not any(isinstance(layer, ConnectionGate) for layer in model.layers)
    nodes = [layer for layer in model.layers if isinstance(layer, FusionNode)]
    assert nodes and all(getattr(node, "alpha", None) is None for node in nodes)
    assert record["inherited_layers"] and record["val_auc_before_training"] is not None
    assert record["search"]["epochs_run"] >= 1 and record["epochs_run"] >= 1
    assert len(record["history"]["val_auc"]) == record["epochs_run"]


def test_stage_trained_on_the_gbdt_offset_and_reports_the_sum(optfusion_hard_k1):
    """The record's eval AUC / logloss are those of gbdt_logit + the network's logit, recomputed here; the fit's
    best retrain epoch is that AUC (early stopping watched the sum, not the network alone)."""
    stages, _, rows = optfusion_hard_k1
    valid = rows["eval"]
    total = valid.gbdt_logit + valid.nn_logits(stages[1].model)
    record = stages[1].record
    assert record["eval_auc"] == pytest.approx(metrics.auc(valid.labels, total), abs=1e-6)
    assert record["eval_logloss"] == pytest.approx(metrics.logloss(valid.labels, total), abs=1e-6)
    assert max(record["history"]["val_auc"]) == pytest.approx(record["eval_auc"], abs=1e-5)


def test_export_serves_the_sum_of_gbdt_and_optfusion_logits_in_a_fresh_process(optfusion_hard_k1, tmp_path):
    stages, export_dir, rows = optfusion_hard_k1
    test = rows["test"]
    expected = residual.sigmoid(test.gbdt_logits(stages[0].model) + test.nn_logits(stages[1].model))
    np.save(tmp_path / "examples.npy", np.array(_serialized(test), dtype=object), allow_pickle=True)
    script = textwrap.dedent(f"""
        import numpy as np
        import tensorflow as tf
        import tensorflow_decision_forests  # the TF-DF ops; nothing of this project is imported
        examples = tf.constant(list(np.load({str(tmp_path / "examples.npy")!r}, allow_pickle=True)))
        serve = tf.saved_model.load({export_dir!r}).signatures["serving_default"]
        np.save({str(tmp_path / "fresh.npy")!r}, serve(examples=examples)["probability"].numpy())
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600,
                            cwd=helpers.REPO_ROOT, env={**os.environ, "TF_USE_LEGACY_KERAS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    np.testing.assert_allclose(np.load(tmp_path / "fresh.npy")[:, 0], expected, rtol=1e-5, atol=1e-6)


def test_optfusion_residual_needs_its_settings_and_no_extra_ids(layouts):
    with pytest.raises(ValueError, match="needs its OptFusion settings"):
        _options(1, residual_model="optfusion-hard")
    _, encoder, rows = layouts["criteo"]
    options = _options(1, residual_model="optfusion-hard", optfusion=optfusion_steps.preset("criteo", "test"))
    ctx = residual.FitContext(rows["train"].inputs, options, TINY_TRAINER, encoder)
    zero = {s.name: np.zeros(len(s), np.float32) for s in (rows["train"], rows["eval"])}
    extra = {s.name: np.zeros((len(s), 1), np.int64) for s in (rows["train"], rows["eval"])}
    with pytest.raises(ValueError, match="takes no extra id columns"):
        residual.fit_nn(ctx, rows["train"], rows["eval"], zero, None, "x", 1, extra_ids=extra, extra_table=1)


def test_options_round_trip_with_and_without_optfusion_settings():
    from trainer.resfusion.settings import ResFusionOptions
    plain = _options(2)
    assert "optfusion" not in plain.to_dict()  # the options of DeepFM runs read as before
    assert ResFusionOptions.from_dict(plain.to_dict()) == plain
    with_optfusion = dataclasses.replace(plain, residual_model="optfusion-soft",
                                         optfusion=optfusion_steps.preset("avazu", "small"))
    assert ResFusionOptions.from_dict(with_optfusion.to_dict()) == with_optfusion
