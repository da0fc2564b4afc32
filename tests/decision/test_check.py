"""The check's pure core: its intervals, the label-free estimate, the labels needed and the
verdict, each rule on its own."""

import dataclasses

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import f1_score

from retrainlab.config import CompareParams
from retrainlab.decision import check
from retrainlab.decision.diagnosis import Diagnosis
from retrainlab.measure.task import Scoring, measure_of

ACC, RMSE = measure_of("classification"), measure_of("regression")
POLICY = CompareParams()  # tolerance 0.01, new_traffic_share 0.5


def diagnosis(auc=0.5, psi=0.0) -> Diagnosis:
    return Diagnosis(rows_old=100, rows_new=50, size_ratio=0.5, new_classes=[], vanished_classes=[],
                     label_shift_tv=None, psi_max=psi, psi_mean=psi, domain_auc=auc, top_shifted_features=())


def test_accuracy_has_the_exact_interval():
    correct = np.array([True] * 90 + [False] * 10)
    found = check.accuracy(correct)
    assert found.value == 0.9
    assert found.low == pytest.approx(stats.beta.ppf(0.025, 90, 11))
    assert found.high == pytest.approx(stats.beta.ppf(0.975, 91, 10))
    assert check.accuracy(np.ones(20, bool)).high == 1.0 and check.accuracy(np.zeros(20, bool)).low == 0.0


def test_rmse_interval_holds_the_figure():
    rng = np.random.default_rng(0)
    actual = rng.normal(size=400)
    found = check.rmse(actual + rng.normal(scale=2.0, size=400), actual)
    assert found.low < found.value < found.high and found.value == pytest.approx(2.0, abs=0.2)


def separable(rows: int, right: float, rng) -> tuple[np.ndarray, np.ndarray]:
    """Two-class probabilities of a model sure of the rows it gets right (confidence 0.8 to
    1.0) and unsure of those it gets wrong (0.5 to 0.7); `right` is the share it gets right."""
    correct = rng.random(rows) < right
    conf = np.where(correct, rng.uniform(0.8, 1.0, rows), rng.uniform(0.5, 0.7, rows))
    return np.column_stack([conf, 1 - conf]), correct


def test_atc_estimates_the_accuracy_when_the_mix_of_easy_and_hard_rows_moves():
    rng = np.random.default_rng(1)
    old_probs, old_correct = separable(2000, 0.9, rng)
    new_probs, new_correct = separable(2000, 0.6, rng)  # more of the rows it gets wrong
    found = check.atc(check.confidence(old_probs), old_correct, check.confidence(new_probs))
    assert abs(found.value - new_correct.mean()) < 0.02
    assert found.low <= new_correct.mean() <= found.high


def test_labels_needed_follow_the_normal_approximation():
    at_half = int(np.ceil(1.959964**2 * 0.25 / 0.025**2))
    assert check.labels_needed(ACC, check.Estimate(0.5, 0.45, 0.55), 0.05) == at_half
    precise = check.Estimate(0.9, 0.88, 0.92)
    assert check.labels_needed(ACC, precise, 0.05) == int(np.ceil(1.959964**2 * 0.88 * 0.12 / 0.025**2))
    assert check.labels_needed(ACC, precise, 0.05) < check.labels_needed(ACC, None, 0.05) == at_half
    assert check.labels_needed(ACC, precise, 0.02) > check.labels_needed(ACC, precise, 0.05)
    assert check.labels_needed(RMSE, check.Estimate(1.0, 0.9, 1.1), 0.05) == int(np.ceil((1.959964 / 0.025) ** 2 / 2))


