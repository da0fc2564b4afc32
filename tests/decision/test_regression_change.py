"""What changed, for a regressor, on the friedman source's real data: the target's shift
(KS, mean and spread), read against the current model's own predictions on the old and the
new test rows (moved with them: the inputs moved; not: the rule did), covariate shift as for
a classifier, and concept drift read from the current model's RMSE on the new data against
the old. The current model is a linear regression trained on the old data (scikit-learn's,
for speed); its errors are measured, not made up."""

import contextlib
import io

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression

from retrainlab.base.tasks import CLASSIFICATION, REGRESSION
from retrainlab.config import CompareParams, DataParams
from retrainlab.data import NUMERIC, Feature, load_prepared, prepare
from retrainlab.decision import change, comparison, diagnostics
from retrainlab.decision.diagnosis import Diagnosis, TargetShift
from retrainlab.measure.record import Runs, StrategyRecord, summarize
from retrainlab.measure.task import measure_of

RMSE = measure_of(REGRESSION)
OLD, NEW = ("initial_train", "initial_test"), ("incremental_train", "incremental_test")


@pytest.fixture(scope="module")
def friedman(tmp_path_factory):
    """Per scenario: the diagnosis the compare step makes (with the old model's predictions
    on the two test sets, as plots/baseline-predictions.csv holds them), and the old model's
    mean RMSE on the old and on the new test sets (as the baseline's record holds them)."""
    found = {}
    for scenario in ("same_distribution", "covariate_shift", "concept_drift"):
        root = tmp_path_factory.mktemp(scenario)
        with contextlib.redirect_stdout(io.StringIO()):
            prepare(DataParams(source="friedman", scenario=scenario, incremental_fraction=0.3), root)
        data = load_prepared(root)
        assert data.summary.task == REGRESSION
        split = {s: data.sample(s, 50_000) for s in (*OLD, *NEW)}
        old = pd.concat([split[s] for s in OLD], ignore_index=True)
        new = pd.concat([split[s] for s in NEW], ignore_index=True)
        names = [f.name for f in data.features]
        model = LinearRegression().fit(split["initial_train"][names], split["initial_train"][data.label])
        predictions = pd.concat([pd.DataFrame({"test_set": test_set, "actual": split[s][data.label],
                                               "predicted": model.predict(split[s][names])})
                                 for test_set, s in (("old", "initial_test"), ("new", "incremental_test"))])
        diagnosis = diagnostics.diagnose(old, new, data.label, data.features, task=data.summary.task,
                                         predictions=predictions)

        def rmse(frame, names=names, model=model, label=data.label):
            return float(np.sqrt(np.mean((model.predict(frame[names]) - frame[label]) ** 2)))

        found[scenario] = diagnosis, rmse(split["initial_test"]), rmse(split["incremental_test"])
    return found


def test_a_regression_label_is_read_as_a_distribution_not_as_classes(friedman):
    same, _, _ = friedman["same_distribution"]
    assert same.new_classes == [] and same.vanished_classes == [] and same.label_shift_tv is None
    assert same.target.ks < change.KS_MOVED
    assert same.target.mean_new == pytest.approx(same.target.mean_old, abs=0.5)
    assert same.target.std_new == pytest.approx(same.target.std_old, rel=0.1)
    drift, _, _ = friedman["concept_drift"]  # x3's effect turned around: the targets fall by about 10
    assert drift.target.ks > 0.5 and drift.target.mean_old - drift.target.mean_new > 8
    assert drift.domain_auc < change.AUC_MOVED  # the inputs did not move
    shifted, _, _ = friedman["covariate_shift"]  # every input moved up by 0.3: larger, more spread targets
    assert shifted.target.ks > 0.3 and shifted.target.mean_new > shifted.target.mean_old + 4
    assert shifted.target.std_new > shifted.target.std_old and shifted.domain_auc > 0.9


