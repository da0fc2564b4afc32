"""How a task is measured, defined once: its figures and their names, the primary one (the
user's `compare.metric`) and its direction, the target, forgetting, the policy's tolerances
in the figure's units, and the range each figure cannot leave.

Everything that weighs a model (the comparison, the adaptive seeds, the promotion gates,
the check, the decision map, the reports) asks the run's `Measure` rather than name a
figure itself. `FIGURES` declares every measure a user may choose, once: its name in
params.yaml, the stem of its figures (`f1_old`, `auc_new`), its direction, the range it
cannot leave and how the policy's tolerance reads it:

- a bounded score (accuracy, balanced accuracy, F1, precision, recall, ROC AUC, average
  precision, R²): the tolerance and the forgetting ceiling are in its own units (0.01 is one
  point);
- an error or a cost (log loss, RMSE, MAE, MAPE, pinball loss, the cost of errors): they are
  shares of the baseline's own figure (0.01 is 1% of its target, 0.025 2.5% of its figure on
  the old data), so one params.yaml reads the same for a label in dollars or in days.

A classifier's figures are always accuracy, log loss, F1, balanced accuracy, precision and
recall (a binary classifier's of its positive class, else macro over the classes), and
ROC AUC, average precision or the cost of errors when they are the chosen measure; a
regressor's RMSE, MAE and R², and MAPE, pinball loss or the cost of errors when chosen.
`Scoring` holds what computing them needs beyond the predictions (the positive class, the
decision threshold, the pinball quantile, the costs), resolved once by prepare.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

from retrainlab.base.tasks import CLASSIFICATION, REGRESSION, TASKS

TEST_SETS = ("old", "new")
ALL = "all"
FORGETTING = "forgetting"
TARGET = "target"
AUTO = "auto"
COST = "cost"  # compare.metric's name for the cost of errors (compare.costs)


@dataclasses.dataclass(frozen=True)
class Figure:
    """One measure a user may choose (compare.metric)."""

    metric: str  # its name in params.yaml
    stem: str  # its figures' names: STEM_old, STEM_new, STEM_all
    task: str
    higher_is_better: bool
    relative: bool  # the policy's tolerance and ceiling are shares of the baseline's figure
    bounds: tuple[float, float]
    words: str  # what it is, as a sentence says it
    chosen_only: bool = False  # computed only when it is the chosen measure


UNIT = (0.0, 1.0)
POSITIVE = (0.0, math.inf)
FIGURES: dict[str, Figure] = {f.metric: f for f in (
    Figure("accuracy", "acc", CLASSIFICATION, True, False, UNIT, "accuracy"),
    Figure("log_loss", "loss", CLASSIFICATION, False, True, POSITIVE, "log loss (mean cross-entropy)"),
    Figure("f1", "f1", CLASSIFICATION, True, False, UNIT, "F1"),
    Figure("balanced_accuracy", "bacc", CLASSIFICATION, True, False, UNIT, "balanced accuracy"),
    Figure("precision", "precision", CLASSIFICATION, True, False, UNIT, "precision"),
    Figure("recall", "recall", CLASSIFICATION, True, False, UNIT, "recall"),
    Figure("roc_auc", "auc", CLASSIFICATION, True, False, UNIT, "ROC AUC", chosen_only=True),
    Figure("average_precision", "ap", CLASSIFICATION, True, False, UNIT, "average precision", chosen_only=True),
    Figure("rmse", "rmse", REGRESSION, False, True, POSITIVE, "RMSE"),
    Figure("mae", "mae", REGRESSION, False, True, POSITIVE, "MAE"),
    Figure("r2", "r2", REGRESSION, True, False, (-math.inf, 1.0), "R²"),
    Figure("mape", "mape", REGRESSION, False, True, POSITIVE, "MAPE (mean absolute percentage error, as a share)",
           chosen_only=True),
    Figure("pinball", "pinball", REGRESSION, False, True, POSITIVE, "pinball loss", chosen_only=True),
)}
# The cost of errors, one per task: a classifier's from its cost matrix, a regressor's per unit of error.
COSTS = {task: Figure(COST, "cost", task, False, True, POSITIVE, "cost of errors per row", chosen_only=True)
         for task in TASKS}
DEFAULTS = {CLASSIFICATION: "accuracy", REGRESSION: "rmse"}
BY_STEM = {f.stem: f for f in (*FIGURES.values(), *COSTS.values())}


def choices(task: str) -> list[str]:
    """The measures `compare.metric` may name for a task."""
    return [f.metric for f in FIGURES.values() if f.task == task] + [COST]


def figure_of(task: str, metric: str | None) -> Figure:
    """The declared measure; `auto` (or None) is the task's default. A name that is not one
    of the task's is a ValueError naming the valid ones (the config and prepare say it first)."""
    metric = DEFAULTS[task] if metric in (None, AUTO) else metric
    if metric == COST:
        return COSTS[task]
    found = FIGURES.get(metric)
    if found is None or found.task != task:
        raise ValueError(f"'{metric}' does not measure a {task} model; choose one of: {', '.join(choices(task))}")
    return found


