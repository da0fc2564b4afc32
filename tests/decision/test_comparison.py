import dataclasses
import math
from pathlib import Path

import pandas as pd
import pytest

from retrainlab.base.tasks import CLASSIFICATION
from retrainlab.config import CompareParams
from retrainlab.decision import comparison
from retrainlab.decision.diagnosis import Diagnosis, ShiftedFeature, TargetShift
from retrainlab.measure.record import Runs, StrategyRecord, summarize
from retrainlab.measure.task import measure_of


def record(acc_old, acc_new, forgetting=0.0, cpu=10.0, version=1, **figures):
    """A strategy's record, as records/<strategy>.json holds it, from per-seed accuracies
    (forgetting: one value for every seed, or one per seed; other figures: one per seed)."""
    forgetting = forgetting if isinstance(forgetting, list) else [forgetting] * len(acc_old)
    per_seed = {
        str(i): {"acc_old": o, "acc_new": n, "forgetting": f, "cpu_seconds": cpu, "gpu_seconds": 0.0}
        | {name: values[i] for name, values in figures.items()}
        for i, (o, n, f) in enumerate(zip(acc_old, acc_new, forgetting))
    }
    means, ci95 = summarize(list(per_seed.values()))
    return StrategyRecord("any", 1, "cpu", {}, means, ci95, per_seed,
                          Runs("1", "r", "p", {}, "m", version, 0))


POLICY = CompareParams(new_traffic_share=0.5, tolerance=0.01, max_forgetting=0.025)  # ceiling 0.05 at 0.5
# Tolerance 1/16, ceiling 1/16 / (1 - 1/2) = 1/8: a figure exactly at either is exact in floating point.
EXACT = CompareParams(new_traffic_share=0.5, tolerance=0.0625, max_forgetting=0.0625)


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
    best = verdict.assessments["full-retrain"]
    assert best.standing == comparison.BEST and best.gap is None and best.acceptable
    assert verdict.status("incremental") == "recommended"
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
    assert verdict.reasons[1:] == [
        "Leaving the model alone costs nothing and is as good: no retraining is needed.",
        "full-retrain: as good, costs more (target 0.948 [0.946, 0.950], forgetting 0.000, cpu_seconds 100).",
        "incremental: as good, costs more (target 0.945, -0.003 [-0.005, -0.001] against the best seed by seed "
        "(the tolerance is 0.010), forgetting 0.010, cpu_seconds 20).",
        "Forgetting ceiling: 0.050 = max_forgetting 0.025 / old traffic share 0.50: old data matters as far as old "
        "traffic does.",
    ]
    assert verdict.assessments["baseline"].adoption_cost == 0
    # No ratio of costs to the free option.
    assert comparison.headline(verdict, records) == (
        "Keep the model as it is: no option is shown better by more than the tolerance, and keeping it costs "
        "nothing; incremental is as good.")


def test_forgetting_over_the_ceiling_rules_a_strategy_out_with_its_numbers():
    records = {
        "baseline": record([0.95] * 3, [0.40] * 3),
        "full-retrain": record([0.95] * 3, [0.93] * 3, cpu=100),
        "incremental": record([0.90] * 3, [0.99] * 3, forgetting=0.07, cpu=20),
    }
    verdict = comparison.recommend(records, POLICY)
    assert verdict.ceiling == pytest.approx(0.05)
    assert verdict.status("incremental") == "rejected: forgets too much: 0.070 against a ceiling of 0.050"
    # The most accurate (0.945 against 0.940), but the best is chosen among those under the ceiling.
    assert verdict.assessments["incremental"].target.mean > verdict.assessments["full-retrain"].target.mean
    assert verdict.best == verdict.recommended == "full-retrain" and not verdict.fallback
    assert verdict.word("incremental") == "forgets too much"


@pytest.mark.parametrize("forgetting", [[0.125] * 3, [0.0, 0.125, 0.25]],
                         ids=["exactly-at-the-ceiling", "mean-at-the-ceiling-high-end-over-it"])
def test_forgetting_is_judged_by_its_mean_up_to_and_including_the_ceiling(forgetting):
    records = {
        "baseline": record([0.95] * 3, [0.40] * 3),
        "full-retrain": record([0.95] * 3, [0.93] * 3, cpu=100),
        "incremental": record([0.95] * 3, [0.93] * 3, forgetting=forgetting, cpu=20),
    }
    verdict = comparison.recommend(records, EXACT)
    incremental = verdict.assessments["incremental"]
    assert incremental.forgetting.mean == verdict.ceiling == 0.125
    assert incremental.forgetting_ok and verdict.recommended == "incremental"


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
    assert verdict.reasons[-1] == ("Forgetting ceiling: none (all traffic is new) = max_forgetting 0.025 / old traffic "
                                   "share 0.00: old data matters as far as old traffic does.")
    assert comparison.forgetting_ceiling(CompareParams(new_traffic_share=0.0, max_forgetting=0.02)) == 0.02
    assert comparison.forgetting_ceiling(CompareParams(new_traffic_share=0.75, max_forgetting=0.02)) == pytest.approx(0.08)


