""""Is it time?": the check between rounds. Pure functions of the current model's outputs on
the old test set and on the new rows, of the short trainings that forecast what each option
would gain (retrainlab.pipeline.forecast trains them), and of the last comparison's cost.

- With labels, the model's primary figure on the new rows is measured, with a 95% interval
  (accuracy: exact, Clopper-Pearson). A regressor's error is compared across sets as its
  *relative error*, the RMSE over the RMSE of predicting those rows' own mean (sqrt(1 - R²)),
  with a bootstrap interval: an error in the label's units cannot be compared across two
  sets whose labels spread differently.
- A chosen measure (params.yaml's `compare.metric`) that is not the task's default is
  computed as the pipeline computes it (retrainlab.measure.evaluation's `Score` and
  `Errors`) from the model's outputs on the rows (`Outputs`), with a bootstrap 95%
  interval over the rows (`interval`): F1, ROC AUC or a cost is not a mean of per-row
  values. A regressor's MAE, MAPE, pinball loss or cost is compared as it is, in the
  label's units. Where it is undefined on the rows (recall without a row of the positive
  class, ROC AUC of one class), `Outputs.undefined` says why in words.
- Without labels, a classifier's accuracy on the new rows is estimated by ATC, average
  thresholded confidence (Garg et al., ICLR 2022): on the labelled old test set, find the
  threshold on each row's negative entropy above which the share of rows equals the model's
  accuracy there; the estimate is the share of new rows above it. Its interval is a
  bootstrap over both sets' rows. It reads confidences only, so it cannot see a change in
  what the labels mean (concept drift). A regressor's error is not estimated without labels.
- Without labels, a chosen classifier measure read off the confusion matrix (F1,
  precision, recall, balanced accuracy, the cost of errors) is estimated by CBPE,
  confidence-based performance estimation (as NannyML does, `cbpe`): each new row predicted
  d adds its probability of each class c to the expected count of (true c, predicted d),
  and those expected counts are the sample weights of the same scikit-learn calls. It
  assumes calibrated probabilities. ROC AUC, average precision and the log loss have no
  such estimate (`NO_LABEL_FREE`): the check estimates accuracy (ATC) instead and says so.
- The forecast: an option trained once, briefly, on part of the labelled new rows as the
  comparison would train it, and scored with the current model on the same rows (the old
  test set and the rest of the new rows): its gain in target over keeping the model, with
  a paired bootstrap interval over those rows, widened by the option's own spread over the
  seeds where the last comparison recorded it (`paired_gain`). A chosen measure is
  computed on each resample from the rows' (true, predicted) pairs, probabilities or
  errors (`Outputs.figure`).
- Underfitted: a model whose held-out figure was still improving over the last quarter of
  its training, by more than the tolerance (`underfitted`).

The verdict (`decide`), read in params.yaml's `compare` section:
- `urgent` when labelled new rows hold classes the model has no output for, more than
  `tolerance` of them;
- with a forecast (what an update would gain, on the same rows: it decides, for a figure
  compared across two sets also moves when the new rows are harder for any model):
  `urgent` when even the best option's interval's low end is more than URGENT_TIMES
  tolerances; `compare` when an option's gain is above the tolerance and above zero at the
  one-sided 80% bound of its interval (likely a gain, not noise: `likely_above_zero`), and
  the gain is worth the comparison's cost (with `compare.point_value` set: the points gained times their value must reach
  what the last comparison cost); `no action` otherwise;
- without one: `urgent` when the loss on the traffic is, even at its interval's low end,
  more than URGENT_TIMES tolerances; `compare` when it is above the tolerance with its
  interval's low end above zero, or the model is underfitted, or (a regressor without
  labels) its inputs moved, each worth the cost as above; `no action` otherwise.
The loss on the traffic is `new_traffic_share` times the drop of the primary figure from
the old test set to the new rows: the share of traffic that looks like the new rows.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy import stats
from sklearn.isotonic import IsotonicRegression

from retrainlab.config import CompareParams
from retrainlab.data import plain
from retrainlab.decision.change import NOT_COMPARED, Change, inputs_compared, inputs_moved
from retrainlab.decision.diagnosis import Diagnosis
from retrainlab.measure import evaluation
from retrainlab.measure.evaluation import PROBABILITY_FLOOR
from retrainlab.measure.task import Measure, Scoring

NO_ACTION, COMPARE, URGENT = "no action", "compare", "urgent"
TOO_FEW = "too few labels"  # what would be "no action", on an interval too wide to tell it from "urgent"
VERDICTS = (NO_ACTION, COMPARE, URGENT, TOO_FEW)
# The exit status of `retrainlab check` for each verdict: distinct from an error's (2) and a
# crash's (1), so that cron or a CI job can act on it.
EXIT_STATUS = {NO_ACTION: 0, COMPARE: 3, URGENT: 4, TOO_FEW: 5}
URGENT_TIMES = 5  # a loss this many tolerances beyond, at its interval's low end: broken, not drifting
MEASURED, ESTIMATED, NOT_ESTIMATED = "measured", "estimated (ATC)", "not estimated"
CBPE = "estimated (CBPE)"
UNDEFINED = "undefined on these rows"  # a chosen measure the rows cannot give (the reasons say why)
# The tasks' default figures, whose intervals are as they always were: accuracy's exact
# interval, a regressor's relative error; every other figure's interval is a bootstrap.
DEFAULT_FIGURES = ("acc", "rmse")
# Chosen measures without a sound label-free estimate: ATC's accuracy is estimated instead.
NO_LABEL_FREE = ("auc", "ap", "loss")
RESAMPLED_CELLS = 4_000_000  # rows x resamples drawn at once: bounds a bootstrap's memory
BOOTSTRAP = 1000
# Fewer labelled rows than this give a regressor's error no interval: a bootstrap over one row
# has zero width, and over a handful it is far too narrow.
MIN_BOOTSTRAP_ROWS = 10
Z95 = float(stats.norm.ppf(0.975))
DEFAULT_WIDTH = 0.05  # the interval width the labels needed are counted for: +/- 0.025
LIKELY = 0.8  # a forecast gain counts when it is above zero at this one-sided bound (likely_above_zero)
Z_LIKELY = float(stats.norm.ppf(LIKELY))


@dataclasses.dataclass(frozen=True)
class Estimate:
    value: float
    low: float
    high: float

    def to_json(self) -> dict[str, float]:
        return dataclasses.asdict(self)


# --- the figures --------------------------------------------------------------------------


def correct(predicted: Sequence, actual: Sequence) -> np.ndarray:
    """Whether each predicted label is the actual one, compared as text (a CSV's "3" is the class 3)."""
    return np.array([str(p) == str(a) for p, a in zip(predicted, actual)], dtype=bool)


def accuracy(correct: np.ndarray) -> Estimate:
    """The share of correct rows with its exact (Clopper-Pearson) 95% interval."""
    n, k = len(correct), int(np.sum(correct))
    low = float(stats.beta.ppf(0.025, k, n - k + 1)) if k else 0.0
    high = float(stats.beta.ppf(0.975, k + 1, n - k)) if k < n else 1.0
    return Estimate(k / n, low, high)


def rmse(predicted: np.ndarray, actual: np.ndarray, seed: int = 0) -> Estimate:
    """The root mean squared error with a bootstrap 95% interval over the rows."""
    squared = (np.asarray(predicted, float) - np.asarray(actual, float)) ** 2
    if len(squared) < MIN_BOOTSTRAP_ROWS:
        return Estimate(float(np.sqrt(squared.mean())), 0.0, math.inf)
    rng = np.random.default_rng(seed)
    draws = np.sqrt(squared[rng.integers(0, len(squared), (BOOTSTRAP, len(squared)))].mean(axis=1))
    return Estimate(float(np.sqrt(squared.mean())), *map(float, np.percentile(draws, [2.5, 97.5])))


def relative_error(predicted: np.ndarray, actual: np.ndarray, seed: int = 0) -> Estimate:
    """The RMSE over the RMSE of predicting the rows' own mean (sqrt(1 - R²): 0 is perfect, 1
    no better than the mean), with a bootstrap 95% interval over the rows. It reads the same
    for a label in dollars or in cents, and for rows whose labels spread wider."""
    predicted, actual = np.asarray(predicted, float), np.asarray(actual, float)
    point = float(_relative(predicted[None, :], actual[None, :])[0])
    if len(actual) < MIN_BOOTSTRAP_ROWS:
        return Estimate(point, 0.0, math.inf)
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(actual), (BOOTSTRAP, len(actual)))
    values = _relative(predicted[draws], actual[draws])
    finite = values[np.isfinite(values)]
    if not finite.size:
        return Estimate(point, point, point)
    return Estimate(point, *map(float, np.percentile(finite, [2.5, 97.5])))


