"""The one training path: every strategy's plan is trained here, with its hooks honoured, on
a single device, mirrored over this machine's devices and on a multi-worker cluster alike.

- Rows: each `Rows` of the plan is a prepared split, whole or sampled (`sampled_rows`: a
  uniform sample without replacement, drawn holding only the sample's row numbers). Rows
  that fit the memory budget (`feed_of`) are read and encoded once and held in memory;
  larger ones stream from the files in bounded memory. Both feed the same batches in the
  same order (`training_dataset`).
- Loss terms: with any, each row's target carries the class index and then every term's
  targets (computed from the row's inputs by the term), and the loss is the cross-entropy
  plus the terms (`Objective`), the same function on both routes below.
- Transform: applied to the starting weights before the first epoch, not on a resume (the
  checkpoint holds weights already transformed and trained).
- Callbacks: the `DivergenceGuard` first, then the plan's, then the caller's, then `StopCheck`.

One process trains with Keras' `model.fit` (plain Keras 3: the same code runs on the JAX and
PyTorch backends, and costs nothing over a bare Keras script, docs/BENCHMARKS.md). A
multi-worker cluster trains with a step of its own (`_fit_multi_worker`), because Keras 3's
`model.fit` fails under `MultiWorkerMirroredStrategy` (keras-team/keras#20585): a
`tf.GradientTape` step under `strategy.run`, with the same dataset, loss and optimizer. Every
worker reads the same seeded stream of global batches and trains on its slice of each, so
the all-reduced gradient is the gradient of the batch one worker would see.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import math
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import psutil
import pyarrow as pa
import pyarrow.parquet as pq
from keras import ops

from retrainlab.base import layout
from retrainlab.base.errors import ConfigError, TrainingError, raise_if_stop_asked
from retrainlab.data import stream
from retrainlab.data.stream import WINDOW_ROWS, decoded_bytes, file_rows, mixed, pieces, windows
from retrainlab.measure import evaluation
from retrainlab.models.bundle import ModelBundle
from retrainlab.models.files import require_finite_weights
from retrainlab.models.outputs import compile_model
from retrainlab.strategies import Plan, Rows
from retrainlab.training.distribute import MULTI_WORKER, Distribution
from retrainlab.measure.task import measure_of_summary, rules_of

log = logging.getLogger(__name__)


def seed_everything(seed: int) -> None:
    """Same seed, params and data give the same metrics on CPU."""
    keras.utils.set_random_seed(seed)
    if keras.backend.backend() == "tensorflow":
        # TensorFlow where only it serves (op determinism, tf.data, tf.distribute): the rest is backend-agnostic Keras
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


class StopCheck(keras.callbacks.Callback):
    """Raises a stop (SIGTERM, Ctrl-C) again after each batch and epoch once one was asked for.

    The signal handler raises it wherever the signal lands, and Keras swallows it where that
    is its conversion of a batch's logs to numbers (base.errors.raise_if_stop_asked):
    training went on to the end. Raised here, outside that conversion, it stops the training
    after the batch it landed in."""

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        raise_if_stop_asked()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        raise_if_stop_asked()  # the multi-worker step calls no batch hooks


class HeldOutCurves(keras.callbacks.Callback):
    """The primary figure on samples of the old and the new test sets after every epoch,
    added to the epoch's logs as `held_out_acc_old` and `held_out_acc_new` (a regressor's:
    `held_out_rmse_old`, ...; the callbacks after it, the MLflow logger and the checkpoint's
    history, see them): forgetting as it happens.

    The samples are encoded once and scored with `predict_on_batch`, Keras' compiled predict
    step: about a millisecond a call, where an eager call of a model with preprocessing
    layers took 25 to 60 and `model.predict` sets up tens.
    """

    ROWS = 2_000

    def __init__(self, bundle: ModelBundle, data, distributed: bool = False) -> None:
        super().__init__()
        # Under a tf.distribute strategy, predict_on_batch returns each replica's copy of the
        # batch (484 rows for 242 over two devices): the model is called directly there.
        self.bundle, self.distributed = bundle, distributed
        self.sets = {}
        for name, split in evaluation.TEST_SETS.items():
            frame = data.sample(split, self.ROWS)
            inputs = bundle.inputs(frame)
            if distributed:  # a direct call takes tensors only, not a mix of tensors (text) and arrays
                inputs = keras.tree.map_structure(
                    lambda v: keras.ops.convert_to_tensor(v) if isinstance(v, np.ndarray) else v, inputs)
            self.sets[name] = (inputs, bundle.encode(frame[data.label].to_numpy()))

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if logs is None:
            return
        for name, (inputs, truth) in self.sets.items():
            if not len(truth):
                continue
            model = self.bundle.model
            probs = (keras.ops.convert_to_numpy(model(inputs, training=False)) if self.distributed
                     else np.asarray(model.predict_on_batch(inputs)))
            if self.bundle.regression:
                errors = probs.reshape(-1).astype(np.float64) - truth
                logs[f"held_out_rmse_{name}"] = float(np.sqrt(np.mean(errors**2)))
                continue
            predicted = (probs[:, 0] > 0.5).astype(int) if probs.shape[1] == 1 else probs.argmax(axis=1)
            logs[f"held_out_acc_{name}"] = float(np.mean(predicted == truth))


class SetAsideLoss(keras.callbacks.Callback):
    """The loss on the training rows set aside for early stopping, added to each epoch's logs
    as `val_loss`, which `EarlyStopping` watches. The rows are encoded once and scored with
    `predict_on_batch`, as `HeldOutCurves` scores, rather than as Keras' `validation_data`,
    whose input pipeline makes TensorFlow log an error line about an attribute it ignores."""

    NAME = "val_loss"
    BATCH = 4096

    def __init__(self, bundle: ModelBundle, rows: pd.DataFrame, objective: Objective) -> None:
        super().__init__()
        self.bundle, self.objective = bundle, objective
        self.batches = [(bundle.inputs(rows.iloc[i:i + self.BATCH]),
                         bundle.encode(rows[bundle.label_column].iloc[i:i + self.BATCH].to_numpy()))
                        for i in range(0, len(rows), self.BATCH)]

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if logs is None:
            return
        total, rows = 0.0, 0
        for inputs, truth in self.batches:
            probs = np.asarray(self.bundle.model.predict_on_batch(inputs))
            target = truth.astype("float32") if self.bundle.binary or self.bundle.regression else truth
            total += float(np.sum(keras.ops.convert_to_numpy(self.objective.per_row(target, probs))))
            rows += len(truth)
        logs[self.NAME] = total / rows


class EpochProgress(keras.callbacks.Callback):
    """A line for the first epoch, every few and the last (about LINES a training), in place
    of Keras' progress bar where stdout is no terminal: a log, or DVC's output. A training
    that stops early says so at its end."""

    LINES = 10

    def __init__(self, epochs: int) -> None:
        super().__init__()
        self.epochs, self.every = epochs, max(1, epochs // self.LINES)
        self._first, self._started = True, time.perf_counter()
        self._last: tuple[int, str] | None = None  # the last epoch not shown yet

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._started = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        done = epoch + 1
        figures = "  ".join(f"{name} {float(value):.4f}" for name, value in (logs or {}).items())
        line = f"  Epoch {done}/{self.epochs}  {figures}  ({time.perf_counter() - self._started:.1f} s)"
        if self._first or done % self.every == 0 or done == self.epochs:
            log.info(line)
            self._last = None
        else:
            self._last = (done, line)
        self._first = False

    def on_train_end(self, logs: dict | None = None) -> None:
        if self._last is not None:
            done, line = self._last
            log.info(f"{line}: stopped early, no better loss on the rows set aside; the best epoch's weights kept")


MEMORY, STREAM = "memory", "stream"  # how `fit` feeds the rows (`Plan.feed`)
# Held in memory, the rows take about this many times their decoded size in the files: the
# encoded arrays, an epoch's shuffled copy of them, and tf.data's copy of that epoch.
MEMORY_FACTOR = 3
# The memory budget when params.yaml's `memory_budget_mb` is null: this share of the machine's.
MEMORY_SHARE = 0.25


def feed_of(paths: Sequence[Path], budget_mb: float | None) -> str:
    """MEMORY when the rows of `paths`, held as arrays, fit `budget_mb` (None: a quarter of
    the machine's memory), else STREAM."""
    budget = psutil.virtual_memory().total * MEMORY_SHARE if budget_mb is None else budget_mb * 2**20
    return MEMORY if MEMORY_FACTOR * sum(decoded_bytes(p) for p in paths) <= budget else STREAM


def fit(
    plan: Plan,
    data,
    callbacks: Sequence = (),
    initial_epoch: int = 0,
    seed: int = 0,
    dist: Distribution | None = None,
    progress: bool = False,
    memory_budget_mb: float | None = None,
) -> None:
    """Compile and train the plan's model. `initial_epoch` > 0 continues a run from a
    checkpoint already loaded into the model. Under `dist` the model must have been built
    in `dist.scope()`. With `progress`, the epochs are shown: Keras' progress bar on a
    terminal, else `EpochProgress`'s lines. Rows that fit `memory_budget_mb` are held in
    memory (`feed_of`); `plan.feed` says which way they were fed."""
    model = plan.bundle.model
    if plan.transform is not None and initial_epoch == 0:
        plan.transform(model, seed)
    callbacks = [DivergenceGuard(plan), *plan.callbacks, *callbacks, StopCheck()]
    objective = Objective(plan.bundle.binary, plan.loss_terms, plan.bundle.regression)
    multi_worker = dist is not None and dist.mode == MULTI_WORKER
    stopping = plan.stopping if plan.epochs and not multi_worker and not plan.loss_terms else None
    with sampled_rows(data, plan.rows, seed) as paths, set_aside(data, paths, stopping, seed) as (paths, aside):
        plan.feed = feed_of(paths, memory_budget_mb)
        if multi_worker:
            _fit_multi_worker(dist, plan, objective, paths, callbacks, seed)
            plan.epochs_trained = plan.epochs
            return
        with dist.scope() if dist is not None else contextlib.nullcontext():
            plan.compiled_with = compile_model(model, plan.learning_rate, plan.bundle.compiled, objective.compiled(),
                                               plan.bundle.regression)
            batches = training_dataset(plan.bundle, paths, plan.batch_size, seed, initial_epoch, plan.loss_terms,
                                       in_memory=plan.feed == MEMORY)
            if aside is not None:
                plan.rows_aside = len(aside)
                # After the plan's own callbacks, before the caller's (which log and checkpoint the epoch).
                callbacks[1 + len(plan.callbacks):1 + len(plan.callbacks)] = [
                    SetAsideLoss(plan.bundle, aside, objective),
                    keras.callbacks.EarlyStopping(monitor=SetAsideLoss.NAME, patience=stopping.patience,
                                                  restore_best_weights=True)]
            bar = progress and sys.stdout.isatty()
            if progress and not bar:
                callbacks.append(EpochProgress(plan.epochs))
            history = model.fit(batches, epochs=plan.epochs, initial_epoch=initial_epoch, shuffle=False,
                                verbose=int(bar), callbacks=callbacks)
            plan.epochs_trained = initial_epoch + len(history.history.get("loss", []))
            if objective.terms:  # saved with a loss any Keras can load: the terms are training-only
                model.compile(optimizer=model.optimizer, loss=objective.base_loss, metrics=[objective.metric_name])


def evaluate(bundle: ModelBundle, data, plan: Plan, reference: float | None, predictions=None,
             refused: str = "") -> dict[str, float]:
    """The task's figures (accuracy, loss and F1; RMSE, MAE and R²) on the old and the new
    test sets, read in chunks, and the forgetting against `reference`, the same seed's
    baseline figure on the old data (None: the model is the baseline). A model whose loss or
    predictions are not finite is refused (`refused` says what that spares, e.g. ", so it is
    not registered")."""
    remedy = (f"lower {plan.section}.learning_rate (now {plan.learning_rate:g}) or look for extreme values in the "
              "data")
    require_finite_weights(bundle.model, f"the {'trained ' if plan.epochs else ''}model", remedy)
    tests = {
        name: stream.labelled_chunks(data.path(split), data.features, data.label)
        for name, split in evaluation.TEST_SETS.items()
    }
    measure = measure_of_summary(data.summary)
    metrics = evaluation.evaluate(bundle.predict, bundle.labels, tests, predictions, measure, rules_of(data.summary))
    bad = [name for name, value in metrics.items() if not math.isfinite(value)]
    if bad:
        raise TrainingError(f"the trained model's {bad[0]} is {metrics[bad[0]]}: its predictions are not "
                            f"finite{refused}; {remedy}")
    own = metrics[measure.old] if reference is None else reference
    metrics[evaluation.FORGETTING] = measure.forgetting(own, metrics[measure.old])
    return metrics


def gpus_in_use() -> int:
    """GPUs the backend sees (0 where it has no GPU support built in)."""
    try:
        return len(keras.distribution.list_devices("gpu"))
    except Exception:  # the backend has no GPU support built in
        return 0


def rows_trained(data, plan: Plan) -> int:
    """Rows in one epoch of the plan."""
    return sum(r.limit if r.limit is not None else data.rows(r.split) for r in plan.rows)


@contextlib.contextmanager
def sampled_rows(data, rows: Sequence[Rows], seed: int) -> Iterator[list[Path]]:
    """The files to train on: a whole split's own file, or a file holding a uniform sample
    of `limit` of its rows (the same for the same seed), removed afterwards."""
    work = data.root / layout.WORK_DIR
    work.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=work, prefix="sample-") as scratch:
        paths = []
        for i, r in enumerate(rows):
            path = data.path(r.split)
            if r.limit is not None and r.limit < file_rows(path):
                sample = Path(scratch) / f"{i}-{r.split}.parquet"
                write_sample(path, sample, r.limit, np.random.default_rng([seed, i, 0x5A3]))
                path = sample
            paths.append(path)
        yield paths


