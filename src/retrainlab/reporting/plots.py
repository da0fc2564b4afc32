"""The report's plots, as PNG files: the target against cost, the learning curves, a
classifier's confusion matrices or a regressor's predicted-against-true and residual plots,
and what changed; matplotlib on its Agg backend (files only)."""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Mapping

import matplotlib

matplotlib.use("Agg")  # chosen before pyplot loads: no display, no GUI toolkit
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.text import Text  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402
from matplotlib.transforms import Bbox  # noqa: E402

from retrainlab.base.tasks import CLASSIFICATION, REGRESSION  # noqa: E402
from retrainlab.data import TEXT  # noqa: E402
from retrainlab.decision import comparison  # noqa: E402
from retrainlab.decision.diagnosis import Diagnosis  # noqa: E402
from retrainlab.measure.task import Measure, measure_of  # noqa: E402

# The training figure each task's curves hold (the Keras metric's name) and its title.
CURVE_FIGURE = {CLASSIFICATION: ("accuracy", "training accuracy"), REGRESSION: ("rmse", "training RMSE")}
SET_COLOURS = {"old": "tab:blue", "new": "tab:orange"}
SHOWN_ROWS = 2_000  # points per test set and option in a scatter plot: a sample of the rows beyond


def plot_cost(path: str, rows, points, verdict: comparison.Verdict, tolerance: float) -> None:
    """Each option's target against its cost to adopt, the Pareto front, and the band within
    `tolerance` (in the figure's units) of the best, on the better side of it."""
    m = verdict.measure
    fig, ax = plt.subplots(figsize=(8, 6), dpi=110)
    for row in rows:
        name = row["strategy"]
        err = [[row["target"] - row["target_low"]], [row["target_high"] - row["target"]]]
        marker = "*" if name == verdict.recommended else "o"
        ax.errorbar(row["adoption_cost"], row["target"], yerr=err, fmt=marker, markersize=12 if marker == "*" else 7,
                    capsize=4, label=f"{name} ({verdict.status(name).split(':')[0]})")
    front = comparison.pareto_front({n: (cost, m.goodness(target)) for n, (cost, target) in points.items()})
    ax.plot([points[n][0] for n in front], [points[n][1] for n in front], "--", color="grey", label="Pareto front")
    best = verdict.assessments[verdict.best].target.mean
    ax.axhspan(*((best - tolerance, best) if m.higher_is_better else (best, best + tolerance)), color="tab:green",
               alpha=0.12, label=f"within the tolerance of the best ({verdict.best})")
    ax.set_xlabel(f"cost to adopt ({verdict.cost_metric}; leaving the model alone costs 0)")
    if m.higher_is_better:
        ax.set_ylabel(f"target {m.short} (mean, 95% interval)")
        ax.set_title(f"{m.short[0].upper() + m.short[1:]} against cost: recommended {verdict.recommended}")
    else:
        ax.set_ylabel(f"target {m.short} (lower is better; mean, 95% interval)")
        ax.set_title(f"{m.short[0].upper() + m.short[1:]} against cost: recommended {verdict.recommended}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2, frameon=False)
    lay_out(fig)  # first: the names go where the saved figure draws the points
    name_points(ax, [(row["strategy"], row["adoption_cost"], row["target"]) for row in rows])
    save(fig, path)


# Where a point's name may go, in points from the point: beside it, then higher or lower and
# further out (with a line to its point), until it covers no other name nor point.
LABEL_OFFSETS = [(side * 7, rise) for rise in (0, -12, 12, -24, 24, -36, 36, -48, 48) for side in (1, -1)]


def name_points(ax, points: list[tuple[str, float, float]]) -> None:
    """Write each point's name by it, at the first place in LABEL_OFFSETS where it covers no
    name written before it, no point and nothing outside the axes (the first place where
    none is free). Points as (name, x, y) in data units, on an axes laid out as it will be
    saved: the names' places are measured as drawn."""
    fig = ax.figure
    with _quiet():
        fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    frame = ax.get_window_extent(renderer)
    half = 5 * fig.dpi / 72  # a marker's half-width, 5 points, in pixels
    taken = [Bbox.from_bounds(cx - half, cy - half, 2 * half, 2 * half)
             for cx, cy in (ax.transData.transform((x, y)) for _, x, y in points)]

    def label(name, xy, dx, dy):
        return ax.annotate(name, xy, textcoords="offset points", xytext=(dx, dy), fontsize=9, va="center",
                           ha="left" if dx > 0 else "right",
                           arrowprops={"arrowstyle": "-", "color": "grey", "lw": 0.6, "shrinkB": 4} if dy else None)

    for name, x, y in points:
        for dx, dy in LABEL_OFFSETS:
            text = label(name, (x, y), dx, dy)
            box = written_box(text, renderer)
            inside = frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1
            if inside and not any(box.overlaps(other) for other in taken):
                break
            text.remove()
        else:
            box = written_box(label(name, (x, y), *LABEL_OFFSETS[0]), renderer)
        taken.append(box)


def written_box(annotation, renderer) -> Bbox:
    """Where an annotation's text is drawn, in pixels: its text's box, without the line to
    its point."""
    annotation.update_positions(renderer)
    return Text.get_window_extent(annotation, renderer)


def plot_curves(path: str, curves: Mapping[str, pd.DataFrame], measure: Measure | None = None) -> None:
    """Per epoch, mean over the seeds: the training loss, the task's training figure
    (accuracy, RMSE) and that figure on the old and the new test set (held out: what the
    decision weighs), an option in one colour in every panel."""
    m = measure_of((measure or measure_of(None)).task)  # the curves are the task's own figure, whatever is weighed
    column, name = CURVE_FIGURE[m.task]
    figure = "accuracy" if m.higher_is_better else m.primary.upper()
    fig, (loss, training, held_out) = plt.subplots(1, 3, figsize=(13, 4), dpi=110)
    for i, (strategy, frame) in enumerate(curves.items()):
        colour = f"C{i % 10}"
        loss.plot(frame["epoch"], frame["loss"], color=colour, label=strategy)
        if column in frame:
            training.plot(frame["epoch"], frame[column], color=colour)
        for test_set, held, style in (("old", f"held_out_{m.old}", "-"), ("new", f"held_out_{m.new}", "--")):
            if held in frame:  # as the training loop logs it, on the test sets
                held_out.plot(frame["epoch"], frame[held], style, color=colour, gid=f"held-out {test_set}")
    panels = ((loss, "training loss", "loss"), (training, name, figure),
              (held_out, f"held-out {figure}: old test set solid, new dashed", f"held-out {figure}"))
    for ax, title, label in panels:
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(label)
        ax.set_title(title, fontsize=9)
        ax.grid(alpha=0.3)
    fig.suptitle("Learning curves, mean over the seeds", fontsize=10)
    fig.legend(*loss.get_legend_handles_labels(), loc="lower center", ncol=min(len(curves), 8) or 1, fontsize=8,
               frameon=False)
    save(fig, path, legend=True)


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
            shares = (matrix.T / totals).T.to_numpy()
            ax.imshow(shares, vmin=0, vmax=1, cmap="Blues")
            write_counts(ax, matrix.to_numpy(), shares)
            ax.set_title(f"{strategy}\n{test_set} test set", fontsize=8)
            ax.set_xticks(range(len(labels)), [short(label) for label in labels], fontsize=6, rotation=90)
            ax.set_yticks(range(len(labels)), [short(label) for label in labels], fontsize=6)
            if column == 0:
                ax.set_ylabel("actual", fontsize=7)
            if row == len(sets) - 1:
                ax.set_xlabel("predicted", fontsize=7)
    if not confusions:
        axes[0][0].text(0.5, 0.5, "no predictions recorded", ha="center")
    fig.suptitle("Confusion matrices: the test rows in each cell (none where blank), shaded by the share of "
                 "their row (recall on the diagonal)", fontsize=9)
    save(fig, path)


def write_counts(ax, counts: np.ndarray, shares: np.ndarray) -> None:
    """Each cell's count of test rows written in it (none in an empty cell), white on a dark
    cell; small enough for the cells of this many classes."""
    size = max(3.5, min(8.0, 60 / max(1, len(counts))))
    for (row, column), count in np.ndenumerate(counts):
        if count:
            ax.text(column, row, f"{count:.0f}", ha="center", va="center", fontsize=size,
                    color="white" if shares[row, column] > 0.6 else "black")


# A regressor's predictions CSV (plots/NAME-predictions.csv): `actual` and `predicted` are the
# bands DVC's confusion template draws, these two columns the numbers the report's plots draw.
ACTUAL_VALUE, PREDICTED_VALUE = "actual_value", "predicted_value"
BANDS = 10


def banded(frame: pd.DataFrame, bands: int = BANDS) -> pd.DataFrame:
    """A regressor's true and predicted numbers (columns test_set, actual, predicted) as DVC's
    confusion template can draw them: `actual` and `predicted` become one of `bands` equal
    bands of the true values' range over every test set ("01: 2.05 to 4.66", text that sorts
    as the bands do), so the matrix is a predicted-against-true density; the numbers stay, as
    `actual_value` and `predicted_value`. A prediction outside the true values' range falls in
    the first or last band, which is open-ended ("01: under 4.66", "10: 23.4 or more")."""
    actual = pd.to_numeric(frame["actual"], errors="coerce").to_numpy(dtype=float)
    predicted = pd.to_numeric(frame["predicted"], errors="coerce").to_numpy(dtype=float)
    out = pd.DataFrame({"test_set": frame["test_set"].to_numpy(), "actual": "", "predicted": "",
                        ACTUAL_VALUE: actual, PREDICTED_VALUE: predicted})
    finite = actual[np.isfinite(actual)]
    if not len(finite):
        return out
    low, high = float(finite.min()), float(finite.max())
    width = (high - low) / bands
    if width <= 0 or not math.isfinite(width):
        out["actual"] = out["predicted"] = f"01: {low:.4g}"
        return out
    digits = max(0, 2 - math.floor(math.log10(width)))  # three significant digits of a band's width
    edges = [f"{low + i * width:.{digits}f}" for i in range(bands + 1)]
    pad = len(str(bands))
    names = [f"{i + 1:0{pad}d}: {edges[i]} to {edges[i + 1]}" for i in range(bands)]
    names[0] = f"{1:0{pad}d}: under {edges[1]}"
    names[-1] = f"{bands:0{pad}d}: {edges[-2]} or more"

    def band(values: np.ndarray) -> np.ndarray:
        index = np.clip(np.nan_to_num(np.floor((values - low) / width)), 0, bands - 1).astype(int)
        return np.where(np.isnan(values), "", np.asarray(names, dtype=object)[index])

    out["actual"], out["predicted"] = band(actual), band(predicted)
    return out


def plot_predicted(path: str, predictions: Mapping[str, pd.DataFrame]) -> None:
    """A regressor's predictions against the true values: a panel per option (the registered
    seed's model), the old and the new test set in their colours, the diagonal where the two
    agree. `predictions` holds each option's test_set, actual and predicted numbers."""
    low, high = _padded(*_span([_extent(f[c]) for f in predictions.values() for c in ("actual", "predicted")]))
    fig, axes = _panels(len(predictions))
    for ax, (strategy, frame) in zip(axes, predictions.items()):
        for test_set, rows in _by_test_set(frame):
            ax.scatter(rows["actual"], rows["predicted"], s=5, alpha=0.4, linewidths=0,
                       color=SET_COLOURS.get(test_set, "tab:grey"), label=f"{test_set} test set")
        ax.plot([low, high], [low, high], "--", color="grey", linewidth=1, label="predicted = true")
        ax.set_xlim(low, high)
        ax.set_ylim(low, high)
        ax.set_title(short(strategy, 30), fontsize=9)
        ax.set_xlabel("true value", fontsize=8)
        ax.set_ylabel("predicted", fontsize=8)
    _finish(fig, axes, predictions, "Predicted against true, registered seed's model (on the diagonal: exact)")
    save(fig, path, legend=True)


def plot_residuals(path: str, predictions: Mapping[str, pd.DataFrame]) -> None:
    """A regressor's residuals (true - predicted) against its predictions: a panel per
    option, the old and the new test set in their colours; a trend or a funnel around 0 is
    an error the RMSE alone does not show."""
    residuals = {s: f.assign(residual=f["actual"] - f["predicted"]) for s, f in predictions.items()}
    x = _padded(*_span([_extent(f["predicted"]) for f in residuals.values()]))
    low, high = _span([_extent(f["residual"]) for f in residuals.values()])
    bound = 1.05 * max(abs(low), abs(high)) if math.isfinite(low) and math.isfinite(high) else 1.0
    bound = bound or 1.0
    fig, axes = _panels(len(residuals))
    for ax, (strategy, frame) in zip(axes, residuals.items()):
        for test_set, rows in _by_test_set(frame):
            ax.scatter(rows["predicted"], rows["residual"], s=5, alpha=0.4, linewidths=0,
                       color=SET_COLOURS.get(test_set, "tab:grey"), label=f"{test_set} test set")
        ax.axhline(0, color="grey", linestyle="--", linewidth=1)
        ax.set_xlim(*x)
        ax.set_ylim(-bound, bound)
        ax.set_title(short(strategy, 30), fontsize=9)
        ax.set_xlabel("predicted", fontsize=8)
        ax.set_ylabel("residual (true - predicted)", fontsize=8)
    _finish(fig, axes, residuals, "Residuals against predictions, registered seed's model (above 0: predicted too low)")
    save(fig, path, legend=True)


def plot_no_classes(path: str, instead: str, numbers: bool = True) -> None:
    """What a regressor's report writes where a classifier's confusion matrices go (and a
    classifier's where a regressor's plots go, `numbers` False): a note that there are
    none, and where the predictions are drawn instead."""
    fig, ax = plt.subplots(figsize=(6, 1.6), dpi=100)
    ax.axis("off")
    said = ("No classes: the model predicts a number, so there is no confusion matrix." if numbers
            else "A classifier: its predictions are classes, drawn as confusion matrices.")
    ax.text(0.5, 0.5, f"{said}\nSee {instead}.", ha="center", va="center", fontsize=9)
    save(fig, path)


def _panels(count: int):
    """A grid of `count` panels, four to a row, as a flat list."""
    columns = max(1, min(4, count))
    rows = max(1, math.ceil(count / columns))
    fig, axes = plt.subplots(rows, columns, figsize=(2.9 * columns + 0.6, 2.8 * rows + 0.9), dpi=100,
                             squeeze=False)
    return fig, list(axes.flat)


def _finish(fig, axes: list, frames: Mapping[str, pd.DataFrame], title: str) -> None:
    """One legend, the unused panels hidden, the title; a note where nothing was recorded."""
    for ax in axes[len(frames):]:
        ax.axis("off")
    if not frames:
        axes[0].axis("off")
        axes[0].text(0.5, 0.5, "no predictions recorded", ha="center")
    else:
        handles, labels = axes[0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="lower center", ncol=len(labels) or 1, fontsize=8, frameon=False,
                   markerscale=3)
    fig.suptitle(title, fontsize=9)


def _by_test_set(frame: pd.DataFrame):
    """Each test set's rows, the old first; a sample of SHOWN_ROWS where there are more."""
    for test_set in sorted(frame["test_set"].unique(), key=lambda t: (list(SET_COLOURS) + [t]).index(t)):
        rows = frame[frame["test_set"] == test_set]
        yield test_set, rows.sample(SHOWN_ROWS, random_state=0) if len(rows) > SHOWN_ROWS else rows


def _extent(values: pd.Series) -> tuple[float, float]:
    finite = values[np.isfinite(values)]
    return (float(finite.min()), float(finite.max())) if len(finite) else (math.inf, -math.inf)


def _span(extents: list[tuple[float, float]]) -> tuple[float, float]:
    lows, highs = zip(*extents) if extents else ((math.inf,), (-math.inf,))
    return min(lows), max(highs)


def _padded(low: float, high: float) -> tuple[float, float]:
    """An axis' limits: the values' range and 5% either side (0 to 1 where there are none)."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return 0.0, 1.0
    pad = 0.05 * (high - low) or 0.5 * max(abs(low), 1.0)
    return low - pad, high + pad


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
    ax.set_title(f"What changed: {kinds}\n(domain AUC {diagnostics.domain_auc:.2f}, {diagnostics.label_shift})",
                 fontsize=9)
    ax.legend(fontsize=7, loc="lower right")
    ax.grid(alpha=0.3, axis="x")
    save(fig, path)


def short(label: str, chars: int = 16) -> str:
    """A label as a tick shows it: its start, where it is long (the report has it whole)."""
    return label if len(label) <= chars else label[: chars - 1] + "…"


def save(fig, path: str, legend: bool = False) -> None:
    """Lay out (`lay_out`), write as PNG and close."""
    with _quiet():
        lay_out(fig, legend)
        fig.savefig(path, format="png")
    plt.close(fig)


def lay_out(fig, legend: bool = False) -> None:
    """Fit the panels to the figure. `legend`: the figure's legend is below the panels, in a
    strip the layout leaves free."""
    with _quiet():
        fig.tight_layout(rect=(0, 0.45 / fig.get_size_inches()[1], 1, 1) if legend else None)


@contextlib.contextmanager
def _quiet():
    """A label in a script the font lacks is drawn as a box, and a layout that cannot fit
    every tick stays as drawn: matplotlib's warnings about either are left out (the labels
    are in the report, whole)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"Glyph \d+ .*missing from", category=UserWarning)
        warnings.filterwarnings("ignore", message=r"Tight layout not applied", category=UserWarning)
        yield
