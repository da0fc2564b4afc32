"""The `prepare` step: build the initial and incremental datasets and their test splits.

Pure functions make the pool, the scenario and the splits; `prepare` at the bottom is the
one place that reads the user's files and writes the Parquet outputs DVC versions.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from retrainlab import layout
from retrainlab.config import DataParams
from retrainlab.errors import DataError, PipelineError
from retrainlab.files import write_text_atomically

NUMERIC = "numeric"
CATEGORICAL = "categorical"


@dataclasses.dataclass(frozen=True)
class Feature:
    name: str
    kind: str  # NUMERIC or CATEGORICAL


@dataclasses.dataclass(frozen=True)
class Dataset:
    """Initial and incremental rows with their label column and feature schema."""

    initial: pd.DataFrame
    incremental: pd.DataFrame
    label: str
    features: tuple[Feature, ...]
    cleaning: dict[str, dict[str, int]] = dataclasses.field(default_factory=dict)


# --- the built-in sources -------------------------------------------------------------


def digits_pool() -> tuple[pd.DataFrame, np.ndarray]:
    """scikit-learn's bundled 8x8 handwritten digits: 1797 real images, 64 pixel columns."""
    from sklearn.datasets import load_digits

    frame = load_digits(as_frame=True).frame
    return frame.drop(columns="target"), frame["target"].to_numpy()


def shift_digits(pixels: pd.DataFrame, strength: float) -> pd.DataFrame:
    """Move every image right by `round(strength)` pixels (at least one), as a moved camera would."""
    step = max(1, int(round(strength)))
    images = pixels.to_numpy().reshape(-1, 8, 8)
    shifted = np.zeros_like(images)
    shifted[:, :, step:] = images[:, :, : 8 - step]
    return pd.DataFrame(shifted.reshape(-1, 64), columns=pixels.columns, index=pixels.index)


@dataclasses.dataclass(frozen=True)
class SyntheticTeacher:
    """A fixed random network that labels rows: the 'true rule' of the synthetic source."""

    hidden: np.ndarray
    readout: np.ndarray
    segment_bias: dict[str, np.ndarray]
    shift_direction: np.ndarray

    @classmethod
    def draw(cls, features: int, classes: int, rng: np.random.Generator) -> SyntheticTeacher:
        direction = rng.normal(size=features)
        return cls(
            hidden=rng.normal(size=(features, 16)),
            readout=rng.normal(size=(16, classes)),
            segment_bias={s: rng.normal(scale=0.7, size=classes) for s in SEGMENTS},
            shift_direction=direction / np.linalg.norm(direction),
        )

    def label(self, frame: pd.DataFrame) -> np.ndarray:
        x = frame.drop(columns="segment").to_numpy()
        logits = np.tanh(x @ self.hidden) @ self.readout
        logits += np.stack([self.segment_bias[s] for s in frame["segment"]])
        return logits.argmax(axis=1)

    def shift(self, frame: pd.DataFrame, strength: float) -> pd.DataFrame:
        moved = frame.copy()
        numeric = [c for c in frame.columns if c != "segment"]
        moved[numeric] = frame[numeric].to_numpy() + strength * self.shift_direction
        return moved


SEGMENTS = ("north", "south", "east")


def synthetic_rows(rows: int, features: int, rng: np.random.Generator) -> pd.DataFrame:
    """Seeded unlabelled rows: numeric columns x0.. plus a categorical `segment`."""
    frame = pd.DataFrame(rng.normal(size=(rows, features)), columns=[f"x{i}" for i in range(features)])
    frame["segment"] = rng.choice(SEGMENTS, size=rows)
    return frame


def synthetic_pool(rows: int, features: int, classes: int, rng: np.random.Generator):
    """Seeded rows labelled by a teacher drawn from the same generator."""
    teacher = SyntheticTeacher.draw(features, classes, rng)
    frame = synthetic_rows(rows, features, rng)
    return frame, teacher.label(frame), teacher


# --- scenarios ------------------------------------------------------------------------