def test_the_dearer_best_is_chosen_over_a_cheaper_option_the_evidence_cannot_separate_from_it():
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
    assert comparison.headline(verdict, records) == (
        "Retrain from scratch: +26.3 points of target over keeping the model, for 100 CPU-seconds; "
        "incremental cannot be told from it within the noise at 0.2x its cost, but is not shown as good either, "
        "so the higher mean of options the evidence cannot separate decides.")


def test_a_cheap_option_as_good_on_average_but_noisy_is_not_shown_as_good():
    """Its mean is within the tolerance of the best's (0.0067 below), but one bad seed puts
    the low end of its paired difference far below: judged by the low end, it is not as
    good, and the dearer best is chosen; judged by the mean, it would be chosen."""
    records = {
        "baseline": record([0.95] * 3, [0.40] * 3),
        "full-retrain": record([0.94] * 3, [0.94] * 3, cpu=100),
        "incremental": record([0.99, 0.82, 0.99], [0.99, 0.82, 0.99], cpu=20),
    }
    verdict = comparison.recommend(records, POLICY)
    gap = verdict.assessments["incremental"].gap
    assert -POLICY.tolerance < gap.mean < 0 and gap.low < -POLICY.tolerance and gap.high > 0
    assert verdict.assessments["incremental"].standing == comparison.NOT_SEPARATED
    assert verdict.best == verdict.recommended == "full-retrain"


def test_standing_at_the_edges_of_the_tolerance_and_of_zero():
    interval = comparison.Interval
    assert comparison.standing(interval(-0.0625, -0.0625, -0.0625), 0.0625) == comparison.AS_GOOD
    assert comparison.standing(interval(-0.03, -0.0625 - 1e-9, 0.0), 0.0625) == comparison.NOT_SEPARATED
    assert comparison.standing(interval(-0.1, -0.2, -1e-9), 0.0625) == comparison.WORSE


def test_among_options_as_good_and_as_cheap_the_more_accurate_is_chosen():
    records = {
        "baseline": record([0.95] * 3, [0.40] * 3),
        "full-retrain": record([0.95] * 3, [0.94] * 3, cpu=100),
        "incremental": record([0.95] * 3, [0.935] * 3, cpu=20),
        "replay": record([0.95] * 3, [0.9375] * 3, cpu=20),
    }
    verdict = comparison.recommend(records, POLICY)
    assert verdict.recommended == "replay" and verdict.rule == "the cheapest of the options as good as the best"


def test_the_best_that_is_also_the_cheapest_says_so():
    records = {
        "baseline": record([0.95] * 3, [0.40] * 3),
        "full-retrain": record([0.95] * 3, [0.93] * 3, cpu=100),
        "incremental": record([0.95] * 3, [0.935] * 3, cpu=20),
    }
    verdict = comparison.recommend(records, POLICY)
    assert verdict.recommended == verdict.best == "incremental"
    assert verdict.rule == "the best target, and no option as good costs less"
    assert verdict.reasons[0] == ("incremental has the best target accuracy (50% new traffic): 0.943; chosen by the "
                                  "best target, and no option as good costs less.")


def test_an_option_not_separated_but_no_cheaper_leaves_the_best_chosen_as_the_best_target():
    records = {
        "baseline": record([0.95] * 3, [0.40] * 3),
        "full-retrain": record([0.93, 0.97, 0.95], [0.90, 0.96, 0.92], cpu=20),
        "incremental": record([0.95, 0.95, 0.96], [0.935, 0.945, 0.935], cpu=20),
    }
    verdict = comparison.recommend(records, POLICY)
    assert verdict.best == verdict.recommended == "incremental"
    assert verdict.assessments["full-retrain"].standing == comparison.NOT_SEPARATED
    assert verdict.rule == "the best target"
    assert verdict.contenders() == ["incremental", "full-retrain"] and not verdict.separated


def test_a_cost_figure_a_record_lacks_or_has_at_zero_costs_nothing():
    records = {"baseline": record([0.9], [0.5]), "full-retrain": record([0.9], [0.9], cpu=5)}
    verdict = comparison.recommend(records, dataclasses.replace(POLICY, cost_metric="gpu_seconds"))
    assert verdict.cost_metric == "gpu_seconds" and verdict.assessments["full-retrain"].adoption_cost == 0.0
    verdict = comparison.recommend(records, dataclasses.replace(POLICY, cost_metric="cost_usd"))
    assert verdict.assessments["full-retrain"].adoption_cost == 0.0


def test_one_seed_says_there_is_no_measure_of_noise():
    records = {"baseline": record([0.9], [0.5]), "full-retrain": record([0.9], [0.9], cpu=5)}
    verdict = comparison.recommend(records, POLICY)
    assert verdict.reasons[-1] == "Only one seed was trained, so there is no measure of noise: set `seeds` to 3 or more."
    assert verdict.rule == "the best target" and verdict.separated
    two = comparison.recommend({s: r.with_seed("1", r.per_seed["0"]) for s, r in records.items()}, POLICY)
    assert not any("seed was trained" in reason for reason in two.reasons)


