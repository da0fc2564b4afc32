"""A standing campaign of bad input: files, params, labels, values, models and commands.

Every kind is run through the real CLI (`retrainlab.cli.main`, in this process to keep the
campaign within a minute or two) against a copy of one small project that has already run
`prepare` and a one-epoch, one-seed `baseline` with an embedded MLflow store. For each kind:
exit status 2, exactly one line on stderr (file descriptor 2, so TensorFlow's and MLflow's
own output counts too) that names the problem, no traceback, no new registered version, no
run left RUNNING, no store made where there was none, and the last good outputs byte for
byte as they were.
docs/RELIABILITY.md lists the kinds and what each gets.
"""

from __future__ import annotations

import hashlib
import shutil
import signal
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from mlflow.tracking import MlflowClient

from retrainlab import cli
from retrainlab.base import layout

from ..conftest import PROJECT

GOOD_PARAMS = {
    "seeds": [0],
    "checkpoint_seconds": 0,
    "data": {"source": "files", "files": {"initial": "old.csv", "incremental": "new.csv", "label": "y"}},
    "model": {"hidden_units": [8], "epochs": 1, "learning_rate": 0.01},
    "strategies": {"incremental": {"epochs": 1}, "fine-tune": {"epochs": 1}},
    "tracking": {"experiment": "fuzz", "registered_model": "fuzz", "system_metrics": False},
}
OUTPUTS = (layout.PREPARED_DIR, Path("metrics"), Path("records"), Path("models"), Path("plots"), layout.REPORTS_DIR)


def rows(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"x0": rng.normal(size=n), "x1": rng.normal(size=n), "city": rng.choice(["a", "b"], n)})
    frame["y"] = np.where(frame["x0"] + (frame["city"] == "a") > 0.5, "p", "q")
    return frame


# --- ways to break the project -----------------------------------------------------------


def params(**changes) -> Callable[[Path], None]:
    """Set params (dotted keys) in params.yaml; a value of ... removes the key."""

    def mutate(root: Path) -> None:
        tree = yaml.safe_load((root / "params.yaml").read_text())
        for dotted, value in changes.items():
            *parents, leaf = dotted.replace("__", ".").split(".")
            node = tree
            for key in parents:
                node = node.setdefault(key, {})
            node[leaf] = value
        (root / "params.yaml").write_text(yaml.safe_dump(tree, sort_keys=False))

    return mutate


def params_text(text: str | bytes) -> Callable[[Path], None]:
    def mutate(root: Path) -> None:
        path = root / "params.yaml"
        path.write_bytes(text if isinstance(text, bytes) else text.encode())

    return mutate


def append_params(text: str) -> Callable[[Path], None]:
    def mutate(root: Path) -> None:
        with open(root / "params.yaml", "a") as handle:
            handle.write(text)

    return mutate


def new_file(content: str | bytes | pd.DataFrame | Callable[[Path], None], name: str = "new.csv"):
    """Replace the incremental file (or `name`) with `content`, and point params at it."""

    def mutate(root: Path) -> None:
        path = root / name
        if isinstance(content, pd.DataFrame):
            content.to_parquet(path) if name.endswith(".parquet") else content.to_csv(path, index=False)
        elif callable(content):
            content(path)
        else:
            path.write_bytes(content if isinstance(content, bytes) else content.encode())
        if name != "new.csv":
            params(**{"data.files.incremental": name})(root)

    return mutate


def both(*mutations: Callable[[Path], None]) -> Callable[[Path], None]:
    def mutate(root: Path) -> None:
        for mutation in mutations:
            mutation(root)

    return mutate


def remove(relative: str) -> Callable[[Path], None]:
    def mutate(root: Path) -> None:
        path = root / relative
        shutil.rmtree(path) if path.is_dir() else path.unlink()

    return mutate


def overwrite(relative: str, content: bytes) -> Callable[[Path], None]:
    def mutate(root: Path) -> None:
        (root / relative).write_bytes(content)

    return mutate


def nested_parquet(path: Path) -> None:
    frame = rows(40, 3)
    frame["x1"] = [[1, 2]] * len(frame)
    frame.to_parquet(path)


def with_row_key(root: Path) -> None:
    """old.csv and new.csv with an order id: every row's own value."""
    for name, n, seed in (("old.csv", 120, 0), ("new.csv", 60, 1)):
        rows(n, seed).assign(order_id=[f"{name[:3]}-{i:04d}" for i in range(n)]).to_csv(root / name, index=False)


