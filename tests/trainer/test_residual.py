"""ResFusion stages: the LogitBoost step, K = 1, 2, 3 on a tiny preset, the fused export and its reload.

The deep stages read ids from a hashing encoder here (no Transform graph, to keep the tests fast); the
pipeline's Transform-graph encoder is exercised by tests/e2e/test_resfusion_pipeline.py.
"""
import dataclasses
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from tests import helpers, resfusion_data
from trainer import comparators, gbdt, metrics, residual
from trainer.config import ModelConfig, TrainConfig, TrainerConfig
from trainer.models import residual as residual_models
from trainer.residual_config import ResFusionOptions
from transform import features

SPLIT_ROWS = {"train": 1200, "eval": 400, "test": 400}
TINY_GBDT = gbdt.GbdtParams(num_trees=10, max_depth=4, early_stopping_look_ahead=5, batch_size=256)
TINY_TRAINER = TrainerConfig(ModelConfig(name="deepfm", embedding_dim=4, hidden_units=(16,)),
                             TrainConfig(batch_size=128, epochs=1, learning_rate=3e-3, l2_embedding=0.0, l2_dense=0.0))
SPEC = features.get_dataset("criteo")


class HashIdEncoder(residual.IdEncoder):
    """ids = field offset + hash bucket of the raw value (a stand-in for the Transform graph)."""

    def __init__(self, spec: features.DatasetSpec, buckets: int = 32):
        self.spec, self.buckets = spec, buckets
        self.num_fields = len(spec.raw_fields)
        self.table_size = buckets * self.num_fields

    def __call__(self, serialized: tf.Tensor) -> tf.Tensor:
        inputs = gbdt.parse_raw(self.spec, serialized)
        columns = []
        for i, field in enumerate(self.spec.raw_fields):
            value = inputs[field]
            tokens = tf.strings.as_string(value) if value.dtype != tf.string else value
            columns.append(tf.strings.to_hash_bucket_fast(tokens, self.buckets) + i * self.buckets)
        return tf.stack(columns, axis=1)


# --- LogitBoost ---------------------------------------------------------------------------------------------------

def test_logitboost_targets_are_the_newton_step_of_the_logloss():
    rng = np.random.default_rng(0)
    labels = (rng.random(500) < 0.3).astype(np.float32)
    offsets = rng.normal(-1.0, 0.5, 500).astype(np.float32)
    z, w = residual.logitboost_targets(labels, offsets, z_max=1e9)
    p = residual.sigmoid(offsets)
    np.testing.assert_allclose(w, p * (1 - p), rtol=1e-5)
    np.testing.assert_allclose(z * w, labels - p, atol=1e-5)  # w z = -gradient of the logloss
    # The best constant h under the weighted squared error is the Newton step for an intercept.
    newton = np.sum(labels - p) / np.sum(p * (1 - p))
    assert np.sum(w * z) / np.sum(w) == pytest.approx(newton, rel=1e-5)
    # ... and it lowers the logloss, as a Newton step on this convex function should.
    assert metrics.logloss(labels, offsets + newton) < metrics.logloss(labels, offsets)
    clipped, _ = residual.logitboost_targets(np.array([1.0, 0.0]), np.array([-8.0, 0.0]), z_max=4.0)
    np.testing.assert_allclose(clipped, [4.0, -2.0], rtol=1e-6)


def _hand_made_rows(path: str, rows: int, seed: int) -> str:
    """Criteo-layout rows whose click log-odds are -1 + 0.3 * I1 - 1.5 * [C1 == "b"] (I1 in 0..9)."""
    rng = np.random.default_rng(seed)
    with tf.io.TFRecordWriter(path, "GZIP") as writer:
        for _ in range(rows):
            i1, c1 = int(rng.integers(0, 10)), str(rng.choice(["a", "b"]))
            label = int(rng.random() < residual.sigmoid(-1.0 + 0.3 * i1 - 1.5 * (c1 == "b")))
            example = tf.train.Example()
            example.features.feature["label"].int64_list.value.append(label)
            example.features.feature["I1"].int64_list.value.append(i1)
            example.features.feature["C1"].bytes_list.value.append(c1.encode())
            writer.write(example.SerializeToString())
    return path


