"""Is each option as good as the Keras script a user would write? The parity benchmark.

    .venv/bin/python benchmarks/parity.py [--only KIND ...] [--seeds 0 1 2] [--out benchmarks/results/parity.json]

For each kind of task, the pipeline's own steps run in this process against a temporary
project and SQLite store (prepare, the baseline, every option, as benchmarks/strategies.py
does), with the project's default params. Then the same options, written as a Keras user
writes them from the seed article and the options' papers, train on **the pipeline's own
prepared splits** (`data/prepared/*.parquet`) with the same seeds, and both are scored on
the same test rows with the same target (`(1 - s) * old + s * new`, s the new traffic
share; RMSE for a regressor).

The bare twins (`Twin`), in plain Keras and pandas, nothing of retrainlab's:
- the network: numeric columns through a `Normalization`, each categorical column a
  `StringLookup` one-hot, each text column `TextVectorization` into an `Embedding` averaged
  over its tokens, all adapted on the training rows; the `model` section's hidden units,
  dropout, Adam learning rate and batch; a softmax output (a regressor: one unit on the
  standardised label);
- baseline and full-retrain: `fit(validation_split=model.validation_fraction)` with
  `EarlyStopping(patience=model.patience, restore_best_weights=True)`, at most
  `model.epochs`; full-retrain adapts its preprocessing on old + new rows;
- incremental: the baseline's weights, its output grown by a unit per new class (old units
  kept), trained on the new rows at the option's epochs and learning rate;
- fine-tune (the seed article): the body frozen, a new identity-initialised ReLU layer and
  the output on top, trained on the new rows;
- replay: incremental on the new rows plus a uniform sample of old ones (`old_fraction` x
  the new rows);
- distill (Hinton et al. 2015, as Li & Hoiem 2016 use it): incremental with the KL
  divergence from the baseline's outputs at temperature T, on the old classes, times T^2
  and `weight` (a regressor: the squared distance to the baseline's prediction);
- shrink-perturb (Ash & Adams 2020): every trainable weight `shrink x w + noise x w_fresh`,
  then trained on old + new rows.
A twin keeps the baseline's preprocessing (what a user's copied model does): it neither
grows a vocabulary nor adapts anew.

The verdict per option (`parity`): the pipeline's mean minus the twin's (better-signed: for
a regressor, the twin's RMSE minus the pipeline's), and the 99% Welch interval of that
difference from the two sets of seeds. `below` when the whole interval lies under minus a
tolerance (a point of accuracy, 2.5% of the twin's RMSE): the option learns less than its
bare twin beyond the seeds' noise; `above` when it lies over the tolerance; else `within`.
tests/benchmarks/test_parity.py holds the pipeline to this rule on small data. The two
Markdown tables printed last (option x task kind, then each cell with its interval) are
docs/BENCHMARKS.md's; `--render` prints them again from a results file.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import math
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from scipy import stats  # noqa: E402

import parity_tables  # noqa: E402
import tensorflow as tf  # noqa: E402  (string tensors: Keras' text layers need TensorFlow)

OPTIONS = ("baseline", "full-retrain", "incremental", "fine-tune", "replay", "distill", "shrink-perturb")
SPLITS = ("initial_train", "initial_test", "incremental_train", "incremental_test")


@dataclasses.dataclass(frozen=True)
class Kind:
    """A task kind of the table: which data, as `data` params, and what to write first."""

    table: str  # in words, for the table
    data: dict
    write: Callable[[Path], dict] | None = None  # writes the user's files; returns more `data` changes


def user_files(name: str) -> Callable[[Path], dict]:
    make, label = parity_tables.TABLES[name]

    def write(root: Path) -> dict:
        initial, incremental = make(0)
        (root / "data" / "raw").mkdir(parents=True, exist_ok=True)
        initial.to_csv(root / "data" / "raw" / "initial.csv", index=False)
        incremental.to_csv(root / "data" / "raw" / "incremental.csv", index=False)
        return {"files": {"initial": "data/raw/initial.csv", "incremental": "data/raw/incremental.csv",
                          "label": label, "features": [], "text": None}}
    return write


def digit_arrays(root: Path) -> dict:
    """The digits as 8x8 images in .npz files, the classes 7-9 only in the new one."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    rng = np.random.default_rng(0)
    order = rng.permutation(len(digits.target))
    images, labels = digits.images[order].astype("float32"), digits.target[order]
    old = labels < 7
    later = np.concatenate([np.flatnonzero(~old), np.flatnonzero(old)[: int(old.sum() * 0.3)]])
    first = np.flatnonzero(old)[int(old.sum() * 0.3):]
    (root / "data" / "raw").mkdir(parents=True, exist_ok=True)
    np.savez(root / "data" / "raw" / "initial.npz", x=images[first], y=labels[first])
    np.savez(root / "data" / "raw" / "incremental.npz", x=images[later], y=labels[later])
    return {"arrays": {"initial": "data/raw/initial.npz", "incremental": "data/raw/incremental.npz"}}


