"""params.yaml's sections: one frozen dataclass each, with the checks of its values.

Each `check` rejects an out-of-range value with a one-line ConfigError naming the key; the
converter (convert.py) rejects unknown keys and wrong types the same way. The options'
own sections (`strategies.NAME`) are declared with the strategies, which read these.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any, Literal

from retrainlab.base.errors import ConfigError
from retrainlab.config.convert import key_of

SOURCES = ("digits", "synthetic", "text", "friedman", "recommender", "files", "arrays")
TASK_SETTINGS = ("auto", "classification", "regression")
# Upper bounds that no real run comes near, so that a slip of the keyboard (an extra few
# zeros) is refused at once instead of exhausting the machine's memory or time.
MAX_EPOCHS = 100_000
MAX_UNITS = 65_536
TEXT_TOKENS = 10_000  # model.text_tokens' default
EMBEDDING_THRESHOLD = 100  # model.embedding_threshold's default (docs/BENCHMARKS.md, categorical encodings)
MAX_CATEGORIES = 100_000  # model.max_categories' default: 100,000 rows of 32 floats, 12.8 MB
MAX_TEXT_LENGTH = 4096
MAX_BATCH = 1 << 20
MAX_SEEDS = 100
# A training seed seeds NumPy's legacy generator (which takes 0 to 2**32 - 1) and, plus a
# small offset, Keras' initializers: int32's range leaves room for the offsets.
MAX_SEED = 2**31 - 1
# The synthetic source's size: rows generated, and columns and classes a chunk of
# CHUNK_ROWS rows holds in memory (features x 2 MiB at most).
MAX_SYNTHETIC_ROWS = 10**9
MAX_SYNTHETIC_COLUMNS = 1024
# compare.metric's names: retrainlab.measure.task declares each (kept equal by a test).
MEASURE_NAMES = ("accuracy", "log_loss", "f1", "balanced_accuracy", "precision", "recall", "roc_auc",
                 "average_precision", "rmse", "mae", "r2", "mape", "pinball", "cost")
SCENARIOS = ("same_distribution", "covariate_shift", "concept_drift", "new_classes", "new_categories")
# The recommender source's scenarios: its two classes (click or not) leave none to hold back
# or rotate; what changes in its new data is the items (new_categories).
RECOMMENDER_SCENARIOS = ("same_distribution", "new_categories")


@dataclasses.dataclass(frozen=True)
class SyntheticParams:
    rows: int = 3000
    features: int = 8
    classes: int = 4

    def check(self) -> None:
        require(20 <= self.rows <= MAX_SYNTHETIC_ROWS, "data.synthetic.rows",
                f"must be between 20 and {MAX_SYNTHETIC_ROWS}")
        require(1 <= self.features <= MAX_SYNTHETIC_COLUMNS, "data.synthetic.features",
                f"must be between 1 and {MAX_SYNTHETIC_COLUMNS}")
        require(2 <= self.classes <= MAX_SYNTHETIC_COLUMNS, "data.synthetic.classes",
                f"must be between 2 and {MAX_SYNTHETIC_COLUMNS}")


@dataclasses.dataclass(frozen=True)
class FilesParams:
    initial: str = "data/raw/initial.csv"
    incremental: str = "data/raw/incremental.csv"
    label: str = "label"
    features: list[str] = dataclasses.field(default_factory=list)
    text: list[str] | None = None  # the text columns; None: found by retrainlab.data.text's rule
    # Columns read as categories, each value as written ("02139" keeps its zero; 101.0 read from
    # Parquet is "101"): ids and codes written in digits, which would otherwise be numbers.
    categorical: list[str] | None = None

    def check(self) -> None:
        listed = self.categorical or []
        repeated = next((c for i, c in enumerate(listed) if c in listed[:i]), None)
        require(repeated is None, "data.files.categorical", f"lists '{repeated}' twice; name each column once")
        both = next((c for c in listed if c in (self.text or [])), None)
        require(both is None, "data.files.categorical", f"lists '{both}', which data.files.text lists too: a column "
                "is text (sentences) or categorical (codes, ids), not both; take it out of one")


@dataclasses.dataclass(frozen=True)
class ArraysParams:
    """The `arrays` source: one .npz file per dataset, with `x` (any shape) and `y`."""

    initial: str = "data/raw/initial.npz"
    incremental: str = "data/raw/incremental.npz"


@dataclasses.dataclass(frozen=True)
class DataParams:
    source: Literal["digits", "synthetic", "text", "friedman", "recommender", "files", "arrays"] = "digits"
    # What the model predicts: a class, or a number (regression); auto: retrainlab.data.task's rule.
    task: Literal["auto", "classification", "regression"] = "auto"
    scenario: Literal["same_distribution", "covariate_shift", "concept_drift", "new_classes", "new_categories"] = (
        "new_classes"
    )
    incremental_fraction: float = 0.3
    test_fraction: float = 0.25
    affected_classes: int = 3
    shift_strength: float = 1.0
    unseen_share: float = 0.5  # new_categories: the share of the new rows whose item the old data never had
    seed: int = 0
    missing: Literal["drop", "impute"] = "drop"
    synthetic: SyntheticParams = dataclasses.field(default_factory=SyntheticParams)
    files: FilesParams = dataclasses.field(default_factory=FilesParams)
    arrays: ArraysParams = dataclasses.field(default_factory=ArraysParams)
    # The model's output units in order (output i is labels[i]); empty: the labels sorted.
    labels: list[str | int] = dataclasses.field(default_factory=list)

    def check(self) -> None:
        require(0 < self.incremental_fraction <= 10, "data.incremental_fraction", "must be in (0, 10]")
        require(0 < self.test_fraction < 1, "data.test_fraction", "must be in (0, 1)")
        require(self.affected_classes >= 1, "data.affected_classes", "must be at least 1")
        if self.scenario == "concept_drift":
            require(
                self.affected_classes >= 2,
                "data.affected_classes",
                "must be at least 2 for concept_drift (labels rotate among these classes)",
            )
        require(self.shift_strength > 0, "data.shift_strength", "must be positive")
        require(0 <= self.unseen_share <= 1, "data.unseen_share", "must be in [0, 1]")
        require(self.seed >= 0, "data.seed", "must be 0 or more")
        if self.source in BUILTIN_SOURCES:  # the user's own data has no scenario
            require(self.scenario != "new_categories" or self.source == "recommender", "data.scenario",
                    f"is new_categories, but the {self.source} source has no categories for new data to add; "
                    "set data.source to recommender or choose another scenario")
        if self.source == "recommender":
            require(self.scenario in RECOMMENDER_SCENARIOS, "data.scenario",
                    f"is {self.scenario}, but the recommender source takes {' or '.join(RECOMMENDER_SCENARIOS)} "
                    "only; choose one of them")
        if self.source == "friedman":
            require(self.scenario != "new_classes", "data.scenario",
                    "is new_classes, but the friedman source predicts a number and has no classes; choose "
                    "same_distribution, covariate_shift or concept_drift")
            require(self.task != "classification", "data.task",
                    "is classification, but the friedman source predicts a number; set it to auto or regression")
            require(self.synthetic.features >= 5, "data.synthetic.features",
                    "must be at least 5 for the friedman source (its rule reads five columns)")
        require(len(set(map(str, self.labels))) == len(self.labels), "data.labels", "must not repeat a label")
        self.synthetic.check()
        self.files.check()


@dataclasses.dataclass(frozen=True)
class ModelParams:
    hidden_units: list[int] = dataclasses.field(default_factory=lambda: [64, 32])
    dropout: float = 0.1
    learning_rate: float = 0.001
    epochs: int = 200  # the most epochs: with `patience`, training stops once it no longer improves
    batch_size: int = 32
    # The baseline and full-retrain (the options trained to converge) stop when the loss on a
    # share `validation_fraction` of their training rows, set aside, has not improved for
    # `patience` epochs, and keep the best epoch's weights; null: every one of `epochs`.
    patience: int | None = 10
    validation_fraction: float = 0.1
    # Text columns (retrainlab.data.text): the vocabulary's size, the tokens read of each text,
    # the width of a token's embedding; whether options that start from the baseline append
    # the tokens the new data adds to its vocabulary (retrainlab.models.vocabulary).
    text_tokens: int = TEXT_TOKENS
    text_length: int = 64
    embedding_dim: int = 32
    # Categorical columns: one with more distinct values in the training rows than
    # `embedding_threshold` is read through an embedding of `embedding_dim` (fewer: one-hot);
    # the `max_categories` most frequent values are kept, a rarer one is read as unknown.
    # `grow_vocabulary` grows their lookups too: options that start from the baseline give the
    # values the new rows add their own index (retrainlab.models.vocabulary).
    embedding_threshold: int = EMBEDDING_THRESHOLD
    max_categories: int = MAX_CATEGORIES
    grow_vocabulary: bool = True

    def check(self) -> None:
        require(len(self.hidden_units) >= 1, "model.hidden_units", "needs at least one layer")
        require(1 <= self.text_tokens <= 10**7, "model.text_tokens", "must be between 1 and 10000000")
        require(1 <= self.text_length <= MAX_TEXT_LENGTH, "model.text_length",
                f"must be between 1 and {MAX_TEXT_LENGTH}")
        require(1 <= self.embedding_dim <= MAX_UNITS, "model.embedding_dim", f"must be between 1 and {MAX_UNITS}")
        require(0 <= self.embedding_threshold <= 10**7, "model.embedding_threshold",
                "must be between 0 (embed every categorical column) and 10000000")
        require(1 <= self.max_categories <= 10**7, "model.max_categories", "must be between 1 and 10000000")
        require(all(1 <= u <= MAX_UNITS for u in self.hidden_units), "model.hidden_units",
                 f"must be between 1 and {MAX_UNITS}")
        require(0 <= self.dropout < 1, "model.dropout", "must be in [0, 1)")
        _check_training("model", self.learning_rate, self.epochs)
        require(1 <= self.batch_size <= MAX_BATCH, "model.batch_size", f"must be between 1 and {MAX_BATCH}")
        require(self.patience is None or 1 <= self.patience <= MAX_EPOCHS, "model.patience",
                f"must be between 1 and {MAX_EPOCHS}, or null to train every epoch")
        require(0 < self.validation_fraction <= 0.5, "model.validation_fraction", "must be in (0, 0.5]")


TRAIN = "train"
REGISTRY_URI = re.compile(r"models:/(?P<name>[^/@]+)(?:@(?P<alias>[\w-]+)|/(?P<version>\d+))")


def names_model(spec: str) -> bool:
    """Whether `spec` is written as a model of the user's, a registry URI or a .keras file:
    what baseline.from takes besides train, and `check --model` besides a pipeline's folder."""
    return bool(REGISTRY_URI.fullmatch(spec)) or spec.endswith(".keras")


