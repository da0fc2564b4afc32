"""`records/<strategy>.json` as one typed record, read and written here only.

The strategy step writes it; the compare step, the comparison, the registry and the CLI
read it. On disk the means over the seeds sit at the top level, next to their 95% intervals,
each seed's figures, and where MLflow keeps the runs and the registered model.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from retrainlab.base import layout
from retrainlab.base.errors import PipelineError
from retrainlab.base.files import write_text_atomically
from retrainlab.config import TRAIN
from retrainlab.measure.evaluation import mean_interval
from retrainlab.measure.task import AUTO, FORGETTING, TARGET, Measure, of_figures


@dataclasses.dataclass(frozen=True)
class Runs:
    """Where MLflow keeps a strategy's runs and its registered model."""

    experiment_id: str
    run_id: str  # the strategy's run
    parent_run_id: str  # the pipeline execution it belongs to
    seed_run_ids: dict[str, str]
    registered_model: str
    model_version: int
    model_seed: int  # the seed whose model was registered
    parent_version: str | None = None  # the registered version it started from


@dataclasses.dataclass(frozen=True)
class Interval:
    low: float
    high: float


@dataclasses.dataclass(frozen=True)
class Origin:
    """Where the baseline came from, resolved (retrainlab.pipeline.origin resolves it)."""

    spec: str  # baseline.from as written
    kind: str  # "train", "file" or "registry"
    md5: str | None = None  # file: its content
    name: str | None = None  # registry: the registered model,
    version: str | None = None  # the version the URI resolves to now,
    run_id: str | None = None  # and the run that logged it

    @property
    def brought(self) -> bool:
        return self.kind != TRAIN

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Origin:
        return cls(**raw)


@dataclasses.dataclass(frozen=True)
class StrategyRecord:
    strategy: str
    round: int
    device: str
    distribute: dict[str, Any]
    means: dict[str, float]  # every figure's mean over the seeds
    ci95: dict[str, Interval]  # and its 95% interval
    per_seed: dict[str, dict[str, float]]  # seed (as text) -> figure -> value
    mlflow: Runs | None  # None: nothing was logged (the decision map's records)
    origin: Origin | None = None  # where the baseline came from
    # The registered seed's test rows per [actual, predicted, rows], per test set (per-class recall)
    confusion: dict[str, list[list]] | None = None
    notes: tuple[str, ...] = ()  # what was done to the registered seed's starting model (a grown vocabulary)
    metric: str = AUTO  # the measure its figures were weighed by (compare.metric; auto: the task's default)

    @classmethod
    def of_seeds(cls, strategy: str, round_: int, per_seed: dict[str, dict[str, float]], distribute: dict[str, Any],
                 mlflow: Runs | None = None, origin: Origin | None = None,
                 confusion: dict[str, list[list]] | None = None, notes: tuple[str, ...] = (),
                 metric: str = AUTO) -> StrategyRecord:
        """The record of each seed's figures: their means and 95% intervals over the seeds,
        and the device they trained on, computed here for every producer of a record."""
        means, ci95 = summarize(list(per_seed.values()), metric)
        return cls(strategy=strategy, round=round_, device="gpu" if means.get("gpus") else "cpu",
                   distribute=distribute, means=means, ci95=ci95, per_seed=dict(per_seed), mlflow=mlflow,
                   origin=origin, confusion=confusion, notes=tuple(notes), metric=metric)

    @property
    def measure(self) -> Measure:
        """The measure its figures were weighed by: the task's, read off them, with its metric."""
        return of_figures(self.means, self.metric)

    def interval_metrics(self) -> dict[str, float]:
        """The 95% intervals of the figures that have one worth showing (INTERVAL_FIGURES)."""
        flat, m = {}, self.measure
        for name, bounds in self.ci95.items():
            if name in INTERVAL_FIGURES or name in (m.old, m.new):
                flat[f"{name}_ci_low"], flat[f"{name}_ci_high"] = bounds.low, bounds.high
        return flat

    @property
    def seeds(self) -> list[int]:
        """The seeds its figures are over, read off them: the comparison's extra seeds count
        as soon as they are added (`with_seed`)."""
        return [int(seed) for seed in self.per_seed]

    def mean(self, figure: str, default: float | None = None) -> float | None:
        return self.means.get(figure, default)

    def values(self, figure: str) -> list[float]:
        """The figure's value for each seed, in seed order."""
        return [figures[figure] for figures in self.per_seed.values()]

    @property
    def version(self) -> str:
        """The registered version of its model ("" for a record nothing was registered for)."""
        return str(self.mlflow.model_version) if self.mlflow else ""

    def with_seed(self, seed: str, figures: dict[str, float]) -> StrategyRecord:
        """The record with one more seed's figures, its means and intervals computed again."""
        per_seed = {**self.per_seed, seed: figures}
        means, ci95 = summarize(list(per_seed.values()), self.metric)
        return dataclasses.replace(self, per_seed=per_seed, means=means, ci95=ci95)

    def to_json(self) -> dict[str, Any]:
        raw = {"strategy": self.strategy, "round": self.round, "seeds": list(self.seeds), "device": self.device,
               "distribute": self.distribute, **self.means,
               "ci95": {k: dataclasses.asdict(v) for k, v in self.ci95.items()},
               "per_seed": self.per_seed, "mlflow": dataclasses.asdict(self.mlflow) if self.mlflow else None}
        optional = {"origin": self.origin.to_json() if self.origin else None, "confusion": self.confusion,
                    "notes": list(self.notes) or None, "metric": self.metric if self.metric != AUTO else None}
        return raw | {key: value for key, value in optional.items() if value is not None}

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> StrategyRecord:
        fixed = {"strategy", "round", "seeds", "device", "distribute", "ci95", "per_seed", "mlflow", "origin",
                 "confusion", "notes", "metric"}
        return cls(
            strategy=raw["strategy"], round=raw["round"], device=raw["device"],
            distribute=raw["distribute"], means={k: v for k, v in raw.items() if k not in fixed},
            ci95={k: Interval(**v) for k, v in raw["ci95"].items()}, per_seed=raw["per_seed"],
            mlflow=Runs(**raw["mlflow"]) if raw["mlflow"] else None, origin=Origin.from_json(raw["origin"]) if raw.get("origin") else None,
            confusion=raw.get("confusion"), notes=tuple(raw.get("notes", ())), metric=raw.get("metric", AUTO),
        )

    def write(self, root: Path) -> None:
        write_text_atomically(root / layout.record_path(self.strategy), json.dumps(self.to_json(), indent=2) + "\n")


