"""A categorical column read as one-hot or through an embedding: cost and accuracy by its number of values.

    .venv/bin/python benchmarks/categories.py [--ks 100 1000 50000] [--epochs 5] [--seeds 0 ...]
        [--rows K=ROWS ...] [--epochs-at K=EPOCHS ...] [--seeds-at K=N ...]
        [--out benchmarks/results/categories.json]

The project's MLP (`retrainlab.models.build.build_model`) reads a categorical column one-hot
over its vocabulary, or, past `model.embedding_threshold` distinct values, through a
StringLookup(int) -> Embedding(embedding_dim) -> Flatten. This script trains both on the same
rows with the same seeds, the one-hot forced with `embedding_threshold=10**7`, the embedding
with 0, and reports the embedding's figures as ratios against the one-hot's, measured in the
same run one after the other (one-hot first). Each encoding at each K trains in a Python
process of its own, warmed up by a one-epoch fit on a small table, so that neither starts
with the memory or traced functions of another.

The table (issue 38): a generated click log with latent factors. `K` items, each with a
factor vector v_i (4 numbers) and a bias b_i; four user-ish numeric columns u; a click is
drawn from sigmoid(u . (w + v_i) + b_i), w a fixed weight every item shares, so the numbers
alone carry some signal and the item carries the rest. Item frequencies are Zipf-like
(exponent 1) over a floor of one row per item, so a few items are frequent and most are
rare; an item's name does not tell its rank. The rows: 20 per item, at least 20,000 and at
most 200,000 (100 -> 20,000; 1,000 -> 20,000; 50,000 -> 200,000, 4 per item); `--rows`
sets them per K. 80% train, 20% test; an item the training rows lack reads as unknown, as in
the project. The oracle's accuracy and log loss (the true click probabilities) are the
ceiling.

Both models: the project's defaults otherwise (hidden units 64 and 32, dropout 0.1,
embedding_dim 32, `compile_model`: Adam at 0.001, binary cross-entropy), batch size 256,
every epoch on every training row (no early stopping). Per model: test accuracy and log
loss, the fit's wall and process CPU seconds (all threads), the test rows' predict seconds,
the trainable parameters, the size of the `.keras` file `model.save` writes after training
(what the project saves: optimizer state included), and the peak growth of the resident
memory during the fit over its value at the fit's start (sampled every 10 ms from
/proc/self/statm after glibc's malloc_trim; None where there is none). Figures are the
seeds' means; the memory growth is the seeds' largest (the first fit of its process).
Writes the figures as JSON to --out and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import tensorflow as tf  # noqa: E402

from retrainlab.data import CATEGORICAL, NUMERIC, Feature  # noqa: E402
from retrainlab.data.stream import FeatureStats  # noqa: E402
from retrainlab.models.build import build_model  # noqa: E402
from retrainlab.models.bundle import ModelBundle  # noqa: E402
from retrainlab.models.outputs import compile_model  # noqa: E402

PROJECT = Path(__file__).resolve().parents[1]
tf.get_logger().setLevel("ERROR")  # a new model's predict is traced anew: Keras warns of retracing
ENCODINGS = {"one-hot": 10**7, "embedding": 0}  # embedding_threshold that forces each
FACTORS = 4  # user-ish numeric columns, and the width of an item's factor vector
SHARED = np.array([0.6, -0.4, 0.3, 0.0])  # w: what the numbers say whatever the item
HIDDEN, DROPOUT, EMBEDDING_DIM, LEARNING_RATE, BATCH = [64, 32], 0.1, 32, 0.001, 256
FEATURES = tuple(Feature(f"u{j}", NUMERIC) for j in range(FACTORS)) + (Feature("item", CATEGORICAL),)
LABEL = "click"


def default_rows(k: int) -> int:
    return int(min(max(20 * k, 20_000), 200_000))


def click_table(k: int, rows: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """`rows` clicks on `k` items (Zipf-like, each item at least once when rows >= k), and
    each row's true click probability."""
    rng = np.random.default_rng(seed)
    factors = rng.normal(0.0, 0.75, (k, FACTORS))
    bias = rng.normal(-0.2, 1.0, k)
    names = np.array([f"item{i:06d}" for i in rng.permutation(k)])  # a name says nothing of its rank
    weights = 1.0 / np.arange(1, k + 1)
    floor = np.arange(min(k, rows))
    item = np.concatenate([floor, rng.choice(k, rows - len(floor), p=weights / weights.sum())])
    item = item[rng.permutation(rows)]
    u = rng.normal(0.0, 1.0, (rows, FACTORS))
    logit = np.einsum("rj,rj->r", u, SHARED + factors[item]) + bias[item]
    p = 1.0 / (1.0 + np.exp(-logit))
    frame = pd.DataFrame(u.astype(np.float32), columns=[f.name for f in FEATURES[:FACTORS]])
    frame["item"] = names[item]
    frame[LABEL] = (rng.random(rows) < p).astype(np.int64)
    return frame, p


