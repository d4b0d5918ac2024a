"""ResFusion stages: the LogitBoost step, K = 1, 2, 3 on a tiny preset, out-of-fold offsets, which K is
served, the fused export and its reload, and every variant and comparator on OptFusion TFRecord rows.

The GbdtResidual runs are shared with tests/components/test_gbdt_residual.py (tests.resfusion_data). The deep
stages read ids from a hashing encoder (raw rows) or the `feature` ids themselves (TFRecords) here, not from a
Transform graph, to keep the tests fast; the pipeline's Transform-graph encoder is exercised by
tests/e2e/test_resfusion_pipeline.py.
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
from trainer import metrics
from trainer.config import ModelConfig, TrainConfig, TrainerConfig
from trainer.resfusion import comparators, export, gbdt, residual
from trainer.resfusion import models as residual_models
from trainer.resfusion.settings import ResFusionOptions
from transform import features

TINY_GBDT = resfusion_data.TINY_GBDT
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
        inputs = gbdt.GbdtInputs(self.spec).parse(serialized)
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
    inputs = gbdt.GbdtInputs(SPEC)
    train = residual.SplitRows("train", [_hand_made_rows(str(tmp_path / "train.gz"), 2000, 1)], inputs, 256)
    valid = residual.SplitRows("eval", [_hand_made_rows(str(tmp_path / "eval.gz"), 500, 2)], inputs, 256)
    options = ResFusionOptions(rounds=1, gbdt=gbdt.GbdtParams(num_trees=40, max_depth=3, early_stopping_look_ahead=10))
    ctx = residual.FitContext(inputs, options, TINY_TRAINER, encoder=None)
    cases = {
        "base rate only": lambda s: np.full(len(s), -0.2, np.float32),
        "C1 effect backwards": lambda s: np.where(np.array(_field(s, "C1")) == b"b", 1.0, -1.0).astype(np.float32),
    }
    for name, make_offsets in cases.items():
        offsets = {s.name: make_offsets(s) for s in (train, valid)}
        model = residual.fit_gbdt(ctx, train, valid, offsets, rows=None)
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

class PrebuiltIdEncoder(residual.IdEncoder):
    """OptFusion TFRecords: the ids of `feature` as they are (what Transform's prebuilt_ids keeps in range)."""

    def __init__(self, num_fields: int, largest_id: int):
        self.num_fields, self.table_size = num_fields, largest_id + 1
        self._spec = {features.FEATURE_KEY: tf.io.FixedLenFeature([num_fields], tf.int64)}

    def __call__(self, serialized: tf.Tensor) -> tf.Tensor:
        return tf.io.parse_example(serialized, self._spec)[features.FEATURE_KEY]


@pytest.fixture(scope="module")
def layouts(tmp_path_factory):
    """Per layout ("criteo": raw fields, "tfrecord": OptFusion ids): (GbdtResidual output, encoder, {split: rows})."""
    out = {}
    for layout in resfusion_data.LAYOUTS:
        produced = resfusion_data.shared_gbdt_residual(layout)
        inputs = gbdt.GbdtModel.load(produced.full_model_dir).inputs
        if layout == "tfrecord":
            encoder = PrebuiltIdEncoder(resfusion_data.TFRECORD_FIELDS, resfusion_data.largest_id(produced))
        else:
            encoder = HashIdEncoder(SPEC)
        cache = str(tmp_path_factory.mktemp(f"ids_cache_{layout}"))
        rows = {}
        for name in resfusion_data.SPLIT_ROWS[layout]:
            rows[name] = residual.SplitRows(name, produced.split_files(name), inputs, TINY_TRAINER.train.batch_size)
            rows[name].cache_ids(encoder, cache)
        out[layout] = (produced, encoder, rows)
    return out


def _options(rounds: int, **kwargs) -> ResFusionOptions:
    return ResFusionOptions(rounds=rounds, folds=resfusion_data.FOLDS, fold_seed=resfusion_data.FOLD_SEED,
                            gbdt=TINY_GBDT, **kwargs)


@pytest.fixture(scope="module")
def k3(layouts, tmp_path_factory):
    """GBDTRes+NN with K = 3 fitted once on raw Criteo-layout rows; the prefixes K = 1, 2, 3 exported from its
    stages. Returns (stages, {K: export_dir})."""
    produced, encoder, rows = layouts["criteo"]
    ctx = residual.FitContext(rows["train"].inputs, _options(3), TINY_TRAINER, encoder)
    stages = residual.fit_stages(ctx, rows["train"], rows["eval"], gbdt.GbdtModel.load(produced.full_model_dir))
    exports = {}
    for rounds in (1, 2, 3):
        exports[rounds] = str(tmp_path_factory.mktemp(f"export_k{rounds}"))
        export.export_model(stages[:rounds + 1], encoder, rows["train"].inputs, exports[rounds])
    return stages, exports


@pytest.fixture(scope="module")
def tfrecord_fitted(layouts, tmp_path_factory):
    """On OptFusion TFRecord rows: GBDTRes+NN (K = 1, not exported: the comparators export the same GBDT on
    ids), NNres+GBDT and every Table 2 comparator, exported. {name: (stages or None, record, export_dir or None)}."""
    produced, encoder, rows = layouts["tfrecord"]
    inputs = rows["train"].inputs
    out = {}
    for name, options in (("resfusion", _options(1)), ("nnres-gbdt", _options(1, first_stage="nn"))):
        first = gbdt.GbdtModel.load(produced.full_model_dir) if options.first_stage == "gbdt" else None
        stages = residual.fit_stages(residual.FitContext(inputs, options, TINY_TRAINER, encoder),
                                     rows["train"], rows["eval"], first)
        export_dir = None
        if name == "nnres-gbdt":
            export_dir = str(tmp_path_factory.mktemp(f"tfrecord_{name}"))
            export.export_model(stages, encoder, inputs, export_dir)
        out[name] = (stages, stages[-1].record, export_dir)
    ctx = residual.FitContext(inputs, _options(0), TINY_TRAINER, encoder)
    for variant in comparators.COMPARATORS:
        model, record = comparators.fit_comparator(variant, ctx, rows["train"], rows["eval"],
                                                   gbdt.GbdtModel.load(produced.full_model_dir))
        export_dir = str(tmp_path_factory.mktemp(variant.replace("+", "_plus_")))
        export.save_model(model, encoder, inputs, export_dir)
        out[variant] = (None, record, export_dir)
    return out


@pytest.fixture(scope="module")
def k3_test_logits(k3, layouts):
    """Each K = 3 stage's logits on the raw test rows, computed stage by stage: float32 [n] per stage."""
    test = layouts["criteo"][2]["test"]
    return [_stage_logits(test, stage) for stage in k3[0]]


def _serialized(split: residual.SplitRows) -> list[bytes]:
    return [r.numpy() for r in split.records()]


def _stage_logits(split: residual.SplitRows, stage: residual.Stage) -> np.ndarray:
    return split.gbdt_logits(stage.model) if stage.kind == "gbdt" else split.nn_logits(stage.model)


def test_k_rounds_alternate_stages_and_every_stage_feeding_another_is_out_of_fold(k3):
    stages, _ = k3
    assert tuple(s.kind for s in stages) == ("gbdt", "nn", "gbdt", "nn")
    records = [s.record for s in stages]
    assert records[0]["train_offsets"].startswith("out-of-fold")
    assert records[0]["recorded_eval_logit_max_abs_diff"] < 1e-5
    for record in records[1:-1]:  # the deep stage and the GBDT stage that feed a later one
        assert record["train_offsets"] == f"out-of-fold ({resfusion_data.FOLDS} folds)", record
    assert records[-1]["train_offsets"] == "in-sample (last stage)"
    assert [r["rounds"] for r in records] == [0, 1, 2, 3]
    for record in records:
        assert 0.5 < record["eval_auc"] <= 1.0 and 0.2 < record["eval_logloss"] < 0.8


def test_out_of_fold_offsets_come_from_fold_models_that_never_saw_the_row(k3, layouts):
    """Stages 1 (deep) and 2 (GBDT) hand the next stage, for a row of fold j, the logit of fold model j, which
    was fitted without fold j; not the logit of the stage model fitted on every row."""
    stages, _ = k3
    train = layouts["criteo"][2]["train"]
    folds = train.folds
    for stage in stages[1:3]:
        assert len(stage.fold_models) == resfusion_data.FOLDS
        for j, fold_model in enumerate(stage.fold_models):
            rows = folds == j
            if stage.kind == "gbdt":  # fitted on exactly the rows outside fold j
                assert fold_model.keras_model.make_inspector().dataspec.created_num_rows == int((~rows).sum())
                scored = train.gbdt_logits(fold_model, rows=rows)
            else:
                scored = train.nn_logits(fold_model, rows=rows)
            np.testing.assert_allclose(stage.train_logits[rows], scored, rtol=1e-5, atol=1e-6)
        in_sample = _stage_logits(train, stage)
        assert np.mean(np.abs(stage.train_logits - in_sample) > 1e-6) > 0.9, stage.kind


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


# --- which K is served ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("loglosses, best", [
    ([0.539, 0.557, 0.629], 0),          # the Criteo run of the issue: every residual stage hurt
    ([0.50, 0.45, 0.46, 0.44], 3),
    ([0.50, 0.45, 0.45], 1),             # a tie keeps the shorter model
    ([0.50, float("nan"), 0.49], 2),     # NaN counts as worst
    ([0.7], 0),
])
def test_the_served_prefix_has_the_lowest_eval_logloss(loglosses, best):
    assert residual.best_prefix(loglosses) == best


