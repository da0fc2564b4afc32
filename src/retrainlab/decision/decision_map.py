"""The decision map: which option wins, by how much and at what cost, across a grid of datasets.

`retrainlab map` sweeps the built-in sources (synthetic, digits), the four scenarios, the
size of the new data relative to the old (`data.incremental_fraction`) and, for
covariate_shift only, the strength of the shift (`data.shift_strength`). For each cell of
that grid it prepares the data into a temporary directory, trains the baseline and every
option params.yaml's `strategies:` chooses, once per seed, in a worker process (`Workers`)
and without MLflow (the pipeline's steps log, register and write files; none of that is
needed here), evaluates them as the strategy step does, and asks `comparison.recommend`
for its verdict. docs/DECISION_MAP.md says how to read the result.

The outputs (`map.csv`, `map.json`, three heatmaps) are all rendered in memory once every
cell is measured, and only then written, each by rename: a sweep that fails or is
interrupted leaves the previous map as it was.

Flags are checked here, before anything runs (`grid_from_flags`), and every cell's data is
built once before the first training, so a cell that cannot be built is known at once.
The CLI imports this module to build its parser: pandas, matplotlib and TensorFlow are
imported only where they are used.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import io
import json
import logging
import math
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from retrainlab.config import MAX_SEED, MAX_SEEDS, SCENARIOS, TRAIN, DataParams, Params
from retrainlab.base.errors import ConfigError, DataError, RetrainlabError
from retrainlab.base.files import write_atomically
from retrainlab.decision.record import Runs, StrategyRecord, summarize
from retrainlab.strategies import BASELINE

SOURCES = ("synthetic", "digits")  # the built-in sources: the scenarios are applied to them here
DIGITS_CLASSES = 10
AFFECTED = ("new_classes", "concept_drift")  # the scenarios that read data.affected_classes
SHIFTED = "covariate_shift"  # the one scenario that reads data.shift_strength
# The default grid: 2 sources x (3 scenarios + covariate_shift at 2 strengths) x 3 sizes =
# 30 cells (2 of them, new_classes at 5%, cannot be built and are skipped), 2 seeds each:
# about 30 minutes on 2 CPU cores (measured per cell: docs/DECISION_MAP.md).
DEFAULT_SOURCES = SOURCES
DEFAULT_SCENARIOS = SCENARIOS
DEFAULT_SIZES = (0.05, 0.2, 1.0)
DEFAULT_STRENGTHS = (1.0, 2.0)
DEFAULT_SEEDS = (0, 1)
DEFAULT_OUT = Path("reports") / "map"
MAX_SIZE = 10.0  # as data.incremental_fraction allows

CSV_NAME, JSON_NAME = "map.csv", "map.json"
PNG_RECOMMENDED, PNG_GAIN, PNG_GAIN_PER_COST = "recommended.png", "gain.png", "gain_per_cpu_second.png"
OUTPUTS = (CSV_NAME, JSON_NAME, PNG_RECOMMENDED, PNG_GAIN, PNG_GAIN_PER_COST)
# Per option, in map.csv: `<option>_<figure>`.
FIGURES = ("target", "gain", "cpu_seconds", "gain_per_cpu_second", "forgetting")


# --- the grid ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Cell:
    source: str
    scenario: str
    size: float  # data.incremental_fraction
    strength: float | None  # data.shift_strength; None where the scenario does not read it

    @property
    def label(self) -> str:
        shift = f" strength {self.strength:g}" if self.strength is not None else ""
        return f"{self.source} / {self.scenario}{shift} / size {self.size:g}"

    @property
    def scenario_label(self) -> str:
        """The heatmaps' row label."""
        text = self.scenario.replace("_", " ")
        return f"{text} x{self.strength:g}" if self.strength is not None else text

    def data_params(self, data: DataParams) -> DataParams:
        """The params file's data section with the cell's source, scenario, size and strength.

        new_classes holds `affected_classes` classes back for the new data; where the source
        has too few classes for that (the synthetic source's 4 against params.yaml's 3), it
        holds back as many as leave the old data two classes."""
        changes: dict[str, Any] = {"source": self.source, "scenario": self.scenario, "incremental_fraction": self.size}
        if self.strength is not None:
            changes["shift_strength"] = self.strength
        if self.scenario == "new_classes":
            classes = DIGITS_CLASSES if self.source == "digits" else data.synthetic.classes
            changes["affected_classes"] = max(1, min(data.affected_classes, classes - 2))
        return dataclasses.replace(data, **changes)


