"""Write the comparison to reports/ (Markdown, JSON, CSV, the PNG plots and DVC's plot data)
and the few numbers `dvc metrics show` lists to metrics/."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from retrainlab.base import escape, layout
from retrainlab.base.escape import md
from retrainlab.base.files import write_atomically, write_csv, write_text_atomically
from retrainlab.config import CompareParams
from retrainlab.decision import change, comparison
from retrainlab.decision.diagnosis import Diagnosis
from retrainlab.decision.recommendation import Recommendation, write_recommendation
from retrainlab.measure.evaluation import TEST_SETS, per_class_recall
from retrainlab.measure.record import StrategyRecord
from retrainlab.reporting.plots import label_key, plot_confusion, plot_cost, plot_curves, plot_diagnostics


def write_report(
    root: Path,
    records: Mapping[str, StrategyRecord],
    verdict: comparison.Verdict,
    diagnostics: Diagnosis,
    policy: CompareParams,
    curves: Mapping[str, pd.DataFrame],
    changes: list[change.Change] = (),
    seeds: Mapping[str, Any] | None = None,
) -> Recommendation:
    """Write every report file; return the recommendation (what reports/comparison.json holds)."""
    rows = comparison.table(records, verdict)
    head = comparison.headline(verdict, records)
    figures = {s: r.means for s, r in records.items() if s != comparison.LEAVE_ALONE} or {
        s: r.means for s, r in records.items()}
    checked = change.check(list(changes), verdict.recommended, figures) if changes else []
    described = [md("**{}**: {}. Usually calls for {}. Measured: {}.", c.kind, c.evidence, c.calls_for, check)
                 for c, check in zip(changes, checked)]
    seeds = seeds or {"added": {}, "stopped": "not asked", "figures": {}}
    note = seeds_text(seeds, records)
    confusions = {s: r.confusion for s, r in records.items() if r.confusion}
    recall = _recall_table(confusions)
    summary = Recommendation(
        headline=head,
        recommended=verdict.recommended,
        best=verdict.best,
        rule=verdict.rule,
        separated=verdict.separated,
        fallback=verdict.fallback,
        forgetting_ceiling=None if verdict.ceiling == float("inf") else verdict.ceiling,
        cost_metric=verdict.cost_metric,
        reasons=verdict.reasons + ([note] if note else []),
        changes=tuple(changes),
        checks=checked,
        seeds={k: v for k, v in seeds.items() if k != "figures"},
        policy=dict(vars(policy)),
        diagnostics=diagnostics,
        strategies={row["strategy"]: row for row in rows},
    )
    points = {row["strategy"]: (row["adoption_cost"], row["target"]) for row in rows}
    scatter = pd.DataFrame(
        [{"strategy": s, "cost": c, "target": t, "pareto": s in comparison.pareto_front(points)}
         for s, (c, t) in points.items()]
    )
    write_atomically(root / layout.REPORT_PNG_COST, lambda p: plot_cost(p, rows, points, verdict, policy.tolerance))
    write_atomically(root / layout.REPORT_PNG_CURVES, lambda p: plot_curves(p, curves))
    write_atomically(root / layout.REPORT_PNG_CONFUSION, lambda p: plot_confusion(p, confusions))
    write_atomically(root / layout.REPORT_PNG_DIAGNOSTICS, lambda p: plot_diagnostics(p, diagnostics, changes))
    write_text_atomically(root / layout.REPORT_SEEDS, json.dumps(seeds, indent=2, default=str) + "\n")
    write_csv(root / layout.REPORT_CSV, pd.DataFrame(rows))
    write_csv(root / layout.REPORT_SCATTER, scatter)
    long_curves = pd.concat([frame.assign(strategy=s) for s, frame in curves.items()], ignore_index=True)
    long_curves = long_curves[["strategy", *long_curves.columns.drop("strategy")]]
    write_csv(root / layout.REPORT_CURVES, long_curves)
    write_text_atomically(root / layout.REPORT_MD, escape.require_markdown(
        comparison.markdown(rows, verdict, diagnostics, policy, head, described, recall, note)))
    write_recommendation(root, summary)
    write_metrics(root, comparison.metric_rows(records, verdict))
    return summary


def write_metrics(root: Path, rows: Mapping[str, Mapping[str, Any]]) -> None:
    """metrics/<strategy>.json for each strategy compared, and none for one no longer compared."""
    folder = root / layout.METRICS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    for strategy, row in rows.items():
        write_text_atomically(root / layout.metrics_path(strategy), json.dumps(row, indent=2) + "\n")
    for stale in set(folder.glob("*.json")) - {root / layout.metrics_path(s) for s in rows}:
        stale.unlink()


def seeds_text(seeds: Mapping[str, Any], records: Mapping[str, StrategyRecord]) -> str:
    """How many seeds each option got, and why the compare step added any."""
    added = seeds.get("added") or {}
    base = min(len(r.per_seed) - len(added.get(s, [])) for s, r in records.items())
    if not added:
        return (f"Seeds: {base} for every option; none added" + (
            ": every option is separated from the best" if seeds.get("stopped") == "separated" else "") + ".")
    counts = {s: len(v) for s, v in added.items() if s != comparison.LEAVE_ALONE}
    why = {"separated": "they are now separated", "max_seeds": f"compare.max_seeds ({seeds.get('max_seeds')}) reached",
           "budget_seconds": f"compare.budget_seconds ({seeds.get('budget_seconds')}) would be exceeded"}
    shown = ", ".join(f"{s} +{n}" for s, n in counts.items())
    return (f"Seeds: {base} for every option; more for the options the evidence did not separate ({shown}; the "
            f"baseline's too, as their reference), {seeds.get('seconds', 0):.0f} s of training; stopped because "
            f"{why.get(seeds.get('stopped'), seeds.get('stopped'))}.")


def _recall_table(confusions: Mapping[str, Mapping[str, list]]) -> dict[str, pd.DataFrame]:
    """Recall per class, for each test set: a row per strategy, a column per class."""
    rows: dict[str, dict[str, pd.Series]] = {}
    for strategy, confusion in confusions.items():
        recall = per_class_recall(confusion)
        for test_set in recall.columns:
            rows.setdefault(test_set, {})[strategy] = recall[test_set]
    tables = {}
    for test_set in [t for t in TEST_SETS if t in rows]:
        table = pd.DataFrame(rows[test_set]).T
        tables[test_set] = table[sorted(table.columns, key=label_key)].dropna(axis=1, how="all")
    return tables
