"""The decision map's grid: the sources, scenarios, sizes of the new data, shift strengths and
shares of unseen items it sweeps (`Grid`, `Cell`), read from `retrainlab map`'s flags and
checked before anything runs, and the names of the files it writes. The CLI imports it to
build its parser, so it imports nothing heavy.

A map holds one task: the classifiers' sources (synthetic, digits, text, recommender) are
measured in accuracy, the regression source (friedman) in RMSE, in its label's units; their
gains share no scale, so a regressor's map is drawn on its own (`--sources friedman`), over
the scenarios a number has (no new_classes). Each source is swept over the scenarios it has
(`scenarios_of`): new_categories is the recommender's only, and the recommender has no
new_classes or shift.
"""

from __future__ import annotations

import dataclasses
import math
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from retrainlab.base.errors import ConfigError
from retrainlab.base.tasks import CLASSIFICATION, REGRESSION
from retrainlab.config import MAX_SEED, MAX_SEEDS, SCENARIOS, DataParams, Params
from retrainlab.config.sections import RECOMMENDER_SCENARIOS

# The built-in sources: the scenarios are applied to them here.
SOURCES = ("synthetic", "digits", "text", "friedman", "recommender")
TASK_OF = {"synthetic": CLASSIFICATION, "digits": CLASSIFICATION, "text": CLASSIFICATION, "friedman": REGRESSION,
           "recommender": CLASSIFICATION}
DIGITS_CLASSES = 10
TEXT_CLASSES = 3  # retrainlab.data.messages: negative, neutral, positive
AFFECTED = ("new_classes", "concept_drift")  # the scenarios that read data.affected_classes (a classifier's)
SHIFTED = "covariate_shift"  # the scenario that reads data.shift_strength (and a regressor's concept_drift)
DRIFTED = "concept_drift"  # friedman: data.shift_strength turns x3's effect around (1.0: from +10 to -10)
CLASSES_ONLY = "new_classes"  # a scenario a regression source does not have
UNSEEN = "new_categories"  # the recommender's scenario: reads data.unseen_share, the share of new rows with new items
CLASSIFIER_SCENARIOS = tuple(s for s in SCENARIOS if s != UNSEEN)
REGRESSION_SCENARIOS = tuple(s for s in CLASSIFIER_SCENARIOS if s != CLASSES_ONLY)
# The default grid: 2 sources x (3 scenarios + covariate_shift at 2 strengths) x 3 sizes =
# 30 cells (2 of them, new_classes at 5%, cannot be built and are skipped), 2 seeds each:
# about 30 minutes on 2 CPU cores (measured per cell: docs/DECISION_MAP.md). The text
# source is swept on asking (`--sources text`): docs/DECISION_MAP.md, "Text"; the regression
# source always on its own (`--sources friedman`): "Regression"; the recommender on asking
# (`--sources recommender`): "New items".
DEFAULT_SOURCES = ("synthetic", "digits")
DEFAULT_SCENARIOS = CLASSIFIER_SCENARIOS  # other sources': their own (`scenarios_of`)
DEFAULT_SIZES = (0.05, 0.2, 1.0)
DEFAULT_STRENGTHS = (1.0, 2.0)
DEFAULT_UNSEEN_SHARES = (0.1, 0.5, 0.9)
DEFAULT_SEEDS = (0, 1)
DEFAULT_OUT = Path("reports") / "map"
MAX_SIZE = 10.0  # as data.incremental_fraction allows

CSV_NAME, JSON_NAME = "map.csv", "map.json"
PNG_RECOMMENDED, PNG_GAIN, PNG_GAIN_PER_COST = "recommended.png", "gain.png", "gain_per_cpu_second.png"
OUTPUTS = (CSV_NAME, JSON_NAME, PNG_RECOMMENDED, PNG_GAIN, PNG_GAIN_PER_COST)
# Per option, in map.csv: `<option>_<figure>`.
FIGURES = ("target", "gain", "cpu_seconds", "gain_per_cpu_second", "forgetting")


@dataclasses.dataclass(frozen=True)
class Cell:
    source: str
    scenario: str
    size: float  # data.incremental_fraction
    strength: float | None  # data.shift_strength; None where the scenario does not read it
    unseen_share: float | None = None  # data.unseen_share; None where the scenario does not read it

    @property
    def task(self) -> str:
        return TASK_OF[self.source]

    @property
    def label(self) -> str:
        shift = f" strength {self.strength:g}" if self.strength is not None else ""
        unseen = f" unseen {self.unseen_share:g}" if self.unseen_share is not None else ""
        return f"{self.source} / {self.scenario}{shift}{unseen} / size {self.size:g}"

    @property
    def scenario_label(self) -> str:
        """The heatmaps' row label."""
        text = self.scenario.replace("_", " ")
        if self.unseen_share is not None:
            return f"{text} {self.unseen_share:.0%} unseen"
        return f"{text} x{self.strength:g}" if self.strength is not None else text

    def data_params(self, data: DataParams) -> DataParams:
        """The params file's data section with the cell's source, scenario, size, strength and
        share of unseen items.

        new_classes holds `affected_classes` classes back for the new data; where the source
        has too few classes for that (the synthetic source's 4 against params.yaml's 3), it
        holds back as many as leave the old data two classes."""
        changes: dict[str, Any] = {"source": self.source, "scenario": self.scenario, "incremental_fraction": self.size}
        if self.strength is not None:
            changes["shift_strength"] = self.strength
        if self.unseen_share is not None:
            changes["unseen_share"] = self.unseen_share
        if self.scenario == CLASSES_ONLY:
            classes = {"digits": DIGITS_CLASSES, "text": TEXT_CLASSES}.get(self.source, data.synthetic.classes)
            changes["affected_classes"] = max(1, min(data.affected_classes, classes - 2))
        return dataclasses.replace(data, **changes)


