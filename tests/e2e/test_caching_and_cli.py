"""Re-running an identical pipeline reuses every component from the cache, also through the TFX CLI, and pushes no
new version; a worse model is judged against the champion and not pushed; a batch whose data drifted from the
served model's stops before training."""
import json
import os
import shlex
import subprocess
import sys

import pytest

import local_runner
from pipeline import lineage, run_summary
from tests.helpers import REPO_ROOT

pytestmark = pytest.mark.e2e

COMPONENTS = {"RawLogExampleGen", "StatisticsGen", "SchemaGen", "ExampleValidator", "DriftValidator", "AnomalyGate",
              "Transform", "Trainer", "Evaluator", "Pusher"}


def _last_states(run) -> tuple[dict[str, str], dict[str, int]]:
    states = lineage.execution_states_by_node(lineage.open_store(run.metadata_path))
    assert COMPONENTS <= set(states), states
    return {node: states[node][-1] for node in COMPONENTS}, {node: len(states[node]) for node in COMPONENTS}


def _versions(serving_model_dir: str) -> list[str]:
    return sorted(os.listdir(serving_model_dir))


def test_second_identical_run_is_served_from_cache_and_pushes_no_new_version(generated_run):
    """The second run reuses every step up to the model. Its Evaluator runs once more, because the champion it is
    judged against appeared (the first run's blessed model: the candidate itself, so judged without a baseline),
    and its Pusher finds the model already served: no new version. So do the DriftValidator and the AnomalyGate:
    the data behind the served model appeared as the drift baseline (the same statistics: no drift)."""
    first_states, first_counts = _last_states(generated_run)
    assert set(first_states.values()) <= {"COMPLETE", "CACHED"}  # CACHED: the fixture's run resumed a killed one
    versions = _versions(generated_run.serving_model_dir)
    assert len(versions) == 1
    local_runner.run(list(generated_run.argv))
    states, counts = _last_states(generated_run)
    assert states == {**{node: "CACHED" for node in COMPONENTS}, "DriftValidator": "COMPLETE",
                      "AnomalyGate": "COMPLETE", "Evaluator": "COMPLETE", "Pusher": "COMPLETE"}
    assert counts == {node: first_counts[node] + 1 for node in COMPONENTS}
    assert _versions(generated_run.serving_model_dir) == versions
    pushed = lineage.latest_output(lineage.open_store(generated_run.metadata_path), "Pusher", "pushed_model")
    assert pushed.custom_properties["already_served"].int_value == 1
    assert pushed.custom_properties["pushed_version"].string_value == versions[0]


def _copy_of_run(run, tmp_path) -> tuple:
    """(output folder, argv) of a copy of the run's metadata and serving folder: a next run that leaves the run's own
    state to the other tests (artifact folders stay where they are: the metadata names them)."""
    import shutil
    output_dir = tmp_path / "out"
    output_dir.mkdir()
    shutil.copy(run.metadata_path, output_dir / "metadata.sqlite")
    shutil.copytree(run.serving_model_dir, output_dir / "serving_model")
    argv = list(run.argv)
    argv[argv.index("--output-dir") + 1] = str(output_dir)
    return output_dir, argv


def test_a_batch_whose_categorical_field_drifted_stops_before_training(generated_run, tmp_path):
    """Issue 13: C9 (3 values, 1 in 2 rows the same) becomes one value in every row. The DriftValidator compares the
    train split with the data behind the served model, the AnomalyGate stops the run naming the field, nothing is
    trained or pushed, and the champion stays served."""
    output_dir, argv = _copy_of_run(generated_run, tmp_path)
    served = _versions(str(output_dir / "serving_model"))
    (tmp_path / "day2").mkdir()
    with open(generated_run.input_files[0]) as source, open(tmp_path / "day2" / "log.tsv", "w") as shifted:
        for line in source:
            columns = line.rstrip("\n").split("\t")
            columns[1 + 13 + 8] = "shifted"  # C9
            shifted.write("\t".join(columns) + "\n")
    argv[argv.index("--data") + 1] = str(tmp_path / "day2")
    with pytest.raises(Exception) as error:
        local_runner.run(argv)
    message = str(error.value)
    assert "training is blocked by data anomalies" in message
    assert "split 'train_train', field 'C9': High Linfty distance between current and previous" in message
    states = lineage.execution_states_by_node(lineage.open_store(str(output_dir / "metadata.sqlite")))
    assert states["AnomalyGate"][-1] == "FAILED" and states["DriftValidator"][-1] == "COMPLETE"
    before = lineage.execution_states_by_node(lineage.open_store(generated_run.metadata_path))
    assert len(states["Trainer"]) == len(before["Trainer"]) and len(states["Transform"]) == len(before["Transform"])
    assert _versions(str(output_dir / "serving_model")) == served