def brought_cnn(root: Path) -> dict:
    """The README's brought model: examples/make_examples.py's small CNN on the digit images
    (0-6 first, then 7-9 arrive), saved as .keras, trained on the initial images only."""
    spec = importlib.util.spec_from_file_location("make_examples", PROJECT / "examples" / "make_examples.py")
    examples = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(examples)
    examples.digits_cnn(root / "data" / "raw")
    return {"arrays": {"initial": "data/raw/initial.npz", "incremental": "data/raw/incremental.npz"},
            "baseline": "data/raw/cnn.keras"}


KINDS = {
    "numeric": Kind("digits, 64 pixel columns; 3 classes only in the new data", {"source": "digits",
                                                                                 "scenario": "new_classes"}),
    "categorical": Kind("ratings: user and item IDs as strings, a year, a genre; label liked",
                        {"source": "files"}, user_files("ratings")),
    "text, topic moved": Kind("short posts, two classes, topics moved between the files",
                              {"source": "files"}, user_files("posts")),
    "text, new language": Kind("the text source: tweets, then reviews in other words", {"source": "text",
                                                                                        "scenario": "covariate_shift"}),
    "regressor": Kind("friedman, covariate shift", {"source": "friedman", "scenario": "covariate_shift"}),
    "images": Kind("the digits as 8x8 arrays (.npz); classes 7-9 only in the new data", {"source": "arrays"},
                   digit_arrays),
    "underfitted": Kind("3-class spirals, 300 rows then 600 more of the same", {"source": "files"},
                        user_files("spirals")),
    "brought .keras": Kind("the README's digits CNN (.keras, 7 classes), digit images 7-9 arriving",
                           {"source": "arrays"}, brought_cnn),
}


# --- the pipeline ---------------------------------------------------------------------------

def pipeline(kind: Kind, seeds: list[int], root: Path, changes: Callable | None = None) -> dict:
    """The pipeline's per-seed target of every option, run in this process on a fresh project
    at `root`; `changes(params)` may alter the params (the test's small settings)."""
    from retrainlab.pipeline.params import load_params
    from retrainlab.pipeline.prepare import prepare_step
    from retrainlab.pipeline.strategy_step import run_strategy

    (root / ".dvc").mkdir(parents=True, exist_ok=True)
    data = dict(kind.data)
    if kind.write is not None:
        data.update(kind.write(root))
    brought = data.pop("baseline", None)
    params = load_params(PROJECT / "params.yaml")
    if brought is not None:
        params = dataclasses.replace(params, baseline=dataclasses.replace(params.baseline, from_=brought))
    nested = {key: dataclasses.replace(getattr(params.data, key), **data.pop(key))
              for key in ("files", "arrays", "synthetic") if key in data}
    params = dataclasses.replace(
        params, seeds=seeds, data=dataclasses.replace(params.data, **data, **nested),
        tracking=dataclasses.replace(params.tracking, system_metrics=False, experiment="parity",
                                     registered_model="parity"))
    if changes is not None:
        params = changes(params)
    cwd, store = os.getcwd(), os.environ.get("MLFLOW_TRACKING_URI")
    os.chdir(root)
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{root / 'mlflow.db'}"
    try:
        prepare_step(params, root)
        records = {name: run_strategy(name, params, root) for name in OPTIONS if name == "baseline"
                   or name in params.strategies}
    finally:
        os.chdir(cwd)
        if store is None:
            os.environ.pop("MLFLOW_TRACKING_URI")
        else:
            os.environ["MLFLOW_TRACKING_URI"] = store
    share = params.compare.new_traffic_share
    regression = params_task(root) == "regression"
    old, new = ("rmse_old", "rmse_new") if regression else ("acc_old", "acc_new")
    return {"params": params, "regression": regression, "share": share,
            "targets": {name: {int(seed): (1 - share) * figures[old] + share * figures[new]
                               for seed, figures in record.per_seed.items()} for name, record in records.items()}}