def test_one_labelled_row_needs_as_many_rows_as_no_estimate_and_gives_no_verdict_of_no_action():
    """Before: one correct row gave accuracy 1, "labelled new rows needed: 1" (p(1-p) at the
    point estimate) and "no action" though the interval's high end was 19 tolerances."""
    one = check.accuracy(np.array([True]))
    assert (one.low, one.high) == (pytest.approx(0.025), 1.0)
    assert check.labels_needed(ACC, one) == check.labels_needed(ACC, None)
    verdict = decide(one)
    assert verdict.verdict == check.TOO_FEW and verdict.exit_status == 5
    assert "too few labelled new rows to tell" in verdict.reasons[-1]
    # A regressor's error from fewer than MIN_BOOTSTRAP_ROWS rows has no interval (before: 2.057 to 2.057).
    for figure in (check.rmse(np.array([1.0]), np.array([3.057])),
                   check.relative_error(np.array([1.0, 2.0]), np.array([3.0, 2.5]))):
        assert (figure.low, figure.high) == (0.0, np.inf)
    assert decide(check.relative_error(np.array([1.0]), np.array([3.0])), reference=0.3,
                  measure=RMSE).verdict == check.TOO_FEW
    # Enough rows, and a model that kept its figure: no action, as before.
    assert decide(check.accuracy(np.array([True] * 450 + [False] * 50))).verdict == check.NO_ACTION


def decide(current, reference=0.9, measure=ACC, unseen=0.0, cost=None, point_value=None, policy=POLICY, diag=None,
           forecasts=(), underfit=None):
    return check.decide(measure, reference, current, policy, diag or diagnosis(), unseen, cost, point_value,
                        forecasts, underfit)


def test_a_loss_within_the_tolerance_is_no_action():
    verdict = decide(check.Estimate(0.89, 0.85, 0.93))  # 0.5 x 0.01 = 0.005 on the traffic
    assert verdict.verdict == check.NO_ACTION and verdict.exit_status == 0
    assert verdict.loss.value == pytest.approx(0.005)
    assert verdict.loss.low == pytest.approx(-0.015) and verdict.loss.high == pytest.approx(0.025)


def test_a_loss_beyond_the_tolerance_calls_for_a_comparison():
    verdict = decide(check.Estimate(0.85, 0.82, 0.88))
    assert verdict.verdict == check.COMPARE and verdict.exit_status == 3
    assert "point_value is not set" in verdict.reasons[-1]


def test_a_loss_far_beyond_the_tolerance_even_at_its_low_end_is_urgent():
    assert decide(check.Estimate(0.7, 0.75, 0.78)).verdict == check.URGENT  # low end 0.06 > 5 x 0.01
    assert decide(check.Estimate(0.7, 0.62, 0.81)).verdict == check.COMPARE  # low end 0.045: not certain
    assert decide(check.Estimate(0.7, 0.62, 0.81)).exit_status == 3


def test_classes_the_model_cannot_predict_are_urgent():
    verdict = decide(check.Estimate(0.9, 0.88, 0.92), unseen=0.2)
    assert verdict.verdict == check.URGENT and verdict.exit_status == 4
    assert "20.0% of the labelled new rows" in verdict.reasons[0]
    assert decide(check.Estimate(0.9, 0.88, 0.92), unseen=0.005).verdict == check.NO_ACTION


def test_the_loss_is_weighed_against_the_last_comparisons_cost():
    cost = check.Cost("cpu_seconds", 100.0, 21)
    # 0.05 on the traffic is 5 points; at 10 CPU-seconds a point: 50 < 100, not worth it.
    cheap = decide(check.Estimate(0.8, 0.78, 0.82), cost=cost, point_value=10)
    assert cheap.verdict == check.NO_ACTION and cheap.gain == pytest.approx(50)
    assert "not worth a comparison" in cheap.reasons[-1] and "100 cpu_seconds" in cheap.reasons[-1]
    dear = decide(check.Estimate(0.8, 0.78, 0.82), cost=cost, point_value=30)
    assert dear.verdict == check.COMPARE and dear.gain == pytest.approx(150)


