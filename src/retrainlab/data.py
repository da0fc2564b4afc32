"""The `prepare` step: build the initial and incremental datasets and their test splits.

Pure functions make the pool, the scenario and the splits; `prepare` at the bottom is the
one place that reads the user's files and writes the Parquet outputs DVC versions.
"""

from __future__ import annotations

import csv
import dataclasses
import itertools
import json
import numbers
import os
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
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
# Training runs in float32: a larger value becomes inf there, and NaN losses after it.
FLOAT32_MAX = float(np.finfo(np.float32).max)


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
    # How the input was read, as summary.json states it: the label rule, each file's format.
    notes: dict[str, Any] = dataclasses.field(default_factory=dict)


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


def read_table(path: Path, shown: str, setting: str) -> tuple[pd.DataFrame, dict[str, str]]:
    """Read a CSV or Parquet file, and say how it was read (its format, a CSV's delimiter).

    `shown` is how errors name the file (the path as the user gave it), `setting` the
    parameter that names it.
    """
    if path.is_dir():  # before the suffix check, whose "unsupported type ''" would mislead
        raise DataError(f"{shown}: is a directory; set {setting} to a .csv or .parquet file")
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".parquet", ".pq"):
        raise DataError(f"{shown}: unsupported file type '{suffix}'; give a .csv or .parquet file")
    if not path.is_file():
        raise DataError(f"{shown}: file not found; set {setting}")
    if path.stat().st_size == 0:
        raise DataError(f"{shown}: the file is empty")
    try:
        frame, how = _read_csv(path, shown) if suffix == ".csv" else _read_parquet(path, shown)
    except DataError:
        raise
    except Exception as exc:  # pandas, pyarrow and csv raise many types for unreadable files
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(f"{shown}: cannot be read as {suffix[1:]} ({reason})") from None
    if frame.empty:
        raise DataError(f"{shown}: has a header but no data rows")
    return frame, how


# The delimiters a CSV may use; sniffing among them only, so that a comma file with some
# other character on every line is still read with commas.
DELIMITERS = ",;\t|"
SNIFFED_LINES = 20


def _read_csv(path: Path, shown: str) -> tuple[pd.DataFrame, dict[str, str]]:
    with path.open(newline="", encoding="utf-8-sig", errors="replace") as file:
        head = list(itertools.islice(file, SNIFFED_LINES))
    try:
        delimiter = csv.Sniffer().sniff("".join(head), delimiters=DELIMITERS).delimiter
    except csv.Error:  # nothing stands out, as in a one-column file
        delimiter = ","
    # The header as written: pandas would rename a second 'x0' to 'x0.1' without a word.
    _check_unique(next(csv.reader(head, delimiter=delimiter), []), shown)
    return pd.read_csv(path, sep=delimiter), {"format": "csv", "delimiter": delimiter}


def _read_parquet(path: Path, shown: str) -> tuple[pd.DataFrame, dict[str, str]]:
    import pyarrow.parquet as pq
    from pyarrow import types

    schema = pq.read_schema(path)
    _check_unique(schema.names, shown)
    nested = [field for field in schema if types.is_nested(field.type)]
    if nested:  # pandas would turn them into opaque objects, then into text
        raise DataError(
            f"{shown}: column '{nested[0].name}' holds nested values ({_arrow_type(nested[0].type)}); "
            "flatten it into plain columns"
        )
    return pd.read_parquet(path), {"format": "parquet"}


def _arrow_type(kind: Any) -> str:
    """An Arrow type as a user would write it: list<int64>, map<string, int64>, struct<a: int64>
    (Arrow's own names add the list's element name and the map's column name)."""
    from pyarrow import types

    if types.is_map(kind):
        return f"map<{_arrow_type(kind.key_type)}, {_arrow_type(kind.item_type)}>"
    if types.is_struct(kind):
        return "struct<" + ", ".join(f"{field.name}: {_arrow_type(field.type)}" for field in kind) + ">"
    if types.is_nested(kind) and hasattr(kind, "value_type"):  # list, large_list, fixed_size_list
        return f"{str(kind).split('<')[0]}<{_arrow_type(kind.value_type)}>"
    return str(kind)


def _check_unique(columns: list[str], shown: str) -> None:
    # Blank names are left to pandas, which names each 'Unnamed: <position>'.
    repeated = [(name, n) for name, n in Counter(c for c in columns if c.strip()).items() if n > 1]
    if repeated:
        name, n = repeated[0]
        raise DataError(f"{shown}: column '{name}' appears {n} times; give each column a unique name")


def files_dataset(params: DataParams, root: Path) -> Dataset:
    spec = params.files
    names = (spec.initial, spec.incremental)
    settings = ("data.files.initial", "data.files.incremental")
    read = [read_table((root / p).resolve(), p, setting) for p, setting in zip(names, settings)]
    dataset = tidy(*(frame for frame, _ in read), spec.label, spec.features or None, names, params.missing)
    files = {name: how for name, (_, how) in zip(names, read)}
    return dataclasses.replace(dataset, notes={**dataset.notes, "files": files})