def params_task(root: Path) -> str:
    return json.loads((root / "data" / "prepared" / "summary.json").read_text()).get("task") or "classification"


def settings_of(params) -> dict:
    """The params the twins read, as plain values."""
    m = params.model
    model = {"hidden_units": list(m.hidden_units), "dropout": m.dropout, "learning_rate": m.learning_rate,
             "epochs": m.epochs, "batch_size": m.batch_size, "patience": m.patience,
             "validation_fraction": m.validation_fraction, "text_tokens": m.text_tokens,
             "text_length": m.text_length, "embedding_dim": m.embedding_dim}
    options = {name: dataclasses.asdict(s) if dataclasses.is_dataclass(s) else dict(s)
               for name, s in params.strategies.items()}
    brought = None if params.baseline.from_ == "train" else params.baseline.from_
    return {"model": model, "strategies": options, "share": params.compare.new_traffic_share, "brought": brought}


# --- the bare twins ---------------------------------------------------------------------------

class Twin:
    """The options as a Keras user writes them, on a project's prepared splits."""

    def __init__(self, prepared: Path, settings: dict) -> None:
        summary = json.loads((prepared / "summary.json").read_text())
        self.label = summary["label"]
        self.kinds = {f["name"]: f["kind"] for f in summary["features"]}
        self.regression = (summary.get("task") or "classification") == "regression"
        self.splits = {name: pd.read_parquet(prepared / f"{name}.parquet") for name in SPLITS}
        self.model, self.options, self.share = settings["model"], settings["strategies"], settings["share"]
        self.numeric = [c for c, k in self.kinds.items() if k == "numeric"]
        self.names = {c: f"in{i}" for i, c in enumerate(self.kinds)}
        if self.regression:
            y = self.splits["initial_train"][self.label].to_numpy("float64")
            self.moments = {"old": (y.mean(), y.std() or 1.0)}
            y = np.concatenate([y, self.splits["incremental_train"][self.label].to_numpy("float64")])
            self.moments["all"] = (y.mean(), y.std() or 1.0)
            self.classes = []
        else:
            old = sorted(set(self.splits["initial_train"][self.label].astype(str)))
            self.classes = old + sorted(set(self.splits["incremental_train"][self.label].astype(str)) - set(old))
            self.old_classes = len(old)

    # inputs and labels
    def x(self, frame: pd.DataFrame) -> dict:
        out = {}
        if self.numeric:
            out["numbers"] = frame[self.numeric].to_numpy("float32")
        for column, kind in self.kinds.items():
            if kind != "numeric":  # Keras takes no object arrays: text goes in as a string tensor
                out[self.names[column]] = tf.constant(frame[column].astype(str).tolist(), shape=(len(frame), 1))
        return out

    def y(self, frame: pd.DataFrame, moments=None) -> np.ndarray:
        if self.regression:
            mean, std = moments
            return ((frame[self.label].to_numpy("float64") - mean) / std).astype("float32")
        index = {c: i for i, c in enumerate(self.classes)}
        return frame[self.label].astype(str).map(index).to_numpy()

    def rows(self, *names: str) -> pd.DataFrame:
        return pd.concat([self.splits[n] for n in names], ignore_index=True)

    # the network
    def preprocessing(self, frame: pd.DataFrame) -> dict:
        """The preprocessing layers, adapted on `frame`'s rows."""
        m, layers = self.model, {}
        if self.numeric:
            layers["numbers"] = keras.layers.Normalization()
            layers["numbers"].adapt(frame[self.numeric].to_numpy("float32"))
        for column, kind in self.kinds.items():
            name = self.names[column]
            values = tf.constant(frame[column].astype(str).tolist())
            if kind == "text":
                layers[name] = keras.layers.TextVectorization(max_tokens=m["text_tokens"] + 2,
                                                              output_sequence_length=m["text_length"])
            elif kind != "numeric":
                layers[name] = keras.layers.StringLookup(output_mode="one_hot")
            if kind != "numeric":
                layers[name].adapt(values)
        return layers

    def network(self, pre: dict, outputs: int, seed: int) -> keras.Model:
        m = self.model
        keras.utils.set_random_seed(seed)
        inputs, parts = {}, []
        if "numbers" in pre:
            inputs["numbers"] = keras.Input((len(self.numeric),), name="numbers")
            parts.append(pre["numbers"](inputs["numbers"]))
        for column, kind in self.kinds.items():
            if kind == "numeric":
                continue
            name = self.names[column]
            inputs[name] = keras.Input((1,), dtype="string", name=name)
            encoded = pre[name](inputs[name])
            if kind == "text":
                embed = keras.layers.Embedding(pre[name].vocabulary_size(), m["embedding_dim"], mask_zero=True,
                                               name=f"embed_{name}")
                encoded = keras.layers.GlobalAveragePooling1D()(embed(encoded))
            parts.append(encoded)
        h = parts[0] if len(parts) == 1 else keras.layers.Concatenate()(parts)
        for i, units in enumerate(m["hidden_units"]):
            h = keras.layers.Dense(units, activation="relu", name=f"hidden_{i}")(h)
            h = keras.layers.Dropout(m["dropout"])(h)
        out = keras.layers.Dense(outputs or 1, activation=None if self.regression else "softmax", name="out")(h)
        return keras.Model(inputs, out)

    def copy(self, model: keras.Model, pre: dict, outputs: int, seed: int) -> keras.Model:
        """`model`'s weights in a network with `outputs` units, a new class's unit started
        small and random, its bias at the old biases' mean."""
        twin = self.network(pre, outputs, seed)
        for layer in model.layers:
            if layer.weights and layer.name != "out" and not isinstance(layer, PREPROCESSING):
                twin.get_layer(layer.name).set_weights(layer.get_weights())
        twin.get_layer("out").set_weights(grown_weights(*model.get_layer("out").get_weights(), outputs or 1, seed))
        return twin

    def compile(self, model: keras.Model, rate: float, loss=None, option: str = "model") -> None:
        loss = loss or ("mse" if self.regression else "sparse_categorical_crossentropy")
        model.compile(optimizer=keras.optimizers.Adam(rate), loss=loss)

    def fit_model_section(self, model: keras.Model, frame: pd.DataFrame, moments) -> None:
        m = self.model
        self.compile(model, m["learning_rate"])
        stop = [keras.callbacks.EarlyStopping(patience=m["patience"], restore_best_weights=True)] \
            if m["patience"] is not None else []
        frame = frame.sample(frac=1.0, random_state=0)  # validation_split takes the last rows
        model.fit(self.x(frame), self.y(frame, moments), epochs=m["epochs"], batch_size=m["batch_size"], verbose=0,
                  validation_split=m["validation_fraction"] if stop else 0.0, callbacks=stop)

    def fit_option(self, model, frame, option: str, moments, y=None, loss=None) -> None:
        s = self.options[option]
        self.compile(model, s["learning_rate"], loss, option)
        model.fit(self.x(frame), self.y(frame, moments) if y is None else y, epochs=s["epochs"],
                  batch_size=self.model["batch_size"], verbose=0)

    # scoring
    def target(self, model: keras.Model, moments) -> float:
        scores = []
        for split in ("initial_test", "incremental_test"):
            frame = self.splits[split]
            predicted = model.predict(self.x(frame), batch_size=4096, verbose=0)
            if self.regression:
                mean, std = moments
                error = predicted[:, 0] * std + mean - frame[self.label].to_numpy("float64")
                scores.append(float(np.sqrt(np.mean(error**2))))
            else:
                scores.append(float(np.mean(predicted.argmax(axis=1) == self.y(frame))))
        return (1 - self.share) * scores[0] + self.share * scores[1]

    # the options, for one seed
    def run(self, seed: int, options=OPTIONS) -> dict[str, float]:
        outputs = len(self.classes)
        old_rows, new_rows = self.rows("initial_train"), self.rows("incremental_train")
        both = self.rows("initial_train", "incremental_train")
        old_m = self.moments["old"] if self.regression else None
        base, pre = self.baseline(old_rows, seed, old_m)
        figures = {"baseline": self.target(base, old_m)}
        for option in options:
            if option == "baseline" or (option not in self.options and option != "full-retrain"):
                continue
            keras.utils.set_random_seed(seed + 101)
            if option == "full-retrain":
                all_m = self.moments["all"] if self.regression else None
                fresh = self.fresh(both, outputs, seed)
                self.fit_model_section(fresh, both, all_m)
                figures[option] = self.target(fresh, all_m)
                continue
            model = self.copy(base, pre, outputs, seed)
            if option == "incremental":
                self.fit_option(model, new_rows, option, old_m)
            elif option == "fine-tune":
                model = self.head(model, self.options[option].get("new_layers", 1))
                self.fit_option(model, new_rows, option, old_m)
            elif option == "replay":
                s = self.options[option]
                count = s.get("old_rows") or round(s.get("old_fraction", 1.0) * len(new_rows))
                sample = old_rows.sample(n=min(count, len(old_rows)), random_state=seed)
                self.fit_option(model, pd.concat([new_rows, sample], ignore_index=True), option, old_m)
            elif option == "distill":
                self.distill(model, base, new_rows, old_m)
            elif option == "shrink-perturb":
                s = self.options[option]
                fresh = self.fresh_start(model, pre, outputs, seed + 7919)
                for variable, start in zip(model.trainable_variables, fresh.trainable_variables, strict=True):
                    variable.assign(s["shrink"] * variable.numpy() + s["noise"] * start.numpy())
                self.fit_option(model, both, option, old_m)
            figures[option] = self.target(model, old_m)
        return figures

    def baseline(self, rows: pd.DataFrame, seed: int, moments) -> tuple[keras.Model, dict]:
        """The baseline trained as the model section says, and its preprocessing."""
        pre = self.preprocessing(rows)
        base = self.network(pre, self.old_classes if not self.regression else 0, seed)
        self.fit_model_section(base, rows, moments)
        return base, pre

    def fresh(self, rows: pd.DataFrame, outputs: int, seed: int) -> keras.Model:
        """Full retrain's start: the network with its preprocessing adapted on `rows`."""
        return self.network(self.preprocessing(rows), outputs, seed)

    def fresh_start(self, model: keras.Model, pre: dict, outputs: int, seed: int) -> keras.Model:
        """Fresh initial weights of `model`'s shapes (shrink-perturb's noise)."""
        return self.network(pre, outputs, seed)

    def head(self, model: keras.Model, new_layers: int) -> keras.Model:
        """The seed article's fine-tune: the body frozen, new identity-started layers and the
        output (its old weights) trained."""
        for layer in model.layers:
            layer.trainable = False
        out = model.layers[-1]
        h = out.input
        for _ in range(new_layers):
            h = keras.layers.Dense(h.shape[-1], activation="relu", kernel_initializer="identity")(h)
        head = keras.layers.Dense(out.units, activation=out.activation, name="head")
        tuned = keras.Model(model.inputs, head(h))
        head.set_weights(out.get_weights())
        return tuned

    def distill(self, model: keras.Model, teacher: keras.Model, rows: pd.DataFrame, moments) -> None:
        s = self.options["distill"]
        taught = teacher.predict(self.x(rows), batch_size=4096, verbose=0).astype("float32")
        y = self.y(rows, moments).astype("float32").reshape(-1, 1)
        weight, temperature, width = s["weight"], s["temperature"], taught.shape[1]
        if self.regression:
            def loss(packed, predicted):
                label, value = packed[:, 0], packed[:, 1]
                return (keras.ops.square(predicted[:, 0] - label)
                        + weight * keras.ops.square(predicted[:, 0] - value))
        else:
            soft = keras.ops.convert_to_numpy(keras.ops.softmax(np.log(np.clip(taught, 1e-7, 1)) / temperature))

            def loss(packed, predicted):
                label, soft = keras.ops.cast(packed[:, 0], "int32"), packed[:, 1:]
                hard = keras.losses.sparse_categorical_crossentropy(label, predicted)
                logits = keras.ops.log(keras.ops.clip(predicted[:, :width], 1e-7, 1.0)) / temperature
                log_student = keras.ops.log_softmax(logits, axis=-1)
                kl = keras.ops.sum(soft * (keras.ops.log(keras.ops.clip(soft, 1e-7, 1.0)) - log_student), axis=-1)
                return hard + weight * temperature**2 * kl
            taught = soft
        self.fit_option(model, rows, "distill", moments, y=np.hstack([y, taught]), loss=loss)