@dataclasses.dataclass(frozen=True)
class BaselineParams:
    """Where the baseline comes from: trained here, a registered version, or a Keras file."""

    from_: str = TRAIN  # `from` in params.yaml

    def check(self) -> None:
        require(self.from_ == TRAIN or names_model(self.from_), "baseline.from",
                 f"is {self.from_!r}; give train, models:/NAME@ALIAS, models:/NAME/VERSION or a path to a .keras file")


@dataclasses.dataclass(frozen=True)
class CostParams:
    gpu_hour_usd: float | None = None
    cpu_core_hour_usd: float | None = None

    def check(self) -> None:
        for name in ("gpu_hour_usd", "cpu_core_hour_usd"):
            value = getattr(self, name)
            require(value is None or value >= 0, f"cost.{name}", "must be 0 or more, or null")


@dataclasses.dataclass(frozen=True)
class TrackingParams:
    experiment: str = "retrainlab-digits"
    registered_model: str = "retrainlab-digits"
    system_metrics: bool = True

    def check(self) -> None:
        require(bool(self.experiment.strip()), "tracking.experiment", "must not be empty")
        require(bool(self.registered_model.strip()), "tracking.registered_model", "must not be empty")


@dataclasses.dataclass(frozen=True)
class CompareParams:
    new_traffic_share: float = 0.5
    tolerance: float = 0.01
    # Accuracy on the old data an option may lose if all traffic were old; the ceiling on
    # forgetting is this over the old traffic's share (none at share 1.0).
    max_forgetting: float = 0.025
    cost_metric: Literal["auto", "cost_usd", "gpu_seconds", "cpu_seconds", "wall_seconds"] = "auto"
    max_seeds: int = 6  # seeds the options in contention may get while the evidence does not decide
    budget_seconds: float = 300.0  # training time those extra seeds may take (0: none)
    # `retrainlab check`: what one point of target (0.01 of accuracy; a regressor: 1% of its
    # error) is worth until the next check, in the cost metric's units; None: any loss beyond
    # the tolerance is worth a comparison.
    point_value: float | None = None
    # `retrainlab check`: the options it trains once on the labelled new rows, to forecast what
    # each would gain before the comparison ([]: none; those strategies leaves out are skipped).
    forecast: list[str] = dataclasses.field(default_factory=lambda: ["full-retrain", "incremental"])
    # What "better" means (retrainlab.measure.task declares each measure; prepare resolves the
    # rest against the data, retrainlab.measure.choice): the measure every decision reads,
    # a binary classifier's positive class (None: the rarer label of the old training rows)
    # and the probability of it at which every option predicts it, the pinball loss's
    # quantile, and for `cost` the cost of each (true, predicted) pair of a classifier or of
    # a unit of a regressor's absolute error, in `cost_unit`, with the traffic a week
    # (`rows_per_week`) that turns a cost per row into a cost per week.
    metric: str = "auto"
    positive_class: str | int | None = None
    threshold: float = 0.5
    quantile: float = 0.5
    costs: dict[str, dict[str, float]] | float | None = None
    cost_unit: str = "$"
    rows_per_week: float | None = None

    def check(self) -> None:
        known = ("auto", *MEASURE_NAMES)
        require(self.metric in known, "compare.metric", f"is {self.metric!r}; choose one of: {', '.join(known)}")
        require(0 < self.threshold < 1, "compare.threshold", "must be a probability between 0 and 1 (exclusive)")
        require(0 < self.quantile < 1, "compare.quantile", "must be between 0 and 1 (exclusive)")
        require(self.metric != "cost" or self.costs is not None, "compare.costs",
                "is null, but compare.metric is cost: give each (true, predicted) pair of labels a cost, or a "
                "regressor's cost per unit of error")
        require(self.costs is None or self.metric == "cost", "compare.costs",
                f"is set, but compare.metric is {self.metric!r}: costs are read when compare.metric is cost")
        if isinstance(self.costs, dict):
            require(bool(self.costs), "compare.costs", "must name at least one (true, predicted) pair")
            require(all(c >= 0 for row in self.costs.values() for c in row.values()), "compare.costs",
                    "must hold costs of 0 or more")
            require(any(c > 0 for row in self.costs.values() for c in row.values()), "compare.costs",
                    "must hold at least one cost above 0")
        elif self.costs is not None:
            require(0 < self.costs <= 1e12, "compare.costs", "must be a cost per unit of error above 0")
        require(0 < len(self.cost_unit.strip()) <= 20 and self.cost_unit.isprintable(), "compare.cost_unit",
                "must be a short printable unit, 1 to 20 characters (e.g. $, EUR, hours)")
        require(self.rows_per_week is None or 0 < self.rows_per_week <= 1e15, "compare.rows_per_week",
                "must be a number of rows above 0, or null")
        require(0 <= self.new_traffic_share <= 1, "compare.new_traffic_share", "must be in [0, 1]")
        require(0 <= self.tolerance < 1, "compare.tolerance", "must be in [0, 1)")
        require(0 <= self.max_forgetting <= 1, "compare.max_forgetting", "must be in [0, 1]")
        require(1 <= self.max_seeds <= MAX_SEEDS, "compare.max_seeds", f"must be between 1 and {MAX_SEEDS}")
        require(0 <= self.budget_seconds <= 7 * 24 * 3600, "compare.budget_seconds", "must be between 0 and a week")
        require(self.point_value is None or 0 <= self.point_value <= 1e12, "compare.point_value",
                "must be a number from 0 to 1e12 (in the cost metric's units), or null")


