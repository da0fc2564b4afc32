"""The logged model as MLflow sees it: raw feature columns in, original labels out.

`mlflow.pyfunc.load_model("models:/NAME/VERSION").predict(frame)` and
`mlflow models serve` both come through here. The Keras model is read in its native
format with safe mode on; this class holds no data, only how to read the bundle.

Loading a logged model runs its `model_code.py`, so whoever can write the artifact store
could run code wherever a model is loaded. The registry is what we trust: each version
carries the sha256 of its files (MODEL_DIGEST_TAG), taken when it was registered, and
`registry.measure` loads only a downloaded copy whose digest matches it (`mlflow models
serve` reads the store as it is, unchecked).
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from pathlib import Path

import mlflow.artifacts
import mlflow.pyfunc
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

from retrainlab.data import values

BUNDLE_ARTIFACT = "bundle"
MODEL_DIGEST_TAG = "retrainlab.model_sha256"
LOAD_NOTE = "registered_model_meta"


class RetrainlabModel(mlflow.pyfunc.PythonModel):
    def load_context(self, context) -> None:
        # start-up: Keras only when a model is loaded, not when the registry reads this module's names
        from retrainlab.models.bundle import ModelBundle

        self.bundle = ModelBundle.load(Path(context.artifacts[BUNDLE_ARTIFACT]))

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        """Each row's label; an empty request gets an empty answer, and a row that training
        would not use (retrainlab.data.values) an MLflow error naming the column and the value,
        which `mlflow models serve` answers with a 400 and that one line."""
        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        if frame.empty:
            return pd.DataFrame({self.bundle.label_column: []})
        refused = unusable_rows(frame, self.bundle.features)
        if refused:
            raise MlflowException(refused, error_code=INVALID_PARAMETER_VALUE)
        labels = self.bundle.predict_labels(frame)
        return pd.DataFrame({self.bundle.label_column: list(labels)})


def unusable_rows(frame: pd.DataFrame, features) -> str | None:
    """Why rows of a request cannot be answered, in one line; None when every row is usable:
    a feature column missing, or a value training would not use."""
    absent = [f.name for f in features if f.name not in frame.columns]
    if absent:
        return f"no column {absent[0]!r}, which the model reads; send every feature column"
    typed, _ = values.features(frame, features)
    if typed.notna().all(axis=None):
        return None
    why = values.unusable(frame[[f.name for f in features]], typed)
    return (f"{'; '.join(why[:3])}: training uses no such row, so the model answers none; send every feature "
            "column filled with a number float32 holds, or a text")


def download_model(artifact_uri: str, directory: Path) -> tuple[Path, str]:
    """Download a logged model's files (its artifact location, not a `models:/` URI, which
    adds a file of its own) into `directory`; return where they are and their digest."""
    local = Path(mlflow.artifacts.download_artifacts(artifact_uri=artifact_uri, dst_path=str(directory)))
    # Bytecode caches are Python's, not the model's: loading a model in place (a local store
    # served as it is) writes them into the store. None from the store is ever used: Python
    # would run a planted .pyc that claims to match its source.
    for cache in [p for p in local.rglob("__pycache__") if p.is_dir()]:
        shutil.rmtree(cache)
    return local, files_sha256(local)


def logged_model_sha256(artifact_uri: str) -> str:
    """The digest of a logged model's files, as a fresh download of them gives it."""
    with tempfile.TemporaryDirectory() as scratch:
        return download_model(artifact_uri, Path(scratch))[1]


def files_sha256(directory: Path) -> str:
    """sha256 over the sorted relative paths, sizes and bytes of every file under `directory`,
    less what loading the model writes into a local store in place: bytecode caches
    (`__pycache__/`) and MLflow's `registered_model_meta` (the name and version it was loaded
    by, as YAML; loading `models:/NAME/VERSION` from a local store writes it there)."""
    digest = hashlib.sha256()
    files = sorted(
        (p.relative_to(directory).as_posix(), p) for p in directory.rglob("*")
        if p.is_file() and "__pycache__" not in p.relative_to(directory).parts
        and p.relative_to(directory).as_posix() != LOAD_NOTE
    )
    for relative, path in files:
        digest.update(f"{relative}\0{path.stat().st_size}\0".encode())
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()
