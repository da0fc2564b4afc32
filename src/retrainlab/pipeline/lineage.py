"""Which prepared rows trained a model, and which it was only measured on.

A version this project registered says what it is: its strategy (whose declaration says
what it trains on and where it starts), the digests of the prepared splits its run read,
and the version it started from. Walked back to a model trained from nothing, those give
the splits whose rows trained it. A split whose digest is not the prepared file's any more
is an earlier round's: `retrainlab next-round` made every earlier round's rows this round's
old data, so the old splits hold them. A model this project did not train (a `.keras` file,
a version logged elsewhere) has no lineage here: which rows trained it is not known.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from retrainlab.base import layout
from retrainlab.base.files import file_md5
from retrainlab.config import TRAIN
from retrainlab.strategies import BASELINE, CATALOGUE, FROM_BASELINE
from retrainlab.strategies.declaration import NEW, OLD
from retrainlab.tracking import store

TESTS = ("initial_test", "incremental_test")
EARLIER = (OLD, "initial_test")  # where an earlier round's rows are now


@dataclasses.dataclass(frozen=True)
class Lineage:
    """The prepared splits whose rows trained the model (or a model it started from), those
    it was measured on and not trained on, and how this is known, in words."""

    trained: tuple[str, ...]
    held_out: tuple[str, ...]
    said: str

    @property
    def known(self) -> bool:
        return bool(self.trained or self.held_out)


def unknown(what: str) -> Lineage:
    return Lineage((), (), f"which rows trained {what} is not known: it is not a model this project trained")


def of_folder(strategy: str, baseline_from: str) -> Lineage:
    """A pipeline's model folder, models/STRATEGY/seed-N: trained on the prepared data as it
    is (DVC keeps the two together)."""
    trained = set(_own_splits(strategy, baseline_from))
    if CATALOGUE[strategy].starts_from == FROM_BASELINE and strategy != BASELINE:
        trained |= set(_own_splits(BASELINE, baseline_from))
    held = tuple(t for t in TESTS if t not in trained)
    return Lineage(_ordered(trained), held, f"models/{strategy} was trained on this round's prepared data by "
                   f"{strategy}{'' if strategy == BASELINE else ', starting from ' + _start(strategy)}")


def of_version(client, name: str, version: str, root: Path) -> Lineage:
    """A registered version: its strategy and the splits its run read, and so on back along
    the versions it started from."""
    current = {split: file_md5(root / layout.split_path(split)) for split in layout.SPLITS}
    trained: set[str] = set()
    held: set[str] = set()
    chain: list[str] = []
    earlier = False
    seen = set()
    while version is not None and version not in seen:
        seen.add(version)
        found = client.get_model_version(name, version)
        strategy = found.tags.get("strategy")
        run = client.get_run(found.run_id) if found.run_id else None
        digests = {} if run is None else {s: run.data.tags.get(store.data_tag(s)) for s in layout.SPLITS}
        if strategy not in CATALOGUE or not any(digests.values()):
            if not chain:
                return unknown(f"model '{name}' version {version}")
            chain.append(f"v{version} (not trained by this project: its own training rows are not known)")
            break
        baseline_from = run.data.params.get("baseline.from", TRAIN)
        own = _own_splits(strategy, baseline_from)
        chain.append(f"v{version} ({strategy}, round {found.tags.get(store.TAG_ROUND, '?')})")
        for split in own:
            if digests.get(split) == current[split]:
                trained.add(split)
            else:
                earlier = True
        held |= {t for t in TESTS if digests.get(t) == current[t]}
        if strategy == BASELINE and baseline_from != TRAIN:
            chain[-1] = f"v{version} (a model brought as the baseline: its own training rows are not known)"
            break
        if CATALOGUE[strategy].starts_from != FROM_BASELINE or strategy == BASELINE:
            break
        version = found.tags.get(store.TAG_PARENT_VERSION)
    if earlier:
        trained |= set(EARLIER)
    said = " from ".join(chain)
    if earlier:
        said += "; an earlier round's rows are this round's old data"
    return Lineage(_ordered(trained), _ordered(held - trained), said)


def _own_splits(strategy: str, baseline_from: str) -> tuple[str, ...]:
    """The splits a strategy's own training reads (not those of the model it starts from)."""
    if strategy == BASELINE:
        return (OLD,) if baseline_from == TRAIN else ()
    declared = CATALOGUE[strategy]
    return (OLD, NEW) if declared.reads_old_data else (NEW,)


def _start(strategy: str) -> str:
    return "the baseline" if CATALOGUE[strategy].starts_from == FROM_BASELINE else "fresh weights"


def _ordered(splits: set[str]) -> tuple[str, ...]:
    return tuple(s for s in layout.SPLITS if s in splits)
