"""Side by side, and a recommendation with its reasons: pure functions of the strategies' records.

The figures are the task's (retrainlab.measure.task): accuracy for a classifier, RMSE (lower
is better) for a regressor; "better", "gain" and "forgets" follow the figure's direction,
and a regressor's tolerance and forgetting ceiling are shares of the baseline's own error.
The policy (knobs in params.yaml's `compare` section):
- the target is the primary figure on the traffic the model will see next,
  `(1 - new_traffic_share) * acc_old + new_traffic_share * acc_new`, per seed;
- forgetting matters as far as old traffic does: an option may forget at most
  `max_forgetting / (1 - new_traffic_share)` (mean over seeds), the accuracy lost on old
  traffic then being at most `max_forgetting`; with no old traffic left (share 1.0) there
  is no ceiling;
- the best is the option with the highest mean target among those under that ceiling;
- every other option is compared with the best seed by seed (the seeds share the data
  splits): the paired differences of their targets, with a 95% interval. It is "as good"
  when even the low end of that interval is within `tolerance` of the best, "less
  accurate" when the whole interval is below zero and not within the tolerance, and
  "not separated" otherwise: the evidence can tell neither way;
- of the best and the options as good as it, the cheapest is recommended. Leaving the
  model alone costs nothing to adopt, so it wins whenever it is as good. An option not
  separated from the best is never recommended over it: the best is chosen by the rule
  "the higher mean of two options the evidence cannot separate", and the report says so.

`adapt_seeds` trains more seeds, for the options still in contention only, while some are
not separated, up to `compare.max_seeds` seeds or `compare.budget_seconds` of training.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Mapping
from typing import Any

from retrainlab.base.escape import Markdown, lines, md
from retrainlab.config import CompareParams
from retrainlab.decision.diagnosis import Diagnosis
from retrainlab.measure.evaluation import FORGETTING, mean_interval
from retrainlab.measure.record import StrategyRecord
from retrainlab.measure.task import BY_STEM, Measure, of_figures
from retrainlab.strategies import BASELINE, CATALOGUE

LEAVE_ALONE = BASELINE
COST_PREFERENCE = ("cost_usd", "gpu_seconds", "cpu_seconds")
COST_UNITS = {"cost_usd": "USD", "gpu_seconds": "GPU-seconds", "cpu_seconds": "CPU-seconds", "wall_seconds": "seconds"}
TABLE_FIGURES = (
    *(f"{stem}_{test_set}" for stem in BY_STEM for test_set in ("old", "new", "all")), "forgetting",
    "wall_seconds", "cpu_seconds", "gpu_seconds", "gpu_util_seconds", "cost_usd", "samples",
)
# How an option stands against the best one.
BEST, AS_GOOD, NOT_SEPARATED, WORSE = "best", "as good", "not separated", "less accurate"


@dataclasses.dataclass(frozen=True)
class Interval:
    mean: float
    low: float
    high: float

    @classmethod
    def of(cls, values, figure: str | None = None, measure: Measure | None = None) -> Interval:
        bounds = (measure or of_figures({})).bounds(figure) if figure else None
        return cls(*mean_interval(list(values), bounds=bounds))

    def flipped(self) -> Interval:
        """The interval of the negated values."""
        return Interval(-self.mean, -self.high, -self.low)

    def overlaps(self, other: Interval) -> bool:
        return self.low <= other.high and other.low <= self.high

    def text(self, digits: int = 3) -> str:
        if self.low == self.high:
            return f"{self.mean:.{digits}f}"
        return f"{self.mean:.{digits}f} [{self.low:.{digits}f}, {self.high:.{digits}f}]"

    def signed(self, digits: int = 3) -> str:
        if self.low == self.high:
            return f"{self.mean:+.{digits}f}"
        return f"{self.mean:+.{digits}f} [{self.low:+.{digits}f}, {self.high:+.{digits}f}]"


@dataclasses.dataclass(frozen=True)
class Assessment:
    strategy: str
    target: Interval
    forgetting: Interval
    adoption_cost: float  # what choosing it costs: its training cost, 0 for leaving the model alone
    seeds: int
    forgetting_ok: bool
    standing: str  # BEST, AS_GOOD, NOT_SEPARATED or WORSE
    # paired: how much better its target is than the best's (negative: worse), over the seeds both have
    gap: Interval | None = None

    @property
    def acceptable(self) -> bool:
        return self.forgetting_ok and self.standing in (BEST, AS_GOOD)


@dataclasses.dataclass(frozen=True)
class Verdict:
    recommended: str
    best: str
    cost_metric: str
    assessments: dict[str, Assessment]
    ceiling: float  # the forgetting ceiling at this traffic share, in the figure's units (inf: none)
    fallback: bool  # no option is under the forgetting ceiling
    rule: str  # why the recommended option, in a few words
    reasons: list[str]
    measure: Measure = of_figures({})  # the task's: what the figures are, which way is better
    tolerance: float = 0.0  # compare.tolerance in the figure's units
    # The cost of errors' unit and the rows a week (compare.cost_unit, rows_per_week), when it is the measure.
    money: tuple[str, float | None] | None = None

    def difference(self, gap: Interval) -> Interval:
        """A gap as the figure's own difference (a regressor's: its error minus the best's)."""
        return gap if self.measure.higher_is_better else gap.flipped()

    @property
    def separated(self) -> bool:
        """Whether the evidence decides between the best and every other option."""
        return not self.contenders()[1:]

    def contenders(self) -> list[str]:
        """The best, then the options under the ceiling the evidence cannot tell from it."""
        return [self.best] + [s for s, a in self.assessments.items()
                              if a.standing == NOT_SEPARATED and a.forgetting_ok]

    def status(self, strategy: str) -> str:
        """Its verdict in a few words, with the number behind a rejection."""
        a = self.assessments[strategy]
        if strategy == self.recommended:
            return "recommended"
        problems = []
        if a.standing == WORSE:
            problems.append(f"{self.measure.worse}: " + (f"{-a.gap.mean:.3f} below the best" if not self.measure.relative
                                                 else f"{-a.gap.mean:.3g} above the best"))
        if not a.forgetting_ok:
            problems.append(f"forgets too much: {self.measure.number(a.forgetting.mean)} against a ceiling of "
                            f"{ceiling_text(self.ceiling, self.measure)}")
        if problems:
            return "rejected: " + "; ".join(problems)
        if a.standing == NOT_SEPARATED:
            return f"not separated from {self.best}: more seeds would tell"
        return "as good, costs more"

    def word(self, strategy: str) -> str:
        """Its verdict as a table cell: recommended, costs more (as good as the best, or the
        best), not separated, less accurate, or forgets too much."""
        a = self.assessments[strategy]
        if strategy == self.recommended:
            return "recommended"
        if not a.forgetting_ok:
            return "forgets too much"
        if a.standing == WORSE:
            return self.measure.worse
        return "costs more" if a.standing in (BEST, AS_GOOD) else a.standing