def split_pool(
    initial_allowed: np.ndarray, fraction: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Row indices of the initial and incremental sets.

    The initial set takes 1/(1+fraction) of the rows it may hold; the incremental set,
    `fraction` times the initial set's size, is drawn from all the rows that are left.
    """
    allowed = np.flatnonzero(initial_allowed)
    n_initial = int(round(len(allowed) / (1 + fraction)))
    initial = rng.choice(allowed, size=n_initial, replace=False)
    rest = np.setdiff1d(np.arange(len(initial_allowed)), initial)
    n_incremental = min(len(rest), int(round(fraction * n_initial)))
    incremental = rng.choice(rest, size=n_incremental, replace=False)
    return np.sort(initial), np.sort(incremental)


def rotate_labels(labels: np.ndarray, affected: np.ndarray) -> np.ndarray:
    """Concept drift: each affected class takes the next affected class's label."""
    rotated = labels.copy()
    for i, cls in enumerate(affected):
        rotated[labels == cls] = affected[(i + 1) % len(affected)]
    return rotated


def apply_scenario(
    pool: pd.DataFrame,
    labels: np.ndarray,
    params: DataParams,
    rng: np.random.Generator,
    shift_inputs: Callable[[pd.DataFrame, float], pd.DataFrame],
    relabel: Callable[[pd.DataFrame], np.ndarray] | None = None,
    classes: np.ndarray | None = None,
) -> tuple[pd.DataFrame, np.ndarray, pd.DataFrame, np.ndarray]:
    """Split a labelled pool into initial and incremental data as the scenario says.

    `shift_inputs` moves the incremental inputs for covariate_shift; `relabel`, where the
    source has a labelling rule, labels the moved inputs by that same rule. `classes` are
    the source's classes when the pool is one chunk of a larger source (default: the pool's).
    """
    classes = np.unique(labels) if classes is None else classes
    allowed = np.ones(len(labels), dtype=bool)
    if params.scenario == "new_classes":
        if params.affected_classes >= len(classes):
            raise DataError(
                f"parameter 'data.affected_classes' is {params.affected_classes} but the source has "
                f"{len(classes)} classes; new_classes needs at least one class in the initial data"
            )
        allowed = ~np.isin(labels, classes[-params.affected_classes :])
    if params.scenario == "concept_drift" and params.affected_classes > len(classes):
        raise DataError(
            f"parameter 'data.affected_classes' is {params.affected_classes} but the source has "
            f"only {len(classes)} classes"
        )
    initial_idx, incremental_idx = split_pool(allowed, params.incremental_fraction, rng)
    initial = pool.iloc[initial_idx].reset_index(drop=True)
    incremental = pool.iloc[incremental_idx].reset_index(drop=True)
    y_initial, y_incremental = labels[initial_idx], labels[incremental_idx]
    if params.scenario == "covariate_shift":
        incremental = shift_inputs(incremental, params.shift_strength)
        if relabel is not None:
            y_incremental = relabel(incremental)
    elif params.scenario == "concept_drift":
        y_incremental = rotate_labels(y_incremental, classes[: params.affected_classes])
    return initial, y_initial, incremental, y_incremental


# Rows of the synthetic source generated, split and written at a time: prepare's memory is
# bounded by this, whatever `data.synthetic.rows` is.
CHUNK_ROWS = 1 << 18
# Rows per Parquet row group of the prepared splits: what a reader decodes at a time.
ROW_GROUP_ROWS = 1 << 16


def builtin_parts(params: DataParams, seed: int) -> Iterator[Dataset]:
    """The built-in source's data, in parts that together are the whole dataset.

    Digits is one part. The synthetic source is generated CHUNK_ROWS rows at a time by one
    seeded generator, and each chunk is split by the scenario on its own, so that a source
    of any size is built in bounded memory.
    """
    rng = np.random.default_rng(seed)
    names = ("initial data", "incremental data")
    if params.source == "digits":
        pool, labels = digits_pool()
        initial, y_initial, incremental, y_incremental = apply_scenario(pool, labels, params, rng, shift_digits)
        yield _labelled(initial, y_initial, incremental, y_incremental, "digit", names)
        return
    p = params.synthetic
    teacher = SyntheticTeacher.draw(p.features, p.classes, rng)
    for start in range(0, p.rows, CHUNK_ROWS):
        pool = synthetic_rows(min(CHUNK_ROWS, p.rows - start), p.features, rng)
        parts = apply_scenario(
            pool, teacher.label(pool), params, rng, teacher.shift, teacher.label, classes=np.arange(p.classes)
        )
        del pool
        yield _labelled(*parts, "label", names)


def _labelled(initial, y_initial, incremental, y_incremental, label: str, names: tuple[str, str]) -> Dataset:
    initial[label], incremental[label] = y_initial, y_incremental
    return tidy(initial, incremental, label, features=None, names=names, check_classes=False)


# --- the user's files -----------------------------------------------------------------


def read_table(path: Path, shown: str) -> pd.DataFrame:
    """Read a CSV or Parquet file; `shown` is how the error names it (the path as the user gave it)."""
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".parquet", ".pq"):
        raise DataError(f"{shown}: unsupported file type '{suffix}'; give a .csv or .parquet file")
    if not path.is_file():
        raise DataError(f"{shown}: file not found; set data.files.initial / data.files.incremental")
    if path.stat().st_size == 0:
        raise DataError(f"{shown}: the file is empty")
    try:
        frame = pd.read_csv(path) if suffix == ".csv" else pd.read_parquet(path)
    except Exception as exc:  # pandas and pyarrow raise many types for unreadable files
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(f"{shown}: cannot be read as {suffix[1:]} ({reason})") from None
    if frame.empty:
        raise DataError(f"{shown}: has a header but no data rows")
    return frame