def test_logitboost_stage_decreases_training_logloss_against_the_offset_alone(tmp_path):
    train = residual.SplitRows("train", [_hand_made_rows(str(tmp_path / "train.gz"), 2000, 1)], SPEC, 256)
    valid = residual.SplitRows("eval", [_hand_made_rows(str(tmp_path / "eval.gz"), 500, 2)], SPEC, 256)
    options = ResFusionOptions(rounds=1, gbdt=gbdt.GbdtParams(num_trees=40, max_depth=3, early_stopping_look_ahead=10))
    ctx = residual.FitContext(SPEC, options, TINY_TRAINER, encoder=None)
    cases = {
        "base rate only": lambda s: np.full(len(s), -0.2, np.float32),
        "C1 effect backwards": lambda s: np.where(np.array(_field(s, "C1")) == b"b", 1.0, -1.0).astype(np.float32),
    }
    for name, make_offsets in cases.items():
        offsets = {s.name: make_offsets(s) for s in (train, valid)}
        model = residual._fit_gbdt(ctx, train, valid, offsets, rows=None)
        for split in (train, valid):
            before = metrics.logloss(split.labels, offsets[split.name])
            after = metrics.logloss(split.labels, offsets[split.name] + split.gbdt_logits(model))
            assert after < before - 0.02, (name, split.name, before, after)


def _field(split: residual.SplitRows, field: str) -> list:
    values = []
    for serialized in split.records():
        feature = tf.train.Example.FromString(serialized.numpy()).features.feature[field]
        values.append(feature.bytes_list.value[0] if feature.bytes_list.value else feature.int64_list.value[0])
    return values


# --- K rounds -----------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def gbdt_output(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("resfusion"))
    return resfusion_data.run_gbdt_residual(root, SPLIT_ROWS, folds=2, fold_seed=3, params=TINY_GBDT)


@pytest.fixture(scope="module")
def splits(gbdt_output, tmp_path_factory):
    encoder = HashIdEncoder(SPEC)
    cache = str(tmp_path_factory.mktemp("ids_cache"))
    rows = {}
    for name in SPLIT_ROWS:
        rows[name] = residual.SplitRows(name, gbdt_output.split_files(name), SPEC, TINY_TRAINER.train.batch_size)
        rows[name].cache_ids(encoder, cache)
    return encoder, rows


@pytest.fixture(scope="module")
def fitted(gbdt_output, splits, tmp_path_factory):
    """K = 1, 2, 3 fitted on the tiny preset and exported; {K: (stages, export_dir)}."""
    encoder, rows = splits
    out = {}
    for rounds in (1, 2, 3):
        options = ResFusionOptions(rounds=rounds, folds=2, fold_seed=3, gbdt=TINY_GBDT)
        ctx = residual.FitContext(SPEC, options, TINY_TRAINER, encoder)
        first = gbdt.GbdtModel.load(gbdt_output.full_model_dir)
        stages = residual.fit_stages(ctx, rows["train"], rows["eval"], first)
        export_dir = str(tmp_path_factory.mktemp(f"export_k{rounds}"))
        residual.export_model(stages, encoder, SPEC, export_dir)
        out[rounds] = (stages, export_dir)
    return out


@pytest.fixture(scope="module")
def comparators_fitted(gbdt_output, splits, tmp_path_factory):
    """Every Table 2 comparator on the tiny preset, exported; {variant: (record, export_dir)}."""
    encoder, rows = splits
    options = ResFusionOptions(rounds=0, folds=2, fold_seed=3, gbdt=TINY_GBDT)
    ctx = residual.FitContext(SPEC, options, TINY_TRAINER, encoder)
    out = {}
    for variant in comparators.COMPARATORS:
        model, record = comparators.fit_comparator(variant, ctx, rows["train"], rows["eval"],
                                                   gbdt.GbdtModel.load(gbdt_output.full_model_dir))
        export_dir = str(tmp_path_factory.mktemp(variant.replace("+", "_plus_")))
        residual.save_model(model, encoder, SPEC, export_dir)
        out[variant] = (record, export_dir)
    return out


def _serialized(split: residual.SplitRows) -> list[bytes]:
    return [r.numpy() for r in split.records()]


