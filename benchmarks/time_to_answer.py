"""Time to answer: the whole pipeline against the same fits in a bare Keras script.

    .venv/bin/python benchmarks/time_to_answer.py [--cases digits csv-300 csv-6000 synthetic-100k]
                                                  [--out benchmarks/results/time_to_answer.json]

For each case, a copy of the project runs the baseline and three options (full-retrain,
incremental, fine-tune) with the seeds and epochs the case gives, and no seeds beyond them
(compare.max_seeds = the seeds). Measured, one after the other on this machine:

- `dvc repro -f`, the whole pipeline (prepare, resolve-baseline, baseline, three update
  stages, compare), wall time from outside;
- `benchmarks/bare_keras.py` on the same prepared splits: the same fits (baseline, full
  retrain, incremental, fine-tune, per seed) and their scoring in one Python process, wall
  time from outside, its imports included;

and their ratio (`--seeds-parallel 1 2` also times the pipeline with two seeds at a time,
each in a worker process: params.yaml's `seeds_parallel`). The pipeline's own training time (the `wall_seconds` each seed logged) is
read from records/, so that what is left, per stage, is the fixed cost the pipeline adds.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

PROJECT = Path(__file__).resolve().parents[1]
OPTIONS = ("full-retrain", "incremental", "fine-tune")

# What each case changes in params.yaml; the CSV cases' files are made by `tables`.
CASES = {
    "digits": {},
    "csv-300": {"data": {"source": "files"}, "rows": (216, 117)},
    "csv-6000": {"data": {"source": "files"}, "rows": (6000, 600)},
    # About 100,000 training rows for full-retrain (the initial and the incremental training
    # splits together); one seed, so that the case fits in about ten minutes on 2 cores, and
    # the default epochs and batch size, as a user would run it.
    "synthetic-100k": {"data": {"source": "synthetic", "scenario": "covariate_shift", "incremental_fraction": 0.3,
                                "synthetic": {"rows": 133_400, "features": 16, "classes": 4}},
                       "seeds": [0]},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", choices=list(CASES), default=list(CASES))
    parser.add_argument("--seeds-parallel", type=int, nargs="+", default=[1, 2],
                        help="the pipeline is timed with each of these seeds_parallel (the first for the ratio)")
    parser.add_argument("--out", type=Path, help="write the figures as JSON here")
    args = parser.parse_args()
    figures = {}
    for case in args.cases:
        with tempfile.TemporaryDirectory(prefix="retrainlab-tta-") as workdir:
            figures[case] = measure(case, Path(workdir), args.seeds_parallel)
        print(json.dumps({case: figures[case]}), flush=True)
    if args.out:
        args.out.write_text(json.dumps(figures, indent=2) + "\n")


def measure(case: str, workdir: Path, parallel: list[int]) -> dict:
    root = make_project(workdir, case)
    run(root, "dvc", "repro", "prepare")  # not timed: the splits both sides read
    walls = {}
    for n in parallel[::-1]:  # the first last: its records are the ones read below
        set_param(root, "seeds_parallel", n)
        started = time.perf_counter()
        run(root, "dvc", "repro", "-f")
        walls[n] = time.perf_counter() - started
    pipeline = walls[parallel[0]]

    params = yaml.safe_load((root / "params.yaml").read_text())
    summary = json.loads((root / "data/prepared/summary.json").read_text())
    settings = {"label": summary["label"], "seeds": params["seeds"], "model": params["model"],
                "strategies": params["strategies"]}
    (workdir / "settings.json").write_text(json.dumps(settings))
    started = time.perf_counter()
    bare = json.loads(run(root, sys.executable, str(PROJECT / "benchmarks" / "bare_keras.py"),
                          str(root / "data/prepared"), str(workdir / "settings.json")).stdout.splitlines()[-1])
    bare_wall = time.perf_counter() - started

    records = {name: json.loads((root / "records" / f"{name}.json").read_text()) for name in ("baseline", *OPTIONS)}
    training = sum(seed["wall_seconds"] for record in records.values() for seed in record["per_seed"].values())
    stages = 4 + len(OPTIONS)  # prepare, resolve-baseline, baseline, the options, compare
    return {
        "rows": {split: summary["rows"][split] for split in ("initial_train", "incremental_train")},
        "seeds": params["seeds"], "pipeline_seconds": round(pipeline, 1),
        "pipeline_seconds_by_seeds_parallel": {n: round(wall, 1) for n, wall in walls.items()}, "bare_seconds": round(bare_wall, 1),
        "bare_inside_seconds": round(bare["seconds"], 1), "ratio": round(pipeline / bare_wall, 2),
        "pipeline_training_seconds": round(training, 1),
        "fixed_seconds_per_stage": round((pipeline - training) / stages, 1),
        "acc_new": {name: round(float(np.mean([s["acc_new"] for s in r["per_seed"].values()])), 3)
                    for name, r in records.items()},
        "bare_acc_new": {name: round(float(np.mean([v["new"] for k, v in bare["scores"].items()
                                                    if k.split("/")[0] == name])), 3) for name in records},
    }


def make_project(workdir: Path, case: str) -> Path:
    """A copy of the project's tracked files, with the case's params and data."""
    root = workdir / "project"
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                           cwd=PROJECT, capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, files):
        if (PROJECT / name).is_file() and not name.startswith(("tests/", "metrics/", "records/", "plots/")) \
                and name != "dvc.lock":
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(PROJECT / name, root / name, follow_symlinks=False)
    spec = CASES[case]
    params = yaml.safe_load((root / "params.yaml").read_text())
    deep_update(params["data"], spec.get("data", {}))
    if "rows" in spec:
        initial, incremental = tables(*spec["rows"])
        initial.to_csv(root / params["data"]["files"]["initial"], index=False)
        incremental.to_csv(root / params["data"]["files"]["incremental"], index=False)
    params["seeds"] = spec.get("seeds", params["seeds"])
    params["strategies"] = {name: params["strategies"][name] for name in OPTIONS}
    if "epochs" in spec:
        params["model"].update(epochs=spec["epochs"])
        for settings in params["strategies"].values():
            if "epochs" in settings:
                settings["epochs"] = spec["epochs"]
    params["model"]["batch_size"] = spec.get("batch_size", params["model"]["batch_size"])
    params["compare"]["max_seeds"] = len(params["seeds"])
    params["tracking"].update(experiment="tta", registered_model="tta")
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    for command in (["git", "init", "-q"], ["git", "add", "-A"],
                    ["git", "-c", "user.name=bench", "-c", "user.email=bench@retrainlab.invalid", "commit", "-qm", "x"]):
        subprocess.run(command, cwd=root, check=True)
    return root


def tables(initial_rows: int, incremental_rows: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Two CSV tables of customers, numeric features only; the new one shifted, with a new class."""
    rng = np.random.default_rng(0)

    def customers(n: int, shift: float) -> pd.DataFrame:
        frame = pd.DataFrame({"spend": rng.gamma(2.0, 30.0, n) + 20 * shift, "tenure": rng.integers(1, 60, n),
                              "tickets": rng.poisson(2 + shift, n), "age": rng.normal(40, 12, n).round()})
        frame["label"] = np.select([frame["spend"] > 90, frame["tickets"] > 3, frame["tenure"] < 6],
                                   ["premium", "at-risk", "new"], "steady")
        return frame

    return customers(initial_rows, 0.0), customers(incremental_rows, 1.0)


def set_param(root: Path, key: str, value) -> None:
    params = yaml.safe_load((root / "params.yaml").read_text())
    params[key] = value
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def deep_update(target: dict, changes: dict) -> None:
    for key, value in changes.items():
        if isinstance(value, dict):
            deep_update(target.setdefault(key, {}), value)
        else:
            target[key] = value


def run(root: Path, *command: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    done = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return done


if __name__ == "__main__":
    main()