class BroughtTwin(Twin):
    """The options on a brought `.keras` model, as its owner would write them: the file
    loaded, trained with its own compiled optimizer (fresh state) and loss, the fine-tune at
    the fine-tune's learning rate; full retrain: `clone_model` (fresh weights) trained as
    the model section says, with the model's optimizer. Its one input takes the prepared
    numeric columns in their order, reshaped to the input's shape."""

    def __init__(self, prepared: Path, settings: dict, path: Path) -> None:
        super().__init__(prepared, settings)
        self.path = path
        self.brought = keras.models.load_model(path)  # its input's shape and its optimizer's settings
        self.shape = tuple(self.brought.inputs[0].shape[1:])

    def x(self, frame: pd.DataFrame):
        return frame[self.numeric].to_numpy("float32").reshape((len(frame), *self.shape))

    def compile(self, model: keras.Model, rate: float, loss=None, option: str = "model") -> None:
        if option == "fine-tune":
            return super().compile(model, rate, loss)
        own = self.brought.optimizer
        model.compile(optimizer=type(own).from_config(own.get_config()),
                      loss=loss or "sparse_categorical_crossentropy")

    def baseline(self, rows, seed, moments):
        keras.utils.set_random_seed(seed)
        return keras.models.load_model(self.path), {}

    def grown(self, model: keras.Model, outputs: int, seed: int) -> keras.Model:
        out = model.layers[-1]
        if outputs == out.units:
            return model
        head = keras.layers.Dense(outputs, activation=out.activation)
        grown = keras.Model(model.inputs, head(out.input))
        head.set_weights(grown_weights(*out.get_weights(), outputs, seed))
        return grown

    def copy(self, model, pre, outputs, seed):
        twin = keras.models.clone_model(model)
        twin.set_weights(model.get_weights())
        return self.grown(twin, outputs, seed)

    def fresh(self, rows, outputs, seed):
        keras.utils.set_random_seed(seed)
        return self.grown(keras.models.clone_model(keras.models.load_model(self.path)), outputs, seed)

    def fresh_start(self, model, pre, outputs, seed):
        keras.utils.set_random_seed(seed)
        return keras.models.clone_model(model)