@pytest.mark.parametrize("rounds, kinds", [(1, ("gbdt", "nn")), (2, ("gbdt", "nn", "gbdt")),
                                           (3, ("gbdt", "nn", "gbdt", "nn"))])
def test_k_rounds_alternate_stages_and_record_how_offsets_were_made(fitted, rounds, kinds):
    stages, _ = fitted[rounds]
    assert tuple(s.kind for s in stages) == kinds
    records = [s.record for s in stages]
    assert records[0]["train_offsets"].startswith("out-of-fold")
    assert records[0]["recorded_eval_logit_max_abs_diff"] < 1e-5
    for record in records[1:-1]:
        expected = "out-of-fold" if record["kind"] == "gbdt" else "in-sample"
        assert record["train_offsets"].startswith(expected), record
    for record in records:
        assert 0.5 < record["eval_auc"] <= 1.0 and 0.2 < record["eval_logloss"] < 0.8


@pytest.mark.parametrize("rounds", [1, 2, 3])
def test_fused_model_is_the_sum_of_the_stage_logits(fitted, splits, rounds):
    """The exported model's probability is sigmoid of the stage logits computed stage by stage."""
    stages, export_dir = fitted[rounds]
    _, rows = splits
    test = rows["test"]
    expected = np.zeros(len(test))
    for stage in stages:
        expected += test.gbdt_logits(stage.model) if stage.kind == "gbdt" else test.nn_logits(stage.model)
    loaded = tf.saved_model.load(export_dir)
    examples = tf.constant(_serialized(test))
    probability = loaded.signatures["serving_default"](examples=examples)["probability"].numpy()
    assert probability.shape == (len(test), 1) and probability.dtype == np.float32
    np.testing.assert_allclose(probability[:, 0], residual.sigmoid(expected), rtol=1e-5, atol=1e-6)
    stage_logits = loaded.signatures["stage_logits"](examples=examples)
    assert sorted(stage_logits) == sorted(residual_models.stage_name(i, s.kind) for i, s in enumerate(stages))