@dataclasses.dataclass(frozen=True)
class Grid:
    sources: tuple[str, ...] = DEFAULT_SOURCES
    scenarios: tuple[str, ...] = DEFAULT_SCENARIOS
    sizes: tuple[float, ...] = DEFAULT_SIZES
    strengths: tuple[float, ...] = DEFAULT_STRENGTHS
    seeds: tuple[int, ...] = DEFAULT_SEEDS

    def cells(self) -> list[Cell]:
        """Source by source, scenario by scenario (covariate_shift once per strength), size by size."""
        cells = []
        for source in self.sources:
            for scenario in self.scenarios:
                for strength in self.strengths if scenario == SHIFTED else (None,):
                    cells += [Cell(source, scenario, size, strength) for size in self.sizes]
        return cells

    def to_json(self) -> dict[str, Any]:
        return {k: list(v) for k, v in dataclasses.asdict(self).items()}


def grid_from_flags(
    sources: Sequence[str] | None = None,
    scenarios: Sequence[str] | None = None,
    sizes: Sequence[str] | None = None,
    strengths: Sequence[str] | None = None,
    seeds: Sequence[str] | None = None,
) -> Grid:
    """The grid the flags ask for (None: the default), each value checked; a bad one is a
    one-line ConfigError naming its flag. Values may be given apart or joined by commas."""
    grid = Grid()
    if sources is not None:
        grid = dataclasses.replace(grid, sources=_choices("--sources", sources, SOURCES))
    if scenarios is not None:
        grid = dataclasses.replace(grid, scenarios=_choices("--scenarios", scenarios, SCENARIOS))
    if sizes is not None:
        grid = dataclasses.replace(grid, sizes=_numbers("--sizes", sizes, float, 0.0, MAX_SIZE, "in (0, 10]"))
    if strengths is not None:
        grid = dataclasses.replace(grid, strengths=_numbers("--strengths", strengths, float, 0.0, math.inf,
                                                            "positive"))
    if seeds is not None:
        chosen = _numbers("--seeds", seeds, int, -1, MAX_SEED, f"a whole number from 0 to {MAX_SEED}")
        if len(chosen) > MAX_SEEDS:
            raise ConfigError(f"--seeds: at most {MAX_SEEDS} seeds")
        grid = dataclasses.replace(grid, seeds=chosen)
    return grid


def _items(flag: str, values: Sequence[str]) -> list[str]:
    items = [item.strip() for value in values for item in str(value).split(",")]
    items = [item for item in items if item]
    if not items:
        raise ConfigError(f"{flag}: give at least one value")
    repeated = [item for i, item in enumerate(items) if item in items[:i]]
    if repeated:
        raise ConfigError(f"{flag}: {repeated[0]} is given twice")
    return items


def _choices(flag: str, values: Sequence[str], allowed: Sequence[str]) -> tuple[str, ...]:
    items = _items(flag, values)
    unknown = [item for item in items if item not in allowed]
    if unknown:
        raise ConfigError(f"{flag}: unknown value {unknown[0]!r} (choose from {', '.join(allowed)})")
    return tuple(items)


def _numbers(flag: str, values: Sequence[str], kind: type, above: float, at_most: float, rule: str) -> tuple:
    """Numbers in (above, at_most], finite, each given once."""
    chosen = []
    for item in _items(flag, values):
        try:
            number = kind(item)
        except ValueError:
            raise ConfigError(f"{flag}: {item!r} is not {'an integer' if kind is int else 'a number'}") from None
        if not math.isfinite(number) or not above < number <= at_most:
            raise ConfigError(f"{flag}: {item} must be {rule}")
        if number in chosen:
            raise ConfigError(f"{flag}: {item} is given twice")
        chosen.append(number)
    return tuple(chosen)


def check(grid: Grid, params: Params, out: Path) -> None:
    """Everything that can be checked before the first cell trains: each cell's data
    params, and that the output directory can be written."""
    for cell in grid.cells():
        try:
            cell.data_params(params.data).check()
        except ConfigError as exc:
            raise ConfigError(f"{cell.label}: {exc}") from None
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out: {out} is not a directory")
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out, prefix=".map-check-"):
            pass
    except OSError as exc:
        raise ConfigError(f"--out: {out} cannot be written ({exc.strerror or type(exc).__name__})") from None


# --- one cell ---------------------------------------------------------------------------