def duplicate_columns(frame: pd.DataFrame) -> str:
    text = frame.to_csv(index=False)
    return text.replace("x1", "x0", 1)


def brought(make_model, then: list[str] | None = None) -> Callable[[Path], None]:
    """Save a model the user brings as model.keras, point baseline.from at it, and run `then`
    (e.g. the baseline step, so that the command tried next builds on it)."""

    def mutate(root: Path) -> None:
        make_model().save(root / "model.keras")
        params(**{"baseline.from": "model.keras"})(root)
        for step in then or []:
            assert run_cli(root, [step]) == 0

    return mutate


def named_inputs(head=None, outputs=2, names=("x0", "x1", "city")):
    """A keras-io style model on the project's columns; `head` replaces its softmax Dense."""
    import keras

    inputs = {n: keras.Input((1,), name=n, dtype="string" if n == "city" else "float32") for n in names}
    parts = [keras.layers.StringLookup(vocabulary=["a", "b"], output_mode="one_hot")(t) if n == "city" else t
             for n, t in inputs.items()]
    x = keras.layers.Concatenate()(parts)
    if head == "activation":
        return keras.Model(inputs, keras.layers.Activation("softmax")(keras.layers.Dense(outputs)(x)))
    if head == "linear":
        return keras.Model(inputs, keras.layers.Dense(outputs)(x))
    return keras.Model(inputs, keras.layers.Dense(outputs, activation="softmax")(x))


def _poisoned(model, every: bool = False):
    """The model with one weight of its first kernel NaN, or every weight."""
    kernel = next(v for v in model.weights if v.path.endswith("kernel"))
    values = np.asarray(kernel.numpy())
    values[0, 0] = np.nan
    kernel.assign(values)
    if every:
        for variable in model.weights:
            variable.assign(np.full(variable.shape, np.nan, dtype=variable.dtype))
    return model


def _compiled(model, loss):
    model.compile(optimizer="adam", loss=loss)
    return model


def _arrays(path: Path) -> None:
    rng = np.random.default_rng(0)
    np.savez(path, x=rng.random((60, 2, 2)), y=rng.integers(0, 2, 60))


# What `check --model` takes, as every message about a bad --model value ends.
MODEL_FLAG_FORMS = (r"give --model a \.keras file, models:/NAME@ALIAS, models:/NAME/VERSION or a pipeline's model "
                    r"folder \(models/STRATEGY/seed-N\)")
# A command that reads the store, run after `rm mlflow.db` in a project whose records name runs.
STORE_GONE = (r"^retrainlab: error: /\S+/mlflow\.db: the MLflow store is missing, but records/baseline\.json names "
              r"runs logged to it; restore it from a backup or set MLFLOW_TRACKING_URI to the store they were logged "
              r"to$")

SEED0_MODEL = f"{layout.model_dir('baseline')}/seed-0/model.keras"
SEED0_META = f"{layout.model_dir('baseline')}/seed-0/meta.json"