def grown_weights(kernel: np.ndarray, bias: np.ndarray, outputs: int, seed: int) -> list[np.ndarray]:
    """An output layer's weights with `outputs` units: the old units as they were, each new
    class's unit small and random, its bias at the old biases' mean."""
    added = outputs - kernel.shape[1]
    fresh = keras.ops.convert_to_numpy(keras.initializers.GlorotUniform(seed)((kernel.shape[0], added)))
    return [np.hstack([kernel, fresh]), np.concatenate([bias, np.full(added, bias.mean())])]


PREPROCESSING = (keras.layers.Normalization, keras.layers.StringLookup, keras.layers.TextVectorization)


def twins(prepared: Path, settings: dict, seeds: list[int], options=OPTIONS) -> dict[str, dict[int, float]]:
    """Each option's twin's target by seed. A brought model (`settings["brought"]`, a path
    from the project's root, which holds `prepared`) gets `BroughtTwin`s."""
    brought = settings.get("brought")
    twin = (BroughtTwin(prepared, settings, prepared.parents[1] / brought) if brought
            else Twin(prepared, settings))
    by_seed = {seed: twin.run(seed, options) for seed in seeds}
    return {option: {seed: by_seed[seed][option] for seed in seeds}
            for option in by_seed[seeds[0]]}


