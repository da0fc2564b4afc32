"""Metrics, computed the same way for every strategy so comparisons are fair by construction.

A classifier's figures (`Score`: accuracy, cross-entropy, macro-F1) and a regressor's
(`Errors`: RMSE, MAE, R²), named as the task's measure (retrainlab.measure.task) names them:
`acc_old`, `loss_new`, `rmse_all`, ... "old" is the initial data's test split, "new" the
incremental data's, "all" both together.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from retrainlab.data import encode_labels, plain
from retrainlab.measure.task import ALL, FORGETTING, MEASURES, Measure, measure_of

TEST_SETS = {"old": "initial_test", "new": "incremental_test"}
CLASSIFIER = measure_of(None)
# Probability floor for the loss, so a label the model has never seen costs -log(1e-7) ~ 16.1.
PROBABILITY_FLOOR = 1e-7
__all__ = ["ALL", "FORGETTING", "MEASURES", "Measure", "measure_of"]


class Score:
    """Accuracy, mean cross-entropy and macro-F1, added up chunk by chunk.

    It keeps counts of (true, predicted) label pairs and the summed loss, so evaluating a
    test set of any size holds one chunk of predictions at a time; `+` pools two scores
    (the "all" test set).
    """

    def __init__(self) -> None:
        self.pairs: Counter[tuple[str, str]] = Counter()
        self.loss_sum = 0.0
        self.rows = 0

    def add(self, probs: np.ndarray, labels: Sequence, y_true: np.ndarray) -> Score:
        """`labels[i]` is the class of column i of `probs`; true labels outside `labels`
        count as wrong and get the probability floor in the loss."""
        label_array = np.asarray(labels, dtype=object)
        predicted = label_array[probs.argmax(axis=1)]
        columns = encode_labels(y_true, list(labels))
        p_true = np.where(columns >= 0, probs[np.arange(len(y_true)), np.maximum(columns, 0)], 0.0)
        self.loss_sum += float(-np.log(np.maximum(p_true, PROBABILITY_FLOOR)).sum())
        self.rows += len(y_true)
        pairs, counts = np.unique(np.stack([_as_text(y_true), _as_text(predicted)]).astype(str), axis=1,
                                  return_counts=True)
        self.pairs.update({(t, p): int(c) for (t, p), c in zip(pairs.T, counts)})
        return self

    def __add__(self, other: Score) -> Score:
        pooled = Score()
        pooled.pairs = self.pairs + other.pairs
        pooled.loss_sum, pooled.rows = self.loss_sum + other.loss_sum, self.rows + other.rows
        return pooled

    def metrics(self) -> dict[str, float]:
        """Macro-F1 as scikit-learn's: over the labels that are true or predicted, 0 where undefined."""
        true_counts, predicted_counts, hits = Counter(), Counter(), Counter()
        for (true, predicted), count in self.pairs.items():
            true_counts[true] += count
            predicted_counts[predicted] += count
            if true == predicted:
                hits[true] += count
        present = set(true_counts) | set(predicted_counts)
        f1 = [2 * hits[c] / (true_counts[c] + predicted_counts[c]) for c in present]
        return {
            "acc": sum(hits.values()) / self.rows,
            "loss": self.loss_sum / self.rows,
            "f1": float(np.mean(f1)),
        }


class Errors:
    """RMSE, MAE and R² of predicted numbers, added up chunk by chunk: the squared and
    absolute errors' sums, and the true values' count, mean and sum of squared deviations
    (pooled as Chan et al. pool variances, so a large mean costs no precision); `+` pools
    two (the "all" test set). R² is 1 - SSE / SST over the rows scored together."""

    def __init__(self) -> None:
        self.rows, self.squared, self.absolute, self.mean, self.spread = 0, 0.0, 0.0, 0.0, 0.0

    def add(self, predicted: np.ndarray, y_true: np.ndarray) -> Errors:
        truth = np.asarray(y_true, dtype=np.float64).reshape(-1)
        errors = np.asarray(predicted, dtype=np.float64).reshape(-1) - truth
        chunk = Errors()
        chunk.rows, chunk.squared, chunk.absolute = len(truth), float(errors @ errors), float(np.abs(errors).sum())
        if len(truth):
            chunk.mean = float(truth.mean())
            chunk.spread = float(((truth - chunk.mean) ** 2).sum())
        pooled = self + chunk
        self.__dict__.update(pooled.__dict__)
        return self

    def __add__(self, other: Errors) -> Errors:
        pooled = Errors()
        pooled.rows = self.rows + other.rows
        pooled.squared, pooled.absolute = self.squared + other.squared, self.absolute + other.absolute
        if pooled.rows:
            delta = other.mean - self.mean
            pooled.mean = self.mean + delta * other.rows / pooled.rows
            pooled.spread = self.spread + other.spread + delta**2 * self.rows * other.rows / pooled.rows
        return pooled

    def metrics(self) -> dict[str, float]:
        """R² is NaN where the true values do not vary (prepare refuses such a test set)."""
        return {
            "rmse": math.sqrt(self.squared / self.rows),
            "mae": self.absolute / self.rows,
            "r2": 1 - self.squared / self.spread if self.spread > 0 else math.nan,
        }


def score(probs: np.ndarray, labels: Sequence, y_true: np.ndarray) -> dict[str, float]:
    """Accuracy, mean cross-entropy and macro-F1 of one set of predicted probabilities."""
    return Score().add(probs, labels, y_true).metrics()


