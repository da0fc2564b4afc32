"""Metrics, computed the same way for every strategy so comparisons are fair by construction.

A classifier's figures (`Score`: accuracy, log loss, F1, balanced accuracy, precision,
recall, and ROC AUC, average precision or the cost of errors where chosen) and a
regressor's (`Errors`: RMSE, MAE, R², and MAPE, pinball loss or the cost of errors where
chosen), named as the task's measure (retrainlab.measure.task) names them: `acc_old`,
`f1_new`, `rmse_all`, ... "old" is the initial data's test split, "new" the incremental
data's, "all" both together. scikit-learn computes every one of them, with its edge cases
(`zero_division`); the log loss is the mean cross-entropy with a probability floor, so a
label the model has no output for costs a finite amount.
"""

from __future__ import annotations

import math
import warnings
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats
from sklearn import metrics as sk

from retrainlab.data import encode_labels, plain
from retrainlab.measure.task import ALL, FORGETTING, MEASURES, Measure, Scoring, measure_of

TEST_SETS = {"old": "initial_test", "new": "incremental_test"}
CLASSIFIER = measure_of(None)
# Probability floor for the loss, so a label the model has never seen costs -log(1e-7) ~ 16.1.
PROBABILITY_FLOOR = 1e-7
__all__ = ["ALL", "FORGETTING", "MEASURES", "Measure", "measure_of"]


def decide(probs: np.ndarray, labels: Sequence, scoring: Scoring | None = None) -> np.ndarray:
    """Each row's predicted label: a binary classifier's positive class where its probability
    reaches `scoring.threshold`, else the most probable label."""
    label_array = np.asarray(labels, dtype=object)
    names = [str(plain(v)) for v in labels]
    if scoring is not None and scoring.positive is not None and len(names) == 2 and scoring.positive in names:
        column = names.index(scoring.positive)
        return label_array[np.where(probs[:, column] >= scoring.threshold, column, 1 - column)]
    return label_array[probs.argmax(axis=1)]


class Score:
    """A classifier's figures, added up chunk by chunk.

    It keeps counts of (true, predicted) label pairs and the summed loss, so evaluating a
    test set of any size holds one chunk of predictions at a time; the ranking measures
    (ROC AUC, average precision), where chosen, keep each row's probabilities too. `+`
    pools two scores (the "all" test set).
    """

    def __init__(self, measure: Measure = CLASSIFIER, scoring: Scoring | None = None) -> None:
        self.measure, self.scoring = measure, scoring or Scoring()
        self.pairs: Counter[tuple[str, str]] = Counter()
        self.loss_sum = 0.0
        self.rows = 0
        self.ranked: list[tuple[np.ndarray, np.ndarray, tuple[str, ...]]] = []  # (true, probs, labels) chunks

    def add(self, probs: np.ndarray, labels: Sequence, y_true: np.ndarray) -> Score:
        """`labels[i]` is the class of column i of `probs`; true labels outside `labels`
        count as wrong and get the probability floor in the loss."""
        predicted = decide(probs, labels, self.scoring)
        columns = encode_labels(y_true, list(labels))
        p_true = np.where(columns >= 0, probs[np.arange(len(y_true)), np.maximum(columns, 0)], 0.0)
        self.loss_sum += float(-np.log(np.maximum(p_true, PROBABILITY_FLOOR)).sum())
        self.rows += len(y_true)
        truth = _as_text(y_true)
        pairs, counts = np.unique(np.stack([truth, _as_text(predicted)]).astype(str), axis=1,
                                  return_counts=True)
        self.pairs.update({(t, p): int(c) for (t, p), c in zip(pairs.T, counts)})
        if self.measure.figure.stem in ("auc", "ap"):
            self.ranked.append((truth.astype(str), np.asarray(probs, dtype=np.float64),
                                tuple(str(plain(v)) for v in labels)))
        return self

    def __add__(self, other: Score) -> Score:
        pooled = Score(self.measure, self.scoring)
        pooled.pairs = self.pairs + other.pairs
        pooled.loss_sum, pooled.rows = self.loss_sum + other.loss_sum, self.rows + other.rows
        pooled.ranked = self.ranked + other.ranked
        return pooled

    def metrics(self) -> dict[str, float]:
        """Every figure of the measure, by scikit-learn from the pairs' counts (as sample
        weights): F1, precision and recall of the positive class for a binary classifier,
        macro over the labels that are true or predicted otherwise, 0 where undefined."""
        if not self.pairs:
            return {}
        true, predicted = zip(*self.pairs)
        weights = list(self.pairs.values())
        positive = self.scoring.positive
        per_class = ({"labels": [positive], "average": "macro"} if positive is not None else {"average": "macro"})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a class predicted but never true: balanced accuracy's warning
            out = {
                "acc": sk.accuracy_score(true, predicted, sample_weight=weights),
                "loss": self.loss_sum / self.rows,
                "f1": sk.f1_score(true, predicted, sample_weight=weights, zero_division=0.0, **per_class),
                "bacc": sk.balanced_accuracy_score(true, predicted, sample_weight=weights),
                "precision": sk.precision_score(true, predicted, sample_weight=weights, zero_division=0.0,
                                                **per_class),
                "recall": sk.recall_score(true, predicted, sample_weight=weights, zero_division=0.0, **per_class),
            }
        stem = self.measure.figure.stem
        if stem in ("auc", "ap"):
            out[stem] = self._ranking(stem)
        if stem == "cost":
            out[stem] = sum(self.scoring.cost_of(t, p) * n for (t, p), n in self.pairs.items()) / self.rows
        return {k: float(v) for k, v in out.items()}

    def _ranking(self, stem: str) -> float:
        """ROC AUC or average precision: of the positive class's probability for a binary
        classifier; else macro over the model's classes, one against the rest (a class with
        no row, or only rows, in the set is left out). NaN where no class can be ranked."""
        score = sk.roc_auc_score if stem == "auc" else sk.average_precision_score
        truth = np.concatenate([t for t, _, _ in self.ranked])
        labels = self.ranked[0][2]
        probs = np.vstack([p for _, p, _ in self.ranked])
        classes = [self.scoring.positive] if self.scoring.positive in labels else list(labels)
        found = []
        for name in classes:
            hits = truth == name
            if 0 < hits.sum() < len(hits):
                found.append(score(hits, probs[:, labels.index(name)]))
        return float(np.mean(found)) if found else math.nan