# --- the verdict ----------------------------------------------------------------------------

# Within a point of accuracy, or 2.5% of the twin's RMSE, options are as good as their twins:
# what the seeds of a small table cannot resolve, and what no recommendation hinges on.
TOLERANCE = {"accuracy": 0.01, "rmse": 0.025}


def parity(ours: list[float], bare: list[float], lower_is_better: bool = False,
           confidence: float = 0.99) -> dict:
    """The pipeline's mean minus the twin's, better-signed (for an error: the twin's minus
    the pipeline's), and the Welch interval of that difference at `confidence` from the two
    sets of seeds. `below` when the whole interval lies under minus the tolerance (a point of
    accuracy; 2.5% of the twin's RMSE), `above` when it lies over the tolerance, else
    `within`."""
    a, b = np.asarray(ours, float), np.asarray(bare, float)
    diff = (b.mean() - a.mean()) if lower_is_better else (a.mean() - b.mean())
    tolerance = TOLERANCE["rmse"] * abs(b.mean()) if lower_is_better else TOLERANCE["accuracy"]
    va = a.var(ddof=1) / len(a) if len(a) > 1 else 0.0
    vb = b.var(ddof=1) / len(b) if len(b) > 1 else 0.0
    half = 0.0
    if va + vb > 0:
        df = (va + vb) ** 2 / sum(v**2 / (len(x) - 1) for v, x in ((va, a), (vb, b)) if len(x) > 1)
        half = float(stats.t.ppf((1 + confidence) / 2, df)) * math.sqrt(va + vb)
    verdict = "below" if diff + half < -tolerance else "above" if diff - half > tolerance else "within"
    return {"pipeline": float(a.mean()), "bare": float(b.mean()), "difference": float(diff),
            "low": float(diff - half), "high": float(diff + half), "tolerance": float(tolerance),
            "verdict": verdict, "pipeline_seeds": [float(v) for v in a], "bare_seeds": [float(v) for v in b]}


