"""tests/conftest.py's xdist groups name real files and samples (a renamed file would silently lose its place)."""
import os

import pytest

from tests import conftest
from tests.e2e import test_reference_vocabulary, test_shared_samples
from tests.helpers import REPO_ROOT

SAMPLES = {"tests/e2e/test_shared_samples.py": test_shared_samples.SAMPLES,
           "tests/e2e/test_reference_vocabulary.py": test_reference_vocabulary.SAMPLES}


@pytest.mark.parametrize("group", conftest.LONG_GROUPS)
def test_long_groups_are_files_shared_runs_or_samples_of_a_per_sample_file(group):
    if group in conftest.SHARED_RUN_GROUPS.values():
        return
    path, _, sample = group.partition(":")
    assert os.path.isfile(os.path.join(REPO_ROOT, path)), group
    assert bool(sample) == (path in conftest.PER_SAMPLE_FILES), group
    if sample:
        assert sample in SAMPLES[path], group
    assert "@" not in group and "]" not in group  # xdist reads the group after the last "@", only past any "]"


def test_files_sharing_a_run_exist():
    for path in conftest.SHARED_RUN_GROUPS:
        assert os.path.isfile(os.path.join(REPO_ROOT, path)), path
