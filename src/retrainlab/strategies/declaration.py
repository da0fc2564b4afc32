"""What a strategy is: one declaration, and the plan it makes for one seed.

A strategy is a `Strategy` declaration: its name (the CLI subcommand, the MLproject entry
point, the DVC stage `update@NAME` and artifact, the MLflow run and logged model), its
settings (the section `strategies.NAME` of params.yaml, a `Settings` dataclass whose
defaults are params.yaml's and whose `DOCS` describe them), where it starts (fresh weights
or the baseline), whether it reads old training rows, the kinds of change it usually suits
(the change check), how the docs' tables describe it (`Card`), and a function
`Context -> Plan`. Everything else that names a strategy derives from these declarations
(`retrainlab.pipeline.derived`, checked by tests/strategies/test_derived.py).

The plan says which model to train, on which rows, for how long, and carries the hooks
that the one training path (`retrainlab.training.loop.fit`) honours on a single device, under
the mirrored strategy and on a multi-worker cluster alike:
- `rows`: the splits to train on, each whole or as a uniform sample of a bounded size;
- `loss_terms`: extra per-row loss terms, fed by targets computed from each row's inputs
  (distillation toward an old model's outputs);
- `transform`: a change to the starting weights before the first epoch (shrink-and-perturb);
- `callbacks`: Keras callbacks;
- `stopping`: early stopping on a share of the training rows set aside (the plans of the
  `model` section, which train until they converge).

Nothing here imports TensorFlow, so that params can be checked, and the prepare and compare
steps run, without loading it: the model surgery a plan needs is reached through
`Context`, which imports `retrainlab.models` when it is called.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, Protocol

from retrainlab.base import kinds
from retrainlab.base.labels import grown_labels
from retrainlab.config import MAX_EPOCHS, Params, require

FROM_SCRATCH = "scratch"  # fresh weights
FROM_BASELINE = "baseline"  # a copy of the baseline step's model of the same seed
OLD, NEW = "initial_train", "incremental_train"


@dataclasses.dataclass(frozen=True)
class Settings:
    """A strategy's section of params.yaml. Subclasses add fields with defaults and extend
    `check`; `key` is where the section sits (`strategies.NAME`), for messages. `DOCS`
    says what the fields do, for README's table of settings: each key names one field or
    several (`"epochs, learning_rate"`), and every field is in exactly one key."""

    DOCS: ClassVar[dict[str, str]] = {}

    def check(self, key: str) -> None:
        pass

    @classmethod
    def documented(cls) -> list[tuple[tuple[str, ...], str]]:
        """The fields by `DOCS`'s groups, each with its text; a field left out, named
        twice or unknown is an error in the declaration."""
        groups = [(tuple(k.strip() for k in key.split(",")), text) for key, text in cls.DOCS.items()]
        named = [name for names, _ in groups for name in names]
        fields = [f.name for f in dataclasses.fields(cls)]
        if sorted(named) != sorted(fields):
            raise TypeError(f"{cls.__name__}.DOCS names {sorted(named)}, but its fields are {sorted(fields)}")
        return groups


@dataclasses.dataclass(frozen=True)
class Training(Settings):
    """Settings of a strategy that trains for its own epochs at its own learning rate."""

    DOCS = {"epochs, learning_rate": "its own training's epochs and learning rate"}

    epochs: int = 15
    learning_rate: float = 0.0005

    def check(self, key: str) -> None:
        require(self.learning_rate > 0, f"{key}.learning_rate", "must be positive")
        require(1 <= self.epochs <= MAX_EPOCHS, f"{key}.epochs", f"must be between 1 and {MAX_EPOCHS}")


@dataclasses.dataclass(frozen=True)
class Rows:
    """Rows to train on: a prepared split, whole, or a uniform sample of `limit` of its rows."""

    split: str
    limit: int | None = None


class LossTerm(Protocol):
    """An extra per-row loss term. `targets` computes what the term compares against from a
    chunk of rows' model inputs (numpy in, numpy `(rows, width)` out); `__call__` gives each
    row's loss from those targets and the model's predicted probabilities (Keras ops)."""

    width: int

    def targets(self, inputs: Any) -> Any: ...

    def __call__(self, targets: Any, probabilities: Any) -> Any: ...


@dataclasses.dataclass(frozen=True)
class Stopping:
    """Early stopping: `fraction` of the training rows set aside, and training stopped once
    their loss has not improved for `patience` epochs, the best epoch's weights kept."""

    patience: int
    fraction: float


@dataclasses.dataclass
class Plan:
    bundle: Any  # a retrainlab.models.ModelBundle, not yet compiled
    rows: tuple[Rows, ...]
    epochs: int
    learning_rate: float
    batch_size: int
    section: str  # the params section its epochs and learning rate come from, for messages
    loss_terms: tuple[LossTerm, ...] = ()
    transform: Callable[[Any, int], None] | None = None  # (keras model, seed): before the first epoch
    callbacks: tuple = ()
    compiled_with: str = ""  # the optimizer and loss `fit` used, for the run
    feed: str = ""  # how `fit` fed the rows: "memory" or "stream" (retrainlab.training.loop), for the run
    notes: tuple[str, ...] = ()  # what was done to the starting model (a grown vocabulary), for the run
    stopping: Stopping | None = None  # the model section's plans: trained until they stop improving
    epochs_trained: int | None = None  # how many epochs `fit` trained (fewer than `epochs` when it stopped early)
    rows_aside: int = 0  # training rows `fit` set aside for `stopping`, and did not train on

    @property
    def splits(self) -> tuple[str, ...]:
        return tuple(r.split for r in self.rows)