@dataclasses.dataclass(frozen=True)
class Grid:
    sources: tuple[str, ...] = DEFAULT_SOURCES
    scenarios: tuple[str, ...] = DEFAULT_SCENARIOS
    sizes: tuple[float, ...] = DEFAULT_SIZES
    strengths: tuple[float, ...] = DEFAULT_STRENGTHS
    unseen_shares: tuple[float, ...] = DEFAULT_UNSEEN_SHARES
    seeds: tuple[int, ...] = DEFAULT_SEEDS

    @property
    def task(self) -> str:
        """The task of the grid's sources (one: grid_from_flags refuses a mix)."""
        return TASK_OF[self.sources[0]]

    def cells(self) -> list[Cell]:
        """Source by source, scenario by scenario of those the source has (covariate_shift,
        and a regressor's concept_drift, once per strength; new_categories once per unseen
        share), size by size."""
        cells = []
        for source in self.sources:
            for scenario in (s for s in self.scenarios if s in scenarios_of(source)):
                strengths = self.strengths if reads_strength(source, scenario) else (None,)
                shares = self.unseen_shares if reads_unseen_share(source, scenario) else (None,)
                cells += [Cell(source, scenario, size, strength, share)
                          for strength in strengths for share in shares for size in self.sizes]
        return cells

    def to_json(self) -> dict[str, Any]:
        return {k: list(v) for k, v in dataclasses.asdict(self).items()}


def reads_strength(source: str, scenario: str) -> bool:
    """Whether a cell's data reads data.shift_strength: every covariate shift, and the
    friedman source's concept drift (how far its rule turns)."""
    return scenario == SHIFTED or (scenario == DRIFTED and TASK_OF[source] == REGRESSION)


def reads_unseen_share(source: str, scenario: str) -> bool:
    """Whether a cell's data reads data.unseen_share: the recommender's new_categories."""
    return scenario == UNSEEN and source == "recommender"


def scenarios_of(source: str) -> tuple[str, ...]:
    """The scenarios a built-in source has, as data.scenario's check allows them."""
    if source == "recommender":
        return RECOMMENDER_SCENARIOS
    return REGRESSION_SCENARIOS if TASK_OF[source] == REGRESSION else CLASSIFIER_SCENARIOS


def grid_from_flags(
    sources: Sequence[str] | None = None,
    scenarios: Sequence[str] | None = None,
    sizes: Sequence[str] | None = None,
    strengths: Sequence[str] | None = None,
    seeds: Sequence[str] | None = None,
    unseen_shares: Sequence[str] | None = None,
) -> Grid:
    """The grid the flags ask for (None: the default), each value checked; a bad one is a
    one-line ConfigError naming its flag. Values may be given apart or joined by commas.
    The sources' scenarios are by default every one they have (`scenarios_of`); a regression
    source is mapped on its own."""
    grid = Grid()
    if sources is not None:
        grid = dataclasses.replace(grid, sources=_choices("--sources", sources, SOURCES))
        tasks = {TASK_OF[source]: source for source in grid.sources}
        if len(tasks) > 1:
            raise ConfigError(f"--sources: {tasks[REGRESSION]} predicts a number and {tasks[CLASSIFICATION]} a "
                              "class: their gains share no scale (RMSE against accuracy); map them apart")
        had = dict.fromkeys(scenario for source in grid.sources for scenario in scenarios_of(source))
        grid = dataclasses.replace(grid, scenarios=tuple(s for s in SCENARIOS if s in had))
    if scenarios is not None:
        grid = dataclasses.replace(grid, scenarios=_choices("--scenarios", scenarios, SCENARIOS))
        if grid.task == REGRESSION and CLASSES_ONLY in grid.scenarios:
            raise ConfigError(f"--scenarios: {CLASSES_ONLY}: {grid.sources[0]} predicts a number and has no classes "
                              f"(choose from {', '.join(REGRESSION_SCENARIOS)})")
        _check_scenarios(grid)
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
    if unseen_shares is not None:
        grid = dataclasses.replace(grid, unseen_shares=_numbers("--unseen-shares", unseen_shares, float, 0.0, 1.0,
                                                                "in (0, 1] (0 is same_distribution)"))
    return grid


def _check_scenarios(grid: Grid) -> None:
    """Every scenario asked for is one that a source asked for has."""
    for scenario in grid.scenarios:
        if not any(scenario in scenarios_of(source) for source in grid.sources):
            having = [source for source in SOURCES if scenario in scenarios_of(source)]
            raise ConfigError(f"--scenarios: {scenario}: not a scenario of {' or '.join(grid.sources)} "
                              f"(only of {', '.join(having)})")


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
