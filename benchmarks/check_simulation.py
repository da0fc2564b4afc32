"""Does `retrainlab check` say "compare" when, and only when, a comparison would pay?

    .venv/bin/python benchmarks/check_simulation.py [--sim-seeds 0 1 2] [--truth-seeds 4]
        [--sources synthetic friedman text] [--workers 2] [--out benchmarks/results/check_simulation.json]

Simulated rounds from the built-in sources (synthetic: a classifier on numbers; friedman: a
regressor; text: tweets then reviews), for each simulation seed:
- quiet rounds: new rows from the old distribution, the model trained as params.yaml says;
- covariate shift of growing strength; new classes (classifiers); concept drift;
- "more of the same" with an underfitted model (the seed article's first case): the model
  was trained for 10 epochs, without stopping early, and 20%, 50% or 100% more rows of the
  same distribution arrive.
Every round draws its own rows (data.seed).

For each round, in a worker process (as `retrainlab map` does):
- the current model: the baseline, trained once (seed 0) on the old rows as params.yaml
  says (stopping early), and its held-out curve; in the underfitted rounds for 10 epochs;
- the truth, as the next round's comparison would find it (its baseline is the current
  model, adopted as it is): full-retrain, incremental and fine-tune trained with
  `--truth-seeds` seeds each, the updates from the current model, as the pipeline trains
  them. An option's gain is its target minus the model's, with a Student t interval over
  the seeds. An update **wins** when the best option's mean gain is above the tolerance and
  its interval's low end above zero; **no update wins** when the best mean gain is at most
  the tolerance; otherwise the round is **unclear** (the seeds cannot tell), and counts for
  neither misses nor false alarms.
- the check, through the very code `retrainlab check` runs (retrainlab.pipeline.check:
  `forecast_for`, `underfit_of`, `assess`), on the round's new rows (both incremental
  splits) with their labels and without; its forecast trains on a seed the truth does not
  use (1000), so a forecast is not one of the truth's own trainings. Each option's spread
  over the seeds, which `retrainlab check` reads from the last comparison's records, is
  taken from the previous round of the same source and simulation seed (the first round of
  each has none);
- today's rule (the check before issue 35) from the same figures: the point loss (a
  regressor's in RMSE) against the tolerance, no forecast.

A false alarm is `compare` or `urgent` where no update wins; a miss is `no action` where one
does. The forecast's error is |forecast gain - the truth's mean gain| per option, in points
of accuracy, or for a regressor as a share of the model's target RMSE.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
OPTIONS = ("full-retrain", "incremental", "fine-tune")
PROBE_SEED = 1000
UNDERFIT_EPOCHS = 10
KINDS = ("quiet", "covariate_shift", "new_classes", "concept_drift", "more_of_the_same")
SHIFTS = {"synthetic": (0.5, 1.0, 2.0), "friedman": (0.5, 1.0, 2.0), "text": (0.25, 0.5, 1.0)}


def rounds_of(source: str, sim_seed: int) -> list[dict]:
    """The round specifications of one source and simulation seed."""
    quiet = {"scenario": "same_distribution"}
    specs = [("quiet", quiet, None)] * 3
    specs += [("covariate_shift", {"scenario": "covariate_shift", "shift_strength": s}, None) for s in SHIFTS[source]]
    if source != "friedman":
        affected = 1
        specs += [("new_classes", {"scenario": "new_classes", "affected_classes": affected}, None)] * 2
    drift = {"scenario": "concept_drift", "affected_classes": 2 if source == "text" else 1}
    specs += [("concept_drift", drift, None)] * 2
    specs += [("more_of_the_same", {"scenario": "same_distribution", "incremental_fraction": f}, "underfit")
              for f in (0.2, 0.5, 1.0)]
    return [{"source": source, "sim_seed": sim_seed, "kind": kind, "change": change, "champion": champion,
             "data_seed": 1000 * (sim_seed + 1) + 10 * ["synthetic", "friedman", "text"].index(source) + i}
            for i, (kind, change, champion) in enumerate(specs)]


def round_cell(spec: dict, params, truth_seeds: int) -> dict:
    """One round: the truth over the seeds, and the check's answers, labelled and not."""
    import contextlib
    import io
    import tempfile

    import keras
    import numpy as np
    from scipy import stats

    from retrainlab.config import TRAIN
    from retrainlab.data import load_prepared, prepare
    from retrainlab.measure.task import measure_of
    from retrainlab.pipeline import check as checking
    from retrainlab.strategies import BASELINE
    from retrainlab.training.seed import make_plan, train_seed

    keras.backend.clear_session()
    data_params = dataclasses.replace(params.data, source=spec["source"], seed=spec["data_seed"], **spec["change"])
    cell = dataclasses.replace(params, data=data_params, baseline=dataclasses.replace(params.baseline, from_=TRAIN),
                               strategies={name: params.strategies[name] for name in OPTIONS})
    # The underfitted model: trained for UNDERFIT_EPOCHS epochs, none of them set aside, whatever params.yaml says.
    base_params = cell if spec["champion"] != "underfit" else dataclasses.replace(
        cell, model=dataclasses.replace(cell.model, epochs=UNDERFIT_EPOCHS, patience=None))

    def trained(name, data, run_params, base, seed, reference):
        history = keras.callbacks.History()
        plan = make_plan(name, data, run_params, base, seed)
        with contextlib.redirect_stdout(io.StringIO()):
            outcome = train_seed(plan, data, run_params, seed, reference, callbacks=[history],
                                 held_out=name == BASELINE)
        return outcome, history.history

    with tempfile.TemporaryDirectory(prefix="retrainlab-check-sim-") as scratch:
        root = Path(scratch)
        with contextlib.redirect_stdout(io.StringIO()):
            prepare(cell.data, root)
        data = load_prepared(root)
        m = measure_of(data.summary.task)
        share = params.compare.new_traffic_share
        champion, history = trained(BASELINE, data, base_params, None, 0, None)
        curve = history.get(f"held_out_{m.old}")
        kept = m.target(champion.figures, share)
        tolerance = params.compare.tolerance * m.scale(kept)
        truth = {name: [] for name in OPTIONS}
        cpu = champion.figures["cpu_seconds"]
        for seed in range(truth_seeds):
            for name in OPTIONS:
                outcome, _ = trained(name, data, cell, champion.bundle, seed, champion.figures[m.old])
                truth[name].append(m.target(outcome.figures, share))
                cpu += outcome.figures["cpu_seconds"]
        gains = {}
        for name in OPTIONS:
            paired = [m.improvement(t, kept) for t in truth[name]]
            mean, sd = float(np.mean(paired)), float(np.std(paired, ddof=1))
            half = float(stats.t.ppf(0.975, len(paired) - 1)) * sd / math.sqrt(len(paired))
            gains[name] = {"mean": mean, "low": mean - half, "high": mean + half, "sd": sd, "targets": truth[name]}
        best = max(OPTIONS, key=lambda name: gains[name]["mean"])
        g = gains[best]
        outcome = "win" if g["mean"] > tolerance and g["low"] > 0 else "no win" if g["mean"] <= tolerance else "unclear"

        check_params = dataclasses.replace(cell, seeds=[PROBE_SEED])
        answers = {}
        for labelled in (True, False):
            new = checking.read_new_rows(check_params, data, root, None, labelled)
            started = time.process_time()
            found, said = (checking.forecast_for(champion.bundle, data, new, check_params, root, {}) if labelled
                           else ([], ""))
            underfit = checking.underfit_of(curve, data, check_params)
            result = checking.assess(champion.bundle, data, new, check_params, None, found=found,
                                     forecast_said=said, underfit=underfit)
            answers["labelled" if labelled else "unlabelled"] = {
                "verdict": result["verdict"], "today": today_rule(result, params.compare, m),
                "new": result["new"], "old_test": result["old_test"], "rmse": result["rmse"],
                "loss_on_traffic": result["loss_on_traffic"], "underfit": underfit,
                "unseen_class_share": result["unseen_class_share"], "diagnostics": result["diagnostics"],
                "forecasts": result["forecast"]["options"],
                "forecast_cpu_seconds": sum(f["cost"]["cpu_seconds"] for f in result["forecast"]["options"]),
                "cpu_seconds": time.process_time() - started}
            if m.task == "regression" and not labelled:
                answers["unlabelled"]["dle"] = direct_loss_estimate(champion.bundle, data, new, root, check_params)
    return {**spec, "task": m.task, "baseline_target": kept, "tolerance": tolerance, "gains": gains, "best": best,
            "truth": outcome, "comparison_cpu_seconds": cpu, "check": answers, "curve": curve}


