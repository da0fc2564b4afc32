"""Keras 3 models: the project's own MLP, a model the user brings, and the surgery on both.

The project's MLP takes raw columns, with normalisation and categorical encoding as layers
fitted on its own training rows, so the saved model is one artifact. A brought model reads
the table through its `InputContract`: one input per column (named after the columns, the
keras-io structured-data style), or one float tensor of the feature columns in order,
reshaped to the model's input shape (preprocessed columns, images, sequences).
Everything but string inputs is backend-agnostic Keras 3; string inputs need TensorFlow.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pandas as pd

from retrainlab.data import NUMERIC, Feature, encode_labels
from retrainlab.base.errors import ModelFileError, ModelShapeError, UnusableModel
from retrainlab.data.stream import FeatureStats

OUTPUT = "output"
MODEL_FILE = "model.keras"
META_FILE = "meta.json"
HEAD_ACTIVATIONS = ("softmax", "sigmoid")


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
    inputs, one float32 tensor of every feature column in order, reshaped to `shape`."""

    inputs: tuple[ModelInput, ...] = ()
    shape: tuple[int, ...] = ()

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
        return arrays

    def tensor_specs(self):
        """The tf.data signature of `arrays`."""
        import tensorflow as tf

        if not self.inputs:
            return tf.TensorSpec((None, *self.shape), tf.float32)
        return {
            spec.name: tf.TensorSpec((None, 1) if spec.rank == 2 else (None,), tf.dtypes.as_dtype(spec.dtype))
            for spec in self.inputs
        }

    def to_json(self) -> dict[str, Any]:
        return {"inputs": [dataclasses.asdict(i) for i in self.inputs], "shape": list(self.shape)}

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> InputContract:
        return cls(tuple(ModelInput(**i) for i in raw["inputs"]), tuple(raw["shape"]))


@dataclasses.dataclass
class ModelBundle:
    """A Keras model with what it takes to read its inputs and name its outputs."""

    model: keras.Model
    features: tuple[Feature, ...]
    labels: list  # original label values, in the order of the model's output units
    label_column: str
    contract: InputContract | None = None  # None: the project's own MLP (InputContract.of_columns)
    # A brought model's own compiled optimizer and loss (serialised), used to train it further.
    compiled: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.contract is None:
            self.contract = InputContract.of_columns(self.features)

    def arrays(self, frame: pd.DataFrame) -> dict[str, np.ndarray] | np.ndarray:
        return self.contract.arrays(frame, self.features)

    def inputs(self, frame: pd.DataFrame):
        """The model's inputs for predict: `arrays`, with text as string tensors."""
        arrays = self.arrays(frame)
        if isinstance(arrays, dict) and any(v.dtype == object for v in arrays.values()):
            # Keras' array adapters take no object arrays; a string tensor needs TensorFlow.
            import tensorflow as tf

            arrays = {k: tf.constant(v) if v.dtype == object else v for k, v in arrays.items()}
        return arrays

    def predict_proba(self, frame: pd.DataFrame, batch_size: int = 4096) -> np.ndarray:
        inputs = self.inputs(frame)
        if 0 < len(frame) <= batch_size:
            # One batch: Keras' compiled predict step, without the half second `predict` spends
            # setting up its data adapter and step function for each new model.
            probs = np.asarray(self.model.predict_on_batch(inputs))
        else:
            probs = self.model.predict(inputs, batch_size=batch_size, verbose=0)
        return np.hstack([1 - probs, probs]) if probs.shape[1] == 1 else probs

    def predict_labels(self, frame: pd.DataFrame) -> np.ndarray:
        return np.asarray(self.labels, dtype=object)[self.predict_proba(frame).argmax(axis=1)]

    def encode(self, labels: Sequence) -> np.ndarray:
        """Output-unit index of each label; -1 for a label this model has never seen."""
        return encode_labels(labels, self.labels)

    @property
    def binary(self) -> bool:
        return self.model.outputs[0].shape[-1] == 1

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
        }
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
        return cls(model, features, labels, label_column, contract, meta.get("compiled"))


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
        if compiled.get("loss") is not None:
            keras.losses.deserialize(compiled["loss"])
    except Exception:  # not compiled, or a custom optimizer or loss: trained with the params'
        return None
    return {"optimizer": compiled["optimizer"], "loss": compiled.get("loss")}