def write_sample(source: Path, target: Path, rows: int, rng: np.random.Generator) -> None:
    """Write a uniform sample without replacement of `rows` of `source`'s rows, in file
    order. Memory: the sample's row numbers and one piece of the file."""
    chosen = np.sort(rng.choice(file_rows(source), size=rows, replace=False))
    schema = pq.read_schema(source)
    with pq.ParquetWriter(target, schema) as writer:
        start = 0
        for piece in pieces(source, schema.names):
            lo, hi = np.searchsorted(chosen, [start, start + len(piece)])
            if hi > lo:
                table = pa.Table.from_pandas(piece.iloc[chosen[lo:hi] - start], schema=schema, preserve_index=False)
                writer.write_table(table)
            start += len(piece)


def split_off(source: Path, target: Path, chosen: np.ndarray) -> list[pd.DataFrame]:
    """Write the rows of `source` not numbered `chosen` (sorted) to `target`, in file order,
    and return the chosen ones: one read of the file."""
    schema = pq.read_schema(source)
    chosen_pieces, start = [], 0
    with pq.ParquetWriter(target, schema) as writer:
        for piece in pieces(source, schema.names):
            lo, hi = np.searchsorted(chosen, [start, start + len(piece)])
            picked = np.zeros(len(piece), dtype=bool)
            picked[chosen[lo:hi] - start] = True
            if picked.any():
                chosen_pieces.append(piece[picked])
            if not picked.all():
                writer.write_table(pa.Table.from_pandas(piece[~picked], schema=schema, preserve_index=False))
            start += len(piece)
    return chosen_pieces


