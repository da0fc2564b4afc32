"""Vocabulary growth: the model surgery that lets an update read the words new data adds.

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
from retrainlab.models.inputs import model_input
from retrainlab.models.files import copy_model

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
    """What growing one text layer's vocabulary did, or why it was left as it was."""

    layer: str
    added: int
    size: int  # the vocabulary's size after, reserved indices included
    skipped: str = ""  # why the layer was not grown
    rare: int = 0  # new tokens left out: the new texts hold them fewer than `min_count` times
    min_count: int = 1
    beyond: int = 0  # new tokens frequent enough, left out beyond the most that may be added
    max_new: int = 0

    def describe(self) -> str:
        if self.skipped:
            return f"{self.layer}: vocabulary kept ({self.skipped})"
        text = f"{self.layer}: {self.added} new tokens appended ({self.size} in all)"
        if self.rare:
            text += (f"; {self.rare} seen fewer than {self.min_count} times in the new rows left out "
                     "(read as out of vocabulary)")
        if self.beyond:
            text += f"; {self.beyond} more left out beyond the {self.max_new} that may be added (model.text_tokens)"
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
    upstream = keras.Model(model_input(model), layer.input)
    parts = [np.asarray(upstream.predict_on_batch(x)) for x in batches()]
    values = np.concatenate(parts) if parts else np.array([], dtype=object)
    return np.array([v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in values.ravel()],
                    dtype=object)


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
    paths, columns = [data.path(s) for s in splits], [f.name for f in data.features]
    batches = lambda: (bundle.inputs(w) for w in windows(paths, columns, np.random.default_rng(seed)))  # noqa: E731
    model, report = grow_vocabulary(bundle.model, batches, max_new, seed)
    return dataclasses.replace(bundle, model=model), report