def probability_output(model: keras.Model, compiled: dict[str, Any] | None, where: str):
    """A brought model whose output retrainlab reads as class probabilities, and the loss
    settings to train it with: returns (model, compiled).

    A last layer with a softmax or sigmoid gives probabilities. A linear one saved compiled
    with a `from_logits=True` loss gives logits: its softmax (one unit: its sigmoid) is put
    into that layer, the same weights giving the probabilities its loss computed, and the
    loss keeps its settings, now on probabilities. Anything else is refused in one line: the
    project cannot read it (a linear unit under a regression loss predicts a number)."""
    last = model.layers[-1]
    activation = _activation(last)
    logits = _loss_config(compiled).get("from_logits") is True
    if activation not in HEAD_ACTIVATIONS and not (activation == "linear" and logits):
        width = model.outputs[0].shape[-1]
        number = (" (one linear unit predicts a number: regression, which retrainlab does not compare yet)"
                  if width == 1 and activation == "linear" else "")
        raise ModelShapeError(
            f"{where}: its output layer '{last.name}' ({type(last).__name__}, activation {activation}) gives no "
            f"class probabilities{number}; end the model with a softmax (or sigmoid) activation, or, if it outputs "
            "logits, save it compiled with a from_logits=True loss"
        )
    if logits:  # the loss now gets probabilities; the run says what became of from_logits
        loss = compiled["loss"] | {"config": _loss_config(compiled) | {"from_logits": False}}
        compiled = compiled | {"loss": loss, "from_logits": "probabilities" if activation in HEAD_ACTIVATIONS
                               else "logits"}
    if activation in HEAD_ACTIVATIONS:
        return model, compiled
    return _with_probabilities(model), compiled


def _activation(layer: keras.layers.Layer) -> str | None:
    if isinstance(layer, keras.layers.Softmax):
        return "softmax"
    activation = getattr(layer, "activation", None)
    return None if activation is None else keras.activations.serialize(activation)


def _loss_config(compiled: dict[str, Any] | None) -> dict[str, Any]:
    loss = (compiled or {}).get("loss")
    return (loss.get("config") or {}) if isinstance(loss, dict) else {}


def _loss_name(compiled: dict[str, Any] | None) -> str | None:
    loss = (compiled or {}).get("loss")
    return loss if isinstance(loss, str) else _loss_config(compiled).get("name")


def _with_probabilities(model: keras.Model) -> keras.Model:
    """A copy of a logits model whose output applies its softmax (one unit: its sigmoid)."""
    copy = copy_model(model)
    last = copy.layers[-1]
    activation = "sigmoid" if copy.outputs[0].shape[-1] == 1 else "softmax"
    if isinstance(last, keras.layers.Dense):
        head = keras.layers.Dense.from_config(last.get_config() | {"activation": activation})
        output = head(last.input)
        head.set_weights(last.get_weights())
    else:
        output = keras.layers.Activation(activation, name=f"{last.name}_{activation}")(copy.outputs[0])
    return keras.Model(_model_input(copy), output, name=copy.name)


def input_names(features: Sequence[Feature]) -> list[str]:
    """Keras input names: column names made safe for graph names, kept unique by position."""
    return [f"in{i}_" + re.sub(r"\W", "_", f.name)[:40] for i, f in enumerate(features)]


def detect_contract(model: keras.Model, features: Sequence[Feature], where: str) -> InputContract:
    """How a brought model reads the data, from its inputs; a mismatch is one line naming the
    model input and the column (`where` names the model)."""
    by_name = {f.name: f for f in features}
    inputs = list(model.inputs)
    named = isinstance(_model_input(model), dict) or len(inputs) > 1 or inputs[0].name in by_name
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
    return InputContract(tuple(specs))


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