def evaluate(
    predict, labels: Sequence, tests: dict[str, Iterable[tuple[pd.DataFrame, np.ndarray]]], on_chunk=None,
    measure: Measure = CLASSIFIER,
) -> dict[str, float]:
    """Every figure of the task's measure on "old", "new" and "all", named as it names them.

    `tests` maps "old" and "new" to (features, true labels) chunks; `predict` maps features
    to probabilities over `labels` (a classifier) or to predicted numbers (a regressor).
    `on_chunk(test_set, true, predicted)`, when given, sees each chunk's true and predicted
    labels or numbers (the per-class figures and the residual plots are made of them).
    """
    regression = not measure.higher_is_better
    scores = {}
    label_array = np.asarray(labels, dtype=object)
    for name, chunks in tests.items():
        scores[name] = Errors() if regression else Score()
        for x, y in chunks:
            out = predict(x)
            if regression:
                predicted = np.asarray(out, dtype=np.float64).reshape(-1)
                scores[name].add(predicted, y)
            else:
                scores[name].add(out, labels, y)
                predicted = label_array[out.argmax(axis=1)]
            if on_chunk is not None:
                on_chunk(name, y, predicted)
    scores[ALL] = sum((scores[name] for name in TEST_SETS), Errors() if regression else Score())
    metrics = {}
    for test_set in (*TEST_SETS, ALL):
        for figure, value in scores[test_set].metrics().items():
            metrics[measure.name(figure, test_set)] = value
    return metrics


def accuracy(y_true: Sequence, y_pred: Sequence) -> float:
    return float(np.mean(_as_text(np.asarray(y_true, dtype=object)) == _as_text(np.asarray(y_pred, dtype=object))))


class Predictions:
    """The true and the predicted label of each test row: every row counted by (actual,
    predicted) pair, for the per-class recall (`confusion`), and up to `limit` rows per test
    set kept as they are, for DVC's confusion plot (`frame`). A regressor's (`numbers`):
    the rows kept as numbers, for the predicted-against-true and residual plots, no pairs."""

    def __init__(self, limit: int = 20_000, numbers: bool = False) -> None:
        self.limit, self.numbers = limit, numbers
        self.rows: dict[str, list[pd.DataFrame]] = {}
        self.pairs: Counter[tuple[str, str, str]] = Counter()

    def __call__(self, test_set: str, true: np.ndarray, predicted: np.ndarray) -> None:
        if self.numbers:
            actual, guessed = np.asarray(true, dtype=np.float64), np.asarray(predicted, dtype=np.float64)
        else:
            actual = _as_text(np.asarray(true, dtype=object))
            guessed = _as_text(np.asarray(predicted, dtype=object))
        if len(actual) and not self.numbers:
            pairs, counts = np.unique(np.stack([actual, guessed]).astype(str), axis=1, return_counts=True)
            self.pairs.update({(test_set, a, p): int(n) for (a, p), n in zip(pairs.T, counts)})
        kept = sum(len(f) for f in self.rows.get(test_set, []))
        room = self.limit - kept
        if room > 0:
            frame = pd.DataFrame({"test_set": test_set, "actual": actual[:room], "predicted": guessed[:room]})
            self.rows.setdefault(test_set, []).append(frame)

    def frame(self) -> pd.DataFrame:
        frames = [f for parts in self.rows.values() for f in parts]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["test_set", "actual", "predicted"])

    def confusion(self) -> dict[str, list[list]]:
        """Each test set's rows per [actual, predicted, rows], over every row seen."""
        found: dict[str, list[list]] = {}
        for (test_set, actual, predicted), rows in sorted(self.pairs.items()):
            found.setdefault(test_set, []).append([actual, predicted, rows])
        return found


def per_class_recall(confusion: Mapping[str, Sequence[Sequence]]) -> pd.DataFrame:
    """Recall of each class (rows) on each test set (columns): the share of its rows
    predicted as it, from `Predictions.confusion`'s counts."""
    counts = pd.DataFrame([(test_set, actual, predicted, rows) for test_set, pairs in confusion.items()
                           for actual, predicted, rows in pairs], columns=["test_set", "actual", "predicted", "rows"])
    hits = counts["rows"].where(counts["actual"] == counts["predicted"], 0)
    by = [counts["actual"], counts["test_set"]]
    return (hits.groupby(by).sum() / counts["rows"].groupby(by).sum()).unstack("test_set")




def _as_text(values: np.ndarray) -> np.ndarray:
    # Labels may be ints or strings; compare them as text so mixed sources never mismatch.
    return np.array([str(plain(v)) for v in values], dtype=object)


def mean_interval(
    values: Sequence[float], confidence: float = 0.95, bounds: tuple[float, float] | None = None
) -> tuple[float, float, float]:
    """Mean and two-sided Student-t confidence interval of per-seed values, clipped to `bounds`.

    One value gives a zero-width interval: a single seed says nothing about noise, and the
    report says so rather than invent a spread.
    """
    array = np.asarray(values, dtype=float)
    mean = float(array.mean())
    if len(array) < 2:
        return mean, mean, mean
    half = float(stats.t.ppf((1 + confidence) / 2, len(array) - 1) * array.std(ddof=1) / np.sqrt(len(array)))
    low, high = mean - half, mean + half
    if bounds is not None:
        low, high = max(low, bounds[0]), min(high, bounds[1])
    return mean, low, high