@dataclasses.dataclass(frozen=True)
class Context:
    """What a strategy's function is given for one seed."""

    data: Any  # retrainlab.data.Prepared
    params: Params
    settings: Settings  # the strategy's own section
    section: str  # where that section is in params.yaml
    base: Any  # the baseline's model for this seed (a ModelBundle; the baseline step: a brought model or None)
    seed: int
    notes: list[str] = dataclasses.field(default_factory=list)  # what `grown` did, for the plan

    def plan(self, bundle, rows: Sequence[Rows], **hooks) -> Plan:
        """A plan at the settings' epochs and learning rate (the `model` section's for a
        strategy without its own: at most its epochs, stopping early as `model.patience`
        says), in batches of `model.batch_size`."""
        own = isinstance(self.settings, Training)
        source = self.settings if own else self.params.model
        m = self.params.model
        stopping = None if own or m.patience is None else Stopping(m.patience, m.validation_fraction)
        return Plan(bundle, tuple(rows), source.epochs, source.learning_rate, self.params.model.batch_size,
                    self.section if own else "model", notes=tuple(self.notes), stopping=stopping, **hooks)

    # Mutation testing (make mutation, docs/TESTING.md) stops here: what follows reaches the
    # model surgery in retrainlab.models (TensorFlow), which the strategy tests train for real.
    # pragma: no mutate block
    def grown(self, *splits: str):
        """A copy of the baseline whose output has a unit for every class `splits` add
        (the incremental data by default), the old classes' units untouched; with
        `model.grow_vocabulary`, its text layers also know the tokens those rows add, and its
        categorical lookups the values, the old ones' indices and rows untouched
        (retrainlab.models.vocabulary)."""
        # start-up: no TensorFlow until a plan is made
        from retrainlab.models.surgery import grow_output
        from retrainlab.models.vocabulary import with_new_tokens, with_new_values

        splits = splits or (NEW,)
        base = self.base
        m = self.params.model
        if m.grow_vocabulary:
            base, growth = with_new_tokens(base, self.data, splits, m.text_tokens, self.seed)
            base, values = with_new_values(base, self.data, splits, m.max_categories, self.seed)
            self.notes.extend(g.describe() for g in [*growth, *values])
        labels = grown_labels(base.labels, self.data.classes(*splits))
        model = grow_output(base.model, len(labels), self.seed)
        return dataclasses.replace(base, model=model, labels=labels)

    def fresh(self, *splits: str):
        """A model with fresh weights for the classes of `splits`: the project's MLP, or,
        for a brought baseline, its architecture with its preprocessing adapted anew."""
        from retrainlab.models.build import fresh_bundle  # start-up: no TensorFlow until a plan is made

        return fresh_bundle(self.data, self.params, splits, self.seed, self.base)

    def copy_of_base(self):
        """The baseline as it is, in a copy no other strategy's training can change."""
        from retrainlab.models.files import copy_model  # start-up: no TensorFlow until a plan is made

        return dataclasses.replace(self.base, model=copy_model(self.base.model))

    def rows(self, split: str) -> int:
        return self.data.rows(split)


@dataclasses.dataclass(frozen=True)
class Card:
    """How the docs' tables describe a strategy: README.md's and docs/STRATEGIES.md's, which
    are generated from it (`retrainlab.pipeline.derived`)."""

    starts: str  # what it starts from, in words
    trains_on: str
    needs_old: str  # the old data it needs
    extra_cost: str  # its cost over keeping on training
    on_your_model: str  # what it does to a model the user brought
    source: str = ""  # where the idea comes from


@dataclasses.dataclass(frozen=True, kw_only=True)
class Strategy:
    """One option for "I have a model and new data", declared once."""

    name: str
    rank: int  # its place wherever the options are listed (the catalogue's order)
    summary: str  # one line: the CLI's help, the report, MLflow, dvc.yaml's artifact
    plan: Callable[[Context], Plan]
    action: str  # the advice, as the report's headline says it ("Retrain from scratch")
    suits: frozenset[str]  # the kinds of change (retrainlab.base.kinds) it usually answers
    card: Card
    settings: type[Settings] = Settings  # its section `strategies.NAME` (none of its own: the model section)
    starts_from: str = FROM_BASELINE  # FROM_SCRATCH or FROM_BASELINE
    reads_old_data: bool = False  # whether it trains on old (initial) rows

    KINDS: ClassVar = (FROM_SCRATCH, FROM_BASELINE)

    def __post_init__(self) -> None:
        if self.starts_from not in self.KINDS:
            raise ValueError(f"{self.name}: starts_from must be one of {self.KINDS}")
        if not set(self.suits) <= set(kinds.DECLARED):
            raise ValueError(f"{self.name}: suits {sorted(set(self.suits) - set(kinds.DECLARED))}, "
                             f"not among {kinds.DECLARED}")
        self.settings.documented()

    @property
    def section(self) -> str:
        """Where its settings are in params.yaml: its own section, or the model's."""
        return f"strategies.{self.name}" if issubclass(self.settings, Training) else "model"
