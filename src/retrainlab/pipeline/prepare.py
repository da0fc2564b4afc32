"""The prepare step at the edge, where it meets MLflow and the files DVC tracks: build the
datasets (retrainlab.data.prepare), then log their summary and digests to the step's run.
No TensorFlow: the stage starts in a second or two."""

from __future__ import annotations

import logging
from pathlib import Path

import mlflow
import pandas as pd

from retrainlab.base import layout
from retrainlab.base.errors import PipelineError
from retrainlab.base.tasks import CLASSIFICATION
from retrainlab.config import Params, applicable
from retrainlab.data import TEXT, PreparedSummary, load_prepared, prepare
from retrainlab.data.text import lengths, mean_length
from retrainlab.tracking import store
from retrainlab.measure.task import measure_of, measure_of_summary, rules_of
from retrainlab.measure import choice

log = logging.getLogger(__name__)


def prepare_step(params: Params, root: Path = Path(".")) -> PreparedSummary:
    """Build the datasets, then log their summary and digests to the step's MLflow run."""
    log.info(f"== {layout.PREPARE}: {_source(params)}: the old and the new data, each split into training and test ==")
    summary = prepare(params.data, root, choice.scorer(params.compare))
    data = load_prepared(root)
    experiment_id = store.configure(params.tracking.experiment, store.project_root(root))
    with store.step_run(experiment_id, layout.PREPARE, None, {}, system_metrics=False):
        store.log_params({k: v for k, v in applicable(params).items() if k.startswith("data.")})
        store.log_params(scoring_params(summary))
        for split in layout.SPLITS:
            context = "training" if split.endswith("_train") else "evaluation"
            store.log_dataset(data, split, context)
        mlflow.log_artifact(str(root / layout.SUMMARY))
    rows = summary.rows
    log.info(f"{layout.PREPARE}: {describe_scoring(summary) or 'the decision weighs ' + measure_of_summary(summary).words}")
    log.info(f"{layout.PREPARE}: old data {rows['initial_train']:,} training and {rows['initial_test']:,} test rows, "
             f"new data {rows['incremental_train']:,} and {rows['incremental_test']:,}; "
             f"{len(data.features)} features, label '{data.label}'")
    for column, facts in (summary.categories or {}).items():
        if "flagged" in facts:
            log.info(f"{layout.PREPARE}: categorical column '{column}' {facts['flagged']}")
    texts = [feature.name for feature in data.features if feature.kind == TEXT]
    if texts:
        old, new = data.old_and_new()  # the rows the report's "What kind of new data is this?" reads
        for column in texts:
            log.info(f"{layout.PREPARE}: {text_lengths(old[column], new[column], column, params.model.text_length)}")
    return summary


def scoring_params(summary: PreparedSummary) -> dict[str, object]:
    """How the data is scored, as resolved (the metric, a binary classifier's positive class
    and threshold), for the prepare run's params."""
    rules = rules_of(summary)
    out: dict[str, object] = {"measure.metric": measure_of_summary(summary).metric}
    if rules.positive is not None:
        out |= {"measure.positive_class": rules.positive, "measure.threshold": rules.threshold}
    return out


def text_lengths(old: pd.Series, new: pd.Series, column: str, length: int) -> str:
    """How long a text column's texts are in the old and the new data (tokens a text, as the
    report says it), and how many the model cuts at `length` tokens."""
    said = [f"text column '{column}': {mean_length(old):.1f} tokens a text in the old data, "
            f"{mean_length(new):.1f} in the new"]
    over = {part: float((lengths(texts) > length).mean()) if len(texts) else 0.0
            for part, texts in (("old", old), ("new", new))}
    if any(over.values()):
        said.append(f"{over['old']:.1%} of old and {over['new']:.1%} of new texts are longer than model.text_length "
                    f"({length} tokens): the model reads their first {length} tokens")
    return "; ".join(said)


def require_scored_as_params(params: Params, summary: PreparedSummary) -> None:
    """Refuse, in one line, to train or compare on data scored with another measure than
    params.yaml's now (a step run by hand after a change of compare.metric: DVC would run
    prepare first)."""
    why = choice.stale(params.compare, summary.task or CLASSIFICATION, summary.scoring)
    if why:
        raise PipelineError(f"{layout.SUMMARY}: {why}; run dvc repro (prepare resolves the measure, then every "
                            "option is scored with it)")


def describe_scoring(summary: PreparedSummary) -> str:
    """What every decision weighs, in words ("" for the task's default measure on data that
    is not binary: nothing to say beyond the table)."""
    m, rules = measure_of_summary(summary), rules_of(summary)
    if m.metric == measure_of(m.task).metric and rules.positive is None:
        return ""
    said = f"The decision weighs {m.words} (compare.metric: {m.metric})"
    reads_class = m.figure.stem in ("f1", "precision", "recall", "auc", "ap")
    if rules.positive is not None:
        which = f"'{rules.positive}' ({rules.positive_rule})"
        said += f" of the positive class {which}" if reads_class else f"; the positive class is {which}"
        return said + (f"; every option predicts it at a probability of {rules.threshold:g} or more, and the "
                       "report's precision and recall are at that threshold.")
    if not m.regression and reads_class:
        said += ", macro over the classes"
    if m.figure.stem == "pinball":
        said += f", at the quantile {rules.quantile:g}"
    return said + "."


def _source(params: Params) -> str:
    """Where the data comes from, as the prepare step's header says it."""
    data = params.data
    if data.source in ("files", "arrays"):
        files = getattr(data, data.source)
        return f"{files.initial} and {files.incremental}"
    return f"{data.source}, scenario {data.scenario}"