VALIDATION_ROWS = 20_000  # the most training rows set aside for early stopping: its loss is steady well before


@contextlib.contextmanager
def set_aside(data, paths: list[Path], stopping, seed: int) -> Iterator[tuple[list[Path], pd.DataFrame | None]]:
    """The training files less a uniform share `stopping.fraction` of their rows (at most
    VALIDATION_ROWS in all, each file in proportion), written beside them, and those rows,
    held in memory for the validation loss; the files as they are without `stopping`."""
    if stopping is None:
        yield paths, None
        return
    rng = np.random.default_rng([seed, 0x7A1])
    sizes = [file_rows(p) for p in paths]
    wanted = min(VALIDATION_ROWS, round(sum(sizes) * stopping.fraction))
    work = data.root / layout.WORK_DIR
    work.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=work, prefix="training-") as scratch:
        kept, aside = [], []
        for i, (path, rows) in enumerate(zip(paths, sizes)):
            count = min(rows - 1, round(wanted * rows / sum(sizes))) if rows > 1 else 0
            chosen = np.sort(rng.choice(rows, size=count, replace=False))
            rest = Path(scratch) / f"{i}-{path.name}"
            aside.extend(split_off(path, rest, chosen))
            kept.append(rest)
        frame = pd.concat(aside, ignore_index=True) if aside else None
        if frame is None or frame.empty:  # too few rows to set any aside: every epoch, as without it
            yield paths, None
            return
        yield kept, frame


