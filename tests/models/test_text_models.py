"""The project's text model and the surgery on text layers: a model that takes raw strings and
loads in safe mode, vocabulary growth that keeps every old token's index and row (and adds
only tokens frequent enough for the number of new texts), and fresh weights whose
vocabulary is adapted anew with the embedding widened to it."""

import keras
import numpy as np
import pandas as pd
import pytest

from retrainlab.base.errors import DataError
from retrainlab.data import CATEGORICAL, NUMERIC, TEXT, Feature
from retrainlab.data.stream import FeatureStats
from retrainlab.models.build import build_model
from retrainlab.models.bundle import ModelBundle
from retrainlab.models.files import load_keras
from retrainlab.models.surgery import reinitialised
from retrainlab.models.vocabulary import RESERVED, grow_vocabulary, minimum_count

FEATURES = (Feature("review text", TEXT), Feature("stars", NUMERIC), Feature("shop", CATEGORICAL))
POSITIVE, NEGATIVE = ["love", "great", "happy"], ["hate", "awful", "sad"]


def frame(words=(POSITIVE, NEGATIVE), n=240, seed=0):
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 2
    texts = [" ".join([*rng.choice(words[1 - y], 2), *rng.choice(["the", "day", "was", "so"], 3)]).capitalize() + "!"
             for y in labels]
    return pd.DataFrame({"review text": texts, "stars": rng.normal(size=n), "shop": rng.choice(["a", "b"], n)}), labels


def trained(seed=0):
    x, y = frame()
    model = build_model(FEATURES, FeatureStats.of_frame(x, FEATURES), 2, [8], 0.0, seed, text_length=8,
                        embedding_dim=4)
    bundle = ModelBundle(model, FEATURES, [0, 1], "label")
    model.compile(keras.optimizers.Adam(0.05), "binary_crossentropy")
    model.fit(bundle.inputs(x), y.astype("float32"), epochs=15, verbose=0)
    return bundle


def test_the_project_text_model_reads_raw_strings_and_loads_in_safe_mode(tmp_path):
    bundle = trained()
    x, y = frame(seed=1)
    assert (bundle.predict_labels(x) == y).mean() >= 0.95
    assert [type(layer).__name__ for layer in bundle.model.layers if "review" in layer.name] == [
        "InputLayer", "TextVectorization", "Embedding", "GlobalAveragePooling1D"]
    bundle.save(tmp_path)
    loaded = ModelBundle.load(tmp_path)  # load_keras: safe mode
    np.testing.assert_allclose(loaded.predict_proba(x), bundle.predict_proba(x), atol=1e-6)


def test_a_text_column_without_a_word_is_refused_in_one_line():
    x = pd.DataFrame({"review text": ["", "..."], "stars": [1.0, 2.0], "shop": ["a", "b"]})
    with pytest.raises(DataError, match="no words in the training rows"):
        build_model(FEATURES, FeatureStats.of_frame(x, FEATURES), 2, [8], 0.0, 0)


def test_growth_appends_the_new_tokens_keeping_every_old_index_and_row(tmp_path):
    bundle = trained()
    reviews, _ = frame((["superb", "brilliant"], ["dreadful", "bland"]), seed=2)
    grown, report = grow_vocabulary(bundle.model, lambda: [bundle.inputs(reviews)], max_new=3, seed=5)
    layer = "vectorize_in0_review_text"
    old, new = bundle.model.get_layer(layer).get_vocabulary(), grown.get_layer(layer).get_vocabulary()
    assert new[:len(old)] == old and len(new) == len(old) + 3
    assert set(new[len(old):]) <= {"superb", "brilliant", "dreadful", "bland"}
    assert [g.describe() for g in report] == [
        f"{layer}: 3 new tokens appended ({len(new)} in all); 1 more left out beyond the 3 that may be added "
        "(model.text_tokens)"]
    rows_old = bundle.model.get_layer("embed_in0_review_text").get_weights()[0]
    rows_new = grown.get_layer("embed_in0_review_text").get_weights()[0]
    assert rows_new.shape == (len(new), 4) and np.array_equal(rows_new[:len(old)], rows_old)
    assert np.abs(rows_new[len(old):]).max() <= 0.05 and np.abs(rows_new[len(old):]).min() > 0
    # Old texts read as before; no layer is shared with the baseline; the file loads safely.
    x, _ = frame(seed=1)
    np.testing.assert_allclose(ModelBundle(grown, FEATURES, [0, 1], "label").predict_proba(x),
                               bundle.predict_proba(x), atol=1e-6)
    assert not {id(w) for w in grown.weights} & {id(w) for w in bundle.model.weights}
    grown.save(tmp_path / "grown.keras")
    assert load_keras(tmp_path / "grown.keras").get_layer(layer).get_vocabulary() == new


