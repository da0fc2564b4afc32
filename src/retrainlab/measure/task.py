"""How a task is measured, defined once: its figures and their names, the primary one and
its direction, the target, forgetting, the policy's tolerances in the figure's units, and
the range each figure cannot leave.

Everything that weighs a model (the comparison, the adaptive seeds, the promotion gates,
the decision map, the reports) asks the task's `Measure` rather than name a figure itself:

- classification: accuracy (the primary figure, higher is better), the mean cross-entropy
  and macro-F1; forgetting is the accuracy lost on the old test set; the policy's tolerance
  and forgetting ceiling are accuracy (0.01 is one point);
- regression: RMSE (the primary figure, lower is better), MAE and R²; forgetting is how
  much the RMSE on the old test set grew, in the label's units; the policy's tolerance and
  forgetting ceiling are shares of the baseline's own error (0.01 is 1% of its target RMSE,
  0.025 is 2.5% of its RMSE on the old data), so that one params.yaml reads the same for a
  label in dollars or in days.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping

from retrainlab.base.tasks import CLASSIFICATION, REGRESSION, TASKS

TEST_SETS = ("old", "new")
ALL = "all"
FORGETTING = "forgetting"
TARGET = "target"


@dataclasses.dataclass(frozen=True)
class Measure:
    task: str
    measures: tuple[str, ...]  # every figure measured on each test set, the primary first
    higher_is_better: bool  # of the primary figure
    loss: str  # the figure that must be finite for a model to be kept (the gates read it)
    unit: str  # what a difference of the primary figure is, in words
    relative: bool  # whether the policy's tolerance and ceiling are shares of the baseline's error
    # The figures the report's table gives a strategy beside its target and forgetting (`dvc
    # metrics show` has the primary figure's only: its 120 columns hold no more).
    table_row: tuple[str, ...]

    @property
    def spec(self) -> str:
        """How a figure is shown: accuracy to 4 decimals, an error in the label's units to 4
        significant digits (whatever its scale)."""
        return ".4f" if self.higher_is_better else ".4g"

    def number(self, value: float) -> str:
        """A figure as a sentence says it (the report's reasons, the promotion gates): accuracy
        to 3 decimals, an error to 3 significant digits."""
        return f"{value:.3f}" if self.higher_is_better else f"{value:.3g}"

    @property
    def primary(self) -> str:
        return self.measures[0]

    def name(self, measure: str, test_set: str) -> str:
        return f"{measure}_{test_set}"

    @property
    def old(self) -> str:
        """The primary figure on the old test set (`acc_old`, `rmse_old`)."""
        return self.name(self.primary, "old")

    @property
    def new(self) -> str:
        return self.name(self.primary, "new")

    @property
    def all(self) -> str:
        return self.name(self.primary, ALL)

    @property
    def target_name(self) -> str:
        """The target as DVC's metrics name it (`acc_target`, `rmse_target`): `dvc exp show`
        puts every experiment in one table, a classifier's beside a regressor's."""
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
        see next, `(1 - new_traffic_share) * old + new_traffic_share * new`."""
        return (1 - new_traffic_share) * figures[self.old] + new_traffic_share * figures[self.new]

    def forgetting(self, reference_old: float, old: float) -> float:
        """How much worse an update got on the old test set than `reference_old` (the
        baseline's), in the primary figure's units: positive is worse, negative a gain."""
        return reference_old - old if self.higher_is_better else old - reference_old

    def goodness(self, value: float) -> float:
        """The primary figure (or a target) oriented so that higher is better."""
        return value if self.higher_is_better else -value

    def scale(self, figure: float | None) -> float:
        """What a policy share (tolerance, max_forgetting) is a share of: 1 for accuracy,
        the baseline's error (`figure`) for a relative measure."""
        if not self.relative:
            return 1.0
        return abs(figure) if figure is not None and math.isfinite(figure) and figure else 1.0

    def improvement(self, value: float, reference: float) -> float:
        """How much better `value` is than `reference`, in the primary figure's units."""
        return self.goodness(value) - self.goodness(reference)

    def bounds(self, figure: str) -> tuple[float, float] | None:
        """The range a figure cannot leave, for clipping intervals."""
        stem = figure.split("_")[0]
        if self.task == CLASSIFICATION:
            if stem in ("acc", "f1") or figure == TARGET:
                return (0.0, 1.0)
            return (-1.0, 1.0) if figure == FORGETTING else None
        if stem in ("rmse", "mae") or figure == TARGET:
            return (0.0, math.inf)
        return (-math.inf, 1.0) if stem == "r2" else None

    def describe_target(self, share: float) -> str:
        return f"{1 - share:.2f} x {self.old} + {share:.2f} x {self.new}"


MEASURES = {
    CLASSIFICATION: Measure(CLASSIFICATION, ("acc", "loss", "f1"), True, "loss", "accuracy", False,
                            table_row=("acc_old", "acc_new", "f1_all")),
    REGRESSION: Measure(REGRESSION, ("rmse", "mae", "r2"), False, "rmse", "the label's units", True,
                        table_row=("rmse_old", "rmse_new", "mae_old", "mae_new", "r2_all")),
}
assert tuple(MEASURES) == TASKS


def measure_of(task: str | None) -> Measure:
    """The task's measure; a summary written before tasks existed is a classifier's."""
    return MEASURES[task or CLASSIFICATION]


def of_figures(figures: Mapping[str, float]) -> Measure:
    """The measure whose figures these are (a record's means or one seed's figures)."""
    return next((m for m in MEASURES.values() if m.old in figures), MEASURES[CLASSIFICATION])
