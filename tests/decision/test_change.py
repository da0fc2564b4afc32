"""What changed, classified on constructed diagnostics: one case per kind, and the check
of the measured answer against what each kind usually calls for."""

import pytest

from retrainlab.decision import change
from retrainlab.decision.diagnosis import Diagnosis


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
