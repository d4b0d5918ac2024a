"""What today's data is judged against: the schema of the pipeline's first run, and the statistics of the data behind
the model being served (issue 13, schema and drift).

- `FirstSchemaStrategy`: the expected schema is the one SchemaGen inferred on the pipeline's first run, not one
  re-inferred from each new batch (which would accept a new column, or a changed type, as normal). To accept a
  change, pin a schema with --schema (start from the pinned one: `schema.pbtxt` under SchemaGen's first output), or
  run under a new pipeline name.
- `BlessedStatisticsStrategy`: the baseline of the distribution check is the statistics of the examples the latest
  blessed model was evaluated on (the Evaluator's `examples` input: the same run's ExampleGen output). None before
  the first blessing: the check passes (TFX's rubber stamp).
- `DriftValidator`: TFX's DistributionValidator with its baseline optional, so a first run (no baseline yet) runs it
  and passes instead of skipping it.
- `LatestSpansStrategy` (continuous training): the ExampleGen outputs of the latest N spans (days), the newest
  version of each, that Transform and training read; today's ExampleGen ingests only today's span.
- `LatestIfAnyStrategy`: the newest artifact of each input, or none on a first run (TFX's LatestArtifactStrategy
  fails the step instead); the previous Transform's analyzer cache.

The strategies read MLMD, so they run under the local orchestrator; Kubeflow V2 compiles only TFX's two built-in
strategies, and its pipelines pin a schema with --schema instead (kubeflow/README.md).
"""
from __future__ import annotations

from typing import Optional

import ml_metadata as mlmd
from ml_metadata.proto import metadata_store_pb2
from tfx import types
from tfx.components.distribution_validator import component as distribution_validator
from tfx.components.example_gen import utils as example_gen_utils
from tfx.dsl.components.base import base_component
from tfx.dsl.components.common import resolver
from tfx.proto import distribution_validator_pb2
from tfx.types import standard_artifacts, standard_component_specs
from tfx.types.component_spec import ChannelParameter
from tfx.utils import json_utils

BLESSED = "blessed"  # the Evaluator's ModelBlessing custom property (1: blessed)
SCHEMA_NODE = "SchemaGen"
EXAMPLES_KEY = "examples"


def producer_node(store: mlmd.MetadataStore, artifact_id: int) -> tuple[Optional[str], Optional[int]]:
    """(node id, execution id) of the execution that output the artifact; (None, None) when none did."""
    for event in store.get_events_by_artifact_ids([artifact_id]):
        if event.type not in (metadata_store_pb2.Event.OUTPUT, metadata_store_pb2.Event.DECLARED_OUTPUT):
            continue
        for context in store.get_contexts_by_execution(event.execution_id):
            if store.get_context_types_by_id([context.type_id])[0].name == "node":
                return context.name.split(".", 1)[1], event.execution_id
    return None, None


def input_artifact_ids(store: mlmd.MetadataStore, execution_id: int, key: str) -> set[int]:
    """Ids of the artifacts an execution read under input `key`."""
    return {event.artifact_id for event in store.get_events_by_execution_ids([execution_id])
            if event.type == metadata_store_pb2.Event.INPUT and any(step.key == key for step in event.path.steps)}


class FirstSchemaStrategy(resolver.ResolverStrategy):
    """Resolves `schema` (every Schema artifact of the pipeline) to the oldest one SchemaGen produced."""

    def resolve_artifacts(self, store: mlmd.MetadataStore, input_dict: dict[str, list[types.Artifact]]
                          ) -> Optional[dict[str, list[types.Artifact]]]:
        """{"schema": [the first SchemaGen schema]}, or [] when SchemaGen has produced none yet."""
        schemas = sorted(input_dict["schema"], key=lambda artifact: artifact.id)
        first = next((s for s in schemas if producer_node(store, s.id)[0] == SCHEMA_NODE), None)
        return {"schema": [first] if first else []}


def int_custom_property(artifact: types.Artifact, name: str) -> int:
    """An integer custom property that may be stored as text (ExampleGen's span and version; 0 when absent)."""
    text = artifact.get_string_custom_property(name)
    return int(text) if text else artifact.get_int_custom_property(name)


def latest_spans(examples: list[types.Artifact], num_spans: int) -> list[types.Artifact]:
    """The newest artifact (highest version, then the latest written) of each of the `num_spans` highest spans,
    newest span first. ExampleGen records span and version as custom properties (`span`, `version`).

    Raises:
        ValueError: num_spans < 1.
    """
    if num_spans < 1:
        raise ValueError(f"the span window must hold at least one span, got {num_spans}")
    newest: dict[int, tuple[int, int, types.Artifact]] = {}
    for artifact in examples:
        span = int_custom_property(artifact, example_gen_utils.SPAN_PROPERTY_NAME)
        rank = (int_custom_property(artifact, example_gen_utils.VERSION_PROPERTY_NAME), artifact.id)
        if span not in newest or rank > newest[span][:2]:
            newest[span] = (*rank, artifact)
    return [newest[span][2] for span in sorted(newest, reverse=True)[:num_spans]]


