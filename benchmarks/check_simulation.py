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
        for labelling, a in r["check"].items():
            a.setdefault("verdict_unwidened", a["verdict"])
            forecasts = [check.Forecast(f["option"], check.widened(check.Estimate(**f["gain"]), spread.get(f["option"])),
                                        f["kept"], f["how"], f["cost"]) for f in a["forecasts"]]
            current = check.Estimate(a["new"]["value"], a["new"]["low"], a["new"]["high"]) if "value" in a["new"] else None
            verdict = check.decide(m, a["old_test"]["value"], current, policy, Diagnosis.from_json(a["diagnostics"]),
                                   a["unseen_class_share"], None, None, forecasts, a["underfit"],
                                   measured=labelling == "labelled")
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
    """|forecast - the truth's mean gain| per option: points of accuracy for a classifier,
    percent of the model's target RMSE for a regressor. Beside the probe (the check's
    forecast), two forecasts that train nothing, measured on the same rounds: the model's
    loss on the traffic taken as the gain an update would win back (what the check read
    before; classifiers only), and no gain at all."""
    out = {}
    for task in ("classification", "regression"):
        for name in ("full-retrain", "incremental"):
            errors: dict[str, list[float]] = {"probe": [], "loss as gain": [], "no gain": []}
            for r in rounds:
                found = next((f["gain"] for f in r["check"]["labelled"]["forecasts"] if f["option"] == name), None)
                if r["task"] != task or found is None:
                    continue
                scale = 100 if task == "classification" else 100 / r["baseline_target"]
                truth = r["gains"][name]["mean"]
                # a classifier's loss is in points of accuracy, as its gains are; a regressor's in relative
                # error, which no gain in RMSE is: not compared
                loss = (r["check"]["labelled"]["loss_on_traffic"] or {}).get("value") if task == "classification" else None
                errors["probe"].append(abs(found["value"] - truth) * scale)
                if loss is not None:
                    errors["loss as gain"].append(abs(loss - truth) * scale)
                errors["no gain"].append(abs(truth) * scale)
            for how, values in errors.items():
                if values:
                    out[f"{task}/{name}/{how}"] = {"rounds": len(values), "mean_absolute_error": sum(values) / len(values),
                                                   "largest": max(values)}
    return out


RULES = {
    "gain above the tolerance, interval above zero": lambda g, tol: g["value"] > tol and g["low"] > 0,
    "gain above the tolerance (the point alone)": lambda g, tol: g["value"] > tol,
    "gain above the tolerance, one-sided 80% bound above zero (the check's)": lambda g, tol: g["value"] > tol and (
        g["value"] - 0.8416 * (g["high"] - g["low"]) / (2 * 1.96) > 0),
    "gain above the tolerance, interval's low end above minus the tolerance":
        lambda g, tol: g["value"] > tol and g["low"] > -tol,
}


def rule_variants(rounds: list[dict]) -> dict:
    """Misses and false alarms of other rules on the same labelled forecasts (widened as the
    check widens them), urgent and new classes aside: what the check's rule was chosen from."""
    from retrainlab.measure.task import measure_of

    out = {}
    for rule, alarm in RULES.items():
        for kind in KINDS:
            rows = [r for r in rounds if r["kind"] == kind and r["check"]["labelled"]["forecasts"]]
            wins = [r for r in rows if r["truth"] == "win"]
            quiet = [r for r in rows if r["truth"] == "no win"]

            def says(r) -> bool:
                a = r["check"]["labelled"]
                if a["verdict"] == "urgent":
                    return True
                tol = r["tolerance"] / r["baseline_target"] * a["forecasts"][0]["kept"] \
                    if not measure_of(r["task"]).higher_is_better else r["tolerance"]
                return any(alarm(g, tol) for g in a["widened"].values())
            out[f"{rule}/{kind}"] = {"wins": len(wins), "no_wins": len(quiet), "misses": sum(not says(r) for r in wins),
                                     "false_alarms": sum(says(r) for r in quiet)}
    # Without labels, a classifier's estimated loss (ATC): its point, or its interval too.
    for rule, alarm in LOSS_RULES.items():
        for kind in KINDS:
            rows = [r for r in rounds if r["kind"] == kind and r["task"] == "classification"]
            wins = [r for r in rows if r["truth"] == "win"]
            quiet = [r for r in rows if r["truth"] == "no win"]

            def said(r) -> bool:
                a = r["check"]["unlabelled"]
                return bool(a["underfit"]) or (a["loss_on_traffic"] is not None and alarm(a["loss_on_traffic"],
                                                                                           r["tolerance"]))
            out[f"without labels: {rule}/{kind}"] = {"wins": len(wins), "no_wins": len(quiet),
                                                     "misses": sum(not said(r) for r in wins),
                                                     "false_alarms": sum(said(r) for r in quiet)}
    return out


