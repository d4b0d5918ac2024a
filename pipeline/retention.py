"""Retention of a local pipeline's artifacts (issue 13, continuous training): `local_runner.py --keep-runs N`.

A daily pipeline writes a new copy of its data, transform graph, models and caches every day. After a successful
run, `delete_unused` deletes the folders of the artifacts that none of the pipeline's last N runs made or read, and
marks them DELETED in MLMD, so no later run resolves them (TFX's resolvers read LIVE artifacts only). What a recent
run read stays, however old: the spans of the training window, the champion model (read by the Evaluator), the
base model of a warm start, the analyzer cache Transform reused. Only the bulky kinds are deleted (DELETABLE_TYPES);
schemas, statistics, anomalies and blessings are kilobytes and stay, with the lineage (executions and events are
never deleted). Pushed versions under serving_model/ have their own count, --keep-versions (the Pusher).

Kubeflow keeps artifacts in its object store: a bucket lifecycle rule is the tool there (kubeflow/README.md).
"""
from __future__ import annotations

import dataclasses
import logging
import os

from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2
from tfx.dsl.io import fileio

from pipeline import lineage

DELETABLE_TYPES = frozenset({"Examples", "TransformGraph", "TransformCache", "Model", "ModelRun", "ModelEvaluation"})
# LIVE: published. PENDING: written by an execution that never finished (a crash); no run reads it.
_DELETABLE_STATES = (metadata_store_pb2.Artifact.LIVE, metadata_store_pb2.Artifact.PENDING)


@dataclasses.dataclass(frozen=True)
class RetentionReport:
    """What `delete_unused` deleted: artifact ids by type name, and the bytes freed."""

    deleted: dict[str, list[int]]
    freed_bytes: int


def unused_artifacts(store: metadata_store.MetadataStore, pipeline_name: str, pipeline_root: str, keep_runs: int
                     ) -> list[metadata_store_pb2.Artifact]:
    """The pipeline's LIVE or PENDING artifacts of DELETABLE_TYPES under `pipeline_root` that no execution of its
    last `keep_runs` runs read or wrote.

    Raises:
        ValueError: keep_runs < 1.
    """
    if keep_runs < 1:
        raise ValueError(f"--keep-runs must be at least 1 (the run just finished), got {keep_runs}")
    pipeline = store.get_context_by_type_and_name("pipeline", pipeline_name)
    if pipeline is None:
        return []
    recent = lineage.recent_run_executions(store, pipeline_name, keep_runs)
    in_use = {event.artifact_id for event in store.get_events_by_execution_ids(list(recent))}
    type_names = {artifact_type.id: artifact_type.name for artifact_type in store.get_artifact_types()}
    root = os.path.join(os.path.abspath(pipeline_root), "")
    return [artifact for artifact in store.get_artifacts_by_context(pipeline.id)
            if artifact.id not in in_use and artifact.state in _DELETABLE_STATES
            and type_names.get(artifact.type_id) in DELETABLE_TYPES
            and os.path.abspath(artifact.uri).startswith(root)]


def folder_bytes(path: str) -> int:
    """Bytes of the files under `path` (a file's own size; 0 when it is gone)."""
    if not os.path.exists(path):
        return 0
    if os.path.isfile(path):
        return os.path.getsize(path)
    return sum(os.path.getsize(os.path.join(folder, name)) for folder, _, names in os.walk(path) for name in names)


def delete_unused(metadata_path: str, pipeline_name: str, pipeline_root: str, keep_runs: int) -> RetentionReport:
    """Deletes `unused_artifacts`' folders and marks them DELETED in MLMD (module docstring); logs what it freed.

    Raises:
        ValueError: keep_runs < 1.
    """
    store = lineage.open_store(metadata_path, read_only=False)
    type_names = {artifact_type.id: artifact_type.name for artifact_type in store.get_artifact_types()}
    deleted: dict[str, list[int]] = {}
    freed = 0
    for artifact in unused_artifacts(store, pipeline_name, pipeline_root, keep_runs):
        freed += folder_bytes(artifact.uri)
        if fileio.exists(artifact.uri):
            fileio.rmtree(artifact.uri) if fileio.isdir(artifact.uri) else fileio.remove(artifact.uri)
        artifact.state = metadata_store_pb2.Artifact.DELETED
        store.put_artifacts([artifact])
        deleted.setdefault(type_names[artifact.type_id], []).append(artifact.id)
    logging.info("Retention (--keep-runs %d): deleted %s; %.1f MB freed", keep_runs,
                 ", ".join(f"{len(ids)} {name}" for name, ids in sorted(deleted.items())) or "nothing",
                 freed / 1e6)
    return RetentionReport(deleted=deleted, freed_bytes=freed)
