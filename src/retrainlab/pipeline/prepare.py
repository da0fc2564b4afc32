"""The prepare step at the edge, where it meets MLflow and the files DVC tracks: build the
datasets (retrainlab.data.prepare), then log their summary and digests to the step's run.
No TensorFlow: the stage starts in a second or two."""

from __future__ import annotations

import logging
from pathlib import Path

import mlflow
import pandas as pd

from retrainlab.base import layout
from retrainlab.config import Params, applicable
from retrainlab.data import TEXT, PreparedSummary, load_prepared, prepare
from retrainlab.data.text import lengths, mean_length
from retrainlab.tracking import store

log = logging.getLogger(__name__)


def prepare_step(params: Params, root: Path = Path(".")) -> PreparedSummary:
    """Build the datasets, then log their summary and digests to the step's MLflow run."""
    log.info(f"== {layout.PREPARE}: {_source(params)}: the old and the new data, each split into training and test ==")
    summary = prepare(params.data, root)
    data = load_prepared(root)
    experiment_id = store.configure(params.tracking.experiment, store.project_root(root))
    with store.step_run(experiment_id, layout.PREPARE, None, {}, system_metrics=False):
        store.log_params({k: v for k, v in applicable(params).items() if k.startswith("data.")})
        for split in layout.SPLITS:
            context = "training" if split.endswith("_train") else "evaluation"
            store.log_dataset(data, split, context)
        mlflow.log_artifact(str(root / layout.SUMMARY))
    rows = summary.rows
    log.info(f"{layout.PREPARE}: old data {rows['initial_train']:,} training and {rows['initial_test']:,} test rows, "
             f"new data {rows['incremental_train']:,} and {rows['incremental_test']:,}; "
             f"{len(data.features)} features, label '{data.label}'")
    texts = [feature.name for feature in data.features if feature.kind == TEXT]
    if texts:
        old, new = data.old_and_new()  # the rows the report's "What kind of new data is this?" reads
        for column in texts:
            log.info(f"{layout.PREPARE}: {text_lengths(old[column], new[column], column, params.model.text_length)}")
    return summary


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


def _source(params: Params) -> str:
    """Where the data comes from, as the prepare step's header says it."""
    data = params.data
    if data.source in ("files", "arrays"):
        files = getattr(data, data.source)
        return f"{files.initial} and {files.incremental}"
    return f"{data.source}, scenario {data.scenario}"
