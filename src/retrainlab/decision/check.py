""""Is it time?": the check between rounds. Pure functions of the current model's outputs on
the old test set and on the new rows, of the short trainings that forecast what each option
would gain (retrainlab.pipeline.forecast trains them), and of the last comparison's cost.

- With labels, the model's primary figure on the new rows is measured, with a 95% interval
  (accuracy: exact, Clopper-Pearson). A regressor's error is compared across sets as its
  *relative error*, the RMSE over the RMSE of predicting those rows' own mean (sqrt(1 - R²)),
  with a bootstrap interval: an error in the label's units cannot be compared across two
  sets whose labels spread differently.
- Without labels, a classifier's accuracy on the new rows is estimated by ATC, average
  thresholded confidence (Garg et al., ICLR 2022): on the labelled old test set, find the
  threshold on each row's negative entropy above which the share of rows equals the model's
  accuracy there; the estimate is the share of new rows above it. Its interval is a
  bootstrap over both sets' rows. It reads confidences only, so it cannot see a change in
  what the labels mean (concept drift). A regressor's error is not estimated without labels.
- The forecast: an option trained once, briefly, on part of the labelled new rows as the
  comparison would train it, and scored with the current model on the same rows (the old
  test set and the rest of the new rows): its gain in target over keeping the model, with
  a paired bootstrap interval over those rows, widened by the option's own spread over the
  seeds where the last comparison recorded it (`paired_gain`).
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
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy import stats

from retrainlab.config import CompareParams
from retrainlab.decision.change import NOT_COMPARED, Change, inputs_compared, inputs_moved
from retrainlab.decision.diagnosis import Diagnosis
from retrainlab.measure.task import Measure

NO_ACTION, COMPARE, URGENT = "no action", "compare", "urgent"
TOO_FEW = "too few labels"  # what would be "no action", on an interval too wide to tell it from "urgent"
VERDICTS = (NO_ACTION, COMPARE, URGENT, TOO_FEW)
# The exit status of `retrainlab check` for each verdict: distinct from an error's (2) and a
# crash's (1), so that cron or a CI job can act on it.
EXIT_STATUS = {NO_ACTION: 0, COMPARE: 3, URGENT: 4, TOO_FEW: 5}
URGENT_TIMES = 5  # a loss this many tolerances beyond, at its interval's low end: broken, not drifting
MEASURED, ESTIMATED, NOT_ESTIMATED = "measured", "estimated (ATC)", "not estimated"
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


def labels_needed(measure: Measure, estimate: Estimate | None, width: float = DEFAULT_WIDTH) -> int:
    """Labelled new rows needed for a 95% interval `width` wide: for accuracy p, the normal
    approximation's z^2 p (1 - p) / (width / 2)^2, at the p within the estimate's own 95%
    interval that needs the most (the one nearest 0.5; no estimate: 0.5), so that the count
    holds wherever in its interval the accuracy is, not only at a point estimate one row can
    put at 1; for a regressor's RMSE, `width` is relative (0.05: +/- 2.5% of it), with normal
    errors the RMSE's relative standard error is 1 / sqrt(2 n)."""
    half = width / 2
    if measure.higher_is_better:
        p = 0.5 if estimate is None else min(max(0.5, estimate.low), estimate.high)
        p = min(max(p, 0.0), 1.0)
        return max(1, math.ceil(Z95**2 * max(p * (1 - p), 1e-4) / half**2))
    return max(2, math.ceil((Z95 / half) ** 2 / 2))


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

    def to_json(self) -> dict[str, Any]:
        return {"option": self.option, "gain": self.gain.to_json(), "kept": self.kept, "how": self.how,
                "cost": self.cost}


def kept_target(measure: Measure, share: float, old: np.ndarray, new: np.ndarray) -> float:
    """The target of per-row scores on the old test set and the new rows (see `paired_gain`)."""
    return float((1 - share) * _score(measure, np.asarray(old, float)) + share * _score(measure, np.asarray(new, float)))


