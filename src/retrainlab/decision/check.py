""""Is it time?": the check between rounds, without training. Pure functions of the current
model's outputs on the old test set and on the new rows, and of the last comparison's cost.

- With labels, the model's primary figure on the new rows is measured, with a 95% interval
  (accuracy: exact, Clopper-Pearson; a regressor's RMSE: bootstrap over the rows).
- Without labels, a classifier's accuracy on the new rows is estimated by ATC, average
  thresholded confidence (Garg et al., ICLR 2022): on the labelled old test set, find the
  threshold on each row's negative entropy above which the share of rows equals the model's
  accuracy there; the estimate is the share of new rows above it. Its interval is a
  bootstrap over both sets' rows. The estimate reads confidences only, so it cannot see a
  change in what the labels mean (concept drift): the model stays as confident as before.
  A regressor gets no label-free estimate: only its inputs' drift is reported.

The verdict (`decide`), read in params.yaml's `compare` section:
- `urgent` when labelled new rows hold classes the model has no output for, more than
  `tolerance` of them; or when the loss on the traffic is, even at its interval's low end,
  more than URGENT_TIMES times the tolerance;
- `compare` when the expected loss on the traffic exceeds the tolerance and the gain is
  worth the comparison's cost: with `compare.point_value` set, the points lost times their
  value must reach what the last comparison cost (its records' cost figure); without it,
  any loss beyond the tolerance is worth it. Without a label-free estimate (a regressor
  without labels), inputs that moved call for a comparison;
- `no action` otherwise.
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
from retrainlab.decision.change import AUC_MOVED, PSI_LARGE, Change
from retrainlab.decision.diagnosis import Diagnosis
from retrainlab.measure.task import Measure

NO_ACTION, COMPARE, URGENT = "no action", "compare", "urgent"
VERDICTS = (NO_ACTION, COMPARE, URGENT)
# The exit status of `retrainlab check` for each verdict: distinct from an error's (2) and a
# crash's (1), so that cron or a CI job can act on it.
EXIT_STATUS = {NO_ACTION: 0, COMPARE: 3, URGENT: 4}
URGENT_TIMES = 5  # a loss this many tolerances beyond, at its interval's low end: broken, not drifting
MEASURED, ESTIMATED, NOT_ESTIMATED = "measured", "estimated (ATC)", "not estimated"
BOOTSTRAP = 1000
Z95 = float(stats.norm.ppf(0.975))
DEFAULT_WIDTH = 0.05  # the interval width the labels needed are counted for: +/- 0.025


@dataclasses.dataclass(frozen=True)
class Estimate:
    value: float
    low: float
    high: float

    def to_json(self) -> dict[str, float]:
        return dataclasses.asdict(self)


# --- the figures --------------------------------------------------------------------------


def accuracy(correct: np.ndarray) -> Estimate:
    """The share of correct rows with its exact (Clopper-Pearson) 95% interval."""
    n, k = len(correct), int(np.sum(correct))
    low = float(stats.beta.ppf(0.025, k, n - k + 1)) if k else 0.0
    high = float(stats.beta.ppf(0.975, k + 1, n - k)) if k < n else 1.0
    return Estimate(k / n, low, high)


def rmse(predicted: np.ndarray, actual: np.ndarray, seed: int = 0) -> Estimate:
    """The root mean squared error with a bootstrap 95% interval over the rows."""
    squared = (np.asarray(predicted, float) - np.asarray(actual, float)) ** 2
    rng = np.random.default_rng(seed)
    draws = np.sqrt(squared[rng.integers(0, len(squared), (BOOTSTRAP, len(squared)))].mean(axis=1))
    return Estimate(float(np.sqrt(squared.mean())), *map(float, np.percentile(draws, [2.5, 97.5])))


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


def labels_needed(measure: Measure, value: float | None, width: float = DEFAULT_WIDTH) -> int:
    """Labelled new rows needed for a 95% interval `width` wide: for accuracy p, the normal
    approximation's z^2 p (1 - p) / (width / 2)^2 (p unknown: 0.5, the most); for a
    regressor's RMSE, `width` is relative (0.05: +/- 2.5% of it), with normal errors the
    RMSE's relative standard error is 1 / sqrt(2 n)."""
    half = width / 2
    if measure.higher_is_better:
        p = 0.5 if value is None else min(max(value, 0.0), 1.0)
        return max(1, math.ceil(Z95**2 * max(p * (1 - p), 1e-4) / half**2))
    return max(2, math.ceil((Z95 / half) ** 2 / 2))


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
    gain: float | None  # the loss's worth in the cost's units (point_value set), else None
    reasons: list[str]

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
           diagnosis: Diagnosis, unseen_share: float, cost: Cost | None, point_value: float | None) -> Verdict:
    """The verdict and its reasons, with every number it weighed (the rule: this module's doc)."""
    tolerance = policy.tolerance * measure.scale(reference)
    reasons: list[str] = []
    unit = "of accuracy" if measure.higher_is_better else f"of {measure.primary.upper()}, in the label's units"
    if unseen_share > policy.tolerance:
        reasons.append(f"{unseen_share:.1%} of the labelled new rows are of classes the model has no output for "
                       f"(more than compare.tolerance, {policy.tolerance:g}): it cannot predict them")
    if current is None:
        moved = diagnosis.domain_auc >= AUC_MOVED or diagnosis.psi_max >= PSI_LARGE
        reasons.append("no label-free estimate of a regressor's error: the inputs alone are weighed "
                       f"(domain AUC {diagnosis.domain_auc:.2f}, largest PSI {diagnosis.psi_max:.2f}: "
                       f"{'moved' if moved else 'did not move'})")
        word = COMPARE if moved else NO_ACTION
        return Verdict(word, None, tolerance, None, reasons)
    loss = traffic_loss(measure, reference, current, policy.new_traffic_share)
    scaled = 100 if measure.higher_is_better else 100 / measure.scale(reference)
    described = (f"expected loss on the traffic {_figure(loss.value, measure)} {unit} (95% interval "
                 f"{_figure(loss.low, measure)} to {_figure(loss.high, measure)}; new_traffic_share "
                 f"{policy.new_traffic_share:g}) against a tolerance of {_figure(tolerance, measure)}")
    reasons.append(described)
    gain = None if point_value is None else max(loss.value, 0.0) * scaled * point_value
    if unseen_share > policy.tolerance:
        return Verdict(URGENT, loss, tolerance, gain, reasons)
    if loss.low > URGENT_TIMES * tolerance:
        reasons.append(f"even the interval's low end is more than {URGENT_TIMES} tolerances: the model is "
                       "measurably broken on the new rows")
        return Verdict(URGENT, loss, tolerance, gain, reasons)
    if loss.value <= tolerance:
        reasons.append("within the tolerance: the model has not lost enough to call for a comparison (a gain an "
                       "update would get from more data alone is not seen here: docs/CHECK.md)")
        return Verdict(NO_ACTION, loss, tolerance, gain, reasons)
    if point_value is None or cost is None:
        why = ("compare.point_value is not set: any loss beyond the tolerance is worth a comparison"
               if point_value is None else "no earlier comparison's cost is recorded to weigh it against")
        reasons.append(why)
        return Verdict(COMPARE, loss, tolerance, gain, reasons)
    worth = gain >= cost.value
    reasons.append(f"the loss is worth {gain:.4g} {cost.metric} ({loss.value * scaled:.3g} points at "
                   f"compare.point_value {point_value:g}) against {cost.value:.4g} {cost.metric} for the last "
                   f"comparison ({cost.trainings} trainings): {'worth' if worth else 'not worth'} a comparison")
    return Verdict(COMPARE if worth else NO_ACTION, loss, tolerance, gain, reasons)


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
