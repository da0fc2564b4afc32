"""Vocabulary growth: the model surgery that lets an update read the words, and the
categorical values, that new data adds.

An option that starts from the baseline keeps the baseline's `TextVectorization`
vocabulary: a word the baseline never saw maps to the out-of-vocabulary index, whatever the
option trains. `grow_vocabulary` gives a copy of the model whose vocabulary has the new
texts' tokens appended, most frequent first: every old token keeps its index, and the
`Embedding` the layer feeds keeps its rows and gets a row per new token. A text layer whose
output is not an integer sequence into an `Embedding` is left as it is, and said so.

Two rules keep growth from costing what it gains (measured on a change of language, where it
gains, and a change of topic with hundreds of rare new words, where growing every one did
worse than growing the frequent ones):
- only a token the new texts hold at least once per `TEXTS_PER_COUNT` texts is added (at
  least once: `minimum_count`): a rarer one gets too few updates in an option's few epochs
  to learn a row, and only adds noise to the average the model takes of a text's tokens; it
  stays out of vocabulary, as it was for the baseline. The bar is a share of the texts, not a
  fixed count: a fixed 5 kept the frequent words of 1,425 posts and cut the rare topic words,
  but it also cut most of the new words of 64 reviews, where growing every one gains 5 to 7
  points more (docs/STRATEGIES.md);
- a new token's row starts small and random, as the embedding's own rows started. A copy of
  the out-of-vocabulary row (the row the token read before, so that the grown model would
  predict what the baseline did until trained) was tried: it made no difference to
  incremental, and cost distill 4.6 points on 64 new reviews and shrink-perturb 1.3 on the
  posts (every new token then starts as the same vector).

A categorical column's lookup (`StringLookup` or `IntegerLookup`, the project's or a
brought model's) grows the same way (`grow_lookups`): each value the new rows hold that the
lookup lacks gets its own index, appended, and the layer it feeds gets a row for it: an
`Embedding` fed the index, or the `Dense` layer fed the one-hot (directly or through a
`Concatenate`), its other inputs' rows untouched. Two rules differ from text, for one reason:
a row reads one value per column, not the average of many tokens.
- a new value's row starts as a copy of the unknown value's (the row it read before), so the
  grown model predicts what the baseline did until it is trained, and only training on a
  value's rows moves it away;
- so every value the new rows hold is added (a rare one costs nothing but its row), up to
  `model.max_categories` in all, the most frequent first.
A lookup that is inverted, hashes unknown values into several indices, or feeds anything
else (`tf_idf`, a layer that is not one of those three) is left as it is, and said so.

TensorFlow is needed only where Keras' text layers need it.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import keras
import numpy as np

from retrainlab.data.stream import windows
from retrainlab.models.bundle import ModelBundle
from retrainlab.models.files import copy_model
from retrainlab.models.inputs import model_input

# TextVectorization's integer output: index 0 pads, 1 is out of vocabulary, words from 2.
RESERVED = 2
# A token is added when the new texts hold it at least once per this many texts (and at
# least once): 5 times in 1,425 texts, twice in 415, once in 64 (`minimum_count`).
TEXTS_PER_COUNT = 300


def minimum_count(texts: int) -> int:
    """The fewest times `texts` new texts must hold a token for it to be added."""
    return max(1, math.ceil(texts / TEXTS_PER_COUNT))


@dataclasses.dataclass(frozen=True)
class Growth:
    """What growing one text layer's vocabulary (or a lookup's values: `unit` "values") did,
    or why it was left as it was."""

    layer: str
    added: int
    size: int  # the vocabulary's size after, reserved indices included
    skipped: str = ""  # why the layer was not grown
    rare: int = 0  # new tokens left out: the new texts hold them fewer than `min_count` times
    min_count: int = 1
    beyond: int = 0  # new tokens frequent enough, left out beyond the most that may be added
    max_new: int = 0
    unit: str = "tokens"  # or "values": a categorical column's lookup

    def describe(self) -> str:
        if self.skipped:
            return f"{self.layer}: {'vocabulary' if self.unit == 'tokens' else 'lookup'} kept ({self.skipped})"
        text = f"{self.layer}: {self.added} new {self.unit} appended ({self.size} in all)"
        if self.rare:
            text += (f"; {self.rare} seen fewer than {self.min_count} times in the new rows left out "
                     "(read as out of vocabulary)")
        if self.beyond:
            limit = "model.text_tokens" if self.unit == "tokens" else "model.max_categories in all"
            text += f"; {self.beyond} more left out beyond the {self.max_new} that may be added ({limit})"
        return text


def text_layers(model: keras.Model) -> list[keras.layers.TextVectorization]:
    return [layer for layer in model.layers if isinstance(layer, keras.layers.TextVectorization)]


def fed_embedding(model: keras.Model, layer: keras.layers.Layer) -> keras.layers.Embedding | None:
    """The Embedding that reads `layer`'s output directly, if one does."""
    for other in model.layers:
        if isinstance(other, keras.layers.Embedding) and _single_input(other) is layer.output:
            return other
    return None


