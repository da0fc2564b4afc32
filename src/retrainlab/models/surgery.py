"""Model surgery, as the strategies need it: a copy with an output grown for new classes,
new layers on a frozen body, fresh weights of the same architecture (its preprocessing
layers adapted anew), and fresh initial values to perturb toward."""

from __future__ import annotations

import keras
import numpy as np

from retrainlab.base.errors import ModelShapeError
from retrainlab.models.bundle import model_input
from retrainlab.models.files import copy_model
from retrainlab.models.outputs import TARGET_SCALE, head_layer, output_layer
from retrainlab.models.vocabulary import fed_embedding


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
        # A layer with nothing to train (inputs, preprocessing, an operation such as the
        # padding mask a text embedding makes) is shared with the twin, so that the widths it
        # gives the layers after it are known; the twin is thrown away.
        if not getattr(layer, "trainable_weights", None):
            return layer
        return type(layer).from_config(reseeded(layer.get_config()))

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
    equivalent softmax (logits [0, z]) before it grows. With no class to add, or none at all
    (a regressor, `n_classes` 0), the model is only copied.
    """
    copy = copy_model(model)
    if n_classes == 0 or n_classes == max(2, copy.outputs[0].shape[-1]):
        return copy
    return _rebuild_head(copy, n_classes, new_layers=0, seed=seed)

def attach_head(
    model: keras.Model, new_layers: int, n_classes: int, seed: int, trainable_layers: int = 0
) -> keras.Model:
    """A copy of `model` with every layer frozen but the last `trainable_layers` layers that
    hold weights below the output, and `new_layers` trainable layers plus the output on top.

    The new layers start as the identity on the (non-negative, post-ReLU) features and the
    output keeps the old weights, so the fine-tuned model starts exactly where `model` was.
    `n_classes` 0: a regressor, whose output unit and target scaling are kept.
    """
    copy = copy_model(model)
    head = head_layer(copy, "fine-tune it", regression=n_classes == 0)
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
    follows it, which a built model could not do; an Embedding a `TextVectorization` feeds
    gets a row per token of the new vocabulary.
    """
    adapted, widths = {}, {}
    for layer in preprocessing_layers(model):
        fresh = _unfitted(layer)
        upstream = keras.Model(model_input(model), layer.input)
        outputs = (upstream.predict_on_batch(x) for x in batches())
        if isinstance(fresh, keras.layers.Normalization):
            fresh.adapt(outputs)  # batch by batch: a running mean and variance
        else:  # a vocabulary: every value seen, as text
            fresh.adapt(np.concatenate([_as_text(o) for o in outputs]))
        adapted[layer.name] = fresh
        embedding = fed_embedding(model, layer) if isinstance(fresh, keras.layers.TextVectorization) else None
        if embedding is not None:
            widths[embedding.name] = fresh.vocabulary_size()

    def clone(layer):
        if not isinstance(layer, keras.layers.Layer):  # an operation in the graph (a text embedding's mask)
            return layer
        if layer.name in widths:
            return type(layer).from_config({**layer.get_config(), "input_dim": widths[layer.name]})
        return adapted.get(layer.name) or _unfitted(layer)

    return keras.models.clone_model(model, clone_function=clone)

# The config keys that carry what a preprocessing layer learnt from data.
PREPROCESSING_STATE = {"Normalization": ("mean", "variance"),
                       "StringLookup": ("vocabulary", "vocabulary_size", "idf_weights"),
                       "IntegerLookup": ("vocabulary", "vocabulary_size", "idf_weights"),
                       "TextVectorization": ("vocabulary", "vocabulary_size", "idf_weights")}

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

def _rebuild_head(model: keras.Model, n_classes: int, new_layers: int, seed: int) -> keras.Model:
    regression = n_classes == 0
    old = head_layer(model, "add classes" if new_layers == 0 else "fine-tune it", regression)
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
    if regression:
        head = output_layer(0, keras.initializers.GlorotUniform(seed=seed), name=old.name)
        output = head(x)
        head.set_weights([kernel, bias])
        return keras.Model(model_input(model), _scaled(model, output), name=model.name)
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
    head = output_layer(n_classes, keras.initializers.GlorotUniform(seed=seed), name=old.name,
                         softmax=kernel.shape[1] > 1)
    output = head(x)
    head.set_weights([kernel, bias])
    return keras.Model(model_input(model), output, name=model.name)


def _scaled(model: keras.Model, output):
    """The output through the model's target scaling, where it has one (the project's regressor)."""
    for layer in model.layers:
        if layer.name == TARGET_SCALE:
            return type(layer).from_config(layer.get_config())(output)
    return output