@dataclasses.dataclass(frozen=True)
class DistributeParams:
    mode: Literal["none", "mirrored", "multi_worker"] = "none"

    def check(self) -> None:
        pass


@dataclasses.dataclass(frozen=True)
class EngineParams:
    """Where the fits run: this machine (`local`: one after another, or `seeds_parallel` at a
    time), or a Ray cluster (`ray`: every fit of the comparison a task at once,
    retrainlab.pipeline.cluster_fits). Speed only: the figures are the same."""

    kind: Literal["local", "ray"] = "local"
    address: str = ""  # ray: its head's HOST:PORT (`ray start --head`'s), ray://HOST:PORT, or auto
    cpus_per_fit: float = 1.0  # what each fit's task asks the cluster for, and its TensorFlow threads
    gpus_per_fit: float = 0.0
    retries: int = 1  # times a fit whose worker died (out of memory, a node lost) is tried again

    def check(self) -> None:
        require(self.kind != "ray" or bool(self.address.strip()), "engine.address",
                "is empty, but engine.kind is ray: give the cluster's address (its head's HOST:PORT, "
                "ray://HOST:PORT, or auto for one started on this machine)")
        require(self.address == self.address.strip() and self.address.isprintable() and len(self.address) <= 500,
                "engine.address", "must be one printable address (HOST:PORT, ray://HOST:PORT or auto)")
        require(0 < self.cpus_per_fit <= 1024, "engine.cpus_per_fit", "must be a number of CPUs above 0, up to 1024")
        require(0 <= self.gpus_per_fit <= 64, "engine.gpus_per_fit", "must be a number of GPUs from 0 to 64")
        require(0 <= self.retries <= 10, "engine.retries", "must be a whole number from 0 to 10")


