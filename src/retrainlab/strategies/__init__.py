"""The strategies: every answer to "I have a model and new data", each declared once.

Every module of this package but `declaration` declares one strategy, its `STRATEGY`, and
`CATALOGUE` holds them all, in the order of their `rank`. The CLI's subcommands, the config
schema of params.yaml's `strategies:` section, the DVC stages (`update@NAME`, one per
strategy params.yaml chooses), the report, the change check and the test matrix read the
catalogue; MLproject's entry points, dvc.yaml's artifacts and the tables of README.md and
docs/STRATEGIES.md are generated from it (`make derived`; tests/strategies/test_derived.py fails when
one drifts). To add an option: a module here with its function, its settings and its
`STRATEGY` declaration, and its section in params.yaml; then `make derived`.

No TensorFlow is loaded by importing this package.
"""

import importlib
import pkgutil

from retrainlab.config import TRAIN, Params
from retrainlab.strategies.declaration import (
    FROM_BASELINE,
    FROM_SCRATCH,
    Card,
    Context,
    LossTerm,
    Plan,
    Rows,
    Settings,
    Stopping,
    Strategy,
    Training,
)

DECLARATION = "declaration"  # the one module of the package that declares no strategy


def _declared() -> list[Strategy]:
    """Each module's `STRATEGY`, by rank; a module without one, or two with one name or one
    rank, is an error in the package."""
    found = []
    for module in pkgutil.iter_modules(__path__):
        if module.name != DECLARATION:
            declared = getattr(importlib.import_module(f"{__name__}.{module.name}"), "STRATEGY", None)
            if not isinstance(declared, Strategy):
                raise TypeError(f"retrainlab.strategies.{module.name} declares no STRATEGY")
            found.append(declared)
    for field in ("name", "rank"):
        values = [getattr(s, field) for s in found]
        if len(set(values)) != len(values):
            raise TypeError(f"two strategies share a {field}: {sorted(values)}")
    return sorted(found, key=lambda s: s.rank)


CATALOGUE: dict[str, Strategy] = {s.name: s for s in _declared()}
BASELINE = "baseline"  # always runs first (the lowest rank); the others update it
if next(iter(CATALOGUE), None) != BASELINE:
    raise TypeError(f"the strategy {BASELINE!r} must be declared, with the lowest rank")
UPDATES = tuple(name for name in CATALOGUE if name != BASELINE)


def settings_of(params: Params, name: str) -> Settings:
    """A strategy's own settings (its section under `strategies`), or the defaults of one
    not chosen to run (the baseline and full-retrain have none: they read `model`)."""
    return params.strategies.get(name) or CATALOGUE[name].settings()


def describe(name: str, params: Params) -> str:
    """A strategy step's header: what it does, on how many seeds, for how many epochs."""
    seeds = f"{len(params.seeds)} seed{'s' * (len(params.seeds) != 1)}"
    if name == BASELINE and params.baseline.from_ != TRAIN:
        return f"{name}: your model ({params.baseline.from_}), evaluated as it is on {seeds}"
    settings = settings_of(params, name)
    if isinstance(settings, Training):
        return f"{name}: {CATALOGUE[name].summary}; {seeds} x {settings.epochs} epochs"
    m = params.model
    epochs = f"{m.epochs} epochs" if m.patience is None else f"up to {m.epochs} epochs (stopping early)"
    return f"{name}: {CATALOGUE[name].summary}; {seeds} x {epochs}"


def plan_for(name: str, data, params: Params, base, seed: int) -> Plan:
    """Strategy `name`'s plan for one seed, starting from `base` (see `Context`)."""
    strategy = CATALOGUE[name]
    return strategy.plan(Context(data, params, settings_of(params, name), strategy.section, base, seed))


__all__ = [
    "BASELINE", "CATALOGUE", "FROM_BASELINE", "FROM_SCRATCH", "UPDATES", "Card", "Context", "LossTerm", "Plan", "Rows",
    "Settings", "Stopping", "Strategy", "Training", "describe", "plan_for", "settings_of",
]
