"""What changed, classified on constructed diagnostics: one case per kind, and the check
of the measured answer against what each kind usually calls for."""

import pandas as pd
import pytest

from retrainlab.base import kinds
from retrainlab.base.tasks import REGRESSION
from retrainlab.decision import change, diagnostics
from retrainlab.decision.diagnosis import CategoryShift, Diagnosis, TargetShift
from retrainlab.measure.task import measure_of
from retrainlab.strategies import BASELINE, CATALOGUE


def diagnosis(**changes):
    base = {"new_classes": [], "domain_auc": 0.5, "psi_max": 0.05, "label_shift_tv": 0.02, "size_ratio": 0.3}
    return Diagnosis(rows_old=100, rows_new=30, vanished_classes=[], psi_mean=0.05, top_shifted_features=(),
                     **base | changes)


@pytest.mark.parametrize(
    "found, acc, kinds, evidence",
    [
        (diagnosis(size_ratio=0.02), (0.9, 0.9), [change.NOTHING], "0.02x the old"),
        (diagnosis(size_ratio=0.3), (0.9, 0.89), [change.MORE_OF_THE_SAME], "0.30x the old"),
        (diagnosis(domain_auc=0.8, psi_max=0.6), (0.9, 0.88), [change.COVARIATE_SHIFT], "AUC 0.80"),
        (diagnosis(label_shift_tv=0.3), (0.9, 0.88), [change.LABEL_SHIFT], "moved by 0.30"),
        (diagnosis(), (0.997, 0.467), [change.CONCEPT_DRIFT], "wrong on 53% of new rows against 0% of old"),
        (diagnosis(new_classes=[7, 8, 9], label_shift_tv=0.6), (0.99, 0.37), [change.NEW_CLASSES], "7, 8, 9"),
        (diagnosis(new_classes=["x"], domain_auc=0.9), (0.99, 0.5), [change.NEW_CLASSES, change.COVARIATE_SHIFT],
         "classes only the new data has: x"),
    ],
)
def test_each_kind_is_recognised_with_its_evidence(found, acc, kinds, evidence):
    changes = change.classify(found, *acc)
    assert [c.kind for c in changes] == kinds
    assert evidence in changes[0].evidence
    assert all(c.calls_for for c in changes)


def test_a_fall_with_moved_inputs_is_covariate_shift_not_concept_drift():
    changes = change.classify(diagnosis(domain_auc=0.9), 0.95, 0.6)
    assert [c.kind for c in changes] == [change.COVARIATE_SHIFT]
    assert "loses 0.35 of accuracy" in changes[0].evidence


def test_the_check_says_whether_the_measurement_agrees():
    drift = change.classify(diagnosis(), 0.997, 0.467)
    figures = {"full-retrain": {"acc_new": 0.519}, "incremental": {"acc_new": 0.756}}
    assert change.check(drift, "incremental", figures)[0].endswith("agrees")
    disagrees = change.check(drift, "full-retrain", figures)[0]
    assert "learns the new rule best is incremental (acc_new 0.756)" in disagrees and "does not agree" in disagrees
    same = change.classify(diagnosis(size_ratio=0.02), 0.9, 0.9)
    assert change.check(same, "full-retrain", figures)[0] == "full-retrain is recommended: does not agree"


def test_inputs_that_could_not_be_compared_are_never_evidence():
    """Before: one new row gave 'AUC nan' as the evidence of a covariate shift (its PSI, over one row, was large)."""
    changes = change.classify(diagnosis(domain_auc=float("nan"), psi_max=5.0), 0.9, 0.5)
    assert [c.kind for c in changes] == [change.NOTHING]
    assert "too few new rows to tell whether the inputs moved" in changes[0].evidence
    assert not any("nan" in c.evidence for c in changes)


RMSE = measure_of(REGRESSION)


def regression(predicted_ks=None, residual_ks=None, **changes):
    """A regressor's diagnosis whose target moved as the friedman covariate-shift demo's did
    (KS 0.48, mean 14.4 to 20.9); the current model's predictions and errors as given."""
    target = TargetShift(ks=0.48, mean_old=14.4, mean_new=20.9, std_old=4.9, std_new=5.6,
                         predicted_ks=predicted_ks, residual_ks=residual_ks)
    return diagnosis(label_shift_tv=None, target=target, **changes)


def test_a_regression_target_that_moved_with_the_models_predictions_is_covariate_shift_not_label_shift():
    """Before: the friedman covariate-shift demo (same rule, moved inputs) read as label shift too,
    which listed baseline among 'a cheap update that sees the new targets' and disagreed with
    the measured recommendation."""
    changes = change.classify(regression(0.66, 0.28, domain_auc=0.97, psi_max=2.1), 1.3, 4.5, RMSE)
    assert [c.kind for c in changes] == [change.COVARIATE_SHIFT]
    assert ("the target moved with them (KS 0.48 between the old and the new labels; mean 14.4 before, 20.9 now; "
            "standard deviation 4.9 before, 5.6 now) and the current model's predictions on the new test rows moved "
            "by KS 0.66 from the old ones, its errors by KS 0.28: the same rule, read on moved inputs, not a label "
            "shift") in changes[0].evidence
    figures = {"shrink-perturb": {"rmse_new": 2.9}, "full-retrain": {"rmse_new": 3.0}}
    assert change.check(changes, "shrink-perturb", figures) == ["shrink-perturb is recommended: agrees"]


