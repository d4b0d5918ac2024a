"""One run at a time per output folder (pipeline/output_lock.py): a second run fails at once naming the first; the
lock of a killed run is taken over."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

import local_runner
from pipeline import output_lock

# Holds the lock of the folder argv[1] and says so, then sleeps until killed.
HOLDER = ("import sys, time\nfrom pipeline import output_lock\n"
          "with output_lock.hold(sys.argv[1], ['python', 'local_runner.py', '--output-dir', sys.argv[1]]):\n"
          "    print('held', flush=True)\n    time.sleep(600)\n")


def _start_holder(folder):
    process = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder)], stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "held"
    return process


def test_a_second_run_on_the_folder_fails_at_once_naming_the_first(tmp_path):
    holder = _start_holder(tmp_path)
    try:
        started = time.monotonic()
        with pytest.raises(output_lock.OutputFolderInUse,
                           match=rf"in use by another run \(pid {holder.pid}, started .*: python local_runner.py "
                                 rf"--output-dir {tmp_path}\).*another --output-dir"):
            with output_lock.hold(str(tmp_path)):
                pass
        assert time.monotonic() - started < 5  # fails at once, no waiting
        # The runner checks before writing anything: no generated data, no metadata store.
        with pytest.raises(SystemExit, match=f"pid {holder.pid}"):
            local_runner.run(["--output-dir", str(tmp_path), "--rows", "100"])
        assert sorted(os.listdir(tmp_path)) == [output_lock.LOCK_FILE, output_lock.HOLDER_FILE]
    finally:
        holder.kill()
        holder.wait()


def test_the_lock_of_a_killed_run_is_taken_over(tmp_path, caplog):
    holder = _start_holder(tmp_path)
    holder.send_signal(signal.SIGKILL)  # no clean-up runs: the holder record stays, the OS drops the lock
    holder.wait()
    with output_lock.hold(str(tmp_path), ["second"]):
        with open(tmp_path / output_lock.HOLDER_FILE) as f:
            assert json.load(f)["command"] == "second"
    assert f"Taking over {tmp_path} from a run that is no longer running (pid {holder.pid}" in caplog.text
    assert not (tmp_path / output_lock.HOLDER_FILE).exists()  # a clean end removes the record
    with output_lock.hold(str(tmp_path)):  # and the folder is free again
        pass