def head_layer(model: keras.Model, why: str) -> keras.layers.Dense:
    """The model's output layer, which surgery rebuilds: its last layer must be a Dense layer
    with a softmax or sigmoid activation. `why` says what the surgery is for."""
    last = model.layers[-1]
    activation = keras.activations.serialize(last.activation) if isinstance(last, keras.layers.Dense) else None
    if activation not in HEAD_ACTIVATIONS:
        raise ModelShapeError(
            f"the model's last layer '{last.name}' ({type(last).__name__}, activation {activation}) cannot be rebuilt "
            f"to {why}: end the model with a Dense layer with a softmax (or sigmoid) activation"
        )
    return last


def copy_model(model: keras.Model) -> keras.Model:
    """A copy with the same weights and state and no layer shared with `model`, so that
    updating one strategy's model never changes another's in the same process.

    Through Keras' own file format, not `clone_model`: an adapted lookup layer keeps its
    vocabulary there (as an asset), where a clone would lose it."""
    import tempfile

    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / MODEL_FILE
        model.save(path)
        return keras.saving.load_model(path, safe_mode=True, compile=False)


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


def fresh_bundle(data, params, splits: Sequence[str], seed: int, base: ModelBundle | None) -> ModelBundle:
    """A model with fresh weights for the classes of `splits`: the project's MLP built on
    those rows' statistics, or, when the baseline is a brought model (`base`), its
    architecture with fresh weights, its preprocessing layers adapted anew on those rows and
    its output grown for any class they add."""
    from retrainlab.config import TRAIN
    from retrainlab.base.errors import DataError
    from retrainlab.data.stream import windows

    labels = data.classes(*splits)
    paths = [data.path(s) for s in splits]
    if params.baseline.from_ == TRAIN or base is None:
        if len(labels) < 2:
            raise DataError(f"{' + '.join(splits)}: only one class ({labels[0]!r}); a classifier needs two or more")
        m = params.model
        stats = FeatureStats.of_files(paths, data.features)
        model = build_model(data.features, stats, len(labels), m.hidden_units, m.dropout, seed)
        return ModelBundle(model, data.features, labels, data.label)
    from retrainlab.strategies import grown_labels

    labels = grown_labels(base.labels, labels)
    columns = [f.name for f in data.features]
    model = reinitialised(
        base.model, lambda: (base.inputs(w) for w in windows(paths, columns, np.random.default_rng(seed)))
    )
    return dataclasses.replace(base, model=grow_output(model, len(labels), seed), labels=labels)


def fresh_weights(model: keras.Model, seed: int) -> list[np.ndarray]:
    """New initial values of the model's trainable weights, in `trainable_variables` order:
    each layer's own initializers, seeded afresh (a seed in the model's config would
    otherwise give back the very weights the model started from)."""
    counter = iter(range(1 << 30))

    def reseeded(config):
        if isinstance(config, dict):
            return {k: (seed * 7919 + next(counter) if k == "seed" else reseeded(v)) for k, v in config.items()}
        if isinstance(config, list):
            return [reseeded(v) for v in config]
        return config

    def clone(layer: keras.layers.Layer) -> keras.layers.Layer:
        # A layer with nothing to train (inputs, preprocessing) is shared with the twin, so
        # that the widths it gives the layers after it are known; the twin is thrown away.
        return type(layer).from_config(reseeded(layer.get_config())) if layer.trainable_weights else layer

    keras.utils.set_random_seed(seed + 1)  # initializers without a seed draw from the global generator
    twin = keras.models.clone_model(model, clone_function=clone)
    fresh = [keras.ops.convert_to_numpy(v) for v in twin.trainable_variables]
    shapes = [tuple(v.shape) for v in model.trainable_variables]
    if [f.shape for f in fresh] != shapes:
        raise ModelShapeError(f"model '{model.name}': cannot draw fresh weights of the same shapes to perturb it")
    return fresh