# name: (mutation, argv, what stderr must say)
KINDS: dict[str, tuple[Callable[[Path], None], list[str], str]] = {
    # params.yaml
    "misspelt key": (params(**{"model.hiden_units": [4]}), ["prepare"], r"unknown parameter 'model\.hiden_units'"),
    "unknown top-level key": (params(colour="blue"), ["prepare"], r"unknown parameter 'colour'"),
    "text for a number": (params(**{"model.epochs": "ten"}), ["baseline"], r"'model\.epochs' must be of type int"),
    "bool for a number": (params(**{"model.epochs": True}), ["baseline"], r"'model\.epochs' must be of type int"),
    "a section given twice": (append_params("\nstrategies:\n  replay: {}\n"), ["prepare"],
                              r"not valid YAML \(found duplicate key \"strategies\""),
    "strategies as a list": (params(strategies=["replay", "distill"]), ["prepare"],
                             r"'strategies' must be a mapping of option to settings"),
    "no strategy chosen": (params(strategies={}), ["prepare"], r"'strategies' needs at least one option"),
    "unknown strategy": (params(**{"strategies.replay_x": {}}), ["prepare"], r"unknown strategy 'strategies\.replay_x'"),
    "hostile strategy name": (params(**{"strategies.<img src=x onerror=alert(1)>": {}}), ["prepare"],
                              r"unknown strategy 'strategies\.<img src=x onerror=alert\(1\)>' \(known: full-retrain"),
    "a section from before strategies": (params(incremental={"epochs": 2}), ["prepare"],
                                         r"'incremental' has moved to 'strategies\.incremental'"),
    "replay fraction not finite": (params(**{"strategies.replay": {"old_fraction": float("inf")}}), ["prepare"],
                                   r"'strategies\.replay\.old_fraction' must be a finite number"),
    "replay rows as text": (params(**{"strategies.replay": {"old_rows": "all"}}), ["prepare"],
                            r"'strategies\.replay\.old_rows' must be of type int"),
    "distill temperature huge": (params(**{"strategies.distill": {"temperature": 1e9}}), ["prepare"],
                                 r"'strategies\.distill\.temperature' must be in \(0, 100\]"),
    "shrink outside [0, 1]": (params(**{"strategies.shrink-perturb": {"shrink": -0.5}}), ["prepare"],
                              r"'strategies\.shrink-perturb\.shrink' must be in \[0, 1\]"),
    "learning rate .inf": (params_text(yaml.safe_dump(GOOD_PARAMS).replace("learning_rate: 0.01", "learning_rate: .inf")),
                           ["baseline"], r"'model\.learning_rate' must be a finite number"),
    "learning rate .nan": (params_text(yaml.safe_dump(GOOD_PARAMS).replace("learning_rate: 0.01", "learning_rate: .nan")),
                           ["baseline"], r"'model\.learning_rate' must be a finite number"),
    "negative tolerance": (params(**{"compare.tolerance": -1}), ["compare"], r"'compare\.tolerance' must be in"),
    "unknown measure": (params(**{"compare.metric": "f2"}), ["prepare"],
                        r"'compare\.metric' is 'f2'; choose one of: auto, accuracy"),
    "a regressor's measure for a classifier": (params(**{"compare.metric": "mape"}), ["prepare"],
                                               r"'mape': it measures a regression model, but this data's task is "
                                               r"classification; choose one of: accuracy"),
    "positive class not a label": (params(**{"compare.metric": "f1", "compare.positive_class": "r"}), ["prepare"],
                                   r"'compare\.positive_class' is 'r', which is not a label of the data \(its labels: "
                                   r"'p', 'q'\)"),
    "cost matrix missing a pair": (params(**{"compare.metric": "cost", "compare.costs": {"p": {"p": 0, "q": 1},
                                                                                         "q": {"q": 0}}}),
                                   ["prepare"], r"'compare\.costs' has no cost for true 'q' predicted 'p'"),
    "cost matrix naming an unknown class": (params(**{"compare.metric": "cost", "compare.costs": {
        "p": {"p": 0, "q": 1, "z": 2}, "q": {"p": 5, "q": 0}}}), ["prepare"], r"names class 'z', which the data "
                                                                             r"does not have"),
    "cost not finite": (params(**{"compare.metric": "cost", "compare.costs": {"p": {"p": 0, "q": float("inf")}}}),
                        ["prepare"], r"'compare\.costs\.p\.q' must be a finite number"),
    "costs without the cost measure": (params(**{"compare.costs": {"p": {"p": 0, "q": 1}}}), ["prepare"],
                                       r"costs are read when compare\.metric is cost"),
    "cost unit with a newline": (params(**{"compare.cost_unit": "$\n<b>"}), ["prepare"],
                                 r"'compare\.cost_unit' must be a short printable unit"),
    "measure changed since prepare": (params(**{"compare.metric": "recall"}), ["incremental"],
                                      r"compare\.metric is 'recall' but the prepared data was scored with 'accuracy'; "
                                      r"run dvc repro"),
    "no seeds allowed": (params(**{"compare.max_seeds": 0}), ["compare"], r"'compare\.max_seeds' must be between 1"),
    "seed budget not finite": (params(**{"compare.budget_seconds": float("nan")}), ["compare"],
                               r"'compare\.budget_seconds' must be a finite number"),
    "seed budget as text": (params(**{"compare.budget_seconds": "5 min"}), ["compare"],
                            r"'compare\.budget_seconds' must be of type float"),
    "huge epochs": (params(**{"model.epochs": 10**9}), ["baseline"], r"'model\.epochs' must be between"),
    "huge layer": (params(**{"model.hidden_units": [10**8]}), ["baseline"], r"'model\.hidden_units' must be between"),
    "a list for the whole file": (params_text("- seeds\n- model\n"), ["prepare"], r"must be a mapping"),
    "duplicate key": (params_text("seeds: [0]\nseeds: [1]\n"), ["prepare"], r"found duplicate key \"seeds\" at line 2\)"),
    "broken YAML": (params_text("model: [\n"), ["prepare"], r"not valid YAML"),
    "not UTF-8": (params_text(b"seeds: [0]\n\xff\xfe\x00"), ["prepare"], r"params\.yaml: (cannot read|not valid YAML)"),
    "no such params file": (lambda root: None, ["prepare", "--params", "nope.yaml"], r"nope\.yaml: cannot read"),
    "unknown source": (params(**{"data.source": "kaggle"}), ["prepare"], r"'data\.source' is 'kaggle'"),
    "a number for a list": (params(seeds=0), ["prepare"], r"'seeds' must be a list"),
    "test fraction out of range": (params(**{"data.test_fraction": 1.5}), ["prepare"], r"'data\.test_fraction'"),
    "blank model name": (params(**{"tracking.registered_model": "  "}), ["baseline"], r"'tracking\.registered_model'"),
    "diverging learning rate": (params(**{"model.learning_rate": 1e30}), ["baseline"],
                                r"training diverged: the loss became (nan|inf) in epoch 1; lower model\.learning_rate"),
    # the data files
    "empty file": (new_file(b""), ["prepare"], r"new\.csv: the file is empty"),
    "header only": (new_file("x0,x1,city,y\n"), ["prepare"], r"new\.csv: has a header but no data rows"),
    "binary garbage": (new_file(b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe"), ["prepare"], r"new\.csv: (cannot be read|no label|line 1 is not UTF-8)"),
    "no label column": (new_file(rows(40, 1).drop(columns="y")), ["prepare"], r"new\.csv: no label column 'y'"),
    "every label missing": (new_file(rows(40, 1).assign(y=None)), ["prepare"], r"new\.csv: no rows left"),
    "extra column": (new_file(rows(40, 1).assign(extra=1)), ["prepare"], r"new\.csv: extra column 'extra'"),
    "missing column": (new_file(rows(40, 1).drop(columns="city")), ["prepare"], r"new\.csv: missing feature column 'city'"),
    "column changes type": (new_file(rows(40, 1).assign(x0="high")), ["prepare"], r"column 'x0' is text but numeric"),
    "one class only": (both(new_file(rows(40, 1).assign(y="p"), "old2.csv"),
                            params(**{"data.files.initial": "old2.csv", "data.files.incremental": "new.csv"})),
                       ["prepare"], r"old2\.csv: only one class"),
    "a class with one row": (new_file(pd.concat([rows(40, 1), rows(1, 2).assign(y="r")])), ["prepare"],
                             r"new\.csv: class 'r' has a single row"),
    "a directory as the file": (params(**{"data.files.incremental": "models"}), ["prepare"], r"models: is a directory"),
    "unsupported file type": (new_file(b"x", "new.xlsx"), ["prepare"], r"new\.xlsx: unsupported file type '\.xlsx'"),
    "file not found": (params(**{"data.files.incremental": "gone.csv"}), ["prepare"], r"gone\.csv: file not found"),
    "duplicate column names": (new_file(duplicate_columns(rows(40, 1))), ["prepare"], r"column 'x0' appears 2 times"),
    "nested Parquet values": (new_file(nested_parquet, "new.parquet"), ["prepare"], r"new\.parquet: column 'x1' holds nested"),
    "every row overflows float32": (new_file(rows(40, 1).assign(x1=1e308)), ["prepare"], r"new\.csv: no rows left"),
    "label listed as a feature": (params(**{"data.files.features": ["x0", "y"]}), ["prepare"],
                                  r"'data\.files\.features' lists the label column 'y'"),
    "feature list names an absent column": (params(**{"data.files.features": ["x0", "nope"]}), ["prepare"],
                                            r"missing feature column 'nope'"),
    "hostile text in a numeric column": (new_file(rows(40, 1).assign(x0="<script>alert(1)</script>")), ["prepare"],
                           r"column 'x0' is text but numeric"),
    # categorical columns
    "a row key column": (with_row_key, ["prepare"], r"old\.csv: column 'order_id' looks like a row key: each of its "
                         r"120 rows has its own value, so a model learns nothing it can use on new rows; leave it out "
                         r"with data\.files\.features"),
    "every new row's category blank": (new_file(rows(40, 1).assign(city="  ")), ["prepare"],
                                       r"new\.csv: no rows left after dropping 0 without a label and 40 with missing.*"
                                       r": column 'city' is empty in 40 rows$"),
    "every new row's category null": (new_file(rows(40, 1).assign(city=None)), ["prepare"],
                                      r"new\.csv: no rows left after dropping 0 without a label and 40 with missing.*"
                                      r": column 'city' is empty in 40 rows$"),
    "categorical columns not a list": (params(**{"data.files.categorical": "city"}), ["prepare"],
                                       r"'data\.files\.categorical' must be a list, got 'city'"),
    "a categorical column not named by text": (params(**{"data.files.categorical": [101]}), ["prepare"],
                                               r"'data\.files\.categorical\[0\]' must be of type str, got 101"),
    "a categorical column listed twice": (params(**{"data.files.categorical": ["city", "city"]}), ["prepare"],
                                          r"'data\.files\.categorical' lists 'city' twice"),
    "a column both text and categorical": (params(**{"data.files.categorical": ["city"], "data.files.text": ["city"]}),
                                           ["prepare"], r"'data\.files\.categorical' lists 'city', which "
                                                        r"data\.files\.text lists too"),
    "a categorical column that is no feature": (params(**{"data.files.features": ["x0", "x1"],
                                                          "data.files.categorical": ["city"]}), ["prepare"],
                                                r"'data\.files\.categorical' lists 'city', which is not a feature "
                                                r"column"),
    "a categorical column the file lacks": (params(**{"data.files.categorical": ["store"]}), ["prepare"],
                                            r"old\.csv: no column 'store', which data\.files\.categorical lists"),
    # models and pipeline order
    "corrupt baseline model file": (overwrite(SEED0_MODEL, b"not a zip"), ["incremental"],
                                    r"model\.keras: cannot be loaded \(ValueError: not a \.keras zip archive"),
    "baseline label map missing": (remove(SEED0_META), ["incremental"], r"meta\.json: cannot be loaded"),
    "strategy before its baseline": (both(remove("models/baseline"), remove("records/baseline.json")), ["fine-tune"],
                                     r"no baseline model yet; run the baseline step first"),
    "prepared data missing": (remove("data/prepared/summary.json"), ["baseline"], r"summary\.json: not found"),
    "compare before the strategies": (lambda root: None, ["compare"], r"records/fine-tune\.json: not found"),
    # the user's own model (baseline.from)
    "baseline.from a file that is not a Keras model": (both(new_file(b"not a zip", "model.keras"),
                                                            params(**{"baseline.from": "model.keras"})),
                                                       ["baseline"], r"model\.keras: cannot be loaded \(ValueError: not a"),
    "baseline.from a file that is not there": (params(**{"baseline.from": "gone.keras"}), ["resolve-baseline"],
                                               r"gone\.keras: not found; set baseline\.from"),
    "baseline.from an alias that does not exist": (params(**{"baseline.from": "models:/fuzz@champion"}),
                                                   ["resolve-baseline"], r"model 'fuzz' has no alias 'champion'"),
    "baseline.from a version that does not exist": (params(**{"baseline.from": "models:/fuzz/99"}), ["baseline"],
                                                    r"model 'fuzz' has no version 99"),
    "baseline.from not a model source": (params(**{"baseline.from": "yesterday"}), ["baseline"],
                                         r"'baseline\.from' is 'yesterday'; give train, models:/NAME@ALIAS"),
    "a brought model's input names no column": (brought(lambda: named_inputs(names=("x0", "x1", "town"))),
                                                ["baseline"], r"model input 'town' has no column of that name"),
    "a brought model's input takes the wrong type": (brought(lambda: _text_for_number()), ["baseline"],
                                                     r"model input 'x0' takes string but column 'x0' is numeric"),
    "a brought model's output width": (brought(lambda: named_inputs(outputs=3)), ["baseline"],
                                       r"the model has 3 output units but the data has 2 labels"),
    "a brought model's head cannot grow": (both(new_file(pd.concat([rows(60, 1), rows(4, 2).assign(y="r")])),
                                                brought(lambda: named_inputs(head="activation"),
                                                        then=["prepare", "baseline"])),
                                           ["incremental"], r"last layer .* cannot be rebuilt to add classes"),
    "a brought model with a weight not finite": (brought(lambda: _poisoned(named_inputs())), ["baseline"],
                                                  r"^retrainlab: error: model\.keras: 1 of its \d+ weights are not finite "
                                                  r"\(NaN or inf; the first in dense.*/kernel\).*restore a good copy"),
    "a brought model whose weights are all NaN": (brought(lambda: _poisoned(named_inputs(), every=True)),
                                                  ["baseline"], r"model\.keras: (\d+) of its \1 weights are not finite"),
    "a brought model's logits, saved uncompiled": (brought(lambda: named_inputs(head="linear")), ["baseline"],
                                                    r"activation linear\) gives no class probabilities; end the model "
                                                    r"with a softmax \(or sigmoid\) activation, or, if it outputs logits, "
                                                    r"save it compiled with a from_logits=True loss"),
    "a brought linear unit under a regression loss": (brought(lambda: _compiled(named_inputs(head="linear", outputs=1),
                                                                                 "mean_squared_error")), ["baseline"],
                                                       r"predicts a number \(regression\), but the label '[^']+' is read as classification"),
    # the same data twice
    "the same file as old and new data": (params(**{"data.files.incremental": "old.csv"}), ["prepare"],
                                          r"old\.csv: is the same file as old\.csv \(data\.files\.initial\); set "
                                          r"data\.files\.incremental to the new data"),
    "the same file by another path": (params(**{"data.files.incremental": "./old.csv"}), ["prepare"],
                                      r"\./old\.csv: is the same file as old\.csv"),
    "the same .npz as old and new data": (both(new_file(_arrays, "old.npz"),
                                               params(**{"data.source": "arrays", "data.arrays.initial": "old.npz",
                                                         "data.arrays.incremental": "old.npz"})),
                                          ["prepare"], r"old\.npz: is the same file as old\.npz \(data\.arrays\.initial\)"),
    # integers past what their consumer takes
    "a seed past 2**31 - 1": (params(seeds=[2**32]), ["baseline"], r"'seeds' must be whole numbers from 0 to 2147483647"),
    "synthetic columns past what memory holds": (params(**{"data.source": "synthetic", "data.synthetic.features": 10**9}),
                                                 ["prepare"], r"'data\.synthetic\.features' must be between 1 and 1024"),
    "--seed past 2**31 - 1": (lambda root: None, ["baseline", "--seed", "4294967296"],
                              r"--seed 4294967296: give all or a whole number from 0 to 2147483647"),
    "--seed not a number": (lambda root: None, ["baseline", "--seed", "-1"], r"--seed -1: give all or a whole number"),
    # an empty flag value is a slip, never "not given"
    "--seed empty": (lambda root: None, ["baseline", "--seed", ""], r"--seed is empty: give a value, or leave the option"),
    "--params empty": (lambda root: None, ["prepare", "--params", ""], r"--params is empty"),
    "promote --version empty": (lambda root: None, ["promote", "--version", ""], r"--version is empty"),
    "promote --reason empty": (lambda root: None, ["promote", "--version", "1", "--force", "--reason", " "],
                               r"--reason is empty"),
    "rollback --reason empty": (lambda root: None, ["rollback", "--reason", ""], r"--reason is empty"),
    "next-round --incremental empty": (lambda root: None, ["next-round", "--incremental", ""], r"--incremental is empty"),
    "init --model empty": (lambda root: None, ["init", "--initial", "old.csv", "--incremental", "new.csv", "--label",
                                               "y", "--model", ""], r"--model is empty"),
    "map --seeds empty": (lambda root: None, ["map", "--seeds", ""], r"--seeds is empty"),
    "map --seeds past 2**31 - 1": (lambda root: None, ["map", "--seeds", "4294967296"],
                                   r"--seeds: 4294967296 must be a whole number from 0 to 2147483647"),
    "an entry parameter with an empty value": (lambda root: None, ["run", "baseline", "-P", "seed="],
                                               r"-P seed=: give entry parameters as KEY=VALUE, with a value"),
    # promotion and commands
    "promote a version that does not exist": (lambda root: None, ["promote", "--version", "999"], r"has no version 999"),
    "force without a reason": (lambda root: None, ["promote", "--force"], r"--force needs --reason"),
    "rollback with nothing to roll back to": (lambda root: None, ["rollback"], r"no 'previous-champion' alias"),
    "server bound beyond loopback": (lambda root: None, ["server", "--host", "0.0.0.0"], r"--allow-remote"),
    "server host after --": (lambda root: None, ["server", "--", "--host", "0.0.0.0"], r"'--host' after --"),
    "entry parameter without a value": (lambda root: None, ["run", "prepare", "-P", "seed"], r"KEY=VALUE"),
    # `check --model`: a bad value is blamed on the flag, never on baseline.from
    "check --model an alias that does not exist": (lambda root: None, ["check", "--model", "models:/nope@champion"],
                                                   r"--model is 'models:/nope@champion', but model 'nope' has no "
                                                   r"alias 'champion' in .*; promote a version first \(retrainlab "
                                                   r"promote\) or give another --model$"),
    "check --model a version that does not exist": (lambda root: None, ["check", "--model", "models:/fuzz/99"],
                                                    r"--model is 'models:/fuzz/99', but model 'fuzz' has no version 99 "),
    "check --model a run URI": (lambda root: None, ["check", "--model", "runs:/0123/model"],
                                rf"--model is 'runs:/0123/model'; {MODEL_FLAG_FORMS}$"),
    "check --model a data file": (lambda root: None, ["check", "--model", "old.csv"],
                                  rf"--model is 'old\.csv'; {MODEL_FLAG_FORMS}$"),
    "check --model train": (lambda root: None, ["check", "--model", "train"], rf"--model is 'train'; {MODEL_FLAG_FORMS}$"),
    "check --model a .keras file that is not there": (lambda root: None, ["check", "--model", "gone.keras"],
                                                      rf"gone\.keras: not found; {MODEL_FLAG_FORMS}$"),
    "check --model a pipeline folder that is not there": (lambda root: None,
                                                          ["check", "--model", "models/full-retrain/seed-7"],
                                                          rf"models/full-retrain/seed-7: not found; {MODEL_FLAG_FORMS}$"),
    "check with no --model and no champion": (lambda root: None, ["check"],
                                              r"no --model given \(baseline\.from is train: the champion is checked\), "
                                              r"but model 'fuzz' has no alias 'champion' in .*; promote a version "
                                              r"first \(retrainlab promote\) or give --model$"),
    # the MLflow store deleted: a command that reads it says so, and makes no empty one in its place
    "the store deleted, then status": (remove("mlflow.db"), ["status"], STORE_GONE),
    "the store deleted, then check": (remove("mlflow.db"), ["check"], STORE_GONE),
    "the store deleted, then check --model a pipeline folder": (remove("mlflow.db"),
                                                                ["check", "--model", "models/baseline/seed-0"], STORE_GONE),
    "the store deleted, then promote": (remove("mlflow.db"), ["promote", "--version", "1"], STORE_GONE),
    "the store deleted, then rollback": (remove("mlflow.db"), ["rollback"], STORE_GONE),
    "the store deleted, then resolve-baseline": (both(remove("mlflow.db"), params(**{"baseline.from": "models:/fuzz/1"})),
                                                 ["resolve-baseline"], STORE_GONE),
    "the store deleted, then ui": (remove("mlflow.db"), ["ui", "--print-url"], STORE_GONE),
    "the store deleted, then next-round": (both(remove("mlflow.db"), lambda root: rows(60, 7).to_csv(
                                               root / "arrived.csv", index=False)),
                                           ["next-round", "--incremental", "arrived.csv"], STORE_GONE),
}


def _text_for_number():
    import keras

    inputs = {n: keras.Input((1,), name=n, dtype="string") for n in ("x0", "x1", "city")}
    x = keras.layers.Concatenate()([keras.layers.StringLookup(output_mode="one_hot", vocabulary=["a"])(t)
                                    for t in inputs.values()])
    return keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x))