LOSS_RULES = {
    "estimated loss above the tolerance, interval above zero (the check's), or underfitted":
        lambda loss, tol: loss["value"] > tol and loss["low"] > 0,
    "estimated loss above the tolerance (the point alone), or underfitted": lambda loss, tol: loss["value"] > tol,
    "estimated loss above the tolerance, one-sided 80% bound above zero, or underfitted":
        lambda loss, tol: loss["value"] > tol and loss["value"] - 0.8416 * (loss["high"] - loss["low"]) / (2 * 1.96) > 0,
}


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
    parser.add_argument("--resume", type=Path, metavar="JSONL",
                        help="keep the rounds an interrupted run finished (its .partial.jsonl) and train the rest")
    parser.add_argument("--markdown", action="store_true", help="with --reanalyse: print docs/CHECK.md's tables")
    parser.add_argument("--reanalyse", type=Path, metavar="JSONL",
                        help="decide and summarise the rounds of an earlier run (its .partial.jsonl) again, without training")
    args = parser.parse_args()
    params = load_params(args.params)
    if args.reanalyse:  # the rounds of an earlier run: its .partial.jsonl, or its result (rewritten in place)
        text = args.reanalyse.read_text()
        earlier = json.loads(text) if args.reanalyse.suffix == ".json" else None
        rounds = earlier["rounds"] if earlier else [json.loads(line) for line in text.splitlines() if line.strip()]
        for r in rounds:  # decided anew from the verdicts the check gave, not from an earlier analysis's
            for a in r["check"].values():
                a["verdict"] = a.get("verdict_unwidened", a["verdict"])
        decided(rounds, params.compare)
        analysis = analyses(rounds)
        if earlier:
            args.reanalyse.write_text(json.dumps(earlier | analysis, indent=1, default=str) + "\n")
        print(markdown(analysis) if args.markdown else json.dumps(analysis, indent=1))
        return
    specs = [spec for seed in args.sim_seeds for source in args.sources for spec in rounds_of(source, seed)]
    rounds: list[dict] = []
    if args.resume:
        rounds = [json.loads(line) for line in args.resume.read_text().splitlines() if line.strip()]
        done = {(r["source"], r["sim_seed"], r["data_seed"]) for r in rounds}
        specs = [s for s in specs if (s["source"], s["sim_seed"], s["data_seed"]) not in done]
        print(f"resumed: {len(rounds)} rounds from {args.resume}, {len(specs)} to train", flush=True)
    started = time.perf_counter()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    partial = args.out.with_suffix(".partial.jsonl")  # each round as it ends, for a look before the last
    partial.write_text("".join(json.dumps(r, default=str) + "\n" for r in rounds))
    # Every round is submitted at once, so the workers are never replaced: a pool that replaces
    # its workers after a number of tasks, with a backlog queued, stops scheduling on Python
    # 3.11 to 3.13 (CPython gh-115634), and this run hung after its 8th round when it did.
    with workers.pool(args.workers) as pool:
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
    analysis = analyses(rounds)
    result = {"compare": dataclasses.asdict(params.compare), "options": list(OPTIONS), "sim_seeds": args.sim_seeds,
              "truth_seeds": args.truth_seeds, "sources": args.sources,
              "seconds": time.perf_counter() - started, **analysis, "rounds": rounds}
    args.out.write_text(json.dumps(result, indent=1, default=str) + "\n")
    partial.unlink()
    print(json.dumps(analysis, indent=1))


