"""The promotion gates: pure arithmetic on what was measured, at their edges.

The numbers at the edges are sums of powers of two, so that a difference exactly at the
tolerance or the ceiling is exact in floating point and `<=` can be told from `<`."""

import math

import pytest

from retrainlab.config import CompareParams
from retrainlab.registry.promotion import Constant, Gate, Measured, gates

POLICY = CompareParams(new_traffic_share=0.5, tolerance=0.01, max_forgetting=0.025)  # ceiling 0.05
FINITE = {"loss_old": 0.3, "loss_new": 0.4}
# A version that trained normally and beats always predicting the majority class.
SOUND = {"majority_target": 0.5, "losses": {"loss_old": 0.2, "loss_new": 0.3}}
# Tolerance 1/16; ceiling 1/16 / (1 - 1/2) = 1/8.
EXACT = CompareParams(new_traffic_share=0.5, tolerance=0.0625, max_forgetting=0.0625)
EPSILON = 1e-9


def failed(results) -> dict:
    return {g.name: g.detail for g in results if not g.passed}


def test_gates_pass_a_candidate_as_good_as_the_champion():
    result = gates(Measured("2", 0.95, 0.90, 0.925), Measured("1", 0.96, 0.89, 0.925), 0.0, POLICY, **SOUND)
    assert all(g.passed for g in result)
    assert [g.name for g in result] == ["loads and predicts", "finite loss", "better than the majority class",
                                        "not worse than the champion", "forgetting under the ceiling"]
    assert all(isinstance(g, Gate) for g in result)


def test_a_worse_candidate_fails_and_says_by_how_much():
    result = gates(Measured("2", 0.95, 0.70, 0.825), Measured("1", 0.96, 0.90, 0.930), 0.0, POLICY, **SOUND)
    assert failed(result) == {"not worse than the champion": "target 0.8250 against champion v1's 0.9300: worse "
                                                             "by 0.1050, more than the tolerance 0.0100"}


@pytest.mark.parametrize("below, passes", [(0.0625 - EPSILON, True), (0.0625, True), (0.0625 + EPSILON, False)])
def test_a_candidate_may_be_below_the_champion_by_the_tolerance_and_no_more(below, passes):
    champion = Measured("1", 0.875, 0.875, 0.875)
    candidate = Measured("2", 0.875, 0.875, 0.875 - below)
    result = {g.name: g for g in gates(candidate, champion, 0.0, EXACT, **SOUND)}
    gate = result["not worse than the champion"]
    assert gate.passed is passes and failed(result.values()).keys() <= {"not worse than the champion"}
    if passes:
        assert gate.detail.endswith(f"difference {-below:+.4f} within the tolerance 0.0625")
    else:
        assert gate.detail.endswith(f"worse by {below:.4f}, more than the tolerance 0.0625")


def test_a_better_candidate_passes_with_its_gain():
    result = gates(Measured("2", 0.875, 0.875, 0.9375), Measured("1", 0.875, 0.875, 0.875), 0.0, EXACT, **SOUND)
    assert failed(result) == {}
    assert result[3].detail == ("target 0.9375 against champion v1's 0.8750: difference +0.0625 within the "
                                "tolerance 0.0625")


@pytest.mark.parametrize("lost, passes", [(0.125 - EPSILON, True), (0.125, True), (0.125 + EPSILON, False)])
def test_forgetting_against_the_champion_may_reach_the_ceiling_and_no_more(lost, passes):
    champion = Measured("1", 0.875, 0.5, 0.6875)
    candidate = Measured("2", 0.875 - lost, 0.75, 0.8125 - lost / 2)
    # The recorded forgetting is not the one that counts when there is a champion.
    result = gates(candidate, champion, 0.5, EXACT, **SOUND)
    assert result[-1].name == "forgetting under the ceiling" and result[-1].passed is passes
    assert failed(result).keys() <= {"forgetting under the ceiling"}
    shown = f"forgetting {lost:.3f} against the ceiling 0.125"  # as the report says figures in words
    assert result[-1].detail == (shown if passes else f"{shown}: over by {lost - 0.125:.3f}")


