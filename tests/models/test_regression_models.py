"""A brought regression model (one linear unit) as the baseline: read as a number, trained
further with its own loss, and refused in one line where its head and the data's task
disagree. Real Keras models saved with model.save, real prepared data, real training."""

import dataclasses
import re

import keras
import numpy as np
import pandas as pd
import pytest

from retrainlab import data
from retrainlab.base.errors import ModelShapeError, ModelSourceError
from retrainlab.base.tasks import CLASSIFICATION, REGRESSION
from retrainlab.config import BaselineParams, FilesParams
from retrainlab.data.stream import FeatureStats
from retrainlab.models.build import build_model
from retrainlab.models.bundle import ModelBundle
from retrainlab.models.loading import check_bundle_task
from retrainlab.pipeline import user_model
from retrainlab.pipeline.origin import resolve
from retrainlab.strategies import plan_for
from retrainlab.training.loop import fit, seed_everything

COLUMNS = ["f0", "f1", "f2", "f3"]
AUTO_FRACTIONS = r"auto: the label holds fractions"
AUTO_TEXT = r"auto: the label holds text \(or booleans\)"


def quantities(n, seed):
    """Four features and a number to predict from them: fractions, every one distinct."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(size=(n, 4)), columns=COLUMNS)
    frame["y"] = 20.0 + 3.0 * frame["f0"] - 2.0 * frame["f1"] + rng.normal(0, 0.1, n)
    return frame


def classes(n, seed, names=("a", "b", "c")):
    frame = quantities(n, seed)
    frame["y"] = np.asarray(names)[np.arange(n) % len(names)]
    return frame


def project(tmp_path, params, initial, incremental, task="auto", brought_from="model.keras"):
    initial.to_csv(tmp_path / "old.csv", index=False)
    incremental.to_csv(tmp_path / "new.csv", index=False)
    params = dataclasses.replace(
        params, seeds=[0], baseline=BaselineParams(brought_from),
        data=dataclasses.replace(params.data, source="files", task=task, files=FilesParams("old.csv", "new.csv", "y")),
    )
    data.prepare(params.data, tmp_path)
    return params, data.load_prepared(tmp_path)


def regressor(loss="mse", activation="linear", units=1) -> keras.Model:
    """A small functional model of one float tensor of the columns, ending in one linear unit."""
    inputs = keras.Input((4,), name="scaled")
    hidden = keras.layers.Dense(8, activation="relu", name="body")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(units, activation=activation, name="price")(hidden))
    model.compile(keras.optimizers.Adam(0.01), loss=loss)
    return model


def trained(frame, loss="mse") -> keras.Model:
    model = regressor(loss)
    model.fit(frame[COLUMNS].to_numpy("float32"), frame["y"].to_numpy("float32"), epochs=3, verbose=0)
    return model


def load(params, prepared, tmp_path):
    return user_model.load(resolve(params, tmp_path), prepared, params, tmp_path)


def test_a_brought_regressor_predicts_the_label_in_its_own_units(tmp_path, tiny_params):
    initial = quantities(120, 0)
    model = trained(initial)
    model.save(tmp_path / "model.keras")
    params, prepared = project(tmp_path, tiny_params, initial, quantities(60, 1))
    bundle = load(params, prepared, tmp_path)
    assert (bundle.task, bundle.labels, bundle.regression) == (REGRESSION, [], True)
    assert bundle.compiled["loss"] == "mse"
    x = prepared.frame("initial_test")
    alone = model.predict(x[COLUMNS].to_numpy("float32"), verbose=0)[:, 0]
    assert bundle.predict(x).shape == (len(x),)
    assert np.allclose(bundle.predict(x), alone, atol=1e-5)


@pytest.mark.parametrize("loss, says", [
    ("mae", "Adam as the model was compiled, mae"),
    (keras.losses.Huber(), "Adam as the model was compiled, huber_loss"),
])
def test_a_brought_regressor_trains_further_with_its_own_loss(tmp_path, tiny_params, loss, says):
    initial = quantities(120, 0)
    trained(initial, loss).save(tmp_path / "model.keras")
    params, prepared = project(tmp_path, tiny_params, initial, quantities(60, 1))
    bundle = load(params, prepared, tmp_path)
    x = prepared.frame("incremental_test")
    before = bundle.predict(x)
    seed_everything(0)
    plan = plan_for("incremental", prepared, params, bundle, 0)
    fit(plan, prepared)
    assert plan.compiled_with == says
    assert getattr(plan.bundle.model.loss, "name", plan.bundle.model.loss) in ("mae", "huber_loss")  # not the MSE
    after = plan.bundle.predict(x)
    assert np.isfinite(after).all() and not np.allclose(before, after)


@pytest.mark.parametrize("task, rule", [("auto", AUTO_FRACTIONS), ("regression", r"data\.task: regression")])
def test_a_softmax_model_given_a_number_to_predict_is_refused_naming_label_task_and_head(tmp_path, tiny_params, task,
                                                                                        rule):
    regressor("sparse_categorical_crossentropy", "softmax", units=3).save(tmp_path / "model.keras")
    params, prepared = project(tmp_path, tiny_params, quantities(120, 0), quantities(60, 1), task=task)
    with pytest.raises(ModelShapeError) as info:
        load(params, prepared, tmp_path)
    said = str(info.value)
    assert "\n" not in said
    assert said.startswith("model.keras: its output layer 'price' (Dense, 3 units, activation softmax) gives class "
                           "probabilities (classification), but the label 'y' is read as regression (")
    assert re.search(rf"read as regression \({rule}\); set baseline\.from to a regressor \(one linear output unit\), "
                     r"or, if the label is classes, set data\.task: classification$", said)


def test_a_sigmoid_unit_is_a_classifier_under_regression_data(tmp_path, tiny_params):
    regressor("binary_crossentropy", "sigmoid").save(tmp_path / "model.keras")
    params, prepared = project(tmp_path, tiny_params, quantities(120, 0), quantities(60, 1))
    with pytest.raises(ModelShapeError, match=r"^model\.keras: its output layer 'price' \(Dense, 1 unit, activation "
                                              r"sigmoid\) gives class probabilities \(classification\), but the label "
                                              rf"'y' is read as regression \({AUTO_FRACTIONS}\)"):
        load(params, prepared, tmp_path)


@pytest.mark.parametrize("task, rule", [("auto", AUTO_TEXT), ("classification", r"data\.task: classification")])
def test_a_regressor_given_classes_is_refused_naming_label_task_and_head(tmp_path, tiny_params, task, rule):
    regressor().save(tmp_path / "model.keras")
    params, prepared = project(tmp_path, tiny_params, classes(120, 0), classes(60, 1), task=task)
    with pytest.raises(ModelShapeError, match=(
        r"^model\.keras: its output layer 'price' \(Dense, 1 unit, activation linear\) predicts a number "
        rf"\(regression\), but the label 'y' is read as classification \({rule}\); set baseline\.from to a "
        r"classifier \(a softmax or sigmoid output\), or, if the label is a quantity, set data\.task: regression$"
    )) as info:
        load(params, prepared, tmp_path)
    assert "\n" not in str(info.value)


def test_a_head_that_predicts_no_number_is_refused_under_regression(tmp_path, tiny_params):
    regressor(activation="relu").save(tmp_path / "model.keras")
    params, prepared = project(tmp_path, tiny_params, quantities(120, 0), quantities(60, 1))
    with pytest.raises(ModelShapeError, match=r"^model\.keras: its output layer 'price' \(Dense, activation relu, "
                                              r"output shape \(None, 1\)\) does not predict one number, but the label "
                                              r"is read as regression: end the model with one linear unit "
                                              r"\(Dense\(1\)\) that predicts the label$"):
        load(params, prepared, tmp_path)


def test_data_labels_under_regression_is_refused(tmp_path, tiny_params):
    regressor().save(tmp_path / "model.keras")
    params, prepared = project(tmp_path, tiny_params, quantities(120, 0), quantities(60, 1))
    params = dataclasses.replace(params, data=dataclasses.replace(params.data, labels=["a", "b"]))
    with pytest.raises(ModelSourceError, match=r"^parameter 'data\.labels' lists \['a', 'b'\], but the label 'y' is "
                                               r"read as regression \(auto: the label holds fractions\): a regressor "
                                               r"has no classes to order; remove data\.labels$"):
        load(params, prepared, tmp_path)


def own_model(tmp_path, frame, task) -> ModelBundle:
    """The project's own MLP (a regressor with its target scaling, or a classifier) saved as a
    bundle and read back, as the registry's copy is."""
    features = data.load_prepared(tmp_path).features
    stats = FeatureStats.of_frame(frame, features)
    if task == REGRESSION:
        model = build_model(features, stats, 0, [4], 0.0, 0, target=(20.0, 3.0))
        bundle = ModelBundle(model, features, [], "y", task=REGRESSION)
    else:
        model = build_model(features, stats, 3, [4], 0.0, 0)
        bundle = ModelBundle(model, features, ["a", "b", "c"], "y")
    bundle.save(tmp_path / "bundle")
    return ModelBundle.load(tmp_path / "bundle")


