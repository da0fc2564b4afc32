"""The compare step at the edge: gather this execution's strategies, diagnose the new data,
train more seeds while the evidence does not decide, recommend, write the report, describe
the runs and versions in MLflow, and mark the challenger. It loads TensorFlow only when it
trains more seeds, so the stage otherwise starts in a second or two."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import pandas as pd

from retrainlab.base import console, layout
from retrainlab.base.errors import PipelineError
from retrainlab.base.tasks import REGRESSION
from retrainlab.config import Params, as_flat_dict
from retrainlab.data import load_prepared
from retrainlab.decision import change, comparison, diagnostics
from retrainlab.decision.recommendation import Recommendation
from retrainlab.measure.record import load as load_record
from retrainlab.measure.record import rounded
from retrainlab.measure.task import measure_of, measure_of_summary, rules_of
from retrainlab.pipeline.prepare import describe_scoring, require_scored_as_params
from retrainlab.registry import promotion
from retrainlab.reporting import descriptions, report
from retrainlab.strategies import BASELINE, CATALOGUE
from retrainlab.tracking import store

log = logging.getLogger(__name__)


def compare_step(params: Params, root: Path = Path(".")) -> Recommendation:
    """Gather this execution's strategies, diagnose the new data, train more seeds while the
    evidence does not decide, recommend, report, mark the challenger."""
    # The baseline and the options params.yaml chooses now: a record left by an option since
    # dropped from `strategies` is not compared.
    records = {name: load_record(root, name) for name in (BASELINE, *params.strategies)}
    parents = {s: r.mlflow.parent_run_id for s, r in records.items()}
    parent = parents[BASELINE]
    stale = [s for s, p in parents.items() if p != parent]
    if stale:
        raise PipelineError(
            f"{layout.record_path(stale[0])}: from another pipeline execution than the baseline's; run dvc repro"
        )
    log.info(f"== {layout.COMPARE}: {', '.join(records)}: recommend one, report, mark the challenger ==")
    data = load_prepared(root)
    require_scored_as_params(params, data.summary)
    old, new = data.old_and_new()  # a sample: the rows prepare's figures of the texts are read on too
    # A regressor's target that moved is read against the current model's own predictions on
    # the old and the new test rows: moved with them, the inputs moved; not, the rule did.
    predictions = report.read_numbers(root, [BASELINE]).get(BASELINE) if data.summary.task == REGRESSION else None
    # A categorical column's new values: read on every row, where a sample would count a value
    # it left out of the old rows as new.
    every = [data.columns([f"{part}_{use}" for use in ("train", "test")], data.categorical_names)
             for part in ("initial", "incremental")]
    diagnosis = diagnostics.diagnose(old, new, data.label, data.features, max_tokens=params.model.text_tokens,
                                     task=data.summary.task, predictions=predictions,
                                     categories=diagnostics.category_shifts(*every, data.features))
    curves = {s: pd.read_csv(root / layout.curves_path(s)) for s in records}

    def train(names: list[str], seed: str) -> dict[str, dict[str, float]]:
        """More seeds need TensorFlow: loaded only when the evidence asks for them."""
        log.info(f"compare: training seed {seed} of {', '.join(names)}: not yet separated")
        console.load_tensorflow()
        # start-up: the compare step loads no TensorFlow unless the evidence asks for more seeds
        from retrainlab.pipeline.strategy_step import train_extra_seed

        return train_extra_seed(names, seed, params, root)

    experiment_id = store.configure(params.tracking.experiment, store.project_root(root))
    with store.step_run(experiment_id, layout.COMPARE, parent, {}, system_metrics=False):
        store.log_params({k: v for k, v in as_flat_dict(params).items() if k.startswith("compare.")})
        before = {s: set(r.per_seed) for s, r in records.items()}
        records, seeds = comparison.adapt_seeds(dict(records), params.compare, train)
        seeds["figures"] = {s: {k: v for k, v in r.per_seed.items() if k not in before[s]} for s, r in records.items()}
        verdict = comparison.recommend(records, params.compare)
        weighed = [said for said in [describe_scoring(data.summary)] if said]
        if measure_of_summary(data.summary).figure.stem in ("f1", "precision", "recall"):
            weighed += report.never_predicted(records, rules_of(data.summary).positive)
        if weighed:
            verdict = dataclasses.replace(verdict, reasons=[*verdict.reasons, *weighed])
        base = records[BASELINE].means
        # The kinds of change read the data's own figure (accuracy, RMSE), whatever the decision weighs.
        m = measure_of(verdict.measure.task)
        changes = change.classify(diagnosis, base.get(m.old), base.get(m.new), m)
        summary = report.write_report(root, records, verdict, diagnosis, params.compare, curves, changes, seeds)
        parent_metrics = diagnosis.metrics()
        parent_metrics |= {f"target.{s}": a.target.mean for s, a in verdict.assessments.items()}
        shown = comparison.metric_rows(records, verdict)[verdict.recommended]
        parent_metrics |= {f"recommended.{k}": float(v) for k, v in shown.items() if k != "verdict"}
        tags = {store.TAG_PREFIX + "recommendation": verdict.recommended,
                store.TAG_PREFIX + "measure": verdict.measure.metric,
                store.TAG_PREFIX + "change": ", ".join(c.kind for c in changes),
                store.NOTE_TAG: descriptions.decision_description(records, verdict, summary.headline,
                                                               summary.reasons)}
        store.log_to_run(parent, rounded(parent_metrics), tags, [root / p for p in layout.REPORT_FILES],
                            artifact_dir="comparison")
        _show_verdicts(records, verdict, params.tracking.registered_model)
        challenger = promotion.mark_challenger(params.tracking.registered_model, records, verdict, parent)
    log.info(f"compare: {summary.headline}")
    log.info(f"compare: recommended {verdict.recommended} (version {challenger} is now '{promotion.CHALLENGER}')")
    for reason in summary.reasons:
        log.info(f"  - {reason}")
    return summary


def _show_verdicts(records, verdict, registered_model: str) -> None:
    """Each strategy's target and verdict on its run, so the runs table sorts by the decision,
    and a description on its run and on the version it registered."""
    for strategy, record in records.items():
        a = verdict.assessments[strategy]
        summary = CATALOGUE[strategy].summary
        figures = {"target": a.target.mean, "target_ci_low": a.target.low, "target_ci_high": a.target.high}
        tags = {store.TAG_VERDICT: verdict.word(strategy),
                store.NOTE_TAG: descriptions.strategy_description(record, summary, verdict)}
        store.log_to_run(record.mlflow.run_id, rounded(figures), tags, [], "")
        if strategy == BASELINE and record.origin and record.origin.kind == "registry":
            continue  # the champion of an earlier round: its version belongs to that round
        own = record.per_seed[str(record.mlflow.model_seed)]
        store.describe_version(registered_model, record.version, descriptions.version_description(
            strategy, summary, record.mlflow.model_seed, len(record.per_seed), own, record.means,
            verdict.status(strategy), record.measure))
