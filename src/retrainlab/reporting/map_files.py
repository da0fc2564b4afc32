"""The decision map's files: map.csv (a row per cell), map.json (the grid, the policy and
every cell's figures), and three heatmaps, rendered in memory once every cell is measured
and only then written, each by rename. Their words and units are the grid's task's: a gain
is an improvement on keeping the model, in accuracy or in the label's units of error."""

from __future__ import annotations

import io
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.colors import ListedColormap
from matplotlib.patches import Patch

from retrainlab.base.files import write_atomically
from retrainlab.config import Params
from retrainlab.decision.map_grid import (
    CSV_NAME,
    FIGURES,
    JSON_NAME,
    PNG_GAIN,
    PNG_GAIN_PER_COST,
    PNG_RECOMMENDED,
    Cell,
    Grid,
)
from retrainlab.measure.task import Measure, measure_of
from retrainlab.reporting.plots import plt
from retrainlab.strategies import BASELINE


def columns(options: Sequence[str]) -> list[str]:
    """map.csv's columns, in order."""
    place = ["source", "scenario", "size", "strength", "unseen_share", "affected_classes"]
    verdict = ["recommended", "rule", "best", "fallback", "separated", "skipped", "rows_old", "rows_new"]
    keep = ["baseline_target", "baseline_cpu_seconds"]
    return place + verdict + keep + [f"{o}_{figure}" for o in options for figure in FIGURES] + ["seconds"]


def write_map(out: Path, rows: list[dict], grid: Grid, params: Params) -> None:
    """Render every output in memory, then write each by rename."""
    options = list(params.strategies)
    m = measure_of(grid.task, params.compare.metric)  # prepare resolved it on every cell's data
    flat = [{k: v for k, v in row.items() if k != "detail"} for row in rows]
    table = pd.DataFrame(flat, columns=columns(options))
    for name in ("affected_classes", "rows_old", "rows_new"):  # counts, blank where not applicable
        table[name] = table[name].astype("Int64")
    csv = table.to_csv(index=False)
    summary = {
        "grid": grid.to_json(),
        "options": options,
        "task": m.task,
        "measure": m.metric,  # what the figures measure: compare.metric (accuracy, F1, RMSE, ...)
        "policy": dict(vars(params.compare)),
        "figures": meanings(m),
        "cells": [_finite(row) for row in rows],
    }
    rendered = {
        CSV_NAME: csv.encode(),
        JSON_NAME: (json.dumps(summary, indent=2) + "\n").encode(),
        PNG_RECOMMENDED: _plot_recommended(rows, grid, options),
        PNG_GAIN: _plot_strategy_figure(rows, grid, options, "gain",
                                        f"{_gained(m)} over keeping the model", "{:+.3f}"),
        PNG_GAIN_PER_COST: _plot_strategy_figure(rows, grid, options, "gain_per_cpu_second",
                                                 f"{_gained(m)} per CPU-second of training", "{:+.4f}"),
    }
    for name, content in rendered.items():
        write_atomically(out / name, lambda tmp, content=content: Path(tmp).write_bytes(content))


def meanings(m: Measure) -> dict[str, str]:
    """What each figure of map.csv is, in the task's measure (map.json's `figures`)."""
    if m.higher_is_better:
        return {
            "target": f"(1 - new_traffic_share) * {m.old} + new_traffic_share * {m.new}, mean over the seeds",
            "gain": "the option's target minus the baseline's (keeping the model as it is)",
            "cpu_seconds": "CPU-seconds of the option's training, mean over the seeds",
            "gain_per_cpu_second": "gain / cpu_seconds",
            "forgetting": f"the baseline's {m.old} minus the option's, mean over the seeds",
        }
    return {
        "target": f"(1 - new_traffic_share) * {m.old} + new_traffic_share * {m.new}, mean over the seeds "
                  f"(an error in {m.unit}: lower is better)",
        "gain": f"the baseline's target minus the option's: the error it removes over keeping the model, in {m.unit} "
                "(positive: better)",
        "cpu_seconds": "CPU-seconds of the option's training, mean over the seeds",
        "gain_per_cpu_second": "gain / cpu_seconds",
        "forgetting": f"the option's {m.old} minus the baseline's, in {m.unit} (positive: worse on the old data), "
                      "mean over the seeds",
    }


def _gained(m: Measure) -> str:
    """The gain heatmaps' title: what a gain is."""
    return f"Gain in target {m.short}" if m.higher_is_better else f"Gain: target {m.short} removed"


def _finite(value: Any) -> Any:
    """JSON has no NaN or infinity: they become null."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


NOT_MEASURED = "n/a"  # a skipped cell, in the heatmaps


def _axes(grid: Grid) -> tuple[list[tuple[str, float | None, float | None]], list[str], list[float]]:
    """The heatmaps' rows (scenario, strength and unseen share) with their labels, and columns (sizes)."""
    scenario_rows = list(dict.fromkeys((c.scenario, c.strength, c.unseen_share) for c in grid.cells()))
    labels = [Cell("", scenario, 0.0, strength, share).scenario_label for scenario, strength, share in scenario_rows]
    return scenario_rows, labels, list(grid.sizes)


