"""What retrainlab adds on top of plain Keras, measured as ratios in one run.

    .venv/bin/python benchmarks/overhead.py [--rows 100000] [--epochs 5] [--repeats 3]

1. Training, per strategy: the same model, data, epochs and batch size trained by a bare
   `model.fit` on arrays in memory, by a bare `model.fit` on retrainlab's Parquet stream,
   and by retrainlab's training path (stream, cost meter, per-epoch MLflow logging,
   checkpoints, inside an MLflow run), alternated, median of the repeats. Ratios of wall
   times and samples per second.
2. Tracking: the time spent in the curve logger (every epoch and its final write), as a share of training time.
3. Fixed cost of a stage: `retrainlab run incremental` (wall) minus its training time,
   against the floor of starting Python, importing TensorFlow and MLflow and opening the
   tracking store.
4. A no-op `dvc repro`.

Everything runs on this machine, against a temporary project and SQLite store.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

PROJECT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, help="write the figures as JSON here")
    args = parser.parse_args()
    out = args.out.resolve() if args.out else None  # the measurement changes directory

    workdir = Path(tempfile.mkdtemp(prefix="retrainlab-bench-"))
    try:
        root = make_project(workdir, args.rows, args.epochs)
        figures = {"rows": args.rows, "epochs": args.epochs, "repeats": args.repeats}
        figures |= training_overhead(root, args.repeats)
        figures |= stage_overhead(root)
        print(json.dumps(figures, indent=2))
        if out:
            out.write_text(json.dumps(figures, indent=2) + "\n")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def make_project(workdir: Path, rows: int, epochs: int) -> Path:
    """A copy of the project on the synthetic source, run once through the whole pipeline."""
    import yaml

    root = workdir / "project"
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                           cwd=PROJECT, capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, files):
        if (PROJECT / name).is_file() and not name.startswith("tests/"):
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(PROJECT / name, root / name)
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["seeds"] = [0]
    params["data"].update(source="synthetic", scenario="covariate_shift", incremental_fraction=0.3)
    # full-retrain trains on both train splits: 1 - test_fraction of all rows
    params["data"]["synthetic"].update(rows=int(rows / (1 - params["data"]["test_fraction"])) + 1, features=16, classes=4)
    params["model"].update(epochs=epochs, batch_size=256)
    params["strategies"] = {name: params["strategies"][name] for name in ("full-retrain", "incremental", "fine-tune")}
    for settings in params["strategies"].values():
        if "epochs" in settings:
            settings["epochs"] = epochs
    params["tracking"].update(system_metrics=False, experiment="bench", registered_model="bench")
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    for command in (["git", "init", "-q"], ["git", "add", "-A"],
                    ["git", "-c", "user.name=bench", "-c", "user.email=bench@invalid", "commit", "-qm", "bench"]):
        subprocess.run(command, cwd=root, check=True)
    print(f"preparing and running the pipeline once on {rows} training rows ...", file=sys.stderr)
    run(root, "dvc", "repro")
    return root


def run(root: Path, *command: str) -> float:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    start = time.perf_counter()
    result = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True)
    if result.returncode:
        raise SystemExit(f"{command} failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    return time.perf_counter() - start


def training_overhead(root: Path, repeats: int) -> dict:
    """Each strategy's training three ways, same plan, alternated, median of the repeats:
    a bare `model.fit` on the training rows read into memory (the plain Keras script), a
    bare `model.fit` on retrainlab's Parquet stream, and retrainlab's training path (the
    stream, cost meter thread, per-epoch MLflow logging and checkpoint callback, inside an
    MLflow run)."""
    import mlflow
    import numpy as np
    import pandas as pd

    from retrainlab.base import layout
    from retrainlab.data import load_prepared
    from retrainlab.models.bundle import ModelBundle
    from retrainlab.models.outputs import compile_model
    from retrainlab.pipeline.params import load_params
    from retrainlab.pipeline.strategy_step import EpochLogger
    from retrainlab.strategies import BASELINE, plan_for
    from retrainlab.tracking import store
    from retrainlab.training.checkpoint import EpochCheckpoint
    from retrainlab.training.cost import CostMeter
    from retrainlab.training.loop import fit, seed_everything, training_dataset

    os.chdir(root)
    params = load_params(root / "params.yaml")
    data = load_prepared(root)
    experiment_id = store.configure("bench-training", root)
    logging_seconds = []

    class TimedLogger(EpochLogger):
        """The logger, timing every call that may write to the store."""

        def on_epoch_end(self, epoch, logs=None):
            start = time.perf_counter()
            super().on_epoch_end(epoch, logs)
            logging_seconds.append(time.perf_counter() - start)

        def on_train_end(self, logs=None):
            start = time.perf_counter()
            super().on_train_end(logs)
            logging_seconds.append(time.perf_counter() - start)

    results = {}
    for strategy in (BASELINE, *params.strategies):
        def plan():
            seed_everything(0)
            base = None if strategy == "baseline" else ModelBundle.load(root / layout.model_dir("baseline") / "seed-0")
            return plan_for(strategy, data, params, base, 0)

        splits = plan().splits
        x = pd.concat([data.x(s) for s in splits], ignore_index=True)
        y = np.concatenate([data.y(s) for s in splits])

        def bare_memory() -> float:
            p = plan()
            inputs, targets = p.bundle.inputs(x), p.bundle.encode(y)
            compile_model(p.bundle.model, p.learning_rate)
            start = time.perf_counter()
            p.bundle.model.fit(inputs, targets, epochs=p.epochs, batch_size=p.batch_size, shuffle=True, verbose=0)
            return time.perf_counter() - start

        def bare_stream() -> float:
            p = plan()
            compile_model(p.bundle.model, p.learning_rate)
            batches = training_dataset(p.bundle, [data.path(s) for s in splits], p.batch_size, 0)
            start = time.perf_counter()
            p.bundle.model.fit(batches, epochs=p.epochs, shuffle=False, verbose=0)
            return time.perf_counter() - start

        def ours() -> float:
            p = plan()
            with mlflow.start_run(experiment_id=experiment_id):
                checkpoint = EpochCheckpoint(root / ".retrainlab" / "bench", None, params.checkpoint_seconds)
                start = time.perf_counter()
                with CostMeter():
                    fit(p, data, callbacks=[TimedLogger(), checkpoint], seed=0)
                return time.perf_counter() - start

        times = {"bare_memory": [], "bare_stream": [], "retrainlab": []}
        shares = []
        bare_memory()  # warm-up: first graph tracing
        for _ in range(repeats):
            times["bare_memory"].append(bare_memory())
            times["bare_stream"].append(bare_stream())
            logging_seconds.clear()
            times["retrainlab"].append(ours())
            shares.append(sum(logging_seconds) / times["retrainlab"][-1])
        medians = {k: statistics.median(v) for k, v in times.items()}
        samples = len(y) * plan().epochs
        results[strategy] = {
            "training_rows": len(y),
            **{f"{k}_seconds": v for k, v in medians.items()},
            **{f"{k}_samples_per_second": samples / v for k, v in medians.items()},
            "ratio_to_bare_memory": medians["retrainlab"] / medians["bare_memory"],
            "ratio_to_bare_stream": medians["retrainlab"] / medians["bare_stream"],
            "tracking_share_of_training": statistics.median(shares),
        }
        print(f"{strategy}: {json.dumps(results[strategy])}", file=sys.stderr, flush=True)
    return {"training": results}


def stage_overhead(root: Path) -> dict[str, float]:
    """A stage's wall time minus its training, against the start-up floor; a no-op dvc repro."""
    floor_code = (
        "import tensorflow, mlflow; from mlflow.tracking import MlflowClient; "
        f"MlflowClient('sqlite:///{root / 'mlflow.db'}').search_experiments()"
    )
    floors = [run(root, sys.executable, "-c", floor_code) for _ in range(3)]
    stage = run(root, "retrainlab", "run", "incremental")
    record = json.loads((root / "records" / "incremental.json").read_text())
    training = sum(seed["wall_seconds"] for seed in record["per_seed"].values())
    direct = run(root, "retrainlab", "incremental")
    record = json.loads((root / "records" / "incremental.json").read_text())
    direct_training = sum(seed["wall_seconds"] for seed in record["per_seed"].values())
    run(root, "dvc", "repro")  # put the lock back in step with the outputs
    noop = [run(root, "dvc", "repro") for _ in range(3)]
    floor = statistics.median(floors)
    return {
        "startup_floor_seconds": floor,
        "stage_via_mlflow_run_seconds": stage,
        "stage_training_seconds": training,
        "stage_fixed_seconds": stage - training,
        "stage_fixed_minus_floor_seconds": stage - training - floor,
        "stage_direct_seconds": direct,
        "stage_direct_fixed_minus_floor_seconds": direct - direct_training - floor,
        "noop_dvc_repro_seconds": statistics.median(noop),
    }


if __name__ == "__main__":
    main()
