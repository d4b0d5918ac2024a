"""kubeflow/Dockerfile agrees with the project (no Docker engine here, so its text is checked): every package is
copied into the image, at the folder kubeflow.compile maps repository files to, with the lock's Beam and Python."""
import os
import re

from kubeflow import compile as kubeflow_compile
from kubeflow import spec_runner
from tests.helpers import REPO_ROOT

DOCKERFILE = open(os.path.join(REPO_ROOT, "kubeflow", "Dockerfile")).read()


def _copied() -> set[str]:
    paths = set()
    for line in DOCKERFILE.splitlines():
        if line.startswith("COPY ") and "--from" not in line:
            paths.update(line.split()[1:-1])
    return paths


def test_every_package_and_the_schemas_are_in_the_image():
    setup = open(os.path.join(REPO_ROOT, "setup.py")).read()
    packages = set(re.findall(r'"(\w+)"', setup[setup.index("include="):setup.index("py_modules")]))
    assert packages == {"pipeline", "components", "trainer", "transform", "data_gen", "serving", "kubeflow",
                        "fusionctr"}
    assert packages | {"schemas", "setup.py", "local_runner.py", "requirements.lock",
                       "kubeflow/requirements-gpu.lock"} <= _copied()


def test_repository_files_are_where_the_compiler_says():
    assert f"WORKDIR {kubeflow_compile.IMAGE_PROJECT_DIR}" in DOCKERFILE


def test_the_beam_worker_boot_matches_the_locked_beam_and_python():
    lock = open(os.path.join(REPO_ROOT, "requirements.lock")).read()
    beam = re.search(r"^apache-beam==([\d.]+)", lock, re.M).group(1)
    assert f"apache/beam_python3.10_sdk:{beam} " in DOCKERFILE
    assert re.search(r"^FROM python:3\.10[.\d]*-slim", DOCKERFILE, re.M)


def test_the_image_environment_is_what_the_spec_runner_sets():
    assert spec_runner.image_environment()["TF_USE_LEGACY_KERAS"] == "1"
