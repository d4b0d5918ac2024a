"""Issue 13, continuous training: a pipeline over input organised by day ({SPAN}), run on day 1 and again on day 2.

Day 2 ingests only its own span, transforms and trains on both days' spans (--span-window 2) with day 1's analyzer
cache, starts from day 1's blessed model (--warm-start), and deletes what neither day 2 made nor read
(--keep-runs 1).
"""
from __future__ import annotations

import dataclasses
import glob
import io
import json
import os
from collections import Counter

import pytest
import tensorflow as tf
import tensorflow_transform as tft
from ml_metadata.proto import metadata_store_pb2 as mlmd

import local_runner
from data_gen import synthetic_criteo
from pipeline import lineage
from trainer import data
from transform import features, field_vocabularies
from transform.preprocessing import MISSING_TOKEN

pytestmark = pytest.mark.e2e

ROWS_PER_DAY = 3000
CHECKED_FIELD = "C3"  # a field with many values, some seen on one day only


@dataclasses.dataclass(frozen=True)
class Days:
    output_dir: str
    day1: dict[str, int]  # the artifact ids of day 1's outputs, by "node.key"

    @property
    def store(self):
        return lineage.open_store(os.path.join(self.output_dir, "metadata.sqlite"))


def _events(store, execution_id: int, kind) -> dict[str, list[mlmd.Artifact]]:
    by_key: dict[str, list[int]] = {}
    for event in store.get_events_by_execution_ids([execution_id]):
        if event.type == kind:
            by_key.setdefault(event.path.steps[0].key, []).append(event.artifact_id)
    return {key: sorted(store.get_artifacts_by_id(ids), key=lambda a: a.id) for key, ids in by_key.items()}


def _latest(store, node: str, kind=mlmd.Event.INPUT) -> dict[str, list[mlmd.Artifact]]:
    execution = max((e for e in store.get_executions() if lineage.node_id(store, e) == node), key=lambda e: e.id)
    return _events(store, execution.id, kind)


@pytest.fixture(scope="module")
def days(tmp_path_factory) -> Days:
    root = tmp_path_factory.mktemp("daily")
    text = io.StringIO()
    synthetic_criteo.write_synthetic_criteo(text, 2 * ROWS_PER_DAY, seed=11)  # one distribution: no drift
    lines = text.getvalue().splitlines(keepends=True)
    output_dir = str(root / "out")
    argv = ["--dataset", "criteo", "--data", str(root / "logs"), "--file-pattern", "day-{SPAN}/*",
            "--span-window", "2", "--warm-start", "--keep-runs", "1", "--output-dir", output_dir,
            "--preset", "test", "--epochs", "1", "--max-auc-drop", "1"]  # day 2 is blessed and pushed
    for day in (1, 2):
        folder = root / "logs" / f"day-{day}"
        folder.mkdir(parents=True)
        (folder / "log.tsv").write_text("".join(lines[(day - 1) * ROWS_PER_DAY:day * ROWS_PER_DAY]))
        local_runner.run(argv)
        if day == 1:
            store = lineage.open_store(os.path.join(output_dir, "metadata.sqlite"))
            day1 = {f"{node}.{key}": artifacts[0].id
                    for node in ("RawLogExampleGen", "Transform", "Trainer", "Evaluator")
                    for key, artifacts in _latest(store, node, mlmd.Event.OUTPUT).items()}
    return Days(output_dir, day1)


def _span(artifact: mlmd.Artifact) -> int:
    return artifact.custom_properties["span"].int_value


def _train_tokens(examples: list[mlmd.Artifact], field: str) -> Counter:
    """How often each value of `field` occurs in the train split of the given ExampleGen outputs (an absent value is
    Transform's MISSING_TOKEN)."""
    counts: Counter = Counter()
    for artifact in examples:
        files = glob.glob(os.path.join(artifact.uri, "Split-train", "*"))
        for record in tf.data.TFRecordDataset(files, compression_type="GZIP"):
            values = tf.train.Example.FromString(record.numpy()).features.feature[field].bytes_list.value
            counts.update(values or [MISSING_TOKEN.encode()])
    return counts


def _vocabulary(transform_graph_uri: str, field: str) -> list[bytes]:
    return data.field_vocabularies(tft.TFTransformOutput(transform_graph_uri), features.get_dataset("criteo"))[field]


