"""The data's schema and the rules both frames must meet to have it.

What a dataset is (`Feature`, `Dataset`, NUMERIC, CATEGORICAL and TEXT columns), and `tidy`, which
gives a pair of frames one schema: it checks them against each other, refuses a column that
looks like a row key (`_row_keys`), applies the missing-value policy (`_clean`), gives the
labels one type (`_one_label_type`) and checks the rows per class. `encode_labels` and
`plain` are the label rules the steps after `prepare` share: a label's index in a model's
outputs, and its plain Python value.
"""

from __future__ import annotations

import dataclasses
import numbers
from typing import Any

import numpy as np
import pandas as pd

from retrainlab.base.errors import DataError
from retrainlab.base.labels import plain
from retrainlab.base.tasks import REGRESSION
from retrainlab.data import task as tasks
from retrainlab.data import values as read_values
from retrainlab.data.text import DETECTION_RULE, looks_like_text
from retrainlab.data.values import CATEGORICAL, FLOAT32_MAX, NUMERIC, TEXT  # TEXT: sentences, tokens

__all__ = ["CATEGORICAL", "FLOAT32_MAX", "NUMERIC", "TEXT", "Dataset", "Feature", "tidy", "check_class_counts",
           "encode_labels", "plain"]


@dataclasses.dataclass(frozen=True)
class Feature:
    name: str
    kind: str  # NUMERIC, CATEGORICAL or TEXT


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