def test_when_every_option_forgets_too_much_the_most_accurate_is_named_and_flagged():
    records = {
        "baseline": record([0.875] * 3, [0.25] * 3, forgetting=0.25),
        "incremental": record([0.75] * 3, [0.875] * 3, forgetting=0.125, cpu=20),
    }
    verdict = comparison.recommend(records, POLICY)
    assert verdict.fallback and verdict.recommended == verdict.best == "incremental"
    assert verdict.reasons == [
        "Every option forgets more than the ceiling of 0.050; incremental is named as the most accurate, but none is "
        "safe for the old traffic.",
        "incremental has the best target accuracy (50% new traffic): 0.812; chosen by the best target.",
        "baseline: rejected: less accurate: 0.250 below the best; forgets too much: 0.250 against a ceiling of 0.050 "
        "(target 0.562, -0.250 against the best seed by seed (the tolerance is 0.010), forgetting 0.250).",
        "Forgetting ceiling: 0.050 = max_forgetting 0.025 / old traffic share 0.50: old data matters as far as old "
        "traffic does.",
    ]
    assert comparison.headline(verdict, records) == (
        "Keep training it on the new data: +25.0 points of target over keeping the model, for 20 CPU-seconds.")


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
                    "CPU-seconds; full-retrain is as good at 1.9x its cost.")


def test_without_the_baseline_the_headline_has_no_gain_and_names_the_cheapest_other_option():
    records = {
        "full-retrain": record([0.95, 0.96, 0.95], [0.93, 0.92, 0.93], cpu=100),
        "replay": record([0.95, 0.96, 0.95], [0.93, 0.92, 0.925], cpu=50),
        "incremental": record([0.95, 0.95, 0.96], [0.92, 0.93, 0.92], cpu=20),
    }
    verdict = comparison.recommend(records, POLICY)
    assert comparison.headline(verdict, records) == (
        "Keep training it on the new data, for 20 CPU-seconds; replay is as good at 2.5x its cost.")


@pytest.mark.parametrize("metric, shown", [("cost_usd", "0.25 USD"), ("gpu_seconds", "3 GPU-seconds"),
                                           ("wall_seconds", "4 seconds")])
def test_the_headline_gives_the_cost_in_its_unit(metric, shown):
    records = {"baseline": record([0.9] * 2, [0.5] * 2), "full-retrain": record([0.9] * 2, [0.9] * 2)}
    records["full-retrain"] = dataclasses.replace(records["full-retrain"], means=records["full-retrain"].means | {
        "cost_usd": 0.25, "gpu_seconds": 3.0, "wall_seconds": 4.0})
    verdict = comparison.recommend(records, dataclasses.replace(POLICY, cost_metric=metric))
    assert comparison.headline(verdict, records) == (
        f"Retrain from scratch: +20.0 points of target over keeping the model, for {shown}.")


def fake_trainer(behaviour, calls):
    """A trainer that returns constructed figures: `behaviour(strategy, seed)` -> (acc_old, acc_new)."""
    def train(names, seed):
        calls.append((tuple(names), seed))
        return {n: {"acc_old": behaviour(n, seed)[0], "acc_new": behaviour(n, seed)[1], "forgetting": 0.0,
                    "cpu_seconds": 1.0, "gpu_seconds": 0.0} for n in names}
    return train


def undecided():
    """Incremental not separated from full-retrain; fine-tune out. Not in alphabetical order."""
    return {
        "baseline": record([0.95] * 3, [0.40] * 3),
        "incremental": record([0.94, 0.96, 0.94], [0.91, 0.95, 0.91], cpu=20),
        "full-retrain": record([0.93, 0.97, 0.95], [0.90, 0.96, 0.92], cpu=100),
        "fine-tune": record([0.80] * 3, [0.70] * 3, cpu=5),
    }


def test_adaptive_seeds_train_only_the_contenders_and_stop_when_separated():
    calls = []
    # New seeds: incremental scores what full-retrain does, so it is shown as good in the end.
    train = fake_trainer(lambda n, s: (0.40, 0.40) if n == "baseline" else (0.95, 0.95), calls)
    now = [100.0]

    def timed(names, seed):
        now[0] += 5.0
        return train(names, seed)

    records, note = comparison.adapt_seeds(undecided(), dataclasses.replace(POLICY, max_seeds=20), timed,
                                           clock=lambda: now[0])
    # The contenders and the baseline in the records' order; not fine-tune: it is out.
    assert calls[0] == (("baseline", "incremental", "full-retrain"), "3")
    assert note["stopped"] == "separated" and 1 <= len(calls) < 17
    added = [str(seed) for seed in range(3, 3 + len(calls))]
    assert note == {"added": {"baseline": added, "incremental": added, "full-retrain": added}, "stopped": "separated",
                    "seconds": 5.0 * len(calls), "max_seeds": 20, "budget_seconds": 300.0}
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
    # Before the first seed there is no last one to judge by: any budget lets one start.
    calls.clear()
    _, one = comparison.adapt_seeds(undecided(), dataclasses.replace(policy, budget_seconds=0.5), slow, clock)
    assert one["stopped"] == "budget_seconds" and len(calls) == 1


