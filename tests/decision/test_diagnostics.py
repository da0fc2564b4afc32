import numpy as np
import pandas as pd
import pytest

from retrainlab.data import CATEGORICAL, NUMERIC, Feature
from retrainlab.decision import diagnostics

FEATURES = (Feature("x", NUMERIC), Feature("colour", CATEGORICAL))


def frame(n, shift=0.0, colours=("red", "blue"), labels=(0, 1), seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"x": rng.normal(shift, 1, n), "colour": rng.choice(colours, n), "y": rng.choice(labels, n)})


def test_same_distribution_shows_no_shift():
    d = diagnostics.diagnose(frame(600), frame(300, seed=1), "y", FEATURES)
    assert d.size_ratio == 0.5 and d.new_classes == []
    assert d.label_shift_tv < 0.1 and d.psi_max < 0.1
    assert 0.35 < d.domain_auc < 0.65


def test_moved_inputs_show_in_psi_ks_and_domain_auc():
    d = diagnostics.diagnose(frame(600), frame(300, shift=2.0, seed=1), "y", FEATURES)
    top = d.top_shifted_features[0]
    assert top.feature == "x" and top.psi > 1 and top.ks > 0.5
    assert d.domain_auc > 0.85
    assert d.to_json()["top_shifted_features"][0] == {"feature": "x", "kind": "numeric", "psi": top.psi, "ks": top.ks}
    assert d.to_json()["top_shifted_features"][1].keys() == {"feature", "kind", "psi"}  # no KS for a category
    assert diagnostics.Diagnosis.from_json(d.to_json()) == d


def test_new_categories_and_classes_are_found():
    d = diagnostics.diagnose(frame(400), frame(200, colours=("green",), labels=(0, 1, 2), seed=1), "y", FEATURES)
    assert d.new_classes == [2]
    assert d.top_shifted_features[0].feature == "colour"


def test_label_shift_is_total_variation():
    old, new = pd.Series([0, 0, 1, 1]), pd.Series([1, 1, 1, 2])
    assert diagnostics.label_shift(old, new) == pytest.approx(0.5 * (0.5 + 0.25 + 0.25))