def tidy(
    initial: pd.DataFrame,
    incremental: pd.DataFrame,
    label: str,
    features: list[str] | None,
    names: tuple[str, str],
    missing: str = "drop",
    check_classes: bool = True,
    text: list[str] | None = None,
    task: str = tasks.AUTO,
    categorical: list[str] | None = None,
) -> Dataset:
    """Check both frames against each other, apply the missing-value policy, give them one schema.

    Numeric columns become float64; anything else becomes str, and is text (sentences) or
    categorical: `text` lists the text columns, or, None, `looks_like_text` decides;
    `categorical` lists columns that are categorical whatever they hold (ids, zip codes).
    A categorical column whose every value in `initial` is its own is refused as a row key,
    unless `features` lists it (then summary.json's `categories` says it was flagged). Rows
    without a label are dropped (a label cannot be imputed); missing or infinite feature
    values, those too large for float32, and empty texts are dropped or imputed as `missing`
    says, and every count is reported. The labels of both frames get one type (see
    `_one_label_type`), and the task is decided (`task`: data.task, retrainlab.data.task):
    a regression label becomes float64, each value finite. `check_classes=False` leaves the
    class (or a regression label's spread) checks to the caller (for one part of a dataset).
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
    for column in text or []:
        if column not in feature_names:
            raise DataError(f"parameter 'data.files.text' lists '{column}', which is not a feature column; "
                            "list text columns among the features")
    categorical = categorical or []
    _check_listed_categorical(categorical, feature_names, label, initial, names[0])
    _check_not_empty(initial[feature_names], names[0])
    kinds = tuple(_kind(c, initial[c], incremental[c], names, c in categorical) for c in feature_names)
    kinds, why = _text_kinds(kinds, initial, text, names[0], categorical)
    flagged = _row_keys(kinds, initial, features or [], names[0])
    cleaned, report, merged = {}, {}, {}
    for name, frame in frames.items():
        frame_labels, changed = read_values.labels(frame[label])
        merged.update(changed)
        cleaned[name], report[name] = _clean(frame.assign(**{label: frame_labels}), kinds, label, missing,
                                             reference=initial, name=name)
    cleaned, notes = _one_label_type(cleaned, label)
    if merged:
        notes["label_cleaning"] = read_values.merged_note(merged)
    if why:
        notes["feature_kinds"] = {"rule": DETECTION_RULE, "columns": why}
    if any(f.kind == CATEGORICAL for f in kinds):
        notes["categories"] = _categories_note(kinds, cleaned, names, flagged)
    labels = {name: frame[label] for name, frame in cleaned.items()}
    notes["task"], notes["task_rule"] = tasks.decide(task, labels, label, notes["label_type"])
    if notes["task"] == REGRESSION:
        numbers = tasks.check_numbers(labels, label)
        cleaned = {name: frame.assign(**{label: numbers[name]}) for name, frame in cleaned.items()}
        notes["label_type"] = "number"  # integers beyond int64 too: no longer compared as text
        notes.pop("label_conversion", None)
    if check_classes:
        for name, frame in cleaned.items():
            if notes["task"] == REGRESSION:
                values = frame[label].to_numpy()
                tasks.check_spread(name, label, len(values), float(np.var(values)), float(values[0]))
                tasks.check_scale(name, label, values)
            else:
                check_class_counts(frame[label].value_counts(), name, need_two=name == names[0], label=label)
    cleaned = {name: frame.reset_index(drop=True) for name, frame in cleaned.items()}
    return Dataset(*cleaned.values(), label, kinds, report, notes)


def _check_not_empty(columns: pd.DataFrame, name: str) -> None:
    """A feature column with no value in the old data is refused, naming it: nothing can be
    learnt from it, and every row would be dropped as incomplete. (One empty in the new data
    only is named by `_clean`, whose rows it empties.)"""
    empty = columns.isna().all()
    for column in columns.columns:
        values = columns[column]
        if not empty[column] and read_values.holds_text(values):
            empty[column] = bool((values.isna() | values.map(lambda v: isinstance(v, str) and not v.strip())).all())
        if len(values) and empty[column]:
            raise DataError(f"{name}: column {column!r} is empty in every row; fill it, or list the other columns "
                            "in data.files.features")


def _check_listed_categorical(listed: list[str], feature_names: list[str], label: str, initial: pd.DataFrame,
                              name: str) -> None:
    for column in listed:
        if column == label:
            raise DataError(f"parameter 'data.files.categorical' lists the label column '{label}'")
        if column not in initial.columns:
            raise DataError(f"{name}: no column '{column}', which data.files.categorical lists; name columns "
                            "of the file")
        if column not in feature_names:
            raise DataError(f"parameter 'data.files.categorical' lists '{column}', which is not a feature column; "
                            "list categorical columns among the features")


def _kind(column: str, old: pd.Series, new: pd.Series, names: tuple[str, str], listed: bool = False) -> Feature:
    if listed:  # data.files.categorical: numbers or text, read as categories
        return Feature(column, CATEGORICAL)
    kinds = [NUMERIC if read_values.is_numeric(s) else CATEGORICAL for s in (old, new)]
    if kinds[0] != kinds[1] and not (old.isna().all() or new.isna().all()):
        text = {NUMERIC: "numeric", CATEGORICAL: "text"}
        raise DataError(
            f"{names[1]}: column '{column}' is {text[kinds[1]]} but {text[kinds[0]]} in {names[0]}; "
            "make the two files agree"
        )
    return Feature(column, kinds[0])


def _text_kinds(kinds: tuple[Feature, ...], initial: pd.DataFrame, text: list[str] | None,
                name: str, categorical: list[str]) -> tuple[tuple[Feature, ...], dict[str, str]]:
    """The non-numeric columns as text or categorical, as `text` lists them or, None, as
    `looks_like_text` finds them (those `categorical` lists stay categorical); and why each
    got its kind, in words."""
    out, why = [], {}
    for feature in kinds:
        if feature.name in categorical:
            out.append(feature)
            why[feature.name] = f"{CATEGORICAL}: listed in data.files.categorical"
            continue
        if feature.kind == NUMERIC:
            if text and feature.name in text:
                raise DataError(f"{name}: column '{feature.name}' is listed in data.files.text but holds numbers; "
                                "take it out of data.files.text")
            out.append(feature)
            continue
        if text is not None:
            is_text = feature.name in text
            reason = "listed in data.files.text" if is_text else "not listed in data.files.text"
        else:
            is_text, reason = looks_like_text(initial[feature.name])
        out.append(Feature(feature.name, TEXT if is_text else CATEGORICAL))
        why[feature.name] = f"{out[-1].kind}: {reason}"
    return tuple(out), why


# A categorical column is a row key when every one of at least this many rows of the old data
# holds its own value: fewer, and a small table's codes could all differ by chance.
ROW_KEY_ROWS = 50


def _row_keys(kinds: tuple[Feature, ...], initial: pd.DataFrame, listed: list[str], name: str) -> dict[str, str]:
    """Refuse a categorical column whose every value in the old data is its own (an order id,
    a row number): each value is one row's, so no value of a new row was learnt. One that
    data.files.features lists is kept, and what was found is returned, to be noted."""
    flagged = {}
    for feature in kinds:
        if feature.kind != CATEGORICAL:
            continue
        values = read_values.categories(initial[feature.name]).dropna()
        # A repeat among the first rows settles most columns without hashing every value.
        if len(values) < ROW_KEY_ROWS or not values.head(10_000).is_unique or not values.is_unique:
            continue
        rows = f"{len(values):,} rows" + (" with a value" if len(values) < len(initial) else "")
        said = (f"looks like a row key: each of its {rows} has its own value, so a model learns nothing it can use "
                "on new rows")
        if feature.name not in listed:
            raise DataError(f"{name}: column '{feature.name}' {said}; leave it out with data.files.features (the "
                            "columns to use: a column listed there is kept)")
        flagged[feature.name] = f"{said}; kept because data.files.features lists it"
    return flagged


def _categories_note(kinds: tuple[Feature, ...], cleaned: dict[str, pd.DataFrame], names: tuple[str, str],
                     flagged: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Per categorical column, its distinct values in the old and the new data once cleaned,
    and why it was flagged, if it was."""
    parts = dict(zip(("initial", "incremental"), names))
    out = {}
    for feature in kinds:
        if feature.kind == CATEGORICAL:
            out[feature.name] = {"distinct": {part: int(cleaned[name][feature.name].nunique())
                                              for part, name in parts.items()}}
            if feature.name in flagged:
                out[feature.name]["flagged"] = flagged[feature.name]
    return out


