import time

import numpy as np
import pandas as pd
import pytest

from retrainlab.data import CATEGORICAL, NUMERIC, Feature
from retrainlab.decision import diagnostics
from retrainlab.decision.diagnosis import CategoryShift

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


def test_a_category_shift_counts_the_new_rows_and_values_the_old_data_lacks():
    old = pd.Series(["a", "b", "b", "c", None])
    new = pd.Series(["a", "d", "d", "e", "b", None, "d", "a"])  # 7 with a value: d, d, e and d unseen
    shift = diagnostics.category_shift(old, new, "store")
    assert shift == CategoryShift("store", unseen_rows=4 / 7, new_values=2, old_values=3)
    assert diagnostics.category_shift(old, pd.Series(["c", "a"]), "store").unseen_rows == 0.0
    # Compared as the model reads categories, as text: a number read from one file is its text in another.
    assert diagnostics.category_shift(pd.Series([7, 8], dtype=object), pd.Series(["7", "9"]), "zip") == \
        CategoryShift("zip", unseen_rows=0.5, new_values=1, old_values=2)


def test_a_category_shift_over_a_million_distinct_values_takes_well_under_seconds():
    ids = np.arange(1_500_000).astype(str)
    old, new = pd.Series(ids[:1_000_000]), pd.Series(ids[500_000:])
    started = time.perf_counter()
    shift = diagnostics.category_shift(old, new, "sku")
    assert time.perf_counter() - started < 3.0  # pandas' isin on these text columns took 3.5 s
    assert shift == CategoryShift("sku", unseen_rows=0.5, new_values=500_000, old_values=1_000_000)


def test_every_categorical_column_is_diagnosed_with_or_without_the_new_rows_labels():
    new = frame(200, colours=("red", "green"), seed=1)
    labelled = diagnostics.diagnose(frame(400), new, "y", FEATURES)
    unlabelled = diagnostics.diagnose(frame(400), new.drop(columns="y"), "y", FEATURES)
    green = (new["colour"] == "green").mean()
    assert labelled.categories == unlabelled.categories == (CategoryShift("colour", green, 1, 2),)
    assert not diagnostics.diagnose(frame(400), frame(200, seed=1), "y", FEATURES).categories[0].new_values