def files_dataset(params: DataParams, root: Path) -> Dataset:
    spec = params.files
    frames = [read_table((root / p).resolve(), p) for p in (spec.initial, spec.incremental)]
    return tidy(*frames, spec.label, spec.features or None, (spec.initial, spec.incremental), params.missing)


def tidy(
    initial: pd.DataFrame,
    incremental: pd.DataFrame,
    label: str,
    features: list[str] | None,
    names: tuple[str, str],
    missing: str = "drop",
    check_classes: bool = True,
) -> Dataset:
    """Check both frames against each other, apply the missing-value policy, give them one schema.

    Numeric columns become float64; anything else is categorical and becomes text. Rows
    without a label are dropped (a label cannot be imputed); missing or infinite feature
    values are dropped or imputed as `missing` says, and every count is reported.
    `check_classes=False` leaves the class checks to the caller (for one part of a dataset).
    """
    frames = dict(zip(names, (initial, incremental)))
    for name, frame in frames.items():
        if label not in frame.columns:
            raise DataError(f"{name}: no label column '{label}'; set data.files.label")
    feature_names = features or [c for c in initial.columns if c != label]
    if not feature_names:
        raise DataError(f"{names[0]}: has no feature columns besides the label '{label}'")
    if label in feature_names:
        raise DataError(f"parameter 'data.files.features' lists the label column '{label}'")
    for name, frame in frames.items():
        absent = [c for c in feature_names if c not in frame.columns]
        if absent:
            raise DataError(f"{name}: missing feature column '{absent[0]}'")
    if not features:
        extra = [c for c in incremental.columns if c not in initial.columns]
        if extra:
            raise DataError(
                f"{names[1]}: extra column '{extra[0]}' that {names[0]} lacks; "
                "list the columns to use in data.files.features"
            )
    kinds = tuple(_kind(c, initial[c], incremental[c], names) for c in feature_names)
    cleaned, report = {}, {}
    for name, frame in frames.items():
        cleaned[name], report[name] = _clean(frame, kinds, label, missing, reference=initial, name=name)
    if check_classes:
        for name, frame in cleaned.items():
            check_class_counts(frame[label].value_counts(), name, need_two=name == names[0])
    return Dataset(*cleaned.values(), label, kinds, report)


def _kind(column: str, old: pd.Series, new: pd.Series, names: tuple[str, str]) -> Feature:
    kinds = [NUMERIC if _is_numeric(s.dropna()) else CATEGORICAL for s in (old, new)]
    if kinds[0] != kinds[1] and not (old.isna().all() or new.isna().all()):
        text = {NUMERIC: "numeric", CATEGORICAL: "text"}
        raise DataError(
            f"{names[1]}: column '{column}' is {text[kinds[1]]} but {text[kinds[0]]} in {names[0]}; "
            "make the two files agree"
        )
    return Feature(column, kinds[0])


