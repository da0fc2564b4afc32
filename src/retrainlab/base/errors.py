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
