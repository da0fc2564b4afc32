"""A Keras model with what it takes to read its inputs and name its outputs (`ModelBundle`),
and how a model reads the feature columns (`InputContract`): one input per column, named
after the columns (the keras-io structured-data style), or one float tensor of the feature
columns in order, reshaped to the model's input shape (preprocessed columns, images).
Everything but string inputs is backend-agnostic Keras 3; string inputs need TensorFlow.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pandas as pd

from retrainlab.base.errors import ModelFileError, ModelShapeError
from retrainlab.base.tasks import CLASSIFICATION, REGRESSION
from retrainlab.data import NUMERIC, Feature, encode_labels
from retrainlab.models.files import MODEL_FILE, copy_model, load_keras

META_FILE = "meta.json"


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

@dataclasses.dataclass
class ModelBundle:
    """A Keras model with what it takes to read its inputs and name its outputs."""

    model: keras.Model
    features: tuple[Feature, ...]
    labels: list  # original label values, in the order of the model's output units (a regressor: none)
    label_column: str
    contract: InputContract | None = None  # None: the project's own MLP (InputContract.of_columns)
    # A brought model's own compiled optimizer and loss (serialised), used to train it further.
    compiled: dict[str, Any] | None = None
    task: str = CLASSIFICATION  # or REGRESSION: one output unit, the label's value in its own units
    # A binary classifier's decision: its positive class and the probability of it at which it
    # predicts it (compare.positive_class, compare.threshold); None: the most probable label.
    decision: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.contract is None:
            self.contract = InputContract.of_columns(self.features)

    def arrays(self, frame: pd.DataFrame) -> dict[str, np.ndarray] | np.ndarray:
        return self.contract.arrays(frame, self.features)

    def inputs(self, frame: pd.DataFrame):
        """The model's inputs for predict: `arrays`, with text as string tensors."""
        arrays = self.arrays(frame)
        texts = arrays.values() if isinstance(arrays, dict) else [arrays]
        if any(v.dtype == object for v in texts):
            # Keras' array adapters take no object arrays; a string tensor needs TensorFlow.
            import tensorflow as tf

            if not isinstance(arrays, dict):
                return tf.constant(arrays)
            arrays = {k: tf.constant(v) if v.dtype == object else v for k, v in arrays.items()}
        return arrays

    def predict_proba(self, frame: pd.DataFrame, batch_size: int = 4096) -> np.ndarray:
        probs = self._outputs(frame, batch_size)
        return np.hstack([1 - probs, probs]) if probs.shape[1] == 1 else probs

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        """What the task's measure scores: class probabilities, or a regressor's numbers (one per row)."""
        if self.regression:  # float64, as the logged signature's double says
            return self._outputs(frame).reshape(-1).astype(np.float64)
        return self.predict_proba(frame)

    def _outputs(self, frame: pd.DataFrame, batch_size: int = 4096) -> np.ndarray:
        inputs = self.inputs(frame)
        if 0 < len(frame) <= batch_size:
            # One batch: Keras' compiled predict step, without the half second `predict` spends
            # setting up its data adapter and step function for each new model.
            return np.asarray(self.model.predict_on_batch(inputs))
        return self.model.predict(inputs, batch_size=batch_size, verbose=0)

    def predict_labels(self, frame: pd.DataFrame) -> np.ndarray:
        """Each row's predicted label: a class, or a regressor's number."""
        if self.regression:
            return self.predict(frame)
        # start-up: the measure's rule, read only where labels are predicted
        from retrainlab.measure.evaluation import decide
        from retrainlab.measure.task import Scoring

        rule = Scoring(positive=self.decision["positive"], threshold=self.decision["threshold"]) if self.decision else None
        return decide(self.predict_proba(frame), self.labels, rule)

    def with_decision(self, rules) -> ModelBundle:
        """The bundle predicting labels as the measure does (`rules`: its Scoring): a binary
        classifier's positive class at its threshold; every saved model carries it, so that
        serving answers what was evaluated."""
        binary = not self.regression and len(self.labels) == 2 and rules.positive is not None
        decision = {"positive": rules.positive, "threshold": rules.threshold} if binary else None
        return dataclasses.replace(self, decision=decision)

    def encode(self, labels: Sequence) -> np.ndarray:
        """Output-unit index of each label, -1 for a label this model has never seen; a
        regressor's targets are the labels themselves, as float32."""
        if self.regression:
            return np.asarray(labels, dtype=np.float32)
        return encode_labels(labels, self.labels)

    @property
    def regression(self) -> bool:
        return self.task == REGRESSION

    @property
    def binary(self) -> bool:
        return self.task == CLASSIFICATION and self.model.outputs[0].shape[-1] == 1

    def detached(self) -> ModelBundle:
        """A copy built outside any tf.distribute scope, with the same weights: what is
        evaluated and saved after distributed training (predicting with the distributed
        model would be a collective step the other workers are not taking)."""
        return dataclasses.replace(self, model=copy_model(self.model))

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.model.save(directory / MODEL_FILE)
        meta = {
            "features": [dataclasses.asdict(f) for f in self.features],
            "labels": self.labels,
            "label_column": self.label_column,
            "contract": self.contract.to_json(),
            "compiled": self.compiled,
            "task": self.task,
        } | ({"decision": self.decision} if self.decision else {})
        (directory / META_FILE).write_text(json.dumps(meta, indent=2) + "\n")

    @classmethod
    def load(cls, directory: Path) -> ModelBundle:
        """Read a saved bundle; a missing or damaged file is a one-line ModelFileError."""
        try:
            meta = json.loads((directory / META_FILE).read_text())
            features = tuple(Feature(**f) for f in meta["features"])
            labels, label_column = meta["labels"], meta["label_column"]
            contract = InputContract.from_json(meta["contract"]) if "contract" in meta else None
        except Exception as exc:  # missing, unreadable, not JSON, or not our layout
            raise ModelFileError(directory / META_FILE, exc) from None
        model = load_keras(directory / MODEL_FILE)
        return cls(model, features, labels, label_column, contract, meta.get("compiled"),
                   meta.get("task", CLASSIFICATION), meta.get("decision"))

def input_names(features: Sequence[Feature]) -> list[str]:
    """Keras input names: column names made safe for graph names, kept unique by position."""
    return [f"in{i}_" + re.sub(r"\W", "_", f.name)[:40] for i, f in enumerate(features)]

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

def check_output_width(model: keras.Model, labels: list, where: str) -> None:
    if len(model.outputs) != 1 or len(model.outputs[0].shape) != 2:
        raise ModelShapeError(f"{where}: the model must have one output of class probabilities, shape (None, classes)")
    width = model.outputs[0].shape[-1]
    if max(width, 2) != len(labels):  # one sigmoid unit is two classes
        raise ModelShapeError(
            f"{where}: the model has {width} output units but the data has {len(labels)} labels "
            f"({', '.join(map(str, labels[:10]))}); list the model's labels in output order in data.labels"
        )

def model_input(model: keras.Model):
    """The model's input structure: a functional model's (a dict stays a dict); a Sequential
    model has no `.input` of its own once loaded, only its one input tensor."""
    return model.inputs[0] if isinstance(model, keras.Sequential) else model.input
