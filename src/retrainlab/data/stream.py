"""Training and evaluation input read from the prepared Parquet files in bounded memory.

Streamed training never loads a split whole: record batches ("pieces") are drawn from the
files in proportion to the rows each has left, gathered into a window of WINDOW_ROWS rows,
and the window is shuffled (retrainlab.training.loop turns windows into the model's
batches; rows that fit its memory budget it holds as encoded pieces and mixes with the same
`mixed`, in the same order). Data smaller than the window is
therefore shuffled completely every epoch, as `model.fit(shuffle=True)` would; larger data
is mixed within windows, and prepare writes training rows in random order so that every
window is a fair sample. Memory is bounded by the window, whatever the number of rows.

The statistics the model's preprocessing needs (means, variances, vocabularies) are
computed in one pass over the same pieces.

This module knows files and frames only, not models: `models` uses it (FeatureStats), and
`training` builds the model's input pipeline on top of it.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from retrainlab.config.sections import TEXT_TOKENS as MAX_TOKENS
from retrainlab.data import NUMERIC, TEXT, Feature
from retrainlab.data.text import token_counts, vocabulary

PIECE_ROWS = 1 << 13
WINDOW_ROWS = 1 << 17
EVAL_ROWS = 1 << 16


def pieces(path: Path, columns: Sequence[str], rows: int = PIECE_ROWS) -> Iterator[pd.DataFrame]:
    """The file's rows in order, `rows` at a time, decoding one row group at a time.

    (pyarrow's `ParquetFile.iter_batches` kept every row group it had decoded allocated:
    345 MiB after ten batches of a 1.1M-row file, against 30 MiB reading row group by row
    group. prepare writes row groups of ROW_GROUP_ROWS rows.)
    """
    source = pq.ParquetFile(path)
    for group in range(source.metadata.num_row_groups):
        table = source.read_row_group(group, columns=list(columns))
        for batch in table.to_batches(max_chunksize=rows):
            yield batch.to_pandas()
        del table, batch  # a batch is a view of its row group: the last one kept the group alive into the next read


def file_rows(path: Path) -> int:
    return pq.ParquetFile(path).metadata.num_rows


def decoded_bytes(path: Path) -> int:
    """The file's columns decoded, as its metadata counts them (uncompressed row groups)."""
    meta = pq.ParquetFile(path).metadata
    return sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))


def windows(
    paths: Sequence[Path],
    columns: Sequence[str],
    rng: np.random.Generator,
    window_rows: int = WINDOW_ROWS,
    piece_rows: int = PIECE_ROWS,
) -> Iterator[pd.DataFrame]:
    """All rows of `paths`, once, in shuffled windows of about `window_rows` rows.

    Each piece comes from a file drawn with probability proportional to its unread rows, so
    every window mixes the files in the proportion they have.
    """
    readers = [pieces(path, columns, piece_rows) for path in paths]
    yield from mixed(readers, [file_rows(path) for path in paths], len, rng, window_rows, _shuffled)


def mixed(sources: Sequence[Iterator], rows: Sequence[int], length, rng: np.random.Generator, window_rows: int,
          shuffle) -> Iterator:
    """Pieces of the `sources` (each holding `rows[i]` rows in pieces of `length(piece)`
    rows), drawn file by file in proportion to the rows each has left, gathered into windows
    of about `window_rows` rows, each window `shuffle(held_pieces, rng)`.

    The order depends only on the pieces' lengths and `rng`, so pieces decoded once and
    held in memory (training in memory, retrainlab.training.loop) come out in the very
    order the files' own pieces would."""
    left = np.array(rows, dtype=float)
    held: list = []
    count = 0
    while left.sum() > 0:
        i = rng.choice(len(sources), p=left / left.sum())
        piece = next(sources[i])
        left[i] = max(0.0, left[i] - length(piece))
        held.append(piece)
        count += length(piece)
        if count >= window_rows:
            yield shuffle(held, rng)
            held, count = [], 0
    if held:
        yield shuffle(held, rng)


