"""The strategy step: one strategy trained, measured, evaluated, logged and registered per seed.

`run_strategy` trains one strategy once per seed under the cost meter, evaluates, logs and
registers it. The DVC outputs (model directory, metrics JSON, curves CSV) are written last,
after the model is registered, and each by rename, so a failed run leaves the previous ones
in place. The only step that needs TensorFlow; prepare.py and compare.py hold the others.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import shutil
import tempfile
import time
from pathlib import Path

import keras
import mlflow
import numpy as np
import pandas as pd
from mlflow.entities import Metric

from retrainlab.base import layout
from retrainlab.base.errors import PipelineError
from retrainlab.base.files import write_csv
from retrainlab.config import TRAIN, Params, applicable
from retrainlab.data import Prepared, load_prepared
from retrainlab.measure import evaluation
from retrainlab.measure.record import Runs, StrategyRecord, rounded
from retrainlab.measure.record import load as load_record
from retrainlab.measure.task import measure_of, of_figures
from retrainlab.models.bundle import ModelBundle
from retrainlab.models.loading import open_bundle
from retrainlab.models.outputs import label_order
from retrainlab.pipeline import cluster_fits, user_model
from retrainlab.pipeline.fits import SeedJob, SeedResult, Step, fit_key, seed_dir
from retrainlab.pipeline.origin import recorded_origin
from retrainlab.registry import promotion
from retrainlab.reporting import descriptions, plots
from retrainlab.strategies import BASELINE, CATALOGUE, FROM_BASELINE, Plan, Strategy
from retrainlab.tracking import store
from retrainlab.training import distribute, workers
from retrainlab.training.checkpoint import EpochCheckpoint, resume
from retrainlab.training.seed import make_plan, measured_fit, train_seed, workload
from retrainlab.measure.task import measure_of_summary, rules_of
from retrainlab.pipeline.prepare import require_scored_as_params

log = logging.getLogger(__name__)


class EpochLogger(keras.callbacks.Callback):
    """Per-epoch curves to MLflow, written in batches: one synchronous `log_batch` at most
    every FLUSH_SECONDS, and one at the end of training.

    A write costs a few milliseconds against the SQLite store, so one per epoch was over 2%
    of a short epoch's time; MLflow's asynchronous logging measured slower still (5 epochs
    on 100k rows took 3.9 s with it against 2.8 s bare). benchmarks/overhead.py measures
    the share (docs/BENCHMARKS.md). The UI's curves lag by at most FLUSH_SECONDS.
    """

    FLUSH_SECONDS = 2.0

    def __init__(self) -> None:
        super().__init__()
        self._pending: list = []
        self._flushed = time.monotonic()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        now = int(time.time() * 1000)
        self._pending += [Metric(store.CURVE_PREFIX + k, float(v), now, epoch + 1) for k, v in (logs or {}).items()]
        if time.monotonic() - self._flushed >= self.FLUSH_SECONDS:
            self.flush()

    def on_train_end(self, logs: dict | None = None) -> None:
        self.flush()

    def flush(self) -> None:
        if self._pending:
            run = mlflow.active_run()
            mlflow.MlflowClient().log_batch(run.info.run_id, metrics=self._pending, synchronous=True)
            self._pending = []
        self._flushed = time.monotonic()


@dataclasses.dataclass(frozen=True)
class WorkerNote:
    """What a multi-worker cluster's other worker did: it trained with the chief, which alone
    evaluates, logs, registers and writes the outputs."""

    strategy: str
    worker: int  # its index in the cluster
    costs: list  # what its training cost, per seed's last fit


def run_strategy(name: str, params: Params, root: Path = Path(".")) -> StrategyRecord | WorkerNote:
    """Train, measure, evaluate and log one strategy once per seed; register the first seed's
    model; write its outputs. Returns its record (a multi-worker cluster's other workers: a
    note of what they did)."""
    if params.engine.kind == "ray":
        cluster_fits.connect(params, root)  # before anything is written
    step = open_step(CATALOGUE[name], params, root)
    if not step.dist.is_chief:
        return _train_as_worker(step)
    with store.step_run(step.experiment_id, name, step.parent, _run_tags(step), params.tracking.system_metrics) as run:
        # Its own settings, not the other options': they made nothing in this run.
        store.log_params({k: v for k, v in applicable(params).items()
                             if not k.startswith("strategies.") or k.startswith(f"strategies.{name}.")})
        results = _train_seeds(step, run.info.run_id)
        dist = step.dist
        record = StrategyRecord.of_seeds(
            name, params.round, {str(r.seed): r.figures for r in results},
            {"mode": dist.mode, "workers": dist.cluster.workers, "replicas": dist.replicas},
            origin=step.origin,
            confusion=results[0].predictions.confusion() or None, notes=results[0].notes,
            metric=measure_of_summary(step.data.summary).metric,
        )
        _log_summary(record, results)
        (root / layout.STAGING_DIR).mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=root / layout.STAGING_DIR) as staging:
            staged = Path(staging) / "bundle"
            for result in results:
                result.bundle.with_decision(rules_of(step.data.summary)).save(staged / seed_dir(result.seed))
            version = _register(step, record, results[0], staged)
            record = dataclasses.replace(record, mlflow=_runs(step, run.info.run_id, results, version))
            _publish(root, name, staged, record, mean_curves([r.history for r in results]),
                     results[0].predictions.frame())
    return record


def open_step(strategy: Strategy, params: Params, root: Path) -> Step:
    """Join the distribution, load the data and the starting points, find the MLflow
    experiment and the pipeline execution the runs go under."""
    dist = distribute.start(params.distribute)  # first: the multi-worker strategy joins the cluster
    data = load_prepared(root)
    require_scored_as_params(params, data.summary)
    with dist.scope():
        bases, base_record, origin = _starting_points(strategy, params, root, data)
    step = Step(strategy, params, root, dist, data, bases, base_record, origin)
    if dist.is_chief:
        step.experiment_id = store.configure(params.tracking.experiment, store.project_root(root))
        step.digests = {split: store.file_md5(root / layout.split_path(split)) for split in layout.SPLITS}
        step.parent = _parent_run(base_record, step.experiment_id, step.digests, params)
        step.lineage = _lineage(params, origin, base_record)
    return step


def _run_tags(step: Step) -> dict[str, str]:
    tags = {store.TAG_STRATEGY: step.name, store.TAG_PREFIX + "seeds": str(step.params.seeds), **step.lineage}
    tags |= {store.data_tag(split): md5 for split, md5 in step.digests.items()}
    origin = step.origin
    if origin is not None:
        brought = label_order(step.params) if origin.brought else "sorted"
        tags |= {store.TAG_PREFIX + "baseline.from": origin.spec, store.TAG_PREFIX + "label_order": brought}
        if step.name == BASELINE and origin.version:
            tags[store.TAG_PREFIX + "source_version"] = origin.version
    return tags


def _plan(step: Step, seed: int) -> Plan:
    """The strategy's plan for one seed, its model built where the distribution wants it."""
    return make_plan(step.name, step.data, step.params, step.bases.get(seed), seed, step.dist)