def _single_input(layer: keras.layers.Layer):
    try:
        return layer.input
    except (AttributeError, ValueError):  # a layer called more than once has no single input
        return None


def texts_reaching(model: keras.Model, layer: keras.layers.Layer, batches) -> np.ndarray:
    """The texts that reach `layer` in `model` for the inputs in `batches()`, as str."""
    values = values_reaching(model, [layer], batches)[0]
    return np.array([v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in values],
                    dtype=object)


def values_reaching(model: keras.Model, layers: Sequence[keras.layers.Layer], batches) -> list[np.ndarray]:
    """The values that reach each of `layers` in `model` for the inputs in `batches()`, flat:
    one pass over the inputs for all of them."""
    upstream = keras.Model(model_input(model), [layer.input for layer in layers])
    parts: list[list[np.ndarray]] = [[] for _ in layers]
    for x in batches():
        outputs = upstream.predict_on_batch(x)
        for part, output in zip(parts, outputs if isinstance(outputs, (list, tuple)) else [outputs]):
            part.append(np.asarray(output))
    return [np.concatenate(part).ravel() if part else np.array([], dtype=object) for part in parts]


def token_counts(layer: keras.layers.TextVectorization, texts: np.ndarray,
                 chunk: int = 4096) -> list[tuple[str, int]]:
    """The tokens of `texts` as `layer` splits them (its own standardisation and split), each
    with the times `layer` reads it in them (within its output length), the most frequent first."""
    config = {**layer.get_config(), "vocabulary": None, "max_tokens": None, "idf_weights": None}
    config.pop("vocabulary_size", None)
    twin = keras.layers.TextVectorization.from_config({**config, "output_mode": "int", "name": "twin"})
    if not len(texts):
        return []
    texts = texts.reshape(-1, 1)
    twin.adapt(texts)
    vocabulary = twin.get_vocabulary()
    counts = np.zeros(len(vocabulary), dtype=np.int64)
    for start in range(0, len(texts), chunk):
        indices = keras.ops.convert_to_numpy(twin(texts[start:start + chunk])).ravel()
        counts += np.bincount(indices, minlength=len(vocabulary))[:len(vocabulary)]
    pairs = [(str(t), int(c)) for t, c in zip(vocabulary[RESERVED:], counts[RESERVED:])]
    return sorted(pairs, key=lambda pair: -pair[1])  # stable: adapt's order among equal counts


def grow_vocabulary(model: keras.Model, batches, max_new: int, seed: int = 0,
                    min_count: int | None = None) -> tuple[keras.Model, list[Growth]]:
    """A copy of `model` whose text layers know up to `max_new` new tokens each: those of the
    texts `batches()` gives (model inputs) that the layer's vocabulary lacks and that they hold
    at least `min_count` times (None: `minimum_count` of their number), the most frequent
    first, each one's embedding row starting small and random (`seed`). Returns the copy and
    what was done to each text layer."""
    copy = copy_model(model)
    replaced: dict[str, keras.layers.Layer] = {}
    rows: dict[str, np.ndarray] = {}
    report = []
    for layer in text_layers(copy):
        config = layer.get_config()
        embedding = fed_embedding(copy, layer)
        if config.get("output_mode") != "int" or config.get("ngrams") or embedding is None:
            report.append(Growth(layer.name, 0, layer.vocabulary_size(),
                                 "its output is not a sequence of token indices read by an Embedding"))
            continue
        old = [str(t) for t in layer.get_vocabulary()[RESERVED:]]
        known = set(old)
        texts = texts_reaching(copy, layer, batches)
        bar = minimum_count(len(texts)) if min_count is None else min_count
        unseen = [(t, c) for t, c in token_counts(layer, texts) if t not in known]
        frequent = [t for t, c in unseen if c >= bar]
        new = frequent[:max_new]
        left_out = {"rare": len(unseen) - len(frequent), "min_count": bar,
                    "beyond": len(frequent) - len(new), "max_new": max_new}
        if not new:
            report.append(Growth(layer.name, 0, layer.vocabulary_size(), **left_out))
            continue
        config.pop("vocabulary_size", None)
        replaced[layer.name] = keras.layers.TextVectorization.from_config(
            {**config, "vocabulary": old + new, "max_tokens": None})
        size = RESERVED + len(old) + len(new)
        replaced[embedding.name] = type(embedding).from_config({**embedding.get_config(), "input_dim": size})
        fresh = keras.initializers.RandomUniform(-0.05, 0.05, seed=seed)((len(new), embedding.output_dim))
        rows[embedding.name] = np.vstack([keras.ops.convert_to_numpy(embedding.embeddings),
                                          keras.ops.convert_to_numpy(fresh)])
        report.append(Growth(layer.name, len(new), size, **left_out))
    if not replaced:
        return copy, report
    grown = keras.models.clone_model(copy, clone_function=lambda layer: replaced.get(layer.name, layer))
    for name, weights in rows.items():
        grown.get_layer(name).set_weights([weights])
    return grown, report