def direct_loss_estimate(bundle, data, unlabelled, root, params) -> dict:
    """A candidate label-free estimate of a regressor's error, measured here and not used by
    the check: direct loss estimation (NannyML's DLE). A gradient-boosted model learns each
    old test row's squared error from its inputs and the model's prediction; its mean over
    the new rows, square-rooted, estimates their RMSE. Beside it, the RMSE the new rows'
    labels give (read here only to score the estimate) and the old test set's."""
    import numpy as np
    from sklearn.ensemble import HistGradientBoostingRegressor

    from retrainlab.pipeline import check as checking

    old = data.frame("initial_test")
    numeric = [f.name for f in data.features if f.kind == "numeric"]

    def inputs(features):
        return np.column_stack([features[numeric].to_numpy(float), bundle.predict(features[data.feature_names])])

    old_x = inputs(old)
    old_error = (bundle.predict(old[data.feature_names]) - old[data.label].to_numpy(float)) ** 2
    learner = HistGradientBoostingRegressor(max_iter=200, random_state=0).fit(old_x, old_error)
    estimated = float(np.sqrt(max(float(np.mean(learner.predict(inputs(unlabelled.features)))), 0.0)))
    labelled = checking.read_new_rows(params, data, root, None, True)
    actual = float(np.sqrt(np.mean((bundle.predict(labelled.features) - labelled.labels.to_numpy(float)) ** 2)))
    return {"estimated_rmse": estimated, "actual_rmse": actual, "old_rmse": float(np.sqrt(np.mean(old_error))),
            "relative_error_of_estimate": abs(estimated - actual) / actual}