def _train_seed(step: Step, seed: int) -> SeedResult:
    """One seed of one strategy, in a run nested under the strategy's run: the per-seed core
    (retrainlab.training.seed), observed by MLflow (its inputs, per-epoch curves, figures)
    and by a checkpoint.

    Training checkpoints every epoch under `checkpoint`; a run killed halfway resumes there
    from its last finished epoch (weights restored; the optimizer's moments start afresh).
    Multi-worker training neither checkpoints nor resumes: the workers would have to agree
    on the epoch and the weights (docs/RELIABILITY.md).
    """
    params, dist = step.params, step.dist
    plan = _plan(step, seed)
    key = fit_key(step, step.name, seed)
    checkpoint = step.root / layout.CHECKPOINTS_DIR / step.name / f"seed-{seed}-{key}"
    multi_worker = dist.mode == distribute.MULTI_WORKER
    done, logs = (0, []) if multi_worker else resume(plan.bundle.model, checkpoint)
    log.info(f"seed {params.seeds.index(seed) + 1}/{len(params.seeds)} (seed {seed}): {workload(step.data, plan)}")
    for note in plan.notes:
        log.info(f"  {note}")
    if done:
        log.info(f"{step.name} seed {seed}: resuming after epoch {done} of {plan.epochs} from a checkpoint")
    under = (step.experiment_id, step.strategy_run) if step.strategy_run else None
    with store.seed_run(step.name, seed, step.lineage | {store.TAG_FIT: key}, under) as run:
        if done:
            mlflow.set_tag(store.TAG_PREFIX + "resumed_after_epoch", str(done))
        _log_inputs(step.data, plan, step.digests)
        recorder = EpochCheckpoint(checkpoint, logs, math.inf if multi_worker else params.checkpoint_seconds)
        old = measure_of_summary(step.data.summary).old
        reference = step.base_record.per_seed[str(seed)][old] if step.base_record else None
        outcome = train_seed(plan, step.data, params, seed, reference, dist=dist, callbacks=[EpochLogger(), recorder],
                             initial_epoch=min(done, plan.epochs), held_out=True, progress=True,
                             refused=", so it is not registered", adopted=next(iter(step.adopted), None))
        if not plan.epochs and not step.adopted:
            step.adopted.append(outcome)
        if plan.compiled_with:
            mlflow.set_tag(store.TAG_PREFIX + "compiled_with", plan.compiled_with)
        if plan.feed:
            mlflow.set_tag(store.TAG_PREFIX + "feed", plan.feed)
        if plan.notes:
            mlflow.set_tag(store.TAG_PREFIX + "vocabulary", "; ".join(plan.notes))
        history = {k: [epoch[k] for epoch in recorder.history] for k in (recorder.history or [{}])[0]}
        mlflow.log_metrics(rounded(outcome.figures))
        if len(outcome.workers) > 1:
            for i, worker in enumerate(outcome.workers):
                mlflow.log_metrics(rounded({f"worker{i}.{name}": value for name, value in worker.items()}))
        mlflow.set_tag(store.TAG_PREFIX + "device", outcome.device)
    shutil.rmtree(checkpoint, ignore_errors=True)
    return SeedResult(seed, outcome.bundle, outcome.figures, history, run.info.run_id, outcome.predictions, plan.notes)