def test_a_worse_model_is_not_blessed_against_the_champion_and_not_pushed(generated_run, tmp_path):
    """A run whose model is deliberately worse (one epoch at a learning rate of 1e-9) clears the AUC floor (0 here)
    but falls more than --max-auc-drop below the champion: not blessed, not pushed, the champion stays served.
    It runs on a copy of the run's metadata and serving folder, so the other tests keep their run."""
    import tensorflow_model_analysis as tfma
    output_dir, argv = _copy_of_run(generated_run, tmp_path)
    served = _versions(str(output_dir / "serving_model"))
    local_runner.run(argv + ["--epochs", "1", "--learning-rate", "1e-9", "--min-auc", "0"])
    store = lineage.open_store(str(output_dir / "metadata.sqlite"))
    assert lineage.latest_output(store, "Evaluator", "blessing").custom_properties["blessed"].int_value == 0
    validation = tfma.load_validation_result(lineage.latest_output(store, "Evaluator", "evaluation").uri)
    failed = [f.metric_threshold for f in validation.metric_validations_per_slice[0].failures]
    assert failed and all(t.HasField("change_threshold") for t in failed)  # the champion, not the floor, said no
    with open(output_dir / run_summary.SUMMARY_FILE) as f:
        summary = json.load(f)
    assert summary["blessed"] is False and summary["pushed_to"] is None
    assert len(summary["not_blessed_because"]) == len(failed)
    mine, champions = summary["eval_metrics"]["auc"], summary["champion_metrics"]["auc"]
    reason = summary["not_blessed_because"][0]  # the drop is TFMA's own difference of the two
    assert reason.startswith(f"auc {mine:.4f} is ") and reason.endswith(
        f" below the champion's {champions:.4f} (at most 0.001 allowed: --max-auc-drop)")
    assert summary["champion_metrics"]["auc"] > summary["eval_metrics"]["auc"]
    assert lineage.latest_output(store, "Pusher", "pushed_model").custom_properties["pushed"].int_value == 0
    assert _versions(str(output_dir / "serving_model")) == served


def test_tfx_cli_local_engine_creates_and_runs_the_pipeline(generated_run, tmp_path):
    tfx_cli = os.path.join(os.path.dirname(sys.executable), "tfx")
    env = {**os.environ, "LOCAL_HOME": str(tmp_path / "tfx_local"),
           "FUSIONCTR_RUNNER_ARGS": shlex.join(generated_run.argv)}
    _, before = _last_states(generated_run)
    for command in (["pipeline", "create", "--engine", "local", "--pipeline_path",
                     os.path.join(REPO_ROOT, "local_runner.py")],
                    ["run", "create", "--engine", "local", "--pipeline_name", "fusionctr-criteo"]):
        result = subprocess.run([tfx_cli, *command], env=env, cwd=str(tmp_path), stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, timeout=900)
        assert result.returncode == 0, (command, result.stdout[-4000:])
    assert (tmp_path / "tfx_local" / "fusionctr-criteo").is_dir()
    # Issue 14: the run prints a line per step and the summary, not the libraries' logs (those go to run.log). The
    # lines before "Creating a run" are the tfx command's own (its imports warn about Python 3.10).
    printed = result.stdout.splitlines()
    printed = printed[printed.index("Creating a run for pipeline: fusionctr-criteo") + 1:]
    assert len(printed) < 100, "\n".join(printed)
    assert "Transform cached" in " ".join(printed) and "Run summary: fusionctr-criteo, model deepfm" in printed
    assert not [line for line in printed if "FutureWarning" in line or "Tables initialized" in line]
    with open(os.path.join(generated_run.output_dir, "run.log")) as f:
        assert "Component Transform is running." in f.read()
    states, counts = _last_states(generated_run)
    # Same flags, same data, same code: nothing is retrained (the Evaluator and the Pusher run again only on the
    # run after the first, whose champion is new: see the test above).
    assert {node: state for node, state in states.items() if node not in ("Evaluator", "Pusher")} == {
        node: "CACHED" for node in COMPONENTS - {"Evaluator", "Pusher"}}
    assert counts == {node: before[node] + 1 for node in COMPONENTS}
