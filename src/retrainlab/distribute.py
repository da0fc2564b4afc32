"""Training on several devices or machines, through TensorFlow's own engine (tf.distribute).

`distribute.strategy` in params chooses:
- `none`: Keras' `model.fit` on this process's default device.
- `mirrored`: `tf.distribute.MirroredStrategy` over every GPU of this machine (its CPU
  when it has none); the model is built and `model.fit` runs inside the strategy's scope.
- `multi_worker`: `tf.distribute.MultiWorkerMirroredStrategy` over the cluster that
  `TF_CONFIG` describes. Keras 3's `model.fit` fails under this strategy ("Attempt to
  convert a value (PerReplica:...)", keras-team/keras#20585), so training runs a step of
  our own: `tf.GradientTape` under `strategy.run`, with the same layers, loss and Keras
  optimizer. Every worker reads the same seeded stream of global batches and trains on its
  slice of each, so the gradient all-reduced over the workers is the gradient of the same
  global batch one worker would see: the two routes train the same model on the same
  batches, up to float summation order and the last partial batch (dropped here).

`model.fit` stays the route for one process because it is plain Keras 3 (the same code runs
on the JAX and PyTorch backends) and costs nothing over a bare Keras script
(docs/BENCHMARKS.md); the custom step is TensorFlow-only and used only where fit cannot go.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

import keras
import numpy as np

from retrainlab.config import DistributeParams
from retrainlab.cost import Cost
from retrainlab.errors import ConfigError

NONE, MIRRORED, MULTI_WORKER = "none", "mirrored", "multi_worker"


@dataclasses.dataclass(frozen=True)
class Cluster:
    workers: int
    index: int  # this process's place among the workers; 0 is the chief


def parse_tf_config(env: Mapping[str, str]) -> Cluster:
    """Where this process sits in the cluster TF_CONFIG describes (TensorFlow's own format)."""
    text = env.get("TF_CONFIG")
    if not text:
        raise ConfigError(
            "TF_CONFIG: not set; distribute.strategy 'multi_worker' needs it on every worker "
            '(e.g. {"cluster": {"worker": ["host1:12345", "host2:12345"]}, "task": {"type": "worker", "index": 0}})'
        )
    try:
        config = json.loads(text)
        cluster, task = config["cluster"], config["task"]
        roles = [role for role in ("chief", "worker") if cluster.get(role)]
        order = [(role, i) for role in roles for i in range(len(cluster[role]))]
        index = order.index((task["type"], int(task["index"])))
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(
            f"TF_CONFIG: not a cluster with this task in it ({type(exc).__name__}: {exc}); "
            "give 'cluster' with 'worker' (and optionally 'chief') addresses and this process's 'task'"
        ) from None
    return Cluster(workers=len(order), index=index)


@dataclasses.dataclass
class Distribution:
    """The strategy training runs under, and this process's place in it."""

    kind: str
    strategy: Any = None  # a tf.distribute.Strategy, or None for plain Keras
    cluster: Cluster = Cluster(1, 0)

    @property
    def is_chief(self) -> bool:
        return self.cluster.index == 0

    def scope(self):
        """Where models and optimizers must be built so their variables are distributed."""
        return self.strategy.scope() if self.strategy is not None else contextlib.nullcontext()

    @property
    def replicas(self) -> int:
        return self.strategy.num_replicas_in_sync if self.strategy is not None else 1


def start(params: DistributeParams, env: Mapping[str, str] = os.environ) -> Distribution:
    """The strategy params ask for. Call it before anything else runs TensorFlow ops: the
    multi-worker strategy configures TensorFlow's runtime and joins the other workers."""
    if params.strategy == NONE:
        return Distribution(NONE)
    import tensorflow as tf

    if params.strategy == MIRRORED:
        devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        return Distribution(MIRRORED, tf.distribute.MirroredStrategy([d.name for d in devices]))
    cluster = parse_tf_config(env)
    return Distribution(MULTI_WORKER, tf.distribute.MultiWorkerMirroredStrategy(), cluster)


def fit_multi_worker(dist: Distribution, plan, paths: Sequence, rows: int, callbacks: list, seed: int) -> None:
    """Train `plan` under the multi-worker strategy: one step per global batch, every worker
    on its slice, gradients all-reduced by the strategy. The model must have been built in
    `dist.scope()`; `callbacks` get the model and the per-epoch logs, as with `model.fit`."""
    import tensorflow as tf

    from retrainlab.stream import training_dataset

    strategy, model = dist.strategy, plan.bundle.model
    global_batch = plan.batch_size
    if global_batch % dist.replicas:
        raise ConfigError(
            f"parameter batch_size is {global_batch}, not a multiple of the {dist.replicas} replicas; "
            "make it one so every replica gets the same share"
        )
    steps = rows // global_batch
    if steps < 1:
        raise ConfigError(f"parameter batch_size ({global_batch}) is larger than the {rows} training rows")
    binary = plan.bundle.binary
    loss_fn = (keras.losses.BinaryCrossentropy if binary else keras.losses.SparseCategoricalCrossentropy)(
        reduction=None
    )
    with dist.scope():
        optimizer = keras.optimizers.Adam(learning_rate=plan.learning_rate)
        optimizer.build(model.trainable_variables)

    def dataset_fn(context):
        share = global_batch // context.num_input_pipelines
        start = context.input_pipeline_id * share
        per_replica = context.get_per_replica_batch_size(global_batch)
        batches = training_dataset(plan.bundle, paths, global_batch, seed)
        sliced = batches.map(lambda x, y: (tf.nest.map_structure(lambda t: t[start : start + share], x),
                                           y[start : start + share]))
        return sliced.rebatch(per_replica)

    def step(x, y):
        with tf.GradientTape() as tape:
            probs = model(x, training=True)
            loss = tf.nn.compute_average_loss(loss_fn(y, probs), global_batch_size=global_batch)
        optimizer.apply(tape.gradient(loss, model.trainable_variables), model.trainable_variables)
        if binary:
            predicted = tf.cast(probs[:, 0] > 0.5, y.dtype)
        else:
            predicted = tf.argmax(probs, axis=1, output_type=y.dtype)
        return loss, tf.reduce_sum(tf.cast(tf.equal(predicted, y), tf.float32))

    @tf.function
    def train_step(iterator):
        loss, correct = strategy.run(step, args=next(iterator))
        sum_ = tf.distribute.ReduceOp.SUM
        return strategy.reduce(sum_, loss, axis=None), strategy.reduce(sum_, correct, axis=None)

    batches = strategy.distribute_datasets_from_function(dataset_fn)
    for callback in callbacks:
        callback.set_model(model)
        callback.on_train_begin()
    for epoch in range(plan.epochs):
        iterator, loss_sum, correct = iter(batches), 0.0, 0.0
        for _ in range(steps):
            loss, hits = train_step(iterator)
            loss_sum, correct = loss_sum + float(loss), correct + float(hits)
        logs = {"accuracy": correct / (steps * global_batch), "loss": loss_sum / steps}
        print(f"Epoch {epoch + 1}/{plan.epochs} (worker {dist.cluster.index + 1} of {dist.cluster.workers}) "
              f"- accuracy: {logs['accuracy']:.4f} - loss: {logs['loss']:.4f}", flush=True)
        for callback in callbacks:
            callback.on_epoch_end(epoch, logs)
    for callback in callbacks:
        callback.on_train_end()


COST_FIELDS = ("wall_seconds", "cpu_seconds", "gpu_seconds", "gpu_util_seconds", "peak_memory_mb", "gpus")


def gather_costs(dist: Distribution, cost: Cost) -> list[dict[str, float]]:
    """Every worker's cost figures, on every worker: each puts its own in its row of a
    matrix of zeros, and the strategy sums the matrices across the cluster."""
    if dist.kind != MULTI_WORKER:
        return [{name: float(getattr(cost, name)) for name in COST_FIELDS}]
    import tensorflow as tf

    mine = np.zeros((dist.cluster.workers, len(COST_FIELDS)), dtype=np.float64)
    mine[dist.cluster.index] = [getattr(cost, name) for name in COST_FIELDS]
    local_replicas = dist.replicas // dist.cluster.workers  # each adds its copy: count the worker once
    per_replica = dist.strategy.run(lambda: tf.constant(mine / local_replicas))
    total = dist.strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None).numpy()
    return [dict(zip(COST_FIELDS, map(float, row))) for row in total]


def combine_costs(cost: Cost, workers: list[dict[str, float]], cpu_price: float | None, gpu_price: float | None) -> Cost:
    """The cluster's cost: CPU-, GPU- and utilisation-seconds summed over the workers, wall
    time the slowest worker's, peak memory the largest worker's; samples counted once."""
    from retrainlab.cost import price

    if len(workers) == 1:
        return cost
    cpu = sum(w["cpu_seconds"] for w in workers)
    gpu_seconds = sum(w["gpu_seconds"] for w in workers)
    gpus = int(sum(w["gpus"] for w in workers))
    return dataclasses.replace(
        cost,
        device="gpu" if gpus else "cpu",
        gpus=gpus,
        wall_seconds=max(w["wall_seconds"] for w in workers),
        cpu_seconds=cpu,
        gpu_seconds=gpu_seconds,
        gpu_util_seconds=sum(w["gpu_util_seconds"] for w in workers),
        peak_memory_mb=max(w["peak_memory_mb"] for w in workers),
        cost_usd=price(cpu, gpu_seconds, cpu_price, gpu_price),
    )
