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
from retrainlab.decision import change, check, comparison
from retrainlab.decision.diagnosis import Diagnosis
from retrainlab.decision.recommendation import Recommendation, write_recommendation
from retrainlab.measure.evaluation import TEST_SETS, per_class_recall
from retrainlab.measure.record import StrategyRecord
from retrainlab.measure.task import TARGET, measure_of
from retrainlab.reporting.html_report import write_html
from retrainlab.reporting.plots import (
    ACTUAL_VALUE,
    PREDICTED_VALUE,
    label_key,
    plot_confusion,
    plot_cost,
    plot_curves,
    plot_diagnostics,
    plot_no_classes,
    plot_predicted,
    plot_residuals,
)

REPORT_PNG_PREDICTED, REPORT_PNG_RESIDUALS = layout.REPORT_PNG_PREDICTED, layout.REPORT_PNG_RESIDUALS
# The curves dvc.yaml's plots read, by one name for either task: the primary figure in training
# and on the held-out samples (a classifier's accuracy, a regressor's RMSE).
GENERIC_CURVES = {"training": ("accuracy", "rmse"), "held_out_old": ("held_out_acc_old", "held_out_rmse_old"),
                  "held_out_new": ("held_out_acc_new", "held_out_rmse_new")}


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
    checked = change.check(list(changes), verdict.recommended, figures, verdict.measure) if changes else []
    described = [md("**{}**: {}. Usually calls for {}. Measured: {}.", c.kind, c.evidence, c.calls_for, check)
                 for c, check in zip(changes, checked)]
    grown = vocabulary_text(records)
    if grown:
        described = [*described, md("**vocabulary**: the options that start from the model add the new rows' "
                                    "tokens to its vocabulary, and their values to its lookups "
                                    "(model.grow_vocabulary): {}.", grown)]
    seeds = seeds or {"added": {}, "stopped": "not asked", "figures": {}}
    note = seeds_text(seeds, records)
    m = verdict.measure
    underfit = underfitted_baseline(curves, records, measure_of(m.task), policy)  # read on the task's own curves
    if underfit:
        described = [*described, md("**underfitted baseline**: {}. Usually calls for full-retrain, which trains "
                                    "until the rows set aside stop improving (model.patience).", underfit)]
    confusions = {s: r.confusion for s, r in records.items() if r.confusion}
    recall = _recall_table(confusions)
    numbers = {} if not m.regression else read_numbers(root, records)
    residuals = residual_table(numbers)
    summary = Recommendation(
        headline=head,
        recommended=verdict.recommended,
        best=verdict.best,
        rule=verdict.rule,
        separated=verdict.separated,
        fallback=verdict.fallback,
        forgetting_ceiling=None if verdict.ceiling == float("inf") else verdict.ceiling,
        cost_metric=verdict.cost_metric,
        reasons=verdict.reasons + ([note] if note else []) + ([f"the baseline is underfitted: {underfit}"]
                                                              if underfit else []),
        changes=tuple(changes),
        checks=checked,
        seeds={k: v for k, v in seeds.items() if k != "figures"},
        policy=dict(vars(policy)),
        diagnostics=diagnostics,
        strategies={row["strategy"]: row for row in rows},
    )
    points = {row["strategy"]: (row["adoption_cost"], row["target"]) for row in rows}
    front = comparison.pareto_front({s: (c, m.goodness(t)) for s, (c, t) in points.items()})
    scatter = pd.DataFrame(
        [{"strategy": s, "cost": c, "target": t, "pareto": s in front} for s, (c, t) in points.items()]
    )
    write_atomically(root / layout.REPORT_PNG_COST, lambda p: plot_cost(p, rows, points, verdict, verdict.tolerance))
    write_atomically(root / layout.REPORT_PNG_CURVES, lambda p: plot_curves(p, curves, m))
    if not m.regression:
        write_atomically(root / layout.REPORT_PNG_CONFUSION, lambda p: plot_confusion(p, confusions))
        for path in (REPORT_PNG_PREDICTED, REPORT_PNG_RESIDUALS):  # outputs whatever the task: a note
            write_atomically(root / path, lambda p: plot_no_classes(p, layout.REPORT_PNG_CONFUSION.name, numbers=False))
    else:
        instead = f"{REPORT_PNG_PREDICTED.name} and {REPORT_PNG_RESIDUALS.name}"
        write_atomically(root / layout.REPORT_PNG_CONFUSION, lambda p: plot_no_classes(p, instead))
        write_atomically(root / REPORT_PNG_PREDICTED, lambda p: plot_predicted(p, numbers))
        write_atomically(root / REPORT_PNG_RESIDUALS, lambda p: plot_residuals(p, numbers))
    write_atomically(root / layout.REPORT_PNG_DIAGNOSTICS, lambda p: plot_diagnostics(p, diagnostics, changes))
    write_text_atomically(root / layout.REPORT_SEEDS, json.dumps(seeds, indent=2, default=str) + "\n")
    write_csv(root / layout.REPORT_CSV, pd.DataFrame(rows))
    write_csv(root / layout.REPORT_SCATTER, scatter)
    long_curves = pd.concat([frame.assign(strategy=s) for s, frame in curves.items()], ignore_index=True)
    long_curves = long_curves[["strategy", *long_curves.columns.drop("strategy")]]
    for generic, names in GENERIC_CURVES.items():
        found = [name for name in names if name in long_curves.columns]
        if found:
            long_curves[generic] = long_curves[found[0]]
    write_csv(root / layout.REPORT_CURVES, long_curves)
    text = comparison.markdown(rows, verdict, diagnostics, policy, head, described, recall, note, residuals)
    write_text_atomically(root / layout.REPORT_MD, escape.require_markdown(text))
    write_html(root, text)  # after the plots it inlines
    write_recommendation(root, summary)
    write_metrics(root, comparison.metric_rows(records, verdict), verdict)
    return summary