def test_growth_without_new_tokens_or_without_an_embedding_keeps_the_vocabulary():
    bundle = trained()
    x, _ = frame(seed=3)
    same, report = grow_vocabulary(bundle.model, lambda: [bundle.inputs(x)], max_new=10)
    assert report[0].added == 0 and same.get_layer("vectorize_in0_review_text").vocabulary_size() == RESERVED + 10
    text = keras.Input(shape=(1,), dtype="string", name="review text")
    vectorize = keras.layers.TextVectorization(vocabulary=["good"], output_mode="multi_hot", name="bag")
    model = keras.Model(text, keras.layers.Dense(1, activation="sigmoid")(vectorize(text)))
    kept, report = grow_vocabulary(model, lambda: [{"review text": np.array([["very good"]], dtype=object)}], 10)
    assert report[0].describe() == "bag: vocabulary kept (its output is not a sequence of token indices read by an " \
                                   "Embedding)"
    assert kept.get_layer("bag").get_vocabulary() == model.get_layer("bag").get_vocabulary()


def test_growth_adds_no_token_rarer_than_the_bar_and_says_what_it_left_out():
    """A token the new rows hold fewer than the bar's times is not added (it reads as out of
    vocabulary, as it did for the baseline), and the report says how many were left out and why."""
    bundle = trained()
    MIN_COUNT = 5
    reviews, _ = frame((["superb", "brilliant"], ["dreadful", "bland"]), seed=2)
    rare = [f"once{i}" for i in range(3)] + ["few"] * (MIN_COUNT - 1)  # each below MIN_COUNT
    reviews = pd.concat([reviews, reviews.iloc[:len(rare)].assign(**{"review text": rare})], ignore_index=True)
    grown, report = grow_vocabulary(bundle.model, lambda: [bundle.inputs(reviews)], max_new=100, min_count=MIN_COUNT)
    layer = "vectorize_in0_review_text"
    added = grown.get_layer(layer).get_vocabulary()[bundle.model.get_layer(layer).vocabulary_size():]
    assert sorted(added) == ["bland", "brilliant", "dreadful", "superb"]
    assert report[0].rare == 4 and report[0].describe() == (
        f"{layer}: 4 new tokens appended ({RESERVED + 14} in all); 4 seen fewer than {MIN_COUNT} times in the new "
        "rows left out (read as out of vocabulary)")
    # Counted as the layer reads them, the same count to the token: MIN_COUNT times is enough.
    enough = pd.concat([reviews, reviews.iloc[:1].assign(**{"review text": "Few!"})], ignore_index=True)
    _, report = grow_vocabulary(bundle.model, lambda: [bundle.inputs(enough)], max_new=100, min_count=MIN_COUNT)
    assert (report[0].added, report[0].rare) == (5, 3)
    # Without a count given, the bar is a share of the texts: every new token of a few dozen.
    _, report = grow_vocabulary(bundle.model, lambda: [bundle.inputs(enough)], max_new=100)
    assert (report[0].added, report[0].rare, report[0].min_count) == (8, 0, 1)


def test_the_bar_for_a_new_token_grows_with_the_new_texts():
    # 64 reviews: every word; 415: twice; the 1,425 posts: 5 times (docs/STRATEGIES.md)
    assert [minimum_count(n) for n in (0, 1, 64, 300, 301, 415, 1425, 30_000)] == [1, 1, 1, 1, 2, 2, 5, 100]


def test_fresh_weights_adapt_the_vocabulary_anew_and_widen_the_embedding():
    bundle = trained()
    old, _ = frame()
    reviews, _ = frame((["superb", "brilliant"], ["dreadful", "bland"]), seed=2)
    both = pd.concat([old, reviews])
    fresh = reinitialised(bundle.model, lambda: [bundle.inputs(both)])
    vocabulary = fresh.get_layer("vectorize_in0_review_text").get_vocabulary()
    assert {"superb", "dreadful", "love", "hate"} <= set(vocabulary)
    assert fresh.get_layer("embed_in0_review_text").input_dim == len(vocabulary)


def test_fresh_initial_values_of_a_text_model_saved_and_loaded():
    """A loaded text model's graph holds the embedding's padding mask as an operation, not a
    layer: shrink-and-perturb's fresh weights and the re-adaptation pass it through."""
    from retrainlab.models.files import copy_model
    from retrainlab.models.surgery import fresh_weights

    bundle = trained()
    loaded = copy_model(bundle.model)
    assert "NotEqual" in [type(op).__name__ for op in loaded.operations]
    fresh = fresh_weights(loaded, seed=3)
    assert [w.shape for w in fresh] == [tuple(v.shape) for v in loaded.trainable_variables]
    x, _ = frame()
    assert reinitialised(loaded, lambda: [bundle.inputs(x)]).get_layer("embed_in0_review_text").input_dim == 12
