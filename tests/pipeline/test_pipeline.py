"""create_pipeline is pure and wires the splits as promised (the test split never reaches training)."""
import dataclasses
import json

import pytest

from pipeline import configs
from pipeline.pipeline import create_pipeline


def _config(tmp_path, **dataset):
    return configs.PipelineConfig(
        pipeline_root=str(tmp_path / "root"), metadata_path=str(tmp_path / "m.sqlite"),
        serving_model_dir=str(tmp_path / "serving"),
        dataset=configs.DatasetConfig(name=dataset.pop("name", "criteo"), input_base="/nonexistent/input", **dataset),
        trainer=configs.trainer_preset("criteo", "deepfm", "test"))


def _nodes(pipeline):
    return {node.id: node for node in pipeline.components}


def test_builds_without_touching_the_filesystem(tmp_path):
    pipeline = create_pipeline(_config(tmp_path))
    assert set(_nodes(pipeline)) == {"RawLogExampleGen", "StatisticsGen", "SchemaGen", "FirstSchemaResolver",
                                     "ExampleValidator", "BlessedStatisticsResolver", "DriftValidator", "AnomalyGate",
                                     "Transform", "Trainer", "ChampionResolver", "Evaluator", "Pusher"}
    assert not (tmp_path / "root").exists()


def test_data_is_validated_against_the_first_schema_and_the_served_models_data(tmp_path):
    nodes = _nodes(create_pipeline(_config(tmp_path)))
    assert nodes["ExampleValidator"].inputs["schema"].producer_component_id == "FirstSchemaResolver"
    assert nodes["SchemaGen"] in nodes["FirstSchemaResolver"].upstream_nodes  # a first run pins its own schema
    drift = nodes["DriftValidator"]
    assert drift.inputs["baseline_statistics"].producer_component_id == "BlessedStatisticsResolver"
    assert json.loads(drift.exec_properties["include_split_pairs"]) == [["train", "train"]]
    comparators = drift.exec_properties["distribution_validator_config"].default_slice_config.feature
    assert [c.path.step[0] for c in comparators] == [f"C{i}" for i in range(1, 27)]  # the categorical fields
    assert {c.distribution_comparator.infinity_norm.threshold for c in comparators} == {0.2}
    assert not any(c.distribution_comparator.HasField("jensen_shannon_divergence") for c in comparators)
    gate = nodes["AnomalyGate"]
    assert gate.inputs["drift_anomalies"].producer_component_id == "DriftValidator"


def test_a_pinned_schema_or_kubeflow_skips_the_history_resolvers(tmp_path):
    nodes = _nodes(create_pipeline(_config(tmp_path, schema_path="/schemas/criteo.pbtxt")))
    assert "FirstSchemaResolver" not in nodes and "DriftValidator" in nodes
    assert nodes["ExampleValidator"].inputs["schema"].producer_component_id == "ImportSchemaGen"
    no_history = dataclasses.replace(_config(tmp_path), data_checks=configs.DataChecksConfig(against_history=False))
    nodes = _nodes(create_pipeline(no_history))
    assert not {"FirstSchemaResolver", "BlessedStatisticsResolver", "DriftValidator"} & set(nodes)
    assert "drift_anomalies" not in nodes["AnomalyGate"].inputs


def test_test_split_never_reaches_training_or_blessing(tmp_path):
    nodes = _nodes(create_pipeline(_config(tmp_path)))
    trainer = nodes["Trainer"].exec_properties
    assert json.loads(trainer["train_args"])["splits"] == ["train"]
    assert json.loads(trainer["eval_args"])["splits"] == ["eval"]
    assert json.loads(nodes["Evaluator"].exec_properties["example_splits"]) == ["eval"]
    assert json.loads(nodes["Transform"].exec_properties["splits_config"])["analyze"] == ["train"]


def test_vocabulary_over_all_splits_switch(tmp_path):
    nodes = _nodes(create_pipeline(_config(tmp_path, vocabulary_over_all_splits=True)))
    assert json.loads(nodes["Transform"].exec_properties["splits_config"])["analyze"] == ["train", "eval", "test"]