def test_adaptive_seeds_take_the_first_seed_numbers_no_record_uses():
    calls = []
    # 60 seeds in use, 0 to 59, alternating so that incremental stays not separated.
    records = {
        "baseline": record([0.95] * 60, [0.40] * 60),
        "full-retrain": record([0.95] * 60, [0.95] * 60, cpu=100),
        "incremental": record([1.0, 0.89] * 30, [1.0, 0.89] * 30, cpu=20),
    }
    assert comparison.recommend(records, POLICY).contenders() == ["full-retrain", "incremental"]
    policy = dataclasses.replace(POLICY, max_seeds=61)
    comparison.adapt_seeds(records, policy, fake_trainer(lambda n, s: (0.95, 0.95), calls))
    assert calls == [(("baseline", "full-retrain", "incremental"), "60")]


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
    assert comparison.choose_cost_metric(costs(gpu_seconds=0.0), "auto") == "cpu_seconds"  # none has it: the default


def test_pareto_front_drops_dominated_points():
    points = {"a": (0, 0.6), "b": (5, 0.9), "c": (6, 0.8), "d": (10, 0.95)}
    assert comparison.pareto_front(points) == ["a", "b", "d"]
    # Ties: as dear and less accurate, or as accurate and dearer, is dominated; the same point is not.
    tied = {"z": (0, 0.6), "y": (5, 0.9), "x": (5, 0.85), "w": (6, 0.9), "v": (10, 0.95), "u": (10, 0.95)}
    assert comparison.pareto_front(tied) == ["z", "y", "v", "u"]


def test_interval_of_one_value_has_no_width():
    assert comparison.Interval.of([0.5], "target") == comparison.Interval(0.5, 0.5, 0.5)
    assert comparison.Interval(0.5, 0.5, 0.5).text() == "0.500" and comparison.Interval(0.5, 0.5, 0.5).signed() == "+0.500"
    wide = comparison.Interval(-0.02, -0.05, 0.01)
    assert wide.text() == "-0.020 [-0.050, 0.010]" and wide.signed() == "-0.020 [-0.050, +0.010]"
    assert wide.text(1) == "-0.0 [-0.1, 0.0]" and wide.signed(2) == "-0.02 [-0.05, +0.01]"
    assert wide.overlaps(comparison.Interval(0.0, 0.01, 0.2)) and comparison.Interval(0.0, 0.01, 0.2).overlaps(wide)
    assert not wide.overlaps(comparison.Interval(0.1, 0.02, 0.2))
    assert not comparison.Interval(0.1, 0.02, 0.2).overlaps(wide)
    interval = comparison.Interval.of([0.4, 0.5, 0.6], "target")
    assert interval.low < 0.5 < interval.high
    assert interval.mean == pytest.approx(0.5)


def test_accuracy_intervals_stay_between_0_and_1():
    interval = comparison.Interval.of([0.99, 1.0, 0.9], "target")
    assert interval.high == 1.0 and interval.low >= 0
    # And so do the recommendation's: targets in [0, 1], forgetting in [-1, 1].
    records = {"baseline": record([0.99, 1.0, 0.9], [0.99, 1.0, 0.9]),
               "incremental": record([0.99, 1.0, 0.9], [0.99, 1.0, 0.9], forgetting=[-0.5, 0.5, 0.0])}
    verdict = comparison.recommend(records, dataclasses.replace(POLICY, max_forgetting=1.0))
    assert verdict.assessments["baseline"].target.high == 1.0
    assert (verdict.assessments["incremental"].forgetting.low, verdict.assessments["incremental"].forgetting.high) == (
        -1.0, 1.0)


def test_the_metric_rows_are_the_decision_in_a_few_rounded_numbers():
    """metrics/<strategy>.json, what `dvc metrics show` lists: a verdict word and six numbers."""
    records = {
        "baseline": record([0.95] * 3, [0.40] * 3, cpu=3.0),
        "full-retrain": record([0.95, 0.96, 0.95], [0.93, 0.92, 0.93], cpu=100.123456),
        "incremental": record([0.95, 0.95, 0.96], [0.92, 0.93, 0.92], forgetting=[0.01234, 0.01, 0.01], cpu=20),
        "fine-tune": record([0.90] * 3, [0.85] * 3, forgetting=0.06, cpu=5),
    }
    verdict = comparison.recommend(records, POLICY)
    rows = comparison.metric_rows(records, verdict)
    assert rows["incremental"] == {"verdict": "recommended", "target": 0.9383, "acc_old": 0.9533, "acc_new": 0.9233,
                                   "forgetting": 0.0108, "cpu_seconds": 20.0, "seeds": 3}
    assert {s: r["verdict"] for s, r in rows.items()} == {
        "baseline": comparison.WORSE, "full-retrain": "costs more", "incremental": "recommended",
        "fine-tune": "forgets too much"}
    assert rows["baseline"]["cpu_seconds"] == 0.0  # keeping the model costs nothing to adopt
    assert rows["full-retrain"] == {"verdict": "costs more", "target": round((0.953333 + 0.926667) / 2, 4),
                                    "acc_old": 0.9533, "acc_new": 0.9267, "forgetting": 0.0,
                                    "cpu_seconds": 100.1, "seeds": 3}