def overrides(settings: list[str]) -> Callable | None:
    """`section.key=value` settings (values in YAML) as a params change."""
    import yaml

    if not settings:
        return None
    parsed = []
    for setting in settings:
        where, _, value = setting.partition("=")
        section, _, key = where.partition(".")
        if not key:
            raise SystemExit(f"--set {setting}: give SECTION.KEY=VALUE, e.g. model.epochs=30")
        parsed.append((section, key, yaml.safe_load(value)))

    def change(params):
        for section, key, value in parsed:
            params = dataclasses.replace(params, **{section: dataclasses.replace(getattr(params, section),
                                                                                 **{key: value})})
        return params
    return change


def measure(name: str, kind: Kind, seeds: list[int], workdir: Path, changes: Callable | None = None) -> dict:
    start = time.perf_counter()
    root = workdir / name.replace(" ", "-").replace(",", "")
    ours = pipeline(kind, seeds, root, changes)
    middle = time.perf_counter()
    bare = twins(root / "data" / "prepared", settings_of(ours["params"]), seeds)
    rows = {option: parity([ours["targets"][option][s] for s in seeds], [bare[option][s] for s in seeds],
                           lower_is_better=ours["regression"])
            for option in OPTIONS if option in ours["targets"] and option in bare}
    return {"kind": name, "table": kind.table, "measure": "rmse" if ours["regression"] else "accuracy",
            "new_traffic_share": ours["share"], "seconds": {"pipeline": middle - start,
                                                            "bare": time.perf_counter() - middle},
            "options": rows}


