"""The project's own errors: each message is one line naming the file, column or parameter."""


class RetrainlabError(Exception):
    """An error the user can fix; the CLI prints it as one line and exits non-zero."""


class ConfigError(RetrainlabError, ValueError):
    """A parameter is missing, misspelt, of the wrong type or out of range."""


class DataError(RetrainlabError, ValueError):
    """An input file or column cannot be used as it is."""


class PipelineError(RetrainlabError):
    """A step was run before the step it builds on."""


class ModelShapeError(RetrainlabError):
    """A model that does not fit the data or the surgery asked of it: its inputs, its output
    width or its head. The message names the input, column or layer and what to do."""


class ModelSourceError(RetrainlabError):
    """`baseline.from` names a file or a registry URI that cannot be used."""


class ModelFileError(PipelineError):
    """A saved model that cannot be read: named with the reason and the way back."""

    def __init__(self, path, exc: Exception, remedy: str | None = None) -> None:
        reason = (str(exc).splitlines() or [""])[0][:200] or type(exc).__name__
        remedy = remedy or "restore it with `dvc checkout` or rebuild it with `dvc repro --force` of its stage"
        super().__init__(f"{path}: cannot be loaded ({type(exc).__name__}: {reason}); {remedy}")


class UnusableModel(RetrainlabError):
    """A model whose weights are not all finite: it predicts NaN (or hides it), so it must not
    be evaluated as a model, trained further, registered, promoted or served. `where` names
    it, `detail` says what is wrong, `remedy` what to do."""

    def __init__(self, where: str, detail: str, remedy: str) -> None:
        super().__init__(f"{where}: {detail}; {remedy}")
        self.where, self.detail, self.remedy = where, detail, remedy


class TrainingError(RetrainlabError):
    """Training produced a model that must not be used: its loss or predictions are not finite."""


class Terminated(BaseException):
    """SIGTERM or SIGINT (Ctrl-C) arrived: unwind, closing every open MLflow run as KILLED."""

    def __init__(self, signum: int = 15) -> None:
        super().__init__(signum)
        self.signum = signum


# The signal that asked this process to stop, once one has (cli.main's handler records it).
_stop: list[int] = []


def stop_asked(signum: int) -> bool:
    """Record that `signum` asked this process to stop; True the first time only."""
    first = not _stop
    if first:
        _stop.append(signum)
    return first


def raise_if_stop_asked() -> None:
    """Raise Terminated again where a stop was asked for and the work it stops still goes on.

    The signal handler raises Terminated wherever the signal lands, and a library can swallow
    it there: Keras turns each batch's logs into numbers inside a bare `except: pass`
    (keras.src.utils.python_utils.pythonify_logs, after every batch), so a Ctrl-C that landed
    there vanished, and the step, which ignores a second stop, trained on to FINISHED. Called
    where nothing swallows it: after each batch, and before a run is closed."""
    if _stop:
        raise Terminated(_stop[0])


def forget_stop() -> None:
    """No stop asked: a command starts afresh, in a process where an earlier one (a test's) was stopped."""
    _stop.clear()
