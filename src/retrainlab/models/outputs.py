"""What a model outputs, and the loss it is trained with against it: the output layer
(softmax or sigmoid class probabilities, or one linear unit: a regressor's number, in the
label's units through the target's scaling), a brought model's logits read as its loss
says, what task a model's head does, and the compiled optimizer and loss of each training.

The third step of loading a model, after its file and its inputs: a brought model's head
checked against the data's task, its output units named by the labels and read as class
probabilities (`adopted_outputs`); the data's task and why it applied (`task_of`)."""

from __future__ import annotations

import re
from typing import Any

import keras

from retrainlab.base.errors import ModelShapeError, ModelSourceError
from retrainlab.base.tasks import CLASSIFICATION, REGRESSION
from retrainlab.config import Params
from retrainlab.data import Prepared
from retrainlab.models.files import copy_model
from retrainlab.models.inputs import model_input

OUTPUT = "output"
TARGET_SCALE = "target_scale"  # the project's regressor: the output unit's value in the label's units

HEAD_ACTIVATIONS = ("softmax", "sigmoid")
# Losses a regressor may have been compiled with, which it keeps when trained further.
REGRESSION_LOSSES = ("mean_squared_error", "mse", "mean_absolute_error", "mae", "huber", "huber_loss", "log_cosh",
                     "mean_squared_logarithmic_error", "msle")
# What a summary.json written before tasks were decided (no `task`) was: a classifier's data.
NO_TASK_RULE = "summary.json notes no task: data prepared before data.task, read as classes"


def adopted_outputs(model: keras.Model, compiled: dict[str, Any] | None, data: Prepared, params: Params,
                    where: str) -> tuple[keras.Model, dict[str, Any] | None, str, list]:
    """A brought model's outputs read for the data: that its head does the data's task, which
    label each output unit is (data.labels in order, else the initial data's labels sorted),
    and its output read as class probabilities (a regressor's: kept as it is), with the loss
    settings to train it with. Returns (model, compiled, task, labels); `where` names it."""
    task, rule = task_of(data)
    check_task(model, compiled, task, data.label, rule, where)
    if task == REGRESSION:
        if params.data.labels:
            raise ModelSourceError(f"parameter 'data.labels' lists {params.data.labels}, but the label "
                                   f"'{data.label}' is read as regression ({rule}): a regressor has no classes to "
                                   "order; remove data.labels")
        model, compiled = probability_output(model, compiled, where, task=REGRESSION)
        return model, compiled, REGRESSION, []
    known = data.classes("initial_train", "initial_test")
    labels = typed_labels(params.data.labels, known) if params.data.labels else known
    check_output_width(model, labels, where)
    unknown = [label for label in known if label not in labels]
    if unknown:
        raise ModelShapeError(f"{where}: the initial data has label {unknown[0]!r}, which data.labels does not list; "
                              "list every label the model outputs, in output order")
    model, compiled = probability_output(model, compiled, where)
    return model, compiled, task, labels


def task_of(data: Prepared) -> tuple[str, str]:
    """The data's task and why it applied, as summary.json says them."""
    if data.summary.task is None:
        return CLASSIFICATION, NO_TASK_RULE
    return data.summary.task, data.summary.task_rule or f"summary.json: task {data.summary.task}"


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


def check_output_width(model: keras.Model, labels: list, where: str) -> None:
    if len(model.outputs) != 1 or len(model.outputs[0].shape) != 2:
        raise ModelShapeError(f"{where}: the model must have one output of class probabilities, shape (None, classes)")
    width = model.outputs[0].shape[-1]
    if max(width, 2) != len(labels):  # one sigmoid unit is two classes
        raise ModelShapeError(
            f"{where}: the model has {width} output units but the data has {len(labels)} labels "
            f"({', '.join(map(str, labels[:10]))}); list the model's labels in output order in data.labels"
        )


