"""The project's own model: an MLP that takes raw columns, its normalisation and categorical
encoding as layers fitted on its training rows, so the saved model is one artifact; and a
model with fresh weights for a set of splits, the project's or a brought one's architecture."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import keras
import numpy as np

from retrainlab.base.errors import DataError
from retrainlab.config import TRAIN
from retrainlab.data import NUMERIC, Feature, grown_labels
from retrainlab.data.stream import FeatureStats, windows
from retrainlab.models.bundle import ModelBundle, input_names
from retrainlab.models.outputs import output_layer
from retrainlab.models.surgery import grow_output, reinitialised


def build_model(
    features: Sequence[Feature],
    stats: FeatureStats,
    n_classes: int,
    hidden_units: Sequence[int],
    dropout: float,
    seed: int,
) -> keras.Model:
    """A fresh MLP whose preprocessing layers hold `stats` of its training rows."""
    inputs, numeric, encoded = {}, [], []
    for name, feature in zip(input_names(features), features):
        if feature.kind == NUMERIC:
            inputs[name] = keras.Input(shape=(1,), name=name, dtype="float32")
            numeric.append(inputs[name])
        else:
            inputs[name] = keras.Input(shape=(1,), name=name, dtype="string")
            lookup = keras.layers.StringLookup(
                vocabulary=stats.vocabularies[feature.name], output_mode="one_hot", name=f"encode_{name}"
            )
            encoded.append(lookup(inputs[name]))
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
    output = output_layer(n_classes, keras.initializers.GlorotUniform(seed=seed + len(hidden_units)))
    return keras.Model(inputs, output(x), name="retrainlab_mlp")

def fresh_bundle(data, params, splits: Sequence[str], seed: int, base: ModelBundle | None) -> ModelBundle:
    """A model with fresh weights for the classes of `splits`: the project's MLP built on
    those rows' statistics, or, when the baseline is a brought model (`base`), its
    architecture with fresh weights, its preprocessing layers adapted anew on those rows and
    its output grown for any class they add."""
    labels = data.classes(*splits)
    paths = [data.path(s) for s in splits]
    if params.baseline.from_ == TRAIN or base is None:
        if len(labels) < 2:
            raise DataError(f"{' + '.join(splits)}: only one class ({labels[0]!r}); a classifier needs two or more")
        m = params.model
        stats = FeatureStats.of_files(paths, data.features)
        model = build_model(data.features, stats, len(labels), m.hidden_units, m.dropout, seed)
        return ModelBundle(model, data.features, labels, data.label)
    labels = grown_labels(base.labels, labels)
    columns = [f.name for f in data.features]
    model = reinitialised(
        base.model, lambda: (base.inputs(w) for w in windows(paths, columns, np.random.default_rng(seed)))
    )
    return dataclasses.replace(base, model=grow_output(model, len(labels), seed), labels=labels)

def _concat(tensors: list, name: str):
    return tensors[0] if len(tensors) == 1 else keras.layers.Concatenate(name=name)(tensors)
