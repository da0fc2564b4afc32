"""The user's own model as the baseline: how it reads the data, and each strategy applied to it.

Real Keras models of the shapes users bring (keras-io's named raw-column inputs with their
own preprocessing layers, one float tensor of preprocessed columns, a CNN on images), real
prepared data, real training; no tracking store.
"""

import dataclasses

import keras
import numpy as np
import pandas as pd
import pytest

from retrainlab import data
from retrainlab.base.errors import ModelShapeError, ModelSourceError, UnusableModel
from retrainlab.config import BaselineParams, FilesParams
from retrainlab.models.bundle import ModelBundle
from retrainlab.models.surgery import attach_head, grow_output
from retrainlab.pipeline import user_model
from retrainlab.pipeline.origin import resolve
from retrainlab.strategies import UPDATES, plan_for
from retrainlab.training.loop import fit, seed_everything

from ..conftest import SAME_NETWORK


def rows(n, seed, cities=("oslo", "lima")):
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"age": rng.normal(40, 10, n), "income": rng.normal(5e4, 1e4, n),
                          "city": rng.choice(cities, n)})
    frame["y"] = np.where(frame["age"] > 40, "old", "young")
    return frame


def project(tmp_path, params, initial, incremental, brought_from="model.keras"):
    initial.to_csv(tmp_path / "old.csv", index=False)
    incremental.to_csv(tmp_path / "new.csv", index=False)
    files = FilesParams("old.csv", "new.csv", "y")
    params = dataclasses.replace(
        params, seeds=[0], data=dataclasses.replace(params.data, source="files", files=files),
        baseline=BaselineParams(brought_from),
    )
    data.prepare(params.data, tmp_path)
    return params, data.load_prepared(tmp_path)


def keras_io_model(frame: pd.DataFrame) -> keras.Model:
    """keras-io's structured-data style: an input per raw column, named after it, and the
    preprocessing inside, adapted on the training rows."""
    age, income = keras.Input((1,), name="age"), keras.Input((1,), name="income")
    city = keras.Input((1,), name="city", dtype="string")
    numbers = keras.layers.Concatenate()([age, income])
    normalize = keras.layers.Normalization()
    normalize.adapt(frame[["age", "income"]].to_numpy("float32"))
    lookup = keras.layers.StringLookup(output_mode="one_hot")
    lookup.adapt(frame["city"].to_numpy())
    x = keras.layers.Concatenate()([normalize(numbers), lookup(city)])
    x = keras.layers.Dense(8, activation="relu")(x)
    model = keras.Model({"age": age, "income": income, "city": city}, keras.layers.Dense(2, activation="softmax")(x))
    model.compile(keras.optimizers.SGD(0.05), "sparse_categorical_crossentropy")
    return model


def test_a_keras_io_model_reads_its_columns_by_name_and_predicts_as_it_would_alone(tmp_path, tiny_params):
    initial = rows(200, 0)
    model = keras_io_model(initial)
    model.save(tmp_path / "model.keras")
    params, prepared = project(tmp_path, tiny_params, initial, rows(80, 1))
    origin = resolve(params, tmp_path)
    bundle = user_model.load(origin, prepared, params, tmp_path)
    assert {i.name: i.column for i in bundle.contract.inputs} == {"age": "age", "income": "income", "city": "city"}
    assert bundle.labels == ["old", "young"]  # no data.labels: sorted, as the run says
    test = prepared.frame("initial_test")
    alone = model.predict({c: test[[c]].to_numpy("float32" if c != "city" else object) for c in ("age", "income")}
                          | {"city": keras.ops.convert_to_tensor(test[["city"]].to_numpy().astype(str))}, verbose=0)
    # One batch through the bundle, Keras' own batches of 32 here: the same network, summed in another order.
    np.testing.assert_allclose(bundle.predict_proba(test), alone, **SAME_NETWORK)
    assert bundle.compiled["loss"] == "sparse_categorical_crossentropy"