@pytest.fixture(scope="module")
def good_project(tmp_path_factory):
    """A small project after `prepare` and a one-epoch baseline: the last good outputs."""
    return small_project(tmp_path_factory.mktemp("fuzz") / "project", rows, GOOD_PARAMS)


def small_project(root: Path, make_rows: Callable[[int, int], pd.DataFrame], settings: dict) -> Path:
    """old.csv (120 rows) and new.csv (60) from `make_rows`, params.yaml from `settings`,
    then `prepare` and `baseline`."""
    (root / ".dvc").mkdir(parents=True)
    make_rows(120, 0).to_csv(root / "old.csv", index=False)
    make_rows(60, 1).to_csv(root / "new.csv", index=False)
    (root / "params.yaml").write_text(yaml.safe_dump(settings))
    first_steps(root)
    return root


def first_steps(root: Path) -> None:
    """`prepare` and `baseline` in `root`, logged to its embedded store whatever an earlier test exported."""
    with pytest.MonkeyPatch.context() as env:
        env.delenv("MLFLOW_TRACKING_URI", raising=False)
        env.delenv("MLFLOW_RUN_ID", raising=False)
        for step in ("prepare", "baseline"):
            assert run_cli(root, [step]) == 0


def run_cli(root: Path, argv: list[str]) -> int:
    """`retrainlab ARGV` in `root`, restoring the signal handlers the CLI installs."""
    import os

    handlers = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    cwd = Path.cwd()
    os.chdir(root)
    try:
        return cli.main(argv)
    finally:
        os.chdir(cwd)
        for signum, handler in handlers.items():
            signal.signal(signum, handler)


