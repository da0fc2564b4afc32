"""The edge of the `prepare` step, and what the steps after it read of its outputs.

`prepare` is the one place that reads the user's files and writes the Parquet outputs DVC
versions, with summary.json and a line for each conversion a user would not expect;
`load_prepared` gives the later steps those outputs as a `Prepared`.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from retrainlab.base import layout
from retrainlab.base.errors import PipelineError
from retrainlab.base.tasks import CLASSIFICATION
from retrainlab.config import DataParams
from retrainlab.data.inputs import identify
from retrainlab.data.schema import CATEGORICAL, Feature
from retrainlab.data.sources import arrays_dataset, builtin_parts, files_dataset
from retrainlab.data.splitting import SplitWriter, Tally, make_splits
from retrainlab.data.summary import PreparedSummary, read_summary, write_summary

log = logging.getLogger(__name__)
# Rows per split that the figures of the old and the new data are read on (diagnostics, text
# lengths): they are stable long before millions of rows.
SAMPLE_ROWS = 50_000

# --- the edge: read inputs, write outputs ---------------------------------------------


# How the data will be scored, from its task, its rows per class (as text) per split and a
# regressor's rows labelled 0 per split: a mapping for summary.json's `scoring`, or a
# ConfigError (retrainlab.measure.choice.resolve, which the pipeline passes in).
Scorer = Callable[[str, dict[str, dict[str, int]], dict[str, int]], dict[str, Any]]


def prepare(data: DataParams, root: Path = Path("."), scorer: Scorer | None = None) -> PreparedSummary:
    """Build the four splits and the summary and write them under data/prepared/.

    The data goes through part by part (the synthetic source in chunks, users' files
    whole), each part appended to the split files, so no more than one part is in memory.
    Nothing is written unless every part and the checks on the whole pass, the user's
    measure (`scorer`) included. The summary says what the data was made from
    (`inputs.identify`) and how it is scored (`choice.resolve`).
    """
    made_from = identify(data, root)
    if data.source == "files":
        parts, names = iter([files_dataset(data, root)]), (data.files.initial, data.files.incremental)
    elif data.source == "arrays":
        parts, names = iter([arrays_dataset(data, root)]), (data.arrays.initial, data.arrays.incremental)
    else:
        parts, names = builtin_parts(data, data.seed), ("initial data", "incremental data")
    rng = np.random.default_rng(data.seed)
    tally, label, features = Tally(), None, None
    with SplitWriter(root) as writer:
        for dataset in parts:
            label, features = dataset.label, dataset.features
            splits = make_splits(dataset, data.test_fraction, rng)
            tally.add(dataset, splits)
            writer.append(splits)
            del dataset, splits
        tally.check(names)
        summary = dataclasses.replace(tally.summary(label, features, data), inputs=made_from)
        if scorer is not None:
            scoring = scorer(summary.task or CLASSIFICATION, tally.class_counts(),
                             {name: m.zeros for name, m in tally.moments.items()})
            summary = dataclasses.replace(summary, scoring=scoring)
        writer.commit()
    _log_conversions(summary)
    write_summary(root, summary)
    return summary


def _log_conversions(summary: PreparedSummary) -> None:
    """Say what was done to the input that a user would not expect: the summary has the details."""
    for name, how in (summary.files or {}).items():
        if how.get("delimiter", ",") != ",":
            log.info(f"prepare: {name}: columns separated by {how['delimiter']!r}")
        if how.get("decimal_comma"):
            log.info(f"prepare: {name}: numbers written with a decimal comma read as numbers (columns "
                     f"{', '.join(map(repr, how['decimal_comma']))})")
    for note in (summary.label_conversion, summary.label_cleaning):
        if note is not None:
            log.info(f"prepare: labels: {note}")
    if summary.task is not None:
        log.info(f"prepare: task: {summary.task} ({summary.task_rule or 'no rule noted'})")
    for part, counts in summary.cleaning.items():
        if counts["dropped_unlabelled"] or counts["dropped_incomplete"] or counts["imputed_values"]:
            log.info(
                f"prepare: {part} data: {counts['rows_read']} rows read, {counts['dropped_unlabelled']} dropped "
                f"without a label, {counts['dropped_incomplete']} dropped with missing, infinite or too large "
                f"values, {counts['imputed_values']} values imputed, {counts['overflow_values']} values beyond "
                "float32's range counted as missing"
            )


@dataclasses.dataclass(frozen=True)
class Prepared:
    """The prepare step's outputs: where each split is and what the summary says of it.

    Splits are read on demand: training and evaluation stream them (retrainlab.data.stream);
    `x`, `y` and `frame` read a whole split, for the small uses that need one.
    """

    root: Path
    summary: PreparedSummary

    @property
    def label(self) -> str:
        return self.summary.label

    @property
    def features(self) -> tuple[Feature, ...]:
        return self.summary.features

    def path(self, split: str) -> Path:
        return self.root / layout.split_path(split)

    def rows(self, split: str) -> int:
        return self.summary.rows[split]

    def classes(self, *splits: str) -> list:
        """The labels the splits hold, sorted, as the summary lists them."""
        return sorted({label for split in splits for label in self.summary.classes[split]})

    def label_moments(self, *splits: str) -> tuple[float, float]:
        """A regression label's mean and standard deviation over the splits, from the summary."""
        stats = [(self.rows(s), self.summary.label_stats[s]) for s in splits]
        rows = sum(n for n, _ in stats)
        mean = sum(n * st["mean"] for n, st in stats) / rows
        spread = sum((n - 1) * st["std"] ** 2 + n * (st["mean"] - mean) ** 2 for n, st in stats)
        std = (spread / (rows - 1)) ** 0.5 if rows > 1 else 1.0
        return mean, std if std > 0 else 1.0

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.features]

    @property
    def categorical_names(self) -> list[str]:
        return [f.name for f in self.features if f.kind == CATEGORICAL]

    def frame(self, split: str) -> pd.DataFrame:
        return pd.read_parquet(self.path(split))

    def x(self, split: str) -> pd.DataFrame:
        return pd.read_parquet(self.path(split), columns=self.feature_names)

    def y(self, split: str) -> np.ndarray:
        return pd.read_parquet(self.path(split), columns=[self.label])[self.label].to_numpy()

    def columns(self, splits: Sequence[str], names: Sequence[str]) -> pd.DataFrame:
        """Every row of `splits`, only the columns `names`: where a sample would mislead (a
        categorical value a sample left out would read as one the old data lacks). No columns:
        no file is read."""
        if not names:
            return pd.DataFrame()
        return pd.concat([pd.read_parquet(self.path(s), columns=list(names)) for s in splits], ignore_index=True)

    def sample(self, split: str, rows: int, seed: int = 0) -> pd.DataFrame:
        """At most `rows` rows of a split, drawn at random, decoding only the row groups
        that hold them."""
        total = self.rows(split)
        if total <= rows:
            return self.frame(split)
        keep = np.sort(np.random.default_rng(seed).choice(total, size=rows, replace=False))
        source, chosen_rows, start = pq.ParquetFile(self.path(split)), [], 0
        for group in range(source.metadata.num_row_groups):
            size = source.metadata.row_group(group).num_rows
            chosen = keep[(keep >= start) & (keep < start + size)] - start
            if len(chosen):
                chosen_rows.append(source.read_row_group(group).take(chosen).to_pandas())
            start += size
        return pd.concat(chosen_rows, ignore_index=True)

    def old_and_new(self, rows: int = SAMPLE_ROWS) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The old data and the new, training and test rows, at most `rows` of each split drawn
        at random (`sample`): the rows every figure of the old against the new is read on."""
        return tuple(pd.concat([self.sample(f"{part}_{use}", rows) for use in ("train", "test")], ignore_index=True)
                     for part in ("initial", "incremental"))


def load_prepared(root: Path = Path(".")) -> Prepared:
    summary = read_summary(root)
    missing = [s for s in layout.SPLITS if not (root / layout.split_path(s)).is_file()]
    if missing:
        raise PipelineError(f"{layout.split_path(missing[0])}: not found; run the prepare step (dvc repro prepare)")
    return Prepared(root, summary)