@pytest.mark.parametrize("recorded, passes", [(0.125, True), (0.125 + EPSILON, False), (-0.25, True)])
def test_without_a_champion_the_recorded_forgetting_meets_the_ceiling(recorded, passes):
    result = gates(Measured("2", 0.5, 0.875, 0.6875), None, recorded, EXACT, **SOUND)
    assert result[3] == Gate("not worse than the champion", True, "there is no champion yet")
    assert result[-1].passed is passes and failed(result).keys() <= {"forgetting under the ceiling"}
    assert result[-1].detail.startswith(f"forgetting {recorded:.3f} against the ceiling 0.125")


def test_the_forgetting_ceiling_follows_the_traffic_share():
    # Three quarters new traffic: the old quarter may lose 1/16, so 1/4 of old accuracy may go.
    three_quarters = CompareParams(new_traffic_share=0.75, tolerance=0.0625, max_forgetting=0.0625)
    at = gates(Measured("2", 0.5, 0.875, 0.78125), None, 0.25, three_quarters, **SOUND)
    assert at[-1].passed and at[-1].detail == "forgetting 0.250 against the ceiling 0.250"
    over = gates(Measured("2", 0.5, 0.875, 0.78125), None, 0.25 + EPSILON, three_quarters, **SOUND)
    assert not over[-1].passed
    # All traffic new: no ceiling at all.
    all_new = CompareParams(new_traffic_share=1.0, tolerance=0.0625, max_forgetting=0.0625)
    anything = gates(Measured("2", 0.0, 0.875, 0.875), None, 1.0, all_new, **SOUND)
    assert anything[-1].passed and anything[-1].detail == "forgetting 1.000 against the ceiling none (all traffic is new)"


def test_forgetting_is_measured_against_the_champion_when_there_is_one():
    candidate = Measured("2", 0.80, 0.99, 0.895)
    with_champion = gates(candidate, Measured("1", 0.95, 0.80, 0.875), 0.0, POLICY, **SOUND)
    assert not with_champion[-1].passed and "over by 0.100" in with_champion[-1].detail
    without = gates(candidate, None, 0.02, POLICY, **SOUND)
    assert all(g.passed for g in without)


def test_a_model_no_better_than_always_predicting_the_majority_class_fails():
    candidate = Measured("2", 0.70, 0.60, 0.65)
    passed = gates(candidate, None, 0.0, POLICY, majority_target=0.64, losses=FINITE)
    assert failed(passed) == {}
    assert passed[2].detail == ("target 0.6500 against 0.6400 for always predicting the most frequent class of the "
                                "training data")
    refused = failed(gates(candidate, None, 0.0, POLICY, majority_target=0.65, losses=FINITE))
    assert refused == {"better than the majority class": "target 0.6500 against 0.6500 for always predicting the "
                       "most frequent class of the training data: no better than that"}


@pytest.mark.parametrize("losses", [
    {"loss_old": math.nan, "loss_new": 0.4},
    {"loss_old": 0.3, "loss_new": math.inf},
    {"loss_old": 0.3, "loss_new": None},  # not logged, or the run is gone
    {"loss_old": None, "loss_new": 0.4},
    {},
])
def test_a_loss_that_is_not_finite_or_missing_fails(losses):
    refused = failed(gates(Measured("2", 0.9, 0.9, 0.9), None, 0.0, POLICY, majority_target=0.5, losses=losses))
    assert set(refused) == {"finite loss"}
    assert refused["finite loss"].endswith(" recorded: training diverged or was not logged")


def test_the_finite_loss_gate_shows_each_loss():
    result = gates(Measured("2", 0.9, 0.9, 0.9), None, 0.0, POLICY, majority_target=0.5, losses=FINITE)
    assert result[0] == Gate("loads and predicts", True, "version 2 predicted every test row")
    assert result[1] == Gate("finite loss", True, "loss_old 0.3000, loss_new 0.4000 recorded")
    missing = gates(Measured("2", 0.9, 0.9, 0.9), None, 0.0, POLICY, majority_target=0.5,
                    losses={"loss_old": None, "loss_new": 0.4})
    assert missing[1].detail == "loss_old missing, loss_new 0.4000 recorded: training diverged or was not logged"
    none = gates(Measured("2", 0.9, 0.9, 0.9), None, 0.0, POLICY, majority_target=0.5, losses={})
    assert none[1].detail == "no loss recorded: training diverged or was not logged"


REGRESSION = {"losses": {"rmse_old": 2.0, "rmse_new": 3.0}}


def regressor(version, rmse_old, rmse_new, mae_target=1.0):
    return Measured(version, rmse_old, rmse_new, (rmse_old + rmse_new) / 2, "rmse", mae_target)