def _train_seeds(step: Step, run_id: str) -> list[SeedResult]:
    """Every seed, one after another, or `seeds_parallel` at a time in worker processes
    (retrainlab.training.workers), or as tasks on a Ray cluster (`engine.kind: ray`,
    retrainlab.pipeline.cluster_fits). A worker loads the data and its seed's starting point,
    trains, evaluates and logs its seed run under the strategy's run, and hands back its
    figures and its model through a staging folder. One process when training is
    distributed: the distribution has the machine already."""
    params = step.params
    # A brought baseline is the user's model, read where this machine finds it and adopted.
    brought = step.name == BASELINE and step.origin is not None and step.origin.brought
    if params.engine.kind == "ray" and not brought:
        return cluster_fits.train_on_cluster(step, run_id, seed_in_worker)
    parallel = min(params.seeds_parallel, len(params.seeds))
    if parallel <= 1 or step.dist.mode != distribute.NONE:
        return [_train_seed(step, seed) for seed in params.seeds]
    log.info(f"{step.name}: {len(params.seeds)} seeds, {parallel} at a time in worker processes")
    (step.root / layout.STAGING_DIR).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=step.root / layout.STAGING_DIR) as staging:
        job = SeedJob(step.name, params, step.root.resolve(), step.experiment_id, step.parent, run_id, step.digests,
                      step.lineage, Path(staging))
        with workers.pool(parallel) as pool:
            done = [pool.submit(seed_in_worker, job, seed) for seed in params.seeds]
            results = [future.result() for future in done]
        return [dataclasses.replace(r, bundle=ModelBundle.load(job.staging / seed_dir(r.seed))) for r in results]


def seed_in_worker(job: SeedJob, seed: int) -> SeedResult:
    """One seed in a worker process: its result, its model saved to the staging folder, not
    sent back."""
    data = load_prepared(job.root)
    only = dataclasses.replace(job.params, seeds=[seed])  # this seed's starting point, not every seed's
    bases, base_record, origin = _starting_points(CATALOGUE[job.strategy], only, job.root, data)
    step = Step(CATALOGUE[job.strategy], job.params, job.root, distribute.Distribution(distribute.NONE), data, bases,
                base_record, origin, digests=job.digests, experiment_id=job.experiment_id, parent=job.parent,
                strategy_run=job.strategy_run, lineage=job.lineage)
    result = _train_seed(step, seed)
    result.bundle.with_decision(rules_of(data.summary)).save(job.staging / seed_dir(seed))
    return dataclasses.replace(result, bundle=None)


