"""Where the rows come from, each source as a `Dataset` of one schema (see schema.tidy).

The built-in sources (scikit-learn's digits; synthetic rows labelled by a seeded teacher
network; generated messages; Friedman's regression problem; clicks of users on items drawn
from latent factors), split by the scenario and built in parts of bounded size
(`builtin_parts`); the user's CSV or Parquet tables (`read_table`, `files_dataset`); and the
user's arrays of any shape in .npz files (`read_arrays`, `arrays_dataset`), flattened into
columns.
"""

from __future__ import annotations

import csv
import dataclasses
import itertools
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from pyarrow import types

from retrainlab.base.errors import DataError
from retrainlab.config import DataParams
from retrainlab.data.messages import as_reviews, message_pool, tweets_only
from retrainlab.data.scenarios import apply_scenario, new_categories, shift_digits, split_pool
from retrainlab.data import values
from retrainlab.data.schema import Dataset, tidy

# --- the built-in sources -------------------------------------------------------------


def digits_pool() -> tuple[pd.DataFrame, np.ndarray]:
    """scikit-learn's bundled 8x8 handwritten digits: 1797 real images, 64 pixel columns."""
    # start-up: scikit-learn only for the digits source
    from sklearn.datasets import load_digits

    frame = load_digits(as_frame=True).frame
    return frame.drop(columns="target"), frame["target"].to_numpy()


@dataclasses.dataclass(frozen=True)
class SyntheticTeacher:
    """A fixed random network that labels rows: the 'true rule' of the synthetic source."""

    hidden: np.ndarray
    readout: np.ndarray
    segment_bias: dict[str, np.ndarray]
    shift_direction: np.ndarray

    @classmethod
    def draw(cls, features: int, classes: int, rng: np.random.Generator) -> SyntheticTeacher:
        direction = rng.normal(size=features)
        return cls(
            hidden=rng.normal(size=(features, 16)),
            readout=rng.normal(size=(16, classes)),
            segment_bias={s: rng.normal(scale=0.7, size=classes) for s in SEGMENTS},
            shift_direction=direction / np.linalg.norm(direction),
        )

    def label(self, frame: pd.DataFrame) -> np.ndarray:
        x = frame.drop(columns="segment").to_numpy()
        logits = np.tanh(x @ self.hidden) @ self.readout
        logits += np.stack([self.segment_bias[s] for s in frame["segment"]])
        return logits.argmax(axis=1)

    def shift(self, frame: pd.DataFrame, strength: float) -> pd.DataFrame:
        moved = frame.copy()
        numeric = [c for c in frame.columns if c != "segment"]
        moved[numeric] = frame[numeric].to_numpy() + strength * self.shift_direction
        return moved


SEGMENTS = ("north", "south", "east")


def synthetic_rows(rows: int, features: int, rng: np.random.Generator) -> pd.DataFrame:
    """Seeded unlabelled rows: numeric columns x0.. plus a categorical `segment`."""
    frame = pd.DataFrame(rng.normal(size=(rows, features)), columns=[f"x{i}" for i in range(features)])
    frame["segment"] = rng.choice(SEGMENTS, size=rows)
    return frame


def synthetic_pool(rows: int, features: int, classes: int, rng: np.random.Generator):
    """Seeded rows labelled by a teacher drawn from the same generator."""
    teacher = SyntheticTeacher.draw(features, classes, rng)
    frame = synthetic_rows(rows, features, rng)
    return frame, teacher.label(frame), teacher


# Rows of the synthetic source generated, split and written at a time: prepare's memory is
# bounded by this, whatever `data.synthetic.rows` is.
CHUNK_ROWS = 1 << 18