def test_a_regressor_is_measured_in_its_error_and_without_labels_reads_its_inputs():
    worse = decide(check.Estimate(1.04, 1.02, 1.06), reference=1.0, measure=RMSE)
    assert worse.verdict == check.COMPARE  # 0.5 x 0.04 = 0.02 against 1% of 1.0
    assert worse.loss.value == pytest.approx(0.02) and worse.tolerance == pytest.approx(0.01)
    noisy = decide(check.Estimate(1.04, 0.99, 1.08), reference=1.0, measure=RMSE)  # the interval reaches a gain
    assert noisy.verdict == check.NO_ACTION and "cannot tell it from noise" in noisy.reasons[-1]
    broken = decide(check.Estimate(1.2, 1.15, 1.25), reference=1.0, measure=RMSE)
    assert broken.verdict == check.URGENT  # even 0.5 x 0.15 is more than 5 x 0.01
    same = decide(check.Estimate(1.001, 0.95, 1.05), reference=1.0, measure=RMSE)
    assert same.verdict == check.NO_ACTION
    assert decide(None, reference=1.0, measure=RMSE, diag=diagnosis(auc=0.9)).verdict == check.COMPARE
    quiet = decide(None, reference=1.0, measure=RMSE, diag=diagnosis(auc=0.52, psi=0.01))
    assert quiet.verdict == check.NO_ACTION and "no label-free estimate" in quiet.reasons[0]


def test_the_traffic_share_scales_the_loss():
    share = dataclasses.replace(POLICY, new_traffic_share=1.0)
    assert decide(check.Estimate(0.895, 0.88, 0.9), policy=share).verdict == check.NO_ACTION
    assert decide(check.Estimate(0.88, 0.87, 0.89), policy=share).verdict == check.COMPARE


def test_the_comparisons_cost_sums_every_seed_of_every_record():
    records = {"baseline": {"per_seed": {"0": {"cpu_seconds": 2.0}, "1": {"cpu_seconds": 3.0}}},
               "replay": {"per_seed": {"0": {"cpu_seconds": 5.0}, "1": {"cpu_seconds": float("nan")}}}}
    assert check.comparison_cost(records, "cpu_seconds") == check.Cost("cpu_seconds", 10.0, 3)
    assert check.comparison_cost({}, "cpu_seconds") is None


def test_unseen_compares_labels_as_text():
    assert check.unseen([1, 2, "3", 7], [1, 2, 3]) == 0.25
    assert check.unseen([], [1]) == 0.0


def test_the_relative_error_reads_the_same_in_any_unit_and_for_labels_that_spread_wider():
    rng = np.random.default_rng(2)
    actual = rng.normal(0, 1.0, 500)
    predicted = actual + rng.normal(0, 0.5, 500)
    base = check.relative_error(predicted, actual)
    assert base.low < base.value < base.high and base.value == pytest.approx(0.5, abs=0.05)
    cents = check.relative_error(predicted * 100, actual * 100)
    assert cents.value == pytest.approx(base.value) and cents.low == pytest.approx(base.low)
    # The same error on labels that spread twice as wide: RMSE the same, relative error halved.
    wide = actual * 2
    assert check.rmse(wide + (predicted - actual), wide).value == pytest.approx(check.rmse(predicted, actual).value)
    assert check.relative_error(wide + (predicted - actual), wide).value == pytest.approx(base.value / 2, rel=0.05)
    assert check.relative_error(actual, actual).value == 0.0
    assert check.relative_error(np.ones(5), np.full(5, 2.0)).value == np.inf  # labels of one value: no spread