def test_a_regressor_beats_the_mean_on_rmse_and_the_median_on_mae_in_its_units():
    constants = (Constant("better than predicting the mean", 4.0, "always predicting the training mean (10)"),
                 Constant("better than predicting the median", 2.5, "always predicting the training median (9)",
                          "mae_target"))
    result = gates(regressor("2", 2.0, 4.0, mae_target=2.5), None, 0.0, POLICY, constants=constants, **REGRESSION)
    assert [g.name for g in result] == ["loads and predicts", "finite loss", "better than predicting the mean",
                                        "better than predicting the median", "not worse than the champion",
                                        "forgetting under the ceiling"]
    # RMSE target 3 < 4 passes; MAE target 2.5 is not below the median's 2.5: it fails.
    assert failed(result) == {"better than predicting the median": "MAE target 2.5 against 2.5 for always predicting "
                                                                   "the training median (9): no better than that"}


def test_a_regressors_tolerance_and_ceiling_are_shares_of_the_champions_error():
    """The champion's target 4 makes the tolerance 0.01 x 4 = 0.04; its rmse_old 2 makes the
    ceiling 0.025 x 2 / 0.5 = 0.1, in the label's units."""
    champion = regressor("1", 2.0, 6.0)
    within = gates(regressor("2", 2.09, 5.98), champion, 0.0, POLICY, **REGRESSION)  # target 4.035, forgot 0.09
    assert failed(within) == {}
    worse = gates(regressor("3", 2.2, 5.9), champion, 0.0, POLICY, **REGRESSION)  # target 4.05, forgot 0.2
    assert failed(worse) == {
        "not worse than the champion": "target 4.05 against champion v1's 4: worse by 0.05, more than the tolerance "
                                       "0.04",
        "forgetting under the ceiling": "forgetting 0.2 against the ceiling 0.1: over by 0.1",
    }


def test_a_regressor_without_a_champion_reads_its_recorded_forgetting_against_its_starting_error():
    # It started from rmse_old 2.5 - 0.5 = 2.0: ceiling 0.1; recorded forgetting 0.5 is over.
    result = gates(regressor("2", 2.5, 3.0), None, 0.5, POLICY, **REGRESSION)
    assert failed(result) == {"forgetting under the ceiling": "forgetting 0.5 against the ceiling 0.1: over by 0.4"}
    nan = gates(regressor("2", 2.0, 3.0), None, 0.0, POLICY, losses={"rmse_old": math.nan, "rmse_new": 3.0})
    assert "finite loss" in failed(nan)


def test_without_a_champion_the_ceiling_is_the_reports_and_reads_as_the_report_says_it():
    """The comparison's ceiling is a share of the baseline's mean error over every seed
    (2.0745 here); the registered seed started from its own (2.0). The gate applies the one the
    comparison recorded on the version, and says it as the report does: one figure, one text."""
    from retrainlab.decision import comparison
    from retrainlab.measure.task import measure_of

    report_ceiling = comparison.forgetting_ceiling(POLICY, 2.0745)  # 0.103725
    said = comparison.ceiling_text(report_ceiling, measure_of("regression"))
    assert said == "0.104"
    result = gates(regressor("2", 2.1, 3.0), None, 0.1, POLICY, ceiling=report_ceiling, **REGRESSION)
    assert result[-1] == Gate("forgetting under the ceiling", True, f"forgetting 0.1 against the ceiling {said}")
    over = gates(regressor("2", 2.2, 3.0), None, 0.2, POLICY, ceiling=report_ceiling, **REGRESSION)
    assert over[-1].detail == f"forgetting 0.2 against the ceiling {said}: over by 0.0963"
    # A champion's own error is the scale when there is one, whatever the comparison recorded.
    champion = gates(regressor("2", 2.05, 3.0), regressor("1", 2.0, 6.0), 0.0, POLICY, ceiling=report_ceiling,
                     **REGRESSION)
    assert champion[-1].detail == "forgetting 0.05 against the ceiling 0.1"


def test_the_losses_the_gate_reads_are_the_tasks():
    from retrainlab.measure.task import measure_of
    from retrainlab.registry.promotion import RECORDED_LOSSES, recorded_loss_names

    assert RECORDED_LOSSES == ("loss_old", "loss_new")
    assert recorded_loss_names(measure_of("regression")) == ("rmse_old", "rmse_new")