def paired_gain(measure: Measure, share: float, old: tuple[np.ndarray, np.ndarray], new: tuple[np.ndarray, np.ndarray],
                seed_spread: float | None = None, seed: int = 0) -> Estimate:
    """The gain in target of a trained option over the current model, scored on the same
    rows: `old` and `new` are each (the model's, the option's) per-row scores on the old test
    set and on the held-out new rows: whether each row is right (a classifier), or its
    squared error (a regressor). The interval is a paired bootstrap over both sets' rows,
    widened by `seed_spread`, the standard deviation of the option's target over the seeds
    of the last comparison (one trained seed does not show it)."""
    rng = np.random.default_rng(seed)
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
    """The primary figure of per-row scores, over the last axis: accuracy, or the RMSE."""
    return per_row.mean(axis=-1) if measure.higher_is_better else np.sqrt(per_row.mean(axis=-1))


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
    doc). `reference` is the model's figure on the old test set and `current` on the new rows
    (a regressor's: their relative errors), `measured` on labelled rows or estimated without
    labels. Without a forecast (which measures what an update gains on the same rows), "no
    action" on a measured loss whose interval reaches from within the tolerance to beyond
    URGENT_TIMES tolerances is `too few labels`: the labelled rows cannot tell a model that
    kept its figure from a broken one."""
    verdict = _decide(measure, reference, current, policy, diagnosis, unseen_share, cost, point_value, forecasts,
                      underfit)
    loss = verdict.loss
    tolerance = verdict.tolerance
    if verdict.verdict != NO_ACTION or not measured or forecasts or loss is None or not (loss.low <= tolerance < URGENT_TIMES * tolerance < loss.high):
        return verdict
    reason = (f"too few labelled new rows to tell: the loss's 95% interval ({_figure(loss.low, measure)} to "
              f"{_figure(loss.high, measure)}) reaches from within the tolerance to beyond {URGENT_TIMES} tolerances, where a "
              "model is broken; "
              "label more new rows (labels_needed says how many)")
    return dataclasses.replace(verdict, verdict=TOO_FEW, reasons=[*verdict.reasons, reason])


def _decide(measure: Measure, reference: float, current: Estimate | None, policy: CompareParams,
            diagnosis: Diagnosis, unseen_share: float, cost: Cost | None, point_value: float | None,
            forecasts: Sequence[Forecast], underfit: str | None) -> Verdict:
    tolerance = policy.tolerance * measure.scale(reference)
    reasons: list[str] = []
    unit = "of accuracy" if measure.higher_is_better else "of the relative error (RMSE / the labels' spread)"
    if unseen_share > policy.tolerance:
        reasons.append(f"{unseen_share:.1%} of the labelled new rows are of classes the model has no output for "
                       f"(more than compare.tolerance, {policy.tolerance:g}): it cannot predict them")
    loss = None if current is None else traffic_loss(measure, reference, current, policy.new_traffic_share)
    if loss is not None:
        reasons.append(f"expected loss on the traffic {_figure(loss.value, measure)} {unit} (95% interval "
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
    if loss is None and not measure.higher_is_better:
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
        reasons.append(f"forecast for {forecast.option}: {_signed(g.value, measure)} of target (95% interval "
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
    scaled = 100 if measure.higher_is_better else 100 / measure.scale(scale)
    gain = points * scaled * point_value
    worth = gain >= cost.value
    reasons.append(f"the gain is worth {gain:.4g} {cost.metric} ({points * scaled:.3g} points at "
                   f"compare.point_value {point_value:g}) against {cost.value:.4g} {cost.metric} for the last "
                   f"comparison ({cost.trainings} trainings): {'worth' if worth else 'not worth'} a comparison")
    return Verdict(COMPARE if worth else NO_ACTION, loss, tolerance, gain, reasons)


def _signed(value: float, measure: Measure) -> str:
    return f"{value:+.4f}" if measure.higher_is_better else f"{value:+.4g}"


def _figure(value: float, measure: Measure) -> str:
    return f"{value:.4f}" if measure.higher_is_better else f"{value:.4g}"


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