def test_the_paired_gain_is_the_targets_difference_on_the_same_rows_with_the_rows_noise():
    kept_old, trained_old = np.ones(200), np.ones(200)  # both right on every old row
    kept_new = np.r_[np.ones(50), np.zeros(150)]  # 25% on the new rows
    trained_new = np.r_[np.ones(150), np.zeros(50)]  # 75%
    gain = check.paired_gain(ACC, 0.5, (kept_old, trained_old), (kept_new, trained_new))
    assert gain.value == pytest.approx(0.25) and 0.15 < gain.low < 0.25 < gain.high < 0.35
    same = check.paired_gain(ACC, 0.5, (kept_old, kept_old), (kept_new, kept_new))
    assert (same.value, same.low, same.high) == (0.0, 0.0, 0.0)
    wider = check.paired_gain(ACC, 0.5, (kept_old, trained_old), (kept_new, trained_new), seed_spread=0.05)
    assert wider.value == gain.value and wider.low < gain.low and wider.high > gain.high
    # A regressor's: squared errors, the gain is error removed, in the label's units.
    removed = check.paired_gain(RMSE, 1.0, (np.ones(10), np.ones(10)), (np.full(40, 4.0), np.ones(40)))
    assert removed.value == pytest.approx(1.0)  # RMSE 2 to 1 on the new rows
    assert check.kept_target(RMSE, 0.5, np.ones(10), np.full(40, 4.0)) == pytest.approx(1.5)


def test_a_model_still_improving_over_its_last_quarter_is_underfitted():
    rising = list(np.linspace(0.4, 0.7, 30))
    said = check.underfitted(rising, ACC, 0.01)
    assert said and "still improving" in said and "over epochs 23 to 30" in said
    assert check.underfitted([0.5] * 10 + [0.9] * 20, ACC, 0.01) is None  # converged long before the end
    # A held-out figure on a few hundred rows moves a point or two from epoch to epoch: noise, not a rise.
    rng = np.random.default_rng(3)
    assert check.underfitted(list(0.85 + rng.normal(0, 0.01, 30)), ACC, 0.01) is None
    assert check.underfitted(list(np.linspace(0.4, 0.7, 30) + rng.normal(0, 0.01, 30)), ACC, 0.01) is not None
    assert check.underfitted(list(np.linspace(0.4, 0.7, 6)), ACC, 0.01) is None  # too short to tell
    assert check.underfitted(list(np.linspace(2.0, 1.0, 20)), RMSE, 0.01) is not None  # an error falling
    assert check.underfitted(list(np.linspace(2.0, 1.99, 20)), RMSE, 0.01) is None  # within the tolerance


def forecast(gain, option="full-retrain", kept=0.9):
    return check.Forecast(option, gain, kept, "trained once", {"cpu_seconds": 1.0})


def test_a_forecast_gain_beyond_the_tolerance_and_the_noise_calls_for_a_comparison():
    same = check.Estimate(0.9, 0.88, 0.92)  # no loss at all
    found = decide(same, forecasts=[
        forecast(check.Estimate(0.03, 0.01, 0.05)), forecast(check.Estimate(0.004, -0.01, 0.02), "incremental")])
    assert found.verdict == check.COMPARE and found.best.option == "full-retrain"
    assert any("forecast for full-retrain: +0.0300" in r for r in found.reasons)
    # Above zero at the one-sided 80% bound, though the 95% interval reaches below zero: a likely gain.
    likely = decide(same, forecasts=[forecast(check.Estimate(0.03, -0.002, 0.06))])
    assert likely.verdict == check.COMPARE
    noisy = decide(same, forecasts=[forecast(check.Estimate(0.02, -0.04, 0.08))])
    assert noisy.verdict == check.NO_ACTION and "cannot be told from noise" in noisy.reasons[-1]
    # The best forecast is noise; another option's smaller gain is likely: that one is weighed.
    other = decide(same, forecasts=[forecast(check.Estimate(0.03, -0.06, 0.12)),
                                    forecast(check.Estimate(0.025, 0.015, 0.035), "incremental")])
    assert other.verdict == check.COMPARE and other.best.option == "incremental"
    small = decide(same, forecasts=[forecast(check.Estimate(0.008, 0.004, 0.012))])
    assert small.verdict == check.NO_ACTION and "no option is forecast to gain" in small.reasons[-1]
    # Classes the model cannot predict stay urgent, whatever the forecast; so does a gain far beyond the tolerance.
    assert decide(same, unseen=0.3, forecasts=[forecast(check.Estimate(0.0, -0.01, 0.01))]).verdict == check.URGENT
    assert decide(same, forecasts=[forecast(check.Estimate(0.2, 0.12, 0.28))]).verdict == check.URGENT
    # New rows harder for any model: a large loss across the two sets, but no update would gain on them.
    harder = decide(check.Estimate(0.7, 0.65, 0.75), forecasts=[forecast(check.Estimate(-0.05, -0.1, 0.0))])
    assert harder.verdict == check.NO_ACTION and harder.loss.low > 5 * harder.tolerance