def _relative(predicted: np.ndarray, actual: np.ndarray) -> np.ndarray:
    """Row-wise over the last axis: RMSE / the spread of `actual` (inf where the labels are all one value)."""
    error = np.sqrt(((predicted - actual) ** 2).mean(axis=-1))
    spread = actual.std(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(spread > 0, error / np.where(spread > 0, spread, 1.0), np.inf)


def confidence(probs: np.ndarray) -> np.ndarray:
    """Each row's negative entropy of its class probabilities: ATC's score (0: certain)."""
    p = np.clip(np.asarray(probs, float), 1e-12, 1.0)
    return (p * np.log(p)).sum(axis=1)


def atc_threshold(scores: np.ndarray, correct: np.ndarray) -> float:
    """The score above which the share of rows equals the share the model got right."""
    return float(np.quantile(scores, 1 - float(np.mean(correct))))


def atc(old_scores: np.ndarray, old_correct: np.ndarray, new_scores: np.ndarray, seed: int = 0) -> Estimate:
    """ATC's estimate of the accuracy on the new rows, with a bootstrap 95% interval that
    resamples both the old test rows (the threshold) and the new rows."""
    point = float(np.mean(new_scores > atc_threshold(old_scores, old_correct)))
    rng = np.random.default_rng(seed)
    draws = np.empty(BOOTSTRAP)
    for i in range(BOOTSTRAP):
        old = rng.integers(0, len(old_scores), len(old_scores))
        new = rng.integers(0, len(new_scores), len(new_scores))
        draws[i] = np.mean(new_scores[new] > atc_threshold(old_scores[old], old_correct[old]))
    return Estimate(point, *map(float, np.percentile(draws, [2.5, 97.5])))


# --- a chosen measure ---------------------------------------------------------------------


def is_default(measure: Measure) -> bool:
    """Whether the measure is its task's default (accuracy, RMSE), read as the check always read it."""
    return measure.primary in DEFAULT_FIGURES


@dataclasses.dataclass(frozen=True, eq=False)
class Outputs:
    """A model's outputs on labelled rows as a chosen measure reads them, to compute it on
    every row (`value`, by the pipeline's own `Score` or `Errors`) and on resamples of the
    rows (`figure`). A classifier's rows are each a true and a predicted class, as codes
    into `classes` (the model's labels as text, then any other true label), with the
    probabilities of the model's labels; a regressor's the predicted and the true numbers."""

    measure: Measure
    rules: Scoring
    true: np.ndarray
    predicted: np.ndarray
    value: float  # the figure on every row, as the pipeline computes it
    probs: np.ndarray | None = None
    classes: tuple[str, ...] = ()

    @classmethod
    def of_classifier(cls, measure: Measure, rules: Scoring, probs: np.ndarray, labels, y_true) -> Outputs:
        probs = np.asarray(probs, dtype=np.float64)
        names = tuple(str(plain(v)) for v in labels)
        truth = [str(plain(v)) for v in y_true]
        classes = names + tuple(sorted(set(truth) - set(names)))
        code = {name: i for i, name in enumerate(classes)}
        predicted = np.array([code[str(plain(v))] for v in evaluation.decide(probs, labels, rules)], dtype=np.int64)
        true = np.array([code[t] for t in truth], dtype=np.int64)
        try:
            value = evaluation.Score(measure, rules).add(probs, labels, np.asarray(y_true)).metrics()[measure.primary]
        except KeyError:  # a (true, predicted) pair compare.costs does not price: said by `undefined`
            value = math.nan
        return cls(measure, rules, true, predicted, float(value), probs, classes)

    @classmethod
    def of_regressor(cls, measure: Measure, rules: Scoring, predicted: np.ndarray, y_true) -> Outputs:
        predicted = np.asarray(predicted, dtype=np.float64).reshape(-1)
        true = np.asarray(y_true, dtype=np.float64).reshape(-1)
        value = evaluation.Errors(measure, rules).add(predicted, true).metrics()[measure.primary]
        return cls(measure, rules, true, predicted, float(value))

    def __len__(self) -> int:
        return len(self.true)

    @property
    def positive(self) -> int | None:
        """The code of a binary classifier's positive class (None: macro over the classes)."""
        positive = self.rules.positive
        return self.classes.index(positive) if positive is not None and positive in self.classes else None

    def undefined(self) -> str | None:
        """Why the measure is undefined on these rows, in words; None where it is defined."""
        stem, positive, rules = self.measure.primary, self.rules.positive, self.rules
        if self.measure.regression:
            if stem == "r2" and np.ptp(self.true) == 0:
                return "their labels are all one value: R² has no spread of theirs to explain"
            zeros = int((self.true == 0).sum())
            if stem == "mape" and zeros:
                return f"{zeros} of them have a label of 0, where a percentage error is undefined"
        else:
            if positive is not None:
                code = self.positive
                hits = 0 if code is None else int((self.true == code).sum())
                if stem in ("recall", "f1", "auc", "ap") and not hits:
                    return f"they hold no row of the positive class {positive!r}"
                if stem in ("auc", "ap") and hits == len(self):
                    return f"every one of them is of the positive class {positive!r}: nothing to rank it against"
                if stem == "precision" and (code is None or not (self.predicted == code).any()):
                    return f"the model predicts the positive class {positive!r} for none of them"
            elif stem in ("auc", "ap") and len(set(self.true.tolist())) < 2:
                return "they hold one class only: nothing to rank it against"
            if stem == "cost":
                priced = set(rules.costs or {})
                unpriced = sorted({self.classes[c] for c in np.unique(self.true)} - priced)
                if unpriced:
                    return f"compare.costs gives no cost for their class {unpriced[0]!r}"
        if not math.isfinite(self.value):
            return f"{self.measure.short} is not a finite number on them"
        return None

    def figure(self, rows: np.ndarray | None = None) -> np.ndarray:
        """The measure on each resample of the rows: `rows` is (resamples, rows) indices; None:
        every row once (one value). The same figures as `value`, from the resampled rows'
        (true, predicted) counts, probabilities or errors."""
        rows = np.arange(len(self))[None, :] if rows is None else np.asarray(rows)
        stem = self.measure.primary
        if self.measure.regression:
            return _errors(stem, self.rules, self.predicted[rows], self.true[rows])
        if stem == "loss":
            columns = self.probs.shape[1]
            p_true = np.where(self.true < columns,
                              self.probs[np.arange(len(self)), np.minimum(self.true, columns - 1)], 0.0)
            return (-np.log(np.maximum(p_true, PROBABILITY_FLOOR)))[rows].mean(axis=1)
        if stem in ("auc", "ap"):
            return _ranking(stem, self.true[rows], self.probs, rows, self._ranked())
        k = len(self.classes)
        codes = self.true * k + self.predicted
        counts = _counts(codes[rows], k * k).reshape(len(rows), k, k)
        return confusion_figure(stem, counts, self.positive, self._costs())

    def _ranked(self) -> list[int]:
        """The classes ranked: a binary classifier's positive class, else each of the model's."""
        columns = self.probs.shape[1]
        code = self.positive
        return [code] if code is not None and code < columns else list(range(columns))

    def _costs(self) -> np.ndarray | None:
        return cost_matrix(self.rules, self.classes) if self.measure.primary == "cost" else None


def cost_matrix(rules: Scoring, classes: tuple[str, ...]) -> np.ndarray:
    """compare.costs as an array over `classes` (true, predicted); NaN where it names no cost."""
    costs = rules.costs if isinstance(rules.costs, dict) else {}
    return np.array([[float(costs.get(t, {}).get(p, math.nan)) for p in classes] for t in classes])


def _counts(codes: np.ndarray, cells: int) -> np.ndarray:
    """Each row of `codes` (resamples, rows) counted into `cells` bins: (resamples, cells)."""
    offsets = (codes + np.arange(len(codes))[:, None] * cells).ravel()
    return np.bincount(offsets, minlength=len(codes) * cells).reshape(len(codes), cells).astype(np.float64)


def confusion_figure(stem: str, counts: np.ndarray, positive: int | None,
                     costs: np.ndarray | None = None) -> np.ndarray:
    """A confusion-matrix measure of each (true, predicted) count matrix in `counts`
    (resamples, classes, classes), as scikit-learn computes it from the pairs with these
    counts as sample weights (`evaluation.Score`): F1, precision and recall of the positive
    class (`positive`, a code), else macro over the classes that are true or predicted, 0
    where undefined (zero_division); balanced accuracy the mean recall of the classes that
    are true; the cost of errors per row."""
    counts = np.asarray(counts, dtype=np.float64)
    total = counts.sum(axis=(1, 2))
    hits = np.diagonal(counts, axis1=1, axis2=2)
    with np.errstate(divide="ignore", invalid="ignore"):
        if stem == "acc":
            return hits.sum(axis=1) / total
        if stem == "cost":
            return (counts * costs).sum(axis=(1, 2)) / total
        true, predicted = counts.sum(axis=2), counts.sum(axis=1)
        recall = np.where(true > 0, hits / np.where(true > 0, true, 1.0), 0.0)
        if stem == "bacc":
            found = true > 0
            return (recall * found).sum(axis=1) / found.sum(axis=1)
        precision = np.where(predicted > 0, hits / np.where(predicted > 0, predicted, 1.0), 0.0)
        both = true + predicted
        f1 = np.where(both > 0, 2 * hits / np.where(both > 0, both, 1.0), 0.0)
    per_class = {"f1": f1, "precision": precision, "recall": recall}[stem]
    if positive is not None:
        return per_class[:, positive]
    present = both > 0
    return (per_class * present).sum(axis=1) / present.sum(axis=1)


def _ranking(stem: str, true: np.ndarray, probs: np.ndarray, rows: np.ndarray, ranked: list[int]) -> np.ndarray:
    """ROC AUC or average precision of each resample (`true` and `rows`: (resamples, rows)),
    as `evaluation.Score` computes them: of each class in `ranked` against the rest,
    averaged over the classes that have rows in and out of the resample; NaN where none."""
    found = np.full((len(ranked), len(rows)), np.nan)
    for i, code in enumerate(ranked):
        hits = true == code
        positives = hits.sum(axis=1)
        scores = probs[rows, code]
        value = _auc(hits, scores, positives) if stem == "auc" else _average_precision(hits, scores, positives)
        found[i] = np.where((positives > 0) & (positives < rows.shape[1]), value, np.nan)
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a resample where no class can be ranked: NaN
        return np.nanmean(found, axis=0)


def _auc(hits: np.ndarray, scores: np.ndarray, positives: np.ndarray) -> np.ndarray:
    """ROC AUC as the Mann-Whitney statistic over average ranks (ties count a half): the
    area under scikit-learn's trapezoidal ROC curve."""
    ranks = stats.rankdata(scores, axis=1)
    negatives = hits.shape[1] - positives
    with np.errstate(divide="ignore", invalid="ignore"):
        return ((ranks * hits).sum(axis=1) - positives * (positives + 1) / 2) / (positives * negatives)


def _average_precision(hits: np.ndarray, scores: np.ndarray, positives: np.ndarray) -> np.ndarray:
    """Average precision as scikit-learn computes it: the precision at each distinct score,
    weighted by the share of positives it adds; each positive row takes the precision at
    the last row of its run of equal scores."""
    order = np.argsort(-scores, axis=1, kind="stable")
    ranked, found = np.take_along_axis(scores, order, axis=1), np.take_along_axis(hits, order, axis=1)
    n = ranked.shape[1]
    precision = np.cumsum(found, axis=1) / np.arange(1, n + 1)
    ends = np.ones_like(found, dtype=bool)
    ends[:, :-1] = ranked[:, :-1] != ranked[:, 1:]
    last = np.minimum.accumulate(np.where(ends, np.arange(n), n)[:, ::-1], axis=1)[:, ::-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        return (found * np.take_along_axis(precision, last, axis=1)).sum(axis=1) / positives


def _errors(stem: str, rules: Scoring, predicted: np.ndarray, true: np.ndarray) -> np.ndarray:
    """A regressor's figure over the last axis, as `evaluation.Errors` computes it."""
    error = predicted - true
    with np.errstate(divide="ignore", invalid="ignore"):
        if stem == "rmse":
            return np.sqrt((error**2).mean(axis=-1))
        if stem in ("mae", "cost"):
            mae = np.abs(error).mean(axis=-1)
            return mae * float(rules.costs) if stem == "cost" else mae
        if stem == "mape":  # scikit-learn's: the absolute error over |true|, floored at machine epsilon
            return (np.abs(error) / np.maximum(np.abs(true), np.finfo(np.float64).eps)).mean(axis=-1)
        if stem == "pinball":
            q = rules.quantile
            over = true - predicted
            return np.where(over >= 0, q * over, (q - 1) * over).mean(axis=-1)
        if stem == "r2":
            spread = ((true - true.mean(axis=-1, keepdims=True)) ** 2).sum(axis=-1)
            return np.where(spread > 0, 1 - (error**2).sum(axis=-1) / np.where(spread > 0, spread, 1.0), np.nan)
    raise ValueError(f"no such regressor figure: {stem}")


def _resamples(rng: np.random.Generator, rows: int, draws: int = BOOTSTRAP):
    """BOOTSTRAP resamples of `rows` rows, as (resamples, rows) indices, a few at a time."""
    step = max(1, RESAMPLED_CELLS // max(rows, 1))
    for start in range(0, draws, step):
        yield rng.integers(0, rows, (min(step, draws - start), rows))


def interval(outputs: Outputs, seed: int = 0) -> Estimate:
    """The measure on every row with a bootstrap 95% interval over the rows; fewer than
    MIN_BOOTSTRAP_ROWS rows give the interval the measure's whole range."""
    value = outputs.value
    if len(outputs) < MIN_BOOTSTRAP_ROWS:
        return Estimate(value, *map(float, outputs.measure.figure.bounds))
    rng = np.random.default_rng(seed)
    draws = np.concatenate([outputs.figure(rows) for rows in _resamples(rng, len(outputs))])
    return _percentiles(value, draws)


def _percentiles(value: float, draws: np.ndarray) -> Estimate:
    finite = draws[np.isfinite(draws)]
    if not finite.size:
        return Estimate(value, value, value)
    return Estimate(value, *map(float, np.percentile(finite, [2.5, 97.5])))


def expected_confusion(probs: np.ndarray, predicted: np.ndarray, columns: int) -> np.ndarray:
    """CBPE's expected (true, predicted) counts: E[c, d] is the sum, over the rows predicted
    d, of each row's probability of class c."""
    found = np.zeros((columns, columns))
    for d in range(columns):
        chosen = predicted == d
        if chosen.any():
            found[:, d] = probs[chosen].sum(axis=0)
    return found


def calibrated(reference_probs: np.ndarray, reference_truth, labels, probs: np.ndarray) -> np.ndarray:
    """`probs` made to agree with how often each class was true on a labelled reference set
    (the old test set) at each level of the model's confidence: an isotonic regression of
    each class against the rest, fitted on the reference rows (NannyML's CBPE calibrates on
    its reference data likewise), then each row renormalised to sum to 1. A class that the
    reference set holds on no row, or on every row, keeps its probabilities."""
    names = [str(plain(v)) for v in labels]
    truth = np.array([str(plain(v)) for v in reference_truth], dtype=object)
    reference_probs = np.asarray(reference_probs, dtype=np.float64)
    out = np.array(probs, dtype=np.float64, copy=True)
    for i, name in enumerate(names):
        hits = (truth == name).astype(np.float64)
        if 0 < hits.sum() < len(hits):
            fitted = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(reference_probs[:, i], hits)
            out[:, i] = fitted.predict(out[:, i])
    totals = out.sum(axis=1, keepdims=True)
    return np.divide(out, totals, out=np.full_like(out, 1.0 / len(names)), where=totals > 0)


def cbpe(measure: Measure, rules: Scoring, probs: np.ndarray, labels, seed: int = 0,
         expected_probs: np.ndarray | None = None) -> Estimate:
    """CBPE's estimate of a confusion-matrix measure on rows without labels: the model's
    predictions (`evaluation.decide` on `probs`, so the threshold applies) and the expected
    confusion matrix of `expected_probs` (the model's probabilities calibrated on the old
    test set, `calibrated`; None: `probs` as they are), whose counts are the sample weights
    of the pipeline's own scikit-learn calls (`evaluation.Score`). Its interval is a
    bootstrap over the rows. It holds as far as the calibration carries over to the new
    rows: a change in what the labels mean (concept drift) is not seen."""
    probs = np.asarray(probs, dtype=np.float64)
    names = tuple(str(plain(v)) for v in labels)
    code = {name: i for i, name in enumerate(names)}
    predicted = np.array([code[str(plain(v))] for v in evaluation.decide(probs, labels, rules)], dtype=np.int64)
    probs = probs if expected_probs is None else np.asarray(expected_probs, dtype=np.float64)
    expected = expected_confusion(probs, predicted, len(names))
    score = evaluation.Score(measure, rules)
    score.pairs.update({(names[c], names[d]): float(expected[c, d]) for c, d in zip(*np.nonzero(expected > 0))})
    score.rows = len(probs)
    value = float(score.metrics()[measure.primary])
    if len(probs) < MIN_BOOTSTRAP_ROWS:
        return Estimate(value, *map(float, measure.figure.bounds))
    positive = code.get(rules.positive) if rules.positive is not None else None
    costs = cost_matrix(rules, names) if measure.primary == "cost" else None
    rng = np.random.default_rng(seed)
    draws = []
    for rows in _resamples(rng, len(probs)):
        weights = _counts(rows, len(probs))  # how many times each row is drawn, per resample
        counts = np.zeros((len(rows), len(names), len(names)))
        for d in range(len(names)):
            chosen = predicted == d
            if chosen.any():
                counts[:, :, d] = weights[:, chosen] @ probs[chosen]
        draws.append(confusion_figure(measure.primary, counts, positive, costs))
    return _percentiles(value, np.concatenate(draws))


def cbpe_undefined(measure: Measure, rules: Scoring, probs: np.ndarray, labels) -> str | None:
    """Why CBPE cannot estimate the measure on these rows, in words; None where it can."""
    names = [str(plain(v)) for v in labels]
    if measure.primary == "precision" and rules.positive is not None:
        predicted = {str(plain(v)) for v in evaluation.decide(np.asarray(probs, float), labels, rules)}
        if rules.positive not in predicted:
            return f"the model predicts the positive class {rules.positive!r} for none of them"
    if measure.primary == "cost" and np.isnan(cost_matrix(rules, tuple(names))).any():
        return "compare.costs does not price every pair of the model's classes"
    return None


def labels_needed(measure: Measure, estimate: Estimate | None, width: float = DEFAULT_WIDTH,
                  rows: int | None = None) -> int:
    """Labelled new rows needed for a 95% interval `width` wide: for accuracy p, the normal
    approximation's z^2 p (1 - p) / (width / 2)^2, at the p within the estimate's own 95%
    interval that needs the most (the one nearest 0.5; no estimate: 0.5), so that the count
    holds wherever in its interval the accuracy is, not only at a point estimate one row can
    put at 1; for a regressor's RMSE, `width` is relative (0.05: +/- 2.5% of it), with normal
    errors the RMSE's relative standard error is 1 / sqrt(2 n).

    A chosen measure's (F1, ROC AUC, MAE, ...) is read off its bootstrap interval measured
    on `rows` labelled rows: an interval narrows as 1 / sqrt(n), so n (interval width /
    `width`)^2 rows give one `width` wide (a relative measure's `width` is a share of its
    value, as the RMSE's). Without such an interval (no labelled rows, an estimate, fewer
    than MIN_BOOTSTRAP_ROWS rows) the count is the task's default figure's: accuracy's at
    p = 0.5, a regressor's RMSE's (`labels_needed_for` says which)."""
    half = width / 2
    if not is_default(measure):
        spread = None if estimate is None else estimate.high - estimate.low
        scale = abs(estimate.value) if measure.relative and estimate is not None else 1.0
        if _scalable(rows, spread) and scale > 0 and math.isfinite(scale):
            return max(1, math.ceil(rows * (spread / (width * scale)) ** 2 - 1e-9))  # 400.0000001 is 400
        if not measure.regression:
            return max(1, math.ceil(Z95**2 * 0.25 / half**2))
    elif not measure.regression:
        p = 0.5 if estimate is None else min(max(0.5, estimate.low), estimate.high)
        p = min(max(p, 0.0), 1.0)
        return max(1, math.ceil(Z95**2 * max(p * (1 - p), 1e-4) / half**2))
    return max(2, math.ceil((Z95 / half) ** 2 / 2))


def _scalable(rows: int | None, spread: float | None) -> bool:
    """Whether a bootstrap interval `spread` wide on `rows` labelled rows can be scaled to another width."""
    return bool(rows) and rows >= MIN_BOOTSTRAP_ROWS and spread is not None and math.isfinite(spread) and spread > 0


def labels_needed_for(measure: Measure, estimate: Estimate | None, rows: int | None) -> str:
    """What `labels_needed` counted for, in words."""
    if is_default(measure):
        return "accuracy" if not measure.regression else "the RMSE, relative to its value"
    spread = None if estimate is None else estimate.high - estimate.low
    if _scalable(rows, spread):
        return (f"{measure.short}, from its bootstrap interval on the {rows} labelled new rows (it narrows as "
                "1 / sqrt(rows))")
    if not measure.regression:
        return f"accuracy, at 0.5 (no interval of {measure.short} measured on labelled new rows to scale)"
    return f"the RMSE, relative to its value (no interval of {measure.short} measured on labelled new rows to scale)"


# --- the forecast and the model's training ----------------------------------------------


@dataclasses.dataclass(frozen=True)
class Forecast:
    """What an option is expected to gain over keeping the model: its target minus the
    model's (more accuracy, or less error), on the same rows, with a 95% interval."""

    option: str
    gain: Estimate
    kept: float  # the current model's target on the rows the option was scored on
    how: str  # how it was found, in words
    cost: dict[str, float]  # what finding it cost (the short training's cost figures)
    figure: str | None = None  # the figure whose target it is (`acc`, `f1`, `rmse`); None: the task's default

    def to_json(self) -> dict[str, Any]:
        return {"option": self.option, "gain": self.gain.to_json(), "kept": self.kept, "how": self.how,
                "cost": self.cost, "figure": self.figure}


def kept_target(measure: Measure, share: float, old: np.ndarray | Outputs, new: np.ndarray | Outputs) -> float:
    """The target of per-row scores, or of a chosen measure's outputs, on the old test set
    and the new rows (see `paired_gain`)."""
    if isinstance(old, Outputs):
        return float((1 - share) * old.value + share * new.value)
    return float((1 - share) * _score(measure, np.asarray(old, float)) + share * _score(measure, np.asarray(new, float)))


def paired_gain(measure: Measure, share: float, old: tuple[np.ndarray | Outputs, np.ndarray | Outputs],
                new: tuple[np.ndarray | Outputs, np.ndarray | Outputs],
                seed_spread: float | None = None, seed: int = 0) -> Estimate:
    """The gain in target of a trained option over the current model, scored on the same
    rows: `old` and `new` are each (the model's, the option's) per-row scores on the old test
    set and on the held-out new rows: whether each row is right (a classifier's accuracy),
    or its squared error (a regressor's RMSE); for a chosen measure, each model's `Outputs`
    on those rows, the measure computed on every resample from them (F1 from the resampled
    (true, predicted) pairs, ROC AUC from the probabilities, MAE from the errors). The
    interval is a paired bootstrap over both sets' rows (the same resample for both models),
    widened by `seed_spread`, the standard deviation of the option's target over the seeds
    of the last comparison (one trained seed does not show it)."""
    rng = np.random.default_rng(seed)
    if isinstance(old[0], Outputs):
        return widened(_paired_outputs(measure, share, old, new, rng), seed_spread)
    draws = {}
    for name, (kept, trained) in (("old", old), ("new", new)):
        kept, trained = np.asarray(kept, float), np.asarray(trained, float)
        rows = rng.integers(0, len(kept), (BOOTSTRAP, len(kept)))
        draws[name] = (_score(measure, kept[rows]), _score(measure, trained[rows]),
                       float(_score(measure, kept[None, :])[0]), float(_score(measure, trained[None, :])[0]))
    def target(i: int):
        return (1 - share) * draws["old"][i] + share * draws["new"][i]

    point = measure.improvement(target(3), target(2))
    low, high = np.percentile(measure.improvement(target(1), target(0)), [2.5, 97.5])
    return widened(Estimate(float(point), float(low), float(high)), seed_spread)


def _paired_outputs(measure: Measure, share: float, old: tuple[Outputs, Outputs], new: tuple[Outputs, Outputs],
                    rng: np.random.Generator) -> Estimate:
    """`paired_gain` of a chosen measure: each set's rows resampled once for both models."""
    draws = {}
    for name, (kept, trained) in (("old", old), ("new", new)):
        found = [(kept.figure(rows), trained.figure(rows)) for rows in _resamples(rng, len(kept))]
        draws[name] = tuple(np.concatenate(side) for side in zip(*found))
    kept_targets = (1 - share) * draws["old"][0] + share * draws["new"][0]
    trained_target = (1 - share) * draws["old"][1] + share * draws["new"][1]
    point = measure.improvement((1 - share) * old[1].value + share * new[1].value,
                                (1 - share) * old[0].value + share * new[0].value)
    return _percentiles(float(point), measure.improvement(trained_target, kept_targets))


def widened(gain: Estimate, seed_spread: float | None) -> Estimate:
    """A one-seed gain's interval widened by the option's `seed_spread` (the standard
    deviation of its target over seeds): each half, and Z95 standard deviations, added in
    quadrature."""
    if not seed_spread:
        return gain
    below, above = gain.value - gain.low, gain.high - gain.value
    return Estimate(gain.value, gain.value - math.hypot(below, Z95 * seed_spread),
                    gain.value + math.hypot(above, Z95 * seed_spread))


def _score(measure: Measure, per_row: np.ndarray) -> np.ndarray:
    """The task's default figure of per-row scores, over the last axis: accuracy, or the RMSE."""
    return np.sqrt(per_row.mean(axis=-1)) if measure.regression else per_row.mean(axis=-1)


UNDERFIT_TAIL = 0.25  # the share of the epochs at the end that is looked at
UNDERFIT_EPOCHS = 8  # fewer epochs than this: too short a curve to tell
UNDERFIT_T = 2.0  # how many standard errors the slope must be above zero: a rise the curve's noise cannot make


def underfitted(curve: Sequence[float], measure: Measure, tolerance: float) -> str | None:
    """Why the model is underfitted, or None: its held-out primary figure (accuracy, or an
    error) per epoch was still improving over the last quarter of its training, by more than
    `tolerance` along a least-squares line over those epochs, with the line's slope more than
    UNDERFIT_T standard errors from zero (a held-out figure on a few hundred rows moves by a
    point from epoch to epoch by chance). Such a model may gain from training longer, with no
    new data at all: the seed article's underfitted model."""
    values = np.array([v for v in curve if v is not None and math.isfinite(v)], dtype=float)
    if len(values) < UNDERFIT_EPOCHS:
        return None
    tail = values[-max(4, round(len(values) * UNDERFIT_TAIL)):]
    epochs = np.arange(len(tail), dtype=float)
    fit = stats.linregress(epochs, tail if measure.higher_is_better else -tail)
    rise = fit.slope * (len(tail) - 1)
    t = fit.slope / fit.stderr if fit.stderr > 0 else math.inf
    if rise <= tolerance or t <= UNDERFIT_T:
        return None
    first = len(values) - len(tail) + 1
    return (f"its held-out {measure.primary} was still improving when its training stopped: by "
            f"{rise:{measure.spec}} along a line over epochs {first} to {len(values)}, a slope {t:.1f} standard "
            "errors from zero; training longer may gain without any new data")


# --- the verdict --------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Cost:
    """What the last comparison cost, read from its records: `value` in `metric`'s units."""

    metric: str
    value: float
    trainings: int


@dataclasses.dataclass(frozen=True)
class Verdict:
    verdict: str
    loss: Estimate | None  # the expected loss on the traffic, in the primary figure's units
    tolerance: float  # in the same units
    gain: float | None  # what the expected gain (or the loss) is worth in the cost's units (point_value set), else None
    reasons: list[str]
    best: Forecast | None = None  # the option forecast to gain the most

    @property
    def exit_status(self) -> int:
        return EXIT_STATUS[self.verdict]


def traffic_loss(measure: Measure, reference: float, current: Estimate, share: float) -> Estimate:
    """How much worse the model is on the traffic than it was on the old test set: `share`
    times the drop of the primary figure (positive: worse), with the current figure's interval."""
    def drop(value: float) -> float:
        return share * -measure.improvement(value, reference)

    ends = sorted((drop(current.low), drop(current.high)))
    return Estimate(drop(current.value), *ends)


def decide(measure: Measure, reference: float, current: Estimate | None, policy: CompareParams,
           diagnosis: Diagnosis, unseen_share: float, cost: Cost | None, point_value: float | None,
           forecasts: Sequence[Forecast] = (), underfit: str | None = None, measured: bool = True) -> Verdict:
    """The verdict and its reasons, with every number it weighed (the rule: this module's
    doc). `reference` is the model's figure on the old test set and `current` on the new rows,
    in `measure`'s units (accuracy; a chosen measure, F1 or MAE; the default RMSE's relative
    errors), `measured` on labelled rows or estimated without labels; the forecasts' gains
    are in the same measure's target. Without a forecast (which measures what an update
    gains on the same rows), "no action" on a measured loss whose interval reaches from
    within the tolerance to beyond URGENT_TIMES tolerances is `too few labels`: the labelled
    rows cannot tell a model that kept its figure from a broken one."""
    verdict = _decide(measure, reference, current, policy, diagnosis, unseen_share, cost, point_value, forecasts,
                      underfit)
    loss = verdict.loss
    tolerance = verdict.tolerance
    if verdict.verdict != NO_ACTION or not measured or forecasts or loss is None or not (loss.low <= tolerance < URGENT_TIMES * tolerance < loss.high):
        return verdict
    reason = (f"too few labelled new rows to tell: the loss's {_interval(measure)} ({_figure(loss.low, measure)} to "
              f"{_figure(loss.high, measure)}) reaches from within the tolerance to beyond {URGENT_TIMES} tolerances, where a "
              "model is broken; "
              "label more new rows (labels_needed says how many)")
    return dataclasses.replace(verdict, verdict=TOO_FEW, reasons=[*verdict.reasons, reason])


def _decide(measure: Measure, reference: float, current: Estimate | None, policy: CompareParams,
            diagnosis: Diagnosis, unseen_share: float, cost: Cost | None, point_value: float | None,
            forecasts: Sequence[Forecast], underfit: str | None) -> Verdict:
    tolerance = policy.tolerance * measure.scale(reference)
    reasons: list[str] = []
    unit = _unit(measure)
    if unseen_share > policy.tolerance:
        reasons.append(f"{unseen_share:.1%} of the labelled new rows are of classes the model has no output for "
                       f"(more than compare.tolerance, {policy.tolerance:g}): it cannot predict them")
    loss = None if current is None else traffic_loss(measure, reference, current, policy.new_traffic_share)
    if loss is not None:
        reasons.append(f"expected loss on the traffic {_figure(loss.value, measure)} {unit} ({_interval(measure)} "
                       f"{_figure(loss.low, measure)} to {_figure(loss.high, measure)}; new_traffic_share "
                       f"{policy.new_traffic_share:g}) against a tolerance of {_figure(tolerance, measure)}")
    if underfit:
        reasons.append(f"the model is underfitted: {underfit}")
    if unseen_share > policy.tolerance:
        return Verdict(URGENT, loss, tolerance, None, reasons, _best(forecasts, measure))
    if forecasts:  # what an update would gain, measured on the same rows, decides: not a figure across two sets
        return _by_forecast(measure, loss, tolerance, policy, reasons, forecasts, cost, point_value)
    if loss is not None and loss.low > URGENT_TIMES * tolerance:
        reasons.append(f"even the interval's low end is more than {URGENT_TIMES} tolerances: the model is "
                       "measurably broken on the new rows")
        return Verdict(URGENT, loss, tolerance, None, reasons)
    if loss is None and measure.regression:
        moved = inputs_moved(diagnosis)
        weighed = (f"domain AUC {diagnosis.domain_auc:.2f}, largest PSI {diagnosis.psi_max:.2f}: "
                   f"{'moved' if moved else 'did not move'}" if inputs_compared(diagnosis) else NOT_COMPARED)
        reasons.append(f"no label-free estimate of a regressor's error: the inputs alone are weighed ({weighed})")
        if not (moved or underfit):
            return Verdict(NO_ACTION, None, tolerance, None, reasons)
        return _worth(measure, None, tolerance, reasons, None, cost, point_value, None)
    beyond = loss is not None and loss.value > tolerance and loss.low > 0
    if not (beyond or underfit):
        if loss is not None and loss.value > tolerance:
            reasons.append("the loss is beyond the tolerance, but its interval reaches zero: the new rows cannot "
                           "tell it from noise")
        else:
            reasons.append("within the tolerance: the model has not lost enough to call for a comparison")
        return Verdict(NO_ACTION, loss, tolerance, None, reasons)
    points = max(loss.value, 0.0) if beyond else None
    return _worth(measure, loss, tolerance, reasons, points, cost, point_value, reference)


def _best(forecasts: Sequence[Forecast], measure: Measure) -> Forecast | None:
    return max(forecasts, key=lambda f: f.gain.value) if forecasts else None


def _by_forecast(measure: Measure, loss: Estimate | None, tolerance: float, policy: CompareParams,
                 reasons: list[str], forecasts: Sequence[Forecast], cost: Cost | None,
                 point_value: float | None) -> Verdict:
    """The verdict read from the forecasts: the best option's gain against the tolerance
    (a regressor's: a share of the model's own target on the same rows), beyond the noise,
    and worth the cost."""
    scale = forecasts[0].kept
    gain_tolerance = policy.tolerance * measure.scale(scale)
    for forecast in forecasts:
        g = forecast.gain
        reasons.append(f"forecast for {forecast.option}: {_signed(g.value, measure)} of target{_of(measure)} "
                       f"({_interval(measure)} "
                       f"{_signed(g.low, measure)} to {_signed(g.high, measure)}) against a tolerance of "
                       f"{_figure(gain_tolerance, measure)}")
    best = _best(forecasts, measure)
    if best.gain.low > URGENT_TIMES * gain_tolerance:
        reasons.append(f"even the low end of {best.option}'s forecast gain is more than {URGENT_TIMES} tolerances: "
                       "the model is far behind what an update reaches on the new rows")
        return Verdict(URGENT, loss, tolerance, None, reasons, best)
    if best.gain.value <= gain_tolerance:
        reasons.append("no option is forecast to gain more than the tolerance: keep the model")
        return Verdict(NO_ACTION, loss, tolerance, None, reasons, best)
    likely = [f for f in forecasts if f.gain.value > gain_tolerance and likely_above_zero(f.gain)]
    if not likely:
        reasons.append(f"{best.option}'s forecast gain cannot be told from noise on these rows (its one-sided "
                       f"{LIKELY:.0%} bound reaches zero): more labelled rows would tell")
        return Verdict(NO_ACTION, loss, tolerance, None, reasons, best)
    chosen = _best(likely, measure)
    verdict = _worth(measure, loss, tolerance, reasons, chosen.gain.value, cost, point_value, scale)
    return dataclasses.replace(verdict, best=chosen)


def likely_above_zero(gain: Estimate) -> bool:
    """Whether a forecast gain is above zero at the one-sided LIKELY bound of its interval
    (its 95% interval read as normal). The forecast's rule: the one-sided 95% bound (the
    interval's low end) missed a third of the simulation's rounds where an update won, and
    the point alone raised false alarms in 6 of 21 where none did (docs/CHECK.md)."""
    spread = (gain.high - gain.low) / (2 * Z95)
    return gain.value - Z_LIKELY * spread > 0


def _worth(measure: Measure, loss: Estimate | None, tolerance: float, reasons: list[str], points: float | None,
           cost: Cost | None, point_value: float | None, scale: float | None) -> Verdict:
    """COMPARE, unless `compare.point_value` is set and `points` (a gain, or a loss to win
    back, in the primary figure's units) are worth less than the last comparison cost."""
    if point_value is None or cost is None or points is None:
        if point_value is None:
            reasons.append("compare.point_value is not set: any gain beyond the tolerance is worth a comparison")
        elif cost is None:
            reasons.append("no earlier comparison's cost is recorded to weigh it against")
        else:
            reasons.append("no figure of the gain to weigh against the comparison's cost")
        return Verdict(COMPARE, loss, tolerance, None, reasons)
    scaled = 100 / measure.scale(scale) if measure.relative else 100
    gain = points * scaled * point_value
    worth = gain >= cost.value
    reasons.append(f"the gain is worth {gain:.4g} {cost.metric} ({points * scaled:.3g} points at "
                   f"compare.point_value {point_value:g}) against {cost.value:.4g} {cost.metric} for the last "
                   f"comparison ({cost.trainings} trainings): {'worth' if worth else 'not worth'} a comparison")
    return Verdict(COMPARE if worth else NO_ACTION, loss, tolerance, gain, reasons)


def _signed(value: float, measure: Measure) -> str:
    return f"{value:+.4g}" if measure.relative else f"{value:+.4f}"


def _figure(value: float, measure: Measure) -> str:
    return f"{value:.4g}" if measure.relative else f"{value:.4f}"


def _unit(measure: Measure) -> str:
    """What the loss on the traffic is a loss of, in words."""
    if measure.primary == "acc":
        return "of accuracy"
    if measure.primary == "rmse":
        return "of the relative error (RMSE / the labels' spread)"
    return f"of {measure.short}" + (f", in {measure.unit}" if measure.unit != measure.words else "")


def _of(measure: Measure) -> str:
    """The chosen measure a target is of, where it is not the task's default."""
    return "" if is_default(measure) else f" in {measure.short}"


def _interval(measure: Measure) -> str:
    """How an interval of the measure is named: a chosen measure's is a bootstrap over the rows."""
    return "95% interval" if is_default(measure) else "95% bootstrap interval"


def comparison_cost(records: Mapping[str, Mapping[str, Any]], metric: str) -> Cost | None:
    """What the last comparison's trainings cost in `metric` (the sum over every strategy's
    seeds, adaptive ones included), from its records' `per_seed` figures; None without records."""
    values = [figures.get(metric) for record in records.values() for figures in record.get("per_seed", {}).values()]
    values = [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
    return Cost(metric, float(sum(values)), len(values)) if values else None


def unseen(labels: Sequence, known: Sequence) -> float:
    """The share of `labels` that are none of `known` (the model's output classes)."""
    if not len(labels):
        return 0.0
    known_text = {str(k) for k in known}
    return float(np.mean([str(label) not in known_text for label in labels]))


def changes_in_words(changes: Sequence[Change]) -> list[dict[str, str]]:
    return [{"kind": c.kind, "evidence": c.evidence} for c in changes]
