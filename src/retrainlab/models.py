"""The Keras 3 model: raw columns in, class probabilities out, preprocessing inside.

Normalisation and categorical encoding are layers of the model, fitted on that model's
own training rows, so the saved model is one artifact that takes raw feature columns.
Everything but string lookup is backend-agnostic Keras 3; string inputs need TensorFlow.
"""

from __future__ import annotations

import dataclasses
import json
import re
import zipfile
from collections.abc import Sequence
from pathlib import Path

import keras
import numpy as np
import pandas as pd

from retrainlab.data import NUMERIC, Feature, encode_labels
from retrainlab.errors import PipelineError
from retrainlab.stream import FeatureStats

OUTPUT = "output"
MODEL_FILE = "model.keras"
META_FILE = "meta.json"


@dataclasses.dataclass
class ModelBundle:
    """A Keras model with what it takes to read its inputs and name its outputs."""

    model: keras.Model
    features: tuple[Feature, ...]
    labels: list  # original label values, in the order of the model's output units
    label_column: str

    def inputs(self, frame: pd.DataFrame) -> dict:
        return to_inputs(frame, self.features)

    def predict_proba(self, frame: pd.DataFrame, batch_size: int = 4096) -> np.ndarray:
        probs = self.model.predict(self.inputs(frame), batch_size=batch_size, verbose=0)
        return np.hstack([1 - probs, probs]) if probs.shape[1] == 1 else probs

    def predict_labels(self, frame: pd.DataFrame) -> np.ndarray:
        return np.asarray(self.labels, dtype=object)[self.predict_proba(frame).argmax(axis=1)]

    def encode(self, labels: Sequence) -> np.ndarray:
        """Output-unit index of each label; -1 for a label this model has never seen."""
        return encode_labels(labels, self.labels)

    def detached(self) -> ModelBundle:
        """A copy built outside any tf.distribute scope, with the same weights: what is
        evaluated and saved after distributed training (predicting with the distributed
        model would be a collective step the other workers are not taking)."""
        copy = keras.models.clone_model(self.model)
        copy.set_weights(self.model.get_weights())
        return dataclasses.replace(self, model=copy)

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.model.save(directory / MODEL_FILE)
        meta = {
            "features": [dataclasses.asdict(f) for f in self.features],
            "labels": self.labels,
            "label_column": self.label_column,
        }
        (directory / META_FILE).write_text(json.dumps(meta, indent=2) + "\n")

    @classmethod
    def load(cls, directory: Path) -> ModelBundle:
        """Read a saved bundle; a missing or damaged file is a one-line ModelFileError."""
        try:
            meta = json.loads((directory / META_FILE).read_text())
            features = tuple(Feature(**f) for f in meta["features"])
            labels, label_column = meta["labels"], meta["label_column"]
        except Exception as exc:  # missing, unreadable, not JSON, or not our layout
            raise ModelFileError(directory / META_FILE, exc) from None
        path = directory / MODEL_FILE
        if path.is_file() and not zipfile.is_zipfile(path):  # Keras would call it "File not found"
            raise ModelFileError(path, ValueError("not a .keras zip archive: damaged or truncated"))
        try:
            # safe_mode refuses to deserialise code (Lambda layers), so a model file cannot run any.
            model = keras.saving.load_model(path, safe_mode=True)
        except Exception as exc:  # Keras raises zip, HDF5, JSON and value errors alike
            raise ModelFileError(path, exc) from None
        return cls(model, features, labels, label_column)


class ModelFileError(PipelineError):
    """A saved model that cannot be read: named with the reason and the way back."""

    def __init__(self, path: Path, exc: Exception) -> None:
        reason = (str(exc).splitlines() or [""])[0][:200] or type(exc).__name__
        super().__init__(
            f"{path}: cannot be loaded ({type(exc).__name__}: {reason}); restore it with `dvc checkout` "
            "or rebuild it with `dvc repro --force` of its stage"
        )


def input_names(features: Sequence[Feature]) -> list[str]:
    """Keras input names: column names made safe for graph names, kept unique by position."""
    return [f"in{i}_" + re.sub(r"\W", "_", f.name)[:40] for i, f in enumerate(features)]


def to_arrays(frame: pd.DataFrame, features: Sequence[Feature]) -> dict[str, np.ndarray]:
    """The model's inputs as numpy arrays: float32 numbers, text as object arrays."""
    arrays = {}
    for name, feature in zip(input_names(features), features):
        column = frame[feature.name]
        if feature.kind == NUMERIC:
            arrays[name] = column.to_numpy(dtype=np.float32).reshape(-1, 1)
        else:
            arrays[name] = column.astype(str).to_numpy(dtype=object).reshape(-1, 1)
    return arrays


