"""The report's plots as drawn: the counts in the confusion matrices, the options' names in
accuracy_vs_cost.png clear of one another, and the held-out curves with their axes named in
learning_curves.png. Each plot is written to a real PNG; the figure is read as it was saved."""

import itertools

import pandas as pd
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.text import Text

from retrainlab.config import CompareParams
from retrainlab.decision import comparison
from retrainlab.measure.record import Runs, StrategyRecord
from retrainlab.measure.task import measure_of
from retrainlab.reporting import plots

POLICY = CompareParams(new_traffic_share=0.5, tolerance=0.01, max_forgetting=0.025)
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def saved(monkeypatch):
    """The figures `plots.save` writes, kept to be read after it saved them."""
    figures, save = [], plots.save

    def keep(fig, path, **kwargs):
        figures.append(fig)
        save(fig, path, **kwargs)

    monkeypatch.setattr(plots, "save", keep)
    return figures


def record(strategy, acc_old, acc_new, cpu):
    per_seed = {str(i): {"acc_old": o, "acc_new": n, "forgetting": 0.0, "cpu_seconds": cpu}
                for i, (o, n) in enumerate(zip(acc_old, acc_new))}
    return StrategyRecord.of_seeds(strategy, 1, per_seed, {}, Runs("1", "r", "p", {}, "m", 1, 0))


def test_the_confusion_matrices_write_each_cells_count_in_it(tmp_path, saved):
    confusion = {"old": [["0", "0", 9], ["0", "1", 1], ["1", "1", 10]],
                 "new": [["0", "0", 5], ["1", "0", 5], ["2", "2", 12]]}
    plots.plot_confusion(str(tmp_path / "confusion.png"), {"baseline": confusion, "replay": confusion})
    assert (tmp_path / "confusion.png").read_bytes().startswith(PNG)
    (fig,) = saved
    old, new = [[ax for ax in fig.axes if ax.get_title().endswith(f"{test_set} test set")]
                for test_set in ("old", "new")]
    assert len(old) == len(new) == 2

    def written(ax):  # (row, column) of each cell: its text
        return {(round(t.get_position()[1]), round(t.get_position()[0])): t.get_text() for t in ax.texts}

    assert written(old[0]) == {(0, 0): "9", (0, 1): "1", (1, 1): "10"}  # classes 0, 1 and 2; an empty cell: blank
    assert written(new[1]) == {(0, 0): "5", (1, 0): "5", (2, 2): "12"}


def test_the_options_names_in_accuracy_vs_cost_do_not_overprint(tmp_path, saved):
    """replay and incremental at nearly the same cost and target: their names used to print
    one over the other."""
    records = {"baseline": record("baseline", [0.95, 0.95], [0.40, 0.42], 1.0),
               "full-retrain": record("full-retrain", [0.95, 0.96], [0.90, 0.91], 3.6),
               "incremental": record("incremental", [0.93, 0.94], [0.85, 0.86], 1.82),
               "replay": record("replay", [0.93, 0.94], [0.855, 0.865], 1.84),
               "fine-tune": record("fine-tune", [0.92, 0.93], [0.84, 0.85], 1.80),
               "distill": record("distill", [0.94, 0.95], [0.85, 0.86], 1.86)}
    verdict = comparison.recommend(records, POLICY)
    rows = comparison.table(records, verdict)
    points = {row["strategy"]: (row["adoption_cost"], row["target"]) for row in rows}
    plots.plot_cost(str(tmp_path / "cost.png"), rows, points, verdict, verdict.tolerance)
    assert (tmp_path / "cost.png").read_bytes().startswith(PNG)
    (fig,) = saved
    (ax, *_) = fig.axes
    canvas = FigureCanvasAgg(fig)  # pyplot let go of the figure when it was saved; its layout stays
    canvas.draw()
    renderer = canvas.get_renderer()
    # Each name's text as drawn, without the line from it to its point (Annotation's own box has both).
    names = {text.get_text(): Text.get_window_extent(text, renderer) for text in ax.texts}
    assert set(names) == set(records)
    frame = ax.get_window_extent(renderer)
    for one, other in itertools.combinations(names, 2):
        assert not names[one].overlaps(names[other]), (one, other)
    for name, box in names.items():
        assert frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1, name


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_the_learning_curves_draw_the_held_out_figure_with_every_axis_named(tmp_path, saved, task):
    m = measure_of(task)
    figure = "accuracy" if task == "classification" else "rmse"
    curves = {s: pd.DataFrame({"epoch": [1, 2, 3], "loss": [2.0, 1.0, 0.5], figure: [0.5, 0.7, 0.8],
                               f"held_out_{m.old}": [0.9, 0.85, 0.8], f"held_out_{m.new}": [0.3, 0.6, 0.7]})
              for s in ("baseline", "incremental")}
    plots.plot_curves(str(tmp_path / "curves.png"), curves, m)
    assert (tmp_path / "curves.png").read_bytes().startswith(PNG)
    (fig,) = saved
    assert all(ax.get_ylabel() and ax.get_xlabel() == "epoch" for ax in fig.axes)
    held_out = [line for ax in fig.axes for line in ax.get_lines() if (line.get_gid() or "").startswith("held-out")]
    assert sorted(line.get_gid() for line in held_out) == ["held-out new"] * 2 + ["held-out old"] * 2
    assert list(held_out[0].get_ydata()) == [0.9, 0.85, 0.8]
    (panel,) = {line.axes for line in held_out}
    assert panel.get_ylabel() == ("held-out accuracy" if task == "classification" else "held-out RMSE")