def test_a_forecast_gain_is_weighed_against_the_comparisons_cost():
    cost = check.Cost("cpu_seconds", 100.0, 21)
    gain = [forecast(check.Estimate(0.03, 0.02, 0.04))]  # 3 points
    cheap = decide(check.Estimate(0.9, 0.88, 0.92), cost=cost, point_value=10, forecasts=gain)
    assert cheap.verdict == check.NO_ACTION and cheap.gain == pytest.approx(30)
    assert decide(check.Estimate(0.9, 0.88, 0.92), cost=cost, point_value=50, forecasts=gain).verdict == check.COMPARE


def test_a_regressors_forecast_tolerance_is_a_share_of_its_own_target():
    same = check.Estimate(0.5, 0.45, 0.55)
    # Target RMSE 200 on the forecast's rows: the tolerance is 2, and 5 of error removed is beyond it.
    found = decide(same, reference=0.5, measure=RMSE, forecasts=[forecast(check.Estimate(5.0, 3.0, 7.0), kept=200.0)])
    assert found.verdict == check.COMPARE
    small = decide(same, reference=0.5, measure=RMSE, forecasts=[forecast(check.Estimate(1.5, 0.5, 2.5), kept=200.0)])
    assert small.verdict == check.NO_ACTION


def test_an_underfitted_model_without_a_forecast_calls_for_a_comparison():
    found = decide(check.Estimate(0.9, 0.85, 0.95), underfit="its held-out acc was still improving")
    assert found.verdict == check.COMPARE and "the model is underfitted" in found.reasons[1]


# --- a chosen measure (compare.metric) ------------------------------------------------------


def measure(metric, task="classification"):
    return measure_of(task, metric)


BINARY = Scoring(positive="yes", costs={"no": {"no": 0.0, "yes": 1.0}, "yes": {"no": 5.0, "yes": 0.0}})


def calibrated(rows: int, seed: int, a=0.6, b=1.5) -> tuple[np.ndarray, np.ndarray]:
    """A binary model's probabilities of "yes" (drawn from a beta) and labels drawn from them:
    its probabilities are calibrated by construction."""
    rng = np.random.default_rng(seed)
    yes = rng.beta(a, b, rows)
    return np.column_stack([1 - yes, yes]), np.where(rng.random(rows) < yes, "yes", "no")


@pytest.mark.parametrize("metric", ["f1", "precision", "recall", "balanced_accuracy", "cost"])
def test_cbpe_estimates_a_confusion_measure_from_calibrated_probabilities(metric):
    """Labels drawn from the model's own probabilities: the expected confusion matrix's F1 (and
    precision, recall, balanced accuracy, cost) is within a few points of the measured one."""
    m = measure(metric)
    for seed, shape in ((0, (0.6, 1.5)), (1, (2.0, 2.0)), (2, (0.4, 0.4))):
        probs, labels = calibrated(4000, seed, *shape)
        measured = check.Outputs.of_classifier(m, BINARY, probs, ["no", "yes"], labels).value
        found = check.cbpe(m, BINARY, probs, ["no", "yes"])
        assert found.low < found.value < found.high
        assert abs(found.value - measured) < (0.1 if metric == "cost" else 0.03), (seed, found, measured)
    if metric == "f1":  # scikit-learn's own figure on the drawn labels, at the 0.5 threshold
        assert measured == pytest.approx(f1_score(labels, np.where(probs[:, 1] >= 0.5, "yes", "no"), pos_label="yes"))