def test_predictions_that_moved_with_the_target_are_moved_inputs_even_where_the_domain_auc_is_low():
    changes = change.classify(regression(0.5, 0.1, domain_auc=0.6, psi_max=0.1), 1.3, 4.5, RMSE)
    assert [c.kind for c in changes] == [change.COVARIATE_SHIFT]  # not concept drift: the rule is the same
    assert changes[0].evidence.startswith("the inputs moved where the current model reads them, though a classifier "
                                          "tells new inputs from old with AUC 0.60 only (largest feature PSI 0.10)")


@pytest.mark.parametrize("inputs, errors, kinds", [
    # The rule turned on unmoved inputs: the predictions stay, the errors move.
    ({}, (0.05, 0.88), [change.CONCEPT_DRIFT, change.LABEL_SHIFT]),
    # Inputs moved and the rule turned: the errors move further than the predictions.
    ({"domain_auc": 0.95, "psi_max": 2.0}, (0.65, 0.99), [change.COVARIATE_SHIFT, change.LABEL_SHIFT]),
    # The predictions moved no further than sampling would: the inputs do not account for the target.
    ({"domain_auc": 0.95, "psi_max": 2.0}, (0.10, 0.05), [change.COVARIATE_SHIFT, change.LABEL_SHIFT]),
])
def test_a_target_that_moved_with_the_models_errors_is_label_shift(inputs, errors, kinds):
    changes = change.classify(regression(*errors, **inputs), 1.3, 11.0, RMSE)
    assert [c.kind for c in changes] == kinds
    assert changes[-1].evidence.endswith(f"moved by KS {errors[0]:.2f} from the old ones, its errors by KS "
                                         f"{errors[1]:.2f}: the inputs do not account for it")
    assert "not a label shift" not in changes[0].evidence


def test_a_target_that_moved_without_the_models_predictions_stays_label_shift():
    changes = change.classify(regression(domain_auc=0.97, psi_max=2.1), 1.3, 4.5, RMSE)
    assert [c.kind for c in changes] == [change.COVARIATE_SHIFT, change.LABEL_SHIFT]
    assert changes[1].evidence.endswith("standard deviation 4.9 before, 5.6 now")


def test_the_predictions_and_errors_ks_are_read_from_the_old_and_new_test_rows():
    old, new = pd.Series([1.0, 2.0, 3.0, 4.0]), pd.Series([3.0, 4.0, 5.0, 6.0])
    rows = pd.DataFrame({"test_set": ["old"] * 4 + ["new"] * 4, "actual": [*old, *new],
                         "predicted": [*(old + 0.5), *(new + 0.5)]})  # the same error: the inputs moved
    shift = diagnostics.target_shift(old, new, rows)
    assert (shift.ks, shift.predicted_ks, shift.residual_ks) == (0.5, 0.5, 0.0)
    assert TargetShift.from_json(shift.to_json()) == shift and shift.to_json()["residual_ks"] == 0.0
    assert "predicted_ks" not in diagnostics.target_shift(old, new).to_json()
    assert diagnostics.target_shift(old, new, rows[rows["test_set"] == "old"]) == diagnostics.target_shift(old, new)


@pytest.mark.parametrize("kind", kinds.DECLARED)
def test_the_updates_a_kind_calls_for_are_the_declarations_and_never_the_baseline(kind):
    """Before: 'a cheap update that sees the new targets: baseline, incremental, replay or distill'."""
    calls_for = change.Change(kind, "").calls_for
    updates, _, left = calls_for.partition(f"; or {change.LEAVE}: ")
    declared = [name for name, s in CATALOGUE.items() if kind in s.suits and name != BASELINE]
    assert change.updates_for(kind) == declared and BASELINE not in change.updates_for(kind)
    if declared:
        assert updates.rsplit(": ", 1)[1].replace(" or ", ", ").split(", ") == declared
    assert (BASELINE in calls_for) == (kind in CATALOGUE[BASELINE].suits)
    if kind in CATALOGUE[BASELINE].suits:
        assert left == BASELINE or calls_for == f"{change.LEAVE}: {BASELINE}"


def test_a_moved_target_calls_for_the_updates_that_see_it_and_names_leaving_it_apart():
    target = change.Change(change.LABEL_SHIFT, f"{change.TARGET_MOVED}: KS 0.48").calls_for
    assert target == f"{change.TARGET_CALLS_FOR}: incremental, replay or distill; or {change.LEAVE}: {BASELINE}"


@pytest.mark.parametrize("unseen, found", [(change.UNSEEN_MUCH, True), (change.UNSEEN_MUCH - 0.01, False)])
def test_new_categories_are_a_change_from_the_threshold_up(unseen, found):
    shift = CategoryShift("item_id", unseen_rows=unseen, new_values=1234, old_values=20000)
    changes = change.classify(diagnosis(categories=(shift,)), 0.9, 0.89)
    new = [c for c in changes if c.kind == kinds.NEW_CATEGORIES]
    assert bool(new) == found and (kinds.MORE_OF_THE_SAME in [c.kind for c in changes]) != found
    if found:
        assert new[0].evidence == (f"{unseen:.0%} of the new rows hold a value of column 'item_id' the old data does "
                                   "not: 1,234 new values, against 20,000 in the old data")


def test_new_categories_call_for_the_options_that_read_new_values():
    calls_for = change.Change(kinds.NEW_CATEGORIES, "").calls_for
    assert calls_for == ("reading the new values: lookups made anew, or grown (model.grow_vocabulary): full-retrain, "
                         "incremental, replay or shrink-perturb")