def builtin_parts(params: DataParams, seed: int) -> Iterator[Dataset]:
    """The built-in source's data, in parts that together are the whole dataset.

    Digits and the text source (retrainlab.data.messages) are one part each. The synthetic
    source is generated CHUNK_ROWS rows at a time by one seeded generator, and each chunk is
    split by the scenario on its own, so that a source of any size is built in bounded memory.
    """
    rng = np.random.default_rng(seed)
    names = ("initial data", "incremental data")
    if params.source == "digits":
        pool, labels = digits_pool()
        initial, y_initial, incremental, y_incremental = apply_scenario(pool, labels, params, rng, shift_digits)
        yield _labelled(initial, y_initial, incremental, y_incremental, "digit", names)
        return
    if params.source == "text":
        pool, labels = message_pool(rng)
        initial, y_initial, incremental, y_incremental = apply_scenario(pool, labels, params, rng, as_reviews)
        yield _labelled(tweets_only(initial), y_initial, tweets_only(incremental), y_incremental, "sentiment", names)
        return
    p = params.synthetic
    if params.source == "friedman":
        for start in range(0, p.rows, CHUNK_ROWS):
            yield friedman_part(min(CHUNK_ROWS, p.rows - start), p.features, params, rng, names)
        return
    if params.source == "recommender":
        clicks = ClickModel.draw(rng)
        for start in range(0, p.rows, CHUNK_ROWS):
            yield recommender_part(min(CHUNK_ROWS, p.rows - start), clicks, params, rng, names)
        return
    teacher = SyntheticTeacher.draw(p.features, p.classes, rng)
    for start in range(0, p.rows, CHUNK_ROWS):
        pool = synthetic_rows(min(CHUNK_ROWS, p.rows - start), p.features, rng)
        parts = apply_scenario(
            pool, teacher.label(pool), params, rng, teacher.shift, teacher.label, classes=np.arange(p.classes)
        )
        del pool
        yield _labelled(*parts, "label", names)


def friedman_rule(x: np.ndarray, drift: float = 0.0) -> np.ndarray:
    """Friedman's first regression problem (1991), noise-free: 10 sin(pi x0 x1) + 20 (x2 - 0.5)^2
    + 10 x3 + 5 x4; the other columns do not matter. `drift` turns x3's effect around: its
    coefficient is 10 - 20 * drift (-10 at 1.0), the concept drift of the regression scenarios."""
    return (10 * np.sin(np.pi * x[:, 0] * x[:, 1]) + 20 * (x[:, 2] - 0.5) ** 2 + (10 - 20 * drift) * x[:, 3]
            + 5 * x[:, 4])


# How far covariate_shift moves every input at shift_strength 1.0: the inputs are uniform on [0, 1].
FRIEDMAN_SHIFT = 0.3


def friedman_part(rows: int, features: int, params: DataParams, rng: np.random.Generator,
                  names: tuple[str, str]) -> Dataset:
    """Rows of the friedman source: uniform inputs x0.. on [0, 1], the label `y` by
    `friedman_rule` plus standard normal noise, split into initial and incremental data as
    the scenario says: the incremental inputs moved by FRIEDMAN_SHIFT x shift_strength and
    labelled by the same rule (covariate_shift), or labelled by the rule drifted by
    shift_strength (concept_drift)."""
    x = rng.uniform(size=(rows, features))
    noise = rng.normal(size=rows)
    initial, incremental = split_pool(np.ones(rows, dtype=bool), params.incremental_fraction, rng)
    x_new, drift = x[incremental], 0.0
    if params.scenario == "covariate_shift":
        x_new = x_new + FRIEDMAN_SHIFT * params.shift_strength
    elif params.scenario == "concept_drift":
        drift = params.shift_strength
    columns = [f"x{i}" for i in range(features)]
    return _labelled(pd.DataFrame(x[initial], columns=columns), friedman_rule(x[initial]) + noise[initial],
                     pd.DataFrame(x_new, columns=columns), friedman_rule(x_new, drift) + noise[incremental], "y",
                     names, task=params.task)


# The recommender source: USERS users, OLD_ITEMS items in every scenario and NEW_ITEMS more that
# only new_categories' incremental rows hold (their ids follow the old ones'), so that one-hot
# columns stay few at the project's scale.
USERS, OLD_ITEMS, NEW_ITEMS = 200, 100, 20
FACTORS = 4  # the width of a user's and an item's latent factors
# The click's log-odds, with these scales: about 30% of rows are clicks. An item's bias
# (standard deviation ITEM_BIAS) is most of what an item id says; the taste (the dot product
# of the factors, standard deviation TASTE) needs many rows per user to learn; a dearer item
# than its kind is clicked less (PRICE_EFFECT per standard deviation of log price); the
# evening (PEAK_HOUR) a little more.
CLICK_INTERCEPT = -2.2
ITEM_BIAS, TASTE, PRICE_EFFECT, HOUR_EFFECT = 3.0, 1.0, 1.0, 0.5
LOG_PRICE, PRICE_SPREAD, MARKUP_SPREAD = 3.0, 0.5, 0.2  # an item's log list price, and a row's markup on it
PEAK_HOUR = 20


