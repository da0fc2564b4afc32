"""The recommender source (clicks of users on items) and its new_categories scenario."""

import math

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from retrainlab import data
from retrainlab.base.errors import ConfigError
from retrainlab.config import DataParams, SyntheticParams
from retrainlab.data.sources import NEW_ITEMS, OLD_ITEMS, builtin_parts


def clicks(seed=0, **changes):
    """The recommender's initial and incremental data (one part at the project's sizes)."""
    (part,) = builtin_parts(DataParams(source="recommender", **changes), seed)
    return part


def test_the_recommender_is_a_seeded_click_table_of_users_items_price_and_hour():
    a, b, other = clicks(3, scenario="same_distribution"), clicks(3, scenario="same_distribution"), clicks(4)
    pd.testing.assert_frame_equal(a.initial, b.initial)
    pd.testing.assert_frame_equal(a.incremental, b.incremental)
    assert not a.initial.equals(other.initial)
    assert {f.name: f.kind for f in a.features} == {"user_id": data.CATEGORICAL, "item_id": data.CATEGORICAL,
                                                    "price": data.NUMERIC, "hour": data.NUMERIC}
    assert a.label == "click" and set(a.initial["click"]) == {0, 1}
    assert a.initial["user_id"].str.fullmatch(r"u\d{4}").all() and a.initial["item_id"].str.fullmatch(r"i\d{4}").all()
    assert (a.initial["price"] > 0).all() and a.initial["hour"].between(0, 23).all()
    for rows in (a.initial, a.incremental):
        assert 0.2 <= rows["click"].mean() <= 0.4
    assert len(a.initial) + len(a.incremental) == 3000
    assert len(a.incremental) == pytest.approx(0.3 * len(a.initial), abs=1)


def test_the_clicks_are_learnable_and_the_item_ids_carry_most_of_the_signal():
    """A logistic regression on the one-hot ids, price and hour beats always answering 'no'
    on held-out rows, and loses most of that without the item id."""
    rows = clicks(scenario="same_distribution", synthetic=SyntheticParams(rows=6000)).initial
    train, test = rows.iloc[:4000], rows.iloc[4000:]

    def accuracy(columns):
        ids = [c for c in columns if c.endswith("_id")]
        x_train = pd.get_dummies(train[columns], columns=ids)
        x_test = pd.get_dummies(test[columns], columns=ids).reindex(columns=x_train.columns, fill_value=0)
        model = LogisticRegression(solver="liblinear").fit(x_train.astype(float), train["click"])
        return model.score(x_test.astype(float), test["click"])

    always_no = 1 - test["click"].mean()
    with_items = accuracy(["user_id", "item_id", "price", "hour"])
    assert with_items >= always_no + 0.05
    assert accuracy(["user_id", "price", "hour"]) < with_items - 0.05


@pytest.mark.parametrize("share", [0.0, 0.1, 0.5, 0.9, 1.0])
def test_new_categories_gives_that_share_of_the_new_rows_items_the_old_data_never_had(share):
    same = clicks(scenario="same_distribution")
    new = clicks(scenario="new_categories", unseen_share=share)
    old_items = {f"i{i:04d}" for i in range(OLD_ITEMS)}
    assert set(new.initial["item_id"]) <= old_items
    pd.testing.assert_frame_equal(new.initial, same.initial)  # the same draws: only new rows' items change
    unseen = ~new.incremental["item_id"].isin(set(new.initial["item_id"]))
    assert unseen.mean() == pytest.approx(share, abs=1 / len(new.incremental))
    assert set(new.incremental["item_id"][unseen]) <= {f"i{OLD_ITEMS + i:04d}" for i in range(NEW_ITEMS)}
    assert new.incremental["user_id"].equals(same.incremental["user_id"])
    assert len(new.incremental) == len(same.incremental)


def test_new_items_are_clicked_by_their_own_rule():
    """New items carry their own bias: their rows' click shares differ from item to item as
    the old items' do, not as one unknown item's would."""
    rows = clicks(scenario="new_categories", unseen_share=1.0, incremental_fraction=3.0).incremental
    by_item = rows.groupby("item_id")["click"].mean()
    assert by_item.std() > 0.15 and by_item.min() < 0.15 and by_item.max() > 0.5


@pytest.mark.parametrize("source", ["digits", "synthetic", "text", "friedman"])
def test_new_categories_on_another_source_is_refused_in_one_line(source):
    with pytest.raises(ConfigError) as error:
        DataParams(source=source, scenario="new_categories").check()
    message = str(error.value)
    assert "\n" not in message and "'data.scenario'" in message and "set data.source to recommender" in message
    DataParams(source="files", scenario="new_categories").check()  # the user's own data reads no scenario


@pytest.mark.parametrize("scenario", ["covariate_shift", "concept_drift", "new_classes"])
def test_the_recommender_takes_only_its_own_scenarios(scenario):
    with pytest.raises(ConfigError, match=r"^parameter 'data.scenario' is \w+, but the recommender source takes "
                                          r"same_distribution or new_categories only; choose one of them$"):
        DataParams(source="recommender", scenario=scenario).check()


@pytest.mark.parametrize("share", [-0.1, 1.5, math.nan, math.inf])
def test_an_unseen_share_outside_0_to_1_is_refused(share):
    with pytest.raises(ConfigError, match=r"^parameter 'data.unseen_share' must be in \[0, 1\]$"):
        DataParams(source="recommender", scenario="new_categories", unseen_share=share).check()
