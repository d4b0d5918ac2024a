"""ResFusion's fused export (trainer/resfusion/export.py): the served probability is the sum of the stage
logits, every K is scored from the run, the exports reload in a fresh process, and zero deep weights serve
the GBDT's own probability. The fitted stages are conftest.py's."""
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from tests import helpers
from tests.trainer.resfusion.helpers import _options, _serialized
from trainer.resfusion import export, residual


@pytest.mark.parametrize("rounds", [1, 2, 3])
def test_fused_model_is_the_sum_of_the_stage_logits(k3, k3_test_logits, layouts, rounds):
    """The exported model's probability is sigmoid of the stage logits computed stage by stage."""
    stages, exports = k3
    test = layouts["criteo"][2]["test"]
    expected = sum(k3_test_logits[:rounds + 1])
    loaded = tf.saved_model.load(exports[rounds])
    examples = tf.constant(_serialized(test))
    probability = loaded.signatures["serving_default"](examples=examples)["probability"].numpy()
    assert probability.shape == (len(test), 1) and probability.dtype == np.float32
    np.testing.assert_allclose(probability[:, 0], residual.sigmoid(expected), rtol=1e-5, atol=1e-6)
    stage_logits = loaded.signatures["stage_logits"](examples=examples)
    assert sorted(stage_logits) == sorted(s.record["name"] for s in stages[:rounds + 1])


def test_every_k_can_be_scored_from_the_run(k3, k3_test_logits, layouts, tmp_path):
    """logits_by_rounds: each K's logits from the all-stages model, when a shorter prefix was served."""
    stages, exports = k3
    test = layouts["criteo"][2]["test"]
    model_run = tmp_path / "model_run"
    model_run.mkdir()
    records = [dict(s.record, served=s.record["rounds"] <= 1) for s in stages]
    result = {**export.summarize("resfusion", _options(3), records), "all_stages_model": "../all"}
    (model_run / export.RESULT_FILE).write_text(json.dumps(result))
    os.symlink(exports[3], tmp_path / "all")
    by_rounds = export.logits_by_rounds(str(model_run), exports[1], _serialized(test))
    assert sorted(by_rounds) == [0, 1, 2, 3]
    for rounds, logits in by_rounds.items():
        np.testing.assert_allclose(logits, sum(k3_test_logits[:rounds + 1]), rtol=1e-5, atol=1e-5)


def test_exported_models_reload_in_a_fresh_process_with_identical_predictions(k3, tfrecord_fitted, layouts, tmp_path):
    """Every kind of exported graph (K = 3 holds both stage kinds; NNres+GBDT a LogitBoost GBDT on TFRecord ids;
    the four comparators) loads with `import tensorflow_decision_forests` only and predicts the same."""
    batches = {"criteo": _serialized(layouts["criteo"][2]["test"]),
               "tfrecord": layouts["tfrecord"][0].raw_records("test")}  # the input's records: label, feature
    exports = {"k3": ("criteo", k3[1][3]),
               **{name: ("tfrecord", d) for name, (_, _, d) in tfrecord_fitted.items() if d is not None}}
    in_process = {}
    for name, (layout, export_dir) in exports.items():
        serve = tf.saved_model.load(export_dir).signatures["serving_default"]
        in_process[name] = serve(examples=tf.constant(batches[layout]))["probability"].numpy()
    for layout, batch in batches.items():
        np.save(tmp_path / f"examples_{layout}.npy", np.array(batch, dtype=object), allow_pickle=True)
    script = textwrap.dedent(f"""
        import json, sys
        import numpy as np
        import tensorflow as tf
        import tensorflow_decision_forests  # the only import a ResFusion SavedModel needs: the TF-DF ops
        exports = json.loads({json.dumps(exports)!r})
        for name, (layout, path) in exports.items():
            examples = tf.constant(list(np.load({str(tmp_path)!r} + f"/examples_{{layout}}.npy", allow_pickle=True)))
            serve = tf.saved_model.load(path).signatures["serving_default"]
            np.save({str(tmp_path)!r} + f"/fresh_{{name}}.npy", serve(examples=examples)["probability"].numpy())
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600,
                            cwd=helpers.REPO_ROOT, env={**os.environ, "TF_USE_LEGACY_KERAS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    for name, expected in in_process.items():
        np.testing.assert_array_equal(np.load(tmp_path / f"fresh_{name}.npy"), expected)


def test_with_zero_deep_weights_the_probability_is_the_gbdts_own(layouts, k3, tmp_path):
    """GBDTRes+NN with y_D = 0 (every deep weight zero) serves exactly the GBDT Model's probability."""
    produced, encoder, rows = layouts["criteo"]
    stages, _ = k3
    deep = tf.keras.models.clone_model(stages[1].model)
    deep.set_weights([np.zeros_like(w) for w in stages[1].model.get_weights()])
    zeroed = [stages[0], residual.Stage("nn", deep, {})]
    export.export_model(zeroed, encoder, rows["train"].inputs, str(tmp_path / "zeroed"))
    examples = tf.constant(_serialized(rows["test"]))
    fused = tf.saved_model.load(str(tmp_path / "zeroed")).signatures["serving_default"](examples=examples)
    own = tf.saved_model.load(produced.full_model_dir).signatures["serving_default"](examples=examples)
    np.testing.assert_allclose(fused["probability"].numpy(), own["probability"].numpy(), rtol=1e-6, atol=1e-7)
    # ... and the GBDT stage's logit in the fused model is the one recorded in the examples.
    np.testing.assert_allclose(
        tf.saved_model.load(str(tmp_path / "zeroed")).signatures["stage_logits"](examples=examples)[
            "stage_0_gbdt"].numpy()[:, 0], rows["test"].gbdt_logit, atol=1e-6)