def today_rule(result: dict, policy, m) -> str:
    """The verdict the check gave before issue 35, from the same figures: the point loss on
    the traffic (a regressor's in RMSE, in the label's units) against the tolerance, 5
    tolerances at the interval's low end for urgent, classes the model cannot predict urgent,
    and a regressor without labels read from its inputs' drift."""
    from retrainlab.decision.change import AUC_MOVED, PSI_LARGE

    if result["unseen_class_share"] > policy.tolerance:
        return "urgent"
    if result["rmse"] and "new" in result["rmse"]:  # a regressor, labelled: its RMSE across the two sets
        old, new = result["rmse"]["old_test"], result["rmse"]["new"]
        tolerance = policy.tolerance * old["value"]
        drop = [policy.new_traffic_share * (new[k] - old["value"]) for k in ("value", "low")]
    elif result["new"].get("value") is None:  # a regressor without labels
        d = result["diagnostics"]
        return "compare" if d["domain_auc"] >= AUC_MOVED or d["psi_max"] >= PSI_LARGE else "no action"
    else:
        old, new = result["old_test"]["value"], result["new"]
        tolerance = policy.tolerance * m.scale(old)
        sign = 1 if m.higher_is_better else -1
        drop = [policy.new_traffic_share * sign * (old - new[k]) for k in ("value", "high" if sign > 0 else "low")]
    if drop[1] > 5 * tolerance:
        return "urgent"
    return "compare" if drop[0] > tolerance else "no action"


def decided(rounds: list[dict], policy) -> None:
    """Each round's verdicts through `check.decide`, as `retrainlab check` reaches them, each
    forecast's interval widened by its option's spread over the seeds of the previous round
    of the same source and simulation seed (the last comparison's records, for the check);
    the verdict without that spread is kept as `verdict_unwidened`."""
    from retrainlab.decision import check
    from retrainlab.decision.diagnosis import Diagnosis
    from retrainlab.measure.task import measure_of

    previous: dict[tuple, dict[str, float]] = {}
    for r in sorted(rounds, key=lambda r: (r["source"], r["sim_seed"], r["data_seed"])):
        key = (r["source"], r["sim_seed"])
        spread = previous.get(key, {})
        m = measure_of(r["task"])
        for a in r["check"].values():
            a.setdefault("verdict_unwidened", a["verdict"])
            forecasts = [check.Forecast(f["option"], check.widened(check.Estimate(**f["gain"]), spread.get(f["option"])),
                                        f["kept"], f["how"], f["cost"]) for f in a["forecasts"]]
            current = check.Estimate(a["new"]["value"], a["new"]["low"], a["new"]["high"]) if "value" in a["new"] else None
            verdict = check.decide(m, a["old_test"]["value"], current, policy, Diagnosis.from_json(a["diagnostics"]),
                                   a["unseen_class_share"], None, None, forecasts, a["underfit"])
            a["verdict"] = verdict.verdict
            a["widened"] = {f.option: f.gain.to_json() for f in forecasts}
        previous[key] = {name: g["sd"] for name, g in r["gains"].items()}


def summary(rounds: list[dict]) -> dict:
    """Misses and false alarms per kind of change and labelling, for the new rule and today's."""
    out = {}
    for kind in KINDS:
        for task in ("classification", "regression"):
            rows = [r for r in rounds if r["kind"] == kind and r["task"] == task]
            if not rows:
                continue
            wins = [r for r in rows if r["truth"] == "win"]
            quiet = [r for r in rows if r["truth"] == "no win"]
            for labelling in ("labelled", "unlabelled"):
                for rule in ("verdict", "today"):
                    def alarm(r):
                        return r["check"][labelling][rule] != "no action"
                    out[f"{kind}/{task}/{labelling}/{rule}"] = {
                        "rounds": len(rows), "wins": len(wins), "no_wins": len(quiet),
                        "unclear": len(rows) - len(wins) - len(quiet),
                        "misses": sum(not alarm(r) for r in wins), "false_alarms": sum(alarm(r) for r in quiet)}
    return out