def grow_output(model: keras.Model, n_classes: int, seed: int) -> keras.Model:
    """A copy of the model with a trainable output layer of `n_classes` units.

    The old classes keep their weights, so predictions among them are unchanged; the new
    classes' units start small and random. A two-class sigmoid output becomes an exactly
    equivalent softmax (logits [0, z]) before it grows. With no class to add, the model is
    only copied.
    """
    copy = copy_model(model)
    if n_classes == max(2, copy.outputs[0].shape[-1]):
        return copy
    return _rebuild_head(copy, n_classes, new_layers=0, seed=seed)


def attach_head(
    model: keras.Model, new_layers: int, n_classes: int, seed: int, trainable_layers: int = 0
) -> keras.Model:
    """A copy of `model` with every layer frozen but the last `trainable_layers` layers that
    hold weights below the output, and `new_layers` trainable layers plus the output on top.

    The new layers start as the identity on the (non-negative, post-ReLU) features and the
    output keeps the old weights, so the fine-tuned model starts exactly where `model` was.
    """
    copy = copy_model(model)
    head = head_layer(copy, "fine-tune it")
    weighted = [layer for layer in copy.layers if layer.weights and layer is not head]
    keep = weighted[len(weighted) - trainable_layers:] if trainable_layers else []
    for layer in copy.layers:
        layer.trainable = layer in keep
    return _rebuild_head(copy, n_classes, new_layers, seed)


def reinitialised(model: keras.Model, batches) -> keras.Model:
    """The same architecture with fresh weights, its preprocessing layers (Normalization,
    lookups) adapted anew on `batches()` (a function returning an iterable of model inputs).

    Each layer is adapted on what reaches it in `model`, so a preprocessing layer fed by
    another sees that one's old state; keras-io's layers sit on the raw inputs. The model
    is then built anew around the adapted layers: a vocabulary that grew widens what
    follows it, which a built model could not do.
    """
    adapted = {}
    for layer in preprocessing_layers(model):
        fresh = _unfitted(layer)
        upstream = keras.Model(_model_input(model), layer.input)
        outputs = (upstream.predict_on_batch(x) for x in batches())
        if isinstance(fresh, keras.layers.Normalization):
            fresh.adapt(outputs)  # batch by batch: a running mean and variance
        else:  # a vocabulary: every value seen, as text
            fresh.adapt(np.concatenate([_as_text(o) for o in outputs]))
        adapted[layer.name] = fresh
    return keras.models.clone_model(model, clone_function=lambda layer: adapted.get(layer.name) or _unfitted(layer))


# The config keys that carry what a preprocessing layer learnt from data.
PREPROCESSING_STATE = {"Normalization": ("mean", "variance"),
                       "StringLookup": ("vocabulary", "vocabulary_size", "idf_weights"),
                       "IntegerLookup": ("vocabulary", "vocabulary_size", "idf_weights")}


def _unfitted(layer: keras.layers.Layer) -> keras.layers.Layer:
    """A new layer of the same config, less any state a preprocessing layer was built with."""
    config = layer.get_config()
    for key in PREPROCESSING_STATE.get(type(layer).__name__, ()):
        config.pop(key, None)
    return type(layer).from_config(config)


def preprocessing_layers(model: keras.Model) -> list[keras.layers.Layer]:
    """The layers that learn from data outside of training, in the model's (topological) order."""
    return [layer for layer in model.layers if type(layer).__name__ in PREPROCESSING_STATE]


def _as_text(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values)
    return np.char.decode(values.astype(bytes)) if values.dtype.kind in "OS" else values


