"""Session-scoped pipeline runs shared by the end-to-end tests (one run per dataset: runs cost minutes)."""
from __future__ import annotations

import dataclasses
import io
import os
import pathlib
from typing import Callable

import pytest

import local_runner
from data_gen import synthetic_criteo
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

    @property
    def metadata_path(self) -> str:
        return os.path.join(self.output_dir, "metadata.sqlite")

    @property
    def serving_model_dir(self) -> str:
        return os.path.join(self.output_dir, "serving_model")


def run_pipeline(dataset: str, data: str, output_dir: str, heldout: str, input_files: list[str],
                 model: str = "deepfm") -> PipelineRun:
    argv = ["--dataset", dataset, "--data", data, "--output-dir", output_dir, "--model", model, *TEST_FLAGS]
    local_runner.run(argv)
    return PipelineRun(dataset, output_dir, tuple(input_files), heldout, tuple(argv))


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


@pytest.fixture(scope="session")
def generated_run(tmp_path_factory) -> PipelineRun:
    """The pipeline on generated Criteo-layout data: 4000 rows in, the next 1000 held out."""
    root = tmp_path_factory.mktemp("generated")
    input_dir, input_file, heldout = write_generated_input(root)
    return run_pipeline("criteo", input_dir, str(root / "out"), heldout, [input_file])


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
