"""The user's own model as the baseline: where its `Origin` says its files are (a Keras file,
or a version in the MLflow registry: retrainlab's own, or one logged with MLflow's Keras
flavour), then opened for the data by the models' one entry (retrainlab.models.loading)."""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

import mlflow.artifacts
import yaml
from mlflow.tracking import MlflowClient

from retrainlab.base.errors import ModelSourceError
from retrainlab.config import Params
from retrainlab.data import Prepared
from retrainlab.measure.record import Origin
from retrainlab.models.loading import adopt, open_bundle
from retrainlab.registry import promotion
from retrainlab.tracking.pyfunc_model import BUNDLE_ARTIFACT, MODEL_DIGEST_TAG

KERAS_FLAVOR_FILE = Path("data") / "model.keras"  # where MLflow's Keras flavour saves the model


def load(origin: Origin, data: Prepared, params: Params, root: Path):
    """The model `origin` names, adopted for `data`: a ModelBundle."""
    if origin.kind == "file":
        return adopt(root / origin.spec, data, params, origin.spec)
    with tempfile.TemporaryDirectory() as scratch:
        local = _download(origin, Path(scratch))
        bundle_dir = _bundle_dir(local)
        if bundle_dir is not None:  # retrainlab's own: it knows its columns and labels
            return dataclasses.replace(open_bundle(bundle_dir, data, origin.spec), compiled=None)
        if (local / KERAS_FLAVOR_FILE).is_file():  # logged by someone else with MLflow's Keras flavour
            return adopt(local / KERAS_FLAVOR_FILE, data, params, origin.spec)
    raise ModelSourceError(
        f"{origin.spec} (version {origin.version}) is neither a retrainlab model nor a Keras model logged with "
        "mlflow.keras.log_model (no data/model.keras); log it with the Keras flavour"
    )


def _bundle_dir(local: Path) -> Path | None:
    """Where a retrainlab model keeps its bundle (model.keras, meta.json), from its MLmodel."""
    try:
        flavor = yaml.safe_load((local / "MLmodel").read_text())["flavors"]["python_function"]
        found = local / flavor["artifacts"][BUNDLE_ARTIFACT]["path"]
    except (OSError, KeyError, TypeError, yaml.YAMLError):
        return None
    return found if (found / "meta.json").is_file() else None


def _download(origin: Origin, directory: Path) -> Path:
    """The version's files: checked against their registered digest when they have one."""
    client = MlflowClient()
    if MODEL_DIGEST_TAG in client.get_model_version(origin.name, origin.version).tags:
        return promotion.verified_copy(origin.name, origin.version, directory)
    uri = client.get_model_version_download_uri(origin.name, origin.version)
    try:
        return Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(directory)))
    except Exception as exc:  # missing files, an unreachable store
        raise ModelSourceError(f"{origin.spec}: the files of version {origin.version} cannot be read from {uri} "
                               f"({type(exc).__name__}); restore them or set baseline.from") from None