def test_cbpe_on_an_overconfident_model_is_set_right_by_calibrating_on_the_old_test_set():
    """The model says 0.9 where 6 in 10 are right (its probabilities pushed to the extremes):
    its own expected confusion overstates F1; calibrated on labelled reference rows (isotonic,
    as NannyML's CBPE does), the estimate comes within a few points of the measured F1."""
    m = measure("f1")

    def overconfident(rows, seed):
        probs, labels = calibrated(rows, seed, 2.0, 2.0)  # calibrated by construction
        yes = 1 / (1 + np.exp(-4 * np.log(probs[:, 1] / probs[:, 0])))  # then pushed to the extremes
        return np.column_stack([1 - yes, yes]), labels

    reference, reference_labels = overconfident(3000, 5)
    probs, labels = overconfident(3000, 6)
    measured = check.Outputs.of_classifier(m, BINARY, probs, ["no", "yes"], labels).value
    raw = check.cbpe(m, BINARY, probs, ["no", "yes"]).value
    fixed = check.cbpe(m, BINARY, probs, ["no", "yes"],
                       expected_probs=check.calibrated(reference, reference_labels, ["no", "yes"], probs)).value
    assert abs(raw - measured) > 0.05 and abs(fixed - measured) < 0.03, (raw, fixed, measured)
    # Calibration keeps rows summing to 1, and the model's own predictions are not changed by it.
    adjusted = check.calibrated(reference, reference_labels, ["no", "yes"], probs)
    assert adjusted.sum(axis=1) == pytest.approx(np.ones(len(probs)))


def test_cbpes_expected_confusion_sums_each_rows_probabilities_into_its_predicted_column():
    probs = np.array([[0.9, 0.1], [0.3, 0.7], [0.6, 0.4], [0.2, 0.8]])
    predicted = np.array([0, 1, 0, 1])
    assert check.expected_confusion(probs, predicted, 2) == pytest.approx(np.array([[1.5, 0.5], [0.5, 1.5]]))
    # The threshold applies: at 0.35, the third row is predicted "yes" too.
    low = dataclasses.replace(BINARY, threshold=0.35)
    found = check.cbpe(measure("precision"), low, probs, ["no", "yes"])
    assert found.value == pytest.approx((0.7 + 0.4 + 0.8) / 3)


def test_a_chosen_measure_on_resamples_is_the_pipelines_figure_on_every_row():
    """The check's figure of resampled rows (`Outputs.figure`), at the rows themselves, is what
    the pipeline's Score or Errors computes, for every measure, with ties among the
    probabilities and, for a multiclass model, a class it has no output for."""
    rng = np.random.default_rng(5)
    for names, rules in ((["no", "yes"], dataclasses.replace(BINARY, threshold=0.4)), ([0, 1, 2], Scoring())):
        probs = rng.dirichlet(np.ones(len(names)), 600).round(2)
        probs /= probs.sum(axis=1, keepdims=True)
        labels = np.array([names[rng.choice(len(names), p=p)] for p in probs], dtype=object)
        if len(names) == 3:
            labels[:7] = 9  # a class the model has no output for
        for metric in ("accuracy", "f1", "precision", "recall", "balanced_accuracy", "log_loss", "roc_auc",
                       "average_precision", *(("cost",) if len(names) == 2 else ())):
            outputs = check.Outputs.of_classifier(measure(metric), rules, probs, names, labels)
            assert outputs.figure()[0] == pytest.approx(outputs.value, abs=1e-12), metric
            assert outputs.undefined() is None
    truth = rng.normal(5, 3, 500)
    guess = truth + rng.normal(0, 1, 500)
    for metric in ("rmse", "mae", "r2", "mape", "pinball", "cost"):
        outputs = check.Outputs.of_regressor(measure(metric, "regression"), Scoring(quantile=0.8, costs=2.5), guess,
                                             truth)
        assert outputs.figure()[0] == pytest.approx(outputs.value, rel=1e-12), metric
        found = check.interval(outputs)
        assert found.low < found.value < found.high


