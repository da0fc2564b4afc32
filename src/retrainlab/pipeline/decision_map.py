"""The decision map: which option wins, by how much and at what cost, across a grid of datasets.

`retrainlab map` sweeps the built-in sources (synthetic, digits; text, the recommender, or
the regression source friedman, on asking), the scenarios each has, the size of the new
data relative to the old (`data.incremental_fraction`), for covariate_shift (and friedman's
concept_drift) the strength of the shift (`data.shift_strength`), and for the recommender's
new_categories the share of new rows whose item the old data never had
(`data.unseen_share`). For each cell of that grid it prepares the data into a temporary
directory, trains the baseline and every option params.yaml's `strategies:` chooses, once
per seed, in a worker process (retrainlab.training.workers) and without MLflow (the
pipeline's steps log, register and write files; none of that is needed here), evaluates
them as the strategy step does, and asks `comparison.recommend` for its verdict. Every
figure is the task's (`measure_of(summary.task)`: accuracy for a classifier, RMSE for a
regressor), and a gain is always an improvement on keeping the model (more accuracy, or
less error in the label's units). docs/DECISION_MAP.md says how to read the result.

The outputs (`map.csv`, `map.json`, three heatmaps) are all rendered in memory once every
cell is measured, and only then written, each by rename: a sweep that fails or is
interrupted leaves the previous map as it was.

Flags are checked here, before anything runs (`grid_from_flags`), and every cell's data is
built once before the first training, so a cell that cannot be built is known at once.
The grid and its flags are map_grid.py (which the CLI imports to build its parser); the
files are written by retrainlab.reporting.map_files.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import io
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

import keras

from retrainlab.base.errors import DataError, RetrainlabError
from retrainlab.base.tasks import CLASSIFICATION
from retrainlab.config import TRAIN, Params
from retrainlab.data import load_prepared, prepare
from retrainlab.decision import comparison
from retrainlab.decision.map_grid import AFFECTED, DEFAULT_OUT, Cell, Grid, check
from retrainlab.measure.record import StrategyRecord
from retrainlab.measure.task import measure_of
from retrainlab.reporting.map_files import write_map
from retrainlab.strategies import BASELINE
from retrainlab.training import cluster, workers
from retrainlab.training.seed import make_plan, train_seed
from retrainlab.measure.task import measure_of_summary
from retrainlab.measure import choice

SINGLE_PROCESS = {"mode": "none", "workers": 1, "replicas": 1}  # how the map trains: one process

def measure_cell(cell: Cell, params: Params, seeds: Sequence[int]) -> dict[str, Any]:
    """Prepare the cell's data, train the baseline and every option once per seed, evaluate
    and recommend. Returns the cell's row of the map, with its details under `detail`."""
    started = time.perf_counter()
    # The baseline is trained here on the cell's old data whatever baseline.from says: a
    # brought model would not fit the built-in sources.
    cell_params = dataclasses.replace(params, data=cell.data_params(params.data), seeds=list(seeds),
                                      baseline=dataclasses.replace(params.baseline, from_=TRAIN))
    options = list(params.strategies)
    keras.backend.clear_session()  # the last cell's models and graphs are not needed again
    gc.collect()
    with tempfile.TemporaryDirectory(prefix="retrainlab-map-") as scratch:
        root = Path(scratch)
        with contextlib.redirect_stdout(io.StringIO()):
            prepare(cell_params.data, root, choice.scorer(cell_params.compare))
        data = load_prepared(root)
        m = measure_of_summary(data.summary)
        per_seed: dict[str, dict[str, dict[str, float]]] = {name: {} for name in (BASELINE, *options)}
        for seed in seeds:
            base, figures = _train(BASELINE, data, cell_params, None, seed, reference=None)
            per_seed[BASELINE][str(seed)] = figures
            for name in options:
                per_seed[name][str(seed)] = _train(name, data, cell_params, base, seed, figures[m.old])[1]
            del base
        rows = {"rows_old": data.rows("initial_train"), "rows_new": data.rows("incremental_train")}
    # No MLflow here: nothing is logged or registered.
    records = {name: StrategyRecord.of_seeds(name, cell_params.round, figures, SINGLE_PROCESS, metric=m.metric)
               for name, figures in per_seed.items()}
    verdict = comparison.recommend(records, params.compare)
    return row_of(cell, params, records, verdict, options, rows, time.perf_counter() - started)


