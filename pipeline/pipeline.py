"""create_pipeline: the CTR pipeline as a TFX DSL graph. Pure: it builds the graph, it never runs it.

raw log -> RawLogExampleGen (or ImportExampleGen for OptFusion TFRecords) -> StatisticsGen -> SchemaGen
(or a pinned schema) -> ExampleValidator (against the first run's schema) and DriftValidator (against the data of
the served model) -> AnomalyGate -> Transform -> Trainer -> Evaluator (TFMA; blessed at an AUC floor and no
regression against the champion, the latest blessed model) -> Pusher (serving_model/<version>/).

Continuous training (input by day, {SPAN} in the file pattern): ExampleGen ingests the newest span; Transform (with
the previous run's analyzer cache) and training read the latest N spans (SpanWindowResolver); with warm start the
Trainer's base model is the champion.
"""
from __future__ import annotations

import json
from typing import Sequence

import tensorflow_model_analysis as tfma
from tensorflow_metadata.proto.v0 import path_pb2, schema_pb2
from tfx import v1 as tfx
from tfx.proto import distribution_validator_pb2, example_gen_pb2

from components import data_history
from components.anomaly_gate import AnomalyGate
from components.champion_evaluator import ChampionEvaluator
from components.content_fingerprint import TfRecordExampleGen
from components.data_history import BlessedStatisticsStrategy, DriftValidator, FirstSchemaStrategy
from components.raw_log_example_gen.component import RawLogExampleGen
from components.versioned_pusher import VersionedPusher
from components.versioned_pusher.executor import KEEP_VERSIONS_KEY
from pipeline import configs, families, runtime_parameters
from transform import features

SPLITS = ("train", "eval", "test")
# OptFusion's TFRecord files: {train,validation,test}_NNNN.tfrecord (the reference names them this way).
TFRECORD_SPLIT_PATTERNS = {"train": "train*.tfrecord*", "eval": "validation*.tfrecord*", "test": "test*.tfrecord*"}
CANDIDATE, CHAMPION = "candidate", "champion"  # the TFMA model names of the model judged and of the baseline


def example_gen(config: configs.PipelineConfig) -> tfx.types.BaseNode:
    """The ExampleGen of `config.dataset`: ImportExampleGen over the train/validation/test TFRecord files
    (TFRECORD_SPLIT_PATTERNS) for prebuilt ids (OptFusion TFRecords, algorithms.md §1.7), else RawLogExampleGen,
    which parses the text log and splits it by hash buckets. Both key their cache on the input files' content
    (components/content_fingerprint.py). Its input folder is a pipeline parameter when `config.runtime_parameters`
    (Kubeflow).
    """
    dataset = config.dataset
    input_base = runtime_parameters.input_base(config)
    if dataset.spec.prebuilt_ids:
        return TfRecordExampleGen(
            input_base=input_base,
            input_config=example_gen_pb2.Input(splits=[
                example_gen_pb2.Input.Split(name=name, pattern=TFRECORD_SPLIT_PATTERNS[name])
                for name in dataset.splits])).with_id("ImportExampleGen")
    return RawLogExampleGen(input_base=input_base, log_format=dataset.name,
                            file_pattern=dataset.file_pattern, split_ratios=dataset.split_ratios,
                            split_seed=dataset.split_seed, max_rejected_fraction=dataset.max_rejected_fraction,
                            code_fingerprint=config.code_fingerprint)


def analyze_all_splits(dataset: configs.DatasetConfig) -> bool:
    """Prebuilt ids learn no vocabulary, only their range: take it from all splits, so no id is out of range."""
    return dataset.vocabulary_over_all_splits or dataset.spec.prebuilt_ids


def schema_component(dataset: configs.DatasetConfig, statistics: tfx.dsl.Channel) -> tfx.types.BaseNode:
    """ImportSchemaGen of the pinned curated schema (`dataset.schema_path`), else SchemaGen over `statistics`."""
    if dataset.schema_path:
        return tfx.components.ImportSchemaGen(schema_file=dataset.schema_path)
    # Raw fields stay variable-length (any may be absent, in the log and at serving time), except the
    # fixed-length id vector of OptFusion TFRecords.
    return tfx.components.SchemaGen(statistics=statistics, infer_feature_shape=dataset.spec.prebuilt_ids)