@dataclasses.dataclass(frozen=True)
class ClickModel:
    """The recommender source's true rule: each user's and item's latent factors, each item's
    bias and log list price, for the old items and the new ones alike (new_categories' new
    items are drawn from the same distribution: their ids carry as much as the old ones')."""

    users: np.ndarray  # USERS x FACTORS
    items: np.ndarray  # (OLD_ITEMS + NEW_ITEMS) x FACTORS
    item_bias: np.ndarray
    log_price: np.ndarray

    @classmethod
    def draw(cls, rng: np.random.Generator) -> ClickModel:
        scale = np.sqrt(TASTE) * FACTORS ** -0.25  # a dot product of standard deviation TASTE
        items = OLD_ITEMS + NEW_ITEMS
        return cls(users=rng.normal(scale=scale, size=(USERS, FACTORS)),
                   items=rng.normal(scale=scale, size=(items, FACTORS)),
                   item_bias=rng.normal(scale=ITEM_BIAS, size=items),
                   log_price=rng.normal(LOG_PRICE, PRICE_SPREAD, size=items))

    def probability(self, user: np.ndarray, item: np.ndarray, price: np.ndarray, hour: np.ndarray) -> np.ndarray:
        """The chance of a click on each row: the logistic of the log-odds the constants above describe."""
        taste = np.einsum("rf,rf->r", self.users[user], self.items[item])
        dearer = (np.log(price) - LOG_PRICE) / PRICE_SPREAD
        evening = np.cos(2 * np.pi * (hour - PEAK_HOUR) / 24)
        logit = CLICK_INTERCEPT + taste + self.item_bias[item] - PRICE_EFFECT * dearer + HOUR_EFFECT * evening
        return 1 / (1 + np.exp(-logit))


def recommender_part(rows: int, clicks: ClickModel, params: DataParams, rng: np.random.Generator,
                     names: tuple[str, str]) -> Dataset:
    """Rows of the recommender source: a user and an old item drawn uniformly, the item's list
    price with the row's own markup, an hour of the day, and `click` (1 or 0) drawn with
    `ClickModel`'s probability; split into initial and incremental data, and under
    new_categories a share data.unseen_share of the incremental rows given a new item
    (priced and clicked by the same rule)."""
    user = rng.integers(USERS, size=rows)
    item = rng.integers(OLD_ITEMS, size=rows)
    markup = rng.normal(scale=MARKUP_SPREAD, size=rows)
    hour = rng.integers(24, size=rows)
    chance = rng.uniform(size=rows)
    initial, incremental = split_pool(np.ones(rows, dtype=bool), params.incremental_fraction, rng)
    if params.scenario == "new_categories":
        item = new_categories(item, incremental, params.unseen_share, OLD_ITEMS + np.arange(NEW_ITEMS), rng)
    price = np.round(np.exp(clicks.log_price[item] + markup), 2)
    click = (chance < clicks.probability(user, item, price, hour)).astype(int)
    table = pd.DataFrame({"user_id": np.char.add("u", np.char.zfill(user.astype(str), 4)),
                          "item_id": np.char.add("i", np.char.zfill(item.astype(str), 4)),
                          "price": price, "hour": hour})
    return _labelled(table.iloc[initial].reset_index(drop=True), click[initial],
                     table.iloc[incremental].reset_index(drop=True), click[incremental], "click", names,
                     task=params.task)


def _labelled(initial, y_initial, incremental, y_incremental, label: str, names: tuple[str, str],
              task: str = "auto") -> Dataset:
    initial[label], incremental[label] = y_initial, y_incremental
    return tidy(initial, incremental, label, features=None, names=names, check_classes=False, task=task)


# --- the user's files -----------------------------------------------------------------


# The files each source of the user's reads, and what errors ask for.
SUFFIXES = {"files": (".csv", ".parquet", ".pq"), "arrays": (".npz",)}
_WANTED = {"files": "a .csv or .parquet file", "arrays": "an .npz file"}
_GIVE = {"files": "a .csv or .parquet file", "arrays": "an .npz file with x and y"}


