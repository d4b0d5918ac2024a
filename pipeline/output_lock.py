"""One run at a time per output folder: a local run holds `<output dir>/.run.lock` from start to end, so two
runs never write one SQLite metadata store or one serving_model/ folder.

The lock is an OS file lock (the `filelock` package: fcntl.flock on Linux and macOS), which the kernel releases when
its process ends, however it ends: a run killed with SIGKILL leaves no lock behind, and the next run takes the folder
over (it logs whose it was). Who holds the lock is written beside it, in `.run.lock.json` (pid, start time, command
line), for the message a second run fails with. Local disks only: flock is not reliable on every network file
system.
"""
from __future__ import annotations

import contextlib
import datetime
import json
import logging
import os
import sys
from collections.abc import Iterator

import filelock

LOCK_FILE = ".run.lock"
HOLDER_FILE = ".run.lock.json"


class OutputFolderInUse(RuntimeError):
    """Another live run holds the output folder (the message names it)."""


def _holder(output_dir: str) -> dict | None:
    try:
        with open(os.path.join(output_dir, HOLDER_FILE)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def describe(holder: dict | None) -> str:
    """The holder record as "pid N, started T: COMMAND" (or a placeholder while it is being written)."""
    if not holder:
        return "a run that is starting"
    return f"pid {holder.get('pid')}, started {holder.get('started')}: {holder.get('command')}"


@contextlib.contextmanager
def hold(output_dir: str, command: list[str] | None = None) -> Iterator[None]:
    """Holds `output_dir`'s run lock for the `with` block (the folder is created if missing).

    Raises:
        OutputFolderInUse: another live process holds it; the message names its pid, start time and command.
    """
    os.makedirs(output_dir, exist_ok=True)
    lock = filelock.FileLock(os.path.join(output_dir, LOCK_FILE), timeout=0)
    try:
        lock.acquire()
    except filelock.Timeout:
        raise OutputFolderInUse(
            f"{output_dir} is in use by another run ({describe(_holder(output_dir))}). Two runs on one output folder "
            "would write the same metadata store: wait for it to finish, or give another --output-dir.") from None
    try:
        previous = _holder(output_dir)
        if previous:  # the lock was free, so its last holder is gone (finished badly, or killed)
            logging.warning("Taking over %s from a run that is no longer running (%s)", output_dir,
                            describe(previous))
        record = {"pid": os.getpid(), "started": datetime.datetime.now().isoformat(timespec="seconds"),
                  "command": " ".join(command if command is not None else sys.argv)}
        with open(os.path.join(output_dir, HOLDER_FILE), "w") as f:
            json.dump(record, f)
        yield
        os.remove(os.path.join(output_dir, HOLDER_FILE))
    finally:
        lock.release()