@dataclasses.dataclass(frozen=True)
class Params:
    seeds: list[int] = dataclasses.field(default_factory=lambda: [0, 1, 2])
    # Seeds trained at once, each in a worker process of its own (1: one after another in the
    # step's process). Speed only: the figures are the same (docs/BENCHMARKS.md measures it).
    seeds_parallel: int = 1
    checkpoint_seconds: float = 10.0
    # Training rows held in memory when they fit this many MiB (null: a quarter of the
    # machine's memory; 0: always streamed from the files). Speed only: the same batches.
    memory_budget_mb: float | None = None
    round: int = 1  # which round of "new data arrived" this is (retrainlab next-round counts them)
    data: DataParams = dataclasses.field(default_factory=DataParams)
    baseline: BaselineParams = dataclasses.field(default_factory=BaselineParams)
    model: ModelParams = dataclasses.field(default_factory=ModelParams)
    # The options run after the baseline, each with its settings: {name: Settings}, in
    # params.yaml a mapping (`replay: {old_fraction: 0.5}`; `replay: {}` takes the defaults).
    # Typed by the strategy catalogue where the params are assembled (retrainlab.pipeline.params).
    strategies: dict[str, Any] = dataclasses.field(default_factory=dict)
    cost: CostParams = dataclasses.field(default_factory=CostParams)
    tracking: TrackingParams = dataclasses.field(default_factory=TrackingParams)
    compare: CompareParams = dataclasses.field(default_factory=CompareParams)
    distribute: DistributeParams = dataclasses.field(default_factory=DistributeParams)
    engine: EngineParams = dataclasses.field(default_factory=EngineParams)

    def check(self) -> None:
        require(1 <= len(self.seeds) <= MAX_SEEDS, "seeds", f"needs between 1 and {MAX_SEEDS} seeds")
        require(all(0 <= s <= MAX_SEED for s in self.seeds), "seeds", f"must be whole numbers from 0 to {MAX_SEED}")
        require(len(set(self.seeds)) == len(self.seeds), "seeds", "must not repeat a seed")
        require(self.checkpoint_seconds >= 0, "checkpoint_seconds", "must be 0 or more")
        require(self.memory_budget_mb is None or 0 <= self.memory_budget_mb <= 2**40, "memory_budget_mb",
                "must be a number of MiB from 0 (always stream) to 2**40, or null (a quarter of the machine's memory)")
        require(1 <= self.seeds_parallel <= MAX_SEEDS, "seeds_parallel", f"must be between 1 and {MAX_SEEDS}")
        require(self.round >= 1, "round", "must be 1 or more")
        require(len(self.strategies) >= 1, "strategies", "needs at least one option to compare with the baseline")
        for name, settings in self.strategies.items():
            settings.check(f"strategies.{name}")
        require(self.engine.kind == "local" or self.distribute.mode == "none", "engine.kind",
                f"is ray, which runs each fit as one task, but distribute.mode is {self.distribute.mode}: "
                "set distribute.mode: none, or engine.kind: local")
        for field in dataclasses.fields(self):
            section = getattr(self, field.name)
            if dataclasses.is_dataclass(section):
                section.check()

    def with_seed(self, seed: int | None) -> Params:
        """These params trained on one seed only (the CLI's and MLproject's `seed`)."""
        return self if seed is None else dataclasses.replace(self, seeds=[seed])