class Errors:
    """A regressor's figures, added up chunk by chunk: each chunk's mean squared, absolute,
    absolute percentage and pinball errors (scikit-learn's) weighted by its rows, and the
    true values' count, mean and sum of squared deviations (pooled as Chan et al. pool
    variances, so a large mean costs no precision); `+` pools two (the "all" test set). R²
    is 1 - SSE / SST over the rows scored together."""

    def __init__(self, measure: Measure | None = None, scoring: Scoring | None = None) -> None:
        self.measure, self.scoring = measure or MEASURES["regression"], scoring or Scoring()
        self.rows, self.mean, self.spread = 0, 0.0, 0.0
        self.sums: dict[str, float] = {"squared": 0.0, "absolute": 0.0, "percentage": 0.0, "pinball": 0.0}

    def add(self, predicted: np.ndarray, y_true: np.ndarray) -> Errors:
        truth = np.asarray(y_true, dtype=np.float64).reshape(-1)
        guess = np.asarray(predicted, dtype=np.float64).reshape(-1)
        chunk = Errors(self.measure, self.scoring)
        chunk.rows = len(truth)
        if len(truth):
            n = len(truth)
            chunk.sums = {"squared": sk.mean_squared_error(truth, guess) * n,
                          "absolute": sk.mean_absolute_error(truth, guess) * n, "percentage": 0.0, "pinball": 0.0}
            stem = self.measure.figure.stem
            if stem == "mape":
                chunk.sums["percentage"] = sk.mean_absolute_percentage_error(truth, guess) * n
            if stem == "pinball":
                chunk.sums["pinball"] = sk.mean_pinball_loss(truth, guess, alpha=self.scoring.quantile) * n
            chunk.mean = float(truth.mean())
            chunk.spread = float(((truth - chunk.mean) ** 2).sum())
        pooled = self + chunk
        self.__dict__.update(pooled.__dict__)
        return self

    def __add__(self, other: Errors) -> Errors:
        pooled = Errors(self.measure, self.scoring)
        pooled.rows = self.rows + other.rows
        pooled.sums = {k: self.sums[k] + other.sums[k] for k in self.sums}
        if pooled.rows:
            delta = other.mean - self.mean
            pooled.mean = self.mean + delta * other.rows / pooled.rows
            pooled.spread = self.spread + other.spread + delta**2 * self.rows * other.rows / pooled.rows
        return pooled

    def metrics(self) -> dict[str, float]:
        """R² is NaN where the true values do not vary (prepare refuses such a test set)."""
        n = self.rows
        out = {
            "rmse": math.sqrt(self.sums["squared"] / n),
            "mae": self.sums["absolute"] / n,
            "r2": 1 - self.sums["squared"] / self.spread if self.spread > 0 else math.nan,
        }
        stem = self.measure.figure.stem
        if stem == "mape":
            out["mape"] = self.sums["percentage"] / n
        if stem == "pinball":
            out["pinball"] = self.sums["pinball"] / n
        if stem == "cost":
            out["cost"] = float(self.scoring.costs) * out["mae"]
        return out


def score(probs: np.ndarray, labels: Sequence, y_true: np.ndarray, measure: Measure = CLASSIFIER,
          scoring: Scoring | None = None) -> dict[str, float]:
    """A classifier's figures of one set of predicted probabilities."""
    return Score(measure, scoring).add(probs, labels, y_true).metrics()


def evaluate(
    predict, labels: Sequence, tests: dict[str, Iterable[tuple[pd.DataFrame, np.ndarray]]], on_chunk=None,
    measure: Measure = CLASSIFIER, scoring: Scoring | None = None,
) -> dict[str, float]:
    """Every figure of the task's measure on "old", "new" and "all", named as it names them.

    `tests` maps "old" and "new" to (features, true labels) chunks; `predict` maps features
    to probabilities over `labels` (a classifier) or to predicted numbers (a regressor).
    `on_chunk(test_set, true, predicted)`, when given, sees each chunk's true and predicted
    labels or numbers (the per-class figures and the residual plots are made of them).
    """
    regression = measure.regression
    scores = {}

    def fresh():
        return Errors(measure, scoring) if regression else Score(measure, scoring)

    for name, chunks in tests.items():
        scores[name] = fresh()
        for x, y in chunks:
            out = predict(x)
            if regression:
                predicted = np.asarray(out, dtype=np.float64).reshape(-1)
                scores[name].add(predicted, y)
            else:
                scores[name].add(out, labels, y)
                predicted = decide(out, labels, scoring)
            if on_chunk is not None:
                on_chunk(name, y, predicted)
    scores[ALL] = sum((scores[name] for name in TEST_SETS), fresh())
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