def _matrix(rows: list[dict], grid: Grid, source: str, value) -> list[list[Any]]:
    """`value(row)` for each (scenario row, size) of a source; NOT_MEASURED where it was skipped."""
    scenario_rows, _, sizes = _axes(grid)
    by_key = {(r["scenario"], r["strength"], r["unseen_share"], r["size"]): r for r in rows if r["source"] == source}

    def at(place, size):
        row = by_key.get((*place, size))
        if row is None:
            return None
        return NOT_MEASURED if row.get("skipped") else value(row)

    return [[at(place, size) for size in sizes] for place in scenario_rows]


def _size_label(size: float) -> str:
    return f"{size * 100:g}%"


def _dress(ax, grid: Grid, title: str, first_column: bool) -> None:
    _, labels, sizes = _axes(grid)
    ax.set_xticks(range(len(sizes)), [_size_label(s) for s in sizes])
    ax.set_yticks(range(len(labels)), labels if first_column else [""] * len(labels))
    ax.set_xlabel("new data, as a share of the old", fontsize=8)
    ax.tick_params(labelsize=8)
    ax.set_title(title, fontsize=9)


def _plot_recommended(rows: list[dict], grid: Grid, options: list[str]) -> bytes:
    """One panel per source: each cell coloured and named by the option recommended there."""
    names = [BASELINE, *options]
    palette = plt.get_cmap("tab10").colors
    colours = [palette[i % len(palette)] for i in range(len(names))] + [(0.85, 0.85, 0.85)]  # last: n/a
    _, labels, sizes = _axes(grid)
    # At least 4.8 inches: a map of one size is one column, and its row names and title would be cut.
    width = max(4.8, 2.2 + 1.15 * len(sizes) * len(grid.sources))
    fig, axes = plt.subplots(1, len(grid.sources), squeeze=False, dpi=110, figsize=(width, 2.0 + 0.5 * len(labels)))
    for j, (ax, source) in enumerate(zip(axes[0], grid.sources)):
        chosen = _matrix(rows, grid, source, lambda r: r["recommended"])
        codes = [[np.nan if c is None else len(names) if c == NOT_MEASURED else names.index(c) for c in line]
                 for line in chosen]
        ax.imshow(np.ma.masked_invalid(np.array(codes, dtype=float)), cmap=ListedColormap(colours),
                  vmin=-0.5, vmax=len(names) + 0.5, aspect="auto")
        for y, line in enumerate(chosen):
            for x, name in enumerate(line):
                if name is not None:
                    ax.text(x, y, name.replace("-", "-\n"), ha="center", va="center", fontsize=7)
        _dress(ax, grid, f"{source}: the option recommended", first_column=j == 0)
    handles = [Patch(color=colours[i], label=name) for i, name in enumerate(names)]
    handles.append(Patch(color=colours[-1], label="n/a: the data could not be built"))
    columns = min(len(handles), 4, max(2, int(width // 1.5)))  # a one-source map is narrow: fewer per line
    fig.legend(handles=handles, loc="lower center", ncol=columns, fontsize=7, frameon=False)
    fig.tight_layout(rect=(0, 0.06 + 0.03 * (len(handles) // columns), 1, 1))
    return _png(fig)


def _plot_strategy_figure(rows: list[dict], grid: Grid, options: list[str], figure: str, title: str,
                          fmt: str) -> bytes:
    """A panel per option (rows) and source (columns) of one figure, on one diverging scale
    centred on 0: blue better than keeping the model, red worse."""
    _, labels, sizes = _axes(grid)
    values = {(o, s): _matrix(rows, grid, s, lambda r, o=o: r.get(f"{o}_{figure}")) for o in options
              for s in grid.sources}

    def number(value) -> float:
        return np.nan if value is None or value == NOT_MEASURED else float(value)

    finite = [abs(number(v)) for m in values.values() for line in m for v in line if np.isfinite(number(v))]
    limit = max(finite, default=0.0) or 1.0
    width = 3.6 + 1.2 * len(sizes) * len(grid.sources)  # 1.2 inches of it for the colour bar
    height = 0.8 + (1.1 + 0.42 * len(labels)) * len(options)
    fig, axes = plt.subplots(len(options), len(grid.sources), squeeze=False, dpi=110, figsize=(width, height))
    cmap = plt.get_cmap("RdBu").with_extremes(bad=(0.85, 0.85, 0.85))  # n/a cells grey
    image = None
    for i, option in enumerate(options):
        for j, source in enumerate(grid.sources):
            ax, cells = axes[i][j], values[(option, source)]
            matrix = np.array([[number(v) for v in line] for line in cells], dtype=float)
            image = ax.imshow(np.ma.masked_invalid(matrix), cmap=cmap, vmin=-limit, vmax=limit, aspect="auto")
            for y, line in enumerate(cells):
                for x, value in enumerate(line):
                    if value == NOT_MEASURED:
                        ax.text(x, y, NOT_MEASURED, ha="center", va="center", fontsize=7, color="grey")
                    elif np.isfinite(number(value)):
                        ax.text(x, y, fmt.format(value), ha="center", va="center", fontsize=7,
                                color="white" if abs(value) > 0.6 * limit else "black")
            _dress(ax, grid, f"{option} on {source}", first_column=j == 0)
            if i < len(options) - 1:
                ax.set_xlabel("")
    fig.suptitle(title, fontsize=11)
    right = 1 - 1.2 / width
    fig.tight_layout(rect=(0, 0, right, 1 - 0.45 / height))
    fig.colorbar(image, cax=fig.add_axes((right + 0.1 / width, 0.3, 0.15 / width, 0.4)))
    return _png(fig)


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()
