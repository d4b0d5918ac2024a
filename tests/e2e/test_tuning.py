"""`--tune` for real: the Tuner's trials train DeepFM on the generated run's cached Transform output, the Trainer
trains with the best trial's values, and a larger budget resumes the search (only the extra trial trains)."""
import glob
import json
import os
import shutil

import pytest
import tensorflow as tf

import local_runner
from pipeline import lineage

pytestmark = pytest.mark.e2e


def _train_event_files(trials_dir: str) -> dict[str, int]:
    """{trial folder: TensorBoard event files of its training}: one per time the trial trained."""
    return {os.path.basename(trial): len(glob.glob(os.path.join(trial, "train", "events.out.tfevents.*")))
            for trial in sorted(glob.glob(os.path.join(trials_dir, "trial_*")))}


def _embedding_width(saved_model_dir: str) -> int:
    model = tf.saved_model.load(saved_model_dir)
    (table,) = [v for v in model.variables if v.name == "embedding/embeddings:0"]
    return int(table.shape[-1])


def test_a_tuned_run_trains_with_the_best_trial_and_a_larger_budget_resumes(generated_run, tmp_path):
    output_dir = tmp_path / "out"
    output_dir.mkdir()
    shutil.copy(generated_run.metadata_path, output_dir / "metadata.sqlite")  # ExampleGen..Transform: cached
    argv = list(generated_run.argv)
    argv[argv.index("--output-dir") + 1] = str(output_dir)
    argv += ["--tune", "--tune-epochs", "1", "--tune-algorithm", "random"]
    local_runner.run(argv + ["--tune-trials", "2"])

    store = lineage.open_store(str(output_dir / "metadata.sqlite"))
    states = lineage.execution_states_by_node(store)
    assert (states["Transform"][-1], states["Tuner"][-1], states["Trainer"][-1]) == ("CACHED", "COMPLETE", "COMPLETE")
    best = lineage.latest_output(store, "Tuner", "best_hyperparameters")
    values = json.loads(open(os.path.join(best.uri, "best_hyperparameters.txt")).read())["values"]
    trials = json.loads(open(glob.glob(os.path.join(
        lineage.latest_output(store, "Tuner", "tuner_results").uri, "*.json"))[0]).read())
    assert len(trials) == 2 and best.custom_properties["trials_completed"].int_value == 2
    winner = max(trials, key=lambda t: t["score"])
    assert {k: winner[k] for k in values} == values  # the best trial's values are the artifact's
    assert best.custom_properties["best_val_auc"].double_value == pytest.approx(winner["score"])
    assert best.custom_properties["hp.embedding_dim"].int_value == values["embedding_dim"]

    # The Trainer trained with them: recorded in its history, and the exported model has the tuned embedding width.
    model_run = lineage.latest_output(store, "Trainer", "model_run")
    assert json.loads(open(os.path.join(model_run.uri, "history.json")).read())["hyperparameters"] == values
    model = lineage.latest_output(store, "Trainer", "model")
    assert _embedding_width(os.path.join(model.uri, "Format-Serving")) == values["embedding_dim"]

    trials_dir = best.custom_properties["trials_dir"].string_value
    assert _train_event_files(trials_dir) == {"trial_0": 1, "trial_1": 1}
    local_runner.run(argv + ["--tune-trials", "3"])  # a larger budget: one more trial, the two kept
    store = lineage.open_store(str(output_dir / "metadata.sqlite"))
    resumed = lineage.latest_output(store, "Tuner", "best_hyperparameters")
    assert resumed.custom_properties["trials_dir"].string_value == trials_dir
    assert resumed.custom_properties["trials_completed"].int_value == 3
    assert _train_event_files(trials_dir) == {"trial_0": 1, "trial_1": 1, "trial_2": 1}