def _record(index: int, kind: str, auc: float, loss: float, **extra) -> dict:
    return {"index": index, "rounds": index, "kind": kind, "name": residual_models.stage_name(index, kind),
            "eval_auc": auc, "eval_logloss": loss, "train_logloss": 0.3, **extra}


def test_a_stage_that_worsens_the_eval_logloss_is_not_served_and_every_k_is_reported():
    stages = [residual.Stage("gbdt", None, _record(0, "gbdt", 0.685, 0.539, num_trees=40)),
              residual.Stage("nn", None, _record(1, "nn", 0.716, 0.557, best_epoch=2, epochs_run=3)),
              residual.Stage("gbdt", None, _record(2, "gbdt", 0.702, 0.629, num_trees=12))]
    served = residual.select_served(stages)
    assert [s.kind for s in served] == ["gbdt"]
    result = export.summarize("resfusion", _options(2), [s.record for s in stages])
    assert result["served_rounds"] == 0 and result["fitted_rounds"] == 2
    assert (result["eval_auc"], result["eval_logloss"]) == (0.685, 0.539)
    assert result["best_epoch"] == 2  # the first deep stage's
    assert [(s["rounds"], s["eval_auc"], s["eval_logloss"], s["served"]) for s in result["stages"]] == [
        (0, 0.685, 0.539, True), (1, 0.716, 0.557, False), (2, 0.702, 0.629, False)]
    assert json.loads(json.dumps(result)) == result


