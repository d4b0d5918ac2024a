"""Small read-only queries over a run's ML Metadata store (SQLite): what ran, what it produced.

Used by the tests and the results notebook; everything a component produces is an MLMD artifact, so
"which data and settings produced this model" is answered from here, not from folder names.
"""
from __future__ import annotations

import collections

from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2

_STATE_NAMES = {v: k for k, v in metadata_store_pb2.Execution.State.items()}


def open_store(sqlite_path: str, read_only: bool = True) -> metadata_store.MetadataStore:
    """A MetadataStore over the pipeline's MLMD SQLite file (PipelineConfig.metadata_path), read-only unless
    `read_only` is False (pipeline/retention.py marks deleted artifacts).

    Raises:
        RuntimeError: the file cannot be opened (ml_metadata: "Cannot connect sqlite3 database").
    """
    config = metadata_store_pb2.ConnectionConfig()
    config.sqlite.filename_uri = sqlite_path
    config.sqlite.connection_mode = (metadata_store_pb2.SqliteMetadataSourceConfig.READONLY if read_only
                                     else metadata_store_pb2.SqliteMetadataSourceConfig.READWRITE)
    return metadata_store.MetadataStore(config)


def node_id(store: metadata_store.MetadataStore, execution: metadata_store_pb2.Execution) -> str:
    """The pipeline node (component id) an execution belongs to."""
    for context in store.get_contexts_by_execution(execution.id):
        if store.get_context_types_by_id([context.type_id])[0].name == "node":
            return context.name.split(".", 1)[1]
    raise LookupError(f"execution {execution.id} has no node context")


def execution_states_by_node(store: metadata_store.MetadataStore) -> dict[str, list[str]]:
    """{component id: [state of each execution, oldest first]}, states as COMPLETE, CACHED, FAILED, ..."""
    states: dict[str, list[str]] = collections.defaultdict(list)
    for execution in sorted(store.get_executions(), key=lambda e: e.id):
        states[node_id(store, execution)].append(_STATE_NAMES[execution.last_known_state])
    return dict(states)


def output_artifacts(store: metadata_store.MetadataStore, node: str, key: str) -> list[metadata_store_pb2.Artifact]:
    """Artifacts that a component's executions published under an output key, oldest first."""
    executions = [e for e in store.get_executions() if node_id(store, e) == node]
    events = store.get_events_by_execution_ids([e.id for e in executions])
    ids = sorted({event.artifact_id for event in events
                  if event.type == metadata_store_pb2.Event.OUTPUT
                  and any(step.key == key for step in event.path.steps)})
    return store.get_artifacts_by_id(ids)


def latest_output(store: metadata_store.MetadataStore, node: str, key: str) -> metadata_store_pb2.Artifact:
    """The newest artifact (highest id) that component `node` published under output `key`.

    Raises:
        LookupError: it published none, or an execution in the store has no node context.
    """
    artifacts = output_artifacts(store, node, key)
    if not artifacts:
        raise LookupError(f"{node} has published no {key!r} artifact")
    return artifacts[-1]


def failed_nodes_of_latest_run(store: metadata_store.MetadataStore) -> list[str]:
    """Component ids with a FAILED execution in the newest pipeline run of the store (by context id).

    TFX's local orchestrator records a step whose inputs could not be resolved as FAILED and goes on with the next
    steps without raising; the runner reads this to fail the run anyway.
    """
    runs = store.get_contexts_by_type("pipeline_run")
    if not runs:
        return []
    latest = max(runs, key=lambda context: context.id)
    return sorted({node_id(store, e) for e in store.get_executions_by_context(latest.id)
                   if e.last_known_state == metadata_store_pb2.Execution.FAILED})


def recent_run_executions(store: metadata_store.MetadataStore, pipeline_name: str, runs: int) -> set[int]:
    """Ids of the executions of the pipeline's newest `runs` runs (pipeline_run contexts, newest by id, that hold
    an execution of this pipeline); empty for an unknown pipeline. Used by the run summary and --keep-runs."""
    pipeline = store.get_context_by_type_and_name("pipeline", pipeline_name)
    if pipeline is None:
        return set()
    of_pipeline = {execution.id for execution in store.get_executions_by_context(pipeline.id)}
    found: list[set[int]] = []
    for run in sorted(store.get_contexts_by_type("pipeline_run"), key=lambda context: context.id, reverse=True):
        executions = {execution.id for execution in store.get_executions_by_context(run.id)} & of_pipeline
        if executions:
            found.append(executions)
        if len(found) == runs:
            break
    return set().union(*found)