# --- arrays (.npz): images, sequences, any shape -----------------------------------------

ARRAY_LABEL = "label"


def array_columns(shape: Sequence[int]) -> list[str]:
    """The columns an array of `shape` per row is flattened into, in row-major (C) order."""
    return [f"x_{i}" for i in range(int(np.prod(shape)))]


def read_arrays(path: Path, shown: str, setting: str) -> tuple[np.ndarray, np.ndarray]:
    """`x` (rows first, any shape after) and `y` of an .npz file, checked."""
    if path.is_dir():
        raise DataError(f"{shown}: is a directory; set {setting} to an .npz file")
    if path.suffix.lower() != ".npz":
        raise DataError(f"{shown}: unsupported file type '{path.suffix.lower()}'; give an .npz file with x and y")
    if not path.is_file():
        raise DataError(f"{shown}: file not found; set {setting}")
    try:
        with np.load(path, allow_pickle=False) as archive:  # no pickles: an .npz cannot run code
            missing = [key for key in ("x", "y") if key not in archive.files]
            if missing:
                raise DataError(f"{shown}: no array '{missing[0]}'; save the inputs as x and the labels as y "
                                "(numpy.savez(path, x=..., y=...))")
            x, y = archive["x"], archive["y"]
    except DataError:
        raise
    except Exception as exc:  # not a zip, object arrays (pickles refused), damaged members
        reason = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise DataError(f"{shown}: cannot be read as .npz ({reason})") from None
    if x.ndim < 2 or y.ndim != 1 or len(x) != len(y):
        raise DataError(f"{shown}: x has shape {x.shape} and y {y.shape}; give x one row per label "
                        "(rows first) and y one label per row")
    if not len(y):
        raise DataError(f"{shown}: has no rows")
    if x.dtype.kind not in "biuf":
        raise DataError(f"{shown}: x holds {x.dtype} values; give numbers")
    return x, y


def arrays_dataset(params: DataParams, root: Path) -> Dataset:
    """The `arrays` source: each row's array flattened into columns x_0.. (row-major), so that
    splitting, streaming and diagnostics are the tabular ones; the shape goes to summary.json,
    and a model that takes the array gets it back in that shape."""
    spec = params.arrays
    names = (spec.initial, spec.incremental)
    settings = ("data.arrays.initial", "data.arrays.incremental")
    (x_old, y_old), (x_new, y_new) = (read_arrays((root / p).resolve(), p, s) for p, s in zip(names, settings))
    if x_old.shape[1:] != x_new.shape[1:]:
        raise DataError(f"{names[1]}: rows have shape {x_new.shape[1:]} but {x_old.shape[1:]} in {names[0]}; "
                        "make the two files agree")
    shape = x_old.shape[1:]
    frames = []
    for x, y in ((x_old, y_old), (x_new, y_new)):
        frame = pd.DataFrame(x.reshape(len(x), -1).astype(np.float64, copy=False), columns=array_columns(shape))
        frame[ARRAY_LABEL] = y
        frames.append(frame)
    dataset = tidy(*frames, ARRAY_LABEL, None, names, params.missing)
    return dataclasses.replace(dataset, notes={**dataset.notes, "input_shape": list(shape)})


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
    values, and those too large for float32, are dropped or imputed as `missing` says, and
    every count is reported. The labels of both frames get one type (see `_one_label_type`).
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
    cleaned, notes = _one_label_type(cleaned, label)
    if check_classes:
        for name, frame in cleaned.items():
            check_class_counts(frame[label].value_counts(), name, need_two=name == names[0])
    return Dataset(*cleaned.values(), label, kinds, report, notes)


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
    """Drop unlabelled rows, treat inf and values too large for float32 as missing, drop or
    impute missing features, coerce types."""
    numeric = [f.name for f in features if f.kind == NUMERIC]
    categorical = [f.name for f in features if f.kind == CATEGORICAL]
    out = pd.DataFrame(index=frame.index)
    overflow = pd.Series(0, index=frame.index)
    for column in numeric:
        out[column], too_large = _trainable_numbers(frame[column])
        overflow += too_large
    for column in categorical:
        out[column] = frame[column].astype(object).where(frame[column].notna())
    out[label] = frame[label]
    unlabelled = out[label].isna()
    out = out[~unlabelled]
    incomplete = out[[f.name for f in features]].isna().any(axis=1)
    report = {"rows_read": len(frame), "dropped_unlabelled": int(unlabelled.sum()), "dropped_incomplete": 0,
              "imputed_values": 0, "overflow_values": int(overflow[~unlabelled].sum())}
    if missing == "drop":
        report["dropped_incomplete"] = int(incomplete.sum())
        out = out[~incomplete]
    else:
        report["imputed_values"] = int(out[[f.name for f in features]].isna().sum().sum())
        for column in numeric:
            usable = _trainable_numbers(reference[column])[0]
            out[column] = out[column].fillna(usable.median() if usable.notna().any() else 0.0)
        for column in categorical:
            mode = reference[column].dropna().astype(str).mode()
            out[column] = out[column].fillna(mode.iloc[0] if len(mode) else "missing")
    if out.empty:
        raise DataError(
            f"{name}: no rows left after dropping {report['dropped_unlabelled']} without a label and "
            f"{report['dropped_incomplete']} with missing, infinite or too large values (data.missing: {missing})"
        )
    for column in categorical:
        out[column] = out[column].astype(str)
    return out.reset_index(drop=True), report


