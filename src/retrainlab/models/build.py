"""The project's own model: an MLP that takes raw columns, its normalisation, categorical
encoding and text vectorisation as layers fitted on its training rows, so the saved model is
one artifact that takes raw values and raw text; and a
model with fresh weights for a set of splits, the project's or a brought one's architecture."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import keras
import numpy as np

from retrainlab.base.errors import DataError
from retrainlab.base.tasks import CLASSIFICATION, REGRESSION
from retrainlab.config import TRAIN
from retrainlab.config.sections import EMBEDDING_THRESHOLD
from retrainlab.data import NUMERIC, TEXT, Feature, grown_labels
from retrainlab.data.stream import FeatureStats, windows
from retrainlab.models.bundle import ModelBundle
from retrainlab.models.inputs import input_names
from retrainlab.models.outputs import TARGET_SCALE, output_layer
from retrainlab.models.surgery import grow_output, reinitialised


def build_model(
    features: Sequence[Feature],
    stats: FeatureStats,
    n_classes: int,
    hidden_units: Sequence[int],
    dropout: float,
    seed: int,
    text_length: int = 64,
    embedding_dim: int = 32,
    target: tuple[float, float] | None = None,
    embedding_threshold: int = EMBEDDING_THRESHOLD,
) -> keras.Model:
    """A fresh MLP whose preprocessing layers hold `stats` of its training rows. A text column
    is read as its first `text_length` tokens (`TextVectorization` with the vocabulary of
    `stats`), each an `embedding_dim`-wide embedding, averaged over the text's tokens. A
    categorical column is one-hot over its vocabulary, or, with more than
    `embedding_threshold` values, an `embedding_dim`-wide embedding of its value; index 0 of
    either is the unknown value, which a value the training rows lacked reads.
    `n_classes` 0 makes a regressor: one linear unit, then the target's scaling (`target`:
    the training labels' mean and standard deviation), so the network learns a standardised
    label and the saved model predicts in the label's own units."""
    inputs, numeric, encoded = {}, [], []
    for name, feature in zip(input_names(features), features):
        if feature.kind == NUMERIC:
            inputs[name] = keras.Input(shape=(1,), name=name, dtype="float32")
            numeric.append(inputs[name])
        elif feature.kind == TEXT:
            inputs[name] = keras.Input(shape=(1,), name=name, dtype="string")
            encoded.append(_text_branch(inputs[name], name, stats.tokens[feature.name], text_length,
                                        embedding_dim, seed))
        else:
            inputs[name] = keras.Input(shape=(1,), name=name, dtype="string")
            encoded.append(_category_branch(inputs[name], name, stats.vocabularies[feature.name],
                                            embedding_threshold, embedding_dim, seed))
    parts = list(encoded)
    if numeric:
        stacked = _concat(numeric, "numeric")
        normalize = keras.layers.Normalization(mean=stats.mean, variance=stats.variance, name="normalize")
        parts.insert(0, normalize(stacked))
    x = _concat(parts, "features")
    for i, units in enumerate(hidden_units):
        init = keras.initializers.GlorotUniform(seed=seed + i)
        x = keras.layers.Dense(units, activation="relu", kernel_initializer=init, name=f"hidden_{i}")(x)
        if dropout:
            x = keras.layers.Dropout(dropout, seed=seed + i, name=f"dropout_{i}")(x)
    output = output_layer(n_classes, keras.initializers.GlorotUniform(seed=seed + len(hidden_units)))(x)
    if n_classes == 0:
        mean, std = target
        output = keras.layers.Rescaling(scale=std, offset=mean, name=TARGET_SCALE)(output)
    return keras.Model(inputs, output, name="retrainlab_mlp")

def fresh_bundle(data, params, splits: Sequence[str], seed: int, base: ModelBundle | None) -> ModelBundle:
    """A model with fresh weights for the classes of `splits`: the project's MLP built on
    those rows' statistics, or, when the baseline is a brought model (`base`), its
    architecture with fresh weights, its preprocessing layers adapted anew on those rows and
    its output grown for any class they add."""
    labels = data.classes(*splits)
    paths = [data.path(s) for s in splits]
    regression = data.summary.task == REGRESSION
    if params.baseline.from_ == TRAIN or base is None:
        if not regression and len(labels) < 2:
            raise DataError(f"{' + '.join(splits)}: only one class ({labels[0]!r}); a classifier needs two or more")
        m = params.model
        stats = FeatureStats.of_files(paths, data.features, m.text_tokens, m.max_categories)
        target = data.label_moments(*splits) if regression else None
        model = build_model(data.features, stats, len(labels), m.hidden_units, m.dropout, seed, m.text_length,
                            m.embedding_dim, target, m.embedding_threshold)
        return ModelBundle(model, data.features, labels, data.label, task=data.summary.task or CLASSIFICATION)
    labels = grown_labels(base.labels, labels)
    columns = [f.name for f in data.features]
    model = reinitialised(
        base.model, lambda: (base.inputs(w) for w in windows(paths, columns, np.random.default_rng(seed)))
    )
    return dataclasses.replace(base, model=grow_output(model, len(labels), seed), labels=labels)

def _text_branch(text, name: str, vocabulary: list[str], length: int, width: int, seed: int):
    # TextVectorization's defaults are the tokens of retrainlab.data.text; index 0 pads, 1 is
    # out of vocabulary, so the embedding has two rows more than the vocabulary.
    if not vocabulary:
        raise DataError(f"text column of model input '{name}': no words in the training rows; give it text, "
                        "or list it in data.files.text only if it has some")
    vectorize = keras.layers.TextVectorization(vocabulary=vocabulary, output_mode="int",
                                               output_sequence_length=length, name=f"vectorize_{name}")
    embed = keras.layers.Embedding(len(vocabulary) + 2, width, mask_zero=True, name=f"embed_{name}",
                                   embeddings_initializer=keras.initializers.RandomUniform(-0.05, 0.05, seed=seed))
    return keras.layers.GlobalAveragePooling1D(name=f"pool_{name}")(embed(vectorize(text)))


def _category_branch(value, name: str, vocabulary: list[str], threshold: int, width: int, seed: int):
    # StringLookup's index 0 is the unknown value (no mask), so either encoding has one slot
    # more than the vocabulary: retrainlab.models.vocabulary grows both after it.
    if len(vocabulary) <= threshold:
        return keras.layers.StringLookup(vocabulary=vocabulary, output_mode="one_hot", name=f"encode_{name}")(value)
    lookup = keras.layers.StringLookup(vocabulary=vocabulary, output_mode="int", name=f"encode_{name}")
    embed = keras.layers.Embedding(len(vocabulary) + 1, width, name=f"embed_{name}",
                                   embeddings_initializer=keras.initializers.RandomUniform(-0.05, 0.05, seed=seed))
    return keras.layers.Flatten(name=f"flat_{name}")(embed(lookup(value)))


def _concat(tensors: list, name: str):
    return tensors[0] if len(tensors) == 1 else keras.layers.Concatenate(name=name)(tensors)
