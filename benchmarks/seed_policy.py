"""Two starting seeds against three, on the decision map's grid.

    .venv/bin/python benchmarks/seed_policy.py [--sources synthetic digits] [--sizes 0.05 0.2 1.0]
                                               [--out benchmarks/results/seed_policy.json]

The pipeline trains every option on params.yaml's `seeds`, then the compare step's adaptive
loop (`comparison.adapt_seeds`) adds seeds for the options still in contention, up to
`compare.max_seeds` or `compare.budget_seconds`. This script asks, cell by cell of the
decision map's grid, whether starting from 2 seeds instead of 3 gives the same
recommendation, and at what time to answer.

Both policies run on the same trainings: a (strategy, seed) is trained once, through the
per-seed core the map and the pipeline share (`training.seed`), the first time either
policy asks for it, and its figures are given to both. The adaptive loop is the compare
step's own, with params.yaml's `compare` section; its clock is the training time the
policy would have spent (the `wall_seconds` of the trainings it asked for, in the order it
asked), so that `budget_seconds` acts as in the pipeline. A policy's time to answer is that
training time: the fixed cost of a stage is the same under both.

Each cell goes to a worker process (as `retrainlab map` does); the results are written
after every cell, so an interrupted run keeps what it measured.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import json
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
POLICIES = {"3 seeds": (0, 1, 2), "2 seeds": (0, 1)}


def measure(cell, params) -> dict:
    """One cell: both policies' recommendations, seeds and training time."""
    import keras

    from retrainlab.config import TRAIN
    from retrainlab.data import load_prepared, prepare
    from retrainlab.decision import comparison
    from retrainlab.measure.record import StrategyRecord
    from retrainlab.measure.task import measure_of
    from retrainlab.pipeline.decision_map import SINGLE_PROCESS, _train
    from retrainlab.strategies import BASELINE

    keras.backend.clear_session()
    cell_params = dataclasses.replace(params, data=cell.data_params(params.data),
                                      baseline=dataclasses.replace(params.baseline, from_=TRAIN))
    options = list(params.strategies)
    trained: dict[tuple[str, str], dict[str, float]] = {}
    bases: dict[str, object] = {}
    with tempfile.TemporaryDirectory(prefix="retrainlab-seeds-") as scratch:
        with contextlib.redirect_stdout(io.StringIO()):
            prepare(cell_params.data, Path(scratch))
        data = load_prepared(Path(scratch))
        m = measure_of(data.summary.task)

        def figures(name: str, seed: str) -> dict[str, float]:
            if (BASELINE, seed) not in trained:
                bases[seed], trained[(BASELINE, seed)] = _train(BASELINE, data, cell_params, None, int(seed), None)
            if (name, seed) not in trained:
                reference = trained[(BASELINE, seed)][m.old]
                trained[(name, seed)] = _train(name, data, cell_params, bases[seed], int(seed), reference)[1]
            return trained[(name, seed)]

        results = {}
        for policy, seeds in POLICIES.items():
            spent = [0.0]

            def train(names: list[str], seed: str) -> dict[str, dict[str, float]]:
                out = {name: figures(name, seed) for name in names}
                spent[0] += sum(f["wall_seconds"] for f in out.values())
                return out

            first = {name: {} for name in (BASELINE, *options)}
            for seed in seeds:
                for name, f in train(list(first), str(seed)).items():
                    first[name][str(seed)] = f
            records = {name: StrategyRecord.of_seeds(name, cell_params.round, per_seed, SINGLE_PROCESS)
                       for name, per_seed in first.items()}
            records, note = comparison.adapt_seeds(records, params.compare, train, clock=lambda: spent[0])
            verdict = comparison.recommend(records, params.compare)
            results[policy] = {
                "recommended": verdict.recommended, "rule": verdict.rule,
                "seeds": {name: len(r.per_seed) for name, r in records.items()},
                "trainings": sum(len(r.per_seed) for r in records.values()),
                "training_seconds": spent[0], "stopped": note["stopped"],
            }
    return {"cell": cell.label, "source": cell.source, "scenario": cell.scenario, "size": cell.size,
            "strength": cell.strength, "policies": results, "distinct_trainings": len(trained),
            "same": len({r["recommended"] for r in results.values()}) == 1}


def summary(rows: list[dict]) -> dict:
    agree = sum(r["same"] for r in rows)
    seconds = {p: sum(r["policies"][p]["training_seconds"] for r in rows) for p in POLICIES}
    trainings = {p: sum(r["policies"][p]["trainings"] for r in rows) for p in POLICIES}
    return {"cells": len(rows), "same_recommendation": agree,
            "training_seconds": seconds, "trainings": trainings,
            "time_ratio_2_over_3": seconds["2 seeds"] / seconds["3 seeds"] if seconds["3 seeds"] else None,
            "differ": [{"cell": r["cell"], **{p: r["policies"][p]["recommended"] for p in POLICIES}}
                       for r in rows if not r["same"]]}


def main() -> None:
    sys.path.insert(0, str(PROJECT / "src"))
    from retrainlab.decision.map_grid import grid_from_flags
    from retrainlab.pipeline.decision_map import unpreparable
    from retrainlab.pipeline.params import load_params
    from retrainlab.training import workers

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sources", nargs="+")
    parser.add_argument("--scenarios", nargs="+")
    parser.add_argument("--sizes", nargs="+")
    parser.add_argument("--strengths", nargs="+")
    parser.add_argument("--params", type=Path, default=PROJECT / "params.yaml")
    parser.add_argument("--out", type=Path, default=PROJECT / "benchmarks" / "results" / "seed_policy.json")
    args = parser.parse_args()
    params = load_params(args.params)
    grid = grid_from_flags(args.sources, args.scenarios, args.sizes, args.strengths)
    skipped = unpreparable(grid, params)
    cells = [cell for cell in grid.cells() if cell not in skipped]
    rows: list[dict] = []
    started = time.perf_counter()
    with workers.pool(1, 4) as pool:
        for i, cell in enumerate(cells, 1):
            row = pool.submit(measure, cell, params).result()
            rows.append(row)
            verdicts = ", ".join(f"{p}: {row['policies'][p]['recommended']}" for p in POLICIES)
            print(f"[{i}/{len(cells)}] {cell.label}: {verdicts} ({time.perf_counter() - started:.0f} s)", flush=True)
            args.out.write_text(json.dumps({"compare": dataclasses.asdict(params.compare), "grid": grid.to_json(),
                                            "skipped": [c.label for c in skipped], "summary": summary(rows),
                                            "rows": rows}, indent=1) + "\n")
    print(json.dumps(summary(rows), indent=1))


if __name__ == "__main__":
    main()