def test_run_result_is_recorded_on_the_model_artifact():
    from tfx.types import standard_artifacts

    from components.gbdt_residual import trainer_executor
    stages = [residual.Stage("gbdt", None, _record(0, "gbdt", 0.70, 0.50)),
              residual.Stage("nn", None, _record(1, "nn", 0.75, 0.45, best_epoch=1))]
    residual.select_served(stages)
    model = standard_artifacts.Model()
    trainer_executor.record_result(model, export.summarize("resfusion", _options(1), [s.record for s in stages]))
    assert model.get_int_custom_property("served_rounds") == 1
    assert model.get_int_custom_property("fitted_rounds") == 1
    assert model.get_float_custom_property("eval_logloss") == pytest.approx(0.45)
    assert model.get_int_custom_property("best_epoch") == 1
    assert [s["served"] for s in json.loads(model.get_string_custom_property("stage_metrics"))] == [True, True]


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


# --- exports ---------------------------------------------------------------------------------------------------------

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


# --- OptFusion TFRecords: every variant and comparator ----------------------------------------------------------------

def test_tfrecord_rows_run_gbdtres_nn_and_nnres_gbdt_with_out_of_fold_offsets(tfrecord_fitted, layouts):
    """Both orders on OptFusion TFRecords, each first stage handing out-of-fold logits to the second; the GBDT
    loaded from the component reproduces its recorded eval logits; NNres+GBDT's export scores the input's
    records (label, `feature`) as the sum of its stage logits."""
    _, _, rows = layouts["tfrecord"]
    for name, kinds in (("resfusion", ["gbdt", "nn"]), ("nnres-gbdt", ["nn", "gbdt"])):
        stages = tfrecord_fitted[name][0]
        assert [s.kind for s in stages] == kinds
        assert stages[0].record["train_offsets"].startswith("out-of-fold"), stages[0].record
    assert tfrecord_fitted["resfusion"][0][0].record["recorded_eval_logit_max_abs_diff"] < 1e-5
    stages, _, export_dir = tfrecord_fitted["nnres-gbdt"]
    assert stages[1].record["fitted_by"] == "LogitBoost regression GBDT"
    expected = sum(_stage_logits(rows["test"], stage) for stage in stages)
    raw = layouts["tfrecord"][0].raw_records("test")
    served = tf.saved_model.load(export_dir).signatures["serving_default"](examples=tf.constant(raw))
    np.testing.assert_allclose(served["probability"].numpy()[:, 0], residual.sigmoid(expected), rtol=1e-5, atol=1e-6)


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
def test_comparator_exports_serve_what_was_measured_at_training(tfrecord_fitted, layouts, variant):
    """On OptFusion TFRecords: the exported comparator's eval AUC and logloss are the ones recorded while
    fitting it."""
    _, record, export_dir = tfrecord_fitted[variant]
    valid = layouts["tfrecord"][2]["eval"]
    served = tf.saved_model.load(export_dir).signatures["serving_default"](
        examples=tf.constant(_serialized(valid)))["probability"].numpy()[:, 0]
    assert metrics.auc(valid.labels, served) == pytest.approx(record["eval_auc"], abs=1e-4)
    logits = np.log(served) - np.log1p(-served)
    assert metrics.logloss(valid.labels, logits) == pytest.approx(record["eval_logloss"], abs=1e-4)
    assert record["eval_auc"] > 0.55


