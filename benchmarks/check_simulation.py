"""Does `retrainlab check` say "compare" when, and only when, a comparison would pay?

    .venv/bin/python benchmarks/check_simulation.py [--seeds 0 1] [--out benchmarks/results/check_simulation.json]

Simulated rounds from the built-in synthetic source, for each kind of change (covariate
shift, new classes, concept drift) and each simulation seed: 8 rounds, the first 3 with
nothing changed (new rows from the old distribution), the last 5 with the change (a
covariate shift growing from 0.25 to 2 standard deviations; a class only the new rows have;
a class relabelled). Every round draws its own rows (data.seed), so the quiet rounds are
independent draws, not one draw repeated.

For each round, in a worker process (as `retrainlab map` does):
- the current model: the baseline, trained on the round's old rows (the project's MLP);
- what a comparison would say: full-retrain, incremental and fine-tune trained on the
  round's new rows (one seed each), and their target (params.yaml's new_traffic_share)
  against the model's. An update "wins" when its target beats the model's by more than
  `compare.tolerance`;
- the check's verdict through the very code `retrainlab check` runs (retrainlab.pipeline.
  check.assess), on the round's new rows with labels and without (ATC);
- the true accuracy of the model on those rows, against ATC's estimate.

Reported per kind and labelling: false alarms (the check says compare or urgent in a round
where no update wins), misses (it says no action where an update wins), and the
label-free estimate's mean absolute error.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
OPTIONS = ("full-retrain", "incremental", "fine-tune")
QUIET_ROUNDS, CHANGED_ROUNDS = 3, 5
KINDS = {
    "covariate_shift": [{"scenario": "covariate_shift", "shift_strength": s} for s in (0.25, 0.5, 1.0, 1.5, 2.0)],
    "new_classes": [{"scenario": "new_classes", "affected_classes": 1}] * CHANGED_ROUNDS,
    "concept_drift": [{"scenario": "concept_drift", "affected_classes": 1}] * CHANGED_ROUNDS,
}
QUIET = {"scenario": "same_distribution"}


def round_cell(change: dict, data_seed: int, params) -> dict:
    """One round: the comparison's answer and the check's, labelled and not."""
    import contextlib
    import io
    import tempfile

    import keras

    from retrainlab.config import TRAIN
    from retrainlab.data import load_prepared, prepare
    from retrainlab.measure.task import measure_of
    from retrainlab.pipeline.check import assess, read_new_rows
    from retrainlab.pipeline.decision_map import _train
    from retrainlab.strategies import BASELINE

    keras.backend.clear_session()
    data_params = dataclasses.replace(params.data, source="synthetic", seed=data_seed, **change)
    cell = dataclasses.replace(params, data=data_params, baseline=dataclasses.replace(params.baseline, from_=TRAIN),
                               strategies={name: params.strategies[name] for name in OPTIONS})
    with tempfile.TemporaryDirectory(prefix="retrainlab-check-sim-") as scratch:
        root = Path(scratch)
        with contextlib.redirect_stdout(io.StringIO()):
            prepare(cell.data, root)
        data = load_prepared(root)
        m = measure_of(data.summary.task)
        share = params.compare.new_traffic_share
        base, figures = _train(BASELINE, data, cell, None, 0, None)
        kept = m.target(figures, share)
        targets = {name: m.target(_train(name, data, cell, base, 0, figures[m.old])[1], share) for name in OPTIONS}
        best = max(targets, key=lambda name: m.goodness(targets[name]))
        gain = m.improvement(targets[best], kept)
        answers = {}
        for labelled in (True, False):
            new = read_new_rows(cell, data, root, None, labelled)
            started = time.perf_counter()
            result = assess(base, data, new, cell, None)
            answers["labelled" if labelled else "unlabelled"] = {
                "verdict": result["verdict"], "new": result["new"], "old_test": result["old_test"],
                "loss_on_traffic": result["loss_on_traffic"], "seconds": time.perf_counter() - started}
    return {"change": change, "data_seed": data_seed, "baseline_target": kept, "targets": targets, "best": best,
            "gain": gain, "update_wins": gain > params.compare.tolerance, "check": answers,
            "true_acc_new": answers["labelled"]["new"]["value"]}


def summary(rounds: list[dict]) -> dict:
    out = {}
    for kind in KINDS:
        rows = [r for r in rounds if r["kind"] == kind]
        for labelling in ("labelled", "unlabelled"):
            alarms = [r for r in rows if r["check"][labelling]["verdict"] != "no action"]
            quiet = [r for r in rows if not r["update_wins"]]
            wins = [r for r in rows if r["update_wins"]]
            false_alarms = [r for r in quiet if r in alarms]
            misses = [r for r in wins if r not in alarms]
            out[f"{kind}/{labelling}"] = {
                "rounds": len(rows), "update_wins": len(wins),
                "false_alarms": len(false_alarms),
                "false_alarm_rate": len(false_alarms) / len(quiet) if quiet else None,
                "misses": len(misses), "miss_rate": len(misses) / len(wins) if wins else None,
            }
        changed = [r for r in rows if r["round"] > QUIET_ROUNDS]
        errors = [abs(r["check"]["unlabelled"]["new"]["value"] - r["true_acc_new"]) for r in changed]
        quiet_errors = [abs(r["check"]["unlabelled"]["new"]["value"] - r["true_acc_new"])
                        for r in rows if r["round"] <= QUIET_ROUNDS]
        out[f"{kind}/atc_mae_changed_rounds"] = sum(errors) / len(errors) if errors else None
        out[f"{kind}/atc_mae_quiet_rounds"] = sum(quiet_errors) / len(quiet_errors) if quiet_errors else None
    return out


def main() -> None:
    sys.path.insert(0, str(PROJECT / "src"))
    from retrainlab.pipeline.params import load_params
    from retrainlab.training import workers

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--params", type=Path, default=PROJECT / "params.yaml")
    parser.add_argument("--out", type=Path, default=PROJECT / "benchmarks" / "results" / "check_simulation.json")
    args = parser.parse_args()
    params = load_params(args.params)
    jobs = []  # (seed, round, change): the quiet rounds are shared by the three kinds
    for seed in args.seeds:
        for number in range(1, QUIET_ROUNDS + 1):
            jobs.append((seed, number, None, QUIET))
        for kind, changes in KINDS.items():
            for number, change in enumerate(changes, QUIET_ROUNDS + 1):
                jobs.append((seed, number, kind, change))
    measured: list[dict] = []
    started = time.perf_counter()
    with workers.pool(1, 8) as pool:
        for i, (seed, number, kind, change) in enumerate(jobs, 1):
            row = pool.submit(round_cell, change, 1000 * (seed + 1) + number, params).result()
            measured.append({"seed": seed, "round": number, "kind": kind, **row})
            print(f"[{i}/{len(jobs)}] seed {seed} round {number} {kind or 'quiet'}: gain {row['gain']:+.3f}, "
                  f"check {row['check']['labelled']['verdict']} / {row['check']['unlabelled']['verdict']} "
                  f"(ATC {row['check']['unlabelled']['new']['value']:.3f} against {row['true_acc_new']:.3f}; "
                  f"{time.perf_counter() - started:.0f} s)", flush=True)
    rounds = []
    for kind in KINDS:  # each kind's sequence: the seed's quiet rounds, then its own
        rounds += [{**r, "kind": kind} for r in measured if r["kind"] in (None, kind)]
    check_seconds = [r["check"][k]["seconds"] for r in measured for k in ("labelled", "unlabelled")]
    result = {"compare": dataclasses.asdict(params.compare), "options": list(OPTIONS), "seeds": args.seeds,
              "summary": summary(rounds),
              "check_seconds_max": max(check_seconds), "rounds": rounds}
    args.out.write_text(json.dumps(result, indent=1, default=str) + "\n")
    print(json.dumps(result["summary"], indent=1))


if __name__ == "__main__":
    main()
