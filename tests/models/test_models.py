import keras
import numpy as np
import pandas as pd
import pytest

from retrainlab.base.errors import ModelFileError
from retrainlab.data import CATEGORICAL, NUMERIC, Feature
from retrainlab.data.stream import FeatureStats
from retrainlab.models.build import build_model
from retrainlab.models.bundle import ModelBundle
from retrainlab.models.outputs import compile_model
from retrainlab.models.surgery import attach_head, grow_output

FEATURES = (Feature("age (years)", NUMERIC), Feature("income", NUMERIC), Feature("city", CATEGORICAL))


def frame(n=120, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "age (years)": rng.normal(40, 10, n),
            "income": rng.normal(5e4, 1e4, n),
            "city": rng.choice(["oslo", "lima", "pune"], n),
        }
    )


def trained(n_classes, seed=0):
    x = frame()
    model = build_model(FEATURES, FeatureStats.of_frame(x, FEATURES), n_classes, [8, 4], 0.0, seed)
    compile_model(model, 0.05)
    y = (x["city"] == "oslo").astype("float32") if n_classes == 2 else np.arange(len(x)) % n_classes
    model.fit(ModelBundle(model, FEATURES, [], "y").inputs(x), y, epochs=2, verbose=0)
    return ModelBundle(model, FEATURES, list(range(n_classes)), "y"), x


def test_the_model_takes_raw_columns_including_unseen_categories():
    bundle, x = trained(3)
    x.loc[0, "city"] = "never-seen"
    probs = bundle.predict_proba(x)
    assert probs.shape == (len(x), 3)
    assert np.allclose(probs.sum(axis=1), 1, atol=1e-5)
    assert set(bundle.predict_labels(x)) <= {0, 1, 2}


def test_two_classes_get_a_sigmoid_output_read_as_two_probabilities():
    bundle, x = trained(2)
    assert bundle.model.get_layer("output").units == 1
    assert bundle.predict_proba(x).shape == (len(x), 2)


def ratios(probs):
    return probs[:, 1:3] / probs[:, :1]


def test_growing_the_output_keeps_the_old_classes_predictions():
    bundle, x = trained(3)
    grown = grow_output(bundle.model, 5, seed=1)
    after = ModelBundle(grown, FEATURES, list(range(5)), "y").predict_proba(x)
    assert after.shape == (len(x), 5)
    # Old units kept their weights: the odds among the old classes are unchanged.
    assert np.allclose(ratios(bundle.predict_proba(x)), ratios(after[:, :3]), rtol=1e-4)


def test_a_sigmoid_output_grows_into_an_equivalent_softmax():
    bundle, x = trained(2)
    grown = ModelBundle(grow_output(bundle.model, 3, seed=1), FEATURES, [0, 1, 2], "y")
    before, after = bundle.predict_proba(x), grown.predict_proba(x)
    assert np.allclose(before[:, 1] / before[:, 0], after[:, 1] / after[:, 0], rtol=1e-4)


def test_attach_head_freezes_the_features_and_starts_where_the_model_was():
    bundle, x = trained(3)
    before = bundle.predict_proba(x)
    head = attach_head(bundle.model, new_layers=2, n_classes=3, seed=1)
    trainable = {layer.name for layer in head.layers if layer.trainable and layer.weights}
    assert trainable == {"finetune_0", "finetune_1", "output"}
    assert np.allclose(ModelBundle(head, FEATURES, [0, 1, 2], "y").predict_proba(x), before, atol=1e-5)


def test_training_the_head_leaves_the_frozen_layers_unchanged():
    bundle, x = trained(3)
    hidden_before = bundle.model.get_layer("hidden_0").get_weights()[0].copy()
    head = attach_head(bundle.model, new_layers=1, n_classes=4, seed=1)
    compile_model(head, 0.05)
    head.fit(bundle.inputs(x), np.arange(len(x)) % 4, epochs=2, verbose=0)
    assert np.array_equal(head.get_layer("hidden_0").get_weights()[0], hidden_before)


def test_save_and_load_round_trip(tmp_path):
    bundle, x = trained(3)
    bundle.labels = ["cat", "dog", "eel"]
    bundle.save(tmp_path / "m")
    loaded = ModelBundle.load(tmp_path / "m")
    assert loaded.labels == ["cat", "dog", "eel"] and loaded.features == FEATURES
    assert np.allclose(loaded.predict_proba(x), bundle.predict_proba(x))


def test_loading_refuses_code_in_the_model_file(tmp_path):
    inputs = keras.Input(shape=(1,), name="in0_x")
    model = keras.Model({"in0_x": inputs}, keras.layers.Lambda(lambda t: t * 2)(inputs))
    ModelBundle(model, (Feature("x", NUMERIC),), [0], "y").save(tmp_path / "m")
    with pytest.raises(ModelFileError, match="(?i)model.keras: cannot be loaded .*(lambda|unsafe|safe_mode)") as info:
        ModelBundle.load(tmp_path / "m")
    assert "\n" not in str(info.value)
