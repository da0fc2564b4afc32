"""Where a new categorical value's row starts when an option grows a lookup: a copy of the
unknown value's row (retrainlab.models.vocabulary's NEW_VALUE_ROW "unknown", the default) or
small and random ("random", as a new token's). Each update that grows is trained on the same
extra seeds both ways, in-process with the pipeline's own per-seed core (as the compare step's
extra seeds are), and its target (0.5 x acc_old + 0.5 x acc_new) printed per seed.

Run it in a project whose data is prepared, for example the recommender's new items:

    dvc exp run -n new-items -S data.source=recommender -S data.scenario=new_categories
    python benchmarks/new_value_rows.py --seeds 10 11 12 13 14

Its runs go to a scratch MLflow store, not the project's.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import mlflow
import numpy as np

from retrainlab.base import console

GROWN = ("incremental", "replay", "distill", "shrink-perturb")
STARTS = ("unknown", "random")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--seeds", type=int, nargs="+", default=[10, 11, 12, 13, 14])
    parser.add_argument("--out", type=Path, default=None, help="write the targets as JSON here too")
    args = parser.parse_args(argv)
    console.load_tensorflow()
    # start-up: TensorFlow first, then the modules that load it
    from retrainlab.models import vocabulary
    from retrainlab.pipeline.params import load_params
    from retrainlab.pipeline.strategy_step import train_extra_seed

    params = load_params(args.params)
    names = [n for n in GROWN if n in params.strategies]
    targets: dict[str, dict[str, list[float]]] = {}
    began = time.time()
    with tempfile.TemporaryDirectory() as scratch:
        mlflow.set_tracking_uri(f"sqlite:///{Path(scratch) / 'mlflow.db'}")
        for start in STARTS:
            vocabulary.NEW_VALUE_ROW = start
            with mlflow.start_run():
                for seed in args.seeds:
                    for name, f in train_extra_seed(names, seed, params, Path(".")).items():
                        targets.setdefault(start, {}).setdefault(name, []).append(0.5 * f["acc_old"] + 0.5 * f["acc_new"])
    print("| option | " + " | ".join(f"start: {s}" for s in STARTS) + " | unknown - random, per seed |")
    print("| --- | " + " | ".join("---" for _ in STARTS) + " | --- |")
    for name in ["baseline", *names]:
        means = [f"{np.mean(targets[s][name]):.4f}" for s in STARTS]
        diff = np.array(targets["unknown"][name]) - np.array(targets["random"][name])
        print(f"| {name} | " + " | ".join(means) + f" | {', '.join(f'{d:+.3f}' for d in diff)} |")
    print(f"{time.time() - began:.0f} s, seeds {args.seeds}")
    if args.out:
        args.out.write_text(json.dumps(targets, indent=2) + "\n")
    return targets


if __name__ == "__main__":
    main()
