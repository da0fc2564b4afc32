"""Write the comparison to reports/ (Markdown, JSON, CSV, PNG plots and DVC's plot data) and the
few numbers `dvc metrics show` lists to metrics/."""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from retrainlab.decision import change, comparison
from retrainlab.base import escape, layout
from retrainlab.config import CompareParams
from retrainlab.base.escape import Markdown, lines, md
from retrainlab.base.files import write_atomically, write_csv, write_text_atomically
from retrainlab.decision.record import HEADLINE, StrategyRecord


def write_report(
    root: Path,
    records: Mapping[str, StrategyRecord],
    verdict: comparison.Verdict,
    diagnostics: Mapping[str, Any],
    policy: CompareParams,
    curves: Mapping[str, pd.DataFrame],
    changes: list[change.Change] = (),
    seeds: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Write every report file; return the JSON summary (what reports/comparison.json holds)."""
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
    summary = {
        "headline": head,
        "recommended": verdict.recommended,
        "best": verdict.best,
        "rule": verdict.rule,
        "separated": verdict.separated,
        "fallback": verdict.fallback,
        "forgetting_ceiling": None if verdict.ceiling == float("inf") else verdict.ceiling,
        "cost_metric": verdict.cost_metric,
        "reasons": verdict.reasons + ([note] if note else []),
        "changes": [{"kind": c.kind, "evidence": c.evidence, "calls_for": c.calls_for} for c in changes],
        "checks": checked,
        "seeds": {k: v for k, v in seeds.items() if k != "figures"},
        "policy": dict(vars(policy)),
        "diagnostics": diagnostics,
        "strategies": {row["strategy"]: row for row in rows},
    }
    points = {row["strategy"]: (row["adoption_cost"], row["target"]) for row in rows}
    scatter = pd.DataFrame(
        [{"strategy": s, "cost": c, "target": t, "pareto": s in comparison.pareto_front(points)}
         for s, (c, t) in points.items()]
    )
    write_atomically(root / layout.REPORT_PNG_COST, lambda p: _plot_cost(p, rows, points, verdict, policy.tolerance))
    write_atomically(root / layout.REPORT_PNG_CURVES, lambda p: _plot_curves(p, curves))
    write_atomically(root / layout.REPORT_PNG_CONFUSION, lambda p: _plot_confusion(p, confusions))
    write_atomically(root / layout.REPORT_PNG_DIAGNOSTICS, lambda p: _plot_diagnostics(p, diagnostics, changes))
    write_text_atomically(root / layout.REPORT_SEEDS, json.dumps(seeds, indent=2, default=str) + "\n")
    write_csv(root / layout.REPORT_CSV, pd.DataFrame(rows))
    write_csv(root / layout.REPORT_SCATTER, scatter)
    long_curves = pd.concat([frame.assign(strategy=s) for s, frame in curves.items()], ignore_index=True)
    long_curves = long_curves[["strategy", *long_curves.columns.drop("strategy")]]
    write_csv(root / layout.REPORT_CURVES, long_curves)
    write_text_atomically(root / layout.REPORT_MD, escape.require_markdown(
        comparison.markdown(rows, verdict, diagnostics, policy, head, described, recall, note)))
    write_text_atomically(root / layout.REPORT_JSON, json.dumps(summary, indent=2, default=str) + "\n")
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


def _plot_cost(path: str, rows, points, verdict: comparison.Verdict, tolerance: float) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 6), dpi=110)
    for row in rows:
        name = row["strategy"]
        err = [[row["target"] - row["target_low"]], [row["target_high"] - row["target"]]]
        marker = "*" if name == verdict.recommended else "o"
        ax.errorbar(row["adoption_cost"], row["target"], yerr=err, fmt=marker, markersize=12 if marker == "*" else 7,
                    capsize=4, label=f"{name} ({verdict.status(name).split(':')[0]})")
        ax.annotate(name, (row["adoption_cost"], row["target"]), textcoords="offset points", xytext=(6, -12))
    front = comparison.pareto_front(points)
    ax.plot([points[n][0] for n in front], [points[n][1] for n in front], "--", color="grey", label="Pareto front")
    best = verdict.assessments[verdict.best].target.mean
    ax.axhspan(best - tolerance, best, color="tab:green", alpha=0.12,
               label=f"within the tolerance of the best ({verdict.best})")
    ax.set_xlabel(f"cost to adopt ({verdict.cost_metric}; leaving the model alone costs 0)")
    ax.set_ylabel("target accuracy (mean, 95% interval)")
    ax.set_title(f"Accuracy against cost: recommended {verdict.recommended}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2, frameon=False)
    _save(fig, path)


def _plot_curves(path: str, curves: Mapping[str, pd.DataFrame]) -> None:
    plt = _pyplot()
    fig, (loss, acc) = plt.subplots(1, 2, figsize=(9, 3.8), dpi=110)
    for name, frame in curves.items():
        loss.plot(frame["epoch"], frame["loss"], label=name)
        acc.plot(frame["epoch"], frame["accuracy"], label=name)
    for ax, title in ((loss, "training loss"), (acc, "training accuracy")):
        ax.set_xlabel("epoch")
        ax.set_title(f"{title} (mean over seeds)")
        ax.grid(alpha=0.3)
    acc.legend(fontsize=8)
    _save(fig, path)


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
    from retrainlab.decision.evaluation import TEST_SETS, per_class_recall

    rows: dict[str, dict[str, pd.Series]] = {}
    for strategy, confusion in confusions.items():
        recall = per_class_recall(confusion)
        for test_set in recall.columns:
            rows.setdefault(test_set, {})[strategy] = recall[test_set]
    tables = {}
    for test_set in [t for t in TEST_SETS if t in rows]:
        table = pd.DataFrame(rows[test_set]).T
        tables[test_set] = table[sorted(table.columns, key=_label_key)].dropna(axis=1, how="all")
    return tables


def _plot_confusion(path: str, confusions: Mapping[str, Mapping[str, list]]) -> None:
    """Row-normalised confusion matrices: a column per strategy, a row per test set."""
    plt = _pyplot()
    sets = ["old", "new"]
    fig, axes = plt.subplots(len(sets), max(1, len(confusions)), figsize=(2.4 * max(1, len(confusions)) + 1, 5.2),
                             dpi=100, squeeze=False)
    labels = sorted({label for confusion in confusions.values() for pairs in confusion.values()
                     for actual, predicted, _ in pairs for label in (actual, predicted)}, key=_label_key)
    for column, (strategy, confusion) in enumerate(confusions.items()):
        for row, test_set in enumerate(sets):
            ax = axes[row][column]
            counts = pd.DataFrame(confusion.get(test_set, []), columns=["actual", "predicted", "rows"])
            matrix = counts.pivot_table(index="actual", columns="predicted", values="rows", aggfunc="sum")
            matrix = matrix.reindex(index=labels, columns=labels).fillna(0)
            totals = matrix.sum(axis=1).replace(0, 1)
            ax.imshow((matrix.T / totals).T.to_numpy(), vmin=0, vmax=1, cmap="Blues")
            ax.set_title(f"{strategy}\n{test_set} test set", fontsize=8)
            ax.set_xticks(range(len(labels)), [_short(label) for label in labels], fontsize=6, rotation=90)
            ax.set_yticks(range(len(labels)), [_short(label) for label in labels], fontsize=6)
            if column == 0:
                ax.set_ylabel("actual", fontsize=7)
            if row == len(sets) - 1:
                ax.set_xlabel("predicted", fontsize=7)
    if not confusions:
        axes[0][0].text(0.5, 0.5, "no predictions recorded", ha="center")
    fig.suptitle("Confusion matrices, each row normalised (recall on the diagonal)", fontsize=9)
    _save(fig, path)


def _label_key(label: str):
    try:
        return (0, float(label), "")
    except ValueError:
        return (1, 0.0, label)


def _plot_diagnostics(path: str, diagnostics: Mapping[str, Any], changes) -> None:
    """The most shifted features' PSI, with the change classification written above."""
    plt = _pyplot()
    features = list(diagnostics.get("top_shifted_features", []))[:10]
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    names = [_short(str(f["feature"]), 30) for f in features][::-1]
    values = [f["psi"] for f in features][::-1]
    ax.barh(names or ["(no feature)"], values or [0.0], color="tab:blue")
    ax.axvline(0.25, color="tab:red", linestyle="--", linewidth=1, label="PSI 0.25: a large shift")
    ax.set_xlabel("population stability index (PSI), new against old")
    kinds = "; ".join(c.kind for c in changes) or "not classified"
    ax.set_title(f"What changed: {kinds}\n(domain AUC {diagnostics.get('domain_auc', float('nan')):.2f}, label "
                 f"shift {diagnostics.get('label_shift_tv', float('nan')):.2f})", fontsize=9)
    ax.legend(fontsize=7, loc="lower right")
    ax.grid(alpha=0.3, axis="x")
    _save(fig, path)


def _short(label: str, chars: int = 16) -> str:
    """A label as a tick shows it: its start, where it is long (the report has it whole)."""
    return label if len(label) <= chars else label[: chars - 1] + "…"


def _save(fig, path: str) -> None:
    """Lay out, write as PNG and close. A label in a script the font lacks is drawn as a box,
    and a layout that cannot fit every tick stays as drawn: matplotlib's warnings about
    either are left out (the labels are in the report, whole)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"Glyph \d+ .*missing from", category=UserWarning)
        warnings.filterwarnings("ignore", message=r"Tight layout not applied", category=UserWarning)
        fig.tight_layout()
        fig.savefig(path, format="png")
    _pyplot().close(fig)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only; no display
    import matplotlib.pyplot as plt

    return plt


def version_description(strategy: str, summary: str, seed: int, seeds: int, own: dict[str, float],
                        means: dict[str, float], verdict: str | None = None) -> Markdown:
    """A registered version's description in the MLflow UI: what it is, its verdict once
    compare has judged it, its own figures and the means over the seeds."""
    out = [md("**{}**: {}. The model of seed {}, one of {} trained.", strategy, summary, seed, seeds)]
    if verdict is not None:
        out.append(md("Verdict of the comparison: **{}**.", verdict))
    out += [md(""), md("| figure | this model (seed {}) | mean over {} seeds |", seed, seeds), md("|---|---|---|")]
    out += [md("| {} | {:.4f} | {:.4f} |", name, own[name], means[name]) for name in HEADLINE if name in own]
    return lines(out)


def decision_description(records: Mapping[str, StrategyRecord], verdict: comparison.Verdict, headline: str,
                         reasons: list[str]) -> Markdown:
    """The pipeline run's description in the MLflow UI: the headline, a row per strategy, why."""
    rows = comparison.metric_rows(records, verdict)
    cost = verdict.cost_metric
    out = [md("{}", headline), md(""),
           md("| strategy | verdict | target | acc_old | acc_new | forgetting | {} | seeds | version |", cost),
           md("|---|---|---|---|---|---|---|---|---|")]
    for strategy, row in rows.items():
        name = md("**{}**", strategy) if strategy == verdict.recommended else md("{}", strategy)
        out.append(md("| {} | {} | {:.4f} | {:.4f} | {:.4f} | {:.4f} | {:g} | {} | {} |", name, row["verdict"],
                      row["target"], row["acc_old"], row["acc_new"], row["forgetting"], row[cost], row["seeds"],
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
        md("Means over {} seeds with 95% intervals: target {}, acc_old {:.4f}, acc_new {:.4f}, forgetting {}, {} {:g}.",
           len(record.per_seed), Markdown(a.target.text(4)), record.means["acc_old"], record.means["acc_new"],
           Markdown(a.forgetting.text(4)), verdict.cost_metric, a.adoption_cost),
        md(""),
        md("Registered as version {} (the model of seed {}).", record.version, record.mlflow.model_seed),
    ])
