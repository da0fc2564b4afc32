"""Round after round: the champion of round N is the baseline of round N+1.

`next_round` does the bookkeeping a user would otherwise do by hand when new data arrives:
round N's data, old and new (what prepare made of it, train and test), becomes round N+1's
old data; the arriving file becomes the new data; `baseline.from` points at the
registry's champion; `round` counts on. The files go to `data/raw/round-<N+1>/` and, in a
DVC repository, under DVC (`dvc add`), so every round can be checked out and run again.

Everything that can be checked is checked before anything is written: that data/prepared/
holds round N's data as params.yaml names it (else round N+1 would be built on an older
round, and round N's new rows would be lost), that the arriving file has the old data's
columns and labels a classifier can learn, that its rows are new, and that there is a
champion to start from.

The arriving rows are looked up by content (retrainlab.data.digests, as `retrainlab check`
looks up rows that trained a model), whatever the file's name or format, the rows' order or
the columns' order: a row round N+1's old data holds already would be one of its
training rows and, split into the new test set, one of the rows its options are measured
on. Mostly known rows are the wrong file (round N's new data again) and refused; a few are
left out of the round's copy of the file, and counted.
"""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from ruamel.yaml import YAML

from retrainlab.base import layout
from retrainlab.base.errors import DataError, PipelineError
from retrainlab.base.files import write_atomically
from retrainlab.config import Params
from retrainlab.data import Prepared, inputs, load_prepared, read_arrays, read_table, tidy
from retrainlab.data.digests import found_in, mostly_known, row_digests
from retrainlab.pipeline.params import load_params
from retrainlab.registry import promotion
from retrainlab.tracking import store

CHAMPION_URI = "models:/{name}@champion"
RAW_DIR = Path("data") / "raw"


def next_round(params_path: Path, incoming: Path, root: Path = Path(".")) -> dict[str, Any]:
    """Write round N+1's data and params; return what changed, for the message."""
    params = load_params(root / params_path)
    data = load_prepared(root)
    check_prepared(params, data, root)
    arrays = data.summary.input_shape is not None
    old = pd.concat([data.frame(split) for split in layout.SPLITS], ignore_index=True)
    shown = str(incoming)
    incoming = (root / incoming).resolve()
    arriving = read_incoming(incoming, shown, data)
    check_incoming(arriving, shown, old, data, params)
    known = known_rows(arriving, old, data)
    check_known(shown, int(known.sum()), len(known), params)
    baseline = CHAMPION_URI.format(name=params.tracking.registered_model)
    check_champion(params, root)
    round_ = params.round + 1
    folder = RAW_DIR / f"round-{round_}"
    if (root / folder).exists():
        raise DataError(f"{folder}: exists already; round {round_} was started before (git checkout to redo it)")
    initial = folder / ("initial.npz" if arrays else "initial.parquet")
    incremental = folder / ("incremental" + incoming.suffix.lower())
    (root / folder).mkdir(parents=True)
    try:
        if arrays:
            x = old[data.feature_names].to_numpy().reshape(len(old), *data.summary.input_shape)
            write_atomically(root / initial, lambda tmp: _save_npz(tmp, x, old[data.label].to_numpy()))
        else:
            write_atomically(root / initial, lambda tmp: old.to_parquet(tmp, index=False))
        if known.any():
            write_atomically(root / incremental, lambda tmp: arriving.write(tmp, ~known))
        else:
            shutil.copyfile(incoming, root / incremental)
        _update_params(root / params_path, round_, arrays, initial, incremental, data.label, baseline)
    except BaseException:
        shutil.rmtree(root / folder, ignore_errors=True)
        raise
    tracked = _dvc_add(root, folder)
    return {"round": round_, "initial": initial, "incremental": incremental, "rows_old": len(old), "dvc": tracked,
            "baseline": baseline, "rows_new": int((~known).sum()), "rows_known": int(known.sum())}


def check_prepared(params: Params, data: Prepared, root: Path) -> None:
    """data/prepared/ must be what prepare makes of the data params.yaml names now: round N's
    old and new data. After one next-round and no `dvc repro`, it still holds round N-1's."""
    made_from = data.summary.inputs
    now = inputs.identify(params.data, root)
    if made_from == now:
        return
    if made_from is None:
        why = "does not say which data it was made from (prepared by an earlier retrainlab)"
    else:
        why = f"was made from other data than round {params.round}'s as params.yaml names it ({round_data(params)})"
    raise PipelineError(f"{layout.SUMMARY}: {why}; run dvc repro to prepare round {params.round}, then start "
                        "the next round")


def round_data(params: Params) -> str:
    """This round's data as params.yaml names it, in words: its files, or its built-in source."""
    return ", ".join(inputs.files_of(params.data).values()) or f"the {params.data.source} source"