def _shuffled(held: list[pd.DataFrame], rng: np.random.Generator) -> pd.DataFrame:
    frame = pd.concat(held, ignore_index=True) if len(held) > 1 else held[0]
    return frame.take(rng.permutation(len(frame))).reset_index(drop=True)


@dataclasses.dataclass(frozen=True)
class FeatureStats:
    """What the model's preprocessing layers are fitted with: per numeric column the mean and
    (population) variance, per categorical column the sorted vocabulary (its `max_categories`
    most frequent values: a rarer one is read as unknown) and how many distinct values it
    has, per text column its `max_tokens` most frequent tokens (retrainlab.data.text)."""

    mean: np.ndarray
    variance: np.ndarray
    vocabularies: dict[str, list[str]]
    tokens: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    distinct: dict[str, int] = dataclasses.field(default_factory=dict)  # per categorical column

    @classmethod
    def of_frame(cls, frame: pd.DataFrame, features: Sequence[Feature], max_tokens: int = MAX_TOKENS,
                 max_categories: int | None = None) -> FeatureStats:
        return cls.of_pieces([frame], features, max_tokens, max_categories)

    @classmethod
    def of_files(cls, paths: Sequence[Path], features: Sequence[Feature], max_tokens: int = MAX_TOKENS,
                 max_categories: int | None = None) -> FeatureStats:
        names = [f.name for f in features]
        return cls.of_pieces(itertools.chain.from_iterable(pieces(p, names, 1 << 16) for p in paths), features,
                             max_tokens, max_categories)

    @classmethod
    def of_pieces(cls, frames, features: Sequence[Feature], max_tokens: int = MAX_TOKENS,
                  max_categories: int | None = None) -> FeatureStats:
        """One pass; means and variances combined piece by piece (Chan et al.), stable for any size."""
        numeric = [f.name for f in features if f.kind == NUMERIC]
        categorical = [f.name for f in features if f.kind not in (NUMERIC, TEXT)]
        text = [f.name for f in features if f.kind == TEXT]
        n, mean, m2 = 0, np.zeros(len(numeric)), np.zeros(len(numeric))
        seen: dict[str, Counter] = {c: Counter() for c in categorical}
        counts: dict[str, Counter] = {c: Counter() for c in text}
        for frame in frames:
            if numeric:
                values = frame[numeric].to_numpy(dtype=np.float64)
                k = len(values)
                if k:
                    piece_mean = values.mean(axis=0)
                    piece_m2 = ((values - piece_mean) ** 2).sum(axis=0)
                    delta = piece_mean - mean
                    total = n + k
                    mean = mean + delta * k / total
                    m2 = m2 + piece_m2 + delta**2 * n * k / total
                    n = total
            for column in categorical:
                seen[column].update(frame[column].astype(str).value_counts(sort=False).to_dict())
            for column in text:
                token_counts(frame[column].astype(str), counts[column])
        variance = m2 / n if n else m2
        return cls(mean, variance, {c: most_frequent(v, max_categories) for c, v in seen.items()},
                   {c: vocabulary(counts[c], max_tokens) for c in text}, {c: len(v) for c, v in seen.items()})


def most_frequent(counts: Counter, limit: int | None) -> list[str]:
    """A categorical column's vocabulary: its values sorted, or, beyond `limit`, the `limit`
    most frequent of them (ties: the first in sorted order), sorted."""
    if limit is None or len(counts) <= limit:
        return sorted(counts)
    return sorted(sorted(counts, key=lambda v: (-counts[v], v))[:limit])


def labelled_chunks(path: Path, features: Sequence[Feature], label: str, rows: int = EVAL_ROWS):
    """A test split as (features, true labels) chunks, for evaluation in bounded memory."""
    names = [f.name for f in features]
    for piece in pieces(path, [*names, label], rows):
        yield piece[names], piece[label].to_numpy()
