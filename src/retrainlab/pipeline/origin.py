"""Where the baseline comes from: `baseline.from` resolved to an `Origin`, the file and its
md5, or the registered version an alias points at now. The `resolve-baseline` stage writes
it where DVC sees it (`write_origin`), so a changed file or a moved alias re-runs the
baseline and everything after it; it runs at every `dvc repro` and answers in about a
second, so MLflow is imported only to resolve a registry URI.
"""

from __future__ import annotations

import json
from pathlib import Path

from retrainlab.base import layout
from retrainlab.base.errors import ModelSourceError
from retrainlab.base.files import file_md5, write_text_atomically
from retrainlab.config import REGISTRY_URI, TRAIN, Params
from retrainlab.measure.record import Origin


def resolve(params: Params, root: Path) -> Origin:
    """What `baseline.from` names now: for a file its md5, for a registry URI the version."""
    spec = params.baseline.from_
    if spec == TRAIN:
        return Origin(spec, TRAIN)
    match = REGISTRY_URI.fullmatch(spec)
    if match is None:
        return Origin(spec, "file", md5=_file_md5(root / spec, spec))
    # start-up: MLflow only for a registry URI (resolve-baseline runs at every dvc repro)
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    from retrainlab.tracking import store

    store.configure(params.tracking.experiment, store.project_root(root))
    client = MlflowClient()
    name, alias, version = match["name"], match["alias"], match["version"]
    try:
        found = client.get_model_version_by_alias(name, alias) if alias else client.get_model_version(name, version)
    except MlflowException:
        what = f"alias '{alias}'" if alias else f"version {version}"
        raise ModelSourceError(
            f"parameter 'baseline.from' is {spec!r}, but model '{name}' has no {what} in "
            f"{store.shown_tracking_uri()}; promote a version first (retrainlab promote) or set baseline.from"
        ) from None
    return Origin(spec, "registry", name=name, version=str(found.version), run_id=found.run_id)


def _file_md5(path: Path, spec: str) -> str:
    if not path.is_file():
        where = "is a directory" if path.is_dir() else "not found"
        raise ModelSourceError(f"{spec}: {where}; set baseline.from to a Keras 3 .keras file, a registry URI or train")
    return file_md5(path)

def write_origin(origin: Origin, root: Path) -> None:
    """What the resolve-baseline stage outputs: unchanged unless the file or the alias moved."""
    write_text_atomically(root / layout.BASELINE_ORIGIN, json.dumps(origin.to_json(), indent=2) + "\n")

def recorded_origin(params: Params, root: Path) -> Origin:
    """The origin the resolve-baseline stage recorded for these params, else resolved now."""
    path = root / layout.BASELINE_ORIGIN
    if path.is_file():
        origin = Origin.from_json(json.loads(path.read_text()))
        if origin.spec == params.baseline.from_:
            return origin
    return resolve(params, root)