def test_figures_are_rounded_for_the_ui_by_what_they_measure():
    from retrainlab.measure.record import rounded

    assert rounded({"acc_new": 0.976612, "acc_new_ci_low": 0.912345, "loss_old": 1.234567, "forgetting": -0.001234,
                    "cpu_seconds": 12.3456, "peak_memory_mb": 812.6, "cost_usd": 0.000123456, "samples": 3000,
                    "gpus": 0, "target_ci_high": 0.99999}) == {
        "acc_new": 0.9766, "acc_new_ci_low": 0.9123, "loss_old": 1.2346, "forgetting": -0.0012,
        "cpu_seconds": 12.35, "peak_memory_mb": 813, "cost_usd": 0.0001235, "samples": 3000, "gpus": 0,
        "target_ci_high": 1.0}


def test_descriptions_escape_user_text_and_say_which_figure_is_which():
    from retrainlab.reporting import descriptions

    records = {"baseline": record([0.9] * 2, [0.4] * 2), "fine-tune": record([0.9, 0.88], [0.8, 0.82], cpu=4)}
    verdict = comparison.recommend(records, POLICY)
    text = descriptions.decision_description(records, verdict, "new class <script>alert(1)</script> | *x*", ["a|b"])
    assert "<script>" not in text and "&lt;script&gt;" in text
    assert text.splitlines()[2].startswith("| strategy | verdict | target |")
    assert len([line for line in text.splitlines() if line.startswith("| ")]) == 3  # header and two rows
    version = descriptions.version_description("fine-tune", "freeze the model", 0, 2, records["fine-tune"].per_seed["0"],
                                         records["fine-tune"].means, verdict.status("fine-tune"))
    assert "| acc_new | 0.8000 | 0.8100 |" in version and "this model (seed 0)" in version
    assert "mean over 2 seeds" in version


GOLDEN = Path(__file__).parent / "golden"


def test_the_report_reads_as_in_tests_golden_comparison_md():
    """The report a person reads, word for word, for one option of each verdict: a change to
    its wording or numbers shows as a diff here (update the file when the change is meant)."""
    records, verdict, args = report_case()
    rows = comparison.table(records, verdict)
    assert comparison.markdown(rows, verdict, *args) == (GOLDEN / "comparison.md").read_text()
    by_strategy = {row["strategy"]: row for row in rows}
    assert "gain_points" not in by_strategy["baseline"] and "gap" not in by_strategy["full-retrain"]
    assert by_strategy["incremental"]["gain_points"] == pytest.approx(100 * (0.93833333 - 0.675))
    assert by_strategy["incremental"]["cost_per_point"] == pytest.approx(20 / by_strategy["incremental"]["gain_points"])
    assert by_strategy["distill"]["gain_points"] == pytest.approx(-30.0) and by_strategy["distill"]["cost_per_point"] is None
    assert (by_strategy["replay"]["gap_low"], by_strategy["replay"]["gap_high"]) == (
        verdict.assessments["replay"].gap.low, verdict.assessments["replay"].gap.high)
    assert (by_strategy["replay"]["acc_new_low"], by_strategy["replay"]["acc_new_high"]) == (
        records["replay"].ci95["acc_new"].low, records["replay"].ci95["acc_new"].high)


def test_the_report_leaves_out_what_it_was_not_given():
    records, _, (diagnostics, *_) = report_case()
    all_new = dataclasses.replace(POLICY, new_traffic_share=1.0)
    verdict = comparison.recommend(records, all_new)
    text = comparison.markdown(comparison.table(records, verdict), verdict, dataclasses.replace(diagnostics, new_classes=[]),
                               all_new)
    head, rest = text.split("\n\n## The strategies side by side\n\n")
    assert head.splitlines() == ["# Should you retrain? The comparison", "", f"**Recommendation: {verdict.recommended}.**",
                                 "", *[f"- {reason}" for reason in verdict.reasons]]
    assert "## What changed" not in rest and "## Per class" not in rest
    assert "Target = 0.00 x acc_old + 1.00 x acc_new" in rest and "(ceiling on forgetting at this share: none)" in rest
    assert "- Classes only the new data has: none." in rest.splitlines()


def test_the_cost_of_a_point_of_gain_is_given_only_for_a_gain():
    records = {"baseline": record([0.9] * 2, [0.5] * 2), "same": record([0.9] * 2, [0.5] * 2, cpu=4),
               "half-point": record([0.9] * 2, [0.51] * 2, cpu=4)}
    verdict = comparison.recommend(records, POLICY)
    rows = {row["strategy"]: row for row in comparison.table(records, verdict)}
    assert rows["same"]["gain_points"] == 0 and rows["same"]["cost_per_point"] is None
    assert rows["half-point"]["gain_points"] == pytest.approx(0.5) and rows["half-point"]["cost_per_point"] == pytest.approx(8)