def test_the_forecasts_paired_gain_in_f1_is_the_difference_of_scikit_learns_f1():
    rng = np.random.default_rng(6)
    m = measure("f1")
    sets = {}
    for name, rows in (("old", 400), ("new", 300)):
        probs, labels = calibrated(rows, 10 + rows)
        better = np.clip(probs[:, 1] + np.where(labels == "yes", 0.15, -0.15) + rng.normal(0, 0.05, rows), 0, 1)
        sets[name] = (probs, np.column_stack([1 - better, better]), labels)
    outputs = {name: tuple(check.Outputs.of_classifier(m, BINARY, p, ["no", "yes"], labels) for p in (kept, trained))
               for name, (kept, trained, labels) in sets.items()}
    gain = check.paired_gain(m, 0.5, outputs["old"], outputs["new"])

    def f1(probs, labels):
        return f1_score(labels, np.where(probs[:, 1] >= 0.5, "yes", "no"), pos_label="yes")

    expected = sum(0.5 * (f1(trained, labels) - f1(kept, labels)) for kept, trained, labels in sets.values())
    assert gain.value == pytest.approx(expected) and 0 < gain.low < gain.value < gain.high
    kept = check.kept_target(m, 0.5, outputs["old"][0], outputs["new"][0])
    assert kept == pytest.approx(0.5 * f1(sets["old"][0], sets["old"][2]) + 0.5 * f1(sets["new"][0], sets["new"][2]))
    same = check.paired_gain(m, 0.5, (outputs["old"][0],) * 2, (outputs["new"][0],) * 2)
    assert (same.value, same.low, same.high) == (0.0, 0.0, 0.0)
    # A loss, lower is better: the gain is the log loss removed.
    loss = measure("log_loss")
    pairs = [tuple(check.Outputs.of_classifier(loss, BINARY, p, ["no", "yes"], labels) for p in (kept, trained))
             for kept, trained, labels in sets.values()]
    removed = check.paired_gain(loss, 1.0, *pairs)
    assert removed.value > 0 and removed.low > 0


def test_a_measure_undefined_on_the_rows_is_said_in_words():
    probs = np.array([[0.8, 0.2], [0.6, 0.4], [0.3, 0.7]])
    none_positive = np.array(["no", "no", "no"])
    for metric in ("recall", "f1", "roc_auc", "average_precision"):
        said = check.Outputs.of_classifier(measure(metric), BINARY, probs, ["no", "yes"], none_positive).undefined()
        assert said == "they hold no row of the positive class 'yes'", metric
    every = check.Outputs.of_classifier(measure("roc_auc"), BINARY, probs, ["no", "yes"], np.array(["yes"] * 3))
    assert "every one of them is of the positive class 'yes'" in every.undefined()
    never = check.Outputs.of_classifier(measure("precision"), BINARY, probs[:2], ["no", "yes"], np.array(["no", "yes"]))
    assert never.undefined() == "the model predicts the positive class 'yes' for none of them"
    assert check.cbpe_undefined(measure("precision"), BINARY, probs[:2], ["no", "yes"]) == never.undefined()
    one_class = check.Outputs.of_classifier(measure("roc_auc"), Scoring(), np.eye(3), [0, 1, 2], np.array([1, 1, 1]))
    assert one_class.undefined() == "they hold one class only: nothing to rank it against"
    flat = check.Outputs.of_regressor(measure("r2", "regression"), Scoring(), np.arange(4.0), np.full(4, 2.0))
    assert "their labels are all one value" in flat.undefined()
    zero = check.Outputs.of_regressor(measure("mape", "regression"), Scoring(), np.ones(3), np.array([0.0, 1.0, 2.0]))
    assert zero.undefined() == "1 of them have a label of 0, where a percentage error is undefined"
    assert check.Outputs.of_classifier(measure("f1"), BINARY, probs, ["no", "yes"],
                                       np.array(["no", "yes", "yes"])).undefined() is None