def forgetting_ceiling(policy: CompareParams, scale: float = 1.0) -> float:
    """The most an option may forget at this traffic share: max_forgetting on all-old traffic,
    scaled by the old traffic's share, so none when all traffic is new; times `scale`, what
    max_forgetting is a share of (a regressor's baseline error on the old data)."""
    old_share = 1 - policy.new_traffic_share
    return math.inf if old_share <= 0 else scale * policy.max_forgetting / old_share


def ceiling_text(ceiling: float, measure: Measure) -> str:
    """The forgetting ceiling as every message says it: the report's reasons and policy, the
    promotion gate."""
    return "none (all traffic is new)" if math.isinf(ceiling) else measure.number(ceiling)


def target_values(per_seed: Mapping[str, Mapping[str, float]], share: float,
                  measure: Measure | None = None) -> dict[str, float]:
    """Each seed's target (the task's primary figure on next traffic)."""
    measure = measure or of_figures(next(iter(per_seed.values()), {}))
    return {seed: measure.target(figures, share) for seed, figures in per_seed.items()}


def paired(values: Mapping[str, float], reference: Mapping[str, float]) -> Interval:
    """Mean and 95% interval of the per-seed differences over the seeds both have."""
    common = [seed for seed in values if seed in reference]
    return Interval.of([values[seed] - reference[seed] for seed in common])


