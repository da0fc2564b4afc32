"""The project's own errors: each message is one line naming the file, column or parameter."""


class RetrainlabError(Exception):
    """An error the user can fix; the CLI prints it as one line and exits non-zero."""


class ConfigError(RetrainlabError, ValueError):
    """A parameter is missing, misspelt, of the wrong type or out of range."""


class DataError(RetrainlabError, ValueError):
    """An input file or column cannot be used as it is."""


class PipelineError(RetrainlabError):
    """A step was run before the step it builds on."""


class Terminated(BaseException):
    """SIGTERM arrived: unwind like Ctrl-C, closing every open MLflow run as KILLED."""
