"""Make the "Bring your own model" examples: data files and the models a user would bring.

    python examples/make_examples.py        # or: make examples

writes, under examples/ (generated, not versioned):
- digits-cnn/initial.npz, incremental.npz: scikit-learn's bundled 8x8 digits as images
  (x: rows x 8 x 8 x 1, y: the digit); the initial data holds digits 0-6, the new data
  7-9 and some more 0-6 (the default demo's split), and cnn.keras, a small convolutional
  network trained on the initial images only;
- cancer-mlp/initial.csv, incremental.csv: scikit-learn's bundled breast-cancer data,
  standardised as a user's own preprocessing would (the statistics of the initial rows),
  the new rows being those of coarsest texture (a shift in the inputs); and mlp.keras, an MLP on those 30 columns with a
  sigmoid output;
- tweets-text/initial.csv, incremental.csv: retrainlab's generated messages (the `text`
  source, covariate_shift): tweets labelled negative, neutral or positive first, then the
  same sentiments as longer product reviews in mostly other words; and sentiment.keras, a
  text model of the user's own (a string input, its own TextVectorization adapted on the
  tweets, an Embedding, pooling, softmax) trained on the tweets only.
Everything is seeded: the same files every time. README: "Bring your own model".
"""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

OUT = Path(__file__).resolve().parent


def digits_cnn(folder: Path) -> None:
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = (digits.images / 16.0).astype("float32")[..., None]  # rows x 8 x 8 x 1
    y = digits.target
    rng = np.random.default_rng(0)
    old_classes = y < 7
    rows = rng.permutation(len(y))
    initial = [i for i in rows if old_classes[i]][: int(old_classes.sum() / 1.3)]
    rest = np.setdiff1d(rows, initial)
    incremental = rng.choice(rest, size=int(0.3 * len(initial)), replace=False)
    folder.mkdir(parents=True, exist_ok=True)
    np.savez(folder / "initial.npz", x=x[initial], y=y[initial])
    np.savez(folder / "incremental.npz", x=x[incremental], y=y[incremental])

    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((8, 8, 1), name="image"),
        keras.layers.Conv2D(16, 3, padding="same", activation="relu"),
        keras.layers.MaxPooling2D(),
        keras.layers.Conv2D(32, 3, padding="same", activation="relu"),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(32, activation="relu"),
        keras.layers.Dense(7, activation="softmax"),
    ], name="digits_cnn")
    model.compile(keras.optimizers.Adam(0.003), "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x[initial], y[initial], epochs=25, batch_size=32, verbose=0)
    model.save(folder / "cnn.keras")
    print(f"{folder}: {len(initial)} + {len(incremental)} images, cnn.keras "
          f"(accuracy on its own training images {model.evaluate(x[initial], y[initial], verbose=0)[1]:.3f})")


def cancer_mlp(folder: Path) -> None:
    from sklearn.datasets import load_breast_cancer

    cancer = load_breast_cancer(as_frame=True)
    frame = cancer.frame.rename(columns=lambda c: c.replace(" ", "_"))
    features = [c for c in frame.columns if c != "target"]
    large = frame["mean_texture"] > frame["mean_texture"].quantile(0.75)
    initial, incremental = frame[~large], frame[large]
    mean, std = initial[features].mean(), initial[features].std()  # the user's own preprocessing
    folder.mkdir(parents=True, exist_ok=True)
    for name, part in (("initial", initial), ("incremental", incremental)):
        scaled = ((part[features] - mean) / std).round(6)
        scaled["diagnosis"] = np.where(part["target"] == 1, "benign", "malignant")
        scaled.to_csv(folder / f"{name}.csv", index=False)

    keras.utils.set_random_seed(0)
    inputs = keras.Input((len(features),), name="scaled_columns")
    hidden = keras.layers.Dense(16, activation="relu")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(hidden), name="cancer_mlp")
    model.compile(keras.optimizers.Adam(0.01), "binary_crossentropy", metrics=["accuracy"])
    # One sigmoid unit: the probability of the second label in sorted order, "malignant"
    # (scikit-learn's target 0).
    malignant = (initial["target"] == 0).to_numpy("float32")
    model.fit(((initial[features] - mean) / std).to_numpy("float32"), malignant, epochs=40, verbose=0)
    model.save(folder / "mlp.keras")
    print(f"{folder}: {len(initial)} + {len(incremental)} rows of {len(features)} standardised columns, mlp.keras")


def tweets_text(folder: Path) -> None:
    from retrainlab.config import DataParams
    from retrainlab.data import builtin_parts

    data = next(builtin_parts(DataParams(source="text", scenario="covariate_shift"), seed=0))
    folder.mkdir(parents=True, exist_ok=True)
    data.initial.to_csv(folder / "initial.csv", index=False)
    data.incremental.to_csv(folder / "incremental.csv", index=False)

    keras.utils.set_random_seed(0)
    labels = sorted(data.initial["sentiment"].unique())  # output unit i is label i, sorted
    tweets = data.initial["text"].to_numpy(dtype=object)[:, None]
    vectorize = keras.layers.TextVectorization(max_tokens=2000, output_sequence_length=24, name="words")
    vectorize.adapt(tweets)
    text = keras.Input((1,), dtype="string", name="text")  # named after the column it reads
    pooled = keras.layers.GlobalAveragePooling1D()(
        keras.layers.Embedding(vectorize.vocabulary_size(), 16, mask_zero=True)(vectorize(text)))
    hidden = keras.layers.Dense(16, activation="relu")(pooled)
    model = keras.Model(text, keras.layers.Dense(len(labels), activation="softmax")(hidden), name="sentiment")
    model.compile(keras.optimizers.Adam(0.01), "sparse_categorical_crossentropy", metrics=["accuracy"])
    y = data.initial["sentiment"].map(labels.index).to_numpy()
    import tensorflow as tf  # string inputs are TensorFlow's

    model.fit(tf.constant(tweets), y, epochs=10, batch_size=32, verbose=0)
    model.save(folder / "sentiment.keras")
    print(f"{folder}: {len(data.initial)} tweets + {len(data.incremental)} reviews, sentiment.keras "
          f"({vectorize.vocabulary_size()} tokens)")


if __name__ == "__main__":
    digits_cnn(OUT / "digits-cnn")
    cancer_mlp(OUT / "cancer-mlp")
    tweets_text(OUT / "tweets-text")
