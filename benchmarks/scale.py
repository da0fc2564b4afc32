"""How prepare and training scale with rows: wall time and peak memory, 1e4 to 1e6 rows
(prepare also at 1e7), each step in a fresh process so its peak RSS is its own.

Training is retrainlab's full-retrain plan, then evaluated the same way, two ways: streamed
from the prepared Parquet files (`memory_budget_mb: 0`) and held in memory (the default
budget). The plain reference, measured in the same run on the same rows, is the bare Keras
way: both training splits read into memory and `model.fit` on the arrays. Usage:

    .venv/bin/python benchmarks/scale.py --rows 10000 100000 1000000 --prepare-only 10000000 \\
        --out benchmarks/results/scale.json --plot docs/scale.png
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]

PREPARE = """
import sys
from retrainlab.pipeline.params import load_params
from retrainlab.data import prepare
prepare(load_params('params.yaml').data)
"""

# argv: mode (streamed | held | in-memory), epochs, batch size
TRAIN = """
import os, sys, time
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
import numpy as np, pandas as pd
from retrainlab.pipeline.params import load_params
from retrainlab.data import load_prepared, stream
from retrainlab.measure import evaluation
from retrainlab.models.outputs import compile_model
from retrainlab.strategies import plan_for
from retrainlab.training.loop import fit, seed_everything
import dataclasses
mode, epochs, batch = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
params = load_params('params.yaml')
params = dataclasses.replace(params, model=dataclasses.replace(params.model, epochs=epochs, batch_size=batch))
data = load_prepared()
seed_everything(0)
plan = plan_for('full-retrain', data, params, None, 0)
start = time.perf_counter()
if mode in ('streamed', 'held'):
    fit(plan, data, seed=0, memory_budget_mb=0 if mode == 'streamed' else None)
    assert plan.feed == ('stream' if mode == 'streamed' else 'memory'), plan.feed
    tests = {k: stream.labelled_chunks(data.path(s), data.features, data.label) for k, s in evaluation.TEST_SETS.items()}
else:
    x = pd.concat([data.x(s) for s in plan.splits], ignore_index=True)
    y = plan.bundle.encode(np.concatenate([data.y(s) for s in plan.splits]))
    compile_model(plan.bundle.model, plan.learning_rate)
    plan.bundle.model.fit(plan.bundle.inputs(x), y, epochs=epochs, batch_size=batch, shuffle=True, verbose=2)
    tests = {k: [(data.x(s), data.y(s))] for k, s in evaluation.TEST_SETS.items()}
train_s = time.perf_counter() - start
metrics = evaluation.evaluate(plan.bundle.predict, plan.bundle.labels, tests)
rows = sum(data.rows(s) for s in plan.splits)
print('RESULT', rows, train_s, time.perf_counter() - start, metrics['acc_all'])
"""

MODES = ("streamed", "held", "in-memory")  # retrainlab from the files; retrainlab held in memory; bare Keras


def measured(code: str, args: list[str], cwd: Path) -> tuple[float, float, str]:
    """Wall seconds, peak RSS (MiB) and stdout of `python -c code args` in its own process."""
    env = os.environ | {"TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1"}
    start = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out:
        child = subprocess.Popen([sys.executable, "-c", code, *args], cwd=cwd, env=env, stdout=out,
                                 stderr=subprocess.STDOUT, text=True)
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - start
        out.seek(0)
        text = out.read()
    if os.waitstatus_to_exitcode(status):
        raise SystemExit(f"step failed:\n{text[-3000:]}")
    return wall, usage.ru_maxrss / 1024, text


def project(root: Path, rows: int, features: int) -> None:
    """A copy of the project's params with the synthetic source at `rows` rows."""
    import yaml

    params = yaml.safe_load((PROJECT / "params.yaml").read_text())
    params["data"].update(source="synthetic", scenario="new_classes", affected_classes=1)
    params["data"]["synthetic"] = {"rows": rows, "features": features, "classes": 4}
    (root / "params.yaml").write_text(yaml.safe_dump(params))


def run(rows_list: list[int], prepare_only: list[int], features: int, epochs: int, batch: int) -> list[dict]:
    results = []
    for rows in sorted(set(rows_list) | set(prepare_only)):
        with tempfile.TemporaryDirectory(prefix="retrainlab-scale-") as tmp:
            root = Path(tmp)
            project(root, rows, features)
            wall, rss, _ = measured(PREPARE, [], root)
            row = {"rows": rows, "prepare_seconds": wall, "prepare_peak_mib": rss,
                   "prepared_mib": sum(f.stat().st_size for f in (root / "data").rglob("*.parquet")) / 2**20}
            print(f"{rows:>10} rows: prepare {wall:7.1f} s, peak {rss:7.0f} MiB", flush=True)
            if rows in rows_list:
                for mode in MODES:
                    wall, rss, text = measured(TRAIN, [mode, str(epochs), str(batch)], root)
                    result = next(line.split()[1:] for line in text.splitlines() if line.startswith("RESULT"))
                    train_rows, train_s, with_eval_s, acc = int(result[0]), *map(float, result[1:])
                    key = mode.replace("-", "_")
                    row |= {"training_rows": train_rows, f"{key}_process_seconds": wall,
                            f"{key}_train_seconds": train_s, f"{key}_train_eval_seconds": with_eval_s,
                            f"{key}_peak_mib": rss, f"{key}_acc_all": acc,
                            f"{key}_samples_per_second": train_rows * epochs / train_s}
                    print(f"{'':>10}       {mode:>9}: train {train_s:7.1f} s, with evaluation {with_eval_s:7.1f} s, "
                          f"peak {rss:7.0f} MiB, acc_all {acc:.3f}", flush=True)
            results.append(row)
    return results


def plot(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    rows = [r["rows"] for r in results]
    left.loglog(rows, [r["prepare_seconds"] for r in results], "o-", label="prepare")
    right.semilogx(rows, [r["prepare_peak_mib"] for r in results], "o-", label="prepare")
    trained = [r for r in results if "streamed_train_seconds" in r]
    for key, label in (("streamed", "training, streamed (retrainlab)"), ("held", "training, held in memory (retrainlab)"),
                       ("in_memory", "training, in memory (reference)")):
        x = [r["rows"] for r in trained]
        left.loglog(x, [r[f"{key}_train_seconds"] for r in trained], "s--" if key == "in_memory" else "s-", label=label)
        right.semilogx(x, [r[f"{key}_peak_mib"] for r in trained], "s--" if key == "in_memory" else "s-", label=label)
    left.set(xlabel="rows in the source", ylabel="seconds", title="Time")
    right.set(xlabel="rows in the source", ylabel="peak RSS (MiB)", title="Peak memory of the process")
    for axis in (left, right):
        axis.grid(True, which="both", alpha=0.3)
        axis.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--prepare-only", type=int, nargs="*", default=[10_000_000])
    parser.add_argument("--features", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--plot", type=Path)
    args = parser.parse_args()
    results = run(args.rows, args.prepare_only, args.features, args.epochs, args.batch_size)
    text = json.dumps({"features": args.features, "epochs": args.epochs, "batch_size": args.batch_size,
                       "results": results}, indent=2)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    if args.plot:
        plot(results, args.plot)


if __name__ == "__main__":
    main()
