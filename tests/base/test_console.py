"""The console: the project's lines by level on stdout and stderr, the libraries' chatter left
out unless asked for. tests/e2e/test_pipeline.py counts a real `dvc repro`'s stderr lines."""

import logging
import os
import re
import sys

import pytest

from retrainlab import cli
from retrainlab.base import console

NOTICE = console.NATIVE_NOTICE + "\n"
ONEDNN = "I0000 00:00:1795760472.435860   26041 port.cc:153] oneDNN custom operations are on.\n"
NODE_DEF = "E0000 00:00:1795760486.407982   26041 node_def_util.cc:682] NodeDef mentions attribute x\n"
FATAL = "F0000 00:00:1795760486.407982   26041 op.cc:1] Check failed\n"


@pytest.fixture
def clean(monkeypatch):
    """The environment a user has (no levels set), and the logging set-up restored after."""
    for name in (console.VERBOSE, console.TF_LEVEL, "MLFLOW_LOGGING_LEVEL"):
        monkeypatch.setenv(name, "")  # recorded, so that what `configure` exports is undone after
        monkeypatch.delenv(name)
    root = logging.getLogger()
    handlers = list(root.handlers)
    levels = {name: logging.getLogger(name).level for name in ("retrainlab", "mlflow", "tensorflow")}
    yield
    root.handlers = handlers
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


def test_info_goes_to_stdout_and_warnings_to_stderr_as_plain_lines(clean, capsys):
    console.configure()
    logging.getLogger("retrainlab.somewhere").info("seed 1/3 (seed 0): 30 epochs on 1,000 rows")
    logging.getLogger("retrainlab.somewhere").warning("careful")
    logging.getLogger("some.library").warning("deprecated")
    logging.getLogger("some.library").info("chatter")  # below the root's WARNING: left out
    out, err = capsys.readouterr()
    assert out == "seed 1/3 (seed 0): 30 epochs on 1,000 rows\n"
    assert err == "careful\nsome.library: warning: deprecated\n"


def test_configuring_twice_keeps_one_handler(clean):
    console.configure()
    console.configure()
    assert sum(isinstance(h, console.ConsoleHandler) for h in logging.getLogger().handlers) == 1


def test_quiet_by_default_keeping_the_levels_a_user_set(clean, monkeypatch):
    monkeypatch.setenv("MLFLOW_LOGGING_LEVEL", "INFO")
    assert console.configure() is False
    assert os.environ[console.TF_LEVEL] == "3"
    assert os.environ["MLFLOW_LOGGING_LEVEL"] == "INFO"
    assert logging.getLogger("tensorflow").level == logging.ERROR
    monkeypatch.setenv(console.TF_LEVEL, "1")
    monkeypatch.delenv("MLFLOW_LOGGING_LEVEL")
    console.configure()
    assert os.environ[console.TF_LEVEL] == "1" and os.environ["MLFLOW_LOGGING_LEVEL"] == "WARNING"
    assert logging.getLogger("mlflow").level == logging.WARNING


@pytest.mark.parametrize("argv", [["--verbose", "prepare"], ["prepare", "--verbose"]])
def test_verbose_before_or_after_the_step_sets_nothing_and_reaches_child_processes(clean, argv):
    parser = cli._parser()
    cli._add_verbose(parser)
    assert console.configure(parser.parse_args(argv).verbose) is True
    assert os.environ[console.VERBOSE] == "1"
    assert console.TF_LEVEL not in os.environ and "MLFLOW_LOGGING_LEVEL" not in os.environ


@pytest.mark.parametrize("value, loud", [("1", True), ("yes", True), ("0", False), ("false", False), ("", False)])
def test_the_environment_variable_asks_for_everything(clean, monkeypatch, value, loud):
    monkeypatch.setenv(console.VERBOSE, value)
    assert console.configure() is loud
    assert (console.TF_LEVEL in os.environ) is not loud


@pytest.mark.parametrize(
    "level, kept",
    [
        (0, [NOTICE, ONEDNN, NODE_DEF, FATAL]),
        (1, [NODE_DEF, FATAL]),
        (3, [FATAL]),
    ],
)
def test_native_lines_below_the_level_are_left_out(level, kept):
    dropped = console.native_noise(level)
    lines = [NOTICE, ONEDNN, NODE_DEF, FATAL, "Traceback (most recent call last):\n"]
    assert [line for line in lines if not dropped(line)] == [*kept, lines[-1]]


def test_file_descriptor_2_is_filtered_and_the_rest_written_after(capfd):
    with console.filtered_fd2(console.native_noise(3)):
        os.write(2, (NOTICE + ONEDNN + "a real problem\n").encode())
    assert capfd.readouterr().err == "a real problem\n"


def test_printed_notes_are_dropped_unless_verbose(clean, monkeypatch, capsys):
    notes = re.compile(r"^Created version ")
    for verbose in ("", "1"):
        monkeypatch.setenv(console.VERBOSE, verbose)
        with console.dropping(notes):
            print("Created version '3' of model 'm'.", file=sys.stderr)
            print("a warning", file=sys.stderr)
    assert capsys.readouterr().err == "a warning\nCreated version '3' of model 'm'.\na warning\n"