def drift_config(spec: features.DatasetSpec, checks: configs.DataChecksConfig
                 ) -> distribution_validator_pb2.DistributionValidatorConfig:
    """DriftValidator's thresholds: `checks`' L-infinity (and Jensen-Shannon) bound on every categorical raw field."""
    comparator = schema_pb2.FeatureComparator(infinity_norm=schema_pb2.InfinityNorm(threshold=checks.max_l_infinity))
    if checks.max_jensen_shannon is not None:
        comparator.jensen_shannon_divergence.threshold = checks.max_jensen_shannon
    return distribution_validator_pb2.DistributionValidatorConfig(
        default_slice_config=distribution_validator_pb2.DistributionValidatorConfig.DatasetConfig(feature=[
            distribution_validator_pb2.FeatureComparator(path=path_pb2.Path(step=[field]),
                                                         distribution_comparator=comparator)
            for field in spec.categorical_fields]))


def data_validation(config: configs.PipelineConfig, statistics: tfx.dsl.Channel, schema_gen: tfx.types.BaseNode
                    ) -> tuple[list[tfx.types.BaseNode], tfx.dsl.Channel, tfx.dsl.Channel | None]:
    """ExampleValidator and, with `config.data_checks.against_history`, what today's data is judged against
    (components/data_history.py): the first run's schema (unless a schema is pinned) and the statistics of the data
    behind the served model, for the DriftValidator on the train split.

    Returns:
        (nodes, ExampleValidator's anomalies, DriftValidator's anomalies or None).
    """
    nodes: list[tfx.types.BaseNode] = []
    expected_schema = schema_gen.outputs["schema"]
    pin_first_schema = config.data_checks.against_history and not config.dataset.schema_path
    if pin_first_schema:
        first_schema = tfx.dsl.Resolver(strategy_class=FirstSchemaStrategy,
                                        schema=tfx.dsl.Channel(type=tfx.types.standard_artifacts.Schema)
                                        ).with_id("FirstSchemaResolver")
        # A resolver runs when its upstream nodes have: on a first run, the first schema is this run's SchemaGen's.
        first_schema.add_upstream_node(schema_gen)
        nodes.append(first_schema)
        expected_schema = first_schema.outputs["schema"]
    example_validator = tfx.components.ExampleValidator(statistics=statistics, schema=expected_schema)
    nodes.append(example_validator)
    if not config.data_checks.against_history:
        return nodes, example_validator.outputs["anomalies"], None
    baseline = tfx.dsl.Resolver(strategy_class=BlessedStatisticsStrategy,
                                statistics=tfx.dsl.Channel(type=tfx.types.standard_artifacts.ExampleStatistics),
                                blessing=tfx.dsl.Channel(type=tfx.types.standard_artifacts.ModelBlessing)
                                ).with_id("BlessedStatisticsResolver")
    drift = DriftValidator(statistics=statistics, baseline_statistics=baseline.outputs["statistics"],
                           config=drift_config(config.dataset.spec, config.data_checks),
                           include_split_pairs=[("train", "train")])
    nodes += [baseline, drift]
    return nodes, example_validator.outputs["anomalies"], drift.outputs["anomalies"]


def span_window(config: configs.PipelineConfig, example_gen_node: tfx.types.BaseNode
                ) -> tuple[list[tfx.types.BaseNode], tfx.dsl.Channel]:
    """The examples Transform and training read: ExampleGen's (today's span), or, with a window of several spans
    (continuous training), the latest `config.dataset.span_window` spans ingested so far (LatestSpansStrategy).

    Returns:
        (the resolver node, if any; the examples channel).
    """
    if config.dataset.span_window == 1:
        return [], example_gen_node.outputs["examples"]
    window = tfx.dsl.Resolver(
        strategy_class=data_history.LatestSpansStrategy, config={"num_spans": config.dataset.span_window},
        examples=tfx.dsl.Channel(type=tfx.types.standard_artifacts.Examples,
                                 producer_component_id=example_gen_node.id)).with_id("SpanWindowResolver")
    window.add_upstream_node(example_gen_node)  # today's span is ingested first
    return [window], window.outputs["examples"]