class PeakRss:
    """The resident memory's peak over its value at the start, sampled every 10 ms."""

    def __init__(self) -> None:
        self.path = Path("/proc/self/statm")
        self.page = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
        self.peak = self.start = 0
        self.stop = threading.Event()

    def rss(self) -> int:
        return int(self.path.read_text().split()[1]) * self.page

    def __enter__(self) -> PeakRss:
        if self.path.exists():
            _trim()
            self.start = self.peak = self.rss()
            self.thread = threading.Thread(target=self._sample, daemon=True)
            self.thread.start()
        return self

    def _sample(self) -> None:
        while not self.stop.wait(0.01):
            self.peak = max(self.peak, self.rss())

    def __exit__(self, *exc) -> None:
        self.stop.set()
        if self.path.exists():
            self.thread.join()
            self.peak = max(self.peak, self.rss())

    @property
    def growth_mib(self) -> float | None:
        return (self.peak - self.start) / 2**20 if self.path.exists() else None


def _trim() -> None:
    """Hand the heap's free memory back to the system (glibc), so that the resident memory at
    the start is what is in use, not what an earlier fit freed: the growth is then this fit's."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def log_loss(y: np.ndarray, p: np.ndarray) -> float:
    p = np.clip(p, 1e-7, 1 - 1e-7)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def measure(train: pd.DataFrame, test: pd.DataFrame, stats: FeatureStats, threshold: int, seed: int,
            epochs: int) -> dict:
    keras.backend.clear_session()
    gc.collect()
    keras.utils.set_random_seed(seed)
    model = build_model(FEATURES, stats, 2, HIDDEN, DROPOUT, seed, embedding_dim=EMBEDDING_DIM,
                        embedding_threshold=threshold)
    compile_model(model, LEARNING_RATE)
    bundle = ModelBundle(model, FEATURES, [0, 1], LABEL)
    x_train, x_test = bundle.inputs(train), bundle.inputs(test)
    y_train, y_test = train[LABEL].to_numpy(), test[LABEL].to_numpy()
    with PeakRss() as memory:
        wall, cpu = time.perf_counter(), time.process_time()
        model.fit(x_train, y_train, epochs=epochs, batch_size=BATCH, shuffle=True, verbose=0)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    predict = time.perf_counter()
    p = model.predict(x_test, batch_size=4096, verbose=0)[:, 0]
    predict = time.perf_counter() - predict
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "model.keras"
        model.save(path)
        size = path.stat().st_size
    return {
        "accuracy": float(np.mean((p > 0.5) == y_test)), "log_loss": log_loss(y_test, p),
        "fit_wall_s": wall, "fit_cpu_s": cpu, "predict_s": predict,
        "trainable_params": int(sum(np.prod(w.shape) for w in model.trainable_weights)),
        "keras_file_mib": size / 2**20, "peak_rss_growth_mib": memory.growth_mib,
        "embedded": any(isinstance(layer, keras.layers.Embedding) for layer in model.layers),
    }


RATIOS = ("fit_wall_s", "fit_cpu_s", "predict_s", "trainable_params", "keras_file_mib", "peak_rss_growth_mib")


def split(k: int, rows: int) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray, FeatureStats]:
    """K's table, the same in every process: 80% training rows, 20% test rows and their true
    click probabilities, and the training rows' statistics (every value kept)."""
    frame, p = click_table(k, rows, seed=1000 + k)
    cut = int(0.8 * rows)  # the rows are in random order already
    train, test = frame.iloc[:cut].reset_index(drop=True), frame.iloc[cut:].reset_index(drop=True)
    return train, test, p[cut:], FeatureStats.of_frame(train, FEATURES, max_categories=10**7)