def test_full_retrain_of_a_brought_model_adapts_its_preprocessing_to_old_and_new_rows(tmp_path, tiny_params):
    initial, incremental = rows(200, 0), rows(80, 1, cities=("oslo", "lima", "pune"))
    incremental["age"] += 30  # the new rows are older: the normalisation must move
    keras_io_model(initial).save(tmp_path / "model.keras")
    params, prepared = project(tmp_path, tiny_params, initial, incremental)
    base = user_model.load(resolve(params, tmp_path), prepared, params, tmp_path)
    plan = plan_for("full-retrain", prepared, params, base, 0)
    both = pd.concat([prepared.frame("initial_train"), prepared.frame("incremental_train")])
    normalize = next(l for l in plan.bundle.model.layers if isinstance(l, keras.layers.Normalization))
    assert np.allclose(keras.ops.convert_to_numpy(normalize.mean).ravel(), both[["age", "income"]].mean(), rtol=1e-4)
    lookup = next(l for l in plan.bundle.model.layers if isinstance(l, keras.layers.StringLookup))
    assert "pune" in lookup.get_vocabulary()  # a city only the new data has
    fresh = [w for w in plan.bundle.model.get_layer(index=-1).get_weights()]
    assert not np.array_equal(fresh[0], base.model.layers[-1].get_weights()[0])  # fresh weights


def tensor_model(width: int, classes: int, activation="softmax") -> keras.Model:
    inputs = keras.Input((width,), name="scaled")
    hidden = keras.layers.Dense(6, activation="relu", name="body")(inputs)
    hidden = keras.layers.Dense(5, activation="relu", name="top")(hidden)
    return keras.Model(inputs, keras.layers.Dense(classes, activation=activation, name="head")(hidden))


def numeric(n, seed, classes=("a", "b", "c")):
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(size=(n, 4)), columns=[f"f{i}" for i in range(4)])
    frame["y"] = rng.choice(classes, n)
    return frame


def test_a_tensor_model_reads_the_feature_columns_in_order(tmp_path, tiny_params):
    tensor_model(4, 3).save(tmp_path / "model.keras")
    params, prepared = project(tmp_path, tiny_params, numeric(120, 0), numeric(60, 1))
    bundle = user_model.load(resolve(params, tmp_path), prepared, params, tmp_path)
    assert bundle.contract.inputs == () and bundle.contract.shape == (4,)
    x = prepared.frame("initial_test")
    assert np.array_equal(bundle.arrays(x), x[["f0", "f1", "f2", "f3"]].to_numpy("float32"))


def test_data_labels_name_the_output_units_in_order(tmp_path, tiny_params):
    tensor_model(4, 3).save(tmp_path / "model.keras")
    params, prepared = project(tmp_path, tiny_params, numeric(120, 0), numeric(60, 1))
    ordered = dataclasses.replace(params, data=dataclasses.replace(params.data, labels=["c", "a", "b"]))
    bundle = user_model.load(resolve(ordered, tmp_path), prepared, ordered, tmp_path)
    assert bundle.labels == ["c", "a", "b"]


@pytest.mark.parametrize(
    "model, labels, message",
    [
        (lambda: tensor_model(5, 3), [], r"model\.keras: model input 'scaled' takes shape \(5,\), but the data has 4"),
        (lambda: tensor_model(4, 4), [], r"model\.keras: the model has 4 output units but the data has 3 labels"),
        (lambda: tensor_model(4, 3), ["a", "b", "z"], r"the initial data has label 'c', which data\.labels"),
        (lambda: _named_model("colour"), [], r"model input 'colour' has no column of that name in the data"),
    ],
    ids=["tensor shape", "output width", "labels", "input name"],
)
def test_a_model_that_does_not_fit_the_data_is_one_line(tmp_path, tiny_params, model, labels, message):
    model().save(tmp_path / "model.keras")
    params, prepared = project(tmp_path, tiny_params, numeric(120, 0), numeric(60, 1))
    params = dataclasses.replace(params, data=dataclasses.replace(params.data, labels=labels))
    with pytest.raises(ModelShapeError, match=message) as info:
        user_model.load(resolve(params, tmp_path), prepared, params, tmp_path)
    assert "\n" not in str(info.value)