def digests(root: Path) -> dict[str, str]:
    found = {}
    for top in OUTPUTS:
        for path in sorted((root / top).rglob("*")):
            if path.is_file():
                found[path.relative_to(root).as_posix()] = hashlib.md5(path.read_bytes()).hexdigest()
    return found


def store_client(root: Path) -> MlflowClient:
    """The project's store, tracking and registry both: the registry URI is not left to
    whatever another test set globally."""
    uri = f"sqlite:///{root / 'mlflow.db'}"
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def store_state(root: Path) -> tuple[int, list[str]]:
    if not (root / "mlflow.db").is_file():
        return 0, []  # no store: reading one would make it (SQLite creates the file on connect)
    client = store_client(root)
    versions = len(client.search_model_versions())
    experiments = [e.experiment_id for e in client.search_experiments()]
    running = [r.info.run_id for r in client.search_runs(experiments, filter_string="attributes.status = 'RUNNING'")]
    return versions, running


@pytest.mark.parametrize("kind", KINDS)
def test_bad_input_is_refused_in_one_line_and_loses_nothing(good_project, tmp_path, monkeypatch, capfd, kind):
    mutate, argv, message = KINDS[kind]
    root = tmp_path / "project"
    shutil.copytree(good_project, root)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    mutate(root)
    before, (versions_before, _) = digests(root), store_state(root)
    had_store = (root / "mlflow.db").exists()
    capfd.readouterr()

    status = run_cli(root, argv)

    err = capfd.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert status == 2, err[-3000:]
    assert len(lines) == 1, err[-3000:]
    assert lines[0].startswith("retrainlab: error: "), lines[0]
    assert __import__("re").search(message, lines[0]), lines[0]
    assert "Traceback" not in err
    assert (root / "mlflow.db").exists() == had_store  # no empty store made where there was none
    versions_after, running = store_state(root)
    assert versions_after == versions_before
    assert running == []
    assert digests(root) == before


