"""Model surgery, as the strategies need it: a copy with an output grown for new classes,
new layers on a frozen body (starting as the identity on its features, whatever their
sign), fresh weights of the same architecture (its preprocessing layers adapted anew),
and fresh initial values to perturb toward."""

from __future__ import annotations

import keras
import numpy as np

from retrainlab.base.errors import ModelShapeError
from retrainlab.models.files import copy_model
from retrainlab.models.inputs import model_input
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

    The new layers are ReLU Dense layers that start as the identity on the features reaching
    the output, and the output keeps the old weights, so the fine-tuned model starts exactly
    where `model` was. Features known to be non-negative (the output's input comes, through
    dropout, pooling, reshaping or merging, from a ReLU, sigmoid, softmax... activation, as in
    the project's own MLP) keep their width: each new layer's kernel is the identity. Other
    features (tanh, linear, ELU...), which a ReLU would cut, are carried as [relu(x), relu(-x)]:
    the new layers have twice the width (the first kernel [I, -I], the others
    [[I, -I], [-I, I]], zero biases) and the output's kernel K becomes [K; -K], which gives
    back K x + b. New classes' units start as `grow_output`'s do on the features, their
    columns [k; -k] likewise. `n_classes` 0: a regressor, whose output unit and target scaling
    are kept.
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
    """The model with `new_layers` identity ReLU layers before its output layer, rebuilt for
    `n_classes` (0: a regressor) with its old weights; `attach_head` says how features that
    may be negative are carried through the new layers ([relu(x), relu(-x)])."""
    regression = n_classes == 0
    old = head_layer(model, "add classes" if new_layers == 0 else "fine-tune it", regression)
    kernel, bias = old.get_weights()
    x = old.input
    width = x.shape[-1]
    split = new_layers > 0 and not _non_negative(x)  # carry x as [relu(x), relu(-x)]
    eye = np.eye(width, dtype=kernel.dtype)
    taken = {layer.name for layer in model.layers}
    names = (name for name in (f"finetune_{i}" for i in range(len(taken) + new_layers)) if name not in taken)
    for i, name in zip(range(new_layers), names):  # a model fine-tuned before keeps its finetune_0
        layer = keras.layers.Dense(
            2 * width if split else width,
            activation="relu",
            kernel_initializer=keras.initializers.Identity(),
            bias_initializer="zeros",
            name=name,
        )
        x = layer(x)
        if split:  # [x] -> [x, -x] first, then [p, n] -> [p - n, n - p]: relu gives [relu(x), relu(-x)] back
            start = np.hstack([eye, -eye]) if i == 0 else np.block([[eye, -eye], [-eye, eye]])
            layer.set_weights([start, np.zeros(2 * width, dtype=kernel.dtype)])
    if regression:
        head = output_layer(0, keras.initializers.GlorotUniform(seed=seed), name=old.name)
        output = head(x)
        head.set_weights([_whole(kernel, split), bias])
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
    head.set_weights([_whole(kernel, split), bias])
    return keras.Model(model_input(model), output, name=model.name)


def _whole(kernel: np.ndarray, split: bool) -> np.ndarray:
    """The output's kernel on the new layers' features: K, or [K; -K] on [relu(x), relu(-x)]
    (relu(x) - relu(-x) = x, so the output is K x + b as before)."""
    return np.vstack([kernel, -kernel]) if split else kernel


# Activations whose values are never negative.
NON_NEGATIVE = {"relu", "relu6", "sigmoid", "hard_sigmoid", "sparse_sigmoid", "softmax", "softplus", "exponential",
                "sparse_plus", "sparsemax", "squareplus"}
# Layers whose output is the activation of what they compute.
_ACTIVATED = (keras.layers.Activation, keras.layers.Dense, keras.layers.EinsumDense, keras.layers.Conv1D,
              keras.layers.Conv2D, keras.layers.Conv3D, keras.layers.Conv1DTranspose, keras.layers.Conv2DTranspose,
              keras.layers.Conv3DTranspose, keras.layers.SeparableConv1D, keras.layers.SeparableConv2D,
              keras.layers.DepthwiseConv1D, keras.layers.DepthwiseConv2D)
# Layers whose output is non-negative where all their inputs are: shape-only, dropout (at
# inference the identity; in training it scales by a positive factor), pooling, merging.
_SIGN_KEEPING = (keras.layers.Dropout, keras.layers.SpatialDropout1D, keras.layers.SpatialDropout2D,
                 keras.layers.SpatialDropout3D, keras.layers.ActivityRegularization, keras.layers.Identity,
                 keras.layers.Masking, keras.layers.Flatten, keras.layers.Reshape, keras.layers.Permute,
                 keras.layers.RepeatVector, keras.layers.Cropping1D, keras.layers.Cropping2D, keras.layers.Cropping3D,
                 keras.layers.ZeroPadding1D, keras.layers.ZeroPadding2D, keras.layers.ZeroPadding3D,
                 keras.layers.UpSampling1D, keras.layers.UpSampling2D, keras.layers.UpSampling3D,
                 keras.layers.MaxPooling1D, keras.layers.MaxPooling2D, keras.layers.MaxPooling3D,
                 keras.layers.AveragePooling1D, keras.layers.AveragePooling2D, keras.layers.AveragePooling3D,
                 keras.layers.GlobalMaxPooling1D, keras.layers.GlobalMaxPooling2D, keras.layers.GlobalMaxPooling3D,
                 keras.layers.GlobalAveragePooling1D, keras.layers.GlobalAveragePooling2D,
                 keras.layers.GlobalAveragePooling3D, keras.layers.Concatenate, keras.layers.Add,
                 keras.layers.Average, keras.layers.Maximum, keras.layers.Minimum, keras.layers.Multiply)

def _non_negative(tensor, known: dict[int, bool] | None = None) -> bool:
    """Whether a tensor of a Keras graph is known never to be negative: made by a layer with a
    non-negative activation (or a ReLU layer without a negative slope or threshold), through
    layers that keep the sign. Anything else (a linear, tanh or ELU layer, a normalization,
    an input, an operation) is not known to be."""
    known = {} if known is None else known
    if id(tensor) in known:
        return known[id(tensor)]
    history = getattr(tensor, "_keras_history", None)
    layer = history.operation if history is not None else None
    result, inputs = False, []
    if isinstance(layer, keras.layers.ReLU):
        result = not layer.negative_slope and (layer.threshold or 0) >= 0
    elif isinstance(layer, _ACTIVATED):
        activation = keras.activations.serialize(layer.activation)
        result = activation in NON_NEGATIVE
        if activation == "linear" and isinstance(layer, keras.layers.Activation):
            inputs = _inputs(layer, history.node_index)
    elif isinstance(layer, keras.layers.Softmax):
        result = True
    elif isinstance(layer, keras.Model):  # a model used as a layer: what makes its output
        result = len(layer.outputs) == 1 and _non_negative(layer.outputs[0], known)
    elif isinstance(layer, _SIGN_KEEPING):
        inputs = _inputs(layer, history.node_index)
    if inputs:
        result = all(_non_negative(t, known) for t in inputs)
    known[id(tensor)] = result
    return result

def _inputs(layer: keras.layers.Layer, node_index: int) -> list:
    """The tensors a layer was called on at one of its calls in the graph."""
    nodes = getattr(layer, "_inbound_nodes", [])
    return list(nodes[node_index].input_tensors) if node_index < len(nodes) else []


def _scaled(model: keras.Model, output):
    """The output through the model's target scaling, where it has one (the project's regressor)."""
    for layer in model.layers:
        if layer.name == TARGET_SCALE:
            return type(layer).from_config(layer.get_config())(output)
    return output
