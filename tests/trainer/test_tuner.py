"""The Tuner's keras-tuner search (trainer/tuner.py, components/tuner.py): it resumes an interrupted search, a larger
budget runs only the extra trials, other inputs start a new search, and a search without a completed trial fails
with the trial's error. The trial functions here score the values by a formula, so each trial is instant and its
score known; the end-to-end test (tests/e2e/test_tuning.py) runs real training trials."""
import json
import math

import pytest
from tfx.components.trainer import fn_args_utils
from tfx.dsl.components.base import base_executor
from tfx.types import artifact_utils, standard_artifacts, standard_component_specs

from components import tuner as tuner_component
from trainer import tuner, tuning

CALLS: list[tuple[str, dict]] = []  # (trial folder, values) of every trial function call, in order
INTERRUPT_AT_CALL: list[int] = []  # 1-based call numbers at which `scored_trial` is interrupted (KeyboardInterrupt)
SPACE = (tuning.LogRange("learning_rate", 1e-4, 1e-2), tuning.Choice("embedding_dim", (8, 16, 32)))


def scored_trial(fn_args, values, trial_dir) -> float:
    """Best at a learning rate of 1e-3 and embedding 16: 1 - |log10(lr) + 3| / 10 - |dim - 16| / 100."""
    CALLS.append((trial_dir, dict(values)))
    if len(CALLS) in INTERRUPT_AT_CALL:
        raise KeyboardInterrupt  # what a killed process leaves behind: the trial still RUNNING in the oracle
    assert fn_args.custom_config == {"train": {"epochs": 1}}  # the family's config, without the Tuner's keys
    return 1 - abs(math.log10(values["learning_rate"]) + 3) / 10 - abs(values["embedding_dim"] - 16) / 100


def failing_trial(fn_args, values, trial_dir) -> float:
    raise ValueError("embedding table does not fit")


@pytest.fixture(autouse=True)
def _fresh_record():
    CALLS.clear()
    INTERRUPT_AT_CALL.clear()


def _fn_args(tmp_path, trial_fn="tests.trainer.test_tuner.scored_trial", max_trials=3, train_files=("train/*",)):
    return fn_args_utils.FnArgs(
        train_files=list(train_files), eval_files=["eval/*"], transform_graph_path=str(tmp_path / "transform"),
        custom_config={"train": {"epochs": 1}, tuning.TRIAL_FN_KEY: trial_fn,
                       tuning.SEARCH_SPACE_KEY: tuning.space_to_json(SPACE),
                       tuning.TUNING_KEY: {"max_trials": max_trials, "algorithm": "random", "seed": 7},
                       tuning.TRIALS_DIR_KEY: str(tmp_path / "trials")})


def _search(fn_args):
    result = tuner.tuner_fn(fn_args)
    result.tuner.search(**result.fit_kwargs)
    return result.tuner


def _completed(search) -> dict[str, float]:
    return {t.trial_id: t.score for t in search.oracle.trials.values() if t.status == "COMPLETED"}


def test_an_interrupted_search_resumes_its_trials_and_reruns_only_the_interrupted_one(tmp_path):
    INTERRUPT_AT_CALL.append(2)
    with pytest.raises(KeyboardInterrupt):
        _search(_fn_args(tmp_path))
    first, interrupted = CALLS[0], CALLS[1]
    resumed = _search(_fn_args(tmp_path))  # the same command again
    assert CALLS[2] == interrupted  # the interrupted trial again, with its values, in its folder
    assert len(CALLS) == 4 and first not in CALLS[2:]  # one new trial; the completed one was not re-run
    assert len(_completed(resumed)) == 3
    best = resumed.get_best_hyperparameters()[0].values
    assert max(_completed(resumed).values()) == pytest.approx(
        1 - abs(math.log10(best["learning_rate"]) + 3) / 10 - abs(best["embedding_dim"] - 16) / 100)


def test_a_larger_budget_runs_only_the_extra_trials_and_other_inputs_start_afresh(tmp_path):
    done = _completed(_search(_fn_args(tmp_path, max_trials=2)))
    assert len(CALLS) == 2
    more = _search(_fn_args(tmp_path, max_trials=3))
    assert len(CALLS) == 3 and {k: v for k, v in _completed(more).items() if k in done} == done
    other = _search(_fn_args(tmp_path, max_trials=1, train_files=("other_train/*",)))
    assert len(CALLS) == 4 and len(_completed(other)) == 1
    assert other.project_dir != more.project_dir


def test_the_executor_records_the_best_values_in_mlmd_and_fails_clearly_when_no_trial_completes(tmp_path):
    examples = standard_artifacts.Examples()
    examples.uri = str(tmp_path / "examples")
    examples.split_names = artifact_utils.encode_split_names(["train", "eval"])
    hyperparameters, results = standard_artifacts.HyperParameters(), standard_artifacts.TunerResults()
    hyperparameters.uri, results.uri = str(tmp_path / "best"), str(tmp_path / "results")

    def run(trial_fn: str) -> None:
        custom = _fn_args(tmp_path, trial_fn, max_trials=2).custom_config
        context = base_executor.BaseExecutor.Context(tmp_dir=str(tmp_path / "tmp"), unique_id="1")
        tuner_component.Executor(context).Do(
            {standard_component_specs.EXAMPLES_KEY: [examples]},
            {standard_component_specs.BEST_HYPERPARAMETERS_KEY: [hyperparameters],
             standard_component_specs.TUNER_RESULTS_KEY: [results]},
            {standard_component_specs.TUNER_FN_KEY: tuner.__name__ + ".tuner_fn",
             standard_component_specs.TRAIN_ARGS_KEY: json.dumps({"splits": ["train"]}),
             standard_component_specs.EVAL_ARGS_KEY: json.dumps({"splits": ["eval"]}),
             standard_component_specs.CUSTOM_CONFIG_KEY: json.dumps(custom)})

    run("tests.trainer.test_tuner.scored_trial")
    written = json.loads((tmp_path / "best" / "best_hyperparameters.txt").read_text())["values"]
    properties = {k: hyperparameters.get_custom_property(k) for k in hyperparameters.mlmd_artifact.custom_properties}
    assert properties["hp.embedding_dim"] == written["embedding_dim"]
    assert properties["hp.learning_rate"] == pytest.approx(written["learning_rate"])
    trials = json.loads((tmp_path / "results" / "tuner_results.json").read_text())
    assert properties["best_val_auc"] == pytest.approx(max(t["score"] for t in trials))
    assert (properties["trials_completed"], properties["trials_failed"]) == (2, 0)

    with pytest.raises(RuntimeError, match=r"none of 2 trials completed .*ValueError: embedding table does not fit"):
        run("tests.trainer.test_tuner.failing_trial")