def _clean(
    frame: pd.DataFrame, features: tuple[Feature, ...], label: str, missing: str, reference: pd.DataFrame, name: str
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Drop unlabelled rows, treat inf as missing, drop or impute missing features, coerce types."""
    numeric = [f.name for f in features if f.kind == NUMERIC]
    categorical = [f.name for f in features if f.kind == CATEGORICAL]
    out = pd.DataFrame(index=frame.index)
    for column in numeric:
        values = pd.to_numeric(frame[column], errors="coerce").astype("float64")
        out[column] = values.where(np.isfinite(values))
    for column in categorical:
        out[column] = frame[column].astype(object).where(frame[column].notna())
    out[label] = frame[label]
    unlabelled = out[label].isna()
    out = out[~unlabelled]
    incomplete = out[[f.name for f in features]].isna().any(axis=1)
    report = {"rows_read": len(frame), "dropped_unlabelled": int(unlabelled.sum()), "dropped_incomplete": 0,
              "imputed_values": 0}
    if missing == "drop":
        report["dropped_incomplete"] = int(incomplete.sum())
        out = out[~incomplete]
    else:
        report["imputed_values"] = int(out[[f.name for f in features]].isna().sum().sum())
        for column in numeric:
            fill = pd.to_numeric(reference[column], errors="coerce")
            fill = fill[np.isfinite(fill)].median() if np.isfinite(fill).any() else 0.0
            out[column] = out[column].fillna(fill)
        for column in categorical:
            mode = reference[column].dropna().astype(str).mode()
            out[column] = out[column].fillna(mode.iloc[0] if len(mode) else "missing")
    if out.empty:
        raise DataError(
            f"{name}: no rows left after dropping {report['dropped_unlabelled']} without a label and "
            f"{report['dropped_incomplete']} with missing or infinite values (data.missing: {missing})"
        )
    for column in categorical:
        out[column] = out[column].astype(str)
    return out.reset_index(drop=True), report


def check_class_counts(counts: pd.Series, name: str, need_two: bool) -> None:
    """Rows per class (a value_counts): two classes where training needs them, two rows of each."""
    if need_two and len(counts) < 2:
        raise DataError(f"{name}: only one class ({plain(counts.index[0])!r}); a classifier needs two or more")
    lone = counts[counts < 2]
    if len(lone):
        raise DataError(
            f"{name}: class {plain(lone.index[0])!r} has a single row; every class needs at least two "
            "(one to train on, one to test on)"
        )


def _is_numeric(column: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)


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


def make_splits(dataset: Dataset, test_fraction: float, rng: np.random.Generator) -> dict[str, pd.DataFrame]:
    """The four splits. Training rows come in random order, so that a stream reading them in
    windows (retrainlab.stream) gets well mixed batches even from files sorted by class."""
    splits = {}
    for part in ("initial", "incremental"):
        frame = getattr(dataset, part)
        train, test = stratified_split(frame[dataset.label].to_numpy(), test_fraction, rng)
        splits[f"{part}_train"] = frame.iloc[rng.permutation(train)].reset_index(drop=True)
        splits[f"{part}_test"] = frame.iloc[test].reset_index(drop=True)
    return splits


@dataclasses.dataclass
class Tally:
    """What the summary says about the splits, added up part by part."""

    rows: dict[str, int] = dataclasses.field(default_factory=lambda: dict.fromkeys(layout.SPLITS, 0))
    counts: dict[str, pd.Series] = dataclasses.field(default_factory=dict)
    cleaning: dict[str, dict[str, int]] = dataclasses.field(default_factory=dict)

    def add(self, dataset: Dataset, splits: dict[str, pd.DataFrame]) -> None:
        for name, frame in splits.items():
            self.rows[name] += len(frame)
            counts = frame[dataset.label].value_counts()
            self.counts[name] = counts if name not in self.counts else self.counts[name].add(counts, fill_value=0)
        for part, report in zip(("initial", "incremental"), dataset.cleaning.values()):
            total = self.cleaning.setdefault(part, dict.fromkeys(report, 0))
            for key, value in report.items():
                total[key] += value

    def check(self, names: tuple[str, str]) -> None:
        """The class checks on the whole data, and no empty split."""
        for part, name in zip(("initial", "incremental"), names):
            both = self.counts[f"{part}_train"].add(self.counts[f"{part}_test"], fill_value=0)
            check_class_counts(both.astype(int), name, need_two=part == "initial")
        for name, rows in self.rows.items():
            if not rows:
                raise DataError(f"split '{name}' is empty: give more rows or change data.test_fraction")

    def summary(self, label: str, features: tuple[Feature, ...], params: DataParams) -> dict[str, Any]:
        classes = {name: sorted(plain(v) for v in self.counts[name].index) for name in layout.SPLITS}
        old = set(classes["initial_train"])
        return {
            "source": params.source,
            "scenario": None if params.source == "files" else params.scenario,
            "label": label,
            "features": [dataclasses.asdict(f) for f in features],
            "rows": dict(self.rows),
            "classes": classes,
            "new_classes": [c for c in classes["incremental_train"] if c not in old],
            "cleaning": self.cleaning,
        }


def encode_labels(values, labels: list) -> np.ndarray:
    """Index of each value in `labels` (a model's output units); -1 for one not there."""
    values = np.asarray(values)
    if values.dtype.kind in "iuf" and all(isinstance(v, (int, float)) for v in labels):
        # Numeric labels: one vectorised lookup, for the millions of rows a stream encodes.
        return pd.Index(labels, dtype="float64").get_indexer(values.astype("float64")).astype(np.int64)
    index = {label: i for i, label in enumerate(labels)}
    return np.array([index.get(plain(v), -1) for v in values], dtype=np.int64)


def plain(value: Any) -> Any:
    """numpy scalars to Python ones, so labels compare equal to those read back from JSON."""
    return value.item() if hasattr(value, "item") else value


# --- the edge: read inputs, write outputs ---------------------------------------------


def prepare(data: DataParams, root: Path = Path(".")) -> dict[str, Any]:
    """Build the four splits and the summary and write them under data/prepared/.

    The data goes through part by part (the synthetic source in chunks, users' files
    whole), each part appended to the split files, so no more than one part is in memory.
    Nothing is written unless every part and the checks on the whole pass.
    """
    if data.source == "files":
        parts, names = iter([files_dataset(data, root)]), (data.files.initial, data.files.incremental)
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
        summary = tally.summary(label, features, data)
        writer.commit()
    for part, counts in summary["cleaning"].items():
        if counts["dropped_unlabelled"] or counts["dropped_incomplete"] or counts["imputed_values"]:
            print(
                f"prepare: {part} data: {counts['rows_read']} rows read, {counts['dropped_unlabelled']} dropped "
                f"without a label, {counts['dropped_incomplete']} dropped with missing or infinite values, "
                f"{counts['imputed_values']} values imputed"
            )
    write_text_atomically(root / layout.SUMMARY, json.dumps(summary, indent=2) + "\n")
    return summary


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
        import pyarrow as pa
        import pyarrow.parquet as pq

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


@dataclasses.dataclass(frozen=True)
class Prepared:
    """The prepare step's outputs: where each split is and what the summary says of it.

    Splits are read on demand: training and evaluation stream them (retrainlab.stream);
    `x`, `y` and `frame` read a whole split, for the small uses that need one.
    """

    root: Path
    label: str
    features: tuple[Feature, ...]
    summary: dict[str, Any]

    def path(self, split: str) -> Path:
        return self.root / layout.split_path(split)

    def rows(self, split: str) -> int:
        return self.summary["rows"][split]

    def classes(self, *splits: str) -> list:
        """The labels the splits hold, sorted, as the summary lists them."""
        return sorted({label for split in splits for label in self.summary["classes"][split]})

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.features]

    def frame(self, split: str) -> pd.DataFrame:
        return pd.read_parquet(self.path(split))

    def x(self, split: str) -> pd.DataFrame:
        return pd.read_parquet(self.path(split), columns=self.feature_names)

    def y(self, split: str) -> np.ndarray:
        return pd.read_parquet(self.path(split), columns=[self.label])[self.label].to_numpy()

    def sample(self, split: str, rows: int, seed: int = 0) -> pd.DataFrame:
        """At most `rows` rows of a split, drawn at random, decoding only the row groups
        that hold them."""
        import pyarrow.parquet as pq

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


def load_prepared(root: Path = Path(".")) -> Prepared:
    summary_path = root / layout.SUMMARY
    if not summary_path.is_file():
        raise PipelineError(f"{layout.SUMMARY}: not found; run the prepare step first (dvc repro prepare)")
    summary = json.loads(summary_path.read_text())
    missing = [s for s in layout.SPLITS if not (root / layout.split_path(s)).is_file()]
    if missing:
        raise PipelineError(f"{layout.split_path(missing[0])}: not found; run the prepare step (dvc repro prepare)")
    features = tuple(Feature(**f) for f in summary["features"])
    return Prepared(root, summary["label"], features, summary)