def as_flat_dict(params: Params) -> dict[str, Any]:
    """`{"model.dropout": 0.1, ...}`: the form MLflow logs params in."""
    flat: dict[str, Any] = {}

    def walk(value: Any, prefix: str) -> None:
        if dataclasses.is_dataclass(value):
            for field in dataclasses.fields(value):
                walk(getattr(value, field.name), f"{prefix}{key_of(field)}.")
        elif isinstance(value, dict):
            for key, inner in value.items():
                walk(inner, f"{prefix}{key}.")
        else:
            flat[prefix[:-1]] = value

    walk(params, "")
    return flat


# Built here, split by the scenario; the others are the user's.
BUILTIN_SOURCES = ("digits", "synthetic", "text", "friedman", "recommender")


def applicable(params: Params) -> dict[str, Any]:
    """`as_flat_dict` less the data parameters that the chosen source and scenario do not
    read, so that a run's params say what made its data: a `files` run logs no scenario."""
    data = params.data
    builtin = data.source in BUILTIN_SOURCES
    reads = {
        "scenario": builtin,
        "incremental_fraction": builtin,
        "affected_classes": builtin and data.source != "friedman" and data.scenario in ("new_classes", "concept_drift"),
        "shift_strength": builtin and (data.scenario == "covariate_shift"
                                       or (data.source == "friedman" and data.scenario == "concept_drift")),
        "unseen_share": data.source == "recommender" and data.scenario == "new_categories",
        "missing": not builtin,  # the built-in sources have no missing values
        "synthetic": data.source in ("synthetic", "friedman", "recommender"),
        "files": data.source == "files",
        "arrays": data.source == "arrays",
    }
    return {
        key: value for key, value in as_flat_dict(params).items()
        if (not key.startswith("data.") or reads.get(key.split(".")[1], True))
        and key not in UNREAD_SYNTHETIC.get(data.source, ())
    }


# Of data.synthetic, what the sources that read only part of it leave: friedman's classes
# (it predicts a number), the recommender's columns and classes (its own: a click or not).
UNREAD_SYNTHETIC = {"friedman": ("data.synthetic.classes",),
                    "recommender": ("data.synthetic.features", "data.synthetic.classes")}


def require(ok: bool, key: str, message: str) -> None:
    if not ok:
        raise ConfigError(f"parameter '{key}' {message}")


def _check_training(section: str, learning_rate: float, epochs: int) -> None:
    require(learning_rate > 0, f"{section}.learning_rate", "must be positive")
    require(1 <= epochs <= MAX_EPOCHS, f"{section}.epochs", f"must be between 1 and {MAX_EPOCHS}")


