"""The strategies: every answer to "I have a model and new data", each declared once.

`CATALOGUE` lists them in the order they are shown. The CLI's subcommands, MLproject's entry
points, the config schema of params.yaml's `strategies:` section, the DVC stages (`update@NAME`,
one per strategy params.yaml chooses), the report and the test matrix come from here or are
checked against it (tests/test_project_files.py). To add an option: a module with its
function, its settings and its `STRATEGY` declaration, its name in `_MODULES`, its defaults
in params.yaml, its tests.

No TensorFlow is loaded by importing this package.
"""

from retrainlab.config import TRAIN, Params
from retrainlab.strategies import (
    baseline,
    distill,
    fine_tune,
    full_retrain,
    incremental,
    replay,
    shrink_perturb,
)
from retrainlab.strategies.declaration import (
    FROM_BASELINE,
    FROM_SCRATCH,
    Context,
    LossTerm,
    Plan,
    Rows,
    Settings,
    Strategy,
    Training,
)

_MODULES = (baseline, full_retrain, incremental, fine_tune, replay, distill, shrink_perturb)
CATALOGUE: dict[str, Strategy] = {m.STRATEGY.name: m.STRATEGY for m in _MODULES}
BASELINE = baseline.STRATEGY.name  # always runs first; the others update it
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
    epochs = settings.epochs if isinstance(settings, Training) else params.model.epochs
    return f"{name}: {CATALOGUE[name].summary}; {seeds} x {epochs} epochs"


def plan_for(name: str, data, params: Params, base, seed: int) -> Plan:
    """Strategy `name`'s plan for one seed, starting from `base` (see `Context`)."""
    strategy = CATALOGUE[name]
    return strategy.plan(Context(data, params, settings_of(params, name), strategy.section, base, seed))


__all__ = [
    "BASELINE", "CATALOGUE", "FROM_BASELINE", "FROM_SCRATCH", "UPDATES", "Context", "LossTerm", "Plan", "Rows",
    "Settings", "Strategy", "Training", "describe", "plan_for", "settings_of",
]
