"""Categorical lookups: the project's encoding (one-hot, or an embedding above
model.embedding_threshold), the most frequent values kept, and growth (grow_lookups): every
value the new rows add gets its own index and a row that starts as the unknown value's, so
the grown model predicts as the baseline did until trained; a brought model's StringLookup
and IntegerLookup grow too, and what cannot grow is left as it is, and said so."""

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from retrainlab.data import CATEGORICAL, NUMERIC, Feature
from retrainlab.data.stream import FeatureStats, most_frequent
from retrainlab.models.build import build_model
from retrainlab.models.bundle import ModelBundle
from retrainlab.models.files import copy_model
from retrainlab.models.outputs import compile_model
from retrainlab.models.vocabulary import grow_lookups

FEATURES = (Feature("x", NUMERIC), Feature("item", CATEGORICAL), Feature("user", CATEGORICAL))


def table(rows: int, items: list[str], seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"x": rng.normal(size=rows), "item": rng.choice(items, rows),
                         "user": rng.choice([f"u{i}" for i in range(150)], rows)})


def bundle_of(frame: pd.DataFrame, threshold: int) -> ModelBundle:
    model = build_model(FEATURES, FeatureStats.of_frame(frame, FEATURES), 2, [8], 0.0, 0,
                        embedding_threshold=threshold)
    return ModelBundle(model, FEATURES, ["no", "yes"], "click")


OLD_ITEMS = [f"i{i}" for i in range(6)]


def test_a_column_above_the_threshold_is_embedded_below_it_one_hot():
    frame = table(400, OLD_ITEMS, 0)
    bundle = bundle_of(frame, threshold=100)
    names = [layer.name for layer in bundle.model.layers]
    assert "embed_in2_user" in names and "embed_in1_item" not in names  # over 100 users embedded, 6 items one-hot
    users = frame["user"].nunique()
    assert users > 100 and bundle.model.get_layer("embed_in2_user").input_dim == users + 1  # 0: the unknown value
    assert bundle.model.get_layer("encode_in1_item").get_config()["output_mode"] == "one_hot"


@pytest.mark.parametrize("threshold", [100, 0])
def test_a_grown_model_predicts_as_before_and_knows_each_new_value(threshold):
    old = table(400, OLD_ITEMS, 0)
    bundle = bundle_of(old, threshold)
    new = pd.DataFrame({"x": [0.1, 0.1, 0.3], "item": ["n1", "n2", "i1"], "user": ["u1", "u7777", "u2"]})
    grown, report = grow_lookups(bundle.model, lambda: [bundle.inputs(new)], max_size=1000)
    after = ModelBundle(grown, FEATURES, bundle.labels, "click")
    for rows in (old.head(60), new):
        np.testing.assert_allclose(after.predict_proba(rows), bundle.predict_proba(rows), atol=1e-6)
    said = {g.layer: g for g in report}
    assert said["encode_in1_item"].added == 2 and said["encode_in2_user"].added == 1
    item = grown.get_layer("encode_in1_item").get_vocabulary()
    assert item[:7] == bundle.model.get_layer("encode_in1_item").get_vocabulary() and item[7:] == ["n1", "n2"]
    assert "2 new values appended (9 in all)" in said["encode_in1_item"].describe()


def test_after_growth_and_training_two_unseen_items_are_told_apart_and_without_growth_they_cannot_be():
    old = table(400, OLD_ITEMS, 0)
    bundle = bundle_of(old, threshold=100)
    new = table(400, ["n_click", "n_skip"], 1)
    labels = (new["item"] == "n_click").astype(int).to_numpy()
    pair = pd.DataFrame({"x": [0.0, 0.0], "item": ["n_click", "n_skip"], "user": ["u3", "u3"]})
    predicted = {}
    for grow in (True, False):
        model = grow_lookups(bundle.model, lambda: [bundle.inputs(new)], 1000)[0] if grow else copy_model(bundle.model)
        compile_model(model, 0.05)
        model.fit(bundle.inputs(new), labels, epochs=15, batch_size=64, verbose=0)
        predicted[grow] = ModelBundle(model, FEATURES, bundle.labels, "click").predict_proba(pair)[:, 1]
    assert predicted[True][0] - predicted[True][1] > 0.5, predicted
    assert predicted[False][0] == pytest.approx(predicted[False][1], abs=1e-6)  # both read as the unknown value