def _train(name: str, data, params: Params, base, seed: int, reference: float | None):
    """One strategy, one seed, through the per-seed core the strategy step uses (the same
    figures, the same refusal of a model that is not finite): its trained bundle and its
    figures. Keras' per-epoch lines are swallowed: the map reports one line per cell."""
    plan = make_plan(name, data, params, base, seed)
    with contextlib.redirect_stdout(io.StringIO()):
        outcome = train_seed(plan, data, params, seed, reference)
    return outcome.bundle, outcome.figures


def row_of(cell: Cell, params: Params, records: dict[str, StrategyRecord], verdict, options: list[str],
           rows: dict[str, int], seconds: float) -> dict[str, Any]:
    """The cell's row of map.csv: for each option its target (mean over the seeds), its gain
    over keeping the model (how much better its target is than the baseline's: more
    accuracy, or less error), its training CPU-seconds and the gain per CPU-second; `detail`
    (map.json only) adds the intervals and verdicts."""
    a, m = verdict.assessments, verdict.measure
    keep = a[BASELINE].target.mean
    row: dict[str, Any] = {
        **_place(cell, params), "recommended": verdict.recommended, "rule": verdict.rule, "best": verdict.best,
        "fallback": verdict.fallback, "separated": verdict.separated, "skipped": None, **rows,
        "baseline_target": keep, "baseline_cpu_seconds": records[BASELINE].mean("cpu_seconds"),
    }
    for name in options:
        gain = m.improvement(a[name].target.mean, keep)
        cost = records[name].mean("cpu_seconds")
        row |= {
            f"{name}_target": a[name].target.mean,
            f"{name}_gain": gain,
            f"{name}_cpu_seconds": cost,
            f"{name}_gain_per_cpu_second": gain / cost if cost else None,
            f"{name}_forgetting": a[name].forgetting.mean,
        }
    row["seconds"] = seconds  # the sweep replaces it with the time it saw (a worker's start included)
    row["detail"] = {
        "cost_metric": verdict.cost_metric,
        "reasons": verdict.reasons,
        "strategies": {
            name: {
                "status": verdict.status(name),
                "standing": a[name].standing,
                "target": dataclasses.asdict(a[name].target),
                "forgetting": dataclasses.asdict(a[name].forgetting),
                **{figure: {"mean": record.mean(figure), **dataclasses.asdict(record.ci95[figure])}
                   for figure in (m.old, m.new, "cpu_seconds", "wall_seconds")},
            }
            for name, record in records.items()
        },
    }
    return row


# --- the sweep --------------------------------------------------------------------------


def run_map(params: Params, grid: Grid, out: Path = DEFAULT_OUT, progress: TextIO | None = None) -> list[dict]:
    """Measure every cell of the grid, then write the map to `out`. Returns the rows."""
    progress = progress or sys.stderr
    check(grid, params, out)
    skipped = unpreparable(grid, params)
    cells = [cell for cell in grid.cells() if cell not in skipped]
    if not cells:
        first = next(iter(skipped.items()))
        raise DataError(f"no cell of the grid can be prepared; {first[0].label}: {first[1]}")
    for cell, reason in skipped.items():
        print(f"map: skipping {cell.label}: {reason}", file=progress, flush=True)
    options = list(params.strategies)
    print(f"map: {len(cells)} cells x {len(grid.seeds)} seeds x {1 + len(options)} trainings "
          f"(baseline, {', '.join(options)}); the map goes to {out}/ when all are done", file=progress, flush=True)
    rows: list[dict] = []
    started = time.perf_counter()
    on_cluster = params.engine.kind == "ray"
    if on_cluster:
        cluster.connect(params.engine)
    at_once = cluster.slots(params.engine) if on_cluster else 1  # cells measured at the same time

    def measured(cell: Cell, row: dict, seconds: float) -> None:
        rows.append(row | {"seconds": seconds})
        elapsed = time.perf_counter() - started
        done = {_key(r) for r in rows}
        todo = [c for c in cells if _key(c) not in done]
        left = _remaining(rows, todo, sum(r["seconds"] for r in rows)) / min(at_once, max(1, len(todo)))
        print(f"map [{len(rows)}/{len(cells)}] {cell.label}: {row['recommended']} ({seconds:.0f} s; "
              f"elapsed {_clock(elapsed)}, about {_clock(left)} left)", file=progress, flush=True)

    if on_cluster:
        _measure_on_cluster(cells, params, tuple(grid.seeds), measured)
    else:
        with workers.pool(1, CELLS_PER_PROCESS) as pool:
            for cell in cells:
                begun = time.perf_counter()
                try:
                    row = pool.submit(measure_cell, cell, params, tuple(grid.seeds)).result()
                except RetrainlabError as exc:
                    raise type(exc)(f"{cell.label}: {exc}") from None
                measured(cell, row, time.perf_counter() - begun)
    by_key = {_key(row): row for row in rows}
    every = [by_key.get(_key(cell)) or skipped_row(cell, params, skipped[cell]) for cell in grid.cells()]
    write_map(out, every, grid, params)
    return every


