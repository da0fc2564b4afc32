"""Side by side, and a recommendation with its reasons: pure functions of the strategies' records.

The policy (knobs in params.yaml's `compare` section):
- the target is accuracy on the traffic the model will see next:
  `(1 - new_traffic_share) * acc_old + new_traffic_share * acc_new`, per seed;
- a strategy is as good as the best when even the low end of its target's 95% interval
  (over the seeds) is no more than `tolerance` below the best mean: it is shown to be good
  enough, so an option that is good on some seeds and bad on others does not pass;
- it must forget (mean over seeds) no more than `max_forgetting`;
- of those, the cheapest wins. Leaving the model alone (the baseline) costs nothing to
  adopt, so it wins whenever it is good enough. If nothing passes both tests, the most
  accurate strategy under the forgetting ceiling is recommended, and the report says so.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from retrainlab import escape
from retrainlab.config import CompareParams
from retrainlab.evaluation import FORGETTING, bounds_of, mean_interval
from retrainlab.record import StrategyRecord
from retrainlab.strategies import BASELINE

LEAVE_ALONE = BASELINE
COST_PREFERENCE = ("cost_usd", "gpu_seconds", "cpu_seconds")
TABLE_FIGURES = (
    "acc_old", "acc_new", "acc_all", "f1_old", "f1_new", "f1_all", "forgetting",
    "wall_seconds", "cpu_seconds", "gpu_seconds", "gpu_util_seconds", "cost_usd", "samples",
)


@dataclasses.dataclass(frozen=True)
class Interval:
    mean: float
    low: float
    high: float

    @classmethod
    def of(cls, values, figure: str) -> Interval:
        return cls(*mean_interval(list(values), bounds=bounds_of(figure)))

    def overlaps(self, other: Interval) -> bool:
        return self.low <= other.high and other.low <= self.high

    def text(self, digits: int = 3) -> str:
        if self.low == self.high:
            return f"{self.mean:.{digits}f}"
        return f"{self.mean:.{digits}f} [{self.low:.{digits}f}, {self.high:.{digits}f}]"


@dataclasses.dataclass(frozen=True)
class Assessment:
    strategy: str
    target: Interval
    forgetting: Interval
    adoption_cost: float  # what choosing it costs: its training cost, 0 for leaving the model alone
    within_tolerance: bool
    forgetting_ok: bool

    @property
    def acceptable(self) -> bool:
        return self.within_tolerance and self.forgetting_ok


@dataclasses.dataclass(frozen=True)
class Verdict:
    recommended: str
    best: str
    cost_metric: str
    assessments: dict[str, Assessment]
    separated: bool  # whether the two most accurate strategies' intervals are apart
    fallback: bool  # nothing passed both tests
    reasons: list[str]

    def status(self, strategy: str) -> str:
        a = self.assessments[strategy]
        if strategy == self.recommended:
            return "recommended"
        if a.acceptable:
            return "acceptable, costs more"
        problems = []
        if not a.within_tolerance:
            problems.append("less accurate")
        if not a.forgetting_ok:
            problems.append("forgets too much")
        return "rejected: " + " and ".join(problems)


def target_values(per_seed: Mapping[str, Mapping[str, float]], share: float) -> list[float]:
    return [(1 - share) * f["acc_old"] + share * f["acc_new"] for f in per_seed.values()]


def choose_cost_metric(records: Mapping[str, StrategyRecord], wanted: str) -> str:
    """The cost figure to minimise: as asked, or for `auto` the first every strategy has and uses."""
    if wanted != "auto":
        return wanted
    for name in COST_PREFERENCE:
        values = [r.mean(name) for r in records.values()]
        if all(v is not None for v in values) and (name == "cpu_seconds" or any(values)):
            return name
    return "cpu_seconds"


def recommend(records: Mapping[str, StrategyRecord], policy: CompareParams) -> Verdict:
    """Apply the policy to the strategies' records (the metrics/<strategy>.json contents)."""
    cost_metric = choose_cost_metric(records, policy.cost_metric)
    share = policy.new_traffic_share
    targets = {s: Interval.of(target_values(r.per_seed, share), "target") for s, r in records.items()}
    best = max(targets, key=lambda s: targets[s].mean)
    assessments = {}
    for strategy, record in records.items():
        forgetting = Interval.of(record.values(FORGETTING), FORGETTING)
        assessments[strategy] = Assessment(
            strategy=strategy,
            target=targets[strategy],
            forgetting=forgetting,
            adoption_cost=0.0 if strategy == LEAVE_ALONE else float(record.mean(cost_metric) or 0.0),
            within_tolerance=strategy == best or targets[strategy].low >= targets[best].mean - policy.tolerance,
            forgetting_ok=forgetting.mean <= policy.max_forgetting,
        )
    acceptable = [a for a in assessments.values() if a.acceptable]
    fallback = not acceptable
    if fallback:
        pool = [a for a in assessments.values() if a.forgetting_ok] or list(assessments.values())
        chosen = max(pool, key=lambda a: a.target.mean)
    else:
        chosen = min(acceptable, key=lambda a: (a.adoption_cost, -a.target.mean))
    ranked = sorted(targets, key=lambda s: targets[s].mean, reverse=True)
    separated = len(ranked) < 2 or not targets[ranked[0]].overlaps(targets[ranked[1]])
    verdict = Verdict(chosen.strategy, best, cost_metric, assessments, separated, fallback, [])
    verdict.reasons.extend(explain(verdict, policy, records))
    return verdict