def test_the_target_shift_is_its_labels_ks_mean_and_spread():
    old, new = pd.Series([1.0, 2.0, 3.0, 4.0]), pd.Series([3.0, 4.0, 5.0, 6.0])
    shift = diagnostics.target_shift(old, new)
    assert shift == TargetShift(ks=0.5, mean_old=2.5, mean_new=4.5, std_old=pytest.approx(1.2910, abs=1e-4),
                                std_new=pytest.approx(1.2910, abs=1e-4))
    assert diagnostics.target_shift(pd.Series([1.0]), pd.Series([2.0])).std_old == 0.0


def test_a_regression_diagnosis_reads_back_and_logs_the_targets_figures(friedman):
    drift, _, _ = friedman["concept_drift"]
    raw = drift.to_json()
    assert raw["label_shift_tv"] is None and raw["new_classes"] == []
    assert raw["target"] == {"ks": drift.target.ks, "mean_old": drift.target.mean_old,
                             "mean_new": drift.target.mean_new, "std_old": drift.target.std_old,
                             "std_new": drift.target.std_new, "predicted_ks": drift.target.predicted_ks,
                             "residual_ks": drift.target.residual_ks}
    assert Diagnosis.from_json(raw) == drift
    logged = drift.metrics()
    assert {f"diagnostics.target.{k}" for k in raw["target"]} <= set(logged)
    assert "diagnostics.label_shift_tv" not in logged and "diagnostics.n_new_classes" not in logged
    assert logged["diagnostics.domain_auc"] == drift.domain_auc
    assert drift.label_shift == f"target KS {drift.target.ks:.2f}"


def test_a_classifiers_diagnosis_has_no_target_and_keeps_its_shape():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(size=300), "y": rng.choice([0, 1], 300)})
    found = diagnostics.diagnose(frame[:200], frame[200:], "y", (Feature("x", NUMERIC),), task=CLASSIFICATION)
    assert found.target is None and "target" not in found.to_json()
    assert found.label_shift == f"label shift {found.label_shift_tv:.2f}"
    assert "diagnostics.n_new_classes" in found.metrics() and "diagnostics.label_shift_tv" in found.metrics()
    assert diagnostics.diagnose(frame[:200], frame[200:], "y", (Feature("x", NUMERIC),), task=None) == found


def test_concept_drift_is_an_error_that_rose_while_the_inputs_stayed(friedman):
    drift, rmse_old, rmse_new = friedman["concept_drift"]
    assert rmse_new > rmse_old * (1 + change.ERROR_RISE)
    changes = change.classify(drift, rmse_old, rmse_new, RMSE)
    assert [c.kind for c in changes] == [change.CONCEPT_DRIFT, change.LABEL_SHIFT]
    rise = f"{rmse_new / rmse_old - 1:+.0%}"
    assert changes[0].evidence == (
        f"the inputs did not move (domain AUC {drift.domain_auc:.2f}), yet the current model has RMSE "
        f"{rmse_new:.4g} on new rows against {rmse_old:.4g} on old ones ({rise}), in the label's units: the old "
        "rule no longer holds")
    assert changes[1].evidence.startswith(f"the target's distribution moved: KS {drift.target.ks:.2f} between the "
                                          f"old and the new labels; mean {drift.target.mean_old:.4g} before, "
                                          f"{drift.target.mean_new:.4g} now; standard deviation")
    assert changes[1].calls_for.startswith("a cheap update that sees the new targets: incremental")
    # The rule turned on unmoved inputs: the old model's predictions stayed, its errors moved.
    assert drift.target.predicted_ks < change.KS_MOVED < drift.target.residual_ks
    assert changes[1].evidence.endswith("the inputs do not account for it")
    assert all(c.kind != change.NEW_CLASSES for c in changes)


def test_moved_inputs_are_covariate_shift_with_the_error_in_the_labels_units(friedman):
    """Before: the target that moved with the inputs was reported as label shift too."""
    shifted, rmse_old, rmse_new = friedman["covariate_shift"]
    changes = change.classify(shifted, rmse_old, rmse_new, RMSE)
    assert [c.kind for c in changes] == [change.COVARIATE_SHIFT]
    assert changes[0].evidence.startswith(f"a classifier tells new inputs from old with AUC {shifted.domain_auc:.2f}")
    # A linear fit of a curved rule, good where it was trained, errs more where the inputs moved.
    assert f"; the current model has RMSE {rmse_new:.4g} on new rows against {rmse_old:.4g}" in changes[0].evidence
    # The same rule on moved inputs: the old model's predictions moved with the target, further than its errors.
    assert shifted.target.residual_ks < shifted.target.predicted_ks and shifted.target.predicted_ks > change.KS_MOVED
    assert changes[0].evidence.endswith("the same rule, read on moved inputs, not a label shift")
    assert "baseline" not in changes[0].calls_for