def _clean(
    frame: pd.DataFrame, features: tuple[Feature, ...], label: str, missing: str, reference: pd.DataFrame, name: str
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Drop unlabelled rows, treat inf and values too large for float32 as missing, drop or
    impute missing features, coerce types. Column blocks at a time, not column by column:
    an image of a few thousand pixels is a few thousand columns."""
    numeric = [f.name for f in features if f.kind == NUMERIC]
    categorical = [f.name for f in features if f.kind == CATEGORICAL]
    text = [f.name for f in features if f.kind == TEXT]
    typed, too_large = read_values.features(frame, features)
    out = pd.concat([typed, frame[[label]]], axis=1)
    unlabelled = out[label].isna().to_numpy()
    out = out[~unlabelled]
    feature_names = [f.name for f in features]
    incomplete = out[feature_names].isna().any(axis=1)
    report = {"rows_read": len(frame), "dropped_unlabelled": int(unlabelled.sum()), "dropped_incomplete": 0,
              "imputed_values": 0, "overflow_values": int(too_large[~unlabelled].sum())}
    if missing == "drop":
        report["dropped_incomplete"] = int(incomplete.sum())
        out = out[~incomplete]
    else:
        report["imputed_values"] = int(out[feature_names].isna().sum().sum())
        usable = pd.DataFrame(read_values.numbers(reference[numeric])[0], columns=numeric)
        out[numeric] = out[numeric].fillna(usable.median().fillna(0.0))
        modes = {c: read_values.categories(reference[c]).dropna().mode() for c in categorical}
        out[categorical] = out[categorical].fillna({c: m.iloc[0] if len(m) else "missing" for c, m in modes.items()})
        out[text] = out[text].fillna("")  # an empty text: no tokens
    if out.empty:
        labelled = ~unlabelled
        why = read_values.unusable(frame[feature_names][labelled], typed[labelled])
        raise DataError(
            f"{name}: no rows left after dropping {report['dropped_unlabelled']} without a label and "
            f"{report['dropped_incomplete']} with missing, infinite or too large values (data.missing: {missing})"
            + (f": {'; '.join(why[:3])}" if why else "")
        )
    out[categorical + text] = out[categorical + text].astype(str)
    return out, report  # indexed by the row read: the label checks name it


def _one_label_type(frames: dict[str, pd.DataFrame], label: str) -> tuple[dict[str, pd.DataFrame], dict[str, str]]:
    """Both frames' labels as one type, so that a class is the same class in both and classes sort.

    Labels are compared as text when either frame has a text label (booleans count as text),
    or an integer int64 cannot hold; numbers are then written in their plain form (1.0
    becomes "1", and an integer as every one of its digits). Otherwise they stay numbers:
    int64 where every label is a whole number it holds exactly, floats where one is not.
    No two labels become one. Returns the frames and what summary.json says of the rule.
    """
    kinds = {name: _label_kinds(frame[label]) for name, frame in frames.items()}
    text_in = [name for name, (_, has_text) in kinds.items() if has_text]
    numbers = {} if text_in else {name: pd.to_numeric(frame[label]) for name, frame in frames.items()}
    too_large = [name for name, values in numbers.items() if not _fits_int64(values)]
    if text_in or too_large:
        labels = {name: frame[label].map(read_values.label_text) for name, frame in frames.items()}
        notes = {"label_type": "text"}
        if too_large:
            have = "has" if len(too_large) == 1 else "have"
            notes["label_conversion"] = (f"integers compared as text because {' and '.join(too_large)} {have} "
                                         "integer labels beyond int64's range")
        elif any(has_numbers for has_numbers, _ in kinds.values()):
            have = "has" if len(text_in) == 1 else "have"
            notes["label_conversion"] = f"numbers compared as text because {' and '.join(text_in)} {have} text labels"
    else:
        dtype = "int64" if all(_whole(values) for values in numbers.values()) else "float64"
        labels = {name: values.astype(dtype) for name, values in numbers.items()}
        notes = {"label_type": "number"}
    return {name: frame.assign(**{label: labels[name]}) for name, frame in frames.items()}, notes


def _label_kinds(labels: pd.Series) -> tuple[bool, bool]:
    """Whether the labels hold numbers, and whether they hold text (anything else, booleans too)."""
    if read_values.is_numeric(labels):
        return True, False
    is_number = labels.map(read_values.is_number)
    return bool(is_number.any()), not is_number.all()


INT64 = np.iinfo(np.int64)


def _fits_int64(values: pd.Series) -> bool:
    """Whether integer labels fit int64 (uint64's top half, or Python integers read into an
    object column, do not): floats are floats, whatever their size."""
    if pd.api.types.is_integer_dtype(values):
        return values.empty or (INT64.min <= int(values.min()) and int(values.max()) <= INT64.max)
    if values.dtype == object:
        return all(INT64.min <= v <= INT64.max for v in values if isinstance(v, numbers.Integral))
    return True


def _whole(values: pd.Series) -> bool:
    """Whether every value is an integer int64 holds exactly (floats only up to 2**53)."""
    if pd.api.types.is_integer_dtype(values):
        return True
    return bool(((values % 1 == 0) & (values.abs() <= 2**53)).all())


def check_class_counts(counts: pd.Series, name: str, need_two: bool, label: str | None = None) -> None:
    """Rows per class (a value_counts): two classes where training needs them, two rows of each.
    Numbers the auto rule reads as a quantity (retrainlab.data.task) are said to be one."""
    if need_two and len(counts) < 2:
        raise DataError(f"{name}: only one class ({plain(counts.index[0])!r}); a classifier needs two or more")
    lone = counts[counts < 2]
    if len(lone) and tasks.looks_like_a_quantity(counts.index):
        column = f"label '{label}'" if label else "label"
        raise DataError(
            f"{name}: the {column} is read as classes (data.task: classification) and class "
            f"{plain(lone.index[0])!r} has a single row, but its {len(counts)} distinct values look like a number "
            "to predict: set data.task: regression (or auto)"
        )
    if len(lone):
        raise DataError(
            f"{name}: class {plain(lone.index[0])!r} has a single row; every class needs at least two "
            "(one to train on, one to test on)"
        )


def encode_labels(values, labels: list) -> np.ndarray:
    """Index of each value in `labels` (a model's output units); -1 for one not there."""
    values = np.asarray(values)
    integers = values.dtype.kind in "iu" and all(isinstance(v, int) and not isinstance(v, bool) for v in labels)
    if integers and (values.dtype.kind == "i" or not len(values) or values.max() <= INT64.max):
        # Integer labels: one vectorised lookup, exact (through float64 two labels beyond
        # 2**53 apart by one would be one label).
        return pd.Index(labels, dtype="int64").get_indexer(values.astype("int64")).astype(np.int64)
    if values.dtype.kind in "iuf" and all(isinstance(v, (int, float)) for v in labels):
        # Numeric labels: one vectorised lookup, for the millions of rows a stream encodes.
        return pd.Index(labels, dtype="float64").get_indexer(values.astype("float64")).astype(np.int64)
    index = {label: i for i, label in enumerate(labels)}
    return np.array([index.get(plain(v), -1) for v in values], dtype=np.int64)
