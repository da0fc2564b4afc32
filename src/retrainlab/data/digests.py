"""Each row's digest: which rows of one set are rows of another, whatever file they came from.

A row's digest is a 64-bit hash of its feature values typed as the prepared data types
them (numbers as float64, anything else as text), so that a row read back from the user's
CSV, from a Parquet file or from a prepared split has the same digest. The label is not
part of it: what a model has seen is its inputs. Rows that are equal in every feature are
one row here, as they are to the model.

Rows given as new of which most are known already are the wrong rows (a file given again,
under any name), not new rows with a few repeats: `mostly_known` is that rule, one for
every step that looks rows up (the check, the next round).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from retrainlab.data.schema import CATEGORICAL, NUMERIC, Feature
from retrainlab.data.values import categories
from retrainlab.data.stream import pieces


def row_digests(frame: pd.DataFrame, features: Sequence[Feature]) -> np.ndarray:
    """Each row's digest (uint64), from the `features` columns of `frame`."""
    typed = pd.DataFrame(
        {f.name: (pd.to_numeric(frame[f.name], errors="coerce").astype("float64") if f.kind == NUMERIC
                  else categories(frame[f.name]) if f.kind == CATEGORICAL  # 101.0 and "101" one value, as prepare reads them
                  else frame[f.name].astype(str)) for f in features},
        index=pd.RangeIndex(len(frame)),
    )
    return pd.util.hash_pandas_object(typed, index=False, categorize=False).to_numpy()


def file_digests(path: Path, features: Sequence[Feature]) -> np.ndarray:
    """The digests of a prepared split's rows, read a piece at a time."""
    found = [row_digests(piece, features) for piece in pieces(path, [f.name for f in features])]
    return np.concatenate(found) if found else np.empty(0, dtype=np.uint64)


def found_in(digests: np.ndarray, among: np.ndarray) -> np.ndarray:
    """Whether each of `digests` is one of `among`."""
    return np.isin(digests, among)


# Rows given as new of which at least this share are known already are refused, not thinned.
MOSTLY_KNOWN = 0.5


def mostly_known(known: int, rows: int) -> bool:
    """Whether `known` of `rows` new rows are too many to leave out and go on: the rows are
    the wrong ones, and what would be left is not what the user meant to give."""
    return known > 0 and known >= MOSTLY_KNOWN * rows