def _trainable_numbers(column: pd.Series) -> tuple[pd.Series, pd.Series]:
    """The column as float64, missing where not a number float32 can hold; and where a value
    was finite but too large for float32 (to count them apart from inf and NaN)."""
    values = pd.to_numeric(column, errors="coerce").astype("float64")
    finite = np.isfinite(values)
    too_large = finite & (values.abs() > FLOAT32_MAX)
    return values.where(finite & ~too_large), too_large


def _one_label_type(frames: dict[str, pd.DataFrame], label: str) -> tuple[dict[str, pd.DataFrame], dict[str, str]]:
    """Both frames' labels as one type, so that a class is the same class in both and classes sort.

    Labels are compared as text when either frame has a text label (booleans count as text);
    numbers are then written in their plain form (1.0 becomes "1"). Otherwise they stay
    numbers: integers where every label is a whole number, floats where one is not.
    Returns the frames and what summary.json says of the rule.
    """
    kinds = {name: _label_kinds(frame[label]) for name, frame in frames.items()}
    text_in = [name for name, (_, has_text) in kinds.items() if has_text]
    if text_in:
        labels = {name: frame[label].map(_label_text) for name, frame in frames.items()}
        notes = {"label_type": "text"}
        if any(has_numbers for has_numbers, _ in kinds.values()):
            have = "has" if len(text_in) == 1 else "have"
            notes["label_conversion"] = f"numbers compared as text because {' and '.join(text_in)} {have} text labels"
    else:
        labels = {name: pd.to_numeric(frame[label]) for name, frame in frames.items()}
        dtype = "int64" if all(_whole(values) for values in labels.values()) else "float64"
        labels = {name: values.astype(dtype) for name, values in labels.items()}
        notes = {"label_type": "number"}
    return {name: frame.assign(**{label: labels[name]}) for name, frame in frames.items()}, notes


def _label_kinds(labels: pd.Series) -> tuple[bool, bool]:
    """Whether the labels hold numbers, and whether they hold text (anything else, booleans too)."""
    if _is_numeric(labels):
        return True, False
    is_number = labels.map(_is_number)
    return bool(is_number.any()), not is_number.all()


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def _whole(values: pd.Series) -> bool:
    """Whether every value is an integer int64 holds exactly (floats only up to 2**53)."""
    if pd.api.types.is_signed_integer_dtype(values):
        return True
    return bool(((values % 1 == 0) & (values.abs() <= 2**53)).all())


def _label_text(value: Any) -> str:
    # A whole number in its plain form, so 1.0 from one file matches "1" from the other.
    return str(int(value)) if _is_number(value) and float(value).is_integer() else str(value)


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
    notes: dict[str, Any] = dataclasses.field(default_factory=dict)

    def add(self, dataset: Dataset, splits: dict[str, pd.DataFrame]) -> None:
        for name, frame in splits.items():
            self.rows[name] += len(frame)
            counts = frame[dataset.label].value_counts()
            self.counts[name] = counts if name not in self.counts else self.counts[name].add(counts, fill_value=0)
        for part, report in zip(("initial", "incremental"), dataset.cleaning.values()):
            total = self.cleaning.setdefault(part, dict.fromkeys(report, 0))
            for key, value in report.items():
                total[key] += value
        self.notes.update(dataset.notes)

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
            "scenario": None if params.source in ("files", "arrays") else params.scenario,
            "label": label,
            "features": [dataclasses.asdict(f) for f in features],
            "rows": dict(self.rows),
            "classes": classes,
            "new_classes": [c for c in classes["incremental_train"] if c not in old],
            "cleaning": self.cleaning,
            **self.notes,
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
        summary = tally.summary(label, features, data)
        writer.commit()
    _log_conversions(summary)
    write_text_atomically(root / layout.SUMMARY, json.dumps(summary, indent=2) + "\n")
    return summary


def _log_conversions(summary: dict[str, Any]) -> None:
    """Say what was done to the input that a user would not expect: the summary has the details."""
    for name, how in summary.get("files", {}).items():
        if how.get("delimiter", ",") != ",":
            print(f"prepare: {name}: columns separated by {how['delimiter']!r}")
    if "label_conversion" in summary:
        print(f"prepare: labels: {summary['label_conversion']}")
    for part, counts in summary["cleaning"].items():
        if counts["dropped_unlabelled"] or counts["dropped_incomplete"] or counts["imputed_values"]:
            print(
                f"prepare: {part} data: {counts['rows_read']} rows read, {counts['dropped_unlabelled']} dropped "
                f"without a label, {counts['dropped_incomplete']} dropped with missing, infinite or too large "
                f"values, {counts['imputed_values']} values imputed, {counts['overflow_values']} values beyond "
                "float32's range counted as missing"
            )


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