def analyzer_cache(config: configs.PipelineConfig) -> list[tfx.types.BaseNode]:
    """With a window of several spans, the previous Transform's analyzer cache (a resolver; none on a first run):
    the spans already analysed yesterday are not analysed again. Otherwise nothing: each run reads new data."""
    if config.dataset.span_window == 1:
        return []
    return [tfx.dsl.Resolver(
        strategy_class=data_history.LatestIfAnyStrategy,
        cache=tfx.dsl.Channel(type=tfx.types.standard_artifacts.TransformCache, producer_component_id="Transform"),
    ).with_id("AnalyzerCacheResolver")]


def transform_component(config: configs.PipelineConfig, examples: tfx.dsl.Channel, schema: tfx.dsl.Channel,
                        cache: Sequence[tfx.types.BaseNode] = (), vocabulary_analysis: str | None = None
                        ) -> tfx.components.Transform:
    """Transform with transform.preprocessing.preprocessing_fn (the rules of algorithms.md §1.7) over every split.

    Vocabularies are analysed on the train split, or on all splits when `analyze_all_splits`; custom_config passes
    the dataset name and the code fingerprint. `cache`: analyzer_cache's resolver, when there is one.
    `vocabulary_analysis`: "per_field" runs one TF Transform vocabulary analyzer per field instead of one pass over
    all fields (same output, slower: benchmarks.pipeline_scaling compares them); None: the default one pass.
    """
    custom_config = {"dataset": config.dataset.name, "code_fingerprint": config.code_fingerprint}
    if vocabulary_analysis is not None:
        custom_config["vocabulary_analysis"] = vocabulary_analysis
    return tfx.components.Transform(
        examples=examples,
        schema=schema,
        analyzer_cache=cache[0].outputs["cache"] if cache else None,
        preprocessing_fn=configs.PREPROCESSING_FN,
        splits_config=tfx.proto.SplitsConfig(
            analyze=list(config.dataset.splits) if analyze_all_splits(config.dataset) else ["train"],
            transform=list(config.dataset.splits)),
        custom_config=custom_config,
        # StatisticsGen already describes the raw data; Transform's own pre/post statistics double its cost.
        disable_statistics=True,
        # Without a window of spans no run is handed a previous run's analyzer cache, so writing one is pure cost
        # (Criteo sample, ExampleGen to Transform: 200 -> 158 CPU s); it also makes Transform analyse each split on
        # its own before merging them (--vocabulary-over-all-splits: 249 -> 155 CPU s).
        disable_analyzer_cache=not cache,
    )


def eval_config(evaluation: configs.EvalConfig, slice_field: str | None = None) -> tfma.EvalConfig:
    """AUC, logloss, calibration (mean prediction / mean label) and example count on the eval split, overall and
    per value of `slice_field`, for the candidate and the champion (the baseline model, when there is one).

    Blessed when AUC >= evaluation.min_auc and, given a champion, AUC >= the champion's - evaluation.max_auc_drop.
    Without a champion (a first run, or a re-run whose champion is the candidate itself: ChampionEvaluator) the
    change threshold is ignored (TFX's rubber stamp).
    """
    auc_threshold = tfma.MetricThreshold(
        value_threshold=tfma.GenericValueThreshold(lower_bound={"value": evaluation.min_auc}),
        change_threshold=tfma.GenericChangeThreshold(direction=tfma.MetricDirection.HIGHER_IS_BETTER,
                                                     absolute={"value": -evaluation.max_auc_drop}))
    # tf_generic: evaluate through the serving signature, without deserializing the Keras layers.
    model_spec = {"signature_name": "serving_default", "label_key": features.LABEL_KEY, "model_type": "tf_generic"}
    return tfma.EvalConfig(
        model_specs=[tfma.ModelSpec(name=CANDIDATE, **model_spec),
                     tfma.ModelSpec(name=CHAMPION, is_baseline=True, **model_spec)],
        slicing_specs=[tfma.SlicingSpec()] + ([tfma.SlicingSpec(feature_keys=[slice_field])] if slice_field else []),
        metrics_specs=[tfma.MetricsSpec(metrics=[
            tfma.MetricConfig(class_name="ExampleCount"),
            # On the whole eval split only (MetricConfig.threshold would hold every slice to it, small ones too).
            tfma.MetricConfig(class_name="AUC", per_slice_thresholds=[
                tfma.PerSliceMetricThreshold(slicing_specs=[tfma.SlicingSpec()], threshold=auc_threshold)]),
            tfma.MetricConfig(class_name="BinaryCrossentropy", config='"name": "logloss"'),
            tfma.MetricConfig(class_name="Calibration"),
            tfma.MetricConfig(class_name="MeanPrediction"),
            tfma.MetricConfig(class_name="MeanLabel"),
        ])],
    )


