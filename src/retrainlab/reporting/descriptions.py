"""The MLflow UI's descriptions, in Markdown: the pipeline run's (the decision), each strategy
run's (its verdict and figures) and each registered version's. Every value goes in through
`md`, which escapes it (retrainlab.base.escape)."""

from __future__ import annotations

from collections.abc import Mapping

from retrainlab.base.escape import Markdown, lines, md
from retrainlab.decision import comparison
from retrainlab.measure.record import StrategyRecord
from retrainlab.measure.task import Measure, of_figures


def version_description(strategy: str, summary: str, seed: int, seeds: int, own: dict[str, float],
                        means: dict[str, float], verdict: str | None = None, measure: Measure | None = None) -> Markdown:
    """A registered version's description in the MLflow UI: what it is, its verdict once
    compare has judged it, its own figures and the means over the seeds."""
    out = [md("**{}**: {}. The model of seed {}, one of {} trained.", strategy, summary, seed, seeds)]
    if verdict is not None:
        out.append(md("Verdict of the comparison: **{}**.", verdict))
    out += [md(""), md("| figure | this model (seed {}) | mean over {} seeds |", seed, seeds), md("|---|---|---|")]
    m = measure or of_figures(own)
    out += [md(f"| {{}} | {{:{m.spec}}} | {{:{m.spec}}} |", name, own[name], means[name]) for name in m.headline
            if name in own]
    return lines(out)


def decision_description(records: Mapping[str, StrategyRecord], verdict: comparison.Verdict, headline: str,
                         reasons: list[str]) -> Markdown:
    """The pipeline run's description in the MLflow UI: the headline, a row per strategy, why."""
    rows = comparison.metric_rows(records, verdict)
    cost, m = verdict.cost_metric, verdict.measure
    out = [md("{}", headline), md(""),
           md("| strategy | verdict | target | {} | {} | forgetting | {} | seeds | version |", m.old, m.new, cost),
           md("|---|---|---|---|---|---|---|---|---|")]
    for strategy, row in rows.items():
        name = md("**{}**", strategy) if strategy == verdict.recommended else md("{}", strategy)
        f = m.spec
        out.append(md(f"| {{}} | {{}} | {{:{f}}} | {{:{f}}} | {{:{f}}} | {{:{f}}} | {{:g}} | {{}} | {{}} |", name,
                      row["verdict"],
                      row["target"], row[m.old], row[m.new], row["forgetting"], row[cost], row["seeds"],
                      records[strategy].version))
    out += [md(""), *[md("- {}", reason) for reason in reasons]]
    return lines(out)


def strategy_description(record: StrategyRecord, summary: str, verdict: comparison.Verdict) -> Markdown:
    """A strategy run's description in the MLflow UI: what it did, its verdict, its figures."""
    a = verdict.assessments[record.strategy]
    return lines([
        md("**{}**: {}.", record.strategy, summary),
        md(""),
        md("Verdict: **{}**.", verdict.status(record.strategy)),
        md(""),
        md(f"Means over {{}} seeds with 95% intervals: target {{}}, {{}} {{:{verdict.measure.spec}}}, {{}} "
           f"{{:{verdict.measure.spec}}}, forgetting {{}}, {{}} {{:g}}.",
           len(record.per_seed), Markdown(a.target.text(4)), verdict.measure.old, record.means[verdict.measure.old],
           verdict.measure.new, record.means[verdict.measure.new], Markdown(a.forgetting.text(4)),
           verdict.cost_metric, a.adoption_cost),
        md(""),
        md("Registered as version {} (the model of seed {}).", record.version, record.mlflow.model_seed),
    ])