# Figures whose 95% interval a strategy run logs for the UI: those the decision weighs. Not the
# GPU count or the rows trained, which the seeds share, nor every other figure's, which
# records/<strategy>.json and the report hold: a run's charts stay few.
INTERVAL_FIGURES = ("acc_old", "acc_new", "rmse_old", "rmse_new", "forgetting", "cpu_seconds", "gpu_seconds",
                    "cost_usd")


def rounded(figures: dict[str, float]) -> dict[str, float]:
    """Figures as MLflow shows them: accuracies, losses, F1 and R² to 4 decimals (a seed's
    test set tells no finer), errors in the label's units (and a regressor's target and
    forgetting) to 6 significant digits, seconds to 2, memory in whole MB, money to 4
    significant digits; counts as they are."""
    regression = not of_figures(figures).higher_is_better
    shown = {}
    for name, value in figures.items():
        stem = name.removesuffix("_ci_low").removesuffix("_ci_high")
        if stem.endswith("_seconds"):
            shown[name] = round(value, 2)
        elif stem.endswith("_mb"):
            shown[name] = round(value)
        elif stem.endswith("_usd"):
            shown[name] = float(f"{value:.4g}")
        elif stem.startswith(("rmse_", "mae_", "mape_", "pinball_", "cost_")) or (
                regression and stem in (TARGET, FORGETTING)):
            shown[name] = float(f"{value:.6g}")
        elif stem.startswith(("acc_", "loss_", "f1_", "r2_", "bacc_", "precision_", "recall_", "auc_", "ap_",
                              "target")) or stem == "forgetting":
            shown[name] = round(value, 4)
        else:
            shown[name] = value
    return shown


def summarize(per_seed: list[dict[str, float]], metric: str = AUTO) -> tuple[dict[str, float], dict[str, Interval]]:
    """Mean and 95% interval of every figure over the seeds (the figures of the first seed)."""
    means, intervals = {}, {}
    measure = of_figures(per_seed[0], metric)
    for name in per_seed[0]:
        mean, low, high = mean_interval([figures[name] for figures in per_seed], bounds=measure.bounds(name))
        means[name], intervals[name] = mean, Interval(low, high)
    return means, intervals


def logged_record(root: Path) -> Path | None:
    """The first record that names MLflow runs (its `mlflow` section), as a path in `root`:
    the project's word that a tracking store holds its runs and versions. A damaged file
    says nothing either way."""
    for path in sorted(root.glob(layout.record_path("*").as_posix())):
        try:
            if json.loads(path.read_text()).get("mlflow"):
                return path.relative_to(root)
        except (OSError, ValueError, AttributeError):
            continue
    return None


def load(root: Path, strategy: str) -> StrategyRecord:
    """A strategy's record; a missing or damaged file is a one-line error saying what to run."""
    path = layout.record_path(strategy)
    try:
        raw = json.loads((root / path).read_text())
    except FileNotFoundError:
        raise PipelineError(f"{path}: not found; run the {strategy} step first (dvc repro)") from None
    except (OSError, ValueError) as exc:
        raise PipelineError(f"{path}: cannot be read ({type(exc).__name__}); run the {strategy} step again") from None
    try:
        return StrategyRecord.from_json(raw)
    except (KeyError, TypeError, AttributeError) as exc:
        raise PipelineError(
            f"{path}: not a strategy record ({type(exc).__name__}: {exc}); run the {strategy} step again"
        ) from None
