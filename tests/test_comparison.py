import dataclasses

import pytest

from retrainlab import comparison
from retrainlab.config import CompareParams
from retrainlab.record import StrategyRecord


def record(acc_old, acc_new, forgetting=0.0, cpu=10.0, version=1):
    """A strategy's record, as metrics/<strategy>.json holds it, from per-seed accuracies."""
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


POLICY = CompareParams(new_traffic_share=0.5, tolerance=0.01, max_forgetting=0.05)


def test_the_cheapest_strategy_within_tolerance_of_the_best_wins():
    records = {
        "baseline": record([0.95] * 3, [0.40] * 3),
        "full-retrain": record([0.95, 0.96, 0.95], [0.93, 0.92, 0.93], cpu=100),
        "incremental": record([0.95, 0.95, 0.96], [0.92, 0.93, 0.92], forgetting=0.01, cpu=20),
        "fine-tune": record([0.90] * 3, [0.85] * 3, forgetting=0.04, cpu=5),
    }
    verdict = comparison.recommend(records, POLICY)
    assert verdict.best == "full-retrain"
    assert verdict.recommended == "incremental"
    assert verdict.status("fine-tune") == "rejected: less accurate"
    assert verdict.status("full-retrain") == "acceptable, costs more"
    assert "within 0.010 of the best (full-retrain" in verdict.reasons[0]
    assert "even the low end" in verdict.reasons[0]


def test_leave_it_alone_wins_when_it_is_good_enough():
    records = {
        "baseline": record([0.95, 0.951, 0.949], [0.945, 0.946, 0.944]),
        "full-retrain": record([0.96, 0.96, 0.95], [0.95, 0.95, 0.95], cpu=100),
        "incremental": record([0.94] * 3, [0.95] * 3, forgetting=0.01, cpu=20),
        "fine-tune": record([0.93] * 3, [0.94] * 3, forgetting=0.02, cpu=5),
    }
    verdict = comparison.recommend(records, POLICY)
    assert verdict.recommended == "baseline"
    assert any("costs nothing" in reason for reason in verdict.reasons)
    assert verdict.assessments["baseline"].adoption_cost == 0


def test_forgetting_over_the_ceiling_rules_a_strategy_out():
    records = {
        "baseline": record([0.95] * 3, [0.40] * 3),
        "full-retrain": record([0.95] * 3, [0.93] * 3, cpu=100),
        "incremental": record([0.88] * 3, [0.99] * 3, forgetting=0.10, cpu=20),
        "fine-tune": record([0.90] * 3, [0.80] * 3, forgetting=0.05, cpu=5),
    }
    verdict = comparison.recommend(records, POLICY)
    assert verdict.assessments["incremental"].within_tolerance
    assert verdict.status("incremental") == "rejected: forgets too much"
    assert verdict.recommended == "full-retrain"


def test_too_close_to_call_is_said_and_the_cheaper_one_is_chosen():
    records = {
        "baseline": record([0.95] * 3, [0.40] * 3),
        "full-retrain": record([0.93, 0.97, 0.95], [0.90, 0.96, 0.92], cpu=100),
        "incremental": record([0.92, 0.97, 0.94], [0.91, 0.95, 0.93], forgetting=0.01, cpu=20),
        "fine-tune": record([0.90] * 3, [0.80] * 3, cpu=5),
    }
    verdict = comparison.recommend(records, POLICY)
    assert not verdict.separated
    # incremental's mean is within the tolerance, but its noisy low end is not: not shown good enough.
    assert verdict.assessments["incremental"].target.mean >= verdict.assessments["full-retrain"].target.mean - 0.01
    assert verdict.recommended == "full-retrain"
    assert any(reason.startswith("Too close to call") for reason in verdict.reasons)


def test_a_noisy_cheap_option_is_not_shown_good_enough():
    records = {
        "baseline": record([0.95] * 3, [0.40] * 3),
        "full-retrain": record([0.95, 0.951, 0.949], [0.93, 0.931, 0.929], cpu=100),
        "incremental": record([0.99, 0.70, 0.99], [0.99, 0.70, 0.99], cpu=20),
    }
    verdict = comparison.recommend(records, POLICY)
    assert verdict.status("incremental") == "rejected: less accurate"
    assert verdict.recommended == "full-retrain"


def test_well_separated_results_are_not_called_close():
    records = {
        "baseline": record([0.95, 0.951, 0.949], [0.40, 0.401, 0.399]),
        "full-retrain": record([0.95, 0.951, 0.949], [0.93, 0.931, 0.929], cpu=100),
    }
    verdict = comparison.recommend(records, POLICY)
    assert verdict.separated and verdict.recommended == "full-retrain"
    assert not any("Too close" in reason for reason in verdict.reasons)


def test_one_seed_says_there_is_no_measure_of_noise():
    records = {"baseline": record([0.9], [0.5]), "full-retrain": record([0.9], [0.9], cpu=5)}
    verdict = comparison.recommend(records, POLICY)
    assert any("Only one seed" in reason for reason in verdict.reasons)


def test_when_nothing_passes_both_tests_the_best_under_the_ceiling_is_named():
    records = {
        "baseline": record([0.95] * 3, [0.20] * 3),
        "incremental": record([0.80] * 3, [0.99] * 3, forgetting=0.15, cpu=20),
    }
    policy = CompareParams(new_traffic_share=1.0, tolerance=0.01, max_forgetting=0.05)
    verdict = comparison.recommend(records, policy)
    assert verdict.fallback and verdict.recommended == "baseline"
    assert verdict.reasons[0].startswith("No strategy is both")


def test_new_traffic_share_moves_the_target():
    records = {
        "baseline": record([0.99] * 3, [0.50] * 3),
        "full-retrain": record([0.90] * 3, [0.95] * 3, cpu=100),
    }
    old_only = comparison.recommend(records, CompareParams(new_traffic_share=0.0, tolerance=0.01))
    new_only = comparison.recommend(records, CompareParams(new_traffic_share=1.0, tolerance=0.01, max_forgetting=0.2))
    assert old_only.recommended == "baseline" and new_only.recommended == "full-retrain"


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
