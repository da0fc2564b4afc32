"""Keras files: loading one (safe mode, uncompiled, its weights finite), reading how it was
compiled, and copying a model through the format."""

from __future__ import annotations

import json
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import keras
import numpy as np

from retrainlab.base.errors import ModelFileError, UnusableModel

MODEL_FILE = "model.keras"


def load_keras(path: Path, remedy: str | None = None, shown: str | None = None) -> keras.Model:
    """A Keras 3 file loaded with safe mode on (a file that would run code, a Lambda layer, is
    refused) and uncompiled (`compile_config` reads how it was compiled), its weights finite.
    Errors name it as `shown` (default: its path) and end with `remedy`."""
    shown = shown or str(path)
    if path.is_file() and not zipfile.is_zipfile(path):  # Keras would call it "File not found"
        raise ModelFileError(shown, ValueError("not a .keras zip archive: damaged or truncated"), remedy)
    try:
        model = keras.saving.load_model(path, safe_mode=True, compile=False)
    except Exception as exc:  # Keras raises zip, HDF5, JSON and value errors alike
        raise ModelFileError(shown, exc, remedy) from None
    require_finite_weights(model, shown, remedy or "restore it with `dvc checkout` or rebuild it with "
                           "`dvc repro --force` of its stage")
    return model

def require_finite_weights(model: keras.Model, where: str, remedy: str) -> None:
    """The one check that a model's weights are all finite, for every model that enters: a
    brought one, one loaded from the outputs or the registry (promoted, served), one just
    trained. One NaN in a kernel makes a direct call return NaN for every row, while Keras'
    fused predict path can hide it, so the weights are looked at, not the predictions."""
    bad, total, first = 0, 0, None
    for variable in model.weights:
        values = np.asarray(variable.numpy())
        if values.dtype.kind != "f":
            continue  # counts and lookup tables
        finite = np.isfinite(values)
        total += values.size
        if not finite.all():
            bad += int(values.size - finite.sum())
            first = first or variable.path
    if bad:
        raise UnusableModel(where, f"{bad:,} of its {total:,} weights are not finite (NaN or inf; the first in "
                                   f"{first}): it would predict nothing usable", remedy)

def compile_config(path: Path) -> dict[str, Any] | None:
    """The optimizer and loss a .keras file was saved compiled with, read from its config.json
    (without compiling: loading compiled rebuilt an optimizer Keras then warned it could not
    fill), or None where it was saved uncompiled or with objects Keras cannot rebuild safely."""
    try:
        with zipfile.ZipFile(path) as archive:
            compiled = json.loads(archive.read("config.json")).get("compile_config") or {}
        keras.optimizers.deserialize(compiled["optimizer"])
        if isinstance(compiled.get("loss"), str):
            keras.losses.get(compiled["loss"])  # an alias ("mae") too, which deserialize refuses
        elif compiled.get("loss") is not None:
            keras.losses.deserialize(compiled["loss"])
    except Exception:  # not compiled, or a custom optimizer or loss: trained with the params'
        return None
    return {"optimizer": compiled["optimizer"], "loss": compiled.get("loss")}


def copy_model(model: keras.Model) -> keras.Model:
    """A copy with the same weights and state and no layer shared with `model`, so that
    updating one strategy's model never changes another's in the same process.

    Through Keras' own file format, not `clone_model`: an adapted lookup layer keeps its
    vocabulary there (as an asset), where a clone would lose it."""
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / MODEL_FILE
        model.save(path)
        return keras.saving.load_model(path, safe_mode=True, compile=False)
