"""Where each step reads and writes, relative to the project root.

`dvc.yaml` spells the same paths for DVC; tests/test_project_files.py keeps the two in step.
"""

from pathlib import Path

# The pipeline's steps: CLI subcommands, MLproject entry points and DVC stages share these names.
PREPARE = "prepare"
STRATEGY_NAMES = ("baseline", "full-retrain", "incremental", "fine-tune")

PREPARED_DIR = Path("data/prepared")
SPLITS = ("initial_train", "initial_test", "incremental_train", "incremental_test")
SUMMARY = PREPARED_DIR / "summary.json"


def split_path(split: str) -> Path:
    return PREPARED_DIR / f"{split}.parquet"


def model_dir(strategy: str) -> Path:
    return Path("models") / strategy


def metrics_path(strategy: str) -> Path:
    return Path("metrics") / f"{strategy}.json"


def curves_path(strategy: str) -> Path:
    return Path("plots") / f"{strategy}.csv"
