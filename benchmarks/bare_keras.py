"""The plain reference for the time to answer: the same fits as the pipeline, in one process.

    python benchmarks/bare_keras.py PREPARED_DIR SETTINGS_JSON

What a user would write by hand to answer "should I retrain?" with Keras alone: read the
prepared splits, then for each seed fit the baseline on the initial data, a full retrain on
both, an incremental update (the baseline trained further on the new data) and a fine-tune
(the baseline frozen, a new hidden layer and output trained on the new data), and score
each on the old and the new test sets. Same architecture, epochs, batch size and learning
rates as the pipeline's params; numeric features only; the output sized for every label
from the start (no growing). Prints one JSON line: its own figures and the process's time
from start to end, imports included, which benchmarks/time_to_answer.py also measures
from outside.
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


def main(prepared: str, settings_path: str) -> None:
    settings = json.loads(open(settings_path).read())
    label = settings["label"]
    splits = {name: pd.read_parquet(f"{prepared}/{name}.parquet")
              for name in ("initial_train", "initial_test", "incremental_train", "incremental_test")}
    features = [c for c in splits["initial_train"].columns
                if c != label and pd.api.types.is_numeric_dtype(splits["initial_train"][c])]
    labels = sorted(set().union(*(set(frame[label].astype(str)) for frame in splits.values())))
    index = {value: i for i, value in enumerate(labels)}

    def xy(*names):
        frame = pd.concat([splits[n] for n in names], ignore_index=True)
        return frame[features].to_numpy("float32"), frame[label].astype(str).map(index).to_numpy()

    model_cfg, updates = settings["model"], settings["strategies"]
    scores = {}
    for seed in settings["seeds"]:
        keras.utils.set_random_seed(seed)
        x_old, y_old = xy("initial_train")
        baseline = mlp(x_old, len(labels), model_cfg)
        fit(baseline, x_old, y_old, model_cfg, model_cfg)
        x_new, y_new = xy("incremental_train")
        x_all, y_all = xy("initial_train", "incremental_train")
        fresh = mlp(x_all, len(labels), model_cfg)
        fit(fresh, x_all, y_all, model_cfg, model_cfg)
        further = keras.models.clone_model(baseline)
        further.set_weights(baseline.get_weights())
        fit(further, x_new, y_new, updates["incremental"], model_cfg)
        tuned = fine_tune(baseline, len(labels), updates["fine-tune"])
        fit(tuned, x_new, y_new, updates["fine-tune"], model_cfg)
        for name, model in (("baseline", baseline), ("full-retrain", fresh), ("incremental", further),
                            ("fine-tune", tuned)):
            scores[f"{name}/{seed}"] = {test: accuracy(model, *xy(split))
                                        for test, split in (("old", "initial_test"), ("new", "incremental_test"))}
    print(json.dumps({"seconds": time.perf_counter() - STARTED, "features": len(features), "scores": scores}))


def mlp(x, classes: int, cfg: dict) -> keras.Model:
    norm = keras.layers.Normalization()
    norm.adapt(x)
    layers = [keras.Input((x.shape[1],)), norm]
    for units in cfg["hidden_units"]:
        layers += [keras.layers.Dense(units, activation="relu"), keras.layers.Dropout(cfg["dropout"])]
    return keras.Sequential([*layers, keras.layers.Dense(classes, activation="softmax")])


def fine_tune(baseline: keras.Model, classes: int, cfg: dict) -> keras.Model:
    """The baseline's layers below its output, frozen, then new hidden layers and an output."""
    body = keras.models.clone_model(baseline)
    body.set_weights(baseline.get_weights())
    for layer in body.layers:
        layer.trainable = False
    x = body.layers[-2].output
    for _ in range(cfg.get("new_layers", 1)):
        x = keras.layers.Dense(body.layers[-1].input.shape[-1], activation="relu")(x)
    return keras.Model(body.inputs, keras.layers.Dense(classes, activation="softmax")(x))


def fit(model: keras.Model, x, y, cfg: dict, defaults: dict) -> None:
    rate = cfg.get("learning_rate", defaults["learning_rate"])
    model.compile(optimizer=keras.optimizers.Adam(rate), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=cfg.get("epochs", defaults["epochs"]), batch_size=defaults["batch_size"], verbose=0)


def accuracy(model: keras.Model, x, y) -> float:
    return float(np.mean(model.predict(x, batch_size=4096, verbose=0).argmax(axis=1) == y))


if __name__ == "__main__":
    main(*sys.argv[1:3])