def test_ensemble_weights_are_fitted_on_out_of_fold_training_logits(tfrecord_fitted, layouts):
    """GBDT+DeepFM: (a, b, c) come from every training row's out-of-fold logits, never from the eval split."""
    record = tfrecord_fitted["gbdt+deepfm"][1]
    train = layouts["tfrecord"][2]["train"]
    assert record["ensemble_fitted_on"] == "train (out-of-fold logits)"
    assert record["ensemble_rows"] == len(train) and record["ensemble_folds"] == resfusion_data.FOLDS


def test_ensemble_weights_are_a_logistic_regression_of_the_two_logits():
    """With the labels drawn from sigmoid(2 * g - 1 * d + 0.5) itself, the fit recovers (2, -1), 0.5."""
    g, d = np.meshgrid(np.linspace(-2, 2, 41), np.linspace(-2, 2, 41))
    g, d = np.repeat(g.ravel(), 200), np.repeat(d.ravel(), 200)
    p = residual.sigmoid(2 * g - d + 0.5)
    # Exact proportions instead of random draws: of the 200 copies of a point, round(200 p) are clicks.
    labels = np.concatenate([np.arange(200) < round(200 * pi) for pi in p[::200]]).astype(np.float32)
    weights, bias = comparators.ensemble_weights(g, d, labels)
    np.testing.assert_allclose(weights, [2.0, -1.0], atol=0.02)
    assert bias == pytest.approx(0.5, abs=0.02)


def test_feature_fusion_buckets_agree_with_the_serving_layer():
    logits = np.array([-3.0, -1.0, -0.5, 0.0, 0.25, 2.0], np.float32)
    boundaries = comparators.quantile_boundaries(np.linspace(-2, 2, 101), buckets=4)
    layer = tf.keras.layers.Discretization(bin_boundaries=boundaries, output_mode="int")
    np.testing.assert_array_equal(layer(logits).numpy(), comparators.bucketize(logits, boundaries))
    np.testing.assert_array_equal(comparators.bucketize(np.float32(boundaries), boundaries), [1, 2, 3])