def model_task(model: keras.Model, compiled: dict[str, Any] | None) -> str | None:
    """What a model's head does: class probabilities (a softmax or sigmoid, or a linear layer
    compiled with a from_logits=True loss) or one number (one linear unit otherwise); None
    for anything else."""
    layer = head_layer_of(model)
    activation = _activation(layer)
    if activation in HEAD_ACTIVATIONS or (activation == "linear" and _loss_config(compiled).get("from_logits")):
        return CLASSIFICATION
    if activation == "linear" and model.outputs[0].shape[-1] == 1:
        return REGRESSION
    return None


def check_task(model: keras.Model, compiled: dict[str, Any] | None, task: str, label: str, rule: str,
               where: str) -> None:
    """A brought model whose head does not do the data's task is one line naming the
    label, the task setting (and why it applied) and the model's head."""
    own = model_task(model, compiled)
    if own is not None and own != task:
        raise task_conflict(model, own, task, label, rule, where)


def task_conflict(model: keras.Model, own: str, task: str, label: str, rule: str, where: str) -> ModelShapeError:
    """The one line for a model doing task `own` given data of `task`: the model's head, the
    label, the task setting and why it applied (`rule`), and what to do."""
    layer = head_layer_of(model)
    width = model.outputs[0].shape[-1]
    head = (f"its output layer '{layer.name}' ({type(layer).__name__}, {width} unit{'s' if width != 1 else ''}, "
            f"activation {_activation(layer)})")
    does = "predicts a number (regression)" if own == REGRESSION else "gives class probabilities (classification)"
    if own == REGRESSION:
        fix = ("set baseline.from to a classifier (a softmax or sigmoid output), or, if the label is a quantity, set "
               "data.task: regression")
    else:
        fix = ("set baseline.from to a regressor (one linear output unit), or, if the label is classes, set "
               "data.task: classification")
    return ModelShapeError(f"{where}: {head} {does}, but the label '{label}' is read as {task} ({rule}); {fix}")


def head_layer_of(model: keras.Model) -> keras.layers.Layer:
    """The layer that makes the model's output: the last one, less a trailing scaling of
    the target (the project's regressor's)."""
    layers = [layer for layer in model.layers if layer.name != TARGET_SCALE]
    return layers[-1]


