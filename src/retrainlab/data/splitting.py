"""From a clean `Dataset` to the four split files: the test splits, and what the summary says of them.

`make_splits` splits each part into train and test with every class in both
(`stratified_split`); `Tally` adds up the rows and classes of the splits part by part and
runs the checks on the whole; `SplitWriter` appends the parts to the Parquet split files
and puts them in place only when everything passed.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from retrainlab.base import layout
from retrainlab.base.errors import DataError
from retrainlab.base.tasks import CLASSIFICATION, REGRESSION
from retrainlab.config import DataParams
from retrainlab.data.schema import Dataset, Feature, check_class_counts, plain
from retrainlab.data.summary import PreparedSummary
from retrainlab.data.task import check_spread

# A regression label is split within this many bands of its values (quantiles), so that
# the test splits cover the label's range as the training splits do.
LABEL_BANDS = 10

# --- test splits ----------------------------------------------------------------------


def stratified_split(
    labels: np.ndarray, test_fraction: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Train and test row indices with every class in the same proportion in both.

    A class with at least two rows puts at least one in each; a lone row stays in train.
    """
    train, test = [], []
    for cls in np.unique(labels):
        rows = rng.permutation(np.flatnonzero(labels == cls))
        n_test = int(round(len(rows) * test_fraction))
        n_test = min(max(n_test, 1), len(rows) - 1) if len(rows) >= 2 else 0
        test.append(rows[:n_test])
        train.append(rows[n_test:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def label_bands(values: np.ndarray, bands: int = LABEL_BANDS) -> np.ndarray:
    """Each value's band among `bands` equal-count bands of the sorted values (ties by position)."""
    order = np.argsort(values, kind="stable")
    band = np.empty(len(values), dtype=np.int64)
    band[order] = np.arange(len(values)) * bands // max(len(values), 1)
    return band


def make_splits(dataset: Dataset, test_fraction: float, rng: np.random.Generator) -> dict[str, pd.DataFrame]:
    """The four splits, each part split by `split_part`."""
    splits = {}
    regression = dataset.notes.get("task") == REGRESSION
    for part in ("initial", "incremental"):
        train, test = split_part(getattr(dataset, part), dataset.label, regression, test_fraction, rng)
        splits[f"{part}_train"], splits[f"{part}_test"] = train, test
    return splits


def split_part(frame: pd.DataFrame, label: str, regression: bool, test_fraction: float,
               rng: np.random.Generator) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A part's training and test rows, stratified by class (a regression label: by band of
    its values). Training rows come in random order, so that a stream reading them in windows
    (retrainlab.data.stream) gets well mixed batches even from files sorted by class."""
    labels = frame[label].to_numpy()
    train, test = stratified_split(label_bands(labels) if regression else labels, test_fraction, rng)
    return frame.iloc[rng.permutation(train)].reset_index(drop=True), frame.iloc[test].reset_index(drop=True)


@dataclasses.dataclass
class Tally:
    """What the summary says about the splits, added up part by part."""

    rows: dict[str, int] = dataclasses.field(default_factory=lambda: dict.fromkeys(layout.SPLITS, 0))
    counts: dict[str, pd.Series] = dataclasses.field(default_factory=dict)  # a classifier's rows per class
    moments: dict[str, Moments] = dataclasses.field(default_factory=dict)  # a regression label's
    cleaning: dict[str, dict[str, int]] = dataclasses.field(default_factory=dict)
    notes: dict[str, Any] = dataclasses.field(default_factory=dict)

    def add(self, dataset: Dataset, splits: dict[str, pd.DataFrame]) -> None:
        self.label = dataset.label
        for name, frame in splits.items():
            self.rows[name] += len(frame)
            if dataset.notes.get("task") == REGRESSION:
                self.moments[name] = self.moments.get(name, Moments()) + Moments.of(frame[dataset.label].to_numpy())
                continue
            counts = frame[dataset.label].value_counts()
            self.counts[name] = counts if name not in self.counts else self.counts[name].add(counts, fill_value=0)
        for part, report in zip(("initial", "incremental"), dataset.cleaning.values()):
            total = self.cleaning.setdefault(part, dict.fromkeys(report, 0))
            for key, value in report.items():
                total[key] += value
        self.notes.update(dataset.notes)

    def check(self, names: tuple[str, str]) -> None:
        """The class checks on the whole data (a regression label: that it varies, in each
        part and each test split), and no empty split."""
        for name, rows in self.rows.items():
            if not rows:
                raise DataError(f"split '{name}' is empty: give more rows or change data.test_fraction")
        for part, name in zip(("initial", "incremental"), names):
            if self.moments:
                whole = self.moments[f"{part}_train"] + self.moments[f"{part}_test"]
                check_spread(name, self.label, whole.rows, whole.spread, whole.low)
                test = self.moments[f"{part}_test"]
                check_spread(f"{name}'s test split", self.label, test.rows, test.spread, test.low)
                continue
            both = self.counts[f"{part}_train"].add(self.counts[f"{part}_test"], fill_value=0)
            check_class_counts(both.astype(int), name, need_two=part == "initial")

    def class_counts(self) -> dict[str, dict[str, int]]:
        """A classifier's rows per class (as text) per split; a regressor's: none."""
        return {name: {str(plain(label)): int(n) for label, n in counts.items()} for name, counts in self.counts.items()}

    def summary(self, label: str, features: tuple[Feature, ...], params: DataParams) -> PreparedSummary:
        classes = {name: sorted(plain(v) for v in self.counts[name].index) if name in self.counts else []
                   for name in layout.SPLITS}
        old = set(classes["initial_train"])
        notes = dict(self.notes)
        notes.setdefault("task", CLASSIFICATION)
        if self.moments:
            notes["label_stats"] = {name: m.stats() for name, m in self.moments.items()}
        return PreparedSummary(
            source=params.source,
            scenario=None if params.source in ("files", "arrays") else params.scenario,
            label=label,
            features=tuple(features),
            rows=dict(self.rows),
            classes=classes,
            new_classes=[c for c in classes["incremental_train"] if c not in old],
            cleaning=self.cleaning,
            **notes,
        )


@dataclasses.dataclass(frozen=True)
class Moments:
    """A regression label's count, mean, sum of squared deviations, least and greatest value,
    pooled part by part (Chan et al.)."""

    rows: int = 0
    mean: float = 0.0
    spread: float = 0.0
    low: float = float("inf")
    high: float = float("-inf")
    zeros: int = 0  # rows whose label is 0 (a percentage error is undefined there)

    @classmethod
    def of(cls, values: np.ndarray) -> Moments:
        if not len(values):
            return cls()
        mean = float(values.mean())
        return cls(len(values), mean, float(((values - mean) ** 2).sum()), float(values.min()), float(values.max()),
                   int((values == 0).sum()))

    def __add__(self, other: Moments) -> Moments:
        rows = self.rows + other.rows
        if not rows:
            return Moments()
        delta = other.mean - self.mean
        return Moments(rows, self.mean + delta * other.rows / rows,
                       self.spread + other.spread + delta**2 * self.rows * other.rows / rows,
                       min(self.low, other.low), max(self.high, other.high), self.zeros + other.zeros)

    def stats(self) -> dict[str, float]:
        """What summary.json says of the label in one split."""
        std = (self.spread / (self.rows - 1)) ** 0.5 if self.rows > 1 else 0.0
        return {"mean": self.mean, "std": std, "min": self.low, "max": self.high}


# Rows per Parquet row group of the prepared splits: what a reader decodes at a time.
ROW_GROUP_ROWS = 1 << 16


class SplitWriter:
    """The four split files, appended to part by part beside their final names, and renamed
    into place only by `commit`: a failure leaves the previous files as they were."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.writers: dict[str, Any] = {}
        self.temp: dict[str, Path] = {}

    def __enter__(self) -> SplitWriter:
        return self

    def append(self, splits: dict[str, pd.DataFrame]) -> None:
        for name, frame in splits.items():
            table = pa.Table.from_pandas(frame, preserve_index=False)
            if name not in self.writers:
                final = self.root / layout.split_path(name)
                final.parent.mkdir(parents=True, exist_ok=True)
                self.temp[name] = final.with_name(f".{final.name}.partial")
                self.writers[name] = pq.ParquetWriter(self.temp[name], table.schema)
            writer = self.writers[name]
            writer.write_table(table.cast(writer.schema), row_group_size=ROW_GROUP_ROWS)

    def commit(self) -> None:
        self._close()
        for name, temp in self.temp.items():
            os.replace(temp, self.root / layout.split_path(name))
        self.temp = {}

    def _close(self) -> None:
        for writer in self.writers.values():
            writer.close()
        self.writers = {}

    def __exit__(self, *exc_info: Any) -> None:
        self._close()
        for temp in self.temp.values():
            temp.unlink(missing_ok=True)