def test_training_waits_for_the_anomaly_gate(tmp_path):
    nodes = _nodes(create_pipeline(_config(tmp_path)))
    assert nodes["AnomalyGate"] in nodes["Trainer"].upstream_nodes
    assert nodes["AnomalyGate"] in nodes["Transform"].upstream_nodes  # no Transform of data that cannot train


def test_tfrecord_input_uses_import_example_gen_with_the_reference_file_names(tmp_path):
    nodes = _nodes(create_pipeline(_config(tmp_path, name="tfrecord")))
    splits = json.loads(nodes["ImportExampleGen"].exec_properties["input_config"])["splits"]
    assert {s["name"]: s["pattern"] for s in splits} == {
        "train": "train*.tfrecord*", "eval": "validation*.tfrecord*", "test": "test*.tfrecord*"}


def test_the_pusher_pushes_atomically_and_keeps_the_configured_versions(tmp_path):
    import dataclasses

    from components.versioned_pusher import VersionedPusher, executor
    config = dataclasses.replace(_config(tmp_path), push=configs.PushConfig(keep_versions=3))
    pusher = _nodes(create_pipeline(config))["Pusher"]
    assert isinstance(pusher, VersionedPusher) and pusher.executor_spec.executor_class is executor.Executor
    assert json.loads(pusher.exec_properties["custom_config"]) == {executor.KEEP_VERSIONS_KEY: 3}
    assert str(tmp_path / "serving") in pusher.exec_properties["push_destination"]


def test_the_evaluator_judges_the_candidate_against_the_latest_blessed_model(tmp_path):
    import tensorflow_model_analysis as tfma
    from tfx import v1 as tfx
    from tfx.utils import proto_utils

    from components.champion_evaluator import ChampionEvaluator
    config = _config(tmp_path)
    nodes = _nodes(create_pipeline(config))
    resolver, evaluator = nodes["ChampionResolver"], nodes["Evaluator"]
    # TFX's stock strategy: Kubeflow V2 compiles no other.
    assert resolver.exec_properties["resolver_class"] is tfx.dsl.experimental.LatestBlessedModelStrategy
    assert isinstance(evaluator, ChampionEvaluator)
    assert evaluator.inputs["baseline_model"] is resolver.outputs["model"]
    eval_config = proto_utils.json_to_proto(evaluator.exec_properties["eval_config"], tfma.EvalConfig())
    assert [(m.name, m.is_baseline) for m in eval_config.model_specs] == [("candidate", False), ("champion", True)]
    assert [list(s.feature_keys) for s in eval_config.slicing_specs] == [[], ["C9"]]  # Criteo's slice field
    auc = next(m for m in eval_config.metrics_specs[0].metrics if m.class_name == "AUC")
    (per_slice,) = auc.per_slice_thresholds
    assert list(per_slice.slicing_specs) == [tfma.SlicingSpec()]  # the whole eval split, not each C9 slice
    assert per_slice.threshold.value_threshold.lower_bound.value == config.evaluation.min_auc
    assert per_slice.threshold.change_threshold.absolute.value == -config.evaluation.max_auc_drop
    assert per_slice.threshold.change_threshold.direction == tfma.MetricDirection.HIGHER_IS_BETTER
    assert {m.class_name for m in eval_config.metrics_specs[0].metrics} >= {
        "AUC", "BinaryCrossentropy", "Calibration", "MeanPrediction", "MeanLabel", "ExampleCount"}


def test_each_dataset_layout_has_its_own_pipeline_and_champion():
    assert configs.pipeline_name("criteo") == "fusionctr-criteo"
    assert configs.pipeline_name("tfrecord", "frappe") == "fusionctr-tfrecord-frappe"
    assert configs.pipeline_name("tfrecord", "tfrecord") == "fusionctr-tfrecord"
    with pytest.raises(ValueError, match="max_auc_drop must be >= 0"):
        configs.EvalConfig(max_auc_drop=-0.1)


