"""The compiled Kubeflow spec itself, executed: kubeflow.compile turns the Criteo sample's configuration (the local
run of conftest.sample_run: OptFusion-Hard, the test preset) into a PipelineJob, and kubeflow.spec_runner runs
every task of it as a KFP v2 backend would (each container's exact command and arguments as a subprocess, TFX's V2
entrypoint doing the work). The job's pushed model must score the held-out rows as the local run's does."""
import dataclasses
import os

import pytest

from kubeflow import compile as kubeflow_compile
from kubeflow import spec_runner
from tests.e2e import checks

pytestmark = pytest.mark.e2e


def _with_output_dir(argv: tuple[str, ...], output_dir: str) -> list[str]:
    args = list(argv)
    args[args.index("--output-dir") + 1] = output_dir
    return args


@pytest.fixture(scope="module")
def spec_run(sample_run, tmp_path_factory):
    local = sample_run("criteo")
    root = tmp_path_factory.mktemp("kubeflow_spec")
    job_path = str(root / "pipeline.json")
    argv = _with_output_dir(local.argv, str(root / "out"))
    kubeflow_compile.compile_pipeline([*argv, "--output", job_path, "--image", "fusionctr:test"])
    result = spec_runner.SpecRunner(spec_runner.load_job(job_path)).run()
    return local, dataclasses.replace(local, output_dir=str(root / "out")), result


def test_every_task_of_the_compiled_spec_runs_and_the_model_is_blessed_and_pushed(spec_run):
    _, run, result = spec_run
    assert set(result.states.values()) == {spec_runner.SUCCEEDED}
    assert {"RawLogExampleGen", "Transform", "OptFusionSearch", "OptFusionRetrain", "Evaluator",
            "Pusher"} <= set(result.states)
    [blessing] = result.outputs["Evaluator"]["blessing"]
    assert blessing.metadata["blessed"] == 1.0
    assert blessing.metadata["current_model_id"] == result.outputs["OptFusionRetrain"]["model"][0].name
    [pushed] = result.outputs["Pusher"]["pushed_model"]
    assert pushed.metadata["pushed"] == 1.0
    assert len(os.listdir(run.serving_model_dir)) == 1


def test_the_pushed_model_scores_the_heldout_rows_as_the_local_run_does(spec_run):
    local, run, _ = spec_run
    assert checks.score_heldout(run) == pytest.approx(checks.score_heldout(local), abs=1e-4)
