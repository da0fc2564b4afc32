import dataclasses

import pytest

from retrainlab import comparison
from retrainlab.config import CompareParams
from retrainlab.record import StrategyRecord


def record(acc_old, acc_new, forgetting=0.0, cpu=10.0, version=1):
    """A strategy's record, as records/<strategy>.json holds it, from per-seed accuracies."""
    per_seed = {
        str(i): {"acc_old": o, "acc_new": n, "forgetting": forgetting, "cpu_seconds": cpu}
        for i, (o, n) in enumerate(zip(acc_old, acc_new))
    }
    means = {k: sum(s[k] for s in per_seed.values()) / len(per_seed) for k in ("acc_old", "acc_new", "forgetting", "cpu_seconds")}
    means["gpu_seconds"] = 0.0
    raw = {"strategy": "any", "round": 1, "seeds": list(range(len(per_seed))), "device": "cpu", "distribute": {},
           **means, "ci95": {k: {"low": v, "high": v} for k, v in means.items()}, "per_seed": per_seed,
           "mlflow": {"experiment_id": "1", "run_id": "r", "parent_run_id": "p", "seed_run_ids": {},
                      "registered_model": "m", "model_version": version, "model_seed": 0}}
    return StrategyRecord.from_json(raw)


POLICY = CompareParams(new_traffic_share=0.5, tolerance=0.01, max_forgetting=0.025)  # ceiling 0.05 at 0.5


def test_the_cheapest_strategy_as_good_as_the_best_wins():
    records = {
        "baseline": record([0.95] * 3, [0.40] * 3),
        "full-retrain": record([0.95, 0.96, 0.95], [0.93, 0.92, 0.93], cpu=100),
        "incremental": record([0.95, 0.95, 0.96], [0.92, 0.93, 0.92], forgetting=0.01, cpu=20),
        "fine-tune": record([0.90] * 3, [0.85] * 3, forgetting=0.04, cpu=5),
    }
    verdict = comparison.recommend(records, POLICY)
    assert verdict.best == "full-retrain" and verdict.recommended == "incremental"
    assert verdict.assessments["incremental"].standing == comparison.AS_GOOD
    assert verdict.status("fine-tune") == "rejected: less accurate: 0.065 below the best"
    assert verdict.status("full-retrain") == "as good, costs more"
    assert verdict.rule == "the cheapest of the options as good as the best"
    assert "within the tolerance of 0.010 even at the low end" in verdict.reasons[0]
    assert verdict.separated


def test_paired_differences_decide_where_overlapping_intervals_would_not():
    """Seed by seed, incremental is always 0.004 below full-retrain: its own interval is as
    wide as the seeds' spread, but the paired difference is exact, and within tolerance."""
    records = {
        "baseline": record([0.95] * 3, [0.40] * 3),
        "full-retrain": record([0.90, 0.96, 0.99], [0.90, 0.96, 0.99], cpu=100),
        "incremental": record([0.896, 0.956, 0.986], [0.896, 0.956, 0.986], cpu=20),
    }
    verdict = comparison.recommend(records, POLICY)
    gap = verdict.assessments["incremental"].gap
    assert gap.mean == pytest.approx(-0.004) and gap.low == pytest.approx(-0.004) and gap.high == pytest.approx(-0.004)
    unpaired = verdict.assessments["incremental"].target
    assert unpaired.low < verdict.assessments["full-retrain"].target.mean - 0.01  # unpaired would reject it
    assert verdict.recommended == "incremental"


def test_paired_uses_the_seeds_both_have():
    interval = comparison.paired({"0": 0.9, "1": 0.8, "2": 0.7}, {"0": 0.85, "1": 0.75})
    assert interval.mean == pytest.approx(0.05) and interval.low == pytest.approx(0.05)


def test_leave_it_alone_wins_when_it_is_good_enough():
    records = {
        "baseline": record([0.95, 0.951, 0.949], [0.945, 0.946, 0.944]),
        "full-retrain": record([0.95, 0.951, 0.949], [0.946, 0.947, 0.945], cpu=100),
        "incremental": record([0.94] * 3, [0.95] * 3, forgetting=0.01, cpu=20),
    }
    verdict = comparison.recommend(records, POLICY)
    assert verdict.recommended == "baseline"
    assert any("costs nothing" in reason for reason in verdict.reasons)
    assert verdict.assessments["baseline"].adoption_cost == 0
    assert comparison.headline(verdict, records).startswith("Keep the model as it is: no option is shown better")