@dataclasses.dataclass(frozen=True)
class Arriving:
    """The arriving file as read: a table (CSV or Parquet), or an .npz file's arrays. Kept as
    read, so that the rows kept of it are written as the user gave them."""

    suffix: str
    table: pd.DataFrame | None = None
    x: np.ndarray | None = None
    y: np.ndarray | None = None

    def features(self, names: list[str]) -> pd.DataFrame:
        """Its rows with the prepared data's columns: an array flattened as prepare flattens it."""
        if self.table is not None:
            return self.table
        return pd.DataFrame(self.x.reshape(len(self.x), -1), columns=names)

    def write(self, path: str, keep: np.ndarray) -> None:
        """The rows `keep` marks, to `path`, in the file's own format."""
        if self.table is None:
            _save_npz(path, self.x[keep], self.y[keep])
        elif self.suffix == ".csv":
            self.table[keep].to_csv(path, index=False)
        else:
            self.table[keep].to_parquet(path, index=False)


def read_incoming(path: Path, shown: str, data: Prepared) -> Arriving:
    """The arriving file, read as prepare reads the old data's kind: arrays or a table."""
    setting = "--incremental"
    if data.summary.input_shape is not None:
        x, y = read_arrays(path, shown, setting)
        return Arriving(path.suffix.lower(), x=x, y=y)
    # the categorical columns as written ("02139"), as prepare read them
    return Arriving(path.suffix.lower(), table=read_table(path, shown, setting, data.categorical_names)[0])


def check_incoming(arriving: Arriving, shown: str, old: pd.DataFrame, data: Prepared, params: Params) -> None:
    """The arriving data as prepare will read it next to the old data: the same columns of
    the same kinds (or, for arrays, rows of the same shape), and labels it can learn."""
    if arriving.table is None:
        shape = data.summary.input_shape
        if arriving.x.shape[1:] != shape:
            raise DataError(f"{shown}: rows have shape {arriving.x.shape[1:]} but {shape} in the old data; "
                            "make them agree")
        return
    features = params.data.files.features or None
    tidy(old, arriving.table, data.label, features, (f"round {params.round}'s data", shown), params.data.missing,
         text=params.data.files.text, task=params.data.task, categorical=params.data.files.categorical)


def known_rows(arriving: Arriving, old: pd.DataFrame, data: Prepared) -> np.ndarray:
    """Which arriving rows the next round's old data holds already, by content: the features'
    values as prepare types them, whatever the order of rows or columns, the file's name or format."""
    return found_in(row_digests(arriving.features(data.feature_names), data.features),
                    row_digests(old, data.features))


def check_known(shown: str, known: int, rows: int, params: Params) -> None:
    """New data must be new: a row the old data holds would train the next round's options
    and be one of the new test rows they are measured on. Mostly known rows are the wrong
    file, refused; a few are left out of the round's copy (next_round), and counted."""
    if mostly_known(known, rows):
        raise DataError(f"{shown}: {known} of its {rows} rows are in round {params.round}'s data already "
                        f"({round_data(params)}); the next round's new data must be rows no round has had: give "
                        f"the rows that arrived since round {params.round}")


def check_champion(params: Params, root: Path) -> None:
    """The next round starts from the champion: there must be one, in the store the records name."""
    store.check_store_kept(store.project_root(root))
    store.configure(params.tracking.experiment, store.project_root(root))
    name = params.tracking.registered_model
    if promotion.alias_version(name, promotion.CHAMPION) is None:
        raise PipelineError(
            f"model '{name}' has no '{promotion.CHAMPION}' in {store.shown_tracking_uri()}: the next round starts "
            "from the champion; promote a version first (retrainlab promote)"
        )


def _save_npz(path: str, x: np.ndarray, y: np.ndarray) -> None:
    with open(path, "wb") as handle:  # a file object: savez would add .npz to a temporary name
        np.savez(handle, x=x, y=y)


def _update_params(path: Path, round_: int, arrays: bool, initial: Path, incremental: Path, label: str,
                   baseline: str) -> None:
    """Edit params.yaml in place, keeping its comments and order (ruamel's round trip)."""
    yaml = YAML()  # round-trip mode
    tree = yaml.load(path.read_text())
    tree["round"] = round_
    tree.setdefault("baseline", {})["from"] = baseline
    data = tree.setdefault("data", {})
    data["source"] = "arrays" if arrays else "files"
    section = data.setdefault("arrays" if arrays else "files", {})
    section["initial"], section["incremental"] = initial.as_posix(), incremental.as_posix()
    if not arrays:
        section["label"] = label
    write_atomically(path, lambda tmp: yaml.dump(tree, Path(tmp)))


def _dvc_add(root: Path, folder: Path) -> bool:
    """Put the round's files under DVC where the project is a DVC repository."""
    if not (root / ".dvc").is_dir():
        return False
    result = subprocess.run(["dvc", "add", "-q", folder.as_posix()], cwd=root, capture_output=True, text=True)
    if result.returncode != 0:
        said = (result.stderr.strip().splitlines() or ["no reason given"])[-1]
        raise DataError(f"{folder}: dvc add failed ({said}); the files are written, add them yourself")
    return True