def with_new_tokens(bundle: ModelBundle, data, splits: Sequence[str], max_new: int,
                    seed: int) -> tuple[ModelBundle, list[Growth]]:
    """`bundle` with the vocabulary of each text layer grown by the tokens of the rows of
    `splits` (a `retrainlab.data.Prepared`'s) seen there often enough, as `grow_vocabulary`
    says; a model without text layers as it is."""
    if not text_layers(bundle.model):
        return bundle, []
    model, report = grow_vocabulary(bundle.model, _batches(bundle, data, splits, seed), max_new, seed)
    return dataclasses.replace(bundle, model=model), report


# Where a new categorical value's row starts: "unknown", a copy of the unknown value's row (the
# grown model predicts as the baseline did until trained), or "random", small and random as a
# new token's (docs/STRATEGIES.md measures the two).
NEW_VALUE_ROW = "unknown"

# How a lookup's output may be read for it to grow: its indices by an Embedding, or its
# one-hot (or multi-hot, or counts) by a Dense layer, directly or through a Concatenate.
INDICES, ONE_HOT = ("int",), ("one_hot", "multi_hot", "count")


def lookup_layers(model: keras.Model) -> list[keras.layers.Layer]:
    """The model's categorical lookups (StringLookup, IntegerLookup), in order."""
    return [layer for layer in model.layers if isinstance(layer, (keras.layers.StringLookup, keras.layers.IntegerLookup))]


def _reads(layer: keras.layers.Layer, tensor) -> bool:
    """Whether `layer` takes `tensor` among its inputs (one, or a list of them)."""
    taken = _single_input(layer)
    return any(t is tensor for t in taken) if isinstance(taken, (list, tuple)) else taken is tensor


def _one_hot_reader(model: keras.Model, layer: keras.layers.Layer):
    """The Dense layer that reads `layer`'s one-hot and where its columns start among that
    Dense layer's inputs: (dense, offset, concatenate or None); None where no Dense reads it
    alone or through one Concatenate."""
    readers = [other for other in model.layers if other is not layer and _reads(other, layer.output)]
    if len(readers) != 1:
        return None
    reader = readers[0]
    if isinstance(reader, keras.layers.Dense):
        return reader, 0, None
    if not isinstance(reader, keras.layers.Concatenate) or reader.axis not in (-1, 1):
        return None
    dense = [other for other in model.layers if _reads(other, reader.output)]
    if len(dense) != 1 or not isinstance(dense[0], keras.layers.Dense):
        return None
    offset = 0
    for tensor in reader.input:
        if tensor is layer.output:
            return dense[0], offset, reader
        offset += tensor.shape[-1]
    return None


def _unknown_index(config: dict) -> int | None:
    """The index a lookup gives a value it lacks, where there is exactly one such index."""
    if config.get("invert") or config.get("num_oov_indices", 1) != 1:
        return None
    return 0 if config.get("mask_token") is None else 1