def test_the_campaign_covers_ninety_kinds_and_every_area():
    assert len(KINDS) >= 90
    steps = {argv[0] for _, argv, _ in KINDS.values()}
    assert {"prepare", "baseline", "incremental", "compare", "promote", "server"} <= steps


def test_the_project_file_and_docs_list_the_same_kinds():
    """docs/RELIABILITY.md's campaign table is the list above, kind for kind."""
    text = (PROJECT / "docs" / "RELIABILITY.md").read_text()
    missing = [kind for kind in KINDS if f"| {kind} |" not in text]
    assert not missing, missing


def copy_of(good_project: Path, tmp_path: Path, monkeypatch) -> Path:
    root = tmp_path / "project"
    shutil.copytree(good_project, root)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    return root


def test_a_diverged_training_fails_its_runs_with_the_reason_and_registers_nothing(good_project, tmp_path, monkeypatch):
    root = copy_of(good_project, tmp_path, monkeypatch)
    params(**{"model.learning_rate": 1e30})(root)
    assert run_cli(root, ["baseline"]) == 2
    client = store_client(root)
    experiment = client.get_experiment_by_name("fuzz").experiment_id
    failed = client.search_runs([experiment], filter_string="attributes.status = 'FAILED'")
    assert {r.data.tags["retrainlab.role"] for r in failed} == {"step", "seed"}
    for run in failed:
        assert run.data.tags["retrainlab.failure"].startswith("training diverged: the loss became")
    assert len(client.search_model_versions()) == 1  # the good baseline's, from before


@pytest.mark.parametrize("through", ["embedded store", "MLFLOW_TRACKING_URI"])
def test_a_read_only_store_is_one_line_naming_it(good_project, tmp_path, monkeypatch, capfd, through):
    """The embedded store is checked before a step starts; any other SQLite store's failure to
    write is turned into one line at the CLI's edge (before: a 227-line SQLAlchemy traceback)."""
    import subprocess

    root = copy_of(good_project, tmp_path, monkeypatch)
    store = root / "mlflow.db"
    if subprocess.run(["chattr", "+i", str(store)], capture_output=True).returncode != 0:
        pytest.skip("this filesystem cannot make a file read-only for root (chattr +i)")
    try:
        if through != "embedded store":
            monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{store}")
        capfd.readouterr()
        status = run_cli(root, ["baseline"])
    finally:
        subprocess.run(["chattr", "-i", str(store)], check=True)
    err = capfd.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert status == 2 and len(lines) == 1, err[-3000:]
    assert f"{store}:" in lines[0] and ("read-only" in lines[0] or "readonly" in lines[0]), lines[0]
