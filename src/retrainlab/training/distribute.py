"""Training on several devices or machines, through TensorFlow's own engine (tf.distribute).

`distribute.mode` in params chooses:
- `none`: Keras' `model.fit` on this process's default device.
- `mirrored`: `tf.distribute.MirroredStrategy` over every GPU of this machine (its CPU
  when it has none); the model is built and `model.fit` runs inside the strategy's scope.
- `multi_worker`: `tf.distribute.MultiWorkerMirroredStrategy` over the cluster that
  `TF_CONFIG` describes. Keras 3's `model.fit` fails under this strategy ("Attempt to
  convert a value (PerReplica:...)", keras-team/keras#20585), so `retrainlab.training.loop`
  trains there with a step of its own, on the same batches with the same loss: the two
  routes train the same model, up to float summation order and the last partial batch
  (dropped on a cluster).

This module sets the tf.distribute strategy up and adds up the cluster's costs; training is
`retrainlab.training.loop.fit`, the one path for every option and every mode of distribution.
("Strategy" is TensorFlow's word here, and only here: everywhere else in retrainlab a
strategy is an option for new data.)
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from retrainlab.base.errors import ConfigError
from retrainlab.config import DistributeParams
from retrainlab.training.cost import Cost, price

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
            "TF_CONFIG: not set; distribute.mode 'multi_worker' needs it on every worker "
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
    """The tf.distribute strategy training runs under, and this process's place in it."""

    mode: str  # distribute.mode: NONE, MIRRORED or MULTI_WORKER
    tf_strategy: Any = None  # a tf.distribute.Strategy, or None for plain Keras
    cluster: Cluster = Cluster(1, 0)

    @property
    def is_chief(self) -> bool:
        return self.cluster.index == 0

    def scope(self):
        """Where models and optimizers must be built so their variables are distributed."""
        return self.tf_strategy.scope() if self.tf_strategy is not None else contextlib.nullcontext()

    @property
    def replicas(self) -> int:
        return self.tf_strategy.num_replicas_in_sync if self.tf_strategy is not None else 1


def start(params: DistributeParams, env: Mapping[str, str] = os.environ) -> Distribution:
    """The tf.distribute strategy `distribute.mode` asks for. Call it before anything else runs TensorFlow ops: the
    multi-worker strategy configures TensorFlow's runtime and joins the other workers."""
    if params.mode == NONE:
        return Distribution(NONE)
    # TensorFlow only when a tf.distribute strategy is asked for: training is backend-agnostic Keras otherwise
    import tensorflow as tf

    if params.mode == MIRRORED:
        devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        return Distribution(MIRRORED, tf.distribute.MirroredStrategy([d.name for d in devices]))
    cluster = parse_tf_config(env)
    return Distribution(MULTI_WORKER, tf.distribute.MultiWorkerMirroredStrategy(), cluster)


COST_FIELDS = ("wall_seconds", "cpu_seconds", "gpu_seconds", "gpu_util_seconds", "peak_memory_mb", "gpus")


def gather_costs(dist: Distribution, cost: Cost) -> list[dict[str, float]]:
    """Every worker's cost figures, on every worker: each puts its own in its row of a
    matrix of zeros, and the strategy sums the matrices across the cluster."""
    if dist.mode != MULTI_WORKER:
        return [{name: float(getattr(cost, name)) for name in COST_FIELDS}]
    # TensorFlow only when a tf.distribute strategy is asked for: training is backend-agnostic Keras otherwise
    import tensorflow as tf

    mine = np.zeros((dist.cluster.workers, len(COST_FIELDS)), dtype=np.float64)
    mine[dist.cluster.index] = [getattr(cost, name) for name in COST_FIELDS]
    local_replicas = dist.replicas // dist.cluster.workers  # each adds its copy: count the worker once
    per_replica = dist.tf_strategy.run(lambda: tf.constant(mine / local_replicas))
    total = dist.tf_strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None).numpy()
    return [dict(zip(COST_FIELDS, map(float, row))) for row in total]


def combine_costs(cost: Cost, workers: list[dict[str, float]], cpu_price: float | None, gpu_price: float | None) -> Cost:
    """The cluster's cost: CPU-, GPU- and utilisation-seconds summed over the workers, wall
    time the slowest worker's, peak memory the largest worker's; samples counted once."""
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