def forecast_error(rounds: list[dict]) -> dict:
    """|forecast gain - the truth's mean gain| per option: points of accuracy for a
    classifier, a share of the baseline's target RMSE for a regressor."""
    out = {}
    for task in ("classification", "regression"):
        for name in ("full-retrain", "incremental"):
            errors = []
            for r in rounds:
                found = next((f["gain"] for f in r["check"]["labelled"]["forecasts"] if f["option"] == name), None)
                if r["task"] != task or found is None:
                    continue
                scale = 100 if task == "classification" else 1 / r["baseline_target"]
                errors.append(abs(found["value"] - r["gains"][name]["mean"]) * scale)
            if errors:
                out[f"{task}/{name}"] = {"rounds": len(errors), "mean_absolute_error": sum(errors) / len(errors),
                                         "largest": max(errors)}
    return out


def dle_error(rounds: list[dict]) -> dict:
    """The label-free RMSE estimate's error (|estimated - actual| / actual) per kind of change,
    beside how far the actual RMSE moved from the old test set's."""
    out = {}
    for kind in KINDS:
        found = [r["check"]["unlabelled"]["dle"] for r in rounds if r["kind"] == kind and "dle" in r["check"]["unlabelled"]]
        if found:
            out[kind] = {"rounds": len(found),
                         "mean_relative_error": sum(d["relative_error_of_estimate"] for d in found) / len(found),
                         "largest": max(d["relative_error_of_estimate"] for d in found),
                         "mean_actual_change": sum(abs(d["actual_rmse"] / d["old_rmse"] - 1) for d in found) / len(found)}
    return out


def main() -> None:
    sys.path.insert(0, str(PROJECT / "src"))
    from retrainlab.pipeline.params import load_params
    from retrainlab.training import workers

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sim-seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--truth-seeds", type=int, default=4)
    parser.add_argument("--sources", nargs="+", default=["synthetic", "friedman", "text"])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--params", type=Path, default=PROJECT / "params.yaml")
    parser.add_argument("--out", type=Path, default=PROJECT / "benchmarks" / "results" / "check_simulation.json")
    parser.add_argument("--reanalyse", type=Path, metavar="JSONL",
                        help="decide and summarise the rounds of an earlier run (its .partial.jsonl) again, without training")
    args = parser.parse_args()
    params = load_params(args.params)
    if args.reanalyse:
        rounds = [json.loads(line) for line in args.reanalyse.read_text().splitlines() if line.strip()]
        decided(rounds, params.compare)
        print(json.dumps({"summary": summary(rounds), "forecast_error": forecast_error(rounds), "dle_error": dle_error(rounds)},
                         indent=1))
        return
    specs = [spec for seed in args.sim_seeds for source in args.sources for spec in rounds_of(source, seed)]
    rounds: list[dict] = []
    started = time.perf_counter()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    partial = args.out.with_suffix(".partial.jsonl")  # each round as it ends, for a look before the last
    partial.write_text("")
    with workers.pool(args.workers, 4) as pool:
        futures = [pool.submit(round_cell, spec, params, args.truth_seeds) for spec in specs]
        for i, future in enumerate(futures, 1):
            row = future.result()
            rounds.append(row)
            with partial.open("a") as out:
                out.write(json.dumps(row, default=str) + "\n")
            a = row["check"]
            print(f"[{i}/{len(specs)}] {row['source']} seed {row['sim_seed']} {row['kind']}: {row['truth']} "
                  f"(best {row['best']} {row['gains'][row['best']]['mean']:+.3f}, tolerance {row['tolerance']:.3f}); "
                  f"check {a['labelled']['verdict']} / {a['unlabelled']['verdict']}, today "
                  f"{a['labelled']['today']} / {a['unlabelled']['today']} ({time.perf_counter() - started:.0f} s)",
                  flush=True)
    decided(rounds, params.compare)
    result = {"compare": dataclasses.asdict(params.compare), "options": list(OPTIONS), "sim_seeds": args.sim_seeds,
              "truth_seeds": args.truth_seeds, "sources": args.sources,
              "seconds": time.perf_counter() - started, "summary": summary(rounds),
              "forecast_error": forecast_error(rounds), "dle_error": dle_error(rounds), "rounds": rounds}
    args.out.write_text(json.dumps(result, indent=1, default=str) + "\n")
    partial.unlink()
    print(json.dumps({k: result[k] for k in ("summary", "forecast_error", "dle_error")}, indent=1))


if __name__ == "__main__":
    main()
