"""The quiet console of local runs (pipeline/run_log.py): what reaches the console, what only run.log gets."""
import logging
import warnings

from pipeline import run_log


def test_the_console_gets_steps_and_warnings_and_the_log_file_gets_everything(tmp_path, capsys):
    library = logging.getLogger("some_library")
    own_handler = logging.StreamHandler()
    library.addHandler(own_handler)
    library.propagate = False
    tfx_log = logging.getLogger("absl")
    try:
        with run_log.quiet_console(str(tmp_path), verbose=False) as path:
            tfx_log.info(run_log._STARTED, "Transform")
            tfx_log.info(run_log._CACHED, 12)
            tfx_log.info(run_log._FINISHED, "Transform")
            tfx_log.info(run_log._STARTED, "Trainer")
            tfx_log.info(run_log._FINISHED, "Trainer")
            library.info("an INFO line of a library")
            library.warning("Tables initialized inside a tf.function  will be re-initialized")
            library.warning("a warning the user should read")
            warnings.warn("a Python warning of a client library", UserWarning, stacklevel=1)
        assert library.handlers == [own_handler] and library.propagate is False  # restored
    finally:
        library.removeHandler(own_handler)
        library.propagate = True
    out, err = capsys.readouterr()
    lines = [line.split(" ", 1)[1] for line in out.splitlines()]  # without the time
    assert lines[0] == "Transform ..." and lines[1] == "Transform cached"
    assert lines[2] == "Trainer ..." and lines[3].startswith("Trainer done in ") and lines[3].endswith(" s")
    assert err.splitlines() == ["WARNING some_library: a warning the user should read"]
    with open(path) as f:
        logged = f.read()
    for text in ("an INFO line of a library", "Tables initialized", "a warning the user should read",
                 "a Python warning of a client library", "Component Transform is running."):
        assert text in logged, text


def test_verbose_prints_every_info_line(tmp_path, capsys):
    with run_log.quiet_console(str(tmp_path), verbose=True):
        logging.getLogger("another_library").info("an INFO line of a library")
    assert capsys.readouterr().err.splitlines() == ["INFO another_library: an INFO line of a library"]