def encoding_runs(k: int, rows: int, name: str, seeds: list[int], epochs: int) -> list[dict]:
    """One encoding's figures at K, a seed after another, in this process: a fresh one (see
    `in_own_process`), warmed up by a one-epoch fit of the same encoding on a small table."""
    warm_up = click_table(20, 512, seed=0)[0]
    measure(warm_up, warm_up, FeatureStats.of_frame(warm_up, FEATURES), ENCODINGS[name], 0, 1)
    train, test, _, stats = split(k, rows)
    return [measure(train, test, stats, ENCODINGS[name], seed, epochs) for seed in seeds]


def in_own_process(k: int, rows: int, name: str, seeds: list[int], epochs: int) -> list[dict]:
    """`encoding_runs` in a new Python process, so that neither encoding starts with the
    memory, threads or traced functions the other left: its peak memory growth is its own."""
    command = [sys.executable, str(Path(__file__).resolve()), "--one", str(k), str(rows), name, str(epochs),
               *map(str, seeds)]
    done = subprocess.run(command, capture_output=True, text=True, env=os.environ | {"PYTHONPATH": _path()})
    if done.returncode:
        raise RuntimeError(f"{' '.join(command[1:])} failed:\n{done.stderr[-3000:]}")
    return json.loads([line for line in done.stdout.splitlines() if line.startswith("[")][-1])


def _path() -> str:
    """The child imports retrainlab as this process does (an installed package, or src/)."""
    import retrainlab

    here = str(Path(retrainlab.__file__).resolve().parents[1])
    return os.pathsep.join([here, *filter(None, [os.environ.get("PYTHONPATH")])])


def run_k(k: int, rows: int, seeds: list[int], epochs: int) -> dict:
    train, test, p_test, stats = split(k, rows)
    y_test = test[LABEL].to_numpy()
    runs = {}
    for name in ENCODINGS:
        runs[name] = in_own_process(k, rows, name, seeds, epochs)
        for seed, figures in zip(seeds, runs[name]):
            print(f"K {k:>6} seed {seed} {name:>9}: acc {figures['accuracy']:.4f}, log loss {figures['log_loss']:.4f}, "
                  f"fit {figures['fit_wall_s']:.1f} s wall / {figures['fit_cpu_s']:.1f} s CPU, "
                  f"{figures['trainable_params']:,} params, {figures['keras_file_mib']:.2f} MiB, "
                  f"peak RSS +{figures['peak_rss_growth_mib'] or 0:.0f} MiB", flush=True)
    means = {name: {key: _summary(key, [r[key] for r in rs]) for key in rs[0] if key != "embedded"}
             for name, rs in runs.items()}
    ratios = {key: (means["embedding"][key] / means["one-hot"][key]
                    if means["one-hot"][key] and means["embedding"][key] is not None else None) for key in RATIOS}
    counts = train["item"].value_counts()
    differences = [e["accuracy"] - h["accuracy"] for h, e in zip(runs["one-hot"], runs["embedding"])]
    return {
        "k": k, "rows": rows, "train_rows": len(train), "test_rows": len(test),
        "vocabulary": len(stats.vocabularies["item"]),
        "train_rows_per_value": {"mean": float(counts.mean()), "median": float(counts.median()),
                                 "top": int(counts.iloc[0])},
        "test_rows_unknown_value": float(np.mean(~test["item"].isin(set(stats.vocabularies["item"])))),
        "oracle": {"accuracy": float(np.mean((p_test > 0.5) == y_test)), "log_loss": log_loss(y_test, p_test)},
        "epochs": epochs, "seeds": seeds, "runs": runs, "means": means, "embedding_over_one_hot": ratios,
        "accuracy_difference": {"mean": float(np.mean(differences)), "min": min(differences),
                                "max": max(differences)},
    }


def _summary(key: str, values: list) -> float | None:
    """The seeds' mean; the peak memory growth's largest (the first seed's, in a fresh process)."""
    if any(v is None for v in values):
        return None
    return float(max(values) if key == "peak_rss_growth_mib" else np.mean(values))