class Objective:
    """The training loss: the cross-entropy on the class index (a regressor: the squared
    error of its number), plus the plan's loss terms.

    Without terms the targets are the class indices (the label's values) and the model is
    compiled with Keras' own loss by name (a brought model's own, where it fits). With terms
    each target row is [class index or value, term 1's targets, term 2's, ...].
    """

    def __init__(self, binary: bool, terms: Sequence = (), regression: bool = False) -> None:
        self.binary, self.terms, self.regression = binary, tuple(terms), regression

    def per_row(self, targets, probabilities):
        labels = targets[:, 0] if self.terms else targets
        if self.regression:
            loss = ops.square(probabilities[:, 0] - ops.cast(labels, probabilities.dtype))
        elif self.binary:
            loss = keras.losses.binary_crossentropy(ops.reshape(labels, (-1, 1)), probabilities)
        else:
            loss = keras.losses.sparse_categorical_crossentropy(ops.cast(labels, "int32"), probabilities)
        start = 1
        for term in self.terms:
            loss = loss + term(targets[:, start:start + term.width], probabilities)
            start += term.width
        return loss

    def accuracy(self, targets, probabilities):
        """Each row's hit (a regressor: its squared error, whose mean's root is the RMSE)."""
        labels = targets[:, 0] if self.terms else targets
        if self.regression:
            return ops.square(probabilities[:, 0] - ops.cast(labels, probabilities.dtype))
        if self.binary:
            predicted = ops.cast(probabilities[:, 0] > 0.5, "float32")
        else:
            predicted = ops.cast(ops.argmax(probabilities, axis=-1), "float32")
        return ops.cast(ops.equal(predicted, ops.cast(labels, "float32")), "float32")

    def compiled(self) -> dict | None:
        """What `compile_model` compiles with instead of the named loss, with terms only."""
        if not self.terms:
            return None
        loss = _PerRowLoss(self.per_row)
        if self.regression:
            return {"loss": loss, "metrics": [_RootMean(self.accuracy, name="rmse")], "text": self.compiled_text()}
        accuracy = keras.metrics.MeanMetricWrapper(self.accuracy, name="accuracy")
        return {"loss": loss, "metrics": [accuracy], "text": self.compiled_text()}

    @property
    def metric_name(self):
        return keras.metrics.RootMeanSquaredError(name="rmse") if self.regression else "accuracy"

    @property
    def base_loss(self) -> str:
        if self.regression:
            return "mean_squared_error"
        return "binary_crossentropy" if self.binary else "sparse_categorical_crossentropy"

    def compiled_text(self) -> str:
        return " + ".join([self.base_loss, *(type(t).__name__.lower() for t in self.terms)])


