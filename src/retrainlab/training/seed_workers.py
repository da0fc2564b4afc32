"""Seeds trained at once, each in a worker process of its own (params.yaml's `seeds_parallel`).

The worker is started afresh (TensorFlow is not fork-safe), so this module, which it
imports first, loads no TensorFlow: the worker sets up the console, then loads TensorFlow
quietly, then trains its seed as the step's own process would (retrainlab.pipeline.train).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from retrainlab.config import Params


@dataclasses.dataclass(frozen=True)
class SeedJob:
    """What a seed's worker process needs to train as the step's own process would."""

    strategy: str
    params: Params
    root: Path
    experiment_id: str
    parent: str  # the pipeline execution's run
    strategy_run: str  # the strategy's run, which its seed runs go under
    digests: dict[str, str]  # each prepared split's md5
    lineage: dict[str, str]  # round and parent version tags
    staging: Path  # where the worker saves its model


def train(job: SeedJob, seed: int) -> Any:
    """Train one seed in this worker process; its retrainlab.pipeline.train.SeedResult."""
    from retrainlab.base import console

    console.configure()
    console.load_tensorflow()
    from retrainlab.pipeline.train import seed_in_worker

    return seed_in_worker(job, seed)