def explain(verdict: Verdict, policy: CompareParams, records: Mapping[str, StrategyRecord]) -> list[str]:
    """The recommendation in plain words, with the numbers behind it."""
    a = verdict.assessments
    chosen, best = a[verdict.recommended], a[verdict.best]
    share = f"{policy.new_traffic_share:.0%} new traffic"
    lines = []
    if verdict.fallback:
        lines.append(
            f"No strategy is both within {policy.tolerance:.3f} of the best target and under the forgetting "
            f"ceiling of {policy.max_forgetting:.3f}; {verdict.recommended} is the most accurate one that "
            f"forgets no more than the ceiling."
        )
    elif verdict.recommended == verdict.best:
        lines.append(
            f"{verdict.recommended} has the best target accuracy ({share}): {chosen.target.text()}, "
            f"and no cheaper option is shown to come within {policy.tolerance:.3f} of it."
        )
    else:
        lines.append(
            f"{verdict.recommended} reaches a target accuracy ({share}) of {chosen.target.text()}: even the low "
            f"end of its interval is within {policy.tolerance:.3f} of the best ({verdict.best}, "
            f"{best.target.text()}), and it costs less to adopt."
        )
    if verdict.recommended == LEAVE_ALONE and not verdict.fallback:
        lines.append("Leaving the model alone costs nothing and is good enough: no retraining is needed.")
    for strategy in a:
        if strategy == verdict.recommended:
            continue
        status = verdict.status(strategy)
        detail = f"target {a[strategy].target.text()}, forgetting {a[strategy].forgetting.text()}"
        if strategy != LEAVE_ALONE:
            detail += f", {verdict.cost_metric} {a[strategy].adoption_cost:.4g}"
        lines.append(f"{strategy}: {status} ({detail}).")
    ranked = sorted(a, key=lambda s: a[s].target.mean, reverse=True)
    n_seeds = len(next(iter(records.values())).per_seed)
    if n_seeds < 2:
        lines.append("Only one seed was trained, so there is no measure of noise: set `seeds` to 3 or more.")
    elif not verdict.separated:
        lines.append(
            f"Too close to call: the 95% intervals of {ranked[0]} and {ranked[1]} overlap over {n_seeds} seeds, "
            "so the evidence does not separate them; more seeds or more test data would."
        )
    return lines


def pareto_front(points: Mapping[str, tuple[float, float]]) -> list[str]:
    """Strategies no other beats on both cost (lower) and accuracy (higher), cheapest first."""
    front = []
    for name, (cost, accuracy) in points.items():
        dominated = any(
            c <= cost and acc >= accuracy and (c < cost or acc > accuracy)
            for other, (c, acc) in points.items()
            if other != name
        )
        if not dominated:
            front.append(name)
    return sorted(front, key=lambda n: points[n][0])