def test_forgetting_over_the_ceiling_rules_a_strategy_out_with_its_numbers():
    records = {
        "baseline": record([0.95] * 3, [0.40] * 3),
        "full-retrain": record([0.95] * 3, [0.93] * 3, cpu=100),
        "incremental": record([0.88] * 3, [0.99] * 3, forgetting=0.07, cpu=20),
    }
    verdict = comparison.recommend(records, POLICY)
    assert verdict.ceiling == pytest.approx(0.05)
    assert verdict.status("incremental") == "rejected: forgets too much: 0.070 against a ceiling of 0.050"
    assert verdict.recommended == "full-retrain"


def test_the_forgetting_guard_follows_the_traffic_share_and_is_off_at_share_one():
    """The concept-drift case: the old rule is obsolete, so forgetting it costs nothing."""
    records = {
        "baseline": record([0.997] * 3, [0.467] * 3),
        "full-retrain": record([0.60, 0.61, 0.60], [0.51, 0.52, 0.53], forgetting=0.39, cpu=100),
        "incremental": record([0.58, 0.59, 0.59], [0.75, 0.76, 0.76], forgetting=0.41, cpu=20),
    }
    share_one = CompareParams(new_traffic_share=1.0, tolerance=0.01, max_forgetting=0.025)
    verdict = comparison.recommend(records, share_one)
    assert verdict.ceiling == float("inf") and not verdict.fallback
    assert verdict.recommended == "incremental" and verdict.status("full-retrain").startswith("rejected: less accurate")
    assert any("Forgetting ceiling: none (all traffic is new)" in reason for reason in verdict.reasons)
    assert comparison.forgetting_ceiling(CompareParams(new_traffic_share=0.0, max_forgetting=0.02)) == 0.02
    assert comparison.forgetting_ceiling(CompareParams(new_traffic_share=0.75, max_forgetting=0.02)) == pytest.approx(0.08)


def test_not_separated_is_said_once_and_agrees_with_the_statuses():
    records = {
        "baseline": record([0.95] * 3, [0.40] * 3),
        "full-retrain": record([0.93, 0.97, 0.95], [0.90, 0.96, 0.92], cpu=100),
        "incremental": record([0.94, 0.96, 0.94], [0.91, 0.95, 0.91], forgetting=0.01, cpu=20),
    }
    verdict = comparison.recommend(records, POLICY)
    assert verdict.assessments["incremental"].standing == comparison.NOT_SEPARATED
    assert not verdict.separated and verdict.contenders() == ["full-retrain", "incremental"]
    assert verdict.recommended == "full-retrain"
    assert verdict.rule == "the higher mean of options the evidence cannot separate"
    assert verdict.status("incremental") == "not separated from full-retrain: more seeds would tell"
    assert not any(verdict.status(s).startswith("rejected") for s in ("incremental",))
    said = [r for r in verdict.reasons if r.startswith("Not separated")]
    assert len(said) == 1 and "full-retrain is chosen by the higher mean" in said[0]
    assert "incremental cannot be told from it within the noise at 0.2x the cost" in comparison.headline(verdict, records)


def test_a_noisy_cheap_option_is_not_shown_good_enough():
    records = {
        "baseline": record([0.95] * 3, [0.40] * 3),
        "full-retrain": record([0.95, 0.951, 0.949], [0.93, 0.931, 0.929], cpu=100),
        "incremental": record([0.99, 0.70, 0.99], [0.99, 0.70, 0.99], cpu=20),
    }
    verdict = comparison.recommend(records, POLICY)
    assert verdict.assessments["incremental"].standing == comparison.NOT_SEPARATED
    assert verdict.recommended == "full-retrain"


def test_one_seed_says_there_is_no_measure_of_noise():
    records = {"baseline": record([0.9], [0.5]), "full-retrain": record([0.9], [0.9], cpu=5)}
    verdict = comparison.recommend(records, POLICY)
    assert any("Only one seed" in reason for reason in verdict.reasons)


def test_when_every_option_forgets_too_much_the_most_accurate_is_named_and_flagged():
    records = {
        "baseline": record([0.95] * 3, [0.20] * 3, forgetting=0.0),
        "incremental": record([0.80] * 3, [0.99] * 3, forgetting=0.15, cpu=20),
    }
    records["baseline"] = dataclasses.replace(records["baseline"], per_seed={
        k: v | {"forgetting": 0.2} for k, v in records["baseline"].per_seed.items()})
    verdict = comparison.recommend(records, POLICY)
    assert verdict.fallback and verdict.recommended == "incremental"
    assert verdict.reasons[0].startswith("Every option forgets more than the ceiling")