def test_day_two_ingests_its_own_span_and_transforms_both_days(days):
    store = days.store
    generated = lineage.output_artifacts(store, "RawLogExampleGen", "examples")
    assert [_span(a) for a in generated] == [1, 2]
    assert generated[0].id == days.day1["RawLogExampleGen.examples"]
    transform_inputs = _latest(store, "Transform")
    assert {a.id for a in transform_inputs["examples"]} == {a.id for a in generated}
    # Today's vocabulary is over both days: the values seen at least twice in the two train splits.
    counts = _train_tokens(generated, CHECKED_FIELD)
    graph = _latest(store, "Transform", mlmd.Event.OUTPUT)["transform_graph"][0]
    assert set(_vocabulary(graph.uri, CHECKED_FIELD)) == {token for token, n in counts.items() if n >= 2}
    only_day1 = set(_train_tokens(generated[:1], CHECKED_FIELD)) - set(_train_tokens(generated[1:], CHECKED_FIELD))
    assert only_day1 & set(_vocabulary(graph.uri, CHECKED_FIELD))  # day 1's values still have their ids
    # Statistics, validation and blessing judge today's span only.
    assert [_span(a) for a in _latest(store, "StatisticsGen")["examples"]] == [2]
    assert [_span(a) for a in _latest(store, "Evaluator")["examples"]] == [2]


def test_transform_is_handed_day_ones_analyzer_cache_and_keeps_its_entries(days):
    store = days.store
    handed = _latest(store, "Transform")["analyzer_cache"]
    assert [a.id for a in handed] == [days.day1["Transform.updated_analyzer_cache"]]
    updated = _latest(store, "Transform", mlmd.Event.OUTPUT)["updated_analyzer_cache"][0]
    day1_entries, day2_entries = set(os.listdir(handed[0].uri)), set(os.listdir(updated.uri))
    assert len(day1_entries) == 1 and len(day2_entries) == 2 and day1_entries < day2_entries


def test_day_two_starts_from_day_ones_model_with_rows_matched_by_value(days):
    store = days.store
    trainer_inputs = _latest(store, "Trainer")
    assert [a.id for a in trainer_inputs["base_model"]] == [days.day1["Trainer.model"]]
    model = _latest(store, "Trainer", mlmd.Event.OUTPUT)["model"][0]
    report = json.loads(model.custom_properties["warm_start"].string_value)
    assert report["skipped"] is None and report["copied_weights"] > 0
    # Rows taken from day 1: each field's values in both vocabularies, plus each field's OOV row.
    old_graph = store.get_artifacts_by_id([days.day1["Transform.transform_graph"]])[0]
    new_graph = trainer_inputs["transform_graph"][0]
    assert not os.path.exists(old_graph.uri)  # deleted by retention: day 1's vocabularies come from its model
    base_assets = os.path.join(trainer_inputs["base_model"][0].uri, "Format-Serving", "assets")
    fields = features.get_dataset("criteo").model_fields
    base = field_vocabularies.read_field_vocabularies(base_assets, [features.vocabulary_name(f) for f in fields])
    shared = sum(len(set(old) & set(_vocabulary(new_graph.uri, field))) for field, old in zip(fields, base))
    assert report["rows_from_base"] == shared + len(fields)
    assert report["table_rows"] == sum(len(_vocabulary(new_graph.uri, f)) + 1 for f in fields)


def test_retention_deletes_what_day_two_neither_made_nor_read(days):
    store = days.store
    states = {a.id: a.state for a in store.get_artifacts()}
    uris = {a.id: a.uri for a in store.get_artifacts()}
    deleted = {"Transform.transform_graph", "Transform.transformed_examples", "Trainer.model_run",
               "Evaluator.evaluation"}
    kept = {"RawLogExampleGen.examples",  # span 1 is in the window
            "Transform.updated_analyzer_cache",  # day 2's Transform read it
            "Trainer.model",  # the champion and the base model
            "Evaluator.blessing"}  # blessings are tiny and say which model is the champion
    for name in deleted:
        assert states[days.day1[name]] == mlmd.Artifact.DELETED and not os.path.exists(uris[days.day1[name]]), name
    for name in kept:
        assert states[days.day1[name]] == mlmd.Artifact.LIVE and os.path.exists(uris[days.day1[name]]), name
    assert sorted(os.listdir(os.path.join(days.output_dir, "serving_model"))) == sorted(
        a.custom_properties["pushed_version"].string_value
        for a in lineage.output_artifacts(store, "Pusher", "pushed_model"))
    assert len(os.listdir(os.path.join(days.output_dir, "serving_model"))) == 2