def test_a_record_that_logged_nothing_has_no_model_version_in_the_table():
    """The decision map's records log no MLflow run: their row says so rather than failing."""
    unlogged = dataclasses.replace(record([0.9] * 2, [0.8] * 2, cpu=4), mlflow=None)
    records = {"baseline": record([0.9] * 2, [0.5] * 2), "fine-tune": unlogged}
    rows = {row["strategy"]: row for row in comparison.table(records, comparison.recommend(records, POLICY))}
    assert rows["fine-tune"]["model_version"] is None and rows["baseline"]["model_version"] == 1


def test_a_large_cost_to_adopt_reads_in_four_significant_figures():
    records, _, (diagnostics, *_) = report_case()
    records = {"baseline": records["baseline"], "full-retrain": record([0.9] * 2, [0.9] * 2, cpu=123456)}
    verdict = comparison.recommend(records, POLICY)
    text = comparison.markdown(comparison.table(records, verdict), verdict, diagnostics, POLICY)
    row = next(line for line in text.splitlines() if line.startswith("| full-retrain |"))
    assert "for 1.235e+05 CPU-seconds: " in row


def test_the_report_says_how_each_text_column_moved():
    from retrainlab.decision.diagnosis import TextShift

    records, verdict, (diagnostics, *rest) = report_case()
    shift = TextShift("review <b>", 0.61, 0.4, 0.25, 6.5, 23.75, 0.987)
    texts = dataclasses.replace(diagnostics, text=(shift,),
                                top_shifted_features=(ShiftedFeature("review <b>", "text", 1.5),))
    text = comparison.markdown(comparison.table(records, verdict), verdict, texts, *rest)
    assert ("- Text column review &lt;b&gt;: 61% of the new texts' tokens are unknown to the old vocabulary, and 40% "
            "of the new texts are mostly unknown words; vocabulary overlap 0.25; 6.5 tokens a text before, 23.8 now; "
            "a classifier on token counts tells new texts from old with AUC 0.987.") in text.splitlines()
    assert "| review &lt;b&gt; | text | 1.500 | |" in text.splitlines()
    assert "Text column" not in comparison.markdown(comparison.table(records, verdict), verdict, diagnostics, *rest)


def test_every_option_the_evidence_cannot_separate_is_named():
    records = {
        "baseline": record([0.95] * 3, [0.40] * 3),
        "full-retrain": record([0.93, 0.97, 0.95], [0.90, 0.96, 0.92], cpu=100),
        "incremental": record([0.94, 0.96, 0.94], [0.91, 0.95, 0.91], cpu=20),
        "replay": record([0.94, 0.96, 0.94], [0.91, 0.95, 0.91], cpu=30),
    }
    verdict = comparison.recommend(records, POLICY)
    assert verdict.contenders() == ["full-retrain", "incremental", "replay"]
    assert verdict.reasons[-1] == (
        "Not separated after 3 seeds: incremental, replay against full-retrain; full-retrain is chosen by the higher "
        "mean of options the evidence cannot separate. More seeds (compare.max_seeds) or more test data would decide.")


def report_case():
    """Five options, one of each verdict, and what the report shows besides: the records, the
    verdict and the rest of `markdown`'s arguments."""
    records = {
        "baseline": record([0.95, 0.951, 0.949], [0.40, 0.41, 0.39], version=1),
        "full-retrain": record([0.95, 0.96, 0.95], [0.93, 0.92, 0.93], cpu=100, version=2),
        "incremental": record([0.95, 0.95, 0.96], [0.92, 0.93, 0.92], forgetting=[0.01, 0.0, 0.02], cpu=20,
                              version=3, f1_all=[0.93, 0.94, 0.95]),
        "fine-tune": record([0.90] * 3, [0.85] * 3, forgetting=0.06, cpu=5, version=4),
        "replay": record([0.99, 0.90, 0.95], [0.97, 0.85, 0.93], cpu=30, version=5),
        "distill": record([0.5] * 3, [0.25] * 3, cpu=8, version=6),  # worse than keeping the model
    }
    policy = dataclasses.replace(POLICY, max_seeds=3, budget_seconds=120)
    verdict = comparison.recommend(records, policy)
    diagnostics = Diagnosis(
        rows_new=540, rows_old=1257, size_ratio=540 / 1257, new_classes=["7", "8|9"], vanished_classes=[],
        label_shift_tv=0.3, domain_auc=0.512, psi_max=0.31, psi_mean=0.07,
        top_shifted_features=(ShiftedFeature("pixel_*3", "numeric", 0.31, 0.2),
                              ShiftedFeature("plan", "categorical", 0.05)),
    )
    recall = {"new": pd.DataFrame({"7": [0.0, 0.9], "a|b": [0.5, math.nan]}, index=["baseline", "incremental"])}
    head = comparison.headline(verdict, records)
    changes = ["the new data brings classes 7 and 8|9"]
    note = "compare trained no more seeds: max_seeds is 3."
    return records, verdict, (diagnostics, policy, head, changes, recall, note)