def rendered(results: list[dict]) -> list[dict]:
    """Results as written by an earlier run, their verdicts weighed again by today's rule."""
    for result in results:
        lower = result["measure"] == "rmse"
        result["options"] = {option: parity(row["pipeline_seeds"], row["bare_seeds"], lower_is_better=lower)
                             for option, row in result["options"].items()}
    return results


def matrix(results: list[dict]) -> str:
    """Option x task kind: the pipeline's mean / the twin's, and the verdict where it is not
    `within`."""
    lines = ["| option | " + " | ".join(f"{r['kind']} ({r['measure']})" for r in results) + " |",
             "| --- |" + " --- |" * len(results)]
    for option in OPTIONS:
        cells = []
        for result in results:
            row = result["options"].get(option)
            verdict = "" if row is None or row["verdict"] == "within" else f" **{row['verdict']}**"
            cells.append("" if row is None else f"{row['pipeline']:.3f} / {row['bare']:.3f}{verdict}")
        lines.append(f"| {option} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def markdown(results: list[dict]) -> str:
    """Each cell: both sides' means with their seeds' 95% intervals (as the report gives an
    option's), the difference with its 99% Welch interval, and the verdict."""
    from retrainlab.measure.evaluation import mean_interval

    def side(values):
        mean, low, high = mean_interval(values)
        return f"{mean:.3f} [{low:.3f}, {high:.3f}]"

    lines = ["| task kind | option | pipeline [95%] | bare Keras [95%] | difference [99%] | verdict |",
             "| --- | --- | --- | --- | --- | --- |"]
    for result in results:
        for option, row in result["options"].items():
            lines.append(f"| {result['kind']} ({result['measure']}) | {option} | {side(row['pipeline_seeds'])} | "
                         f"{side(row['bare_seeds'])} | {row['difference']:+.3f} [{row['low']:+.3f}, "
                         f"{row['high']:+.3f}] | {row['verdict']} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--only", choices=list(KINDS), action="append", help="measure only this task kind")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="a params change for both sides, e.g. model.epochs=30 or model.patience=null (YAML)")
    parser.add_argument("--out", type=Path, default=PROJECT / "benchmarks" / "results" / "parity.json")
    parser.add_argument("--render", type=Path, nargs="+", metavar="JSON",
                        help="print the table of earlier runs' results (verdicts weighed again), train nothing")
    args = parser.parse_args()
    if args.render:
        results = rendered([r for path in args.render for r in json.loads(path.read_text())])
        print(matrix(results) + "\n\n" + markdown(results))
        return
    changes = overrides(args.set)
    results = []
    with tempfile.TemporaryDirectory() as scratch:
        for name, kind in KINDS.items():
            if args.only and name not in args.only:
                continue
            print(f"{name} ...", file=sys.stderr, flush=True)
            results.append(measure(name, kind, args.seeds, Path(scratch), changes))
            print(markdown(results[-1:]), file=sys.stderr, flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(matrix(results) + "\n\n" + markdown(results))


if __name__ == "__main__":
    main()