def create_pipeline(config: configs.PipelineConfig) -> tfx.dsl.Pipeline:
    """The pipeline graph of the module docstring for `config`; nothing runs.

    The model family of --model (pipeline.families) supplies the steps before Transform and the training steps; they
    and Transform wait for the AnomalyGate.

    Raises:
        ValueError: an unknown dataset or --model name, or invalid family options.
        TypeError: model_options of another family.
    """
    dataset = config.dataset
    spec = dataset.spec
    gen = example_gen(config)
    statistics_gen = tfx.components.StatisticsGen(examples=gen.outputs["examples"])
    schema_gen = schema_component(dataset, statistics_gen.outputs["statistics"])
    validation_nodes, anomalies, drift_anomalies = data_validation(
        config, statistics_gen.outputs["statistics"], schema_gen)
    anomaly_gate = AnomalyGate(anomalies=anomalies, drift_anomalies=drift_anomalies,
                               statistics=statistics_gen.outputs["statistics"],
                               blocking_fields=json.dumps([features.LABEL_KEY, *spec.required_fields]),
                               label=features.LABEL_KEY)
    steps = families.get_family(config.trainer.model.name).steps
    window_nodes, window = span_window(config, gen)
    pre_nodes, examples_to_transform = steps.pre_transform(config, window)
    cache = analyzer_cache(config)
    transform = transform_component(config, examples_to_transform, schema_gen.outputs["schema"], cache)
    # The champion: the latest blessed model of this pipeline (one pipeline name per dataset layout), any family.
    champion = tfx.dsl.Resolver(
        strategy_class=tfx.dsl.experimental.LatestBlessedModelStrategy,
        model=tfx.dsl.Channel(type=tfx.types.standard_artifacts.Model),
        model_blessing=tfx.dsl.Channel(type=tfx.types.standard_artifacts.ModelBlessing),
    ).with_id("ChampionResolver")
    train_nodes, model = steps.train(config, transform, schema_gen.outputs["schema"], champion.outputs["model"])
    for node in [*pre_nodes, transform, *train_nodes]:
        node.add_upstream_node(anomaly_gate)  # nothing is transformed or trained on data with blocking anomalies
    evaluator = ChampionEvaluator(
        examples=gen.outputs["examples"],
        model=model,
        baseline_model=champion.outputs["model"],
        schema=schema_gen.outputs["schema"],  # decodes the slice field of the raw examples
        eval_config=eval_config(config.evaluation, spec.slice_field),
        example_splits=["eval"],
    ).with_id("Evaluator")
    pusher = VersionedPusher(
        model=model,
        model_blessing=evaluator.outputs["blessing"],
        push_destination=tfx.proto.PushDestination(
            filesystem=tfx.proto.PushDestination.Filesystem(base_directory=config.serving_model_dir)),
        custom_config={KEEP_VERSIONS_KEY: config.push.keep_versions},
    ).with_id("Pusher")
    return tfx.dsl.Pipeline(
        pipeline_name=config.pipeline_name,
        pipeline_root=config.pipeline_root,
        components=[gen, statistics_gen, schema_gen, *validation_nodes, anomaly_gate, *window_nodes, *pre_nodes,
                    *cache, transform, champion, *train_nodes, evaluator, pusher],
        enable_cache=config.enable_cache,
        metadata_connection_config=(tfx.orchestration.metadata.sqlite_metadata_connection_config(
            config.metadata_path) if config.metadata_path else None),
        beam_pipeline_args=list(config.beam_pipeline_args),
    )
