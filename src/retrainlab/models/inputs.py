"""How a model reads the feature columns (`InputContract`): one input per column, named after
the columns (the keras-io structured-data style), or one float tensor of the feature columns
in order, reshaped to the model's input shape (preprocessed columns, images). The second
step of loading a model, after its file: a brought model's contract is read from its inputs
(`detect_contract`), a saved one's columns are checked against the data's (`check_columns`).
Everything but string inputs is backend-agnostic Keras 3; string inputs need TensorFlow.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
import pandas as pd

from retrainlab.base.errors import ModelShapeError, ModelSourceError
from retrainlab.data import NUMERIC, Feature, Prepared


@dataclasses.dataclass(frozen=True)
class ModelInput:
    """One input of a model that takes a column per input."""

    name: str  # the model's input name
    column: str  # the feature column it reads
    dtype: str  # "float32", "string", "int64", ...
    rank: int  # 2 for shape (batch, 1), 1 for shape (batch,)

@dataclasses.dataclass(frozen=True)
class InputContract:
    """How a model reads the feature columns: one input per column (`inputs`), or, with no
    inputs, one float32 tensor of every feature column in order, reshaped to `shape`.
    `bare`: the model has one input, named after its column, and takes it as a tensor, not
    in a dict (`keras.Model(text, ...)` rather than `keras.Model({"text": text}, ...)`)."""

    inputs: tuple[ModelInput, ...] = ()
    shape: tuple[int, ...] = ()
    bare: bool = False

    @classmethod
    def of_columns(cls, features: Sequence[Feature]) -> InputContract:
        """The contract of the project's own MLP: an input per column, named by `input_names`."""
        return cls(tuple(
            ModelInput(name, f.name, "float32" if f.kind == NUMERIC else "string", 2)
            for name, f in zip(input_names(features), features)
        ))

    def arrays(self, frame: pd.DataFrame, features: Sequence[Feature]) -> dict[str, np.ndarray] | np.ndarray:
        """The model's inputs as numpy arrays (text as object arrays)."""
        if not self.inputs:
            matrix = frame[[f.name for f in features]].to_numpy(dtype=np.float32)
            return matrix.reshape(-1, *self.shape)
        arrays = {}
        for spec in self.inputs:
            column = frame[spec.column]
            values = (column.astype(str).to_numpy(dtype=object) if spec.dtype == "string"
                      else column.to_numpy(dtype=spec.dtype))
            arrays[spec.name] = values.reshape(-1, 1) if spec.rank == 2 else values
        return arrays[self.inputs[0].name] if self.bare else arrays

    def tensor_specs(self):
        """The tf.data signature of `arrays`."""
        # TensorFlow only for string inputs: the rest of a model runs on any Keras backend
        import tensorflow as tf

        if not self.inputs:
            return tf.TensorSpec((None, *self.shape), tf.float32)
        specs = {
            spec.name: tf.TensorSpec((None, 1) if spec.rank == 2 else (None,), tf.dtypes.as_dtype(spec.dtype))
            for spec in self.inputs
        }
        return specs[self.inputs[0].name] if self.bare else specs

    def to_json(self) -> dict[str, Any]:
        return {"inputs": [dataclasses.asdict(i) for i in self.inputs], "shape": list(self.shape), "bare": self.bare}

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> InputContract:
        return cls(tuple(ModelInput(**i) for i in raw["inputs"]), tuple(raw["shape"]), bool(raw.get("bare", False)))

def input_names(features: Sequence[Feature]) -> list[str]:
    """Keras input names: column names made safe for graph names, kept unique by position."""
    return [f"in{i}_" + re.sub(r"\W", "_", f.name)[:40] for i, f in enumerate(features)]

def model_input(model: keras.Model):
    """The model's input structure: a functional model's (a dict stays a dict); a Sequential
    model has no `.input` of its own once loaded, only its one input tensor."""
    return model.inputs[0] if isinstance(model, keras.Sequential) else model.input

def detect_contract(model: keras.Model, features: Sequence[Feature], where: str) -> InputContract:
    """How a brought model reads the data, from its inputs; a mismatch is one line naming the
    model input and the column (`where` names the model)."""
    by_name = {f.name: f for f in features}
    inputs = list(model.inputs)
    named = isinstance(model_input(model), dict) or len(inputs) > 1 or inputs[0].name in by_name
    if not named:
        return _tensor_contract(inputs[0], features, where)
    specs = []
    for tensor in inputs:
        feature = by_name.get(tensor.name)
        if feature is None:
            raise ModelShapeError(
                f"{where}: model input '{tensor.name}' has no column of that name in the data; name the model's "
                "inputs after the columns, or give it one float input of every feature column"
            )
        dtype = keras.backend.standardize_dtype(tensor.dtype)
        if (dtype == "string") != (feature.kind != NUMERIC):
            kind = "text" if feature.kind != NUMERIC else "numeric"
            raise ModelShapeError(f"{where}: model input '{tensor.name}' takes {dtype} but column '{feature.name}' "
                                  f"is {kind}; make the model's input and the column agree")
        rank = len(tensor.shape)
        if rank not in (1, 2) or (rank == 2 and tensor.shape[1] not in (1, None)):
            raise ModelShapeError(f"{where}: model input '{tensor.name}' has shape {tuple(tensor.shape)}; a column "
                                  "input takes one value per row, shape (None, 1) or (None,)")
        specs.append(ModelInput(tensor.name, feature.name, dtype, rank))
    return InputContract(tuple(specs), bare=len(inputs) == 1 and not isinstance(model_input(model), (dict, list)))

def _tensor_contract(tensor, features: Sequence[Feature], where: str) -> InputContract:
    text = [f.name for f in features if f.kind != NUMERIC]
    if text:
        raise ModelShapeError(f"{where}: model input '{tensor.name}' takes one float tensor but column '{text[0]}' "
                              "is text; preprocess it into numbers, or give the model an input per column")
    shape = tuple(tensor.shape[1:])
    if any(d is None for d in shape) or math.prod(shape) != len(features):
        raise ModelShapeError(
            f"{where}: model input '{tensor.name}' takes shape {shape}, but the data has {len(features)} feature "
            f"columns; give it a shape of {len(features)} values (data.files.features sets the columns and their order)"
        )
    return InputContract(shape=shape)

def check_columns(features: Sequence[Feature], label_column: str, data: Prepared, where: str) -> None:
    """A saved model's columns (`features`, each with its kind, and the label it predicts)
    against the data's: a column it reads that the data lacks, or has of another kind, or
    another label column, is one line (`where` names the model)."""
    theirs = {f.name: f.kind for f in features}
    ours = {f.name: f.kind for f in data.features}
    for name, kind in theirs.items():
        if ours.get(name) != kind:
            problem = "has no column" if name not in ours else f"has it as {ours[name]}, not {kind}"
            raise ModelSourceError(f"{where}: the model reads column '{name}' but the data {problem}; "
                                   "give the new data the columns the model was trained on")
    if label_column != data.label:
        raise ModelSourceError(f"{where}: the model predicts '{label_column}' but the data's label column is "
                               f"'{data.label}'; set data.files.label")
