"""Where a value read from a file becomes a number, a label, a category or a text: one rule
for prepare, check, next-round and the served model, so that no two of them read one value
two ways, nor one scores a row another drops.

- A number is usable when it is finite and float32 (training's type) holds it; any other
  is missing (`numbers`). A CSV's numbers written with a decimal comma ("1,5") are read as
  numbers, and said to be (`decimal_commas`); a comma that may be a thousands separator is
  refused.
- A label is text without its surrounding spaces; a blank one is missing; a whole number
  written with decimals ("1.0") is that number ("1") when labels are compared as text
  (`labels`, `label_text`).
- A category is text as written in the file; a number in a categorical column (one
  `data.files.categorical` lists, read from Parquet or a user's frame) is its plain form,
  101.0 as "101" (`categories`). A category or a text is missing when empty or blank, as
  when NaN, None or null: never the category "nan".
- A row is usable when every feature value is (`features`); `unusable` says, per column,
  what made rows unusable, naming a value.
"""

from __future__ import annotations

import numbers as _numbers
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from retrainlab.base.errors import DataError

# Training runs in float32: a larger value becomes inf there, and NaN losses after it.
FLOAT32_MAX = float(np.finfo(np.float32).max)
NUMERIC, CATEGORICAL, TEXT = "numeric", "categorical", "text"

_WHOLE_WITH_DECIMALS = re.compile(r"^([+-]?\d+)\.0*$")
_DECIMAL_COMMA = re.compile(r"^[+-]?\d*,\d+$")
_INTEGER = re.compile(r"^[+-]?\d+$")
_THOUSANDS = re.compile(r"^[+-]?[1-9]\d{0,2}(,\d{3})+$")


# --- numbers ---------------------------------------------------------------------------------