@dataclasses.dataclass(frozen=True)
class Measure:
    task: str
    figure: Figure  # the chosen measure, whose figures are the primary ones
    measures: tuple[str, ...]  # every figure's stem measured on each test set, the primary first
    loss: str  # the figure that must be finite for a model to be kept (the gates read it)
    # The figures the report's table gives a strategy beside its target and forgetting (`dvc
    # metrics show` has the primary figure's only: its 120 columns hold no more).
    table_row: tuple[str, ...]

    @property
    def metric(self) -> str:
        """The chosen measure's name in params.yaml (compare.metric)."""
        return self.figure.metric

    @property
    def higher_is_better(self) -> bool:
        return self.figure.higher_is_better

    @property
    def relative(self) -> bool:
        return self.figure.relative

    @property
    def regression(self) -> bool:
        return self.task == REGRESSION

    @property
    def words(self) -> str:
        return self.figure.words

    @property
    def short(self) -> str:
        """The primary figure's name in a table or a sentence: accuracy, F1, RMSE, cost."""
        return {"cost": "cost", "loss": "log loss"}.get(self.figure.stem, self.figure.words.split(" (")[0])

    @property
    def worse(self) -> str:
        """An option below the best, in a few words: less accurate, lower F1, higher RMSE."""
        if self.figure.stem == "acc":
            return "less accurate"
        return f"{'lower' if self.higher_is_better else 'higher'} {self.short}"

    @property
    def unit(self) -> str:
        """What a difference of the primary figure is, in words."""
        if self.figure.stem in ("rmse", "mae", "pinball"):
            return "the label's units"
        if self.figure.stem == "cost":
            return "the costs' units per row"
        return self.figure.words

    @property
    def reference(self) -> str:
        """The task's default figure, shown beside a chosen one (accuracy; a regressor's RMSE)."""
        return figure_of(self.task, None).stem

    @property
    def spec(self) -> str:
        """How a figure is shown: a bounded score to 4 decimals, an error or a cost to 4
        significant digits (whatever its scale)."""
        return ".4f" if not self.relative else ".4g"

    def number(self, value: float) -> str:
        """A figure as a sentence says it (the report's reasons, the promotion gates): a score
        to 3 decimals, an error to 3 significant digits."""
        return f"{value:.3f}" if not self.relative else f"{value:.3g}"

    @property
    def primary(self) -> str:
        return self.measures[0]

    def name(self, measure: str, test_set: str) -> str:
        return f"{measure}_{test_set}"

    @property
    def old(self) -> str:
        """The primary figure on the old test set (`acc_old`, `f1_old`, `rmse_old`)."""
        return self.name(self.primary, "old")

    @property
    def new(self) -> str:
        return self.name(self.primary, "new")

    @property
    def all(self) -> str:
        return self.name(self.primary, ALL)

    @property
    def target_name(self) -> str:
        """The target as DVC's metrics name it (`acc_target`, `f1_target`, `rmse_target`):
        `dvc exp show` puts every experiment in one table, whatever each one measured."""
        return self.name(self.primary, TARGET)

    @property
    def metric_names(self) -> tuple[str, ...]:
        """Every figure an evaluation gives, then forgetting."""
        return tuple(self.name(m, t) for t in (*TEST_SETS, ALL) for m in self.measures) + (FORGETTING,)

    @property
    def headline(self) -> tuple[str, ...]:
        """The figures a registered version carries as tags."""
        return (self.old, self.new, self.all, FORGETTING)

    def target(self, figures: Mapping[str, float], new_traffic_share: float) -> float:
        """The figure the decision weighs: the primary figure on the traffic the model will
        see next, `(1 - new_traffic_share) * old + new_traffic_share * new` (for a measure that
        is not a mean over rows, F1 or AUC, the same weighting of the two sets' figures)."""
        return (1 - new_traffic_share) * figures[self.old] + new_traffic_share * figures[self.new]

    def forgetting(self, reference_old: float, old: float) -> float:
        """How much worse an update got on the old test set than `reference_old` (the
        baseline's), in the primary figure's units: positive is worse, negative a gain."""
        return reference_old - old if self.higher_is_better else old - reference_old

    def goodness(self, value: float) -> float:
        """The primary figure (or a target) oriented so that higher is better."""
        return value if self.higher_is_better else -value

    def scale(self, figure: float | None) -> float:
        """What a policy share (tolerance, max_forgetting) is a share of: 1 for a bounded
        score, the baseline's figure (`figure`) for a relative measure."""
        if not self.relative:
            return 1.0
        return abs(figure) if figure is not None and math.isfinite(figure) and figure else 1.0

    def improvement(self, value: float, reference: float) -> float:
        """How much better `value` is than `reference`, in the primary figure's units."""
        return self.goodness(value) - self.goodness(reference)

    def bounds(self, figure: str) -> tuple[float, float] | None:
        """The range a figure cannot leave, for clipping intervals."""
        if figure == TARGET:
            return self.figure.bounds
        if figure == FORGETTING:
            return None if self.relative else (-1.0, 1.0) if self.figure.bounds == UNIT else None
        stem, _, test_set = figure.rpartition("_")
        declared = BY_STEM.get(stem) if test_set in (*TEST_SETS, ALL, TARGET) else None
        return declared.bounds if declared is not None and declared.task == self.task else None

    def describe_target(self, share: float) -> str:
        return f"{1 - share:.2f} x {self.old} + {share:.2f} x {self.new}"