def measure_cell(cell: Cell, params: Params, seeds: Sequence[int]) -> dict[str, Any]:
    """Prepare the cell's data, train the baseline and every option once per seed, evaluate
    and recommend. Returns the cell's row of the map, with its details under `detail`."""
    import keras

    from retrainlab.decision import comparison
    from retrainlab.data import load_prepared, prepare

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
            prepare(cell_params.data, root)
        data = load_prepared(root)
        per_seed: dict[str, dict[str, dict[str, float]]] = {name: {} for name in (BASELINE, *options)}
        for seed in seeds:
            base, figures = _train(BASELINE, data, cell_params, None, seed, reference=None)
            per_seed[BASELINE][str(seed)] = figures
            for name in options:
                per_seed[name][str(seed)] = _train(name, data, cell_params, base, seed, figures["acc_old"])[1]
            del base
        rows = {"rows_old": data.rows("initial_train"), "rows_new": data.rows("incremental_train")}
    records = {name: _record(name, cell_params, figures) for name, figures in per_seed.items()}
    verdict = comparison.recommend(records, params.compare)
    return row_of(cell, params, records, verdict, options, rows, time.perf_counter() - started)


def _train(name: str, data, params: Params, base, seed: int, reference: float | None):
    """One strategy, one seed: its trained bundle and its figures (metrics and cost). Keras'
    per-epoch lines are swallowed: the map reports one line per cell."""
    from retrainlab.training.cost import CostMeter
    from retrainlab.strategies import plan_for
    from retrainlab.training.loop import evaluate, fit, gpus_in_use, rows_trained, seed_everything

    seed_everything(seed)
    plan = plan_for(name, data, params, base, seed)
    with CostMeter(gpus_in_use(), params.cost.cpu_core_hour_usd, params.cost.gpu_hour_usd) as meter:
        with contextlib.redirect_stdout(io.StringIO()):
            fit(plan, data, seed=seed)
        meter.samples = rows_trained(data, plan) * plan.epochs
    # Evaluated as the strategy step evaluates: the same figures, the same refusal of a
    # model whose predictions are not finite.
    figures = evaluate(plan.bundle, data, plan, reference) | meter.cost.metrics()
    return plan.bundle, figures


def _record(name: str, params: Params, per_seed: dict[str, dict[str, float]]) -> StrategyRecord:
    """The strategy's record as the strategy step keeps it (means and 95% intervals over the
    seeds, retrainlab.decision.record.summarize), for comparison.recommend."""
    means, ci95 = summarize(list(per_seed.values()))
    # No MLflow here: nothing was logged or registered, so the record's MLflow part is a placeholder.
    runs = Runs(experiment_id="", run_id="", parent_run_id="", seed_run_ids={}, registered_model="",
                model_version=0, model_seed=params.seeds[0])
    return StrategyRecord(
        strategy=name, round=params.round, seeds=list(params.seeds), device="gpu" if means.get("gpus") else "cpu",
        distribute={"strategy": "none", "workers": 1, "replicas": 1}, means=means, ci95=ci95, per_seed=per_seed,
        mlflow=runs,
    )


def row_of(cell: Cell, params: Params, records: dict[str, StrategyRecord], verdict, options: list[str],
           rows: dict[str, int], seconds: float) -> dict[str, Any]:
    """The cell's row of map.csv: for each option its target (mean over the seeds), its gain
    over keeping the model (its target minus the baseline's), its training CPU-seconds and
    the gain per CPU-second; `detail` (map.json only) adds the intervals and verdicts."""
    a = verdict.assessments
    keep = a[BASELINE].target.mean
    row: dict[str, Any] = {
        **_place(cell, params), "recommended": verdict.recommended, "rule": verdict.rule, "best": verdict.best,
        "fallback": verdict.fallback, "separated": verdict.separated, "skipped": None, **rows,
        "baseline_target": keep, "baseline_cpu_seconds": records[BASELINE].mean("cpu_seconds"),
    }
    for name in options:
        gain = a[name].target.mean - keep
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
                   for figure in ("acc_old", "acc_new", "cpu_seconds", "wall_seconds")},
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
    with Workers() as workers:
        for i, cell in enumerate(cells, 1):
            begun = time.perf_counter()
            try:
                row = workers.measure(cell, params, grid.seeds)
            except RetrainlabError as exc:
                raise type(exc)(f"{cell.label}: {exc}") from None
            rows.append(row | {"seconds": time.perf_counter() - begun})
            elapsed = time.perf_counter() - started
            left = _remaining(rows, cells[i:], elapsed)
            print(f"map [{i}/{len(cells)}] {cell.label}: {row['recommended']} ({rows[-1]['seconds']:.0f} s; "
                  f"elapsed {_clock(elapsed)}, about {_clock(left)} left)", file=progress, flush=True)
    measured = {_key(row): row for row in rows}
    every = [measured.get(_key(cell)) or skipped_row(cell, params, skipped[cell]) for cell in grid.cells()]
    write_map(out, every, grid, params)
    return every


