"""The user's own model as the baseline: a Keras file, or a version in the MLflow registry.

`resolve` turns `baseline.from` into an `Origin`: the file and its md5, or the registered
version an alias points at now. The `resolve-baseline` stage writes it where DVC sees it,
so a changed file or a moved alias re-runs the baseline and everything after it. `load`
reads the model the origin names and adopts it: how it reads the data (its input
contract), which label each output unit is, and its own compiled optimizer and loss.

Keras and MLflow are imported inside the functions that need them, for start-up time only:
resolve-baseline runs at every `dvc repro` and must answer in about a second.
"""

from __future__ import annotations

import dataclasses
import json
import re
import tempfile
from pathlib import Path
from typing import Any

from retrainlab.base import layout
from retrainlab.config import REGISTRY_URI, TRAIN, Params
from retrainlab.data import Prepared
from retrainlab.base.errors import ModelShapeError, RetrainlabError
from retrainlab.base.files import file_md5, write_text_atomically

KERAS_FLAVOR_FILE = Path("data") / "model.keras"  # where MLflow's Keras flavour saves the model


class ModelSourceError(RetrainlabError):
    """`baseline.from` names a file or a registry URI that cannot be used."""


@dataclasses.dataclass(frozen=True)
class Origin:
    """Where the baseline comes from, resolved."""

    spec: str  # baseline.from as written
    kind: str  # "train", "file" or "registry"
    md5: str | None = None  # file: its content
    name: str | None = None  # registry: the registered model,
    version: str | None = None  # the version the URI resolves to now,
    run_id: str | None = None  # and the run that logged it

    @property
    def brought(self) -> bool:
        return self.kind != TRAIN

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Origin:
        return cls(**raw)


def resolve(params: Params, root: Path) -> Origin:
    """What `baseline.from` names now: for a file its md5, for a registry URI the version."""
    spec = params.baseline.from_
    if spec == TRAIN:
        return Origin(spec, TRAIN)
    match = REGISTRY_URI.fullmatch(spec)
    if match is None:
        return Origin(spec, "file", md5=_file_md5(root / spec, spec))
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


def load(origin: Origin, data: Prepared, params: Params, root: Path):
    """The model `origin` names, adopted for `data`: a ModelBundle."""
    from retrainlab.models import ModelBundle

    if origin.kind == "file":
        return adopt(root / origin.spec, data, params, origin.spec)
    with tempfile.TemporaryDirectory() as scratch:
        local = _download(origin, Path(scratch))
        bundle_dir = _bundle_dir(local)
        if bundle_dir is not None:  # retrainlab's own: it knows its columns and labels
            bundle = ModelBundle.load(bundle_dir)
            _check_columns(bundle, data, origin.spec)
            return dataclasses.replace(bundle, compiled=None)
        if (local / KERAS_FLAVOR_FILE).is_file():  # logged by someone else with MLflow's Keras flavour
            return adopt(local / KERAS_FLAVOR_FILE, data, params, origin.spec)
    raise ModelSourceError(
        f"{origin.spec} (version {origin.version}) is neither a retrainlab model nor a Keras model logged with "
        "mlflow.keras.log_model (no data/model.keras); log it with the Keras flavour"
    )


def _bundle_dir(local: Path) -> Path | None:
    """Where a retrainlab model keeps its bundle (model.keras, meta.json), from its MLmodel."""
    import yaml

    from retrainlab.tracking.pyfunc_model import BUNDLE_ARTIFACT

    try:
        flavor = yaml.safe_load((local / "MLmodel").read_text())["flavors"]["python_function"]
        found = local / flavor["artifacts"][BUNDLE_ARTIFACT]["path"]
    except (OSError, KeyError, TypeError, yaml.YAMLError):
        return None
    return found if (found / "meta.json").is_file() else None


def _download(origin: Origin, directory: Path) -> Path:
    """The version's files: checked against their registered digest when they have one."""
    import mlflow.artifacts
    from mlflow.tracking import MlflowClient

    from retrainlab.registry import promotion
    from retrainlab.tracking.pyfunc_model import MODEL_DIGEST_TAG

    client = MlflowClient()
    if MODEL_DIGEST_TAG in client.get_model_version(origin.name, origin.version).tags:
        return promotion.verified_copy(origin.name, origin.version, directory)
    uri = client.get_model_version_download_uri(origin.name, origin.version)
    try:
        return Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(directory)))
    except Exception as exc:  # missing files, an unreachable store
        raise ModelSourceError(f"{origin.spec}: the files of version {origin.version} cannot be read from {uri} "
                               f"({type(exc).__name__}); restore them or set baseline.from") from None


def adopt(path: Path, data: Prepared, params: Params, where: str):
    """A brought Keras file as a ModelBundle: its weights finite, how it reads the columns,
    which label each output unit is (data.labels in order, else the initial data's labels
    sorted), its output read as class probabilities, and the optimizer and loss it was
    compiled with (`where` names it in errors)."""
    from retrainlab.models import (
        ModelBundle, check_output_width, compile_config, detect_contract, load_keras, probability_output,
    )

    model = load_keras(path, "restore a good copy or retrain it, or set baseline.from to another Keras 3 file "
                             "(saved with model.save('....keras'))", shown=where)
    contract = detect_contract(model, data.features, where)
    known = data.classes("initial_train", "initial_test")
    labels = typed_labels(params.data.labels, known) if params.data.labels else known
    check_output_width(model, labels, where)
    unknown = [label for label in known if label not in labels]
    if unknown:
        raise ModelShapeError(f"{where}: the initial data has label {unknown[0]!r}, which data.labels does not list; "
                              "list every label the model outputs, in output order")
    model, compiled = probability_output(model, compile_config(path), where)
    return ModelBundle(model, data.features, labels, data.label, contract, compiled)


def typed_labels(listed: list, known: list) -> list:
    """data.labels typed as prepare typed the data's labels: numbers (whole ones as int) or text."""
    if not (known and all(isinstance(k, (int, float)) for k in known)):
        return [str(v) for v in listed]
    whole = all(isinstance(k, int) for k in known)

    def number(value):
        text = str(value).strip()
        if whole and re.fullmatch(r"[+-]?\d+", text):
            return int(text)  # exactly: through float, integers beyond 2**53 would merge
        as_float = float(text)
        return int(as_float) if whole and as_float.is_integer() else as_float

    try:
        return [number(v) for v in listed]
    except ValueError:
        raise ModelSourceError(f"parameter 'data.labels' lists {listed}, but the data's labels are numbers") from None


def label_order(params: Params) -> str:
    """What the run says of the output order."""
    return "data.labels" if params.data.labels else "the initial data's labels, sorted"


def _check_columns(bundle, data: Prepared, where: str) -> None:
    theirs = {f.name: f.kind for f in bundle.features}
    ours = {f.name: f.kind for f in data.features}
    for name, kind in theirs.items():
        if ours.get(name) != kind:
            problem = "has no column" if name not in ours else f"has it as {ours[name]}, not {kind}"
            raise ModelSourceError(f"{where}: the model reads column '{name}' but the data {problem}; "
                                   "give the new data the columns the model was trained on")
    if bundle.label_column != data.label:
        raise ModelSourceError(f"{where}: the model predicts '{bundle.label_column}' but the data's label column is "
                               f"'{data.label}'; set data.files.label")
