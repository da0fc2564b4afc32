"""The plain reference for the time to answer: the same fits as the pipeline, in one process.

    python benchmarks/bare_keras.py PREPARED_DIR SETTINGS_JSON

What a user would write by hand to answer "should I retrain?" with Keras alone: read the
prepared splits into memory, then for each seed fit the baseline on the initial data, a
full retrain on both, an incremental update (the baseline trained further on the new data)
and a fine-tune (the baseline frozen, a new hidden layer and the output trained on the new
data), and score each on the old and the new test sets.

The same models as the pipeline's, so that the ratio compares like with like:
- the same inputs: the numeric columns normalised with their training rows' mean and
  variance, each categorical column one-hot over its training values and one unit for
  values it has not seen (summary.json says which column is which);
- the same architecture, epochs, batch size and learning rates (the pipeline's params);
- the same classes: the baseline has an output unit per class of the initial data, and the
  updates grow it for the classes only the new data has (the old units keep their weights,
  a new unit starts small and random, its bias at the old biases' mean);
- the same fine-tune: a new hidden layer that starts as the identity under the old output
  layer's weights, so the fine-tune starts from the baseline's predictions.

An earlier version copied the baseline with `clone_model` and `set_weights`, which in Keras
3 leaves a `Normalization` layer's adapted mean and variance behind (the copy normalises
nothing), and sized the output for every class from the start: its incremental and
fine-tune trained other models than the pipeline's (acc_new 0.595 and 0.512 against 0.991
on the 6,000-row case). Passing the statistics to the layer's constructor keeps them in a
clone, and tests/benchmarks/test_bare_keras.py holds the two to each other.

Prints one JSON line: its figures and the process's time from start to end, imports
included, which benchmarks/time_to_answer.py also measures from outside.
"""

from __future__ import annotations

import json
import os
import sys
import time

STARTED = time.perf_counter()
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

SPLITS = ("initial_train", "initial_test", "incremental_train", "incremental_test")


def main(prepared: str, settings_path: str) -> None:
    settings = json.loads(open(settings_path).read())
    summary = json.loads(open(f"{prepared}/summary.json").read())
    label = summary["label"]
    splits = {name: pd.read_parquet(f"{prepared}/{name}.parquet") for name in SPLITS}
    kinds = {f["name"]: f["kind"] for f in summary["features"]}
    if "text" in kinds.values():
        raise SystemExit("bare_keras.py: text columns are not part of the reference")
    numeric = [name for name, kind in kinds.items() if kind == "numeric"]
    categorical = [name for name, kind in kinds.items() if kind != "numeric"]
    old_labels = sorted(set(splits["initial_train"][label]))
    labels = old_labels + sorted(set(splits["incremental_train"][label]) - set(old_labels))
    index = {value: i for i, value in enumerate(labels)}

    def xy(*names, vocabulary=None):
        """The rows' numeric columns, and their categorical ones one-hot over `vocabulary`
        (each column's values in the model's training rows; unknown values on an extra unit,
        as a `StringLookup` has); `vocabulary` None: these rows' own."""
        frame = pd.concat([splits[n] for n in names], ignore_index=True)
        vocabulary = vocabulary or {c: sorted(set(frame[c].astype(str))) for c in categorical}
        hot = [np.eye(len(vocabulary[c]) + 1, dtype="float32")[
                   frame[c].astype(str).map({v: i + 1 for i, v in enumerate(vocabulary[c])}).fillna(0).astype(int)]
               for c in categorical]
        x = [frame[numeric].to_numpy("float32"), np.hstack(hot) if hot else np.zeros((len(frame), 0), "float32")]
        return x, frame[label].map(index).to_numpy(), vocabulary

    model_cfg, updates = settings["model"], settings["strategies"]
    scores = {}
    for seed in settings["seeds"]:
        keras.utils.set_random_seed(seed)
        x_old, y_old, old_words = xy("initial_train")
        x_new, y_new, _ = xy("incremental_train", vocabulary=old_words)
        x_all, y_all, all_words = xy("initial_train", "incremental_train")
        baseline = mlp(x_old, len(old_labels), model_cfg)
        fit(baseline, x_old, y_old, model_cfg, model_cfg)
        fresh = mlp(x_all, len(labels), model_cfg)
        fit(fresh, x_all, y_all, model_cfg, model_cfg)
        further = head(baseline, len(labels), new_layers=0, frozen=False)
        fit(further, x_new, y_new, updates["incremental"], model_cfg)
        tuned = head(baseline, len(labels), new_layers=updates["fine-tune"].get("new_layers", 1), frozen=True)
        fit(tuned, x_new, y_new, updates["fine-tune"], model_cfg)
        for name, model, words in (("baseline", baseline, old_words), ("full-retrain", fresh, all_words),
                                   ("incremental", further, old_words), ("fine-tune", tuned, old_words)):
            scores[f"{name}/{seed}"] = {test: accuracy(model, *xy(split, vocabulary=words)[:2])
                                        for test, split in (("old", "initial_test"), ("new", "incremental_test"))}
    print(json.dumps({"seconds": time.perf_counter() - STARTED, "features": len(kinds), "scores": scores}))


def mlp(x: list, classes: int, cfg: dict) -> keras.Model:
    """Numeric columns normalised, the one-hot categorical ones as they are, hidden layers, a softmax."""
    numbers, hot = keras.Input((x[0].shape[1],)), keras.Input((x[1].shape[1],))
    h = keras.layers.Normalization(mean=x[0].mean(axis=0), variance=x[0].var(axis=0))(numbers)
    if x[1].shape[1]:
        h = keras.layers.Concatenate()([h, hot])
    for units in cfg["hidden_units"]:
        h = keras.layers.Dropout(cfg["dropout"])(keras.layers.Dense(units, activation="relu")(h))
    return keras.Model([numbers, hot], keras.layers.Dense(classes, activation="softmax")(h))


def head(baseline: keras.Model, classes: int, new_layers: int, frozen: bool) -> keras.Model:
    """A copy of the baseline, its body frozen or not, `new_layers` identity-initialised
    layers, and its output grown to `classes` units."""
    body = keras.models.clone_model(baseline)
    body.set_weights(baseline.get_weights())
    for layer in body.layers:
        layer.trainable = not frozen
    h = body.layers[-1].input
    for _ in range(new_layers):
        h = keras.layers.Dense(h.shape[-1], activation="relu", kernel_initializer="identity")(h)
    kernel, bias = body.layers[-1].get_weights()
    added = classes - kernel.shape[1]
    new_kernel = keras.ops.convert_to_numpy(keras.initializers.GlorotUniform()((kernel.shape[0], added)))
    output = keras.layers.Dense(classes, activation="softmax")
    model = keras.Model(body.inputs, output(h))
    output.set_weights([np.hstack([kernel, new_kernel]), np.concatenate([bias, np.full(added, bias.mean())])])
    return model


def fit(model: keras.Model, x, y, cfg: dict, defaults: dict) -> None:
    rate = cfg.get("learning_rate", defaults["learning_rate"])
    model.compile(optimizer=keras.optimizers.Adam(rate), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=cfg.get("epochs", defaults["epochs"]), batch_size=defaults["batch_size"], verbose=0)


def accuracy(model: keras.Model, x, y) -> float:
    return float(np.mean(model.predict(x, batch_size=4096, verbose=0).argmax(axis=1) == y))


if __name__ == "__main__":
    main(*sys.argv[1:3])