def _named_model(name):
    inputs = keras.Input((1,), name=name)
    return keras.Model({name: inputs}, keras.layers.Dense(3, activation="softmax")(inputs))


def test_a_head_that_cannot_grow_says_why_and_what_to_do():
    inputs = keras.Input((4,))
    logits = keras.layers.Dense(3)(inputs)
    model = keras.Model(inputs, keras.layers.Activation("softmax")(logits))
    with pytest.raises(ModelShapeError, match=r"last layer .*\(Activation, activation None\) cannot be rebuilt to add "
                                              r"classes: end the model with a Dense layer with a softmax"):
        grow_output(model, 5, seed=0)


def test_fine_tune_freezes_all_but_the_last_trainable_layers_of_a_cnn():
    cnn = keras.Sequential([
        keras.Input((8, 8, 1)), keras.layers.Conv2D(4, 3, name="conv_a"), keras.layers.Conv2D(4, 3, name="conv_b"),
        keras.layers.Flatten(), keras.layers.Dense(6, activation="relu", name="dense"),
        keras.layers.Dense(3, activation="softmax", name="probs"),
    ])
    for keep, trainable in ((0, set()), (1, {"dense"}), (2, {"dense", "conv_b"})):
        tuned = attach_head(cnn, new_layers=1, n_classes=4, seed=0, trainable_layers=keep)
        trained = {l.name for l in tuned.layers if l.trainable and l.weights} - {"probs", "finetune_0"}
        assert trained == trainable, keep
        assert tuned.output.shape[-1] == 4
    assert all(l.trainable for l in cnn.layers)  # the model itself is untouched


def test_a_model_fine_tuned_before_can_be_fine_tuned_again():
    once = attach_head(tensor_model(4, 3), new_layers=1, n_classes=3, seed=0)
    twice = attach_head(once, new_layers=1, n_classes=3, seed=0)
    assert {"finetune_0", "finetune_1"} <= {l.name for l in twice.layers}


def test_incremental_trains_a_brought_model_with_its_own_optimizer(tmp_path, tiny_params):
    initial = rows(200, 0)
    keras_io_model(initial).save(tmp_path / "model.keras")
    params, prepared = project(tmp_path, tiny_params, initial, rows(80, 1))
    base = user_model.load(resolve(params, tmp_path), prepared, params, tmp_path)
    seed_everything(0)
    plan = plan_for("incremental", prepared, params, base, 0)
    fit(plan, prepared)
    assert plan.compiled_with.startswith("SGD as the model was compiled, sparse_categorical_crossentropy")
    tuned = plan_for("fine-tune", prepared, params, base, 0)
    fit(tuned, prepared)
    assert tuned.compiled_with.startswith("Adam(learning_rate=")  # fine_tune's own rate, from the params
    assert isinstance(plan.bundle, ModelBundle) and plan.bundle.contract == base.contract


def test_the_arrays_source_keeps_the_shape_and_a_cnn_reads_images(tmp_path, tiny_params):
    rng = np.random.default_rng(0)
    for name, n, classes in (("old", 90, 3), ("new", 45, 4)):
        np.savez(tmp_path / f"{name}.npz", x=rng.random((n, 8, 8, 1)).astype("float32"), y=rng.integers(0, classes, n))
    cnn = keras.Sequential([keras.Input((8, 8, 1), name="image"), keras.layers.Conv2D(4, 3, activation="relu"),
                            keras.layers.Flatten(), keras.layers.Dense(3, activation="softmax")])
    cnn.save(tmp_path / "cnn.keras")
    arrays = dataclasses.replace(tiny_params.data.arrays, initial="old.npz", incremental="new.npz")
    params = dataclasses.replace(tiny_params, seeds=[0], baseline=BaselineParams("cnn.keras"),
                                 data=dataclasses.replace(tiny_params.data, source="arrays", arrays=arrays))
    summary = data.prepare(params.data, tmp_path).to_json()
    assert summary["input_shape"] == [8, 8, 1] and summary["new_classes"] == [3]
    prepared = data.load_prepared(tmp_path)
    base = user_model.load(resolve(params, tmp_path), prepared, params, tmp_path)
    assert base.contract.shape == (8, 8, 1)
    x = prepared.frame("initial_test")
    assert base.arrays(x).shape == (len(x), 8, 8, 1)
    for strategy in UPDATES:  # every option grows a brought CNN's head for the new class
        plan = plan_for(strategy, prepared, params, base, 0)
        assert plan.bundle.model.output.shape[-1] == 4, strategy  # the new class grew the head
        fit(dataclasses.replace(plan, epochs=1), prepared)
        assert plan.bundle.predict_proba(x).shape == (len(x), 4)