# The step each family's Tuner feeds (the `hyperparameters` input).
TUNED_STEP = {"deepfm": "Trainer", "optfusion-hard": "OptFusionSearch", "resfusion": "Trainer"}


def _tuned_config(tmp_path, model, *flags):
    import local_runner
    return local_runner.build_config(local_runner.parse_args(
        ["--data", str(tmp_path), "--output-dir", str(tmp_path / "out"), "--model", model, "--tune", *flags]))


@pytest.mark.parametrize("model", sorted(TUNED_STEP))
def test_a_tuned_pipeline_feeds_the_tuners_best_values_to_the_training_step(tmp_path, model):
    from tfx import v1 as tfx

    from components.tuner import Tuner
    from pipeline import families
    from trainer import tuning
    nodes = _nodes(create_pipeline(_tuned_config(tmp_path, model, "--tune-trials", "3", "--tune-epochs", "1")))
    tuner, step = nodes["Tuner"], nodes[TUNED_STEP[model]]
    assert isinstance(tuner, Tuner) and step.inputs["hyperparameters"] is tuner.outputs["best_hyperparameters"]
    assert tuner.outputs["best_hyperparameters"].type is tfx.types.standard_artifacts.HyperParameters
    custom = json.loads(tuner.exec_properties["custom_config"])
    assert custom[tuning.TUNING_KEY] == {"max_trials": 3, "algorithm": "bayesian", "trial_epochs": 1, "seed": 2024}
    assert custom[tuning.TRIALS_DIR_KEY] == str(tmp_path / "out" / "pipeline_root" / "Tuner" / "trials")
    assert tuning.space_from_json(custom[tuning.SEARCH_SPACE_KEY]) == families.get_family(model).steps.SEARCH_SPACE
    assert json.loads(tuner.exec_properties["train_args"])["splits"] == ["train"]
    assert json.loads(tuner.exec_properties["eval_args"])["splits"] == ["eval"]  # never the test split
    if model == "optfusion-hard":  # trials search at the trial epochs, without exporting a supernet
        settings = json.loads(custom["settings"])
        assert (settings["run"]["epochs"], settings["export_supernet"]) == (1, False)
    else:
        assert custom["train"]["epochs"] == 1
        assert json.loads(step.exec_properties["custom_config"])["train"]["epochs"] == 5  # the training's own
    if model == "resfusion":  # a trial is the GBDT and one deep stage, on the stage-0 GBDT's logit
        assert custom["resfusion"]["rounds"] == 1
        assert tuner.inputs["base_model"] is nodes["GbdtResidual"].outputs["model"]


def test_tuning_a_model_without_a_deep_stage_is_refused(tmp_path):
    with pytest.raises(ValueError, match="--model gbdt trains no deep model"):
        create_pipeline(_tuned_config(tmp_path, "gbdt"))
    import local_runner
    with pytest.raises(SystemExit, match="need --tune"):
        local_runner.tuning_config(local_runner.parse_args(["--tune-trials", "3"]))


def test_a_tfrecord_folder_without_test_files_reads_and_transforms_train_and_eval_only(tmp_path):
    nodes = _nodes(create_pipeline(_config(tmp_path, name="tfrecord", splits=("train", "eval"))))
    patterns = [s["pattern"] for s in json.loads(nodes["ImportExampleGen"].exec_properties["input_config"])["splits"]]
    assert patterns == ["train*.tfrecord*", "validation*.tfrecord*"]
    splits = json.loads(nodes["Transform"].exec_properties["splits_config"])
    assert splits == {"analyze": ["train", "eval"], "transform": ["train", "eval"]}
    with pytest.raises(ValueError, match="splits must be train, eval and optionally test"):
        configs.DatasetConfig(name="tfrecord", input_base="/x", splits=("train", "test"))


def _strategy(resolver):
    from tfx.dsl.components.common import resolver as resolver_module
    return (resolver.exec_properties[resolver_module.RESOLVER_STRATEGY_CLASS],
            resolver.exec_properties[resolver_module.RESOLVER_CONFIG])


