"""Where the baseline comes from: `baseline.from` resolved to an `Origin`, the file and its
md5, or the registered version an alias points at now. The `resolve-baseline` stage writes
it where DVC sees it (`write_origin`), so a changed file or a moved alias re-runs the
baseline and everything after it; it runs at every `dvc repro` and answers in about a
second, so MLflow is imported only to resolve a registry URI. A model named elsewhere
(`check --model`) is resolved here too, as a `Source` that says where it was given: each
message names that place, the flag or the parameter as written.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import re
from pathlib import Path

from retrainlab.base import layout
from retrainlab.base.errors import ModelSourceError
from retrainlab.base.files import file_md5, write_text_atomically
from retrainlab.config import REGISTRY_URI, TRAIN, Params
from retrainlab.measure.record import Origin


@dataclasses.dataclass(frozen=True)
class Source:
    """A model source as the user gave it, and where: every message about it names that
    place (the parameter as written, or a flag), so that the fix goes where the value came
    from, not to a parameter the user never set."""

    spec: str
    given: str  # how it was given, a clause: "parameter 'baseline.from' is 'x'", "--model is 'x'"
    change: str  # how to give another: "set baseline.from"
    remedy: str  # that, with the forms it takes


def of_params(params: Params) -> Source:
    """`baseline.from` as params.yaml gives it."""
    spec = params.baseline.from_
    return Source(spec, f"parameter 'baseline.from' is {spec!r}", "set baseline.from",
                  "set baseline.from to a Keras 3 .keras file, a registry URI or train")


def resolve(params: Params, root: Path, source: Source | None = None) -> Origin:
    """What `source` (by default `baseline.from`) names now: for a file its md5, for a
    registry URI the version."""
    source = source or of_params(params)
    if source.spec == TRAIN:
        return Origin(source.spec, TRAIN)
    match = REGISTRY_URI.fullmatch(source.spec)
    if match is None:
        return Origin(source.spec, "file", md5=_file_md5(root / source.spec, source))
    return _registered(source, match, params.tracking.experiment, root)


def _registered(source: Source, match: re.Match, experiment: str, root: Path) -> Origin:
    """The version a registry URI names now. A project with no store yet has no version to
    name, and none is made to say so; one whose store is gone is told that (store_exists)."""
    # start-up: MLflow only for a registry URI (resolve-baseline runs at every dvc repro)
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    from retrainlab.tracking import store

    project = store.project_root(root)
    name, alias, version = match["name"], match["alias"], match["version"]
    found = None
    if store.store_exists(project):
        store.configure(experiment, project)
        client = MlflowClient()
        with contextlib.suppress(MlflowException):
            found = client.get_model_version_by_alias(name, alias) if alias else client.get_model_version(name, version)
    if found is None:
        what = f"alias '{alias}'" if alias else f"version {version}"
        raise ModelSourceError(
            f"{source.given}, but model '{name}' has no {what} in {store.shown_tracking_uri(project)}; promote a "
            f"version first (retrainlab promote) or {source.change}"
        )
    return Origin(source.spec, "registry", name=name, version=str(found.version), run_id=found.run_id)


def _file_md5(path: Path, source: Source) -> str:
    if not path.is_file():
        where = "is a directory" if path.is_dir() else "not found"
        raise ModelSourceError(f"{source.spec}: {where}; {source.remedy}")
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