CELLS_PER_PROCESS = 8


class Workers:
    """Cells measured one at a time in a worker process, a fresh one every CELLS_PER_PROCESS cells.

    Every training leaves its input pipeline's generator, and with it its model, in
    TensorFlow's registry of Python functions for the life of the process (about 15 MB a
    training: 200 MB a cell at 2 seeds), so a sweep in one process would grow by gigabytes.
    A worker that has measured a few cells is replaced; what it held goes with it. Starting
    one (loading TensorFlow) takes a few seconds. The worker ignores Ctrl-C: the sweep
    stops it, on Ctrl-C as on any error.
    """

    def __init__(self) -> None:
        import multiprocessing

        self._context = multiprocessing.get_context("spawn")  # no fork of a process that holds TensorFlow
        self._process = None
        self._measured = 0

    def __enter__(self) -> Workers:
        return self

    def __exit__(self, exc_type, *exc_info) -> None:
        self.close(wait=exc_type is None)

    def measure(self, cell: Cell, params: Params, seeds: Sequence[int]) -> dict[str, Any]:
        if self._process is None or self._measured >= CELLS_PER_PROCESS:
            self.close()
            self._requests, self._results = self._context.Queue(), self._context.Queue()
            self._process = self._context.Process(target=_serve, args=(self._requests, self._results), daemon=True,
                                                  name="retrainlab-map-worker")
            self._process.start()
            self._measured = 0
        self._requests.put((cell, params, tuple(seeds)))
        self._measured += 1
        outcome, value = self._wait()
        if outcome == "error":
            raise value
        if outcome == "bug":
            raise RuntimeError(f"{cell.label}: the worker process failed:\n{value}")
        return value

    def _wait(self):
        import queue

        while True:
            try:
                return self._results.get(timeout=1.0)
            except queue.Empty:
                if not self._process.is_alive():
                    code = self._process.exitcode
                    self._process = None
                    raise RetrainlabError(f"the worker process ended without an answer (exit code {code}; "
                                          "out of memory?)") from None

    def close(self, wait: bool = True) -> None:
        """Stop the worker: asked to when it is done (`wait`), else terminated at once."""
        process, self._process = self._process, None
        if process is None:
            return
        if wait and process.is_alive():
            self._requests.put(None)
            process.join(timeout=10)
        if process.is_alive():
            process.terminate()
            process.join()


def _serve(requests, results) -> None:
    """The worker: measure each cell asked for, answer with its row or its error."""
    import os
    import signal
    import traceback

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole process group: the sweep handles it
    # At the CLI's level (2), TensorFlow's C++ side logs an error line per training about an
    # attribute of the input pipeline's graph it ignores: 14 a cell, between the progress
    # lines. The worker's real errors reach the sweep as exceptions. A level set otherwise is kept.
    if os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2") == "2":
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    # TensorFlow warns each time a new model's predict function is traced: here every
    # training is a new model, so the warning says nothing.
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    while (request := requests.get()) is not None:
        try:
            results.put(("ok", measure_cell(*request)))
        except RetrainlabError as exc:
            results.put(("error", exc))
        except Exception:
            results.put(("bug", traceback.format_exc()))


def unpreparable(grid: Grid, params: Params) -> dict[Cell, str]:
    """The cells whose data cannot be built, and why (a class with too few rows at a small
    size, say): found in seconds, before anything trains, and left out of the sweep."""
    from retrainlab.data import prepare

    skipped = {}
    for cell in grid.cells():
        with tempfile.TemporaryDirectory(prefix="retrainlab-map-") as scratch:
            try:
                with contextlib.redirect_stdout(io.StringIO()):
                    prepare(cell.data_params(params.data), Path(scratch))
            except DataError as exc:
                skipped[cell] = str(exc)
    return skipped


def skipped_row(cell: Cell, params: Params, reason: str) -> dict[str, Any]:
    """A cell left out: its place in the map, with the reason and no figures."""
    return {**_place(cell, params), "recommended": None, "skipped": reason}


def _place(cell: Cell, params: Params) -> dict[str, Any]:
    data = cell.data_params(params.data)
    return {"source": cell.source, "scenario": cell.scenario, "size": cell.size, "strength": cell.strength,
            "affected_classes": data.affected_classes if cell.scenario in AFFECTED else None}


def _key(item) -> tuple:
    if isinstance(item, Cell):
        return (item.source, item.scenario, item.size, item.strength)
    return (item["source"], item["scenario"], item["size"], item["strength"])


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