def train_extra_seed(names: list[str], seed: int, params: Params, root: Path = Path(".")) -> dict[str, dict]:
    """One more seed of the baseline and of `names` (the options still in contention), for
    the compare step's adaptive seeds: the per-seed core, each in a run nested under the
    active (compare) run, nothing registered. Returns each strategy's figures."""
    data = load_prepared(root)
    brought, _, origin = _starting_points(CATALOGUE[BASELINE], params, root, data)
    base = next(iter(brought.values())) if brought else None
    figures: dict[str, dict[str, float]] = {}
    for name in [BASELINE, *(n for n in names if n != BASELINE)]:
        with store.seed_run(name, int(seed), {store.TAG_PREFIX + "extra_seed": "true"}):
            plan = make_plan(name, data, params, base, int(seed))  # one process: compare runs on one machine
            log.info(f"{name} seed {seed}: {workload(data, plan)}")
            reference = figures[BASELINE][measure_of_summary(data.summary).old] if name != BASELINE else None
            outcome = train_seed(plan, data, params, int(seed), reference, progress=True,
                                 refused=", so it is not registered")
            figures[name] = outcome.figures
            mlflow.log_metrics(figures[name])
        if name == BASELINE:
            base = outcome.bundle
    return figures


def _log_summary(record: StrategyRecord, results: list[SeedResult]) -> None:
    """The means and intervals over the seeds, and the mean curves, on the strategy's run."""
    mlflow.log_metrics(rounded(record.means | record.interval_metrics()))
    store.log_curves(mean_curves([r.history for r in results]), store.CURVE_PREFIX)
    mlflow.set_tag(store.TAG_PREFIX + "device", record.device)


def _register(step: Step, record: StrategyRecord, primary: SeedResult, staged: Path) -> int:
    """Register the first seed's model as a new version (a brought registered baseline is in
    the registry already: no duplicate version)."""
    if step.name == BASELINE and step.origin.kind == "registry":
        return int(step.origin.version)
    seeds = len(step.params.seeds)
    # The version is the registered seed's model: its own figures; the means over the seeds
    # are named as such. Its run is the version's own source run, no tag.
    tags = {"strategy": step.name, "seed": str(primary.seed), **step.lineage}
    tags |= promotion.figure_tags(measure_of_summary(step.data.summary), primary.figures, record.means, seeds)
    data = step.data
    return store.log_and_register_model(
        step.name,
        staged / seed_dir(primary.seed),
        store.signature(data.features, data.label, primary.bundle.labels, primary.bundle.regression),
        data.sample("incremental_test", 5)[data.feature_names],
        step.params.tracking.registered_model,
        tags,
        description=descriptions.version_description(step.name, step.strategy.summary, primary.seed, seeds,
                                                     primary.figures, record.means, measure=record.measure),
    )



def _runs(step: Step, run_id: str, results: list[SeedResult], version: int) -> Runs:
    """Where MLflow keeps the strategy's runs and its registered model."""
    return Runs(
        experiment_id=step.experiment_id, run_id=run_id, parent_run_id=step.parent,
        seed_run_ids={str(r.seed): r.run_id for r in results}, registered_model=step.params.tracking.registered_model,
        model_version=version, model_seed=results[0].seed, parent_version=step.lineage.get(store.TAG_PARENT_VERSION),
    )


def _train_as_worker(step: Step) -> WorkerNote:
    """A multi-worker cluster's other workers: train every seed in step with the chief, which
    alone evaluates, logs, registers and writes outputs."""
    dist = step.dist
    log.info(f"{step.name}: worker {dist.cluster.index + 1} of {dist.cluster.workers}: training with the chief; "
             "the chief logs and writes the outputs")
    costs = []
    for seed in step.params.seeds:
        costs = measured_fit(_plan(step, seed), step.data, step.params, seed, step.dist, progress=True)[1]
    return WorkerNote(step.name, dist.cluster.index, costs)


def mean_curves(histories: list[dict[str, list[float]]]) -> dict[str, list[float]]:
    """Per-epoch curves averaged over the seeds that trained that epoch (a seed that
    stopped early has fewer), as long as the longest."""
    keys = [k for k in histories[0] if all(k in h for h in histories)]
    epochs = max((len(h[k]) for h in histories for k in keys), default=0)
    out = {}
    for k in keys:
        padded = np.full((len(histories), epochs), np.nan)
        for i, h in enumerate(histories):
            padded[i, :len(h[k])] = h[k]
        out[k] = [float(v) for v in np.nanmean(padded, axis=0)]
    return out


