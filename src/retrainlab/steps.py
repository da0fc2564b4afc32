"""The pipeline's steps at the edge, where they meet MLflow and the files DVC tracks.

`prepare_step` builds the datasets; `run_strategy` trains one strategy under the cost
meter, evaluates, logs and registers it. The DVC outputs
(model directory, metrics JSON, curves CSV) are written last, after the model is
registered, and each by rename, so a failed run leaves the previous ones in place.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import keras
import mlflow
import pandas as pd

from retrainlab import evaluation, layout, tracking
from retrainlab.config import Params, as_flat_dict
from retrainlab.cost import CostMeter
from retrainlab.data import Prepared, load_prepared, prepare
from retrainlab.errors import PipelineError
from retrainlab.files import write_text_atomically
from retrainlab.models import ModelBundle
from retrainlab.strategies import BASELINE, STRATEGIES, Plan, fit, seed_everything, training_rows

CURVE_PREFIX = "train_"
HEADLINE = ("acc_old", "acc_new", "acc_all", evaluation.FORGETTING)


class EpochLogger(keras.callbacks.Callback):
    """Per-epoch curves to MLflow, logged asynchronously so training does not wait on the store."""

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        metrics = {CURVE_PREFIX + k: float(v) for k, v in (logs or {}).items()}
        mlflow.log_metrics(metrics, step=epoch + 1, synchronous=False)


def prepare_step(params: Params, root: Path = Path(".")) -> dict[str, Any]:
    """Build the datasets, then log their summary and digests to the step's MLflow run."""
    summary = prepare(params.data, root)
    data = load_prepared(root)
    experiment_id = tracking.configure(params.tracking.experiment, tracking.project_root(root))
    with tracking.step_run(experiment_id, layout.PREPARE, None, {}, system_metrics=False):
        tracking.log_params({k: v for k, v in as_flat_dict(params).items() if k.startswith("data.")})
        for split in layout.SPLITS:
            context = "training" if split.endswith("_train") else "evaluation"
            tracking.log_dataset(data.splits[split], root / layout.split_path(split), split, data.label, context)
        mlflow.log_artifact(str(root / layout.SUMMARY))
    return summary


def run_strategy(strategy: str, params: Params, root: Path = Path(".")) -> dict[str, Any]:
    """Train, measure, evaluate, log and register one strategy; return what metrics/<strategy>.json holds."""
    data = load_prepared(root)
    base, base_record = (None, None) if strategy == BASELINE else _load_baseline(root)
    seed_everything(params.seed)
    plan = STRATEGIES[strategy](data, params, base)

    experiment_id = tracking.configure(params.tracking.experiment, tracking.project_root(root))
    digests = {split: tracking.file_md5(root / layout.split_path(split)) for split in layout.SPLITS}
    parent = _parent_run(base_record, experiment_id, digests)
    tags = {tracking.TAG_STRATEGY: strategy, tracking.TAG_PREFIX + "seed": str(params.seed)}
    tags |= {f"{tracking.TAG_PREFIX}data.{split}.md5": md5 for split, md5 in digests.items()}

    with tracking.step_run(experiment_id, strategy, parent, tags, params.tracking.system_metrics) as run:
        tracking.log_params(as_flat_dict(params))
        _log_inputs(data, plan, root)
        with CostMeter(_gpus_in_use(), params.cost.cpu_core_hour_usd, params.cost.gpu_hour_usd) as meter:
            history = fit(plan, data, callbacks=[EpochLogger()])
            meter.samples = len(training_rows(plan, data)[1]) * plan.epochs
        metrics = _evaluate(plan.bundle, data)
        baseline_acc_old = base_record["acc_old"] if base_record else metrics["acc_old"]
        metrics[evaluation.FORGETTING] = evaluation.forgetting(baseline_acc_old, metrics["acc_old"])
        cost = meter.cost
        mlflow.log_metrics(metrics | cost.metrics())
        mlflow.set_tag(tracking.TAG_PREFIX + "device", cost.device)

        with tempfile.TemporaryDirectory(dir=root, prefix=".staging-") as staging:
            staged = Path(staging) / "bundle"
            plan.bundle.save(staged)
            version_tags = {"strategy": strategy, "run_id": run.info.run_id}
            version_tags |= {name: f"{metrics[name]:.4f}" for name in HEADLINE}
            version = tracking.log_and_register_model(
                staged,
                tracking.signature(data.features, data.label, plan.bundle.labels),
                data.x("incremental_test").head(5),
                params.tracking.registered_model,
                version_tags,
            )
            record = {
                "strategy": strategy,
                "seed": params.seed,
                "device": cost.device,
                **metrics,
                **cost.metrics(),
                "mlflow": {
                    "experiment_id": experiment_id,
                    "run_id": run.info.run_id,
                    "parent_run_id": parent,
                    "registered_model": params.tracking.registered_model,
                    "model_version": version,
                },
            }
            _publish(root, strategy, staged, record, history.history)
    return record


def _load_baseline(root: Path) -> tuple[ModelBundle, dict[str, Any]]:
    record_path, model_path = root / layout.metrics_path(BASELINE), root / layout.model_dir(BASELINE)
    if not record_path.is_file() or not model_path.is_dir():
        raise PipelineError(
            f"{layout.model_dir(BASELINE)}: no baseline model yet; run the baseline step first (dvc repro baseline)"
        )
    return ModelBundle.load(model_path), json.loads(record_path.read_text())


def _parent_run(base_record: dict | None, experiment_id: str, digests: dict[str, str]) -> str:
    """The baseline opens a new pipeline execution; the updates nest under the baseline's."""
    if base_record:
        parent = base_record["mlflow"]["parent_run_id"]
        if _run_exists(parent, experiment_id):
            return parent
    tags = {f"{tracking.TAG_PREFIX}data.{split}.md5": md5 for split, md5 in digests.items()}
    return tracking.start_parent_run(experiment_id, tags)


def _run_exists(run_id: str, experiment_id: str) -> bool:
    try:
        return mlflow.get_run(run_id).info.experiment_id == experiment_id
    except mlflow.exceptions.MlflowException:
        return False  # the baseline was logged to another store: start a new execution here


def _log_inputs(data: Prepared, plan: Plan, root: Path) -> None:
    used = {split: "training" for split in plan.train_splits}
    used |= {split: "evaluation" for split in evaluation.TEST_SETS.values()}
    for split, context in used.items():
        path = root / layout.split_path(split)
        tracking.log_dataset(data.splits[split], path, split, data.label, context)


def _evaluate(bundle: ModelBundle, data: Prepared) -> dict[str, float]:
    tests = {name: (data.x(split), data.y(split)) for name, split in evaluation.TEST_SETS.items()}
    return evaluation.evaluate(bundle.predict_proba, bundle.labels, tests)


def _gpus_in_use() -> int:
    try:
        return len(keras.distribution.list_devices("gpu"))
    except Exception:  # the backend has no GPU support built in
        return 0


def _publish(root: Path, strategy: str, staged: Path, record: dict, history: dict) -> None:
    """Move the model into place and write the metrics and curves, each by rename."""
    target = root / layout.model_dir(strategy)
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():
        shutil.rmtree(target)
    staged.rename(target)
    curves = pd.DataFrame({"epoch": range(1, len(next(iter(history.values()))) + 1), **history})
    write_text_atomically(root / layout.metrics_path(strategy), json.dumps(record, indent=2) + "\n")
    write_text_atomically(root / layout.curves_path(strategy), curves.to_csv(index=False))

