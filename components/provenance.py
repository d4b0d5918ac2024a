"""What a trained model was made with, recorded on its MLMD artifact (issue 13, reproducibility).

Every training step's Model artifact carries, beside what TFX records anyway (the execution's parameters, the
training config among them, and its input artifacts, whose Examples hold the data fingerprint `input_fingerprint`):
- `seed`: the training seed (initialisation and shuffling);
- `package_versions`: JSON {package: version} of Python and the packages that decide the numbers;
- `warm_start`: JSON of what a warm start copied from which base model (trainer/warm_start.py), when it ran.

With the same seed, data and versions, two runs on CPU give identical weights and metrics
(tests/e2e/test_reproducibility.py).
"""
from __future__ import annotations

import importlib.metadata
import json
import platform

from tfx import types
from tfx.dsl.io import fileio

PACKAGES = ("tensorflow", "tf-keras", "tfx", "tensorflow-transform", "tensorflow-model-analysis",
            "tensorflow-data-validation", "tensorflow-decision-forests", "apache-beam", "numpy", "keras-tuner")


def package_versions() -> dict[str, str]:
    """{name: version} of Python and PACKAGES ("not installed" for a missing one)."""
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def record(artifact: types.Artifact, seed: int | None) -> None:
    """Sets `seed` (when known) and `package_versions` (module docstring) on a trained model's artifact."""
    if seed is not None:
        artifact.set_int_custom_property("seed", int(seed))
    artifact.set_string_custom_property("package_versions", json.dumps(package_versions(), sort_keys=True))


def record_warm_start(artifact: types.Artifact, report_path: str) -> None:
    """Sets `warm_start` (module docstring) from the report file the training step wrote, when it wrote one."""
    if fileio.exists(report_path):
        with fileio.open(report_path, "r") as f:
            artifact.set_string_custom_property("warm_start", f.read())