def _load_baseline(root: Path, seeds: list[int], data: Prepared,
                   models: bool = True) -> tuple[dict[int, ModelBundle], StrategyRecord]:
    """The baseline model of each seed, opened for the data (none where `models` is false: a
    strategy from scratch on the project's own model reads nothing of them), and the
    baseline's record."""
    record_path, model_path = root / layout.record_path(BASELINE), root / layout.model_dir(BASELINE)
    if not record_path.is_file() or not model_path.is_dir():
        raise PipelineError(
            f"{layout.model_dir(BASELINE)}: no baseline model yet; run the baseline step first (dvc repro baseline)"
        )
    record = load_record(root, BASELINE)
    missing = [seed for seed in seeds if not (model_path / seed_dir(seed)).is_dir()]
    if missing:
        raise PipelineError(
            f"{layout.model_dir(BASELINE)}: no baseline for seed {missing[0]}; run the baseline with the same seeds"
        )
    if not models:
        return {}, record
    return {seed: open_bundle(model_path / seed_dir(seed), data, str(layout.model_dir(BASELINE) / seed_dir(seed)))
            for seed in seeds}, record


def _parent_run(base_record: StrategyRecord | None, experiment_id: str, digests: dict[str, str],
                params: Params) -> str:
    """The baseline opens a new pipeline execution, which logs the params; the updates nest
    under the baseline's. The compare step's policy is logged by the compare run, as it may
    change within one execution (params cannot)."""
    if base_record:
        parent = base_record.mlflow.parent_run_id
        if _run_exists(parent, experiment_id):
            return parent
    tags = {f"{store.TAG_PREFIX}data.{split}.md5": md5 for split, md5 in digests.items()}
    logged = {k: v for k, v in applicable(params).items() if not k.startswith("compare.")}
    return store.start_parent_run(experiment_id, tags | {store.TAG_ROUND: str(params.round)}, params.round,
                                     logged)


def _starting_points(strategy: Strategy, params: Params, root: Path, data: Prepared):
    """What each seed starts from, the baseline's record and where the baseline came from.

    The baseline step starts from the user's model when `baseline.from` names one (the same
    for every seed), else from nothing; the updates start from the baseline's outputs,
    and one that starts from fresh weights reads a brought baseline's architecture there
    (from the project's own model it reads none: it builds the model section's MLP)."""
    if strategy.name != BASELINE:
        brought = params.baseline.from_ != TRAIN
        bases, record = _load_baseline(root, params.seeds, data,
                                       models=strategy.starts_from == FROM_BASELINE or brought)
        return bases, record, record.origin
    origin = recorded_origin(params, root)
    if not origin.brought:
        return {}, None, origin
    brought = user_model.load(origin, data, params, root)
    return dict.fromkeys(params.seeds, brought), None, origin


def _lineage(params: Params, origin, base_record: StrategyRecord | None) -> dict[str, str]:
    """The round, and the registered version this run started from (none for a model trained
    from nothing or a file not yet registered): tags of the runs and of the versions."""
    if base_record is not None:
        parent = base_record.mlflow.model_version
    else:
        parent = origin.version if origin is not None and origin.kind == "registry" else None
    tags = {store.TAG_ROUND: str(params.round)}
    return tags | ({store.TAG_PARENT_VERSION: str(parent)} if parent is not None else {})


def _run_exists(run_id: str, experiment_id: str) -> bool:
    try:
        return mlflow.get_run(run_id).info.experiment_id == experiment_id
    except mlflow.exceptions.MlflowException:
        return False  # the baseline was logged to another store: start a new execution here


def _log_inputs(data: Prepared, plan: Plan, digests: dict[str, str]) -> None:
    used = {split: "training" for split in plan.splits}
    used |= {split: "evaluation" for split in evaluation.TEST_SETS.values()}
    for split, context in used.items():
        store.log_dataset(data, split, context, digests[split])


def _publish(root: Path, strategy: str, staged: Path, record: StrategyRecord, history: dict,
             predictions: pd.DataFrame) -> None:
    """Move the models into place and write the metrics, curves and predictions, each by rename."""
    target = root / layout.model_dir(strategy)
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():
        shutil.rmtree(target)
    staged.rename(target)
    epochs = len(next(iter(history.values()), []))
    curves = pd.DataFrame({"epoch": range(1, epochs + 1), **(history or {"loss": [], "accuracy": []})})
    if not of_figures(record.means).higher_is_better:  # a regressor's numbers, in bands for DVC's confusion plot
        predictions = plots.banded(predictions)
    record.write(root)
    write_csv(root / layout.curves_path(strategy), curves)
    write_csv(root / layout.predictions_path(strategy), predictions)