def choose_cost_metric(records: Mapping[str, StrategyRecord], wanted: str) -> str:
    """The cost figure to minimise: as asked, or for `auto` the first every strategy has and uses."""
    if wanted != "auto":
        return wanted
    for name in COST_PREFERENCE:
        values = [r.mean(name) for r in records.values()]
        if all(v is not None for v in values) and any(values):
            return name
    return "cpu_seconds"  # every record has it, even when it rounds to zero


def standing(gap: Interval, tolerance: float) -> str:
    if gap.low >= -tolerance:
        return AS_GOOD
    if gap.high < 0:
        return WORSE
    return NOT_SEPARATED


def recommend(records: Mapping[str, StrategyRecord], policy: CompareParams) -> Verdict:
    """Apply the policy to the strategies' records (the records/<strategy>.json contents)."""
    measure = next(iter(records.values())).measure
    keep = records.get(LEAVE_ALONE)
    cost_metric = choose_cost_metric(records, policy.cost_metric)
    ceiling = forgetting_ceiling(policy, measure.scale(keep.mean(measure.old) if keep else None))
    per_seed = {s: target_values(r.per_seed, policy.new_traffic_share, measure) for s, r in records.items()}
    targets = {s: Interval.of(v.values(), "target", measure) for s, v in per_seed.items()}
    forgetting = {s: Interval.of(r.values(FORGETTING), FORGETTING, measure) for s, r in records.items()}
    tolerance = policy.tolerance * measure.scale(targets[LEAVE_ALONE].mean if keep else None)
    under = [s for s in records if forgetting[s].mean <= ceiling]
    fallback = not under
    best = max(under or list(records), key=lambda s: measure.goodness(targets[s].mean))
    oriented = {s: {seed: measure.goodness(v) for seed, v in values.items()} for s, values in per_seed.items()}
    assessments = {}
    for strategy, record in records.items():
        gap = None if strategy == best else paired(oriented[strategy], oriented[best])
        assessments[strategy] = Assessment(
            strategy=strategy,
            target=targets[strategy],
            forgetting=forgetting[strategy],
            adoption_cost=0.0 if strategy == LEAVE_ALONE else float(record.mean(cost_metric) or 0.0),
            seeds=len(record.per_seed),
            forgetting_ok=strategy in under,
            standing=BEST if gap is None else standing(gap, tolerance),
            gap=gap,
        )
    pool = [a for a in assessments.values() if a.strategy == best or (a.acceptable and not fallback)]
    chosen = min(pool, key=lambda a: (a.adoption_cost, -measure.goodness(a.target.mean)))
    if chosen.strategy == best:
        cheaper_open = [a for a in assessments.values() if a.standing == NOT_SEPARATED and a.forgetting_ok
                        and a.adoption_cost < chosen.adoption_cost]
        rule = ("the higher mean of options the evidence cannot separate" if cheaper_open
                else "the best target" if len(pool) == 1 else "the best target, and no option as good costs less")
    else:
        rule = "the cheapest of the options as good as the best"
    money = (policy.cost_unit, policy.rows_per_week) if measure.figure.stem == "cost" else None
    verdict = Verdict(chosen.strategy, best, cost_metric, assessments, ceiling, fallback, rule, [], measure, tolerance,
                      money)
    verdict.reasons.extend(explain(verdict, policy))
    return verdict


def adapt_seeds(
    records: dict[str, StrategyRecord],
    policy: CompareParams,
    train: Callable[[list[str], str], dict[str, dict[str, float]]],
    clock: Callable[[], float] = time.monotonic,
) -> tuple[dict[str, StrategyRecord], dict[str, Any]]:
    """Train more seeds while the evidence does not decide, for the options in contention
    (and the baseline, the reference of forgetting and the start of the updates) only.

    `train(strategies, seed)` trains those strategies on one new seed and returns their
    figures. It stops when every option is separated from the best, at `policy.max_seeds`
    seeds, or when the next seed would not fit in what is left of `policy.budget_seconds`
    (judged by the last seed's time). Returns the records with the new seeds added and a
    note of what was done and why it stopped."""
    start = clock()
    added: dict[str, list[str]] = {}
    last = 0.0
    while True:
        verdict = recommend(records, policy)
        contenders = verdict.contenders()
        if len(contenders) < 2:
            stop = "separated"
            break
        seeds = max(len(records[s].per_seed) for s in contenders)
        if seeds >= policy.max_seeds:
            stop = "max_seeds"
            break
        spent = clock() - start
        if spent + last >= policy.budget_seconds:
            stop = "budget_seconds"
            break
        used = {seed for r in records.values() for seed in r.per_seed}
        seed = str(next(n for n in range(10**6) if str(n) not in used))
        wanted = sorted({BASELINE, *contenders}, key=list(records).index)
        began = clock()
        figures = train(wanted, seed)
        last = clock() - began
        for strategy in wanted:
            records[strategy] = records[strategy].with_seed(seed, figures[strategy])
            added.setdefault(strategy, []).append(seed)
    note = {"added": added, "stopped": stop, "seconds": clock() - start,
            "max_seeds": policy.max_seeds, "budget_seconds": policy.budget_seconds}
    return records, note


