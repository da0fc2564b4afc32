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


class TrainingError(RetrainlabError):
    """Training produced a model that must not be used: its loss or predictions are not finite."""


class Terminated(BaseException):
    """SIGTERM or SIGINT (Ctrl-C) arrived: unwind, closing every open MLflow run as KILLED."""

    def __init__(self, signum: int = 15) -> None:
        super().__init__(signum)
        self.signum = signum