def test_new_traffic_share_moves_the_target():
    records = {
        "baseline": record([0.99] * 3, [0.50] * 3),
        "full-retrain": record([0.90] * 3, [0.95] * 3, cpu=100),
    }
    old_only = comparison.recommend(records, CompareParams(new_traffic_share=0.0, tolerance=0.01))
    new_only = comparison.recommend(records, CompareParams(new_traffic_share=1.0, tolerance=0.01))
    assert old_only.recommended == "baseline" and new_only.recommended == "full-retrain"


def test_the_headline_gives_the_decision_its_gain_and_cost():
    records = {
        "baseline": record([0.95] * 3, [0.40] * 3),
        "full-retrain": record([0.95, 0.96, 0.95], [0.93, 0.92, 0.93], cpu=2.7),
        "incremental": record([0.95, 0.95, 0.96], [0.92, 0.93, 0.92], forgetting=0.01, cpu=1.4),
    }
    verdict = comparison.recommend(records, POLICY)
    text = comparison.headline(verdict, records)
    assert text == ("Keep training it on the new data: +26.3 points of target over keeping the model, for 1.4 "
                    "CPU-seconds; full-retrain is as good at 1.9x the cost.")


def fake_trainer(behaviour, calls):
    """A trainer that returns constructed figures: `behaviour(strategy, seed)` -> (acc_old, acc_new)."""
    def train(names, seed):
        calls.append((tuple(names), seed))
        return {n: {"acc_old": behaviour(n, seed)[0], "acc_new": behaviour(n, seed)[1], "forgetting": 0.0,
                    "cpu_seconds": 1.0, "gpu_seconds": 0.0} for n in names}
    return train


def undecided():
    return {
        "baseline": record([0.95] * 3, [0.40] * 3),
        "full-retrain": record([0.93, 0.97, 0.95], [0.90, 0.96, 0.92], cpu=100),
        "incremental": record([0.94, 0.96, 0.94], [0.91, 0.95, 0.91], cpu=20),
        "fine-tune": record([0.80] * 3, [0.70] * 3, cpu=5),
    }


def test_adaptive_seeds_train_only_the_contenders_and_stop_when_separated():
    calls = []
    # New seeds: incremental scores what full-retrain does, so it is shown as good in the end.
    train = fake_trainer(lambda n, s: (0.40, 0.40) if n == "baseline" else (0.95, 0.95), calls)
    records, note = comparison.adapt_seeds(undecided(), dataclasses.replace(POLICY, max_seeds=20), train)
    assert calls[0] == (("baseline", "full-retrain", "incremental"), "3")  # not fine-tune: it is out
    assert note["stopped"] == "separated" and 1 <= len(calls) < 17
    assert comparison.recommend(records, POLICY).separated
    assert len(records["fine-tune"].per_seed) == 3 and len(records["incremental"].per_seed) == 3 + len(calls)
    assert records["incremental"].means["acc_old"] == pytest.approx(
        sum(f["acc_old"] for f in records["incremental"].per_seed.values()) / len(records["incremental"].per_seed))


def test_adaptive_seeds_stop_at_max_seeds():
    calls = []
    noisy = fake_trainer(lambda n, s: (0.99, 0.99) if int(s) % 2 else (0.90, 0.88), calls)
    policy = dataclasses.replace(POLICY, max_seeds=5)
    records, note = comparison.adapt_seeds(undecided(), policy, noisy)
    assert note["stopped"] == "max_seeds" and [seed for _, seed in calls] == ["3", "4"]
    assert len(records["full-retrain"].per_seed) == 5


def test_adaptive_seeds_stop_at_the_budget_judged_by_the_last_seed():
    calls, now = [], [0.0]

    def clock():
        return now[0]

    def slow(names, seed):
        now[0] += 40.0
        return fake_trainer(lambda n, s: (0.99, 0.99) if int(s) % 2 else (0.90, 0.88), calls)(names, seed)

    policy = dataclasses.replace(POLICY, max_seeds=50, budget_seconds=100)
    _, note = comparison.adapt_seeds(undecided(), policy, slow, clock)
    assert note["stopped"] == "budget_seconds" and len(calls) == 2  # a third 40 s seed would pass 100 s
    _, none = comparison.adapt_seeds(undecided(), dataclasses.replace(policy, budget_seconds=0), slow, clock)
    assert none["stopped"] == "budget_seconds" and none["added"] == {}