def headline(verdict: Verdict, records: Mapping[str, StrategyRecord]) -> str:
    """The decision in one sentence: what to do, its gain over keeping the model and its
    cost, and the option that comes closest to it."""
    a = verdict.assessments
    chosen = a[verdict.recommended]
    action = CATALOGUE[verdict.recommended].action
    if verdict.recommended == LEAVE_ALONE:
        text = f"{action}: no option is shown better by more than the tolerance, and keeping it costs nothing"
        if verdict.money is not None:  # what its errors cost, in the costs' unit
            text += f" to adopt; its errors cost about {per_row_and_week(chosen.target.mean, verdict.money)}"
    else:
        text = action + (f": {gain_text(verdict.measure, chosen.target.mean, a[LEAVE_ALONE].target.mean, verdict.money)}"
                         " over keeping the model" if LEAVE_ALONE in a else "")
        text += f", for {_cost(chosen.adoption_cost, verdict.cost_metric)}"
    others = [s for s in a if s != verdict.recommended and s != LEAVE_ALONE and a[s].forgetting_ok
              and a[s].standing in (BEST, AS_GOOD, NOT_SEPARATED)]
    if others:
        other = min(others, key=lambda s: a[s].adoption_cost)
        ratio = a[other].adoption_cost / chosen.adoption_cost if chosen.adoption_cost else None
        at = f" at {ratio:.2g}x its cost" if ratio is not None else ""
        if a[other].standing == NOT_SEPARATED and a[other].adoption_cost < chosen.adoption_cost:
            # The cheaper option was passed over: the sentence read first says by which rule.
            text += (f"; {other} cannot be told from it within the noise{at}, but is not shown as good either, "
                     f"so {verdict.rule} decides")
        elif a[other].standing == NOT_SEPARATED:
            text += f"; {other} cannot be told from it within the noise{at}"
        else:
            text += f"; {other} is as good{at}"
    return text + "."


def _cost(value: float, metric: str) -> str:
    return f"{value:.3g} {COST_UNITS[metric]}"


def gain_text(measure: Measure, value: float, reference: float, money: tuple[str, float | None] | None = None) -> str:
    """An option's target against keeping the model's, in words: points of a score (of
    accuracy, "points of target"; else named), an error's reduction in its units and as a
    share of the kept model's, or the cost of errors saved per row and, with the traffic
    known, per week, in the costs' unit."""
    if not measure.relative:
        named = "" if measure.figure.stem == "acc" else f" {measure.short}"
        return f"{100 * (value - reference):+.1f} points of target{named}"
    lower = reference - value
    share = f" ({abs(lower) / reference:.1%} {'less' if lower >= 0 else 'more'})" if reference else ""
    if measure.figure.stem == "cost" and money is not None:
        return (f"{'saves' if lower >= 0 else 'costs'} about {per_row_and_week(abs(lower), money, ' in errors' + share)}")
    return f"target {measure.short} {abs(lower):.4g} {'lower' if lower >= 0 else 'higher'}{share}"


def per_row_and_week(value: float, money: tuple[str, float | None], after_row: str = "") -> str:
    """An amount a row, and with the traffic known a week: "$1.2 a row{after_row}, $6,000.00
    a week at 5,000 rows a week"."""
    unit, rows_per_week = money
    said = f"{money_text(value, unit)} a row{after_row}"
    if rows_per_week:
        said += f", {money_text(value * rows_per_week, unit)} a week at {rows_per_week:,.0f} rows a week"
    return said