class LatestSpansStrategy(resolver.ResolverStrategy):
    """Resolves `examples` (every Examples artifact of the ExampleGen) to `latest_spans` of them."""

    def __init__(self, num_spans: int):
        self._num_spans = num_spans

    def resolve_artifacts(self, store: mlmd.MetadataStore,  # noqa: ARG002 - the ResolverStrategy interface
                          input_dict: dict[str, list[types.Artifact]]) -> Optional[dict[str, list[types.Artifact]]]:
        """{"examples": the latest spans' examples} (the resolver runs after the ExampleGen: never empty)."""
        return {EXAMPLES_KEY: latest_spans(input_dict[EXAMPLES_KEY], self._num_spans)}


class LatestIfAnyStrategy(resolver.ResolverStrategy):
    """Resolves every input to its newest artifact (highest id), or to none when there is none yet."""

    def resolve_artifacts(self, store: mlmd.MetadataStore,  # noqa: ARG002 - the ResolverStrategy interface
                          input_dict: dict[str, list[types.Artifact]]) -> Optional[dict[str, list[types.Artifact]]]:
        """{key: [its newest artifact] or []}."""
        return {key: sorted(artifacts, key=lambda artifact: artifact.id)[-1:] for key, artifacts in input_dict.items()}


class BlessedStatisticsStrategy(resolver.ResolverStrategy):
    """Resolves `statistics` to those of the examples the latest blessed model was evaluated on."""

    def resolve_artifacts(self, store: mlmd.MetadataStore, input_dict: dict[str, list[types.Artifact]]
                          ) -> Optional[dict[str, list[types.Artifact]]]:
        """{"statistics": [those statistics], "blessing": [that blessing]}; both [] before the first blessing."""
        blessings = sorted((b for b in input_dict["blessing"] if b.get_int_custom_property(BLESSED) == 1),
                           key=lambda artifact: artifact.id, reverse=True)
        for blessing in blessings:
            _, evaluation = producer_node(store, blessing.id)
            if evaluation is None:
                continue
            examples = input_artifact_ids(store, evaluation, EXAMPLES_KEY)
            for statistics in sorted(input_dict["statistics"], key=lambda artifact: artifact.id, reverse=True):
                _, execution = producer_node(store, statistics.id)
                if execution is not None and input_artifact_ids(store, execution, EXAMPLES_KEY) & examples:
                    return {"statistics": [statistics], "blessing": [blessing]}
        return {"statistics": [], "blessing": []}


class DriftValidatorSpec(standard_component_specs.DistributionValidatorSpec):
    """DistributionValidator's spec with an optional baseline."""

    INPUTS = {
        **standard_component_specs.DistributionValidatorSpec.INPUTS,
        standard_component_specs.BASELINE_STATISTICS_KEY: ChannelParameter(
            type=standard_artifacts.ExampleStatistics, optional=True),
    }


class DriftValidator(distribution_validator.DistributionValidator):
    """TFX's DistributionValidator (same executor); without baseline statistics it passes.

    Args:
        statistics: today's ExampleStatistics.
        baseline_statistics: the baseline's (BlessedStatisticsStrategy), possibly none.
        config: the thresholds per feature.
        include_split_pairs: (today's split, baseline split) pairs compared; default: same-named splits.
    """

    SPEC_CLASS = DriftValidatorSpec

    def __init__(self, statistics: types.BaseChannel, baseline_statistics: types.BaseChannel,
                 config: distribution_validator_pb2.DistributionValidatorConfig,
                 include_split_pairs: list[tuple[str, str]] | None = None):
        spec = DriftValidatorSpec(**{
            standard_component_specs.STATISTICS_KEY: statistics,
            standard_component_specs.BASELINE_STATISTICS_KEY: baseline_statistics,
            standard_component_specs.DISTRIBUTION_VALIDATOR_CONFIG_KEY: config,
            standard_component_specs.INCLUDE_SPLIT_PAIRS_KEY: json_utils.dumps(include_split_pairs),
            standard_component_specs.ANOMALIES_KEY: types.Channel(type=standard_artifacts.ExampleAnomalies),
        })
        # Not DistributionValidator.__init__: it builds the stock spec, whose baseline is required.
        base_component.BaseComponent.__init__(self, spec=spec)