def underfitted_baseline(curves: Mapping[str, pd.DataFrame], records: Mapping[str, StrategyRecord], m,
                         policy: CompareParams) -> str | None:
    """Why the baseline is underfitted (`check.underfitted`, the check's own rule), read from
    its held-out curve on the old test set as its step wrote it; None without such a curve
    (a brought model taken as it is trains no epoch)."""
    frame = curves.get(comparison.LEAVE_ALONE)
    column = f"held_out_{m.old}"
    if frame is None or column not in frame.columns or comparison.LEAVE_ALONE not in records:
        return None
    reference = records[comparison.LEAVE_ALONE].means.get(m.old)
    if reference is None:
        return None
    return check.underfitted(frame[column].astype(float).tolist(), m, policy.tolerance * m.scale(reference))


def never_predicted(records: Mapping[str, StrategyRecord], positive: str | None) -> list[str]:
    """Where an option's registered model predicts no row of the positive class on a test
    set, in words: its precision there is undefined (scikit-learn's zero_division counts it
    as 0), which a table cell of 0.000 would not say."""
    if positive is None:
        return []
    said = []
    for strategy, record in records.items():
        for test_set, pairs in (record.confusion or {}).items():
            rows = sum(n for _, _, n in pairs)
            if rows and not any(str(predicted) == positive and n for _, predicted, n in pairs):
                said.append(f"{strategy}'s registered model predicts no row of {positive!r} on the {test_set} test set: "
                            "its precision there is undefined (counted as 0), and it catches none of them")
    return said


def vocabulary_text(records: Mapping[str, StrategyRecord]) -> str:
    """What each option did to its starting model's text layers, as its record notes it
    ("text: 74 new tokens appended (147 in all), in incremental, replay"), the options that
    did the same together; "" where none did anything (no text, or no grown vocabulary)."""
    done: dict[str, list[str]] = {}
    for strategy, record in records.items():
        if record.notes:
            done.setdefault("; ".join(record.notes), []).append(strategy)
    return "; ".join(f"{notes}, in {', '.join(strategies)}" for notes, strategies in done.items())


def write_metrics(root: Path, rows: Mapping[str, Mapping[str, Any]], verdict: comparison.Verdict) -> None:
    """What DVC lists: metrics/<strategy>.json for each strategy compared (none for one no longer
    compared), and decision.json, the recommended option where the rows say their verdict, and
    its target: `dvc metrics show` gains a row and no column, `dvc exp show` two short columns.
    The target is named by its measure (acc_target, rmse_target), as `dvc exp show` puts a
    classifier's experiments and a regressor's in one table."""
    target = verdict.measure.target_name
    named = {s: {target if k == TARGET else k: v for k, v in row.items()} for s, row in rows.items()}
    folder = root / layout.METRICS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    for strategy, row in named.items():
        write_text_atomically(root / layout.metrics_path(strategy), json.dumps(row, indent=2) + "\n")
    for stale in set(folder.glob("*.json")) - {root / layout.metrics_path(s) for s in rows}:
        stale.unlink()
    decision = {"verdict": verdict.recommended, target: named[verdict.recommended][target]}
    write_text_atomically(root / layout.DECISION, json.dumps(decision, indent=2) + "\n")


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


def read_numbers(root: Path, strategies) -> dict[str, pd.DataFrame]:
    """A regressor's predictions, from plots/<strategy>-predictions.csv: each test row's
    test_set and its true and predicted numbers (`actual`, `predicted`), for the strategies
    that have the file. Its `actual` and `predicted` columns are DVC's bands there; the
    numbers are `actual_value` and `predicted_value` (a file written before the bands has
    the numbers in `actual` and `predicted`)."""
    found = {}
    for strategy in strategies:
        path = root / layout.predictions_path(strategy)
        if not path.is_file():
            continue
        frame = pd.read_csv(path)
        actual, predicted = (ACTUAL_VALUE, PREDICTED_VALUE) if ACTUAL_VALUE in frame else ("actual", "predicted")
        found[strategy] = pd.DataFrame({
            "test_set": frame["test_set"].astype(str),
            "actual": pd.to_numeric(frame[actual], errors="coerce"),
            "predicted": pd.to_numeric(frame[predicted], errors="coerce"),
        }).dropna()
    return found


def residual_table(numbers: Mapping[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """For each test set, a row per strategy: the rows its predictions file keeps, and their
    residuals' (true - predicted) mean (above 0: it predicts too low), standard deviation and
    90th percentile of the absolute value."""
    tables = {}
    for test_set in TEST_SETS:
        rows = {}
        for strategy, frame in numbers.items():
            part = frame[frame["test_set"] == test_set]
            if len(part):
                residual = part["actual"] - part["predicted"]
                rows[strategy] = {"rows": len(part), "mean": residual.mean(), "sd": residual.std(ddof=0),
                                  "p90": residual.abs().quantile(0.9)}
        if rows:
            tables[test_set] = pd.DataFrame.from_dict(rows, orient="index")
    return tables
