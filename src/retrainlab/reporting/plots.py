"""The report's plots, as PNG files: accuracy against cost, the learning curves, the
confusion matrices and what changed; matplotlib on its Agg backend (files only)."""

from __future__ import annotations

import warnings
from collections.abc import Mapping

import matplotlib

matplotlib.use("Agg")  # chosen before pyplot loads: no display, no GUI toolkit
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from retrainlab.data import TEXT  # noqa: E402
from retrainlab.decision import comparison  # noqa: E402
from retrainlab.decision.diagnosis import Diagnosis


def plot_cost(path: str, rows, points, verdict: comparison.Verdict, tolerance: float) -> None:
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
    save(fig, path)


def plot_curves(path: str, curves: Mapping[str, pd.DataFrame]) -> None:
    fig, (loss, acc) = plt.subplots(1, 2, figsize=(9, 3.8), dpi=110)
    for name, frame in curves.items():
        loss.plot(frame["epoch"], frame["loss"], label=name)
        acc.plot(frame["epoch"], frame["accuracy"], label=name)
    for ax, title in ((loss, "training loss"), (acc, "training accuracy")):
        ax.set_xlabel("epoch")
        ax.set_title(f"{title} (mean over seeds)")
        ax.grid(alpha=0.3)
    acc.legend(fontsize=8)
    save(fig, path)


def plot_confusion(path: str, confusions: Mapping[str, Mapping[str, list]]) -> None:
    """Row-normalised confusion matrices: a column per strategy, a row per test set."""
    sets = ["old", "new"]
    fig, axes = plt.subplots(len(sets), max(1, len(confusions)), figsize=(2.4 * max(1, len(confusions)) + 1, 5.2),
                             dpi=100, squeeze=False)
    labels = sorted({label for confusion in confusions.values() for pairs in confusion.values()
                     for actual, predicted, _ in pairs for label in (actual, predicted)}, key=label_key)
    for column, (strategy, confusion) in enumerate(confusions.items()):
        for row, test_set in enumerate(sets):
            ax = axes[row][column]
            counts = pd.DataFrame(confusion.get(test_set, []), columns=["actual", "predicted", "rows"])
            matrix = counts.pivot_table(index="actual", columns="predicted", values="rows", aggfunc="sum")
            matrix = matrix.reindex(index=labels, columns=labels).fillna(0)
            totals = matrix.sum(axis=1).replace(0, 1)
            ax.imshow((matrix.T / totals).T.to_numpy(), vmin=0, vmax=1, cmap="Blues")
            ax.set_title(f"{strategy}\n{test_set} test set", fontsize=8)
            ax.set_xticks(range(len(labels)), [short(label) for label in labels], fontsize=6, rotation=90)
            ax.set_yticks(range(len(labels)), [short(label) for label in labels], fontsize=6)
            if column == 0:
                ax.set_ylabel("actual", fontsize=7)
            if row == len(sets) - 1:
                ax.set_xlabel("predicted", fontsize=7)
    if not confusions:
        axes[0][0].text(0.5, 0.5, "no predictions recorded", ha="center")
    fig.suptitle("Confusion matrices, each row normalised (recall on the diagonal)", fontsize=9)
    save(fig, path)


def label_key(label: str):
    try:
        return (0, float(label), "")
    except ValueError:
        return (1, 0.0, label)


def plot_diagnostics(path: str, diagnostics: Diagnosis, changes) -> None:
    """The most shifted features' PSI, with the change classification written above."""
    features = list(diagnostics.top_shifted_features)[:10]
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    # A text column's PSI is of its texts' lengths in tokens (retrainlab.decision.diagnostics).
    names = [short(str(f.feature), 30) + (" (length)" if f.kind == TEXT else "") for f in features][::-1]
    values = [f.psi for f in features][::-1]
    ax.barh(names or ["(no feature)"], values or [0.0], color="tab:blue")
    ax.axvline(0.25, color="tab:red", linestyle="--", linewidth=1, label="PSI 0.25: a large shift")
    ax.set_xlabel("population stability index (PSI), new against old")
    kinds = "; ".join(c.kind for c in changes) or "not classified"
    ax.set_title(f"What changed: {kinds}\n(domain AUC {diagnostics.domain_auc:.2f}, label "
                 f"shift {diagnostics.label_shift_tv:.2f})", fontsize=9)
    ax.legend(fontsize=7, loc="lower right")
    ax.grid(alpha=0.3, axis="x")
    save(fig, path)


def short(label: str, chars: int = 16) -> str:
    """A label as a tick shows it: its start, where it is long (the report has it whole)."""
    return label if len(label) <= chars else label[: chars - 1] + "…"


def save(fig, path: str) -> None:
    """Lay out, write as PNG and close. A label in a script the font lacks is drawn as a box,
    and a layout that cannot fit every tick stays as drawn: matplotlib's warnings about
    either are left out (the labels are in the report, whole)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"Glyph \d+ .*missing from", category=UserWarning)
        warnings.filterwarnings("ignore", message=r"Tight layout not applied", category=UserWarning)
        fig.tight_layout()
        fig.savefig(path, format="png")
    plt.close(fig)
