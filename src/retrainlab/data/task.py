"""Which task the data asks for, decided once at prepare and stated in summary.json.

`data.task` says it, or, `auto`, `AUTO_RULE` decides from the label: text and booleans are
classes; numbers are a quantity to predict (regression) when one of them is a fraction or
there are more than MAX_CLASS_INTEGERS distinct whole numbers, classes otherwise. A
regression label must be a finite number float32 holds, in every row. Pure functions of
the labels they are given; a label's index is its row in the file (1 is the first data row).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from retrainlab.base.errors import DataError
from retrainlab.base.tasks import CLASSIFICATION, REGRESSION
from retrainlab.data.values import FLOAT32_MAX  # training runs in float32: a larger label becomes inf there

AUTO = "auto"
MAX_CLASS_INTEGERS = 20
AUTO_RULE = (f"regression when the label holds numbers and one is a fraction or more than {MAX_CLASS_INTEGERS} "
             f"distinct whole numbers; classification when it holds text, booleans, or {MAX_CLASS_INTEGERS} or "
             "fewer whole numbers")
BOOLEANS = ("True", "False")  # booleans as the labels' one type (text) writes them


def decide(setting: str, labels: dict[str, pd.Series], label: str, label_type: str) -> tuple[str, str]:
    """The task and why, in words. `labels` are both parts' labels by the name errors give
    them, of one type already (`label_type` "number" or "text", retrainlab.data.schema)."""
    if setting == REGRESSION:
        if label_type == "text":
            found = _first_text(labels)
            if found is not None:  # else numbers compared as text (integers beyond int64): numbers still
                name, row, value = found
                what = "a boolean" if value in BOOLEANS else "text"
                raise DataError(f"{name}: label '{label}' holds {value!r} (row {row}), {what}, not a number; "
                                "data.task: regression needs a number in every row: fix the value, or set "
                                "data.task: classification")
        return REGRESSION, "data.task: regression"
    if setting == CLASSIFICATION:
        return CLASSIFICATION, "data.task: classification"
    if label_type == "text":
        return CLASSIFICATION, "auto: the label holds text (or booleans)"
    values = pd.concat(list(labels.values()))
    if not pd.api.types.is_integer_dtype(values):
        return REGRESSION, "auto: the label holds fractions"
    distinct = values.nunique()
    if distinct > MAX_CLASS_INTEGERS:
        return REGRESSION, f"auto: the label holds {distinct} distinct whole numbers, more than {MAX_CLASS_INTEGERS}"
    return CLASSIFICATION, (f"auto: the label holds {distinct} distinct whole numbers, {MAX_CLASS_INTEGERS} or fewer "
                            "(set data.task: regression to predict it as a number)")


def looks_like_a_quantity(values: pd.Index | pd.Series) -> bool:
    """Whether labels read as classes would be a number to predict by the auto rule: numbers
    (not booleans), one a fraction or more than MAX_CLASS_INTEGERS distinct."""
    if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        return False
    numbers = pd.Series(values).to_numpy(dtype=np.float64)
    return bool(len(np.unique(numbers)) > MAX_CLASS_INTEGERS or (numbers % 1 != 0).any())


def check_numbers(labels: dict[str, pd.Series], label: str) -> dict[str, pd.Series]:
    """A regression label as float64, every value finite and within float32's range; the
    first that is not is one line naming the file, the column and the row."""
    out = {}
    for name, values in labels.items():
        numbers = pd.to_numeric(values, errors="coerce").astype(np.float64)
        array = numbers.to_numpy()
        bad = ~np.isfinite(array) | (np.abs(array) > FLOAT32_MAX)
        if bad.any():
            at = int(np.flatnonzero(bad)[0])
            value, row = array[at], _row(values, at)
            why = "is not finite" if not np.isfinite(value) else "is beyond float32's range (3.4e38)"
            raise DataError(f"{name}: label '{label}' is {value:g} in row {row}, which {why}; a regression label "
                            "must be a finite number float32 holds: fix or drop that row")
        out[name] = numbers
    return out


def check_spread(name: str, label: str, rows: int, spread: float, value: float) -> None:
    """A regression label that does not vary (its sum of squared deviations `spread` is 0)
    has nothing to learn and no R²."""
    if rows and spread <= 0:
        raise DataError(f"{name}: label '{label}' is {value:g} in every row: nothing to predict, and R² is undefined "
                        "on it; give rows whose labels vary")


# A regressor's loss is the squared error in the label's units, in float32 (the model scales
# its output to them): an error beyond sqrt(3.4e38), 1.8e19, overflows. Deviations from the
# mean up to this leave room for a first epoch's errors.
MAX_DEVIATION = 1e18


def check_scale(name: str, label: str, values: np.ndarray) -> None:
    """A regression label whose values lie so far from their mean that a squared error in its
    units overflows float32 is refused, saying why: training would fail with a loss that is
    not finite, which no learning rate fixes."""
    if not len(values):
        return
    deviation = float(np.max(np.abs(values - values.mean())))
    if deviation > MAX_DEVIATION:
        factor = 10 ** math.ceil(math.log10(deviation / MAX_DEVIATION * 1e6))
        raise DataError(f"{name}: label '{label}' lies up to {deviation:.3g} from its mean; a squared error that "
                        f"large overflows float32, in which training computes the loss: divide the label by "
                        f"{factor:.0e} (or another power of ten) and read predictions in those units")


def _row(values: pd.Series, at: int) -> int:
    """The file's row (1: the first data row) of the value at position `at`: the index the
    frame was read with, where it is a row number."""
    index = values.index[at]
    return int(index) + 1 if isinstance(index, (int, np.integer)) else at + 1


def _first_text(labels: dict[str, pd.Series]) -> tuple[str, int, object] | None:
    """The first label that is no number: the part's name, its row and the value."""
    for name, values in labels.items():
        numbers = pd.to_numeric(values, errors="coerce")
        text = np.flatnonzero(numbers.isna().to_numpy() & values.notna().to_numpy())
        if len(text):
            return name, _row(values, int(text[0])), values.iloc[int(text[0])]
    return None