def markdown(results: list[dict]) -> str:
    lines = ["| distinct values: K (in the training rows) | rows (training rows per value) | epochs x seeds | "
             "accuracy one-hot / embedding (oracle) | embedding - one-hot, accuracy | log loss one-hot / embedding "
             "(oracle) | fit wall one-hot / embedding | wall ratio | CPU ratio | "
             "trainable params one-hot / embedding | .keras MiB one-hot / embedding | size ratio | "
             "peak RSS growth MiB one-hot / embedding |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in results:
        hot, emb, ratio = r["means"]["one-hot"], r["means"]["embedding"], r["embedding_over_one_hot"]
        diff = r["accuracy_difference"]
        spread = f" [{diff['min']:+.3f}, {diff['max']:+.3f}]" if len(r["seeds"]) > 1 else ""
        rss = ("–" if hot["peak_rss_growth_mib"] is None
               else f"{hot['peak_rss_growth_mib']:,.0f} / {emb['peak_rss_growth_mib']:,.0f}")
        lines.append(
            f"| {r['k']:,} ({r['vocabulary']:,}) | {r['rows']:,} ({r['train_rows_per_value']['mean']:.1f}) | "
            f"{r['epochs']} x {len(r['seeds'])} | {hot['accuracy']:.3f} / {emb['accuracy']:.3f} "
            f"({r['oracle']['accuracy']:.3f}) | {diff['mean']:+.3f}{spread} | "
            f"{hot['log_loss']:.3f} / {emb['log_loss']:.3f} ({r['oracle']['log_loss']:.3f}) | "
            f"{hot['fit_wall_s']:.1f} s / {emb['fit_wall_s']:.1f} s | {ratio['fit_wall_s']:.2f}x | "
            f"{ratio['fit_cpu_s']:.2f}x | {hot['trainable_params']:,.0f} / {emb['trainable_params']:,.0f} | "
            f"{hot['keras_file_mib']:.2f} / {emb['keras_file_mib']:.2f} | {ratio['keras_file_mib']:.2f}x | {rss} |")
    return "\n".join(lines)


def parse_rows(items: list[str]) -> dict[int, int]:
    rows = {}
    for item in items:
        k, _, n = item.partition("=")
        rows[int(k)] = int(n)
    return rows


def main(argv: list[str] | None = None) -> dict:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--one"]:  # in_own_process's child: K ROWS ENCODING EPOCHS SEED...
        k, rows, name, epochs, *seeds = argv[1:]
        print(json.dumps(encoding_runs(int(k), int(rows), name, [int(s) for s in seeds], int(epochs))))
        return {}
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ks", type=int, nargs="+", default=[100, 1000, 50000])
    parser.add_argument("--rows", nargs="*", default=[], metavar="K=ROWS",
                        help="rows of the table for a K (default 20 per value, 20,000 to 200,000)")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--epochs-at", nargs="*", default=[], metavar="K=EPOCHS",
                        help="fewer (or more) epochs for both encodings at a K")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--seeds-at", nargs="*", default=[], metavar="K=N",
                        help="only the first N of --seeds at a K (the largest Ks are the slow ones)")
    parser.add_argument("--out", default=str(PROJECT / "benchmarks" / "results" / "categories.json"))
    args = parser.parse_args(argv)
    rows, epochs_at, seeds_at = parse_rows(args.rows), parse_rows(args.epochs_at), parse_rows(args.seeds_at)
    started = time.perf_counter()
    results = [run_k(k, rows.get(k, default_rows(k)), args.seeds[:seeds_at.get(k, len(args.seeds))],
                     epochs_at.get(k, args.epochs)) for k in args.ks]
    report = {"batch_size": BATCH, "hidden_units": HIDDEN, "dropout": DROPOUT, "embedding_dim": EMBEDDING_DIM,
              "learning_rate": LEARNING_RATE, "cpus": os.cpu_count(), "seconds": time.perf_counter() - started,
              "results": results}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(markdown(results))
    print(f"{report['seconds']:.0f} s in all; figures in {args.out}")
    return report


if __name__ == "__main__":
    main()
    sys.exit(0)