def test_a_chosen_measure_is_weighed_in_its_own_units_and_its_interval_is_said_to_be_a_bootstrap():
    f1 = measure("f1")
    fell = decide(check.Estimate(0.70, 0.66, 0.74), reference=0.8, measure=f1)
    assert fell.verdict == check.COMPARE and fell.loss.value == pytest.approx(0.05)
    assert "of F1 (95% bootstrap interval 0.0300 to 0.0700" in fell.reasons[0]
    # Log loss, lower is better: a rise is the loss, the tolerance a share of the old test set's figure.
    loss = measure("log_loss")
    rose = decide(check.Estimate(0.52, 0.51, 0.53), reference=0.5, measure=loss)
    assert rose.verdict == check.COMPARE and rose.loss.value == pytest.approx(0.01)
    assert rose.tolerance == pytest.approx(0.005) and "of log loss (95% bootstrap interval" in rose.reasons[0]
    assert decide(check.Estimate(0.45, 0.42, 0.48), reference=0.5, measure=loss).verdict == check.NO_ACTION
    assert decide(check.Estimate(0.6, 0.57, 0.63), reference=0.5, measure=loss).verdict == check.URGENT
    # R², higher is better, for a regressor: without labels its inputs are weighed, as for the RMSE.
    r2 = measure("r2", "regression")
    assert decide(check.Estimate(0.7, 0.66, 0.74), reference=0.8, measure=r2).verdict == check.COMPARE
    quiet = decide(None, reference=0.8, measure=r2, diag=diagnosis(auc=0.52, psi=0.01))
    assert quiet.verdict == check.NO_ACTION and "no label-free estimate" in quiet.reasons[0]
    # A gain in F1's target, weighed against the cost: 3 points at 10 per point.
    gain = [forecast(check.Estimate(0.03, 0.02, 0.04), kept=0.8)]
    found = decide(check.Estimate(0.8, 0.75, 0.85), reference=0.8, measure=f1, forecasts=gain,
                   cost=check.Cost("cpu_seconds", 100.0, 21), point_value=10)
    assert found.gain == pytest.approx(30) and "forecast for full-retrain: +0.0300 of target in F1" in found.reasons[1]


def test_labels_needed_for_a_chosen_measure_read_its_bootstrap_interval():
    f1 = measure("f1")
    # 400 labelled rows gave an interval 0.1 wide: a quarter as wide needs 16 times the rows.
    assert check.labels_needed(f1, check.Estimate(0.7, 0.65, 0.75), 0.025, rows=400) == 6400
    assert "bootstrap interval on the 400 labelled new rows" in check.labels_needed_for(
        f1, check.Estimate(0.7, 0.65, 0.75), 400)
    # No labelled rows (CBPE's estimate): accuracy's count at 0.5, and said so.
    assert check.labels_needed(f1, check.Estimate(0.7, 0.68, 0.72), 0.05) == check.labels_needed(ACC, None, 0.05)
    assert check.labels_needed_for(f1, check.Estimate(0.7, 0.68, 0.72), None).startswith("accuracy, at 0.5")
    # A relative measure's width is a share of its value, as the RMSE's.
    mae = measure("mae", "regression")
    assert check.labels_needed(mae, check.Estimate(2.0, 1.9, 2.1), 0.05, rows=100) == 400
