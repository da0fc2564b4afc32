"""Text columns: which columns are text, and how a text becomes tokens.

A column is text, unless `data.files.text` says otherwise, when it is not numeric and, over
the initial file's values, at least half contain a space and a letter and at least half are
distinct (`DETECTION_RULE`, which summary.json states): sentences, not codes, names or
numbers. Every other
non-numeric column stays categorical.

Tokens follow the rule of Keras' `TextVectorization` defaults, which the project's text
model uses, character for character: ASCII letters in lower case (TensorFlow lowers no
other letter), ASCII punctuation removed, split on ASCII whitespace. The vocabulary of
the project's model, the diagnostics' vocabulary and the out-of-vocabulary rates all come
from `tokens`, without TensorFlow.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

import pandas as pd

DETECTION_RULE = ("a non-numeric column is text when at least half of its values in the initial file contain a "
                  "space and a letter, and at least half are distinct; data.files.text lists the text columns "
                  "instead ([] for none)")
SPACED_SHARE = 0.5
DISTINCT_SHARE = 0.5
# TextVectorization's "lower_and_strip_punctuation": the punctuation it strips.
PUNCTUATION = re.compile(r"[!\"#$%&()\*\+,\-\./:;<=>?@\[\\\]^_`{|}~']")
LETTER = re.compile(r"[^\W\d_]")
WHITESPACE = re.compile(r"[ \t\n\r\f\v]+")
ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def looks_like_text(values: pd.Series) -> tuple[bool, str]:
    """Whether a non-numeric column reads as text by `DETECTION_RULE`, and why, in words."""
    present = values.dropna().astype(str)
    if present.empty:
        return False, "no values"
    spaced = float((present.str.contains(" ", regex=False) & present.str.contains(LETTER)).mean())
    distinct = present.nunique() / len(present)
    why = f"{spaced:.0%} of values contain a space and a letter, {distinct:.0%} are distinct"
    return spaced >= SPACED_SHARE and distinct >= DISTINCT_SHARE, why


def tokens(text: str) -> list[str]:
    """The words of a text as the project's text model reads them."""
    return [token for token in WHITESPACE.split(PUNCTUATION.sub("", text.translate(ASCII_LOWER))) if token]


def token_counts(texts: Iterable[str], counts: Counter | None = None) -> Counter:
    """How often each token occurs in `texts`, added to `counts` when given."""
    counts = Counter() if counts is None else counts
    for text in texts:
        counts.update(tokens(text))
    return counts


def vocabulary(counts: Counter, max_tokens: int) -> list[str]:
    """The `max_tokens` most frequent tokens, the most frequent first (ties in text order),
    as `TextVectorization(vocabulary=...)` takes them."""
    return [token for token, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:max_tokens]]


def lengths(texts: pd.Series) -> pd.Series:
    """The number of tokens of each text."""
    return texts.astype(str).map(lambda t: len(tokens(t)))


def mean_length(texts: pd.Series) -> float:
    """Tokens a text, as prepare and the report both say it (of the same rows,
    `Prepared.old_and_new`): the mean of `lengths`, 0 without a text."""
    return float(lengths(texts).mean()) if len(texts) else 0.0