def numbers(columns: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """The columns as one float64 array, NaN where a value is not a number float32 can hold;
    and where a value was finite but too large for float32 (to count them apart from inf and NaN)."""
    if all(is_numeric(columns[c]) for c in columns.columns):
        values = columns.to_numpy(dtype=np.float64, copy=True, na_value=np.nan)
    else:  # some column holds numbers as text, or is all missing
        values = columns.apply(lambda c: pd.to_numeric(c, errors="coerce")).to_numpy(dtype=np.float64,
                                                                                      na_value=np.nan)
    finite = np.isfinite(values)
    too_large = finite & (np.abs(values) > FLOAT32_MAX)
    values[~finite | too_large] = np.nan
    return values, too_large


def holds_text(column: pd.Series) -> bool:
    """Whether a column may hold text: object or string dtype (pandas reads text as either)."""
    return pd.api.types.is_object_dtype(column) or pd.api.types.is_string_dtype(column)


def is_numeric(column: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)


def decimal_commas(frame: pd.DataFrame, shown: str, as_written: Sequence[str] = ()) -> tuple[pd.DataFrame, list[str]]:
    """A CSV's columns of numbers written with a decimal comma ("1,5", "-0,25"), as numbers;
    and which columns they were. A column whose every comma could be a thousands separator
    ("1,234") is ambiguous and refused, naming it. The `as_written` columns (categories,
    data.files.categorical) are left as they are."""
    converted = {}
    for name in frame.columns:
        column = frame[name]
        if not holds_text(column) or name in as_written:
            continue
        present = column[column.notna()].astype(str).str.strip()
        if present.empty or not present.str.contains(",", regex=False).any():
            continue
        if not present.map(lambda v: bool(_DECIMAL_COMMA.match(v) or _INTEGER.match(v) or _THOUSANDS.match(v))).all():
            continue
        with_comma = present[present.str.contains(",", regex=False)]
        if with_comma.map(lambda v: bool(_THOUSANDS.match(v))).all():
            raise DataError(f"{shown}: column {name!r} holds {with_comma.iloc[0]!r}: a decimal comma or a thousands "
                            "separator? write numbers with a decimal point and no thousands separator")
        converted[name] = pd.to_numeric(column.astype(str).str.strip().str.replace(",", ".", regex=False)
                                        .where(column.notna()), errors="coerce")
    if not converted:
        return frame, []
    return frame.assign(**converted), list(converted)


# --- labels ----------------------------------------------------------------------------------


def labels(values: pd.Series) -> tuple[pd.Series, dict[str, str]]:
    """Labels as read, less the spaces around a text label (a blank one is missing); and each
    text that changed, as it became, for the summary to say."""
    if not holds_text(values):
        return values, {}
    texts = values.map(lambda v: v.strip() or None if isinstance(v, str) else v)
    changed = {v: t for v, t in zip(values, texts) if isinstance(v, str) and isinstance(t, str) and v != t}
    return texts, changed


def merged_note(changed: dict[str, str]) -> str | None:
    """What `labels` did, in words, for summary.json and the log."""
    if not changed:
        return None
    shown = ", ".join(f"{raw!r} as {clean!r}" for raw, clean in sorted(changed.items())[:5])
    more = f" and {len(changed) - 5} more" if len(changed) > 5 else ""
    label_s = "label differs" if len(changed) == 1 else "labels differ"
    return f"{len(changed)} {label_s} from others only by surrounding spaces: merged ({shown}{more})"


def label_text(value: Any) -> str:
    """A label as text, as labels compared as text are: a whole number in its plain form, so
    1.0 from one file and "1" or "1.0" from the other are one class; an integer with every
    digit (through float it would lose those beyond 2**53); text without surrounding spaces."""
    if isinstance(value, _numbers.Integral) and not isinstance(value, (bool, np.bool_)):
        return str(int(value))
    if is_number(value):
        return str(int(value)) if float(value).is_integer() else str(value)
    text = str(value).strip()
    whole = _WHOLE_WITH_DECIMALS.match(text)
    return str(int(whole.group(1))) if whole else text


def is_number(value: Any) -> bool:
    return isinstance(value, _numbers.Real) and not isinstance(value, (bool, np.bool_))


# --- feature values and usable rows ----------------------------------------------------------


def features(frame: pd.DataFrame, kinds: Sequence[Any]) -> tuple[pd.DataFrame, np.ndarray]:
    """The feature columns `kinds` names (each with `.name` and `.kind`), typed as training
    reads them, NaN where a value is unusable: numbers as float64 (`numbers`), categories as
    text (`categories`), texts (missing when empty or blank). And how many values of
    each row were finite but too large for float32."""
    numeric = [f.name for f in kinds if f.kind == NUMERIC]
    categorical = [f.name for f in kinds if f.kind == CATEGORICAL]
    text = [f.name for f in kinds if f.kind == TEXT]
    values, too_large = numbers(frame[numeric])
    texts = frame[text].astype(object).where(frame[text].notna())
    texts = texts.where(texts.apply(lambda c: c.astype(str).str.strip() != ""))
    categorised = pd.DataFrame({name: categories(frame[name]) for name in categorical}, index=frame.index)
    typed = pd.concat([pd.DataFrame(values, columns=numeric, index=frame.index), categorised,
                       texts.astype(object)], axis=1)
    return typed[[f.name for f in kinds]], too_large.sum(axis=1)


def categories(column: pd.Series) -> pd.Series:
    """A categorical column's values as training reads them, as text: text as written, a
    number in its plain form (an integer with every digit, 101.0 as "101", 2.5 as "2.5"), a
    boolean as "True" or "False"; NaN where missing: NaN, None, null, an empty or blank
    text, or a number that is not finite (never the text "nan")."""
    if is_numeric(column):
        present = column.notna().to_numpy()
        texts = pd.Series(None, index=column.index, dtype=object)
        texts[present] = _number_texts(column[present]).to_numpy()
    elif isinstance(column.dtype, pd.StringDtype) or pd.api.types.infer_dtype(column, skipna=True) == "string":
        texts = column  # text as read from a CSV: vectorised below, no value by value
    else:
        texts = column.astype(object).map(_category_text)
    texts = texts.astype(str)
    return texts.where(texts.str.strip().ne(""))


def _number_texts(values: pd.Series) -> pd.Series:
    """Numbers of one numeric column, present ones, as `_float_text` writes them (integers as
    their digits): the whole numbers int64 holds at once, the rest one by one."""
    if pd.api.types.is_integer_dtype(values):
        return values.astype(str).astype(object)
    floats = values.to_numpy(dtype=np.float64)
    whole = np.isfinite(floats) & (np.abs(floats) < 2.0**63) & (np.floor(floats) == floats)
    out = np.empty(len(floats), dtype=object)
    out[whole] = floats[whole].astype(np.int64).astype(str)
    out[~whole] = [_float_text(f) for f in values.to_numpy()[~whole]]  # float32's 0.1 as "0.1"
    return pd.Series(out, index=values.index, dtype=object)


def _float_text(number: float | np.floating) -> str | None:
    """A float as a category: a whole number as its digits ("101", not "101.0"), any other as
    its type writes it (the shortest text that reads back as it); None when not finite."""
    if not np.isfinite(number):
        return None
    return str(int(number)) if number.is_integer() else str(number)


def _category_text(value: Any) -> str | None:
    """One value of a column of mixed types as `categories` reads it (None where missing)."""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, _numbers.Integral):
        return str(int(value))
    if is_number(value):
        return _float_text(value if isinstance(value, np.floating) else float(value))
    return None if value is None or value is pd.NA or value is pd.NaT else str(value)


def unusable(raw: pd.DataFrame, typed: pd.DataFrame) -> list[str]:
    """Per column with unusable values (NaN in `typed`, as `features` gives it), in words:
    how many rows and the first such value as read, with why ("column 'x0' holds 1e+39 in
    40 rows (beyond float32's range, 3.4e38)")."""
    out = []
    for name in typed.columns:
        bad = typed[name].isna().to_numpy()
        if not bad.any():
            continue
        first = raw[name].iloc[int(np.flatnonzero(bad)[0])]
        rows = f"{int(bad.sum())} row{'s' if bad.sum() != 1 else ''}"
        out.append(f"column {name!r} {_why(first, is_numeric(typed[name]))} in {rows}")
    return out


def _why(value: Any, numeric: bool) -> str:
    if isinstance(value, (float, np.floating)) and np.isnan(value):
        return "is empty or NaN" if numeric else "is empty"  # pandas reads an empty cell and a null as NaN
    if value is None or (isinstance(value, str) and not value.strip()):
        return "is empty"
    number = pd.to_numeric(pd.Series([value]), errors="coerce").iloc[0]
    if pd.isna(number) and not (isinstance(value, str) and value.strip().lower() == "nan"):
        return f"holds {_shown(value)} (not a number)"
    if not np.isfinite(number):
        return f"holds {_shown(value)} (not finite)"
    return f"holds {float(number):g} (beyond float32's range, {FLOAT32_MAX:.1e})"


def _shown(value: Any) -> str:
    """A value as a message quotes it: a number as numbers print, text quoted and cut short."""
    if is_number(value):
        return f"{float(value):g}"
    text = " ".join(str(value).split())
    return repr(text[:40] + ("..." if len(text) > 40 else ""))
