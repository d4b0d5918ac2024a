"""The whole pipeline on generated Criteo-layout data: LocalDagRunner, SQLite MLMD, real components."""
import json
import os
import re

import numpy as np
import pytest

from pipeline import lineage, run_summary
from tests.e2e import checks

pytestmark = pytest.mark.e2e


def test_split_sizes(generated_run):
    checks.check_split_sizes(generated_run, expected_rows=4000)


def test_vocabulary_sizes_equal_an_independent_recount(generated_run):
    sizes = checks.check_vocabulary_sizes(generated_run)
    assert len(sizes) == 39


def test_pushed_model_scores_heldout_raw_rows_in_a_fresh_process(generated_run):
    assert checks.score_heldout(generated_run) > 0.6


def test_serving_signature_equals_transform_then_model(generated_run):
    checks.check_serving_equals_transform_then_model(generated_run)


def test_model_is_blessed_on_eval_metrics_and_pushed(generated_run):
    metrics = checks.check_blessed_and_pushed(generated_run)
    assert metrics["auc"] > 0.5
    assert 0.5 < metrics["calibration"] < 2.0


def test_the_results_notebook_runs_top_to_bottom_on_the_run(generated_run, tmp_path):
    notebook = checks.execute_results_notebook(generated_run, str(tmp_path))
    for name in checks.NOTEBOOK_FIGURES:
        assert (tmp_path / name).stat().st_size > 10_000, name  # a drawn figure, not an empty canvas
    text = checks.notebook_text(notebook)
    assert "Run summary: fusionctr-criteo, model deepfm" in text
    assert "model deepfm: not an OptFusion run, no architecture to show" in text
    images = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.get("outputs", [])
              if "image/png" in output.get("data", {})]
    assert len(images) == len(checks.NOTEBOOK_FIGURES)


def test_the_run_ends_with_a_summary_of_rows_metrics_blessing_and_push(generated_run):
    with open(os.path.join(generated_run.output_dir, run_summary.SUMMARY_FILE)) as f:
        summary = json.load(f)
    counts = checks.split_counts(generated_run)
    assert {split: summary["rows"][split] for split in counts} == counts
    assert summary["rows"]["rejected"] == 0 and summary["rejected_rows_file"].endswith("rejected_rows.tsv")
    metrics = checks.check_blessed_and_pushed(generated_run)
    for name in ("auc", "logloss", "calibration", "example_count"):
        assert summary["eval_metrics"][name] == pytest.approx(metrics[name]), name
    assert (summary["model"], summary["blessed"], summary["not_blessed_because"]) == ("deepfm", True, [])
    store = lineage.open_store(generated_run.metadata_path)
    pushed = lineage.latest_output(store, "Pusher", "pushed_model").custom_properties["pushed_destination"]
    assert summary["pushed_to"] == pushed.string_value
    assert summary["next_commands"][0].startswith(
        f"python -m serving --model_base_path {generated_run.serving_model_dir}")


def test_batch_scoring_of_unlabelled_one_class_and_empty_logs(generated_run, tmp_path, capsys):
    """../shared/cases/05 and 06: an unlabelled log (Criteo's test.txt layout) is scored like the labelled one; a
    one-class log and an empty one are scored, with the AUC reported as undefined and why."""
    from serving import batch_score

    with open(generated_run.heldout_file) as f:
        lines = f.read().splitlines()[:200]

    def score(name: str, text: str) -> tuple[str, np.ndarray]:
        (tmp_path / name).write_text(text)
        batch_score.main(["--model", generated_run.serving_model_dir, "--dataset", "criteo",
                          "--data", str(tmp_path / name), "--output", str(tmp_path / f"{name}.scores")])
        return capsys.readouterr().out, np.loadtxt(tmp_path / f"{name}.scores", ndmin=1)

    _, labelled = score("labelled.tsv", "\n".join(lines) + "\n")
    out, unlabelled = score("unlabelled.txt", "\n".join(line.split("\t", 1)[1] for line in lines) + "\n")
    assert out.startswith("examples=200 auc=undefined logloss=undefined (the log has no labels: scores only)")
    np.testing.assert_array_equal(unlabelled, labelled)
    negatives = [line for line in lines if line.startswith("0\t")]
    out, scores = score("negatives.tsv", "\n".join(negatives) + "\n")
    assert len(scores) == len(negatives) and re.match(
        rf"examples={len(negatives)} auc=undefined logloss=0\.\d{{4}} \(AUC needs both classes; the labels hold "
        rf"{len(negatives)} negative\(s\) and 0 positive\(s\)\)", out)
    out, _ = score("empty.tsv", "")
    assert out.startswith("examples=0 auc=undefined logloss=undefined (no rows)")


def test_a_served_example_with_two_values_for_a_field_is_an_error_naming_it(generated_run):
    """../shared/cases/07: "indices[1] = [0,1] is out of bounds" before, naming no field."""
    import tensorflow as tf

    example = tf.train.Example()
    example.features.feature["I1"].int64_list.value.append(1)
    example.features.feature["C1"].bytes_list.value.extend([b"68fd1e64", b"05db9164"])
    model_dir = os.path.join(generated_run.serving_model_dir, sorted(os.listdir(generated_run.serving_model_dir))[-1])
    serve = tf.saved_model.load(model_dir).signatures["serving_default"]
    with pytest.raises(tf.errors.InvalidArgumentError, match="feature C1 has more than one value in an example"):
        serve(examples=tf.constant([example.SerializeToString()]))


UPSTREAM_OF_TRAINER = ("RawLogExampleGen", "StatisticsGen", "SchemaGen", "ExampleValidator", "DriftValidator",
                       "AnomalyGate", "Transform")


def test_a_run_killed_in_training_resumes_from_the_cache_and_pushes(generated_run):
    """The fixture's run was killed with SIGKILL while the Trainer was RUNNING and started again (conftest.py)."""
    from pipeline import lineage

    states = generated_run.states_after_resume
    assert {node: states[node] for node in UPSTREAM_OF_TRAINER} == {
        node: ["COMPLETE", "CACHED"] for node in UPSTREAM_OF_TRAINER}  # nothing upstream recomputed
    # The killed execution is never published (it stays RUNNING); the second one trains from the start.
    assert states["Trainer"] == ["RUNNING", "COMPLETE"]
    assert states["Evaluator"] == ["COMPLETE"] and states["Pusher"] == ["COMPLETE"]
    store = lineage.open_store(generated_run.metadata_path)
    trainer = sorted((e for e in store.get_executions() if lineage.node_id(store, e) == "Trainer"), key=lambda e: e.id)
    killed, resumed = trainer[0], trainer[1]
    models = lineage.output_artifacts(store, "Trainer", "model")
    # Whatever the killed execution wrote under Trainer/model/<its id>, no artifact names it: nothing can read it.
    assert [m.uri.rsplit("/", 1)[1] for m in models] == [str(resumed.id)]
    assert not any(a.uri.rstrip("/").endswith(f"/{killed.id}") for a in store.get_artifacts())
    evaluator = next(e for e in store.get_executions() if lineage.node_id(store, e) == "Evaluator")
    inputs = {event.artifact_id for event in store.get_events_by_execution_ids([evaluator.id])
              if event.type == event.INPUT}
    assert models[0].id in inputs
    assert lineage.latest_output(store, "Pusher", "pushed_model").custom_properties["pushed"].int_value == 1