def _daily_config(tmp_path, model="deepfm", warm_start=True, span_window=3):
    import local_runner
    flags = ["--data", str(tmp_path), "--file-pattern", "day={SPAN}/*.tsv", "--span-window", str(span_window),
             "--output-dir", str(tmp_path / "out"), "--model", model]
    return local_runner.build_config(local_runner.parse_args(flags + (["--warm-start"] if warm_start else [])))


def test_a_daily_pipeline_ingests_the_latest_span_and_trains_on_a_window_of_spans(tmp_path):
    from components.data_history import LatestIfAnyStrategy, LatestSpansStrategy
    nodes = _nodes(create_pipeline(_daily_config(tmp_path)))
    gen = nodes["RawLogExampleGen"]
    assert json.loads(gen.exec_properties["input_config"])["splits"][0]["pattern"] == "day={SPAN}/*.tsv"
    window = nodes["SpanWindowResolver"]
    assert _strategy(window) == (LatestSpansStrategy, {"num_spans": 3})
    assert window.raw_inputs["examples"].producer_component_id == "RawLogExampleGen" and gen in window.upstream_nodes
    transform = nodes["Transform"]
    assert transform.inputs["examples"] is window.outputs["examples"]
    # Statistics, validation and blessing look at today's span only.
    assert nodes["StatisticsGen"].inputs["examples"] is gen.outputs["examples"]
    assert nodes["Evaluator"].inputs["examples"] is gen.outputs["examples"]
    # Transform reuses the analysis of the spans yesterday's run analysed.
    cache = nodes["AnalyzerCacheResolver"]
    assert _strategy(cache) == (LatestIfAnyStrategy, {})
    assert cache.raw_inputs["cache"].producer_component_id == "Transform"
    assert transform.inputs["analyzer_cache"] is cache.outputs["cache"]
    assert "updated_analyzer_cache" in transform.outputs
    # The Trainer starts from the champion's weights.
    trainer = nodes["Trainer"]
    assert trainer.inputs["base_model"] is nodes["ChampionResolver"].outputs["model"]
    custom = json.loads(trainer.exec_properties["custom_config"])
    assert custom["train"]["warm_start"] is True and custom["dataset"] == "criteo"


def test_one_span_at_a_time_writes_no_analyzer_cache_and_without_warm_start_no_base_model(tmp_path):
    nodes = _nodes(create_pipeline(_daily_config(tmp_path, warm_start=False, span_window=1)))
    assert not {"SpanWindowResolver", "AnalyzerCacheResolver"} & set(nodes)
    assert nodes["Transform"].inputs["examples"] is nodes["RawLogExampleGen"].outputs["examples"]
    assert "updated_analyzer_cache" not in nodes["Transform"].outputs
    assert "base_model" not in nodes["Trainer"].inputs


@pytest.mark.parametrize("model, message", [("optfusion-hard", "--warm-start is for the Keras baselines; OptFusion"),
                                            ("resfusion", "--warm-start is for the Keras baselines; ResFusion")])
def test_warm_start_is_refused_where_the_champions_weights_do_not_fit(tmp_path, model, message):
    with pytest.raises(ValueError, match=message):
        create_pipeline(_daily_config(tmp_path, model=model, span_window=1))


def test_a_window_of_spans_is_refused_for_resfusions_gbdt_stage(tmp_path):
    with pytest.raises(ValueError, match="GBDT stage trains on one span"):
        create_pipeline(_daily_config(tmp_path, model="resfusion", warm_start=False))


def test_a_window_of_spans_needs_span_in_the_file_pattern(tmp_path):
    with pytest.raises(ValueError, match=r"a window of 2 spans needs \{SPAN\} in the log's file pattern"):
        configs.DatasetConfig(name="criteo", input_base="/logs", file_pattern="*.tsv", span_window=2)
    with pytest.raises(ValueError, match="span_window must be at least 1"):
        configs.DatasetConfig(name="criteo", input_base="/logs", file_pattern="day={SPAN}/*", span_window=0)
