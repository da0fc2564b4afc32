"""Write the comparison to reports/: Markdown, JSON, CSV, two PNG plots and DVC's plot data."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from retrainlab import comparison, escape, layout
from retrainlab.config import CompareParams
from retrainlab.files import write_atomically, write_text_atomically
from retrainlab.record import StrategyRecord


def write_report(
    root: Path,
    records: Mapping[str, StrategyRecord],
    verdict: comparison.Verdict,
    diagnostics: Mapping[str, Any],
    policy: CompareParams,
    curves: Mapping[str, pd.DataFrame],
) -> dict[str, Any]:
    """Write every report file; return the JSON summary (what reports/comparison.json holds)."""
    rows = comparison.table(records, verdict)
    summary = {
        "recommended": verdict.recommended,
        "best": verdict.best,
        "separated": verdict.separated,
        "fallback": verdict.fallback,
        "cost_metric": verdict.cost_metric,
        "reasons": verdict.reasons,
        "policy": dict(vars(policy)),
        "diagnostics": diagnostics,
        "strategies": {row["strategy"]: row for row in rows},
    }
    points = {row["strategy"]: (row["adoption_cost"], row["target"]) for row in rows}
    scatter = pd.DataFrame(
        [{"strategy": s, "cost": c, "target": t, "pareto": s in comparison.pareto_front(points)}
         for s, (c, t) in points.items()]
    )
    write_atomically(root / layout.REPORT_PNG_COST, lambda p: _plot_cost(p, rows, points, verdict))
    write_atomically(root / layout.REPORT_PNG_CURVES, lambda p: _plot_curves(p, curves))
    write_text_atomically(root / layout.REPORT_CSV, escape.csv_frame(pd.DataFrame(rows)).to_csv(index=False))
    write_text_atomically(root / layout.REPORT_SCATTER, escape.csv_frame(scatter).to_csv(index=False))
    write_text_atomically(root / layout.REPORT_MD, comparison.markdown(rows, verdict, diagnostics, policy))
    write_text_atomically(root / layout.REPORT_JSON, json.dumps(summary, indent=2, default=str) + "\n")
    return summary


def _plot_cost(path: str, rows, points, verdict: comparison.Verdict) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    for row in rows:
        name = row["strategy"]
        err = [[row["target"] - row["target_low"]], [row["target_high"] - row["target"]]]
        marker = "*" if name == verdict.recommended else "o"
        ax.errorbar(row["adoption_cost"], row["target"], yerr=err, fmt=marker, markersize=12 if marker == "*" else 7,
                    capsize=4, label=f"{name} ({verdict.status(name)})")
        ax.annotate(name, (row["adoption_cost"], row["target"]), textcoords="offset points", xytext=(6, -12))
    front = comparison.pareto_front(points)
    ax.plot([points[n][0] for n in front], [points[n][1] for n in front], "--", color="grey", label="Pareto front")
    ax.set_xlabel(f"cost to adopt ({verdict.cost_metric}; leaving the model alone costs 0)")
    ax.set_ylabel("target accuracy (mean, 95% interval)")
    ax.set_title(f"Accuracy against cost: recommended {verdict.recommended}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)


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
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only; no display
    import matplotlib.pyplot as plt

    return plt