def table(records: Mapping[str, StrategyRecord], verdict: Verdict) -> list[dict[str, Any]]:
    """One row per strategy: mean and 95% interval of every figure, its target and its verdict."""
    rows = []
    for strategy, record in records.items():
        row: dict[str, Any] = {"strategy": strategy, "verdict": verdict.status(strategy)}
        assessment = verdict.assessments[strategy]
        row |= {"target": assessment.target.mean, "target_low": assessment.target.low,
                "target_high": assessment.target.high, "adoption_cost": assessment.adoption_cost}
        for figure in TABLE_FIGURES:
            if figure in record.means:
                interval = record.ci95[figure]
                row |= {figure: record.means[figure], f"{figure}_low": interval.low, f"{figure}_high": interval.high}
        row["model_version"] = record.mlflow.model_version
        rows.append(row)
    return rows


def markdown(rows: list[dict[str, Any]], verdict: Verdict, diagnostics: Mapping[str, Any], policy: CompareParams) -> str:
    """The report a person reads: recommendation, reasons, table, what the new data is like."""
    def cell(row, figure, digits=3):
        if figure not in row:
            return ""
        return Interval(row[figure], row[f"{figure}_low"], row[f"{figure}_high"]).text(digits)

    lines = [
        "# Should you retrain? The comparison",
        "",
        f"**Recommendation: {verdict.recommended}.**",
        "",
        *[f"- {reason}" for reason in verdict.reasons],
        "",
        "## The strategies side by side",
        "",
        "Mean over the seeds, with the 95% interval in brackets. Target = "
        f"{1 - policy.new_traffic_share:.2f} x acc_old + {policy.new_traffic_share:.2f} x acc_new.",
        "",
        "| strategy | verdict | target | acc_old | acc_new | acc_all | f1_all | forgetting | "
        "wall s | CPU s | GPU s | cost to adopt | model version |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        lines.append(
            f"| {row['strategy']} | {row['verdict']} | {cell(row, 'target')} | {cell(row, 'acc_old')} | "
            f"{cell(row, 'acc_new')} | {cell(row, 'acc_all')} | {cell(row, 'f1_all')} | {cell(row, 'forgetting')} | "
            f"{cell(row, 'wall_seconds', 2)} | {cell(row, 'cpu_seconds', 2)} | {cell(row, 'gpu_seconds', 2)} | "
            f"{row['adoption_cost']:.4g} {verdict.cost_metric} | {row['model_version']} |"
        )
    d = diagnostics
    lines += [
        "",
        "## What kind of new data is this?",
        "",
        f"- Size: {d['rows_new']} new rows against {d['rows_old']} old ({d['size_ratio']:.2f}x).",
        f"- Classes only the new data has: {', '.join(map(escape.markdown, d['new_classes'])) or 'none'}.",
        f"- Label distribution moved by {d['label_shift_tv']:.3f} (total variation; 0 = same, 1 = disjoint).",
        f"- Inputs: a classifier tells new rows from old with AUC {d['domain_auc']:.3f} (0.5 = indistinguishable); "
        f"largest per-feature PSI {d['psi_max']:.3f} (above 0.25 is a large shift), mean {d['psi_mean']:.3f}.",
        "",
        "| most shifted features | kind | PSI | KS |",
        "| --- | --- | --- | --- |",
        *[
            f"| {escape.markdown(f['feature'])} | {f['kind']} | {f['psi']:.3f} | "
            + (f"{f['ks']:.3f} |" if "ks" in f else "|")
            for f in d["top_shifted_features"]
        ],
        "",
        "## The policy",
        "",
        f"new_traffic_share {policy.new_traffic_share}, tolerance {policy.tolerance}, max_forgetting "
        f"{policy.max_forgetting}, cost figure {verdict.cost_metric} (leaving the model alone costs 0 to adopt). "
        "The cheapest strategy whose target interval lies, low end included, within the tolerance of the best "
        "mean, and whose mean forgetting is under the ceiling, is recommended.",
        "",
        "![accuracy against cost](accuracy_vs_cost.png)",
        "",
        "![learning curves](learning_curves.png)",
        "",
    ]
    return "\n".join(lines)
