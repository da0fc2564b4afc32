"""retrainlab: measure whether to retrain, keep training, fine-tune or leave a model alone on new data."""

import importlib.metadata


def version() -> str:
    """The installed package's version (pyproject.toml's, through the package metadata)."""
    try:
        return importlib.metadata.version("retrainlab")
    except importlib.metadata.PackageNotFoundError:
        return "unknown (not installed: no package metadata)"