def compile_model(
    model: keras.Model, learning_rate: float, compiled: dict[str, Any] | None = None,
    objective: dict[str, Any] | None = None,
) -> str:
    """Compile for training on integer class targets; return what was used, for the run.

    A brought model's own optimizer (fresh state, same settings) and loss, with its settings
    (`probability_output` says what became of from_logits), are used where it has them and
    the loss takes class indices; the params otherwise. `objective` (loss, metrics, text:
    retrainlab.training.loop.Objective) replaces the loss when a plan adds loss terms.
    """
    binary = model.outputs[0].shape[-1] == 1
    name = "binary_crossentropy" if binary else "sparse_categorical_crossentropy"
    loss, optimizer = name, keras.optimizers.Adam(learning_rate=learning_rate)
    used = f"Adam(learning_rate={learning_rate:g}), {name} (params)"
    if compiled and compiled.get("optimizer"):
        optimizer = keras.optimizers.deserialize(compiled["optimizer"])
        used = f"{type(optimizer).__name__} as the model was compiled"
        own = _loss_name(compiled)
        if own == name:
            used += f", {name}{_loss_settings(compiled)}"
            loss = keras.losses.deserialize(compiled["loss"]) if isinstance(compiled["loss"], dict) else name
        else:
            used += f", {name} (its own loss, {own}, does not take class indices)"
    if objective is not None:
        used = used.replace(name, objective["text"], 1) if name in used else f"{used}, {objective['text']}"
        model.compile(optimizer=optimizer, loss=objective["loss"], metrics=objective["metrics"])
        return used
    model.compile(optimizer=optimizer, loss=loss, metrics=["accuracy"])
    return used


def _loss_settings(compiled: dict[str, Any]) -> str:
    """The settings of a brought model's loss that are not the defaults, as the run says them."""
    config = {k: v for k, v in _loss_config(compiled).items() if k not in ("name", "reduction", "from_logits")}
    shown = [f"{key}={value}" for key, value in config.items() if value not in (None, False, 0, 0.0, -1)]
    if compiled.get("from_logits") == "logits":
        shown.append("from_logits=True: its output layer now turns the logits into probabilities")
    elif compiled.get("from_logits") == "probabilities":
        shown.append("from_logits=True set aside: its output layer gives probabilities already")
    return f" ({', '.join(shown)})" if shown else ""


def _rebuild_head(model: keras.Model, n_classes: int, new_layers: int, seed: int) -> keras.Model:
    old = head_layer(model, "add classes" if new_layers == 0 else "fine-tune it")
    kernel, bias = old.get_weights()
    x = old.input
    width = x.shape[-1]
    taken = {layer.name for layer in model.layers}
    names = (name for name in (f"finetune_{i}" for i in range(len(taken) + new_layers)) if name not in taken)
    for _, name in zip(range(new_layers), names):  # a model fine-tuned before keeps its finetune_0
        x = keras.layers.Dense(
            width,
            activation="relu",
            kernel_initializer=keras.initializers.Identity(),
            bias_initializer="zeros",
            name=name,
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
    # Its initializer is what shrink-and-perturb draws fresh weights from; set_weights sets the start.
    head = _output_layer(n_classes, keras.initializers.GlorotUniform(seed=seed), name=old.name,
                         softmax=kernel.shape[1] > 1)
    output = head(x)
    head.set_weights([kernel, bias])
    return keras.Model(_model_input(model), output, name=model.name)


def _model_input(model: keras.Model):
    """The model's input structure: a functional model's (a dict stays a dict); a Sequential
    model has no `.input` of its own once loaded, only its one input tensor."""
    return model.inputs[0] if isinstance(model, keras.Sequential) else model.input


def _output_layer(n_classes: int, kernel_initializer, name: str = OUTPUT, softmax: bool = False) -> keras.layers.Dense:
    """Two classes get one sigmoid unit, unless `softmax` (a brought two-unit softmax stays one)."""
    if n_classes == 2 and not softmax:
        return keras.layers.Dense(1, activation="sigmoid", kernel_initializer=kernel_initializer, name=name)
    return keras.layers.Dense(n_classes, activation="softmax", kernel_initializer=kernel_initializer, name=name)


def _concat(tensors: list, name: str):
    return tensors[0] if len(tensors) == 1 else keras.layers.Concatenate(name=name)(tensors)