def grow_lookups(model: keras.Model, batches, max_size: int, seed: int = 0) -> tuple[keras.Model, list[Growth]]:
    """A copy of `model` whose categorical lookups know the values of the inputs
    `batches()` gives that they lack, the most frequent first, up to `max_size` values each,
    each new value's row in the layer the lookup feeds starting as the unknown value's (the
    module's docstring). Returns the copy and what was done to each lookup."""
    copy = copy_model(model)
    layers = lookup_layers(copy)
    said: dict[str, Growth] = {}
    readers = {}  # a lookup that can grow: its config, unknown index, and the Embedding or Dense reading it
    for layer in layers:
        config = layer.get_config()
        unknown = _unknown_index(config)
        mode = config.get("output_mode")
        embedding = fed_embedding(copy, layer) if mode in INDICES else None
        reader = _one_hot_reader(copy, layer) if mode in ONE_HOT else None
        why = ("it is inverted, or reads unknown values into more than one index" if unknown is None else
               f"its output ({mode}) is read by neither an Embedding (indices) nor a Dense layer (one-hot)"
               if embedding is None and reader is None else "")
        if why:
            said[layer.name] = Growth(layer.name, 0, layer.vocabulary_size(), why, unit="values")
        else:
            readers[layer.name] = (config, unknown, embedding, reader)
    growable = [layer for layer in layers if layer.name in readers]
    seen = values_reaching(copy, growable, batches) if growable else []  # one pass over the rows for all
    replaced: dict[str, keras.layers.Layer] = {}
    kernels: dict[str, list[tuple[int, int, int]]] = {}  # Dense: (at, copy of row, how many)
    rows: dict[str, np.ndarray] = {}
    for layer, values in zip(growable, seen):
        config, unknown, embedding, reader = readers[layer.name]
        reserved = unknown + 1
        old = [_plain(v) for v in layer.get_vocabulary()[reserved:]]
        known = set(old)
        unseen = [v for v, _ in _counted(values) if v not in known]
        room = max(0, max_size - len(old))
        new = unseen[:room]
        if not new:  # said only where the new rows hold values it lacks: a user id column seen whole is not news
            if unseen:
                said[layer.name] = Growth(layer.name, 0, layer.vocabulary_size(), beyond=len(unseen), max_new=room,
                                          unit="values")
            continue
        config.pop("vocabulary_size", None)
        replaced[layer.name] = type(layer).from_config({**config, "vocabulary": [*old, *new], "max_tokens": None})
        size = reserved + len(old) + len(new)
        if embedding is not None:
            replaced[embedding.name] = type(embedding).from_config({**embedding.get_config(), "input_dim": size})
            table = keras.ops.convert_to_numpy(embedding.embeddings)
            rows[embedding.name] = np.vstack([table, _new_rows(table, unknown, len(new), seed)])
        else:
            dense, offset, concatenate = reader
            if concatenate is not None:
                replaced[concatenate.name] = type(concatenate).from_config(concatenate.get_config())
            replaced[dense.name] = type(dense).from_config(dense.get_config())
            kernels.setdefault(dense.name, []).append((offset + layer.vocabulary_size(), offset + unknown, len(new)))
        said[layer.name] = Growth(layer.name, len(new), size, beyond=len(unseen) - len(new), max_new=room,
                                  unit="values")
    report = [said[layer.name] for layer in layers if layer.name in said]
    if not replaced:
        return copy, report
    grown = keras.models.clone_model(copy, clone_function=lambda layer: replaced.get(layer.name, layer))
    for name, table in rows.items():
        grown.get_layer(name).set_weights([table])
    for name, inserts in kernels.items():
        kernel, *rest = copy.get_layer(name).get_weights()
        for at, source, count in sorted(inserts, reverse=True):  # the last first: earlier offsets stay right
            kernel = np.insert(kernel, at, _new_rows(kernel, source, count, seed), axis=0)
        grown.get_layer(name).set_weights([kernel, *rest])
    return grown, report


def _counted(values: np.ndarray) -> list[tuple]:
    """Each distinct value (as `_plain`) and how often `values` holds it, the most frequent first
    (ties: in order of their text); counted by numpy, not value by value in Python."""
    distinct, counts = np.unique(values, return_counts=True)
    return sorted(((_plain(v), int(c)) for v, c in zip(distinct, counts)), key=lambda pair: (-pair[1], str(pair[0])))


def _new_rows(table: np.ndarray, unknown: int, count: int, seed: int) -> np.ndarray:
    """`count` rows for new values of a weight table whose row `unknown` the unknown value reads."""
    if NEW_VALUE_ROW == "random":
        fresh = keras.initializers.RandomUniform(-0.05, 0.05, seed=seed)((count, table.shape[1]))
        return keras.ops.convert_to_numpy(fresh).astype(table.dtype)
    return np.repeat(table[unknown:unknown + 1], count, axis=0)


def _plain(value):
    """A lookup's value as Python: str for text (bytes decoded), int for an integer."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, (np.integer, int)) and not isinstance(value, bool):
        return int(value)
    return str(value)


def with_new_values(bundle: ModelBundle, data, splits: Sequence[str], max_size: int,
                    seed: int) -> tuple[ModelBundle, list[Growth]]:
    """`bundle` with each categorical lookup grown by the values of the rows of `splits` (a
    `retrainlab.data.Prepared`'s) it lacks, as `grow_lookups` says; a model without lookups
    as it is."""
    if not lookup_layers(bundle.model):
        return bundle, []
    model, report = grow_lookups(bundle.model, _batches(bundle, data, splits, seed), max_size, seed)
    return dataclasses.replace(bundle, model=model), report


def _batches(bundle: ModelBundle, data, splits: Sequence[str], seed: int):
    """The model inputs of the rows of `splits` (a `retrainlab.data.Prepared`'s), window by
    window, as a function: each growth reads them as often as it needs."""
    paths, columns = [data.path(s) for s in splits], data.feature_names
    return lambda: (bundle.inputs(w) for w in windows(paths, columns, np.random.default_rng(seed)))