def regression_record(rmse_old, rmse_new, forgetting=0.0, cpu=10.0):
    """A regressor's record: per-seed RMSE on the old and the new data (lower is better)."""
    forgetting = forgetting if isinstance(forgetting, list) else [forgetting] * len(rmse_old)
    per_seed = {
        str(i): {"rmse_old": o, "rmse_new": n, "mae_old": o * 0.8, "mae_new": n * 0.8, "r2_all": 0.5,
                 "forgetting": f, "cpu_seconds": cpu, "gpu_seconds": 0.0}
        for i, (o, n, f) in enumerate(zip(rmse_old, rmse_new, forgetting))
    }
    means, ci95 = summarize(list(per_seed.values()))
    return StrategyRecord("any", 1, "cpu", {}, means, ci95, per_seed,
                          Runs("1", "r", "p", {}, "m", 1, 0))


def test_a_regressor_is_judged_by_the_lowest_error_with_tolerances_relative_to_the_baselines():
    """Target = mean of rmse_old and rmse_new. Keeping the model: (2 + 6) / 2 = 4, so the
    tolerance 0.01 is 0.04 in the label's units and the ceiling on forgetting 0.025 x 2 /
    0.5 = 0.1."""
    records = {
        "baseline": regression_record([2.0] * 3, [6.0] * 3),
        "full-retrain": regression_record([1.9, 1.9, 1.9], [3.0, 3.0, 3.0], forgetting=-0.1, cpu=100),
        "incremental": regression_record([1.93, 1.93, 1.93], [3.0, 3.0, 3.0], forgetting=0.05, cpu=20),
        "fine-tune": regression_record([2.5] * 3, [2.5] * 3, forgetting=0.5, cpu=5),
        "replay": regression_record([2.0] * 3, [3.5] * 3, forgetting=0.0, cpu=15),
    }
    verdict = comparison.recommend(records, POLICY)
    assert verdict.measure.primary == "rmse"
    assert verdict.tolerance == pytest.approx(0.04) and verdict.ceiling == pytest.approx(0.1)
    # The best is full-retrain (target 2.45); fine-tune's 2.5 is worse, and it forgets 0.5 > 0.1.
    assert verdict.best == "full-retrain" and not verdict.assessments["fine-tune"].forgetting_ok
    # incremental's target is 0.015 higher, seed by seed: within 0.04, and it costs less.
    assert verdict.recommended == "incremental"
    assert verdict.assessments["incremental"].gap.mean == pytest.approx(-0.015)
    assert verdict.difference(verdict.assessments["incremental"].gap).mean == pytest.approx(0.015)
    assert verdict.status("replay") == "rejected: higher RMSE: 0.3 above the best"
    assert verdict.status("fine-tune") == ("rejected: higher RMSE: 0.05 above the best; forgets too much: 0.5 "
                                           "against a ceiling of 0.1")
    reasons = " ".join(verdict.reasons)
    assert "target RMSE (50% new traffic; lower is better)" in reasons and "within the tolerance of 0.04" in reasons
    assert "at the high end" in reasons
    assert "Forgetting ceiling: 0.1 in the label's units = max_forgetting 0.025 x the baseline's rmse_old 2" in reasons
    head = comparison.headline(verdict, records)
    assert "target RMSE 1.535 lower (38.4% less) over keeping the model" in head
    assert comparison.gain_text(verdict.measure, 5.0, 4.0) == "target RMSE 1 higher (25.0% more)"
    assert comparison.gain_text(verdict.measure, 4.0, 0.0) == "target RMSE 4 higher"
    assert comparison.gain_text(comparison.of_figures({}), 0.93, 0.9) == "+3.0 points of target"
    rows = {row["strategy"]: row for row in comparison.table(records, verdict)}
    assert rows["incremental"]["gain_error"] == pytest.approx(1.535)
    assert rows["incremental"]["gain_percent"] == pytest.approx(38.375)
    assert rows["incremental"]["cost_per_percent"] == pytest.approx(20 / 38.375)
    assert rows["incremental"]["gap"] == pytest.approx(0.015) and "gain_points" not in rows["incremental"]
    shown = comparison.metric_rows(records, verdict)["incremental"]
    assert list(shown)[:5] == ["verdict", "target", "rmse_old", "rmse_new", "forgetting"]
    assert shown["target"] == 2.465 and shown["rmse_old"] == 1.93


def test_a_regressors_report_gives_the_mae_and_r2_and_dvc_metrics_its_rmse():
    """The report shows a regressor's MAE (the figure promotion's MAE gate weighs) and R²;
    `dvc metrics show` has its RMSE in place of a classifier's accuracy, no more (its 120
    columns hold seven figures)."""
    records = {"baseline": regression_record([2.0] * 3, [6.0] * 3),
               "full-retrain": regression_record([1.9] * 3, [3.0] * 3, cpu=100)}
    verdict = comparison.recommend(records, POLICY)
    diagnosis = report_case()[2][0]
    shown = comparison.metric_rows(records, verdict)["full-retrain"]
    assert list(shown) == ["verdict", "target", "rmse_old", "rmse_new", "forgetting", "cpu_seconds", "seeds"]
    main, more = [line for line in comparison.markdown(comparison.table(records, verdict), verdict, diagnosis,
                                                       POLICY).splitlines() if line.startswith("| strategy |")][:2]
    assert "| rmse_old | rmse_new | forgetting |" in main and "| strategy | mae_old | mae_new | r2_all |" in more
    # A classifier's rows are as they were: accuracy in dvc metrics show, macro-F1 in the table.
    classifier = {"baseline": record([0.9] * 2, [0.5] * 2, f1_all=[0.6, 0.6]),
                  "full-retrain": record([0.9] * 2, [0.8] * 2, cpu=4, f1_all=[0.7, 0.7])}
    verdict = comparison.recommend(classifier, POLICY)
    assert list(comparison.metric_rows(classifier, verdict)["full-retrain"])[:5] == [
        "verdict", "target", "acc_old", "acc_new", "forgetting"]
    main, more = [line for line in comparison.markdown(comparison.table(classifier, verdict), verdict, diagnosis,
                                                       POLICY).splitlines() if line.startswith("| strategy |")][:2]
    assert "| acc_old | acc_new | forgetting |" in main and "| strategy | f1_all |" in more


