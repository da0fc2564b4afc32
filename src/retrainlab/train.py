"""The strategy step: one strategy trained, measured, evaluated, logged and registered per seed.

`run_strategy` trains one strategy once per seed under the cost meter, evaluates, logs and
registers it. The DVC outputs (model directory, metrics JSON, curves CSV) are written last,
after the model is registered, and each by rename, so a failed run leaves the previous ones
in place. The only step that needs TensorFlow; `retrainlab.steps` holds the others.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import keras
import mlflow
from mlflow.entities import Metric
import numpy as np
import pandas as pd

from retrainlab import distribute, evaluation, layout, stream, tracking, user_model
from retrainlab.checkpoint import EpochCheckpoint, resume
from retrainlab.config import Params, as_flat_dict
from retrainlab.cost import Cost, CostMeter, price
from retrainlab.data import Prepared, load_prepared
from retrainlab.errors import PipelineError, TrainingError
from retrainlab.files import write_text_atomically
from retrainlab.models import ModelBundle
from retrainlab.strategies import BASELINE, STRATEGIES, Plan, fit, seed_everything

CURVE_PREFIX = "train_"
HEADLINE = ("acc_old", "acc_new", "acc_all", evaluation.FORGETTING)


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
        self._pending += [Metric(CURVE_PREFIX + k, float(v), now, epoch + 1) for k, v in (logs or {}).items()]
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


@dataclasses.dataclass
class SeedResult:
    seed: int
    bundle: ModelBundle
    figures: dict[str, float]  # metrics and cost
    history: dict[str, list[float]]
    run_id: str


def run_strategy(strategy: str, params: Params, root: Path = Path(".")) -> dict[str, Any]:
    """Train, measure, evaluate and log one strategy once per seed; register the first seed's model.

    Returns what metrics/<strategy>.json holds: the mean of every figure over the seeds,
    its 95% interval, each seed's figures, and where MLflow keeps the runs and the model.
    """
    dist = distribute.start(params.distribute)  # first: the multi-worker strategy joins the cluster
    data = load_prepared(root)
    with dist.scope():
        bases, base_record, origin = _starting_points(strategy, params, root, data)
    if not dist.is_chief:
        return _train_as_worker(strategy, data, params, bases, dist)
    experiment_id = tracking.configure(params.tracking.experiment, tracking.project_root(root))
    digests = {split: tracking.file_md5(root / layout.split_path(split)) for split in layout.SPLITS}
    parent = _parent_run(base_record, experiment_id, digests, params.round)
    lineage = _lineage(params, origin, base_record)
    tags = {tracking.TAG_STRATEGY: strategy, tracking.TAG_PREFIX + "seeds": str(params.seeds), **lineage}
    tags |= {f"{tracking.TAG_PREFIX}data.{split}.md5": md5 for split, md5 in digests.items()}
    if origin is not None:
        tags |= {tracking.TAG_PREFIX + "baseline.from": origin.spec,
                 tracking.TAG_PREFIX + "label_order": user_model.label_order(params) if origin.brought else "sorted"}
        if strategy == BASELINE and origin.version:
            tags[tracking.TAG_PREFIX + "source_version"] = origin.version

    with tracking.step_run(experiment_id, strategy, parent, tags, params.tracking.system_metrics) as run:
        tracking.log_params(as_flat_dict(params))
        results = []
        identity = {"data": digests, "baseline_run": base_record["mlflow"]["run_id"] if base_record else None}
        for seed in params.seeds:
            base_acc_old = base_record["per_seed"][str(seed)]["acc_old"] if base_record else None
            checkpoint = checkpoint_dir(root, strategy, seed, params, identity)
            results.append(
                _train_seed(
                    strategy, seed, data, params, bases.get(seed), base_acc_old, root, checkpoint, dist, digests,
                    lineage,
                )
            )
        summary = summarize_seeds([r.figures for r in results])
        mlflow.log_metrics(summary.means | summary.interval_metrics())
        tracking.log_curves(mean_curves([r.history for r in results]), CURVE_PREFIX)
        device = "gpu" if summary.means["gpus"] else "cpu"
        mlflow.set_tag(tracking.TAG_PREFIX + "device", device)

        (root / layout.STAGING_DIR).mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=root / layout.STAGING_DIR) as staging:
            staged = Path(staging) / "bundle"
            for result in results:
                result.bundle.save(staged / seed_dir(result.seed))
            primary = results[0]
            if strategy == BASELINE and origin.kind == "registry":
                version = int(origin.version)  # the model is in the registry already: no duplicate version
            else:
                version_tags = {"strategy": strategy, "run_id": run.info.run_id, "seed": str(primary.seed), **lineage}
                version_tags |= {name: f"{summary.means[name]:.4f}" for name in HEADLINE}
                version = tracking.log_and_register_model(
                    staged / seed_dir(primary.seed),
                    tracking.signature(data.features, data.label, primary.bundle.labels),
                    data.sample("incremental_test", 5)[data.feature_names],
                    params.tracking.registered_model,
                    version_tags,
                )
            record = {
                "strategy": strategy,
                "round": params.round,
                "seeds": list(params.seeds),
                "device": device,
                "distribute": {"strategy": dist.kind, "workers": dist.cluster.workers, "replicas": dist.replicas},
                **summary.means,
                "ci95": summary.intervals,
                "per_seed": {str(r.seed): r.figures for r in results},
                "mlflow": {
                    "experiment_id": experiment_id,
                    "run_id": run.info.run_id,
                    "parent_run_id": parent,
                    "seed_run_ids": {str(r.seed): r.run_id for r in results},
                    "registered_model": params.tracking.registered_model,
                    "model_version": version,
                    "model_seed": primary.seed,
                    "parent_version": lineage.get(tracking.TAG_PARENT_VERSION),
                },
            }
            if origin is not None:
                record["origin"] = origin.to_json()
            _publish(root, strategy, staged, record, mean_curves([r.history for r in results]))
    return record


def _train_seed(
    strategy: str,
    seed: int,
    data: Prepared,
    params: Params,
    base: ModelBundle | None,
    base_acc_old: float | None,
    root: Path,
    checkpoint: Path,
    dist: distribute.Distribution,
    digests: dict[str, str],
    lineage: dict[str, str],
) -> SeedResult:
    """One seed of one strategy, in a run nested under the strategy's run.

    Training checkpoints every epoch under `checkpoint`; a run killed halfway resumes there
    from its last finished epoch (weights restored; the optimizer's moments start afresh).
    Multi-worker training neither checkpoints nor resumes: the workers would have to agree
    on the epoch and the weights (docs/RELIABILITY.md).
    """
    seed_everything(seed)
    with dist.scope():
        plan = STRATEGIES[strategy](data, params, base, seed)
    multi_worker = dist.kind == distribute.MULTI_WORKER
    done, logs = (0, []) if multi_worker else resume(plan.bundle.model, checkpoint)
    if done:
        print(f"{strategy} seed {seed}: resuming after epoch {done} of {plan.epochs} from a checkpoint")
    with tracking.seed_run(strategy, seed, lineage) as run:
        if done:
            mlflow.set_tag(tracking.TAG_PREFIX + "resumed_after_epoch", str(done))
        _log_inputs(data, plan, digests)
        recorder = EpochCheckpoint(checkpoint, logs, math.inf if multi_worker else params.checkpoint_seconds)
        cost, workers = _measured_fit(plan, data, params, dist, [EpochLogger(), recorder], min(done, plan.epochs), seed)
        if plan.compiled_with:
            mlflow.set_tag(tracking.TAG_PREFIX + "compiled_with", plan.compiled_with)
        history = {k: [epoch[k] for epoch in recorder.history] for k in (recorder.history or [{}])[0]}
        bundle = plan.bundle.detached() if dist.strategy is not None else plan.bundle
        metrics = _evaluate(bundle, data)
        _refuse_non_finite(metrics, plan)
        reference = metrics["acc_old"] if base_acc_old is None else base_acc_old
        metrics[evaluation.FORGETTING] = evaluation.forgetting(reference, metrics["acc_old"])
        figures = metrics | cost.metrics()
        mlflow.log_metrics(figures)
        if len(workers) > 1:
            for i, worker in enumerate(workers):
                mlflow.log_metrics({f"worker{i}.{name}": value for name, value in worker.items()})
        mlflow.set_tag(tracking.TAG_PREFIX + "device", cost.device)
    shutil.rmtree(checkpoint, ignore_errors=True)
    return SeedResult(seed, bundle, figures, history, run.info.run_id)


def _measured_fit(
    plan: Plan, data: Prepared, params: Params, dist: distribute.Distribution, callbacks: list, initial_epoch: int,
    seed: int,
):
    """Train under the cost meter; return the cluster's cost and each worker's figures.

    Every worker calls this for every seed, in the same order: gathering the figures is a
    collective step of the cluster."""
    if not plan.epochs:  # a brought baseline, taken as it is: adopting it costs nothing
        return Cost("cpu", 0, 0.0, 0.0, 0.0, 0.0, 0.0, 0, price(0.0, 0.0, params.cost.cpu_core_hour_usd,
                                                              params.cost.gpu_hour_usd)), []
    with CostMeter(_gpus_in_use(), params.cost.cpu_core_hour_usd, params.cost.gpu_hour_usd) as meter:
        fit(plan, data, callbacks=callbacks, initial_epoch=initial_epoch, seed=seed, dist=dist)
        rows = sum(data.rows(split) for split in plan.train_splits)
        meter.samples = rows * (plan.epochs - initial_epoch)
    workers = distribute.gather_costs(dist, meter.cost)
    cost = distribute.combine_costs(meter.cost, workers, params.cost.cpu_core_hour_usd, params.cost.gpu_hour_usd)
    return cost, workers


def _train_as_worker(
    strategy: str, data: Prepared, params: Params, bases: dict[int, ModelBundle], dist: distribute.Distribution
) -> dict[str, Any]:
    """A multi-worker cluster's other workers: train every seed in step with the chief, which
    alone evaluates, logs, registers and writes outputs."""
    print(f"{strategy}: worker {dist.cluster.index + 1} of {dist.cluster.workers}: training with the chief; "
          "the chief logs and writes the outputs")
    workers = []
    for seed in params.seeds:
        seed_everything(seed)
        with dist.scope():
            plan = STRATEGIES[strategy](data, params, bases.get(seed), seed)
        workers = _measured_fit(plan, data, params, dist, [], 0, seed)[1]
    return {"strategy": strategy, "worker": dist.cluster.index, "workers": workers}


def checkpoint_dir(root: Path, strategy: str, seed: int, params: Params, identity: dict[str, Any]) -> Path:
    """Where a seed's training checkpoints: one place per strategy, seed, training params and inputs,
    so a checkpoint is only ever resumed by the same training."""
    training = {k: v for k, v in as_flat_dict(params).items() if not k.startswith(("tracking.", "compare.", "seeds"))}
    key = json.dumps({"strategy": strategy, "seed": seed, "params": training, **identity}, sort_keys=True, default=str)
    return root / layout.CHECKPOINTS_DIR / strategy / f"seed-{seed}-{hashlib.md5(key.encode()).hexdigest()[:12]}"


@dataclasses.dataclass(frozen=True)
class SeedSummary:
    means: dict[str, float]
    intervals: dict[str, dict[str, float]]

    def interval_metrics(self) -> dict[str, float]:
        flat = {}
        for name, bounds in self.intervals.items():
            flat[f"{name}_ci_low"], flat[f"{name}_ci_high"] = bounds["low"], bounds["high"]
        return flat


def summarize_seeds(per_seed: list[dict[str, float]]) -> SeedSummary:
    """Mean and 95% interval of every figure over the seeds."""
    means, intervals = {}, {}
    for name in per_seed[0]:
        values = [figures[name] for figures in per_seed]
        mean, low, high = evaluation.mean_interval(values, bounds=evaluation.bounds_of(name))
        means[name], intervals[name] = mean, {"low": low, "high": high}
    return SeedSummary(means, intervals)


def mean_curves(histories: list[dict[str, list[float]]]) -> dict[str, list[float]]:
    """Per-epoch curves averaged over the seeds."""
    return {k: list(np.mean([h[k] for h in histories], axis=0)) for k in histories[0]}


def seed_dir(seed: int) -> str:
    return f"seed-{seed}"


def _load_baseline(root: Path, seeds: list[int]) -> tuple[dict[int, ModelBundle], dict[str, Any]]:
    """The baseline model of each seed, and the baseline's record."""
    record_path, model_path = root / layout.metrics_path(BASELINE), root / layout.model_dir(BASELINE)
    if not record_path.is_file() or not model_path.is_dir():
        raise PipelineError(
            f"{layout.model_dir(BASELINE)}: no baseline model yet; run the baseline step first (dvc repro baseline)"
        )
    record = json.loads(record_path.read_text())
    missing = [seed for seed in seeds if not (model_path / seed_dir(seed)).is_dir()]
    if missing:
        raise PipelineError(
            f"{layout.model_dir(BASELINE)}: no baseline for seed {missing[0]}; run the baseline with the same seeds"
        )
    return {seed: ModelBundle.load(model_path / seed_dir(seed)) for seed in seeds}, record


def _parent_run(base_record: dict | None, experiment_id: str, digests: dict[str, str], round_: int) -> str:
    """The baseline opens a new pipeline execution; the updates nest under the baseline's."""
    if base_record:
        parent = base_record["mlflow"]["parent_run_id"]
        if _run_exists(parent, experiment_id):
            return parent
    tags = {f"{tracking.TAG_PREFIX}data.{split}.md5": md5 for split, md5 in digests.items()}
    return tracking.start_parent_run(experiment_id, tags | {tracking.TAG_ROUND: str(round_)}, round_)


def _starting_points(strategy: str, params: Params, root: Path, data: Prepared):
    """What each seed starts from, the baseline's record and where the baseline came from.

    The baseline step starts from the user's model when `baseline.from` names one (the same
    for every seed), else from nothing; the updates start from the baseline's outputs."""
    if strategy != BASELINE:
        bases, record = _load_baseline(root, params.seeds)
        origin = user_model.Origin.from_json(record["origin"]) if "origin" in record else None
        return bases, record, origin
    origin = user_model.recorded_origin(params, root)
    if not origin.brought:
        return {}, None, origin
    brought = user_model.load(origin, data, params, root)
    return dict.fromkeys(params.seeds, brought), None, origin


def _lineage(params: Params, origin, base_record: dict | None) -> dict[str, str]:
    """The round, and the registered version this run started from (none for a model trained
    from nothing or a file not yet registered): tags of the runs and of the versions."""
    if base_record is not None:
        parent = base_record["mlflow"]["model_version"]
    else:
        parent = origin.version if origin is not None and origin.kind == "registry" else None
    tags = {tracking.TAG_ROUND: str(params.round)}
    return tags | ({tracking.TAG_PARENT_VERSION: str(parent)} if parent is not None else {})


def _run_exists(run_id: str, experiment_id: str) -> bool:
    try:
        return mlflow.get_run(run_id).info.experiment_id == experiment_id
    except mlflow.exceptions.MlflowException:
        return False  # the baseline was logged to another store: start a new execution here


def _log_inputs(data: Prepared, plan: Plan, digests: dict[str, str]) -> None:
    used = {split: "training" for split in plan.train_splits}
    used |= {split: "evaluation" for split in evaluation.TEST_SETS.values()}
    for split, context in used.items():
        tracking.log_dataset(data, split, context, digests[split])


def _evaluate(bundle: ModelBundle, data: Prepared) -> dict[str, float]:
    tests = {
        name: stream.labelled_chunks(data.path(split), data.features, data.label)
        for name, split in evaluation.TEST_SETS.items()
    }
    return evaluation.evaluate(bundle.predict_proba, bundle.labels, tests)


def _refuse_non_finite(metrics: dict[str, float], plan: Plan) -> None:
    """A model whose loss or predictions are not finite is never registered or published."""
    bad = [name for name, value in metrics.items() if not math.isfinite(value)]
    if bad:
        raise TrainingError(
            f"the trained model's {bad[0]} is {metrics[bad[0]]}: its predictions are not finite, so it is not "
            f"registered; lower {plan.section}.learning_rate or look for extreme values in the data"
        )


def _gpus_in_use() -> int:
    try:
        return len(keras.distribution.list_devices("gpu"))
    except Exception:  # the backend has no GPU support built in
        return 0


def _publish(root: Path, strategy: str, staged: Path, record: dict, history: dict) -> None:
    """Move the models into place and write the metrics and curves, each by rename."""
    target = root / layout.model_dir(strategy)
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():
        shutil.rmtree(target)
    staged.rename(target)
    epochs = len(next(iter(history.values()), []))
    curves = pd.DataFrame({"epoch": range(1, epochs + 1), **(history or {"loss": [], "accuracy": []})})
    write_text_atomically(root / layout.metrics_path(strategy), json.dumps(record, indent=2) + "\n")
    write_text_atomically(root / layout.curves_path(strategy), curves.to_csv(index=False))
