"""The four answers to "I have a model and new data": one signature, one training template.

A strategy is a plain function `(data, params, baseline, seed) -> Plan`: which model to start
from, which rows to train on, for how long. `fit` trains every plan the same way, so the
strategies differ only where they really differ.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import keras
import numpy as np
import pandas as pd

from retrainlab import layout
from retrainlab.config import Params
from retrainlab.data import Prepared, plain
from retrainlab.errors import DataError
from retrainlab.models import ModelBundle, attach_head, build_model, compile_model, grow_output

BASELINE = layout.STRATEGY_NAMES[0]


@dataclasses.dataclass
class Plan:
    bundle: ModelBundle  # the model to train, not yet compiled
    train_splits: tuple[str, ...]
    epochs: int
    learning_rate: float
    batch_size: int


def baseline(data: Prepared, params: Params, base: ModelBundle | None, seed: int) -> Plan:
    """The model as first trained, on the initial data only: also "leave it alone"."""
    return _fresh(data, params, ("initial_train",), seed)


def full_retrain(data: Prepared, params: Params, base: ModelBundle | None, seed: int) -> Plan:
    """A fresh model trained from scratch on the initial and the incremental data."""
    return _fresh(data, params, ("initial_train", "incremental_train"), seed)


def incremental(data: Prepared, params: Params, base: ModelBundle, seed: int) -> Plan:
    """The baseline trained further, every layer, on the incremental data only."""
    labels = grown_labels(base.labels, data.y("incremental_train"))
    model = grow_output(base.model, len(labels), seed)
    p = params.incremental
    return Plan(_bundle(model, data, labels), ("incremental_train",), p.epochs, p.learning_rate, params.model.batch_size)


def fine_tune(data: Prepared, params: Params, base: ModelBundle, seed: int) -> Plan:
    """The baseline's feature layers frozen; new task layers and the output trained on new data."""
    labels = grown_labels(base.labels, data.y("incremental_train"))
    p = params.fine_tune
    model = attach_head(base.model, p.new_layers, len(labels), seed)
    return Plan(_bundle(model, data, labels), ("incremental_train",), p.epochs, p.learning_rate, params.model.batch_size)


Strategy = Callable[[Prepared, Params, ModelBundle | None, int], Plan]
STRATEGIES: dict[str, Strategy] = dict(
    zip(layout.STRATEGY_NAMES, (baseline, full_retrain, incremental, fine_tune), strict=True)
)


def grown_labels(known: list, new_rows: np.ndarray) -> list:
    """The known labels in their order, then labels only the new rows have, sorted.

    Keeping the old order keeps each old class on its old output unit.
    """
    seen = set(known)
    return list(known) + sorted({plain(v) for v in new_rows} - seen)


def seed_everything(seed: int) -> None:
    """Same seed, params and data give the same metrics on CPU."""
    keras.utils.set_random_seed(seed)
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()


def training_rows(plan: Plan, data: Prepared) -> tuple[pd.DataFrame, np.ndarray]:
    x = pd.concat([data.x(s) for s in plan.train_splits], ignore_index=True)
    y = np.concatenate([data.y(s) for s in plan.train_splits])
    return x, y


def fit(
    plan: Plan, data: Prepared, callbacks: list | None = None, initial_epoch: int = 0
) -> keras.callbacks.History:
    """Compile and train the plan's model: the one training loop every strategy uses.

    `initial_epoch` > 0 continues a run from a checkpoint already loaded into the model.
    """
    x, y = training_rows(plan, data)
    targets = plan.bundle.encode(y)
    if plan.bundle.model.get_layer("output").units == 1:
        targets = targets.astype("float32")
    compile_model(plan.bundle.model, plan.learning_rate)
    return plan.bundle.model.fit(
        plan.bundle.inputs(x),
        targets,
        epochs=plan.epochs,
        initial_epoch=initial_epoch,
        batch_size=plan.batch_size,
        shuffle=True,
        verbose=2,
        callbacks=callbacks or [],
    )


def _fresh(data: Prepared, params: Params, splits: tuple[str, ...], seed: int) -> Plan:
    x = pd.concat([data.x(s) for s in splits], ignore_index=True)
    labels = sorted({plain(v) for s in splits for v in data.y(s)})
    if len(labels) < 2:
        raise DataError(f"{' + '.join(splits)}: only one class ({labels[0]!r}); a classifier needs two or more")
    m = params.model
    model = build_model(data.features, x, len(labels), m.hidden_units, m.dropout, seed)
    return Plan(_bundle(model, data, labels), splits, m.epochs, m.learning_rate, m.batch_size)


def _bundle(model: keras.Model, data: Prepared, labels: list) -> ModelBundle:
    return ModelBundle(model, data.features, labels, data.label)