def test_bad_baseline_sources_are_one_line(tmp_path, tiny_params):
    (tmp_path / "broken.keras").write_bytes(b"not a zip")
    params, prepared = project(tmp_path, tiny_params, numeric(120, 0), numeric(60, 1), brought_from="broken.keras")
    with pytest.raises(Exception, match=r"broken\.keras: cannot be loaded \(ValueError: not a \.keras zip archive"):
        user_model.load(resolve(params, tmp_path), prepared, params, tmp_path)
    missing = dataclasses.replace(params, baseline=BaselineParams("nowhere.keras"))
    with pytest.raises(ModelSourceError, match=r"nowhere\.keras: not found; set baseline\.from"):
        resolve(missing, tmp_path)


def test_a_keras_model_someone_logged_with_mlflow_is_a_baseline(tmp_path, tiny_params, store, monkeypatch):
    """models:/NAME@ALIAS of a model logged with MLflow's Keras flavour, not by retrainlab."""
    import mlflow
    from mlflow.tracking import MlflowClient

    monkeypatch.chdir(tmp_path)
    (tmp_path / ".dvc").mkdir()
    model = tensor_model(4, 3)
    with mlflow.start_run():
        info = mlflow.keras.log_model(model, name="model", registered_model_name="theirs")
    MlflowClient().set_registered_model_alias("theirs", "prod", info.registered_model_version)
    params, prepared = project(tmp_path, tiny_params, numeric(120, 0), numeric(60, 1), brought_from="models:/theirs@prod")
    origin = resolve(params, tmp_path)
    assert (origin.kind, origin.name, origin.version) == ("registry", "theirs", str(info.registered_model_version))
    bundle = user_model.load(origin, prepared, params, tmp_path)
    x = prepared.frame("initial_test")
    assert np.allclose(bundle.predict_proba(x), model.predict(x[["f0", "f1", "f2", "f3"]].to_numpy("float32"), verbose=0))
    assert bundle.labels == ["a", "b", "c"]


# --- what a brought model outputs: probabilities, logits, or something retrainlab cannot read ---


def separable(n, seed, classes=("a", "b", "c")):
    """Four features whose largest of the first three names the class: learnable in a few epochs."""
    frame = numeric(n, seed)
    frame["y"] = np.asarray(classes)[frame[["f0", "f1", "f2"]].to_numpy().argmax(axis=1) % len(classes)]
    return frame


def logits_model(classes: int, loss) -> keras.Model:
    """A model ending in a linear layer, trained by its owner with a from_logits loss."""
    model = tensor_model(4, classes, activation="linear")
    model.compile(keras.optimizers.Adam(0.01), loss=loss, metrics=["accuracy"])
    return model