def test_cost_metric_prefers_money_then_gpu_then_cpu():
    def costs(**means):
        return {"a": dataclasses.replace(record([0.9], [0.9]), means=means)}

    cpu_only = costs(cpu_seconds=1.0, gpu_seconds=0.0)
    gpu = costs(cpu_seconds=1.0, gpu_seconds=3.0)
    money = costs(cpu_seconds=1.0, gpu_seconds=3.0, cost_usd=0.2)
    assert comparison.choose_cost_metric(cpu_only, "auto") == "cpu_seconds"
    assert comparison.choose_cost_metric(gpu, "auto") == "gpu_seconds"
    assert comparison.choose_cost_metric(money, "auto") == "cost_usd"
    assert comparison.choose_cost_metric(money, "wall_seconds") == "wall_seconds"


def test_pareto_front_drops_dominated_points():
    points = {"a": (0, 0.6), "b": (5, 0.9), "c": (6, 0.8), "d": (10, 0.95)}
    assert comparison.pareto_front(points) == ["a", "b", "d"]


def test_interval_of_one_value_has_no_width():
    assert comparison.Interval.of([0.5], "target") == comparison.Interval(0.5, 0.5, 0.5)
    interval = comparison.Interval.of([0.4, 0.5, 0.6], "target")
    assert interval.low < 0.5 < interval.high
    assert interval.mean == pytest.approx(0.5)


def test_accuracy_intervals_stay_between_0_and_1():
    interval = comparison.Interval.of([0.99, 1.0, 0.9], "target")
    assert interval.high == 1.0 and interval.low >= 0


def test_the_metric_rows_are_the_decision_in_a_few_rounded_numbers():
    """metrics/<strategy>.json, what `dvc metrics show` lists: a verdict word and six numbers."""
    records = {
        "baseline": record([0.95] * 3, [0.40] * 3, cpu=3.0),
        "full-retrain": record([0.95, 0.96, 0.95], [0.93, 0.92, 0.93], cpu=100.123456),
        "incremental": record([0.95, 0.95, 0.96], [0.92, 0.93, 0.92], forgetting=0.01, cpu=20),
        "fine-tune": record([0.90] * 3, [0.85] * 3, forgetting=0.06, cpu=5),
    }
    verdict = comparison.recommend(records, POLICY)
    rows = comparison.metric_rows(records, verdict)
    assert {s: r["verdict"] for s, r in rows.items()} == {
        "baseline": comparison.WORSE, "full-retrain": "costs more", "incremental": "recommended",
        "fine-tune": "forgets too much"}
    assert rows["baseline"]["cpu_seconds"] == 0.0  # keeping the model costs nothing to adopt
    assert rows["full-retrain"] == {"verdict": "costs more", "target": round((0.953333 + 0.926667) / 2, 4),
                                    "acc_old": 0.9533, "acc_new": 0.9267, "forgetting": 0.0,
                                    "cpu_seconds": 100.1, "seeds": 3}


def test_figures_are_rounded_for_the_ui_by_what_they_measure():
    from retrainlab.record import rounded

    assert rounded({"acc_new": 0.976612, "acc_new_ci_low": 0.912345, "loss_old": 1.234567, "forgetting": -0.001234,
                    "cpu_seconds": 12.3456, "peak_memory_mb": 812.6, "cost_usd": 0.000123456, "samples": 3000,
                    "gpus": 0, "target_ci_high": 0.99999}) == {
        "acc_new": 0.9766, "acc_new_ci_low": 0.9123, "loss_old": 1.2346, "forgetting": -0.0012,
        "cpu_seconds": 12.35, "peak_memory_mb": 813, "cost_usd": 0.0001235, "samples": 3000, "gpus": 0,
        "target_ci_high": 1.0}


def test_descriptions_escape_user_text_and_say_which_figure_is_which():
    from retrainlab import report

    records = {"baseline": record([0.9] * 2, [0.4] * 2), "fine-tune": record([0.9, 0.88], [0.8, 0.82], cpu=4)}
    verdict = comparison.recommend(records, POLICY)
    text = report.decision_description(records, verdict, "new class <script>alert(1)</script> | *x*", ["a|b"])
    assert "<script>" not in text and "&lt;script&gt;" in text
    assert text.splitlines()[2].startswith("| strategy | verdict | target |")
    assert len([line for line in text.splitlines() if line.startswith("| ")]) == 3  # header and two rows
    version = report.version_description("fine-tune", "freeze the model", 0, 2, records["fine-tune"].per_seed["0"],
                                         records["fine-tune"].means, verdict.status("fine-tune"))
    assert "| acc_new | 0.8000 | 0.8100 |" in version and "this model (seed 0)" in version
    assert "mean over 2 seeds" in version
