"""A quiet console for local runs (issue 14): what the user reads is one line per step and the summary; everything
else goes to `<output-dir>/run.log`.

By default the console gets:
- each step's start and end with its wall time (or "cached"), from TFX's LocalDagRunner log lines;
- warnings and errors, except KNOWN_HARMLESS ones (still in run.log), and Python warnings (in run.log only);
- what writes to stdout itself: Keras' per-epoch progress, the end-of-run summary.
`verbose=True` (`local_runner.py --verbose`) prints every INFO line again, as TFX, Beam and TensorFlow write them.
"""
from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from typing import Iterator, TextIO

from absl import logging as absl_logging

LOG_FILE = "run.log"
# Warnings the libraries repeat on every run that ask nothing of the user (each is in run.log).
KNOWN_HARMLESS = (
    "Tables initialized inside a tf.function",  # TF Transform, once per traced function (hundreds)
    "ArtifactQuery.property_predicate is not supported",  # TFX's resolver on the local orchestrator
    "Examples artifact does not have payload_format",  # TFX reading Transform's output
    "Couldn't find python-snappy",  # Beam's TFRecord CRC: a speed note
    "From ",  # TensorFlow's deprecation notices about library code ("From <file>: <function> is deprecated")
)
# TFX's LocalDagRunner and launcher messages (tfx/orchestration/local/local_dag_runner.py, portable/launcher.py).
_STARTED, _FINISHED, _CACHED = "Component %s is running.", "Component %s is finished.", "A cached execution %d is used."


class QuietConsoleFilter(logging.Filter):
    """Passes a record to the console unless it is a Python warning or one of KNOWN_HARMLESS."""

    def filter(self, record: logging.LogRecord) -> bool:
        """False for a Python warning or a KNOWN_HARMLESS message."""
        if record.name == "py.warnings":
            return False
        message = record.getMessage()
        return not any(message.startswith(harmless) for harmless in KNOWN_HARMLESS)


class StepProgress(logging.Handler):
    """Prints "<step> ..." when a pipeline step starts and "<step> done in N s" (or "cached") when it ends."""

    def __init__(self, stream: TextIO):
        super().__init__(logging.INFO)
        self._stream = stream
        self._started: dict[str, float] = {}
        self._cached: set[str] = set()
        self._current: str | None = None

    def emit(self, record: logging.LogRecord) -> None:
        """Prints the progress line of a LocalDagRunner start, cache hit or finish record; ignores the others."""
        node = str(record.args[0]) if isinstance(record.args, tuple) and record.args else ""
        if record.msg == _STARTED:
            self._current = node
            self._started[self._current] = time.monotonic()
            self._print(f"{self._current} ...")
        elif record.msg == _CACHED and self._current:
            self._cached.add(self._current)
        elif record.msg == _FINISHED:
            seconds = time.monotonic() - self._started.get(node, time.monotonic())
            self._print(f"{node} cached" if node in self._cached else f"{node} done in {seconds:.1f} s")

    def _print(self, line: str) -> None:
        self._stream.write(f"{time.strftime('%H:%M:%S')} {line}\n")
        self._stream.flush()


@contextlib.contextmanager
def quiet_console(output_dir: str, verbose: bool = False) -> Iterator[str]:
    """Within the block, the root logger writes INFO and above to `<output_dir>/run.log` and the console gets what
    the module docstring lists; on exit the logging set-up is restored. Yields the log file's path."""
    os.makedirs(output_dir, exist_ok=True)
    path = os.path.join(output_dir, LOG_FILE)
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    file_handler = logging.FileHandler(path, mode="w")  # the last run's log
    file_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    console = logging.StreamHandler(sys.stderr)
    console.setLevel(logging.INFO if verbose else logging.WARNING)
    console.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    if not verbose:
        console.addFilter(QuietConsoleFilter())
    handlers: list[logging.Handler] = [file_handler, console]
    if not verbose:
        handlers.append(StepProgress(sys.stdout))
    for handler in saved_handlers:
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(logging.INFO)
    # TFX logs a step's start and end through absl at INFO. absl's verbosity defaults to WARNING, and TensorFlow's
    # SavedModel export sets it back to that after silencing it (tensorflow/python/trackable/autotrackable.py), which
    # would drop every progress line after the first export: pin it at INFO for the run.
    saved_verbosity = absl_logging.get_verbosity()
    absl_logging.set_verbosity(absl_logging.INFO)
    # Libraries with a console handler of their own (TensorFlow's "tensorflow" logger): through the root's instead.
    own_handlers = {logger: (list(logger.handlers), logger.propagate)
                    for logger in map(logging.getLogger, list(logging.Logger.manager.loggerDict))
                    if logger.handlers}
    for logger in own_handlers:
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
        logger.propagate = True
    logging.captureWarnings(True)
    try:
        yield path
    finally:
        logging.captureWarnings(False)
        absl_logging.set_verbosity(saved_verbosity)
        for logger, (logger_handlers, propagate) in own_handlers.items():
            for handler in logger_handlers:
                logger.addHandler(handler)
            logger.propagate = propagate
        for handler in handlers:
            root.removeHandler(handler)
            handler.close()
        for handler in saved_handlers:
            root.addHandler(handler)
        root.setLevel(saved_level)