def check_file(path: Path, shown: str, setting: str, source: str) -> None:
    """A file of the source's type that exists; `shown` is how errors name it (the path as
    the user gave it), `setting` the parameter that names it."""
    if path.is_dir():  # before the suffix check, whose "unsupported type ''" would mislead
        raise DataError(f"{shown}: is a directory; set {setting} to {_WANTED[source]}")
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES[source]:
        raise DataError(f"{shown}: unsupported file type '{suffix}'; give {_GIVE[source]}")
    if not path.is_file():
        raise DataError(f"{shown}: file not found; set {setting}")


def read_table(path: Path, shown: str, setting: str,
               as_written: Sequence[str] = ()) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Read a CSV or Parquet file, and say how it was read (its format, a CSV's delimiter).

    `shown` is how errors name the file (the path as the user gave it), `setting` the
    parameter that names it; a CSV's `as_written` columns (data.files.categorical) are read
    as the text written, "02139" with its zero.
    """
    check_file(path, shown, setting, "files")
    suffix = path.suffix.lower()
    if path.stat().st_size == 0:
        raise DataError(f"{shown}: the file is empty")
    try:
        frame, how = _read_csv(path, shown, as_written) if suffix == ".csv" else _read_parquet(path, shown)
    except DataError:
        raise
    except UnicodeDecodeError as exc:
        raise DataError(f"{shown}: {_not_utf8(path, exc)}; save the file as UTF-8") from None
    except Exception as exc:  # pandas, pyarrow and csv raise many types for unreadable files
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(f"{shown}: cannot be read as {suffix[1:]} ({reason})") from None
    if frame.empty:
        raise DataError(f"{shown}: has a header but no data rows")
    return frame, how


# The delimiters a CSV may use; sniffing among them only, so that a comma file with some
# other character on every line is still read with commas.
DELIMITERS = ",;\t|"
SNIFFED_LINES = 20


def _read_csv(path: Path, shown: str, as_written: Sequence[str] = ()) -> tuple[pd.DataFrame, dict[str, Any]]:
    with path.open(newline="", encoding="utf-8-sig", errors="replace") as file:
        head = list(itertools.islice(file, SNIFFED_LINES))
    try:
        delimiter = csv.Sniffer().sniff("".join(head), delimiters=DELIMITERS).delimiter
    except csv.Error:  # nothing stands out, as in a one-column file
        delimiter = ","
    # The header as written: pandas would rename a second 'x0' to 'x0.1' without a word.
    header = next(csv.reader(head, delimiter=delimiter), [])
    _check_unique(header, shown)
    as_text = {column: str for column in as_written if column in header}
    frame, commas = values.decimal_commas(pd.read_csv(path, sep=delimiter, dtype=as_text or None), shown, as_written)
    how: dict[str, Any] = {"format": "csv", "delimiter": delimiter}
    if commas:
        how["decimal_comma"] = commas
    return frame, how


def _not_utf8(path: Path, exc: UnicodeDecodeError) -> str:
    """Where a CSV first stops being UTF-8: its line, read line by line (pandas' error counts
    bytes from the start of its own buffer, not of the file)."""
    with path.open("rb") as file:
        for number, line in enumerate(file, start=1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as bad:
                return f"line {number} is not UTF-8 (byte {bad.start + 1} of the line is 0x{line[bad.start]:02x})"
    return f"not UTF-8 ({exc.reason})"


def _read_parquet(path: Path, shown: str) -> tuple[pd.DataFrame, dict[str, Any]]:
    schema = pq.read_schema(path)
    _check_unique(schema.names, shown)
    nested = [field for field in schema if types.is_nested(field.type)]
    if nested:  # pandas would turn them into opaque objects, then into text
        raise DataError(
            f"{shown}: column '{nested[0].name}' holds nested values ({_arrow_type(nested[0].type)}); "
            "flatten it into plain columns"
        )
    return pd.read_parquet(path), {"format": "parquet"}


def _arrow_type(kind: Any) -> str:
    """An Arrow type as a user would write it: list<int64>, map<string, int64>, struct<a: int64>
    (Arrow's own names add the list's element name and the map's column name)."""
    if types.is_map(kind):
        return f"map<{_arrow_type(kind.key_type)}, {_arrow_type(kind.item_type)}>"
    if types.is_struct(kind):
        return "struct<" + ", ".join(f"{field.name}: {_arrow_type(field.type)}" for field in kind) + ">"
    if types.is_nested(kind) and hasattr(kind, "value_type"):  # list, large_list, fixed_size_list
        return f"{str(kind).split('<')[0]}<{_arrow_type(kind.value_type)}>"
    return str(kind)


def _check_unique(columns: list[str], shown: str) -> None:
    # Blank names are left to pandas, which names each 'Unnamed: <position>'.
    repeated = [(name, n) for name, n in Counter(c for c in columns if c.strip()).items() if n > 1]
    if repeated:
        name, n = repeated[0]
        raise DataError(f"{shown}: column '{name}' appears {n} times; give each column a unique name")


def files_dataset(params: DataParams, root: Path) -> Dataset:
    spec = params.files
    names = (spec.initial, spec.incremental)
    settings = ("data.files.initial", "data.files.incremental")
    listed = spec.categorical or []
    read = [read_table((root / p).resolve(), p, setting, listed) for p, setting in zip(names, settings)]
    dataset = tidy(*(frame for frame, _ in read), spec.label, spec.features or None, names, params.missing,
                   text=spec.text, task=params.task, categorical=listed)
    files = {name: how for name, (_, how) in zip(names, read)}
    return dataclasses.replace(dataset, notes={**dataset.notes, "files": files})


# --- arrays (.npz): images, sequences, any shape -----------------------------------------

ARRAY_LABEL = "label"


def array_columns(shape: Sequence[int]) -> list[str]:
    """The columns an array of `shape` per row is flattened into, in row-major (C) order."""
    return [f"x_{i}" for i in range(int(np.prod(shape)))]


def read_arrays(path: Path, shown: str, setting: str) -> tuple[np.ndarray, np.ndarray]:
    """`x` (rows first, any shape after) and `y` of an .npz file, checked."""
    check_file(path, shown, setting, "arrays")
    try:
        with np.load(path, allow_pickle=False) as archive:  # no pickles: an .npz cannot run code
            missing = [key for key in ("x", "y") if key not in archive.files]
            if missing:
                raise DataError(f"{shown}: no array '{missing[0]}'; save the inputs as x and the labels as y "
                                "(numpy.savez(path, x=..., y=...))")
            x, y = archive["x"], archive["y"]
    except DataError:
        raise
    except Exception as exc:  # not a zip, object arrays (pickles refused), damaged members
        reason = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise DataError(f"{shown}: cannot be read as .npz ({reason})") from None
    if x.ndim < 2 or y.ndim != 1 or len(x) != len(y):
        raise DataError(f"{shown}: x has shape {x.shape} and y {y.shape}; give x one row per label "
                        "(rows first) and y one label per row")
    if not len(y):
        raise DataError(f"{shown}: has no rows")
    if x.dtype.kind not in "biuf":
        raise DataError(f"{shown}: x holds {x.dtype} values; give numbers")
    return x, y


def arrays_dataset(params: DataParams, root: Path) -> Dataset:
    """The `arrays` source: each row's array flattened into columns x_0.. (row-major), so that
    splitting, streaming and diagnostics are the tabular ones; the shape goes to summary.json,
    and a model that takes the array gets it back in that shape."""
    spec = params.arrays
    names = (spec.initial, spec.incremental)
    settings = ("data.arrays.initial", "data.arrays.incremental")
    (x_old, y_old), (x_new, y_new) = (read_arrays((root / p).resolve(), p, s) for p, s in zip(names, settings))
    if x_old.shape[1:] != x_new.shape[1:]:
        raise DataError(f"{names[1]}: rows have shape {x_new.shape[1:]} but {x_old.shape[1:]} in {names[0]}; "
                        "make the two files agree")
    shape = x_old.shape[1:]
    frames = []
    for x, y in ((x_old, y_old), (x_new, y_new)):
        frame = pd.DataFrame(x.reshape(len(x), -1).astype(np.float64, copy=False), columns=array_columns(shape))
        frame[ARRAY_LABEL] = y
        frames.append(frame)
    dataset = tidy(*frames, ARRAY_LABEL, None, names, params.missing, task=params.task)
    return dataclasses.replace(dataset, notes={**dataset.notes, "input_shape": tuple(shape)})
