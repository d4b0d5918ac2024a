"""Shared test set-up. TF_USE_LEGACY_KERAS must be set before anything imports TensorFlow.

`make test` runs the suite on several pytest-xdist workers (`--dist loadgroup`). A worker builds its own
session-scoped pipeline runs, so every test is put in a group (`xdist_group`) that keeps the tests sharing a run
(or a module-scoped fixture) on one worker: by default its file; the files that share a run are one group; the
shared-sample files are split by sample, because each sample's run is built lazily and only when asked for.
Groups are ordered so the longest start first (xdist hands groups to workers in collection order).
"""
from __future__ import annotations

import os

import pytest

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# Files whose tests share one session-scoped run or one process-wide cache (tests/resfusion_data.py).
SHARED_RUN_GROUPS = {
    "tests/e2e/test_pipeline_generated.py": "generated_run",
    "tests/e2e/test_caching_and_cli.py": "generated_run",
    "tests/e2e/test_tuning.py": "generated_run",
    "tests/e2e/test_reproducibility.py": "generated_run",
    # The model server serves the Criteo sample's pushed model.
    "tests/e2e/test_model_server.py": "tests/e2e/test_shared_samples.py:criteo",
    # The compiled Kubeflow spec runs the Criteo sample's configuration and is compared with its local run.
    "tests/e2e/test_kubeflow_spec.py": "tests/e2e/test_shared_samples.py:criteo",
    # OptFusion end to end is the Criteo sample's run (OptFusion-Hard).
    "tests/e2e/test_optfusion_pipeline.py": "tests/e2e/test_shared_samples.py:criteo",
    "tests/components/gbdt_residual/test_executor.py": "resfusion_data",
    "tests/trainer/resfusion/test_comparators.py": "resfusion_data",
    "tests/trainer/resfusion/test_export.py": "resfusion_data",
    "tests/trainer/resfusion/test_residual.py": "resfusion_data",
    "tests/trainer/resfusion/test_optfusion_stage.py": "resfusion_data",
}
# Files whose `name`-parametrised tests each need only that sample's run.
PER_SAMPLE_FILES = ("tests/e2e/test_shared_samples.py", "tests/e2e/test_reference_vocabulary.py")
# Groups of minutes (pipeline runs, GBDT folds, a two-replica subprocess): started first, longest first.
LONG_GROUPS = (  # measured seconds on one 2-core machine, in order
    # 355 + the model server (50) + the compiled Kubeflow spec run (380) + OptFusion's lineage and trial (150)
    "tests/e2e/test_shared_samples.py:criteo",
    "resfusion_data",  # 500
    "tests/e2e/test_resfusion_pipeline.py",  # 410
    "generated_run",  # 340
    "tests/e2e/test_continuous_training.py",  # 360: two days
    "tests/trainer/optfusion/test_optim.py",  # 260
    "tests/e2e/test_shared_samples.py:frappe",  # 205
    "tests/e2e/test_shared_samples.py:avazu",  # 205
    "tests/e2e/test_reference_vocabulary.py:criteo",  # 190
    "tests/e2e/test_reference_vocabulary.py:avazu",  # 135
    "tests/e2e/test_reference_vocabulary.py:frappe",  # 100
    "tests/e2e/test_tfrecord_input.py",  # 60
)


def xdist_group_of(item: pytest.Item) -> str:
    """The xdist group of a collected test (module docstring)."""
    path = item.nodeid.split("::")[0]
    callspec = getattr(item, "callspec", None)
    if path in PER_SAMPLE_FILES and callspec is not None and "name" in callspec.params:
        return f"{path}:{callspec.params['name']}"  # no "[" or "@": xdist splits the group off at the last "@"
    return SHARED_RUN_GROUPS.get(path, path)


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the xdist_group markers
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    groups = {id(item): xdist_group_of(item) for item in items}
    first_seen: dict[str, int] = {}
    for i, item in enumerate(items):
        first_seen.setdefault(groups[id(item)], i)
        item.add_marker(pytest.mark.xdist_group(groups[id(item)]))

    def rank(item: pytest.Item) -> tuple[int, int]:
        group = groups[id(item)]
        return (LONG_GROUPS.index(group) if group in LONG_GROUPS else len(LONG_GROUPS), first_seen[group])

    # A stable sort that keeps each group's tests together and in their order (module fixtures are built once).
    items.sort(key=rank)