def probability_output(model: keras.Model, compiled: dict[str, Any] | None, where: str, task: str = CLASSIFICATION):
    """A brought model whose output retrainlab reads as class probabilities, and the loss
    settings to train it with: returns (model, compiled).

    A last layer with a softmax or sigmoid gives probabilities. A linear one saved compiled
    with a `from_logits=True` loss gives logits: its softmax (one unit: its sigmoid) is put
    into that layer, the same weights giving the probabilities its loss computed, and the
    loss keeps its settings, now on probabilities. Anything else is refused in one line: the
    project cannot read it (a linear unit under a regression loss predicts a number). A
    regressor (`task` regression, whose head `check_task` has checked) is kept as it is."""
    if task == REGRESSION:
        layer, shape = head_layer_of(model), model.outputs[0].shape
        if len(model.outputs) != 1 or len(shape) != 2 or shape[-1] != 1 or _activation(layer) != "linear":
            outputs = f"{len(model.outputs)} outputs" if len(model.outputs) != 1 else f"output shape {tuple(shape)}"
            raise ModelShapeError(
                f"{where}: its output layer '{layer.name}' ({type(layer).__name__}, activation {_activation(layer)}, "
                f"{outputs}) does not predict one number, but the label is read as regression: end the model with "
                "one linear unit (Dense(1)) that predicts the label"
            )
        return model, compiled
    last = model.layers[-1]
    activation = _activation(last)
    logits = _loss_config(compiled).get("from_logits") is True
    if activation not in HEAD_ACTIVATIONS and not (activation == "linear" and logits):
        width = model.outputs[0].shape[-1]
        number = (" (one linear unit predicts a number: set data.task: regression if the label is one)"
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

def loss_name(compiled: dict[str, Any] | None) -> str | None:
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
    return keras.Model(model_input(copy), output, name=copy.name)

def head_layer(model: keras.Model, why: str, regression: bool = False) -> keras.layers.Dense:
    """The model's output layer, which surgery rebuilds: a Dense layer with a softmax or
    sigmoid activation (a regressor's: one linear unit), the last but a target scaling.
    `why` says what the surgery is for."""
    last = head_layer_of(model)
    activation = keras.activations.serialize(last.activation) if isinstance(last, keras.layers.Dense) else None
    ok = (activation == "linear" and last.units == 1) if regression else activation in HEAD_ACTIVATIONS
    if not ok:
        wanted = "one linear unit" if regression else "a softmax (or sigmoid) activation"
        raise ModelShapeError(
            f"the model's last layer '{last.name}' ({type(last).__name__}, activation {activation}) cannot be rebuilt "
            f"to {why}: end the model with a Dense layer with {wanted}"
        )
    return last

def output_layer(n_classes: int, kernel_initializer, name: str = OUTPUT, softmax: bool = False) -> keras.layers.Dense:
    """Two classes get one sigmoid unit, unless `softmax` (a brought two-unit softmax stays
    one); no classes (a regressor) one linear unit."""
    if n_classes == 0:
        return keras.layers.Dense(1, activation="linear", kernel_initializer=kernel_initializer, name=name)
    if n_classes == 2 and not softmax:
        return keras.layers.Dense(1, activation="sigmoid", kernel_initializer=kernel_initializer, name=name)
    return keras.layers.Dense(n_classes, activation="softmax", kernel_initializer=kernel_initializer, name=name)

def compile_model(
    model: keras.Model, learning_rate: float, compiled: dict[str, Any] | None = None,
    objective: dict[str, Any] | None = None, regression: bool = False,
) -> str:
    """Compile for training on integer class targets (`regression`: on the label's values,
    with the mean squared error); return what was used, for the run.

    A brought model's own optimizer (fresh state, same settings) and loss, with its settings
    (`probability_output` says what became of from_logits), are used where it has them and
    the loss takes class indices; the params otherwise. `objective` (loss, metrics, text:
    retrainlab.training.loop.Objective) replaces the loss when a plan adds loss terms.
    """
    binary = model.outputs[0].shape[-1] == 1
    name = "binary_crossentropy" if binary else "sparse_categorical_crossentropy"
    metrics: list = ["accuracy"]
    if regression:
        name, metrics = "mean_squared_error", [keras.metrics.RootMeanSquaredError(name="rmse")]
    loss, optimizer = name, keras.optimizers.Adam(learning_rate=learning_rate)
    used = f"Adam(learning_rate={learning_rate:g}), {name} (params)"
    if compiled and compiled.get("optimizer"):
        optimizer = keras.optimizers.deserialize(compiled["optimizer"])
        used = f"{type(optimizer).__name__} as the model was compiled"
        own = loss_name(compiled)
        if regression and own in REGRESSION_LOSSES:
            name = own
            used += f", {own}{_loss_settings(compiled)}"
            loss = keras.losses.deserialize(compiled["loss"]) if isinstance(compiled["loss"], dict) else own
        elif regression:
            used += f", {name} (its own loss, {own}, is no regression loss)"
        elif own == name:
            used += f", {name}{_loss_settings(compiled)}"
            loss = keras.losses.deserialize(compiled["loss"]) if isinstance(compiled["loss"], dict) else name
        else:
            used += f", {name} (its own loss, {own}, does not take class indices)"
    if objective is not None:
        used = used.replace(name, objective["text"], 1) if name in used else f"{used}, {objective['text']}"
        model.compile(optimizer=optimizer, loss=objective["loss"], metrics=objective["metrics"])
        return used
    model.compile(optimizer=optimizer, loss=loss, metrics=metrics)
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
