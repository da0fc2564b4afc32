"""The console: what a step says, and the libraries' chatter it leaves out.

The project's own messages go through `logging` (loggers under "retrainlab"): INFO to stdout,
WARNING and above to stderr, as plain lines, so that a step that went well leaves stderr
empty. Unless `retrainlab --verbose` or RETRAINLAB_VERBOSE=1 asks for everything, this
leaves out:
- TensorFlow's C++ lines: TF_CPP_MIN_LOG_LEVEL=3 once its libraries are loaded, and the
  lines they write while loading (the oneDNN notice, absl's notice that it logs to stderr),
  which TensorFlow 2.21 writes before it reads that level (`load_tensorflow`);
- TensorFlow's Python warnings (retracing) and MLflow's INFO lines (MLFLOW_LOGGING_LEVEL);
- MLflow's registry notes, printed rather than logged (`dropping`).
A level the user set in the environment is kept. TF_ENABLE_ONEDNN_OPTS=0 would silence the
oneDNN notice too, but turns oneDNN off: the digits MLP trained no slower without it, a small
convolutional network (a brought model may be one) took 1.6x the CPU time.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import sys
import tempfile
from collections.abc import Callable, Iterator

from retrainlab.base import escape

VERBOSE = "RETRAINLAB_VERBOSE"
TF_LEVEL = "TF_CPP_MIN_LOG_LEVEL"
# An absl/glog line: severity, date, time, thread, file:line].
NATIVE_LINE = re.compile(r"^([IWEF])\d{4} [\d:.]+\s+\d+ [^\]]*\] ")
NATIVE_NOTICE = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"


def verbose() -> bool:
    """Whether the libraries' own output is wanted: RETRAINLAB_VERBOSE set to anything but 0/false/no."""
    return os.environ.get(VERBOSE, "").strip().lower() not in ("", "0", "false", "no")


class ConsoleHandler(logging.Handler):
    """INFO and below to stdout, WARNING and above to stderr, each stream looked up when a
    line is written (so a redirected or captured stream is honoured), flushed at once so
    the two stay in order in a log."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            stream = sys.stderr if record.levelno >= logging.WARNING else sys.stdout
            stream.write(self.format(record) + "\n")
            stream.flush()
        except Exception:
            self.handleError(record)

    def format(self, record: logging.LogRecord) -> str:
        text = escape.one_line(record.getMessage())  # a label or a file name cannot break the line
        if record.exc_info:
            text += "\n" + logging.Formatter().formatException(record.exc_info)
        ours = record.name == "retrainlab" or record.name.startswith("retrainlab.")
        return text if ours else f"{record.name}: {record.levelname.lower()}: {text}"


def configure(verbose_flag: bool = False) -> bool:
    """Set up the console once per command, before TensorFlow or MLflow load; return whether
    it is verbose. --verbose is exported as RETRAINLAB_VERBOSE, so the processes a command
    starts (`retrainlab run`'s step) are verbose too."""
    if verbose_flag:
        os.environ[VERBOSE] = "1"
    root = logging.getLogger()
    root.handlers = [h for h in root.handlers if not isinstance(h, ConsoleHandler)] + [ConsoleHandler()]
    logging.getLogger("retrainlab").setLevel(logging.INFO)
    loud = verbose()
    if not loud:
        os.environ.setdefault(TF_LEVEL, "3")
        if "MLFLOW_LOGGING_LEVEL" not in os.environ:
            os.environ["MLFLOW_LOGGING_LEVEL"] = "WARNING"  # read when MLflow is imported
            logging.getLogger("mlflow").setLevel(logging.WARNING)  # in case it is already
        logging.getLogger("tensorflow").setLevel(logging.ERROR)
    return loud


def native_noise(level: int) -> Callable[[str], bool]:
    """Whether a line of native stderr is one TF_CPP_MIN_LOG_LEVEL `level` would have left out."""

    def dropped(line: str) -> bool:
        found = NATIVE_LINE.match(line)
        if found:
            return "IWEF".index(found.group(1)) < level
        return level > 0 and line.rstrip("\n") == NATIVE_NOTICE

    return dropped


def load_tensorflow() -> None:
    """Import Keras and TensorFlow, leaving out what their native libraries write while
    loading below TF_CPP_MIN_LOG_LEVEL (TensorFlow applies the level only after)."""
    if verbose() or "tensorflow" in sys.modules:
        import keras  # noqa: F401  (start-up: what loads TensorFlow, on purpose, here only)
        return
    try:
        level = int(os.environ.get(TF_LEVEL, "0"))
    except ValueError:
        level = 0
    with filtered_fd2(native_noise(level)):  # start-up: TensorFlow loads here, its native lines filtered
        import keras  # noqa: F401
        import tensorflow  # noqa: F401


@contextlib.contextmanager
def filtered_fd2(dropped: Callable[[str], bool]) -> Iterator[None]:
    """Everything written to file descriptor 2 during the block (native libraries write
    there directly, past sys.stderr), less the lines `dropped` picks, written out after it."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as caught:
        os.dup2(caught.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            caught.seek(0)
            kept = [line for line in caught.read().decode(errors="replace").splitlines(True) if not dropped(line)]
            sys.stderr.write("".join(kept))
            sys.stderr.flush()


@contextlib.contextmanager
def dropping(pattern: re.Pattern) -> Iterator[None]:
    """Python's stderr during the block less the lines matching `pattern` (all of it when
    verbose): for a library's notes that it prints instead of logging."""
    if verbose():
        yield
        return
    caught = io.StringIO()
    try:
        with contextlib.redirect_stderr(caught):
            yield
    finally:
        kept = [line for line in caught.getvalue().splitlines(True) if not pattern.search(line)]
        sys.stderr.write("".join(kept))
