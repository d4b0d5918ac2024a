"""Session-scoped pipeline runs shared by the end-to-end tests (one run per dataset: runs cost minutes)."""
from __future__ import annotations

import dataclasses
import io
import os
import pathlib
import shlex
import signal
import subprocess
import sys
import time
from typing import Callable, Optional

import pytest

from data_gen import synthetic_criteo
from pipeline import lineage
from tests.helpers import REPO_ROOT

DATA_DIR = os.environ.get("FUSIONCTR_DATA_DIR", os.path.join(REPO_ROOT, "..", "shared", "data"))
REQUIRE_DATA = os.environ.get("FUSIONCTR_REQUIRE_DATA") == "1"
# Flags of every end-to-end run: the tiny test preset (small embeddings), a few short epochs.
TEST_FLAGS = ["--preset", "test", "--epochs", "3"]
# The model each shared sample is run with (default DeepFM): the Criteo sample goes through OptFusion's search
# and Hard retrain, so the real data crosses every kind of training step without an extra pipeline run.
SAMPLE_MODELS = {"criteo": "optfusion-hard"}


@dataclasses.dataclass(frozen=True)
class PipelineRun:
    dataset: str
    output_dir: str
    input_files: tuple[str, ...]
    heldout_file: str  # raw rows never given to the pipeline
    argv: tuple[str, ...]
    # {node: [execution states]} right after the fixture's run, when it was a run killed and started again.
    states_after_resume: Optional[dict[str, list[str]]] = None
    console: str = ""  # what `make run` printed

    @property
    def metadata_path(self) -> str:
        return os.path.join(self.output_dir, "metadata.sqlite")

    @property
    def serving_model_dir(self) -> str:
        return os.path.join(self.output_dir, "serving_model")


def run_pipeline(dataset: str, data: str, output_dir: str, heldout: str, input_files: list[str],
                 model: str = "deepfm") -> PipelineRun:
    """Runs the pipeline as a user does, `make run ARGS="..."` from the repository root, and keeps what it printed
    (stdout and stderr, in order) as the run's `console`."""
    argv = ["--dataset", dataset, "--data", data, "--output-dir", output_dir, "--model", model, *TEST_FLAGS]
    # As typed in a shell: not a sub-make of `make test` (which would add make's "Entering directory" lines).
    env = {k: v for k, v in os.environ.items() if k not in ("MAKELEVEL", "MAKEFLAGS", "MFLAGS")}
    result = subprocess.run(["make", "run", f"ARGS={shlex.join(argv)}"], cwd=REPO_ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=3600)
    if result.returncode != 0:
        raise AssertionError(f"make run {shlex.join(argv)} failed (exit {result.returncode}):\n"
                             f"{result.stdout[-6000:]}")
    return PipelineRun(dataset, output_dir, tuple(input_files), heldout, tuple(argv), console=result.stdout)


def write_generated_input(root: pathlib.Path) -> tuple[str, str, str]:
    """5000 generated Criteo-layout rows: the first 4000 in root/input/log.tsv, the next 1000 held out in
    root/heldout.tsv. Returns (input folder, input file, held-out file)."""
    out = io.StringIO()
    synthetic_criteo.write_synthetic_criteo(out, 5000, seed=11)
    lines = out.getvalue().splitlines(keepends=True)
    (root / "input").mkdir()
    (root / "input" / "log.tsv").write_text("".join(lines[:4000]))
    (root / "heldout.tsv").write_text("".join(lines[4000:]))
    return str(root / "input"), str(root / "input" / "log.tsv"), str(root / "heldout.tsv")


def _running(metadata_path: str, node: str) -> bool:
    try:
        states = lineage.execution_states_by_node(lineage.open_store(metadata_path))
    except Exception:  # the store is still being created by the run
        return False
    return states.get(node, [])[-1:] == ["RUNNING"]


def kill_run_in(node: str, argv: list[str], metadata_path: str, log_path: str, timeout_s: float = 900) -> None:
    """Starts `local_runner.py argv` in a child process, waits until `node`'s execution is RUNNING in MLMD, then kills
    the process and its children with SIGKILL (a crash: no handler runs, nothing is cleaned up)."""
    with open(log_path, "wb") as log:
        process = subprocess.Popen([sys.executable, os.path.join(REPO_ROOT, "local_runner.py"), *argv], cwd=REPO_ROOT,
                                   stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + timeout_s
    try:
        while not _running(metadata_path, node):
            if process.poll() is not None or time.monotonic() > deadline:
                with open(log_path, "rb") as log:
                    tail = log.read()[-3000:].decode(errors="replace")
                raise AssertionError(f"{node} never ran before the run ended (exit {process.returncode}): {tail}")
            time.sleep(0.2)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@pytest.fixture(scope="session")
def generated_run(tmp_path_factory) -> PipelineRun:
    """The pipeline on generated Criteo-layout data: 4000 rows in, the next 1000 held out.

    The run crashes first: started in a child process and killed with SIGKILL while its Trainer is RUNNING, then
    started again with the same command (issue 13, resume after a crash). So every test of this run checks the
    artifacts of a resumed run, and test_pipeline_generated.py checks what was reused.
    """
    root = tmp_path_factory.mktemp("generated")
    input_dir, input_file, heldout = write_generated_input(root)
    output_dir = str(root / "out")
    argv = ["--dataset", "criteo", "--data", input_dir, "--output-dir", output_dir, "--model", "deepfm", *TEST_FLAGS]
    kill_run_in("Trainer", argv, os.path.join(output_dir, "metadata.sqlite"), str(root / "killed_run.log"))
    run = run_pipeline("criteo", input_dir, output_dir, heldout, [input_file])
    states = lineage.execution_states_by_node(lineage.open_store(run.metadata_path))
    return dataclasses.replace(run, states_after_resume=states)


def sample_files(name: str) -> tuple[list[str], str]:
    """(training files, held-out test file) of a shared sample; skips (or fails under FUSIONCTR_REQUIRE_DATA=1)."""
    folder = os.path.join(DATA_DIR, name)
    files = sorted(os.path.join(folder, f) for f in (os.listdir(folder) if os.path.isdir(folder) else [])
                   if not f.startswith((".", "_", "README", "LICENSE")) and not f.endswith(".md"))
    test = [f for f in files if "test" in os.path.basename(f).lower()]
    train = [f for f in files if f not in test]
    if len(test) != 1 or not train:
        message = (f"shared {name} sample not usable at {folder} (found {[os.path.basename(f) for f in files]}; "
                   "need training file(s) and one file named *test*). Set FUSIONCTR_DATA_DIR.")
        if REQUIRE_DATA:
            pytest.fail(message)
        pytest.skip(message)
    return train, test[0]


@pytest.fixture(scope="session")
def sample_run(tmp_path_factory) -> Callable[[str], PipelineRun]:
    """One pipeline run per shared sample (criteo, avazu, frappe; model per SAMPLE_MODELS), on its training files
    only."""
    runs: dict[str, PipelineRun] = {}

    def get(name: str) -> PipelineRun:
        if name not in runs:
            train, test = sample_files(name)
            root = tmp_path_factory.mktemp(name)
            input_dir = root / "input"
            input_dir.mkdir()
            for path in train:  # links: the data's terms forbid copies, and the pipeline reads a folder
                os.symlink(os.path.abspath(path), input_dir / os.path.basename(path))
            runs[name] = run_pipeline(name, str(input_dir), str(root / "out"), test, train,
                                      SAMPLE_MODELS.get(name, "deepfm"))
        return runs[name]

    return get