def test_exported_models_reload_in_a_fresh_process_with_identical_predictions(fitted, comparators_fitted, splits,
                                                                             tmp_path):
    _, rows = splits
    examples = _serialized(rows["test"])
    exports = {**{f"k{rounds}": d for rounds, (_, d) in fitted.items()},
               **{variant: d for variant, (_, d) in comparators_fitted.items()}}
    in_process = {}
    for rounds, export_dir in exports.items():
        serve = tf.saved_model.load(export_dir).signatures["serving_default"]
        in_process[rounds] = serve(examples=tf.constant(examples))["probability"].numpy()
    np.save(tmp_path / "examples.npy", np.array(examples, dtype=object), allow_pickle=True)
    script = textwrap.dedent(f"""
        import json, sys
        import numpy as np
        import tensorflow as tf
        import tensorflow_decision_forests  # the only import a ResFusion SavedModel needs: the TF-DF ops
        examples = tf.constant(list(np.load({str(tmp_path / 'examples.npy')!r}, allow_pickle=True)))
        dirs = json.loads({json.dumps(exports)!r})
        for rounds, path in dirs.items():
            serve = tf.saved_model.load(path).signatures["serving_default"]
            np.save({str(tmp_path)!r} + f"/fresh_{{rounds}}.npy", serve(examples=examples)["probability"].numpy())
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600,
                            cwd=helpers.REPO_ROOT, env={**os.environ, "TF_USE_LEGACY_KERAS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    for rounds, expected in in_process.items():
        np.testing.assert_array_equal(np.load(tmp_path / f"fresh_{rounds}.npy"), expected)


def test_with_zero_deep_weights_the_probability_is_the_gbdts_own(gbdt_output, splits, fitted, tmp_path):
    """GBDTRes+NN with y_D = 0 (every deep weight zero) serves exactly the GBDT Model's probability."""
    encoder, rows = splits
    stages, _ = fitted[1]
    deep = tf.keras.models.clone_model(stages[1].model)
    deep.set_weights([np.zeros_like(w) for w in stages[1].model.get_weights()])
    zeroed = [stages[0], residual.Stage("nn", deep, {})]
    residual.export_model(zeroed, encoder, SPEC, str(tmp_path / "zeroed"))
    examples = tf.constant(_serialized(rows["test"]))
    fused = tf.saved_model.load(str(tmp_path / "zeroed")).signatures["serving_default"](examples=examples)
    own = tf.saved_model.load(gbdt_output.full_model_dir).signatures["serving_default"](examples=examples)
    np.testing.assert_allclose(fused["probability"].numpy(), own["probability"].numpy(), rtol=1e-6, atol=1e-7)
    # ... and the GBDT stage's logit in the fused model is the one recorded in the examples.
    np.testing.assert_allclose(
        tf.saved_model.load(str(tmp_path / "zeroed")).signatures["stage_logits"](examples=examples)[
            "stage_0_gbdt"].numpy()[:, 0], rows["test"].gbdt_logit, atol=1e-6)


def test_residual_learning_improves_on_the_gbdt_alone_on_eval(fitted):
    stages, _ = fitted[2]
    records = [s.record for s in stages]
    assert records[-1]["train_logloss"] < records[0]["train_logloss"]


def test_deep_offsets_can_be_out_of_fold(gbdt_output, splits):
    encoder, rows = splits
    options = ResFusionOptions(rounds=2, folds=2, fold_seed=3, gbdt=TINY_GBDT, nn_out_of_fold=True)
    ctx = residual.FitContext(SPEC, options, TINY_TRAINER, encoder)
    stages = residual.fit_stages(ctx, rows["train"], rows["eval"], gbdt.GbdtModel.load(gbdt_output.full_model_dir))
    assert stages[1].record["train_offsets"] == "out-of-fold (2 folds)"


def test_nn_first_stage_is_nnres_gbdt(splits):
    encoder, rows = splits
    options = ResFusionOptions(rounds=1, first_stage="nn", folds=2, gbdt=TINY_GBDT)
    stages = residual.fit_stages(residual.FitContext(SPEC, options, TINY_TRAINER, encoder), rows["train"], rows["eval"])
    assert [s.kind for s in stages] == ["nn", "gbdt"]
    assert stages[1].record["fitted_by"] == "LogitBoost regression GBDT"


def test_options_validate_and_round_trip():
    options = ResFusionOptions(rounds=3, gbdt=TINY_GBDT)
    assert options.stage_kinds == ("gbdt", "nn", "gbdt", "nn")
    assert ResFusionOptions.from_dict(json.loads(json.dumps(options.to_dict()))) == options
    assert ResFusionOptions(rounds=0).stage_kinds == ("gbdt",)
    with pytest.raises(ValueError, match="folds"):
        ResFusionOptions(folds=1)
    with pytest.raises(ValueError, match="first_stage"):
        ResFusionOptions(first_stage="lr")
    assert dataclasses.replace(options, rounds=1).stage_kinds == ("gbdt", "nn")


@pytest.mark.parametrize("variant", comparators.COMPARATORS)
def test_comparator_exports_serve_what_was_measured_at_training(comparators_fitted, splits, variant):
    """The exported comparator's eval AUC and logloss are the ones recorded while fitting it."""
    record, export_dir = comparators_fitted[variant]
    _, rows = splits
    valid = rows["eval"]
    served = tf.saved_model.load(export_dir).signatures["serving_default"](
        examples=tf.constant(_serialized(valid)))["probability"].numpy()[:, 0]
    assert metrics.auc(valid.labels, served) == pytest.approx(record["eval_auc"], abs=1e-4)
    logits = np.log(served) - np.log1p(-served)
    assert metrics.logloss(valid.labels, logits) == pytest.approx(record["eval_logloss"], abs=1e-4)
    assert record["eval_auc"] > 0.55


def test_feature_fusion_buckets_agree_with_the_serving_layer():
    logits = np.array([-3.0, -1.0, -0.5, 0.0, 0.25, 2.0], np.float32)
    boundaries = comparators.quantile_boundaries(np.linspace(-2, 2, 101), buckets=4)
    layer = tf.keras.layers.Discretization(bin_boundaries=boundaries, output_mode="int")
    np.testing.assert_array_equal(layer(logits).numpy(), comparators.bucketize(logits, boundaries))
    np.testing.assert_array_equal(comparators.bucketize(np.float32(boundaries), boundaries), [1, 2, 3])