class _RootMean(keras.metrics.MeanMetricWrapper):
    """The root of a per-row figure's mean: the RMSE of a regressor's rows, whose targets
    carry the loss terms' targets too."""

    def result(self):
        return ops.sqrt(super().result())


class _PerRowLoss(keras.losses.Loss):
    """An objective's per-row loss as a Keras loss, averaged over the batch."""

    def __init__(self, per_row, name: str = "cross_entropy_plus_terms") -> None:
        super().__init__(name=name)
        self.per_row = per_row

    def call(self, y_true, y_pred):
        return self.per_row(y_true, y_pred)

    def get_config(self) -> dict:
        return {"name": self.name}


def training_dataset(
    bundle: ModelBundle,
    paths: Sequence[Path],
    batch_size: int,
    seed: int,
    first_epoch: int = 0,
    terms: Sequence = (),
    window_rows: int = WINDOW_ROWS,
    in_memory: bool = False,
):
    """A tf.data pipeline of (inputs, targets) batches from `paths`, reshuffled every epoch.

    Streamed, each epoch reads the files again in shuffled windows (retrainlab.data.stream).
    `in_memory`, each file's pieces are read and encoded once, and every epoch replays them
    in the order the stream would read them (`stream.mixed` with the same generator), so the
    two feed the same batches. The shuffle of epoch e depends only on (seed, e), so a run
    resumed at epoch e sees the same batches an uninterrupted run would. With loss terms,
    each target row is the class index followed by every term's targets for that row.
    """
    # TensorFlow where only it serves (op determinism, tf.data, tf.distribute): the rest is backend-agnostic Keras
    import tensorflow as tf

    columns = [f.name for f in bundle.features] + [bundle.label_column]
    packed = bool(terms)
    dtype = np.float32 if bundle.binary or bundle.regression or packed else np.int64
    epochs = itertools.count(first_epoch)
    rows = [file_rows(p) for p in paths]

    def encoded(frame):
        inputs = bundle.arrays(frame)
        targets = bundle.encode(frame[bundle.label_column].to_numpy()).astype(dtype)
        if packed:
            targets = np.column_stack([targets, *(term.targets(bundle.inputs(frame)) for term in terms)])
        return inputs, targets.astype(dtype)

    if in_memory:
        held = []  # filled by the first epoch, where tf.data calls the generator: outside any
        # tf.distribute scope, so a loss term's teacher predicts each row once, as on the stream

        def epoch(rng):
            if not held:
                held.extend([encoded(piece) for piece in pieces(path, columns)] for path in paths)
            return mixed([iter(h) for h in held], rows, lambda piece: len(piece[1]), rng, window_rows, _shuffled_arrays)
    else:
        def epoch(rng):
            return (encoded(window) for window in windows(paths, columns, rng, window_rows))

    def generate():
        yield from epoch(np.random.default_rng([seed, next(epochs)]))

    width = 1 + sum(term.width for term in terms)
    target_spec = tf.TensorSpec((None, width) if packed else (None,), tf.as_dtype(dtype))
    dataset = tf.data.Dataset.from_generator(
        generate, output_signature=(bundle.contract.tensor_specs(), target_spec)
    ).rebatch(batch_size)
    dataset = dataset.apply(tf.data.experimental.assert_cardinality(-(-sum(rows) // batch_size)))
    return dataset.prefetch(tf.data.AUTOTUNE)


def _shuffled_arrays(held: list, rng: np.random.Generator):
    """Encoded pieces as one shuffled window: what `stream.windows` does to frames, to arrays."""
    order = rng.permutation(sum(len(targets) for _, targets in held))
    return keras.tree.map_structure(lambda *parts: np.concatenate(parts)[order], *held)


def _fit_multi_worker(dist: Distribution, plan: Plan, objective: Objective, paths: Sequence[Path], callbacks: list,
                      seed: int) -> None:
    """One step per global batch, every worker on its slice, gradients all-reduced by the
    strategy; `callbacks` get the model and the per-epoch logs, as with `model.fit`."""
    # TensorFlow where only it serves (op determinism, tf.data, tf.distribute): the rest is backend-agnostic Keras
    import tensorflow as tf

    tf_strategy, model = dist.tf_strategy, plan.bundle.model
    global_batch = plan.batch_size
    if global_batch % dist.replicas:
        raise ConfigError(
            f"parameter model.batch_size is {global_batch}, not a multiple of the {dist.replicas} replicas; "
            "make it one so every replica gets the same share"
        )
    rows = sum(file_rows(p) for p in paths)
    steps = rows // global_batch
    if steps < 1:
        raise ConfigError(f"parameter model.batch_size ({global_batch}) is larger than the {rows} training rows")
    with dist.scope():
        optimizer = keras.optimizers.Adam(learning_rate=plan.learning_rate)
        optimizer.build(model.trainable_variables)
    plan.compiled_with = f"Adam(learning_rate={plan.learning_rate:g}) (params), {objective.compiled_text()}"

    def dataset_fn(context):
        share = global_batch // context.num_input_pipelines
        start = context.input_pipeline_id * share
        per_replica = context.get_per_replica_batch_size(global_batch)
        batches = training_dataset(plan.bundle, paths, global_batch, seed, 0, plan.loss_terms,
                                   in_memory=plan.feed == MEMORY)
        sliced = batches.map(lambda x, y: (tf.nest.map_structure(lambda t: t[start : start + share], x),
                                           y[start : start + share]))
        return sliced.rebatch(per_replica)

    def step(x, y):
        with tf.GradientTape() as tape:
            probs = model(x, training=True)
            loss = tf.nn.compute_average_loss(objective.per_row(y, probs), global_batch_size=global_batch)
        optimizer.apply(tape.gradient(loss, model.trainable_variables), model.trainable_variables)
        return loss, tf.reduce_sum(objective.accuracy(y, probs))

    @tf.function
    def train_step(iterator):
        loss, correct = tf_strategy.run(step, args=next(iterator))
        sum_ = tf.distribute.ReduceOp.SUM
        return tf_strategy.reduce(sum_, loss, axis=None), tf_strategy.reduce(sum_, correct, axis=None)

    batches = tf_strategy.distribute_datasets_from_function(dataset_fn)
    for callback in callbacks:
        callback.set_model(model)
        callback.on_train_begin()
    for epoch in range(plan.epochs):
        iterator, loss_sum, correct = iter(batches), 0.0, 0.0
        for _ in range(steps):
            loss, hits = train_step(iterator)
            loss_sum, correct = loss_sum + float(loss), correct + float(hits)
        mean = correct / (steps * global_batch)
        figure = ("rmse", math.sqrt(mean)) if objective.regression else ("accuracy", mean)
        logs = {figure[0]: figure[1], "loss": loss_sum / steps}
        log.info(f"Epoch {epoch + 1}/{plan.epochs} (worker {dist.cluster.index + 1} of {dist.cluster.workers}) "
                 f"- {figure[0]}: {figure[1]:.4f} - loss: {logs['loss']:.4f}")
        for callback in callbacks:
            callback.on_epoch_end(epoch, logs)
    for callback in callbacks:
        callback.on_train_end()
