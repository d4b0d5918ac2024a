"""setup.sh on a fresh clone prints a handful of lines (issue 14) and, when an install fails, the end of its log.

The installer is a stub `uv` first on PATH (it records its arguments; `uv venv` makes a venv whose python is this
test's interpreter), so the script's own logic runs in a copy of its files without installing anything.
"""
import os
import shutil
import stat
import subprocess
import sys

import pytest

from tests.helpers import REPO_ROOT

STUB_UV = """#!/bin/sh
echo "uv $*" >> "$UV_CALLS"
echo "resolved 400 packages (installer chatter that belongs in the log)"
case "$1" in
  venv) for last; do :; done; mkdir -p "$last/bin"; ln -s "$TEST_PYTHON" "$last/bin/python" ;;
  pip) [ -n "$UV_FAIL" ] && { echo "error: no matching distribution for tfx==1.16.0" >&2; exit 1; } ;;
esac
exit 0
"""


def _fresh_clone(tmp_path, fail: bool = False) -> tuple[subprocess.CompletedProcess, str]:
    clone = tmp_path / "clone"
    clone.mkdir()
    for name in ("setup.sh", "requirements.lock", "setup.py"):
        shutil.copy(os.path.join(REPO_ROOT, name), clone / name)
    stubs = tmp_path / "bin"
    stubs.mkdir()
    (stubs / "uv").write_text(STUB_UV)
    (stubs / "uv").chmod((stubs / "uv").stat().st_mode | stat.S_IEXEC)
    calls = tmp_path / "uv_calls"
    env = {**os.environ, "PATH": f"{stubs}:{os.environ['PATH']}", "UV_CALLS": str(calls),
           "TEST_PYTHON": sys.executable, "UV_FAIL": "1" if fail else ""}
    result = subprocess.run(["bash", str(clone / "setup.sh")], cwd=str(clone), env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, timeout=120)
    return result, calls.read_text() if calls.exists() else ""


def test_fresh_setup_prints_at_most_five_lines_and_logs_the_installers(tmp_path):
    result, calls = _fresh_clone(tmp_path)
    assert result.returncode == 0, result.stdout
    printed = result.stdout.splitlines()
    assert len(printed) <= 5, result.stdout
    assert printed[-1].startswith("setup.sh: done in ") and "installer chatter" not in result.stdout
    assert "pip install --python .venv/bin/python -r requirements.lock" in calls
    log = (tmp_path / "clone" / "setup.log").read_text()
    assert log.count("installer chatter") == 3  # the venv and the two installs, all in the log
    # A second run only checks the lock file: one line.
    again = subprocess.run(["bash", "setup.sh"], cwd=str(tmp_path / "clone"), stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=60)
    assert again.returncode == 0 and again.stdout == "setup.sh: .venv is up to date with requirements.lock\n"


def test_failed_install_prints_the_end_of_the_log_and_where_it_is(tmp_path):
    result, _ = _fresh_clone(tmp_path, fail=True)
    assert result.returncode == 1
    assert "setup.sh: failed: " in result.stdout and "-r requirements.lock" in result.stdout
    assert "error: no matching distribution for tfx==1.16.0" in result.stdout
    assert result.stdout.rstrip().endswith("setup.sh: the whole log is setup.log")


@pytest.fixture(autouse=True)
def _needs_python310():
    if shutil.which("python3.10") is None and not os.path.isdir(os.path.expanduser("~/.pyenv/versions")):
        pytest.skip("setup.sh looks for a Python 3.10 interpreter and none is installed here")