# --- the outputs ------------------------------------------------------------------------


def columns(options: Sequence[str]) -> list[str]:
    """map.csv's columns, in order."""
    place = ["source", "scenario", "size", "strength", "affected_classes"]
    verdict = ["recommended", "rule", "best", "fallback", "separated", "skipped", "rows_old", "rows_new"]
    keep = ["baseline_target", "baseline_cpu_seconds"]
    return place + verdict + keep + [f"{o}_{figure}" for o in options for figure in FIGURES] + ["seconds"]


def write_map(out: Path, rows: list[dict], grid: Grid, params: Params) -> None:
    """Render every output in memory, then write each by rename."""
    import pandas as pd

    options = list(params.strategies)
    flat = [{k: v for k, v in row.items() if k != "detail"} for row in rows]
    table = pd.DataFrame(flat, columns=columns(options))
    for name in ("affected_classes", "rows_old", "rows_new"):  # counts, blank where not applicable
        table[name] = table[name].astype("Int64")
    csv = table.to_csv(index=False)
    summary = {
        "grid": grid.to_json(),
        "options": options,
        "policy": dict(vars(params.compare)),
        "figures": {
            "target": "(1 - new_traffic_share) * acc_old + new_traffic_share * acc_new, mean over the seeds",
            "gain": "the option's target minus the baseline's (keeping the model as it is)",
            "cpu_seconds": "CPU-seconds of the option's training, mean over the seeds",
            "gain_per_cpu_second": "gain / cpu_seconds",
            "forgetting": "the baseline's acc_old minus the option's, mean over the seeds",
        },
        "cells": [_finite(row) for row in rows],
    }
    rendered = {
        CSV_NAME: csv.encode(),
        JSON_NAME: (json.dumps(summary, indent=2) + "\n").encode(),
        PNG_RECOMMENDED: _plot_recommended(rows, grid, options),
        PNG_GAIN: _plot_option_figure(rows, grid, options, "gain",
                                      "Gain in target accuracy over keeping the model", "{:+.3f}"),
        PNG_GAIN_PER_COST: _plot_option_figure(rows, grid, options, "gain_per_cpu_second",
                                               "Gain in target accuracy per CPU-second of training", "{:+.4f}"),
    }
    for name, content in rendered.items():
        write_atomically(out / name, lambda tmp, content=content: Path(tmp).write_bytes(content))


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


def _axes(grid: Grid) -> tuple[list[tuple[str, float | None]], list[str], list[float]]:
    """The heatmaps' rows (scenario and strength) with their labels, and columns (sizes)."""
    scenario_rows = list(dict.fromkeys((c.scenario, c.strength) for c in grid.cells()))
    labels = [Cell("", scenario, 0.0, strength).scenario_label for scenario, strength in scenario_rows]
    return scenario_rows, labels, list(grid.sizes)


def _matrix(rows: list[dict], grid: Grid, source: str, value) -> list[list[Any]]:
    """`value(row)` for each (scenario row, size) of a source; NOT_MEASURED where it was skipped."""
    scenario_rows, _, sizes = _axes(grid)
    by_key = {(r["scenario"], r["strength"], r["size"]): r for r in rows if r["source"] == source}

    def at(scenario, strength, size):
        row = by_key.get((scenario, strength, size))
        if row is None:
            return None
        return NOT_MEASURED if row.get("skipped") else value(row)

    return [[at(scenario, strength, size) for size in sizes] for scenario, strength in scenario_rows]


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
    import numpy as np
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    plt = _pyplot()
    names = [BASELINE, *options]
    palette = plt.get_cmap("tab10").colors
    colours = [palette[i % len(palette)] for i in range(len(names))] + [(0.85, 0.85, 0.85)]  # last: n/a
    _, labels, sizes = _axes(grid)
    width = 2.2 + 1.15 * len(sizes) * len(grid.sources)
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
    fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 4), fontsize=7, frameon=False)
    fig.tight_layout(rect=(0, 0.06 + 0.03 * (len(handles) // 4), 1, 1))
    return _png(fig, plt)


def _plot_option_figure(rows: list[dict], grid: Grid, options: list[str], figure: str, title: str,
                        fmt: str) -> bytes:
    """A panel per option (rows) and source (columns) of one figure, on one diverging scale
    centred on 0: blue better than keeping the model, red worse."""
    import numpy as np

    plt = _pyplot()
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
    return _png(fig, plt)


def _png(fig, plt) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only; no display
    import matplotlib.pyplot as plt

    return plt