def markdown(result: dict) -> str:
    """docs/CHECK.md's tables, from a run's analyses."""
    def share(n: int, of: int) -> str:
        return f"{n} of {of} ({n / of:.0%})" if of else "-"

    lines = ["| change | task | labels | rounds | an update wins | no update wins | unclear | misses | "
             "false alarms | today's misses | today's false alarms |", "| --- " * 11 + "|"]
    totals: dict[str, list[int]] = {}
    for key, new in result["summary"].items():
        kind, task, labelling, rule = key.split("/")
        if rule != "verdict":
            continue
        today = result["summary"][f"{kind}/{task}/{labelling}/today"]
        lines.append(f"| {kind.replace('_', ' ')} | {task} | {'with' if labelling == 'labelled' else 'without'} | "
                     f"{new['rounds']} | {new['wins']} | {new['no_wins']} | {new['unclear']} | "
                     f"{share(new['misses'], new['wins'])} | {share(new['false_alarms'], new['no_wins'])} | "
                     f"{share(today['misses'], today['wins'])} | {share(today['false_alarms'], today['no_wins'])} |")
        t = totals.setdefault(labelling, [0] * 6)
        for i, v in enumerate((new["wins"], new["no_wins"], new["misses"], new["false_alarms"], today["misses"],
                               today["false_alarms"])):
            t[i] += v
    for labelling, t in totals.items():
        lines.append(f"| **all** | | {'with' if labelling == 'labelled' else 'without'} | | {t[0]} | {t[1]} | | "
                     f"**{share(t[2], t[0])}** | **{share(t[3], t[1])}** | {share(t[4], t[0])} | {share(t[5], t[1])} |")
    lines += ["", "| task | option | forecast | rounds | mean absolute error | largest |", "| --- " * 6 + "|"]
    for key, e in result["forecast_error"].items():
        task, name, how = key.split("/")
        unit = "points" if task == "classification" else "% of the model's RMSE"
        lines.append(f"| {task} | {name} | {how} | {e['rounds']} | {e['mean_absolute_error']:.2f} {unit} | "
                     f"{e['largest']:.2f} |")
    lines += ["", "| rule | change | misses | false alarms |", "| --- " * 4 + "|"]
    for key, v in result["rule_variants"].items():
        rule, kind = key.rsplit("/", 1)
        if v["wins"] or v["no_wins"]:
            lines.append(f"| {rule} | {kind.replace('_', ' ')} | {share(v['misses'], v['wins'])} | "
                         f"{share(v['false_alarms'], v['no_wins'])} |")
    if result["dle_error"]:
        lines += ["", "| change | rounds | DLE's error, mean | largest | how far the true RMSE moved, mean |",
                  "| --- " * 5 + "|"]
        for kind, d in result["dle_error"].items():
            lines.append(f"| {kind.replace('_', ' ')} | {d['rounds']} | {d['mean_relative_error']:.0%} | "
                         f"{d['largest']:.0%} | {d['mean_actual_change']:.0%} |")
    lines += ["", "| source | rounds | the check's CPU-seconds | the truth's trainings' | share |", "| --- " * 5 + "|"]
    for source, c in result["check_cost"].items():
        lines.append(f"| {source} | {c['rounds']} | {c['check_cpu_seconds']:.0f} | {c['truth_cpu_seconds']:.0f} | "
                     f"{c['share']:.0%} |")
    return "\n".join(lines)


def analyses(rounds: list[dict]) -> dict:
    return {"summary": summary(rounds), "forecast_error": forecast_error(rounds), "rule_variants": rule_variants(rounds),
            "dle_error": dle_error(rounds), "check_cost": check_cost(rounds)}


def check_cost(rounds: list[dict]) -> dict:
    """The labelled check's CPU-seconds (its forecast's trainings included) against the
    truth's trainings (3 options x the truth's seeds, and the model's own), per source."""
    out = {}
    for source in sorted({r["source"] for r in rounds}):
        rows = [r for r in rounds if r["source"] == source]
        check = sum(r["check"]["labelled"]["cpu_seconds"] for r in rows)
        trained = sum(r["comparison_cpu_seconds"] for r in rows)
        out[source] = {"rounds": len(rows), "check_cpu_seconds": check, "truth_cpu_seconds": trained,
                       "share": check / trained}
    return out


if __name__ == "__main__":
    main()