def test_the_same_distribution_is_more_of_the_same_in_the_label_units(friedman):
    same, rmse_old, rmse_new = friedman["same_distribution"]
    assert not change.fell(rmse_old, rmse_new, RMSE)  # sampling noise, not a rise
    changes = change.classify(same, rmse_old, rmse_new, RMSE)
    assert [c.kind for c in changes] == [change.MORE_OF_THE_SAME]
    assert changes[0].evidence == (f"the new data is {same.size_ratio:.2f}x the old, with the same inputs and "
                                   f"targets; the current model's RMSE is {rmse_new:.4g} on it against {rmse_old:.4g}")


def test_an_error_rises_beyond_noise_only_above_the_threshold():
    assert change.ERROR_RISE == 0.25
    assert not change.fell(2.0, 2.5, RMSE) and change.fell(2.0, 2.5001, RMSE)
    assert not change.fell(2.0, 1.0, RMSE)  # a smaller error is no fall
    assert not change.fell(None, 2.0, RMSE) and not change.fell(2.0, None, RMSE)
    assert change.fell(0.9, 0.84) and not change.fell(0.9, 0.86)  # a classifier's: accuracy points


def test_the_check_picks_the_lowest_error_on_the_new_data(friedman):
    drift = change.classify(*friedman["concept_drift"], RMSE)
    figures = {"full-retrain": {"rmse_new": 2.1, "rmse_old": 5.0}, "incremental": {"rmse_new": 1.2},
               "fine-tune": {"rmse_new": 1.45}}
    agrees = change.check(drift, "fine-tune", figures)  # the measure, from the figures' names
    assert agrees[0] == ("the option that learns the new rule best is incremental (rmse_new 1.2); fine-tune reaches "
                         "1.45: agrees")
    disagrees = change.check(drift, "full-retrain", figures, RMSE)[0]
    assert "best is incremental (rmse_new 1.2); full-retrain reaches 2.1: does not agree" in disagrees
    assert change.check(drift, "incremental", figures)[1] == "incremental is recommended: agrees"  # label shift


def regression_record(rmse_old, rmse_new, cpu=10.0):
    per_seed = {str(i): {"rmse_old": o, "rmse_new": n, "mae_old": o, "mae_new": n, "r2_all": 0.5, "forgetting": 0.0,
                         "cpu_seconds": cpu, "gpu_seconds": 0.0} for i, (o, n) in enumerate(zip(rmse_old, rmse_new))}
    means, ci95 = summarize(list(per_seed.values()))
    return StrategyRecord("any", 1, "cpu", {}, means, ci95, per_seed,
                          Runs("1", "r", "p", {}, "m", 1, 0))


def test_the_report_says_how_the_target_moved_not_which_classes_are_new(friedman):
    drift, _, _ = friedman["concept_drift"]
    records = {"baseline": regression_record([1.0] * 2, [6.0] * 2),
               "full-retrain": regression_record([1.1] * 2, [1.2] * 2, cpu=50)}
    policy = CompareParams(new_traffic_share=0.5, tolerance=0.01, max_forgetting=0.025)
    verdict = comparison.recommend(records, policy)
    text = str(comparison.markdown(comparison.table(records, verdict), verdict, drift, policy))
    t = drift.target
    assert (f"- Target: KS {t.ks:.3f} between the old and the new labels (0 = same distribution, 1 = disjoint); "
            f"mean {t.mean_old:.4g} before, {t.mean_new:.4g} now; standard deviation {t.std_old:.4g} before, "
            f"{t.std_new:.4g} now (the label's units).") in text
    assert "Classes only the new data has" not in text and "Label distribution moved" not in text
    assert f"- Inputs: a classifier tells new rows from old with AUC {drift.domain_auc:.3f}" in text