def test_growth_stops_at_max_size_keeping_the_most_frequent():
    bundle = bundle_of(table(400, OLD_ITEMS, 0), threshold=100)
    new = pd.DataFrame({"x": [0.0] * 6, "item": ["rare", "often", "often", "often", "mid", "mid"], "user": ["u1"] * 6})
    grown, report = grow_lookups(bundle.model, lambda: [bundle.inputs(new)], max_size=len(OLD_ITEMS) + 2)
    assert grown.get_layer("encode_in1_item").get_vocabulary()[7:] == ["often", "mid"]
    item = next(g for g in report if g.layer == "encode_in1_item")
    assert item.beyond == 1 and "1 more left out beyond the 2 that may be added" in item.describe()


def brought_model() -> keras.Model:
    """A user's model: an IntegerLookup into an Embedding, a StringLookup's one-hot into its
    own Dense layer, and a tf-idf lookup that cannot grow, all into one Concatenate."""
    store = keras.Input((1,), name="store", dtype="int64")
    city = keras.Input((1,), name="city", dtype="string")
    indices = keras.layers.IntegerLookup(vocabulary=[101, 205, 307], name="stores")(store)
    embedded = keras.layers.Flatten()(keras.layers.Embedding(4, 3, name="store_vectors")(indices))
    one_hot = keras.layers.StringLookup(vocabulary=["oslo", "rome"], output_mode="one_hot", name="cities")(city)
    weighted = keras.layers.StringLookup(vocabulary=["oslo", "rome"], output_mode="tf_idf", idf_weights=[1.0, 1.0],
                                         name="city_idf")(city)
    joined = keras.layers.Concatenate()([embedded, keras.layers.Dense(4, name="city_dense")(one_hot), weighted])
    output = keras.layers.Dense(1, activation="sigmoid", name="out")(joined)
    return copy_model(keras.Model({"store": store, "city": city}, output))


def test_a_brought_models_string_and_integer_lookups_grow_and_a_tf_idf_one_is_kept_and_said():
    model = brought_model()
    inputs = {"store": np.array([[101], [999], [888], [999]]), "city": tf.constant([["oslo"], ["lima"], ["rome"], ["lima"]])}
    grown, report = grow_lookups(model, lambda: [inputs], max_size=100)
    said = {g.layer: g for g in report}
    assert said["stores"].added == 2 and said["cities"].added == 1
    assert said["city_idf"].added == 0 and "lookup kept (its output (tf_idf)" in said["city_idf"].describe()
    np.testing.assert_allclose(grown.predict_on_batch(inputs), model.predict_on_batch(inputs), atol=1e-6)
    saved = copy_model(grown)  # through the .keras format, as every saved model goes
    assert saved.get_layer("stores").get_vocabulary()[4:] == [999, 888]
    assert saved.get_layer("store_vectors").input_dim == 6


def test_the_vocabulary_keeps_the_most_frequent_values_beyond_max_categories():
    frame = pd.DataFrame({"x": np.zeros(7), "item": ["b", "a", "a", "c", "c", "c", "d"], "user": ["u"] * 7})
    stats = FeatureStats.of_pieces([frame.iloc[:3], frame.iloc[3:]], FEATURES, max_categories=2)
    assert stats.vocabularies["item"] == ["a", "c"] and stats.distinct["item"] == 4
    assert FeatureStats.of_frame(frame, FEATURES).vocabularies["item"] == ["a", "b", "c", "d"]
    from collections import Counter

    assert most_frequent(Counter({"z": 1, "y": 1, "x": 1}), 2) == ["x", "y"]  # ties: in sorted order