def money_text(value: float, unit: str) -> str:
    """An amount in the costs' unit: a sign-like unit before it ($12.5), a word after (12.5 EUR)."""
    amount = f"{value:,.2f}" if value >= 100 else f"{value:.3g}"
    return f"{unit}{amount}" if len(unit) == 1 and not unit.isalnum() else f"{amount} {unit}"


def explain(verdict: Verdict, policy: CompareParams) -> list[str]:
    """The recommendation in plain words, with the numbers behind it."""
    a, m, number = verdict.assessments, verdict.measure, verdict.measure.number
    chosen, best = a[verdict.recommended], a[verdict.best]
    share = f"{policy.new_traffic_share:.0%} new traffic"
    what = f"target {m.short}"
    share += "" if m.higher_is_better else "; lower is better"
    tolerance = f"{policy.tolerance:.3f}" if not m.relative else f"{verdict.tolerance:.3g}"
    of_error = f" ({policy.tolerance * 100:g}% of keeping the model's target {m.short})" if m.relative else ""
    end = "low" if m.higher_is_better else "high"
    lines = []
    if verdict.fallback:
        lines.append(
            f"Every option forgets more than the ceiling of {ceiling_text(verdict.ceiling, m)}; "
            f"{verdict.recommended} is named as the most accurate, but none is safe for the old traffic."
        )
    if verdict.recommended == verdict.best:
        lines.append(
            f"{verdict.recommended} has the best {what} ({share}): {chosen.target.text()}; chosen by "
            f"{verdict.rule}."
        )
    else:
        lines.append(
            f"{verdict.recommended} reaches a {what} ({share}) of {chosen.target.text()}: seed by seed it is "
            f"{verdict.difference(chosen.gap).signed()} from the best ({verdict.best}, {best.target.text()}), within "
            f"the tolerance of {tolerance}{of_error} even at the {end} end, and it costs less to adopt; chosen by "
            f"{verdict.rule}."
        )
    if verdict.recommended == LEAVE_ALONE and not verdict.fallback:
        lines.append("Leaving the model alone costs nothing and is as good: no retraining is needed.")
    for strategy, s in a.items():
        if strategy == verdict.recommended:
            continue
        detail = f"target {s.target.text()}"
        if s.gap is not None:
            detail += (f", {verdict.difference(s.gap).signed()} against the best seed by seed (the tolerance is "
                       f"{tolerance})")
        detail += f", forgetting {s.forgetting.text()}"
        if strategy != LEAVE_ALONE:
            detail += f", {verdict.cost_metric} {s.adoption_cost:.4g}"
        lines.append(f"{strategy}: {verdict.status(strategy)} ({detail}).")
    ceiling = ceiling_text(verdict.ceiling, m)
    of = ""
    if m.relative and not math.isinf(verdict.ceiling) and policy.max_forgetting:
        ceiling += f" in {m.unit}"
        scale = verdict.ceiling * (1 - policy.new_traffic_share) / policy.max_forgetting
        of = f" x the baseline's {m.old} {number(scale)}"
    lines.append(
        f"Forgetting ceiling: {ceiling} = max_forgetting {policy.max_forgetting}{of} / old traffic share "
        f"{1 - policy.new_traffic_share:.2f}: old data matters as far as old traffic does."
    )
    seeds = min(s.seeds for s in a.values())
    if seeds < 2:
        lines.append("Only one seed was trained, so there is no measure of noise: set `seeds` to 3 or more.")
    open_ = [s for s in verdict.contenders() if s != verdict.best]
    if open_:
        lines.append(
            f"Not separated after {a[verdict.best].seeds} seeds: {', '.join(open_)} against {verdict.best}; "
            f"{verdict.recommended} is chosen by {verdict.rule}. More seeds (compare.max_seeds) or more test data "
            "would decide."
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
    """One row per strategy: mean and 95% interval of every figure, its target, its gain over
    keeping the model, the cost of each point of that gain, and its verdict."""
    rows = []
    keep = verdict.assessments.get(LEAVE_ALONE)
    for strategy, record in records.items():
        row: dict[str, Any] = {"strategy": strategy, "verdict": verdict.status(strategy)}
        assessment = verdict.assessments[strategy]
        row |= {"target": assessment.target.mean, "target_low": assessment.target.low,
                "target_high": assessment.target.high, "adoption_cost": assessment.adoption_cost,
                "seeds": assessment.seeds}
        if assessment.gap is not None:
            gap = verdict.difference(assessment.gap)
            row |= {"gap": gap.mean, "gap_low": gap.low, "gap_high": gap.high}
        if keep is not None and strategy != LEAVE_ALONE and not verdict.measure.relative:
            points = 100 * (assessment.target.mean - keep.target.mean)
            row["gain_points"] = points
            row["cost_per_point"] = assessment.adoption_cost / points if points > 0 else None
        elif keep is not None and strategy != LEAVE_ALONE:  # a regressor: error reduction, in units and %
            lower = keep.target.mean - assessment.target.mean
            percent = 100 * lower / keep.target.mean if keep.target.mean else 0.0
            row |= {"gain_error": lower, "gain_percent": percent,
                    "cost_per_percent": assessment.adoption_cost / percent if percent > 0 else None}
        for figure in TABLE_FIGURES:
            if figure in record.means:
                interval = record.ci95[figure]
                row |= {figure: record.means[figure], f"{figure}_low": interval.low, f"{figure}_high": interval.high}
        row["model_version"] = record.mlflow.model_version if record.mlflow else None
        rows.append(row)
    return rows


def metric_rows(records: Mapping[str, StrategyRecord], verdict: Verdict) -> dict[str, dict[str, Any]]:
    """What `dvc metrics show` lists, a row per strategy: its verdict, target, accuracies,
    forgetting and cost (means over its seeds), rounded to what the seeds can tell apart."""
    rows = {}
    m = verdict.measure

    def shown(value: float) -> float:  # accuracy to 4 decimals; an error to 4 significant digits
        return round(value, 4) if not m.relative else float(f"{value:.4g}")

    for strategy, record in records.items():
        a = verdict.assessments[strategy]
        rows[strategy] = {
            "verdict": verdict.word(strategy), "target": shown(a.target.mean),
            m.old: shown(record.means[m.old]), m.new: shown(record.means[m.new]),
            "forgetting": shown(a.forgetting.mean), verdict.cost_metric: float(f"{a.adoption_cost:.4g}"),
            "seeds": a.seeds,
        }
    return rows


def cost_text(row: Mapping[str, Any], verdict: Verdict) -> str:
    """An option's cost to adopt in words, with what it buys over keeping the model and
    what each point of target (a regressor's: each percent of error removed) costs:
    "+17.4 points of target for 4 CPU-seconds: 0.23 CPU-seconds a point"."""
    unit = COST_UNITS.get(verdict.cost_metric, verdict.cost_metric)
    cost = f"{row['adoption_cost']:.4g} {unit}"
    if row["strategy"] == LEAVE_ALONE:
        return "nothing: the model in use"
    if "gain_points" in row:
        bought, per, each = f"{row['gain_points']:+.1f} points of target", row["cost_per_point"], "a point"
    elif "gain_error" in row:
        lower, percent = row["gain_error"], row["gain_percent"]
        bought = (f"target {verdict.measure.short} {abs(lower):.3g} {'lower' if lower >= 0 else 'higher'} "
                  f"({abs(percent):.1f}% {'less' if lower >= 0 else 'more'})")
        per, each = row["cost_per_percent"], "a percent"
    else:  # no baseline to gain over
        return cost
    return f"{bought} for {cost}" + (f": {per:.2g} {unit} {each}" if per is not None else "")


def markdown(
    rows: list[dict[str, Any]],
    verdict: Verdict,
    diagnostics: Diagnosis,
    policy: CompareParams,
    head: str = "",
    changes: list[Markdown] | None = None,
    recall: Any = None,
    seeds_note: str = "",
    residuals: Any = None,
) -> Markdown:
    """The report a person reads: the headline, the recommendation and its reasons, what
    changed, the table, per-class recall (a regressor's residuals), what the new data is
    like, the policy. Every value goes in through `md`, which escapes it (escape.py).
    `residuals`: a regressor's, per test set a row per strategy (rows, mean, sd, p90)."""
    def cell(row, figure, digits=3):
        if figure not in row:
            return Markdown()
        return Markdown(Interval(row[figure], row[f"{figure}_low"], row[f"{figure}_high"]).text(digits))

    m = verdict.measure
    bought = ("the points of target it gains over keeping the model" if not m.relative
              else f"how much lower its target {m.short} is than keeping the model's (lower is better)")
    more = [figure for figure in m.table_row if figure not in (m.old, m.new)]

    out = [md("# Should you retrain? The comparison"), md("")]
    if head:
        out += [md("**{}**", head), md("")]
    out += [md("**Recommendation: {}.**", verdict.recommended), md(""),
            *[md("- {}", reason) for reason in verdict.reasons]]
    if seeds_note:
        out += [md("- {}", seeds_note)]
    if changes:
        out += [md(""), md("## What changed"), md(""), *[md("- {}", line) for line in changes]]
    out += [
        md(""),
        md("## The strategies side by side"),
        md(""),
        md("Mean over the seeds, with the 95% interval in brackets. Target = {:.2f} x {} + {:.2f} x {}. "
           "\"vs best\" is the paired difference of targets, seed by seed; \"cost to adopt\" is what choosing the "
           "option costs (keeping the model costs nothing), for {}.", 1 - policy.new_traffic_share, m.old,
           policy.new_traffic_share, m.new, bought),
        md(""),
        md("| strategy | verdict | target | vs best | {} | {} | forgetting | cost to adopt |", m.old, m.new),
        md("| --- | --- | --- | --- | --- | --- | --- | --- |"),
        *[md("| {} | {} | {} | {} | {} | {} | {} | {} |", row["strategy"], row["verdict"], cell(row, "target"),
             cell(row, "gap"), cell(row, m.old), cell(row, m.new), cell(row, "forgetting"),
             cost_text(row, verdict)) for row in rows],
        md(""),
        md("The training behind each option: its other figures, its training time, the seeds it was measured on and "
           "the version of its model registered (`comparison.csv` has every figure, with its interval)."),
        md(""),
        md("| strategy | ") + md("").join(md("{} | ", figure) for figure in more)
        + md("CPU s | GPU s | seeds | model version |"),
        md("|") + md(" --- |") * (5 + len(more)),
        *[md("| {} | ", row["strategy"]) + md("").join(cell(row, figure) + md(" | ") for figure in more)
          + md("{} | {} | {} | {} |", cell(row, "cpu_seconds", 2), cell(row, "gpu_seconds", 2), row["seeds"],
               row["model_version"]) for row in rows],
    ]
    if recall:
        out += [md(""), md("## Per class"), md(""),
                md("Recall of each class (the share of its test rows predicted as it) by the registered seed's "
                   "model. Confusion matrices: `confusion.png`, and `dvc plots show` "
                   "(`plots/NAME-predictions.csv`)."), md("")]
        for test_set, table_ in recall.items():
            classes = list(table_.columns)
            out += [md("On the {} test set:", test_set), md(""),
                    md("| strategy | ") + md(" | ").join(md("{}", c) for c in classes) + md(" |"),
                    md("| --- |") + md(" --- |") * len(classes)]
            for strategy, values in table_.iterrows():
                shown = (md("") if v != v else md("{:.2f}", v) for v in values)
                out.append(md("| {} | ", strategy) + md(" | ").join(shown) + md(" |"))
            out.append(md(""))
    if residuals:
        out += [md(""), md("## Predicted against true"), md(""),
                md("The registered seed's model on the test rows `plots/NAME-predictions.csv` keeps: "
                   "`predicted_vs_true.png` draws each prediction against the true value (on the diagonal: exact), "
                   "`residuals.png` each residual (true - predicted) against the prediction, where a trend or a "
                   "funnel is an error the RMSE alone does not show; `dvc plots show` draws the predictions against "
                   "the true values in bands of the label's range. A mean residual above 0 is a model that "
                   "predicts too low."), md("")]
        for test_set, table_ in residuals.items():
            out += [md("On the {} test set, in the label's units:", test_set), md(""),
                    md("| strategy | rows | mean residual | residual SD | 90% of errors within |"),
                    md("| --- | --- | --- | --- | --- |")]
            for strategy, values in table_.iterrows():
                out.append(md("| {} | {:.0f} | {:+.3g} | {:.3g} | {:.3g} |", strategy, values["rows"],
                              values["mean"], values["sd"], values["p90"]))
            out.append(md(""))
    d = diagnostics
    ceiling = "none" if math.isinf(verdict.ceiling) else ceiling_text(verdict.ceiling, m)
    out += [
        md(""),
        md("## What kind of new data is this?"),
        md(""),
        md("- Size: {} new rows against {} old ({:.2f}x).", d.rows_new, d.rows_old, d.size_ratio),
        *([md("- Target: KS {:.3f} between the old and the new labels (0 = same distribution, 1 = disjoint); "
              "mean {:.4g} before, {:.4g} now; standard deviation {:.4g} before, {:.4g} now (the label's units).",
              d.target.ks, d.target.mean_old, d.target.mean_new, d.target.std_old, d.target.std_new)]
          if d.target is not None else
          [md("- Classes only the new data has: {}.",
              md(", ").join(md("{}", c) for c in d.new_classes) or Markdown("none")),
           md("- Label distribution moved by {:.3f} (total variation; 0 = same, 1 = disjoint).", d.label_shift_tv)]),
        md("- Inputs: a classifier tells new rows from old with AUC {:.3f} (0.5 = indistinguishable); largest "
           "per-feature PSI {:.3f} (above 0.25 is a large shift), mean {:.3f}.",
           d.domain_auc, d.psi_max, d.psi_mean),
        *[md("- Text column {}: {:.0%} of the new texts' tokens are unknown to the old vocabulary, and {:.0%} of "
             "the new texts are mostly unknown words; vocabulary overlap {:.2f}; {:.1f} tokens a text before, {:.1f} "
             "now; a classifier on token counts tells new texts from old with AUC {:.3f}.", t.feature, t.oov_tokens,
             t.oov_rows, t.overlap, t.length_old, t.length_new, t.domain_auc) for t in d.text],
        *[md("- Categorical column {}: {:.1%} of the new rows hold a value the old data does not; {:,} new values, "
             "against {:,} in the old data.", c.feature, c.unseen_rows, c.new_values, c.old_values)
          for c in d.categories if c.new_values],
        md(""),
        md("| most shifted features | kind | PSI | KS |"),
        md("| --- | --- | --- | --- |"),
        *[md("| {} | {} | {:.3f} | ", f.feature, f.kind, f.psi) + (md("|") if f.ks is None else md("{:.3f} |", f.ks))
          for f in d.top_shifted_features],
        md(""),
        md("![what changed](diagnostics.png)"),
        md(""),
        md("## The policy"),
        md(""),
        md("new_traffic_share {}, tolerance {}, max_forgetting {} (ceiling on forgetting at this share: {}), cost "
           "figure {} (leaving the model alone costs 0 to adopt), max_seeds {}, budget_seconds {:g}. The best is the "
           "option with the best target under the forgetting ceiling; an option is as good when, seed by seed, even the low "
           "end of its difference from the best is within the tolerance; the cheapest of the best and the options as "
           "good is recommended. An option the seeds cannot separate from the best is not chosen over it.",
           policy.new_traffic_share, policy.tolerance, policy.max_forgetting, ceiling, verdict.cost_metric,
           policy.max_seeds, policy.budget_seconds)
        + (Markdown() if not m.relative else md(
            " The figure is {}, lower is better, and the tolerance and max_forgetting are shares of the baseline's "
            "own: the tolerance is {:.3g} in {} ({:g}% of keeping the model's target {}).", m.short,
            verdict.tolerance, m.unit, 100 * policy.tolerance, m.short)),
        md(""),
        md("![accuracy against cost](accuracy_vs_cost.png)"),
        md(""),
        md("![learning curves](learning_curves.png)"),
        md(""),
    ]
    if not m.regression:
        out += [md("![per-class confusion](confusion.png)"), md("")]
    else:
        out += [md("![predicted against true](predicted_vs_true.png)"), md(""), md("![residuals](residuals.png)"),
                md("")]
    return lines(out)
