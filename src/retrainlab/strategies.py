"""The four answers to "I have a model and new data": one signature, one training template.

A strategy is a plain function `(data, params, baseline, seed) -> Plan`: which model to start
from, which rows to train on, for how long. `fit` trains every plan the same way, so the
strategies differ only where they really differ.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections.abc import Callable

import keras
import numpy as np

from retrainlab import layout
from retrainlab.config import TRAIN, Params
from retrainlab.distribute import MULTI_WORKER, Distribution, fit_multi_worker
from retrainlab.data import Prepared, plain
from retrainlab.errors import DataError, TrainingError
from retrainlab.models import (
    ModelBundle,
    attach_head,
    build_model,
    compile_model,
    copy_model,
    grow_output,
    reinitialised,
)
from retrainlab.stream import FeatureStats, training_dataset, windows

BASELINE = layout.STRATEGY_NAMES[0]


@dataclasses.dataclass
class Plan:
    bundle: ModelBundle  # the model to train, not yet compiled
    train_splits: tuple[str, ...]
    epochs: int
    learning_rate: float
    batch_size: int
    section: str  # the params section its epochs and learning rate come from, for messages
    compiled_with: str = ""  # the optimizer and loss `fit` used, for the run


def baseline(data: Prepared, params: Params, base: ModelBundle | None, seed: int) -> Plan:
    """The model as first trained, on the initial data only: also "leave it alone". A model
    the user brought (`baseline.from`, passed as `base`) is taken as it is: nothing to train."""
    if base is not None:
        return Plan(dataclasses.replace(base, model=copy_model(base.model)), (), 0, 0.0, params.model.batch_size,
                    "model")
    return _fresh(data, params, ("initial_train",), seed)


def full_retrain(data: Prepared, params: Params, base: ModelBundle | None, seed: int) -> Plan:
    """A fresh model trained from scratch on the initial and the incremental data: the
    project's MLP, or a brought model's architecture with fresh weights and its
    preprocessing layers adapted again on these rows."""
    splits = ("initial_train", "incremental_train")
    if params.baseline.from_ == TRAIN or base is None:
        return _fresh(data, params, splits, seed)
    labels = grown_labels(base.labels, data.classes(*splits))
    paths = [data.path(s) for s in splits]
    columns = [f.name for f in data.features]
    model = reinitialised(
        base.model, lambda: (base.inputs(w) for w in windows(paths, columns, np.random.default_rng(seed)))
    )
    bundle = dataclasses.replace(base, model=grow_output(model, len(labels), seed), labels=labels)
    m = params.model
    return Plan(bundle, splits, m.epochs, m.learning_rate, m.batch_size, "model")


def incremental(data: Prepared, params: Params, base: ModelBundle, seed: int) -> Plan:
    """The baseline trained further, every layer, on the incremental data only (a brought
    model with its own compiled optimizer and loss, where it has them)."""
    labels = grown_labels(base.labels, data.classes("incremental_train"))
    bundle = dataclasses.replace(base, model=grow_output(base.model, len(labels), seed), labels=labels)
    p = params.incremental
    return Plan(bundle, ("incremental_train",), p.epochs, p.learning_rate, params.model.batch_size, "incremental")


def fine_tune(data: Prepared, params: Params, base: ModelBundle, seed: int) -> Plan:
    """The baseline frozen but its last `trainable_layers` layers; new task layers and the
    output trained on the new data, at fine_tune's learning rate."""
    labels = grown_labels(base.labels, data.classes("incremental_train"))
    p = params.fine_tune
    model = attach_head(base.model, p.new_layers, len(labels), seed, p.trainable_layers)
    bundle = dataclasses.replace(base, model=model, labels=labels, compiled=None)
    return Plan(bundle, ("incremental_train",), p.epochs, p.learning_rate, params.model.batch_size, "fine_tune")


Strategy = Callable[[Prepared, Params, ModelBundle | None, int], Plan]
STRATEGIES: dict[str, Strategy] = dict(
    zip(layout.STRATEGY_NAMES, (baseline, full_retrain, incremental, fine_tune), strict=True)
)


def grown_labels(known: list, new_labels) -> list:
    """The known labels in their order, then labels only the new data has, sorted.

    Keeping the old order keeps each old class on its old output unit.
    """
    seen = set(known)
    return list(known) + sorted({plain(v) for v in new_labels} - seen)


def seed_everything(seed: int) -> None:
    """Same seed, params and data give the same metrics on CPU."""
    keras.utils.set_random_seed(seed)
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()


class DivergenceGuard(keras.callbacks.Callback):
    """Stops training at the end of the first epoch whose loss is not finite.

    A diverged model predicts NaN, so it must never be checkpointed, evaluated as if it were
    a model, or registered: it goes first among the callbacks and raises, which fails the
    step's MLflow runs with this message. It looks at epoch ends only: a batch-level hook
    would make Keras fetch every batch's loss from the device.
    """

    def __init__(self, plan: Plan) -> None:
        super().__init__()
        self.plan = plan

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        loss = float((logs or {}).get("loss", 0.0))
        if not math.isfinite(loss):
            raise TrainingError(
                f"training diverged: the loss became {loss} in epoch {epoch + 1}; lower "
                f"{self.plan.section}.learning_rate (now {self.plan.learning_rate:g}) or look for extreme values "
                "in the data"
            )


def fit(
    plan: Plan,
    data: Prepared,
    callbacks: list | None = None,
    initial_epoch: int = 0,
    seed: int = 0,
    dist: Distribution | None = None,
) -> None:
    """Compile and train the plan's model: the one training template every strategy uses.

    The rows stream from the plan's split files (retrainlab.stream), so memory stays bounded
    whatever their size. `initial_epoch` > 0 continues a run from a checkpoint already
    loaded into the model. Under `dist` the model must have been built in `dist.scope()`;
    a multi-worker cluster trains with its own step (retrainlab.distribute says why).
    """
    paths = [data.path(split) for split in plan.train_splits]
    callbacks = [DivergenceGuard(plan), *(callbacks or [])]
    if dist is not None and dist.kind == MULTI_WORKER:
        rows = sum(data.rows(split) for split in plan.train_splits)
        fit_multi_worker(dist, plan, paths, rows, callbacks, seed)
        return
    with dist.scope() if dist is not None else contextlib.nullcontext():
        plan.compiled_with = compile_model(plan.bundle.model, plan.learning_rate, plan.bundle.compiled)
        batches = training_dataset(plan.bundle, paths, plan.batch_size, seed, first_epoch=initial_epoch)
        plan.bundle.model.fit(
            batches, epochs=plan.epochs, initial_epoch=initial_epoch, shuffle=False, verbose=2,
            callbacks=callbacks,
        )


def _fresh(data: Prepared, params: Params, splits: tuple[str, ...], seed: int) -> Plan:
    labels = data.classes(*splits)
    if len(labels) < 2:
        raise DataError(f"{' + '.join(splits)}: only one class ({labels[0]!r}); a classifier needs two or more")
    m = params.model
    stats = FeatureStats.of_files([data.path(s) for s in splits], data.features)
    model = build_model(data.features, stats, len(labels), m.hidden_units, m.dropout, seed)
    return Plan(_bundle(model, data, labels), splits, m.epochs, m.learning_rate, m.batch_size, "model")


def _bundle(model: keras.Model, data: Prepared, labels: list) -> ModelBundle:
    return ModelBundle(model, data.features, labels, data.label)