def _measure_on_cluster(cells: list[Cell], params: Params, seeds: tuple[int, ...], measured) -> None:
    """Every cell a task on the Ray cluster, all at once (`engine.kind: ray`). A cell, not a
    fit: its options start from its baseline on each seed and its data is made once, on the
    node, from the params (no file moves, nothing is logged)."""
    tasks = [cluster.Task(cell.label, measure_cell, (cell, params, seeds)) for cell in cells]
    by_label = {cell.label: cell for cell in cells}
    cluster.run(tasks, params.engine, lambda task, done: measured(by_label[task.name], done.value, done.seconds),
                tasks_per_worker=CELLS_PER_PROCESS, what="cells")


# Every training leaves its input pipeline's generator, and with it its model, in
# TensorFlow's registry of Python functions for the life of the process (about 15 MB a
# training: 200 MB a cell at 2 seeds), so a sweep in one process would grow by gigabytes:
# the worker process is replaced every few cells, and what it held goes with it.
CELLS_PER_PROCESS = 8


def unpreparable(grid: Grid, params: Params) -> dict[Cell, str]:
    """The cells whose data cannot be built, and why (a class with too few rows at a small
    size, say): found in seconds, before anything trains, and left out of the sweep."""
    skipped = {}
    for cell in grid.cells():
        with tempfile.TemporaryDirectory(prefix="retrainlab-map-") as scratch:
            try:
                with contextlib.redirect_stdout(io.StringIO()):
                    prepare(cell.data_params(params.data), Path(scratch), choice.scorer(params.compare))
            except DataError as exc:
                skipped[cell] = str(exc)
    return skipped


def skipped_row(cell: Cell, params: Params, reason: str) -> dict[str, Any]:
    """A cell left out: its place in the map, with the reason and no figures."""
    return {**_place(cell, params), "recommended": None, "skipped": reason}


def _place(cell: Cell, params: Params) -> dict[str, Any]:
    data = cell.data_params(params.data)
    return {"source": cell.source, "scenario": cell.scenario, "size": cell.size, "strength": cell.strength,
            "unseen_share": cell.unseen_share,
            "affected_classes": data.affected_classes if cell.scenario in AFFECTED and cell.task == CLASSIFICATION
            else None}


def _key(item) -> tuple:
    if isinstance(item, Cell):
        return (item.source, item.scenario, item.size, item.strength, item.unseen_share)
    return (item["source"], item["scenario"], item["size"], item["strength"], item["unseen_share"])


def _remaining(done: list[dict], todo: list[Cell], elapsed: float) -> float:
    """The cells left, each at the mean time of the cells of its source done so far (of all, if none)."""
    overall = elapsed / len(done)
    by_source: dict[str, list[float]] = {}
    for row in done:
        by_source.setdefault(row["source"], []).append(row["seconds"])
    return sum(sum(by_source[c.source]) / len(by_source[c.source]) if c.source in by_source else overall
               for c in todo)


def _clock(seconds: float) -> str:
    minutes, rest = divmod(int(round(seconds)), 60)
    return f"{minutes}:{rest:02d}"