def test_a_retrainlab_model_of_the_other_task_is_refused_naming_label_task_and_head(tmp_path, tiny_params):
    _, prepared = project(tmp_path, tiny_params, classes(120, 0), classes(60, 1))
    mine = own_model(tmp_path, prepared.frame("initial_train"), REGRESSION)
    with pytest.raises(ModelShapeError, match=(
        r"^models:/mine@prod: its output layer 'output' \(Dense, 1 unit, activation linear\) predicts a number "
        rf"\(regression\), but the label 'y' is read as classification \({AUTO_TEXT}\); set baseline\.from"
    )):
        check_bundle_task(mine, prepared, "models:/mine@prod")
    check_bundle_task(own_model(tmp_path, prepared.frame("initial_train"), CLASSIFICATION), prepared, "m")

    _, prepared = project(tmp_path, tiny_params, quantities(120, 0), quantities(60, 1))
    theirs = own_model(tmp_path, prepared.frame("initial_train"), CLASSIFICATION)
    with pytest.raises(ModelShapeError, match=(
        r"^models:/mine@prod: its output layer 'output' \(Dense, 3 units, activation softmax\) gives class "
        rf"probabilities \(classification\), but the label 'y' is read as regression \({AUTO_FRACTIONS}\)"
    )):
        check_bundle_task(theirs, prepared, "models:/mine@prod")
    check_bundle_task(own_model(tmp_path, prepared.frame("initial_train"), REGRESSION), prepared, "m")
