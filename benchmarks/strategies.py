"""Every strategy side by side, on the digits demo and two synthetic scenarios.

    .venv/bin/python benchmarks/strategies.py [--seeds 0 1 2] [--out benchmarks/results/strategies.json]

For each dataset the pipeline's own steps run in this process against a temporary project
and SQLite store (prepare, the baseline, every option in the catalogue, compare) with the
project's default params, changed only where the dataset is chosen. Reported per
strategy: acc_old, acc_new, forgetting and target (mean and 95% interval over the seeds),
the recommendation, and the cost (CPU-seconds of training) relative to full-retrain's in
the same run. The Markdown table printed last is docs/STRATEGIES.md's.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
PROJECT = Path(__file__).resolve().parents[1]

DATASETS = {
    "digits / new classes": {"source": "digits", "scenario": "new_classes"},
    "synthetic / covariate shift": {"source": "synthetic", "scenario": "covariate_shift"},
    "synthetic / concept drift": {"source": "synthetic", "scenario": "concept_drift"},
}


def measure(name: str, data_changes: dict, seeds: list[int], workdir: Path) -> dict:
    from retrainlab.pipeline.compare import compare_step
    from retrainlab.pipeline.params import load_params
    from retrainlab.pipeline.prepare import prepare_step
    from retrainlab.pipeline.strategy_step import run_strategy
    from retrainlab.strategies import BASELINE

    params = load_params(PROJECT / "params.yaml")
    params = dataclasses.replace(
        params, seeds=seeds, data=dataclasses.replace(params.data, **data_changes),
        tracking=dataclasses.replace(params.tracking, system_metrics=False, experiment="strategies",
                                     registered_model="strategies"),
    )
    root = workdir / name.replace(" / ", "-").replace(" ", "-")
    (root / ".dvc").mkdir(parents=True)
    os.chdir(root)
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{root / 'mlflow.db'}"
    start = time.perf_counter()
    prepare_step(params, root)
    records = {s: run_strategy(s, params, root) for s in (BASELINE, *params.strategies)}
    summary = compare_step(params, root)
    reference = records["full-retrain"].mean("cpu_seconds")
    rows = {}
    for strategy, record in records.items():
        row = summary["strategies"][strategy]
        rows[strategy] = {
            **{f: [row[f], row[f"{f}_low"], row[f"{f}_high"]] for f in ("target", "acc_old", "acc_new", "forgetting")},
            "cpu_seconds": record.mean("cpu_seconds"),
            "cost_vs_full_retrain": record.mean("cpu_seconds") / reference if reference else None,
            "verdict": row["verdict"],
        }
    return {"dataset": name, "recommended": summary["recommended"], "seconds": time.perf_counter() - start,
            "new_traffic_share": params.compare.new_traffic_share, "strategies": rows}


def markdown(results: list[dict]) -> str:
    def cell(values):
        mean, low, high = values
        return f"{mean:.3f} [{low:.3f}, {high:.3f}]"

    lines = []
    for result in results:
        lines += [f"**{result['dataset']}**: recommended {result['recommended']}", "",
                  "| strategy | target | acc_old | acc_new | forgetting | CPU s | cost vs full-retrain | verdict |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- |"]
        for strategy, row in result["strategies"].items():
            ratio = row["cost_vs_full_retrain"]
            lines.append(
                f"| {strategy} | {cell(row['target'])} | {cell(row['acc_old'])} | {cell(row['acc_new'])} | "
                f"{cell(row['forgetting'])} | {row['cpu_seconds']:.1f} | "
                f"{'' if ratio is None else f'{ratio:.2f}x'} | {row['verdict']} |"
            )
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", type=Path, default=PROJECT / "benchmarks" / "results" / "strategies.json")
    parser.add_argument("--only", choices=list(DATASETS), action="append", help="measure only this dataset")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as scratch:
        for name, changes in DATASETS.items():
            if args.only and name not in args.only:
                continue
            print(f"{name} ...", file=sys.stderr, flush=True)
            results.append(measure(name, changes, args.seeds, Path(scratch)))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(markdown(results))


if __name__ == "__main__":
    main()
