"""Re-running an identical pipeline reuses every component from the cache, also through the TFX CLI."""
import os
import shlex
import subprocess
import sys

import pytest

import local_runner
from pipeline import lineage
from tests.helpers import REPO_ROOT

pytestmark = pytest.mark.e2e

COMPONENTS = {"RawLogExampleGen", "StatisticsGen", "SchemaGen", "ExampleValidator", "AnomalyGate", "Transform",
              "Trainer", "Evaluator", "Pusher"}


def _last_states(run) -> tuple[dict[str, str], dict[str, int]]:
    states = lineage.execution_states_by_node(lineage.open_store(run.metadata_path))
    assert COMPONENTS <= set(states), states
    return {node: states[node][-1] for node in COMPONENTS}, {node: len(states[node]) for node in COMPONENTS}


def test_second_identical_run_is_served_from_cache(generated_run):
    first_states, first_counts = _last_states(generated_run)
    assert set(first_states.values()) == {"COMPLETE"}
    local_runner.run(list(generated_run.argv))
    states, counts = _last_states(generated_run)
    assert states == {node: "CACHED" for node in COMPONENTS}
    assert counts == {node: first_counts[node] + 1 for node in COMPONENTS}


def test_tfx_cli_local_engine_creates_and_runs_the_pipeline(generated_run, tmp_path):
    tfx_cli = os.path.join(os.path.dirname(sys.executable), "tfx")
    env = {**os.environ, "LOCAL_HOME": str(tmp_path / "tfx_local"),
           "FUSIONCTR_RUNNER_ARGS": shlex.join(generated_run.argv)}
    _, before = _last_states(generated_run)
    for command in (["pipeline", "create", "--engine", "local", "--pipeline_path",
                     os.path.join(REPO_ROOT, "local_runner.py")],
                    ["run", "create", "--engine", "local", "--pipeline_name", "fusionctr"]):
        result = subprocess.run([tfx_cli, *command], env=env, cwd=str(tmp_path), capture_output=True, text=True,
                                timeout=900)
        assert result.returncode == 0, (command, result.stdout[-2000:], result.stderr[-4000:])
    assert (tmp_path / "tfx_local" / "fusionctr").is_dir()
    states, counts = _last_states(generated_run)
    assert states == {node: "CACHED" for node in COMPONENTS}  # same flags, same data, same code: all cached
    assert counts == {node: before[node] + 1 for node in COMPONENTS}
