"""--keep-runs (pipeline/retention.py) on a hand-built MLMD store: what the last runs made or read stays."""
import os

import pytest
from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2 as mlmd

from pipeline import lineage, retention


def _store(path: str) -> metadata_store.MetadataStore:
    config = mlmd.ConnectionConfig()
    config.sqlite.filename_uri = path
    return metadata_store.MetadataStore(config)


class _History:
    """A pipeline's MLMD record written by hand: runs, executions and the artifacts they read and wrote."""

    def __init__(self, store: metadata_store.MetadataStore, root: str):
        self.store, self.root = store, root
        self.types = {name: store.put_artifact_type(mlmd.ArtifactType(name=name))
                      for name in ("Examples", "Model", "ModelBlessing")}
        self.execution_type = store.put_execution_type(mlmd.ExecutionType(name="Step"))
        context_types = {name: store.put_context_type(mlmd.ContextType(name=name))
                         for name in ("pipeline", "pipeline_run")}
        self.context_types = context_types
        [self.pipeline] = store.put_contexts([mlmd.Context(type_id=context_types["pipeline"], name="daily")])

    def artifact(self, type_name: str, folder: str, state=mlmd.Artifact.LIVE) -> int:
        uri = os.path.join(self.root, folder)
        os.makedirs(uri)
        with open(os.path.join(uri, "data"), "wb") as f:
            f.write(b"x" * 100)
        [artifact_id] = self.store.put_artifacts([mlmd.Artifact(type_id=self.types[type_name], uri=uri, state=state)])
        self.store.put_attributions_and_associations(
            [mlmd.Attribution(artifact_id=artifact_id, context_id=self.pipeline)], [])
        return artifact_id

    def run(self, name: str, reads: list[int], writes: list[int]) -> None:
        [run] = self.store.put_contexts([mlmd.Context(type_id=self.context_types["pipeline_run"], name=name)])
        [execution] = self.store.put_executions([mlmd.Execution(type_id=self.execution_type)])
        self.store.put_attributions_and_associations([], [
            mlmd.Association(execution_id=execution, context_id=context) for context in (run, self.pipeline)])
        self.store.put_events(
            [mlmd.Event(artifact_id=a, execution_id=execution, type=mlmd.Event.INPUT) for a in reads]
            + [mlmd.Event(artifact_id=a, execution_id=execution, type=mlmd.Event.OUTPUT) for a in writes])


def test_only_bulky_artifacts_no_recent_run_made_or_read_are_deleted(tmp_path):
    path = str(tmp_path / "metadata.sqlite")
    root = str(tmp_path / "pipeline_root")
    history = _History(_store(path), root)
    span1 = history.artifact("Examples", "gen/1")
    model1 = history.artifact("Model", "trainer/1")
    blessing1 = history.artifact("ModelBlessing", "evaluator/1")
    crashed = history.artifact("Model", "trainer/crashed", state=mlmd.Artifact.PENDING)
    history.run("day-1", reads=[], writes=[span1, model1, blessing1, crashed])
    span2, model2 = history.artifact("Examples", "gen/2"), history.artifact("Model", "trainer/2")
    history.run("day-2", reads=[span1, model1], writes=[span2, model2])
    span3, model3 = history.artifact("Examples", "gen/3"), history.artifact("Model", "trainer/3")
    history.run("day-3", reads=[span2, model2], writes=[span3, model3])

    report = retention.delete_unused(path, "daily", root, keep_runs=2)
    # Day 2 read span 1 and model 1, so they stay with 2 runs kept; the crashed run's model goes; blessings stay.
    assert report == retention.RetentionReport(deleted={"Model": [crashed]}, freed_bytes=100)
    report = retention.delete_unused(path, "daily", root, keep_runs=1)
    assert report == retention.RetentionReport(deleted={"Examples": [span1], "Model": [model1]}, freed_bytes=200)
    store = lineage.open_store(path)
    states = {a.id: a.state for a in store.get_artifacts()}
    assert {a for a, state in states.items() if state == mlmd.Artifact.DELETED} == {span1, model1, crashed}
    assert not os.path.exists(os.path.join(root, "gen/1")) and os.path.exists(os.path.join(root, "gen/2"))
    assert os.path.exists(os.path.join(root, "evaluator/1"))
    assert retention.delete_unused(path, "another", root, keep_runs=1).deleted == {}


def test_artifacts_outside_the_pipeline_root_are_never_deleted(tmp_path):
    path = str(tmp_path / "metadata.sqlite")
    history = _History(_store(path), str(tmp_path / "elsewhere"))
    old = history.artifact("Examples", "gen/1")
    history.run("day-1", reads=[], writes=[old])
    history.run("day-2", reads=[], writes=[history.artifact("Examples", "gen/2")])
    assert retention.delete_unused(path, "daily", str(tmp_path / "pipeline_root"), keep_runs=1).deleted == {}
    with pytest.raises(ValueError, match="--keep-runs must be at least 1"):
        retention.delete_unused(path, "daily", str(tmp_path / "pipeline_root"), keep_runs=0)