def test_a_regressor_no_option_beats_by_more_than_the_tolerance_keeps_the_model():
    records = {
        "baseline": regression_record([2.0, 2.1, 1.9], [2.2, 2.3, 2.1]),
        "full-retrain": regression_record([2.0, 2.1, 1.9], [2.19, 2.29, 2.09], cpu=100),
    }
    verdict = comparison.recommend(records, POLICY)
    assert verdict.best == "full-retrain" and verdict.recommended == "baseline"
    assert verdict.assessments["baseline"].standing == comparison.AS_GOOD


def regression_report_case():
    """A regressor's report: one option of each verdict, the target's shift and residuals."""
    records = {
        "baseline": regression_record([2.0, 2.1, 1.9], [6.0, 6.2, 5.8]),
        "full-retrain": regression_record([1.9] * 3, [3.0] * 3, forgetting=-0.1, cpu=100),
        "incremental": regression_record([1.93] * 3, [3.0] * 3, forgetting=0.05, cpu=20),
        "fine-tune": regression_record([2.5] * 3, [2.5] * 3, forgetting=0.5, cpu=5),
        "replay": regression_record([2.0] * 3, [3.5] * 3, cpu=15),
    }
    verdict = comparison.recommend(records, POLICY)
    diagnostics = Diagnosis(
        rows_new=300, rows_old=1000, size_ratio=0.3, new_classes=[], vanished_classes=[], label_shift_tv=None,
        domain_auc=0.98, psi_max=2.6, psi_mean=2.2, top_shifted_features=(ShiftedFeature("x|1", "numeric", 2.6, 0.5),),
        target=TargetShift(ks=0.49, mean_old=14.36, mean_new=21.28, std_old=4.96, std_new=7.523),
    )
    residuals = {test_set: pd.DataFrame({"rows": [290, 290], "mean": [0.015, -2.35], "sd": [2.08, 2.58],
                                         "p90": [3.32, 5.48]}, index=["baseline", "full-retrain"])
                 for test_set in ("old", "new")}
    return records, verdict, (diagnostics, POLICY, comparison.headline(verdict, records), ["the inputs moved"], None,
                              "", residuals)


def test_a_regressors_report_reads_as_in_tests_golden_comparison_regression_md():
    """A regressor's report word for word: RMSE where accuracy was, gains as errors removed,
    residuals where the per-class recall was, the target's shift where the classes were."""
    records, verdict, args = regression_report_case()
    rows = comparison.table(records, verdict)
    assert comparison.markdown(rows, verdict, *args) == (GOLDEN / "comparison-regression.md").read_text()


def test_a_regressors_targets_and_flipped_intervals():
    per_seed = regression_record([2.0, 4.0], [6.0, 8.0]).per_seed
    assert comparison.target_values(per_seed, 0.25) == {"0": 3.0, "1": 5.0}  # the measure read off the figures
    assert comparison.target_values(record([0.8], [0.4]).per_seed, 0.25) == {"0": pytest.approx(0.7)}
    assert comparison.target_values({}, 0.5) == {}
    assert comparison.Interval(1.0, 0.5, 2.0).flipped() == comparison.Interval(-1.0, -2.0, -0.5)
    assert comparison.Interval.of([2.0, 2.5, 3.0], "target", comparison.of_figures({"rmse_old": 1})).low > 0
    assert comparison.Interval.of([0.0, 0.0, 1.0], "target", comparison.of_figures({"rmse_old": 1})).low == 0.0


def test_a_cost_of_errors_is_said_in_its_unit_a_row_and_a_week():
    cost = measure_of(CLASSIFICATION, "cost")
    assert comparison.gain_text(cost, 80.0, 100.0, ("$", 5000.0)) == (
        "saves about $20 a row in errors (20.0% less), $100,000.00 a week at 5,000 rows a week")
    assert comparison.gain_text(cost, 2.5, 2.0, ("EUR", None)) == "costs about 0.5 EUR a row in errors (25.0% more)"
    assert comparison.gain_text(measure_of(CLASSIFICATION, "f1"), 0.5, 0.4) == "+10.0 points of target F1"
    assert comparison.gain_text(measure_of(CLASSIFICATION), 0.5, 0.4) == "+10.0 points of target"
