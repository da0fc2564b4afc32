"""Where each step reads and writes, relative to the project root.

`dvc.yaml` spells the same paths for DVC; tests/pipeline/test_project_files.py keeps the two in step.
"""

from pathlib import Path

# The pipeline's steps: CLI subcommands, MLproject entry points and DVC stages share these
# names; the strategies' names are in their declarations (retrainlab.strategies.CATALOGUE).
PREPARE = "prepare"
COMPARE = "compare"
UPDATE_STAGE = "update"  # dvc.yaml's stage for the options params.yaml chooses: update@NAME

# What the prepared data is made from (retrainlab.data.inputs), written at every repro.
RESOLVE_DATA = "resolve-data"
DATA_INPUTS = Path("data/inputs.json")

PREPARED_DIR = Path("data/prepared")
SPLITS = ("initial_train", "initial_test", "incremental_train", "incremental_test")
SUMMARY = PREPARED_DIR / "summary.json"


# The project files `retrainlab init` writes at the root of a user's repository.
PROJECT_FILES = ("MLproject", "dvc.yaml", "params.yaml",
                 # dvc.yaml's plots colour the strategies through these templates of DVC's plots.
                 ".dvc/plots/by_strategy.json", ".dvc/plots/labelled_scatter.json")

# Work in progress, never versioned: training checkpoints (a finished run removes its own),
# models staged before they are published, and the registry lock.
WORK_DIR = Path(".retrainlab")
CHECKPOINTS_DIR = WORK_DIR / "checkpoints"
STAGING_DIR = WORK_DIR / "staging"
REGISTRY_LOCK = WORK_DIR / "registry.lock"
# The page `dvc plots show` fills, with vega, vega-lite and vega-embed inline so that it draws
# offline: this machine's own, like the setting in .dvc/config.local that points DVC at it.
PLOTS_PAGE = WORK_DIR / "plots-page.html"


def split_path(split: str) -> Path:
    return PREPARED_DIR / f"{split}.parquet"


# Where the baseline comes from, as the resolve-baseline stage found it (retrainlab.measure.record.Origin).
RESOLVE = "resolve-baseline"
BASELINE_ORIGIN = Path("models") / "baseline-origin.json"


def model_dir(strategy: str) -> Path:
    return Path("models") / strategy


def record_path(strategy: str) -> Path:
    """Everything a strategy step measured (retrainlab.measure.record.StrategyRecord): read by compare,
    the registry and the CLI; not a DVC metric, as it holds some sixty figures and run ids."""
    return Path("records") / f"{strategy}.json"


# The few numbers `dvc metrics show` and `dvc exp show` list: one file per strategy, a row
# each, written by compare (it alone knows the target and the verdict).
METRICS_DIR = Path("metrics")


def metrics_path(strategy: str) -> Path:
    return METRICS_DIR / f"{strategy}.json"


# The decision in one row for `dvc metrics show` and `dvc exp show`: the recommended option and
# its target, in the strategies' columns. At the root, so that its columns' names in `dvc exp
# show` (decision.json:verdict, decision.json:acc_target) fit a 120-column terminal.
DECISION = Path("decision.json")


def curves_path(strategy: str) -> Path:
    return Path("plots") / f"{strategy}.csv"


def predictions_path(strategy: str) -> Path:
    """The registered seed's true and predicted label of each test row (DVC's confusion plot)."""
    return Path("plots") / f"{strategy}-predictions.csv"


REPORTS_DIR = Path("reports")
REPORT_MD = REPORTS_DIR / "comparison.md"
# The same report as one page, its plots inline: what MLflow shows of the pipeline's parent run.
REPORT_HTML = REPORTS_DIR / "comparison.html"
REPORT_JSON = REPORTS_DIR / "comparison.json"
REPORT_CSV = REPORTS_DIR / "comparison.csv"
REPORT_SCATTER = REPORTS_DIR / "accuracy_vs_cost.csv"
REPORT_PNG_COST = REPORTS_DIR / "accuracy_vs_cost.png"
REPORT_PNG_CURVES = REPORTS_DIR / "learning_curves.png"
REPORT_PNG_CONFUSION = REPORTS_DIR / "confusion.png"
REPORT_PNG_DIAGNOSTICS = REPORTS_DIR / "diagnostics.png"
# A regressor's plots where a classifier's confusion matrices go (each task writes a note in the others' place).
REPORT_PNG_PREDICTED = REPORTS_DIR / "predicted_vs_true.png"
REPORT_PNG_RESIDUALS = REPORTS_DIR / "residuals.png"
REPORT_SEEDS = REPORTS_DIR / "seeds.json"  # the seeds compare added while the options were not separated
# Every strategy's per-epoch curves in one table (a `strategy` column): DVC's plots colour them by it.
REPORT_CURVES = REPORTS_DIR / "curves.csv"
REPORT_FILES = (REPORT_MD, REPORT_HTML, REPORT_JSON, REPORT_CSV, REPORT_SCATTER, REPORT_CURVES, REPORT_PNG_COST,
                REPORT_PNG_CURVES, REPORT_PNG_CONFUSION, REPORT_PNG_PREDICTED, REPORT_PNG_RESIDUALS,
                REPORT_PNG_DIAGNOSTICS, REPORT_SEEDS)