# Each task's figures measured whatever is chosen, in their declared order.
_ALWAYS = {task: tuple(f.stem for f in FIGURES.values() if f.task == task and not f.chosen_only) for task in TASKS}
_ROW = {CLASSIFICATION: ("precision_all", "recall_all"), REGRESSION: ("mae_old", "mae_new", "r2_all")}


def measure_of(task: str | None, metric: str | None = None) -> Measure:
    """The task's measure with `metric` (compare.metric's name; None or auto: the task's
    default) as its primary figure; a summary written before tasks existed is a classifier's."""
    task = task or CLASSIFICATION
    chosen = figure_of(task, metric)
    stems = (chosen.stem, *(s for s in _ALWAYS[task] if s != chosen.stem))
    reference = figure_of(task, None).stem
    shown = (f"{chosen.stem}_old", f"{chosen.stem}_new")
    if chosen.stem != reference:
        shown += (f"{reference}_old", f"{reference}_new")
    row = shown + tuple(f for f in _ROW[task] if f.split("_")[0] not in (chosen.stem, reference))
    if task == CLASSIFICATION and chosen.stem == reference:
        row = shown + ("f1_all", *_ROW[task])
    loss = "loss" if task == CLASSIFICATION else "rmse"
    return Measure(task, chosen, stems, loss, row)


MEASURES = {task: measure_of(task) for task in TASKS}
assert tuple(MEASURES) == TASKS


def measure_of_stem(stem: str, task: str = CLASSIFICATION) -> Measure:
    """The measure whose figures are named `STEM_old`, ...; `task` decides only for the cost
    of errors, which both tasks name alike (an unknown stem: accuracy's)."""
    declared = BY_STEM.get(stem, BY_STEM["acc"])
    return measure_of(task if declared.metric == COST else declared.task, declared.metric)


def of_figures(figures: Mapping[str, float], metric: str | None = None) -> Measure:
    """The measure whose figures these are (a record's means or one seed's figures): the
    task is read off them (a regressor's always hold its RMSE), the primary figure is
    `metric` (None: the task's default)."""
    task = REGRESSION if "rmse_old" in figures else CLASSIFICATION
    return measure_of(task, metric)


@dataclasses.dataclass(frozen=True)
class Scoring:
    """What computing a measure needs beyond the predictions, resolved by prepare from
    params.yaml's `compare` section and the data, and kept in summary.json.

    `positive` is a binary classifier's positive class (as text; None: not binary, and F1,
    precision and recall are macro over the classes); `threshold` the probability of it at
    which every option predicts it; `quantile` the pinball loss's; `costs` a classifier's
    cost of each (true, predicted) pair as {true: {predicted: cost}}, or a regressor's cost
    per unit of absolute error."""

    metric: str = AUTO
    positive: str | None = None
    threshold: float = 0.5
    quantile: float = 0.5
    costs: dict[str, dict[str, float]] | float | None = None
    positive_rule: str | None = None  # why that class (the default's rule, or compare.positive_class)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, raw: Mapping[str, Any] | None) -> Scoring:
        return cls(**raw) if raw else cls()

    def cost_of(self, true: str, predicted: str) -> float:
        assert isinstance(self.costs, dict)
        return float(self.costs[true][predicted])


def rules_of(summary) -> Scoring:
    """How a prepared summary's data is scored: its positive class, threshold, quantile, costs."""
    return Scoring.from_json(summary.scoring)


def measure_of_summary(summary) -> Measure:
    """The measure of a prepared summary's data: its task's, with the chosen figure as the
    primary one (a summary written before measures were chosen: the task's default)."""
    return measure_of(summary.task, rules_of(summary).metric)
