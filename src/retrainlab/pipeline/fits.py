"""What one fit is: the step it belongs to, the job that trains it in another process (a
worker of this machine's, a task on a cluster), what comes back, and its key.

A fit is one seed of one strategy. The strategy step (strategy_step.py) trains its fits here
or in worker processes; on a Ray cluster, cluster_fits.py trains every fit of the
comparison at once. Both read these.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
from pathlib import Path

from retrainlab.config import Params, as_flat_dict
from retrainlab.data import Prepared
from retrainlab.measure import evaluation
from retrainlab.measure.record import StrategyRecord
from retrainlab.models.bundle import ModelBundle
from retrainlab.pipeline.origin import Origin
from retrainlab.strategies import Strategy
from retrainlab.training import distribute


@dataclasses.dataclass
class SeedResult:
    seed: int
    bundle: ModelBundle | None  # None on its way back from a worker process, which saved it
    figures: dict[str, float]  # metrics and cost
    history: dict[str, list[float]]
    run_id: str
    predictions: evaluation.Predictions  # the actual and predicted label of each test row
    notes: tuple[str, ...] = ()  # what was done to its starting model (a grown vocabulary)


@dataclasses.dataclass
class Step:
    """Everything a strategy step knows before it trains its first seed."""

    strategy: Strategy
    params: Params
    root: Path
    dist: distribute.Distribution
    data: Prepared
    bases: dict[int, ModelBundle]  # what each seed starts from (none: fresh weights)
    base_record: StrategyRecord | None  # the baseline's record, for the updates
    origin: Origin | None  # where the baseline came from
    digests: dict[str, str] = dataclasses.field(default_factory=dict)  # each prepared split's md5
    experiment_id: str = ""
    parent: str = ""  # the pipeline execution's run
    strategy_run: str = ""  # set in a seed's worker process: the strategy's run its seed run goes under
    lineage: dict[str, str] = dataclasses.field(default_factory=dict)  # round and parent version tags
    # A brought baseline adopted as it is: its first seed's outcome, which every seed shares.
    adopted: list = dataclasses.field(default_factory=list)

    @property
    def name(self) -> str:
        return self.strategy.name


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


# Params that change how fast a fit runs or where it is logged, not what it makes.
NOT_THE_FIT = ("tracking.", "compare.", "seeds", "engine.", "checkpoint_seconds", "memory_budget_mb")


def fit_key(step: Step, strategy: str, seed: int) -> str:
    """What makes one fit of `strategy` on `seed`, as a short digest: the params it reads
    (its own option's settings, not the others'), the prepared data, the baseline run it
    starts from and the code. The same key, the same training: a checkpoint is resumed, and
    a fit trained on a cluster ahead of its stage (retrainlab.pipeline.cluster_fits) is taken,
    only by a fit of the same key; each seed run carries its key as a tag."""
    own = f"strategies.{strategy}."
    training = {k: v for k, v in as_flat_dict(step.params).items()
                if not k.startswith(NOT_THE_FIT) and (not k.startswith("strategies.") or k.startswith(own))}
    made_of = {"strategy": strategy, "seed": seed, "params": training, "data": step.digests, "code": code_digest(),
               "baseline_run": step.base_record.mlflow.run_id if step.base_record else None}
    return hashlib.md5(json.dumps(made_of, sort_keys=True, default=str).encode()).hexdigest()[:12]


@functools.cache
def code_digest() -> str:
    """The digest of retrainlab's own source files: other code, another fit."""
    package = Path(__file__).resolve().parents[1]
    digest = hashlib.md5()
    for path in sorted(package.rglob("*.py")):
        digest.update(path.relative_to(package).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def seed_dir(seed: int) -> str:
    return f"seed-{seed}"
