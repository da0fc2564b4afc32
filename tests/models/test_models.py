import keras
import numpy as np
import pandas as pd
import pytest

from retrainlab.base.errors import ModelFileError
from retrainlab.data import CATEGORICAL, NUMERIC, Feature
from retrainlab.data.stream import FeatureStats
from retrainlab.models.build import build_model
from retrainlab.models.bundle import ModelBundle
from retrainlab.models.files import copy_model
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


def test_attach_head_on_a_saved_binary_model_is_the_bare_keras_fine_tune(tmp_path):
    """The ratings parity case: a two-class model (one sigmoid unit) with dropout and a
    one-hot categorical input, read back from disk as the fine-tune step reads the baseline.
    What a Keras user writes (body frozen, an identity ReLU Dense, the old output on top)
    trains exactly the new layer and the output, and starts at the baseline's predictions."""
    x = frame()
    model = build_model(FEATURES, FeatureStats.of_frame(x, FEATURES), 2, [8, 4], 0.1, 0)
    compile_model(model, 0.05)
    bundle = ModelBundle(model, FEATURES, [0, 1], "y")
    model.fit(bundle.inputs(x), (x["city"] == "oslo").astype("float32"), epochs=2, verbose=0)
    bundle.save(tmp_path / "baseline")
    base = ModelBundle.load(tmp_path / "baseline")
    head = attach_head(base.model, new_layers=1, n_classes=2, seed=1)
    assert [v.path for v in head.trainable_variables] == ["finetune_0/kernel", "finetune_0/bias",
                                                          "output/kernel", "output/bias"]
    out = head.get_layer("output")
    assert out.units == 1 and keras.activations.serialize(out.activation) == "sigmoid"
    inputs = base.inputs(x)
    assert np.array_equal(head.predict(inputs, verbose=0), base.model.predict(inputs, verbose=0))


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


def features_model(last, head="softmax", units=3, then=()):
    """A small functional model whose last hidden layer has activation `last` (tanh and linear
    features go negative), the layers `then` after it, and a softmax, one-sigmoid-unit or
    regression (one linear unit) head."""
    inputs = keras.Input(shape=(4,), name="x")
    h = keras.layers.Dense(6, activation="relu", kernel_initializer=keras.initializers.GlorotUniform(seed=1),
                           name="hidden_0")(inputs)
    h = keras.layers.Dense(5, activation=last, kernel_initializer=keras.initializers.GlorotUniform(seed=2),
                           bias_initializer=keras.initializers.RandomNormal(stddev=0.5, seed=3), name="hidden_1")(h)
    for layer in then:
        h = layer(h)
    out = keras.layers.Dense(units, activation=head, kernel_initializer=keras.initializers.GlorotUniform(seed=4),
                             name="output")(h)
    return keras.Model(inputs, out)


ROWS = np.random.default_rng(0).normal(0, 2, (64, 4)).astype("float32")


def finetune_names(new_layers):
    return {f"finetune_{i}" for i in range(new_layers)}


def assert_starts_where_the_model_was(head, model, new_layers):
    trainable = {layer.name for layer in head.layers if layer.trainable and layer.weights}
    assert trainable == finetune_names(new_layers) | {"output"}
    assert not [v for v in head.trainable_variables if v.path.split("/")[0] not in trainable]
    np.testing.assert_allclose(head.predict(ROWS, verbose=0), model.predict(ROWS, verbose=0), atol=1e-5)


@pytest.mark.parametrize("last", ["tanh", "linear"])
@pytest.mark.parametrize("new_layers", [1, 2])
def test_attach_head_starts_where_the_model_was_on_negative_features(tmp_path, last, new_layers):
    """Features that go negative (tanh, linear) reach the head whole: the new ReLU layers
    carry them as [relu(x), relu(-x)], still so after a save and load."""
    model = features_model(last)
    features = keras.Model(model.inputs, model.get_layer("hidden_1").output).predict(ROWS, verbose=0)
    assert (features < -0.1).any()  # the features today's ReLU identity zeroed
    head = attach_head(model, new_layers=new_layers, n_classes=3, seed=1)
    assert_starts_where_the_model_was(head, model, new_layers)
    head.save(tmp_path / "fine-tuned.keras")
    assert_starts_where_the_model_was(keras.models.load_model(tmp_path / "fine-tuned.keras"), model, new_layers)
    assert_starts_where_the_model_was(copy_model(head), model, new_layers)


@pytest.mark.parametrize("head, units, n_classes", [("sigmoid", 1, 2), ("linear", 1, 0)])
def test_attach_head_keeps_a_binary_or_regression_model_on_tanh_features(head, units, n_classes):
    model = features_model("tanh", head, units)
    tuned = attach_head(model, new_layers=2, n_classes=n_classes, seed=1)
    assert tuned.get_layer("output").units == 1
    assert keras.activations.serialize(tuned.get_layer("output").activation) == head
    assert_starts_where_the_model_was(tuned, model, 2)


@pytest.mark.parametrize("head, units", [("softmax", 3), ("sigmoid", 1)])
def test_attach_head_with_new_classes_keeps_the_old_classes_on_tanh_features(head, units):
    """The old classes' odds are unchanged; the new classes' units see the features whole too
    (their output columns in the same [k; -k] form as the old ones)."""
    model = features_model("tanh", head, units)
    tuned = attach_head(model, new_layers=1, n_classes=5, seed=1)
    before, after = model.predict(ROWS, verbose=0), tuned.predict(ROWS, verbose=0)
    if units == 1:
        before = np.hstack([1 - before, before])
    assert after.shape == (len(ROWS), 5)
    n_old = before.shape[1]
    np.testing.assert_allclose(after[:, 1:n_old] / after[:, :1], before[:, 1:] / before[:, :1], rtol=1e-4)
    kernel = tuned.get_layer("output").get_weights()[0]
    np.testing.assert_array_equal(kernel[:5], -kernel[5:])


@pytest.mark.parametrize("last, then", [
    ("relu", lambda: [keras.layers.Dropout(0.2)]),
    ("tanh", lambda: [keras.layers.ReLU(), keras.layers.Reshape((5, 1)), keras.layers.Flatten()]),
    ("sigmoid", lambda: []),
])
def test_attach_head_on_non_negative_features_keeps_the_identity_of_their_width(last, then):
    model = features_model(last, then=then())
    head = attach_head(model, new_layers=2, n_classes=3, seed=1)
    for name in ("finetune_0", "finetune_1"):
        kernel, bias = head.get_layer(name).get_weights()
        np.testing.assert_array_equal(kernel, np.eye(5))
        np.testing.assert_array_equal(bias, np.zeros(5))
    np.testing.assert_array_equal(head.get_layer("output").get_weights()[0], model.get_layer("output").get_weights()[0])
    assert_starts_where_the_model_was(head, model, 2)
