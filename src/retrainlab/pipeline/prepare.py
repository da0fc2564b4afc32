"""The prepare step at the edge, where it meets MLflow and the files DVC tracks: build the
datasets (retrainlab.data.prepare), then log their summary and digests to the step's run.
No TensorFlow: the stage starts in a second or two."""

from __future__ import annotations

import logging
from pathlib import Path

import mlflow

from retrainlab.base import layout
from retrainlab.config import Params, applicable
from retrainlab.data import TEXT, PreparedSummary, load_prepared, prepare
from retrainlab.data.text import lengths
from retrainlab.tracking import store

log = logging.getLogger(__name__)
LENGTH_SAMPLE = 20_000  # texts whose lengths are counted, per split


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
    for feature in data.features:
        if feature.kind == TEXT:
            log.info(f"{layout.PREPARE}: {_text_lengths(data, feature.name, params.model.text_length)}")
    return summary


def _text_lengths(data, column: str, length: int) -> str:
    """How long a text column's texts are, and how many the model cuts at `length` tokens."""
    counts = {split: lengths(data.sample(split, LENGTH_SAMPLE)[column]) for split in ("initial_train",
                                                                                        "incremental_train")}
    said = [f"text column '{column}': {counts['initial_train'].mean():.1f} tokens a text in the old data, "
            f"{counts['incremental_train'].mean():.1f} in the new"]
    over = {split: float((n > length).mean()) for split, n in counts.items()}
    if any(over.values()):
        said.append(f"{over['initial_train']:.1%} of old and {over['incremental_train']:.1%} of new texts are longer "
                    f"than model.text_length ({length} tokens): the model reads their first {length} tokens")
    return "; ".join(said)


def _source(params: Params) -> str:
    """Where the data comes from, as the prepare step's header says it."""
    data = params.data
    if data.source in ("files", "arrays"):
        files = getattr(data, data.source)
        return f"{files.initial} and {files.incremental}"
    return f"{data.source}, scenario {data.scenario}"