def test_a_logits_model_is_read_and_trained_as_its_loss_says(tmp_path, tiny_params):
    """Before: the logits were taken for probabilities, and full-retrain trained them as such
    (0.19 accuracy on 3 classes), while the run said "as the model was compiled"."""
    initial = separable(300, 0)
    model = logits_model(3, keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    labels = pd.Series(initial["y"]).map({"a": 0, "b": 1, "c": 2}).to_numpy()
    model.fit(initial[["f0", "f1", "f2", "f3"]].to_numpy("float32"), labels, epochs=30, verbose=0)
    model.save(tmp_path / "model.keras")
    params, prepared = project(tmp_path, tiny_params, initial, separable(120, 1))
    bundle = user_model.load(resolve(params, tmp_path), prepared, params, tmp_path)
    x = prepared.frame("initial_test")
    logits = model.predict(x[["f0", "f1", "f2", "f3"]].to_numpy("float32"), verbose=0)
    assert np.allclose(bundle.predict_proba(x), keras.ops.convert_to_numpy(keras.ops.softmax(logits)), atol=1e-5)
    assert bundle.compiled["loss"]["config"]["from_logits"] is False and bundle.compiled["from_logits"] == "logits"
    for strategy, at_least in (("full-retrain", 0.8), ("incremental", 0.8)):
        seed_everything(0)
        plan = plan_for(strategy, prepared, dataclasses.replace(params, model=dataclasses.replace(
            params.model, epochs=30)), bundle, 0)
        fit(plan, prepared)
        accuracy = np.mean(plan.bundle.predict_labels(x) == x["y"].to_numpy())
        assert accuracy >= at_least, (strategy, accuracy)
    assert "sparse_categorical_crossentropy (from_logits=True: its output layer now turns the logits" in (
        plan.compiled_with)


def test_a_binary_logits_unit_becomes_its_sigmoid(tmp_path, tiny_params):
    initial, incremental = separable(200, 0, ("a", "b")), separable(80, 1, ("a", "b"))
    model = logits_model(1, keras.losses.BinaryCrossentropy(from_logits=True, label_smoothing=0.1))
    model.save(tmp_path / "model.keras")
    params, prepared = project(tmp_path, tiny_params, initial, incremental)
    bundle = user_model.load(resolve(params, tmp_path), prepared, params, tmp_path)
    x = prepared.frame("initial_test")
    z = model.predict(x[["f0", "f1", "f2", "f3"]].to_numpy("float32"), verbose=0)[:, 0]
    assert np.allclose(bundle.predict_proba(x)[:, 1], 1 / (1 + np.exp(-z)), atol=1e-5)
    plan = plan_for("incremental", prepared, params, bundle, 0)
    fit(plan, prepared)
    assert "binary_crossentropy (label_smoothing=0.1, from_logits=True" in plan.compiled_with


@pytest.mark.parametrize("model, classes, says", [
    (lambda: logits_model(1, "mean_squared_error"), ("a", "b"),
     r"predicts a number \(regression\), but the label '[^']+' is read as classification"),
    (lambda: tensor_model(4, 3, activation="linear"), ("a", "b", "c"), r"activation linear\) gives no class"),
    (lambda: tensor_model(4, 3, activation="relu"), ("a", "b", "c"), r"activation relu\) gives no class"),
])
def test_an_output_retrainlab_cannot_read_is_refused_in_one_line(tmp_path, tiny_params, model, classes, says):
    """A linear unit under a regression loss, uncompiled logits (nothing says they are logits),
    a ReLU: none is a probability. Before: three chance-level versions were registered."""
    model().save(tmp_path / "model.keras")
    params, prepared = project(tmp_path, tiny_params, separable(120, 0, classes), separable(60, 1, classes))
    with pytest.raises(ModelShapeError, match=rf"^model\.keras: its output layer 'head' \(Dense, .*{says}"):
        user_model.load(resolve(params, tmp_path), prepared, params, tmp_path)


@pytest.mark.parametrize("poison", ["one", "all"])
def test_a_brought_model_with_a_weight_not_finite_is_refused_naming_the_file(tmp_path, tiny_params, poison):
    """One NaN in a kernel: Keras' fused predict can hide it, a direct call gives NaN for every
    row. Every weight NaN: the file is said to be unusable, not the learning rate to blame."""
    model = tensor_model(4, 3)
    kernel = model.get_layer("body").kernel
    values = keras.ops.convert_to_numpy(kernel)
    values[0, 0] = np.nan
    kernel.assign(values if poison == "one" else np.full_like(values, np.nan))
    model.save(tmp_path / "model.keras")
    params, prepared = project(tmp_path, tiny_params, numeric(120, 0), numeric(60, 1))
    with pytest.raises(UnusableModel, match=r"^model\.keras: \d+ of its \d+ weights are not finite .*body/kernel.*"
                                            r"restore a good copy or retrain it") as info:
        user_model.load(resolve(params, tmp_path), prepared, params, tmp_path)
    assert "learning_rate" not in str(info.value)