def to_inputs(frame: pd.DataFrame, features: Sequence[Feature]) -> dict:
    """The model's inputs for predict: to_arrays, with text as string tensors."""
    arrays = to_arrays(frame, features)
    for name, feature in zip(input_names(features), features):
        if feature.kind != NUMERIC:
            # Keras' array adapters take no object arrays; a string tensor needs TensorFlow.
            import tensorflow as tf

            arrays[name] = tf.constant(arrays[name])
    return arrays


def build_model(
    features: Sequence[Feature],
    stats: FeatureStats,
    n_classes: int,
    hidden_units: Sequence[int],
    dropout: float,
    seed: int,
) -> keras.Model:
    """A fresh MLP whose preprocessing layers hold `stats` of its training rows."""
    inputs, numeric, encoded = {}, [], []
    for name, feature in zip(input_names(features), features):
        if feature.kind == NUMERIC:
            inputs[name] = keras.Input(shape=(1,), name=name, dtype="float32")
            numeric.append(inputs[name])
        else:
            inputs[name] = keras.Input(shape=(1,), name=name, dtype="string")
            lookup = keras.layers.StringLookup(
                vocabulary=stats.vocabularies[feature.name], output_mode="one_hot", name=f"encode_{name}"
            )
            encoded.append(lookup(inputs[name]))
    parts = list(encoded)
    if numeric:
        stacked = _concat(numeric, "numeric")
        normalize = keras.layers.Normalization(mean=stats.mean, variance=stats.variance, name="normalize")
        parts.insert(0, normalize(stacked))
    x = _concat(parts, "features")
    for i, units in enumerate(hidden_units):
        init = keras.initializers.GlorotUniform(seed=seed + i)
        x = keras.layers.Dense(units, activation="relu", kernel_initializer=init, name=f"hidden_{i}")(x)
        if dropout:
            x = keras.layers.Dropout(dropout, seed=seed + i, name=f"dropout_{i}")(x)
    output = _output_layer(n_classes, keras.initializers.GlorotUniform(seed=seed + len(hidden_units)))
    return keras.Model(inputs, output(x), name="retrainlab_mlp")


def grow_output(model: keras.Model, n_classes: int, seed: int) -> keras.Model:
    """The same model with a trainable output layer of `n_classes` units.

    The old classes keep their weights, so predictions among them are unchanged; the new
    classes' units start small and random. A two-class sigmoid output becomes an exactly
    equivalent softmax (logits [0, z]) before it grows.
    """
    return _rebuild_head(model, n_classes, new_layers=0, seed=seed)


def attach_head(model: keras.Model, new_layers: int, n_classes: int, seed: int) -> keras.Model:
    """Freeze every layer of `model`, then add `new_layers` trainable layers and the output.

    The new layers start as the identity on the (non-negative, post-ReLU) features and the
    output keeps the old weights, so the fine-tuned model starts exactly where `model` was.
    """
    for layer in model.layers:
        layer.trainable = False
    return _rebuild_head(model, n_classes, new_layers, seed)


def compile_model(model: keras.Model, learning_rate: float) -> None:
    binary = model.get_layer(OUTPUT).units == 1
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
        loss="binary_crossentropy" if binary else "sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )


def _rebuild_head(model: keras.Model, n_classes: int, new_layers: int, seed: int) -> keras.Model:
    old = model.get_layer(OUTPUT)
    kernel, bias = old.get_weights()
    x = old.input
    width = x.shape[-1]
    for i in range(new_layers):
        x = keras.layers.Dense(
            width,
            activation="relu",
            kernel_initializer=keras.initializers.Identity(),
            bias_initializer="zeros",
            name=f"finetune_{i}",
        )(x)
    n_old = 2 if kernel.shape[1] == 1 else kernel.shape[1]
    if n_classes < n_old:
        raise ValueError(f"cannot shrink an output of {n_old} classes to {n_classes}")
    if kernel.shape[1] == 1 and n_classes > 2:
        kernel = np.hstack([np.zeros_like(kernel), kernel])
        bias = np.array([0.0, bias[0]], dtype=bias.dtype)
    n_new = n_classes - n_old
    if n_new:
        fresh = keras.initializers.GlorotUniform(seed=seed)((width, n_new))
        kernel = np.hstack([kernel, keras.ops.convert_to_numpy(fresh)])
        bias = np.concatenate([bias, np.full(n_new, bias.mean(), dtype=bias.dtype)])
    head = _output_layer(n_classes, "zeros")
    output = head(x)
    head.set_weights([kernel, bias])
    return keras.Model(model.input, output, name=model.name)


def _output_layer(n_classes: int, kernel_initializer) -> keras.layers.Dense:
    if n_classes == 2:
        return keras.layers.Dense(1, activation="sigmoid", kernel_initializer=kernel_initializer, name=OUTPUT)
    return keras.layers.Dense(n_classes, activation="softmax", kernel_initializer=kernel_initializer, name=OUTPUT)


def _concat(tensors: list, name: str):
    return tensors[0] if len(tensors) == 1 else keras.layers.Concatenate(name=name)(tensors)

