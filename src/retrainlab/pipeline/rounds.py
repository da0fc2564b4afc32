"""Round after round: the champion of round N is the baseline of round N+1.

`next_round` does the bookkeeping a user would otherwise do by hand when new data arrives:
round N's data, old and new (what prepare made of it, train and test), becomes round N+1's
old data; the arriving file becomes the new data; `baseline.from` points at the
registry's champion; `round` counts on. The files go to `data/raw/round-<N+1>/` and, in a
DVC repository, under DVC (`dvc add`), so every round can be checked out and run again.

Everything that can be checked is checked before anything is written: that data/prepared/
holds round N's data as params.yaml names it (else round N+1 would be built on an older
round, and round N's new rows would be lost), that the arriving file has the old data's
columns and labels a classifier can learn, and that there is a champion to start from.
"""

from __future__ import annotations

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
    check_incoming(incoming, shown, old, data, params)
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
        shutil.copyfile(incoming, root / incremental)
        _update_params(root / params_path, round_, arrays, initial, incremental, data.label, baseline)
    except BaseException:
        shutil.rmtree(root / folder, ignore_errors=True)
        raise
    tracked = _dvc_add(root, folder)
    return {"round": round_, "initial": initial, "incremental": incremental, "rows_old": len(old), "dvc": tracked,
            "baseline": baseline}


def check_prepared(params: Params, data: Prepared, root: Path) -> None:
    """data/prepared/ must be what prepare makes of the data params.yaml names now: round N's
    old and new data. After one next-round and no `dvc repro`, it still holds round N-1's."""
    made_from = data.summary.inputs
    now = inputs.identify(params.data, root)
    if made_from == now:
        return
    named = ", ".join(f["path"] for f in now["files"].values()) or f"the {params.data.source} source"
    if made_from is None:
        why = "does not say which data it was made from (prepared by an earlier retrainlab)"
    else:
        why = f"was made from other data than round {params.round}'s as params.yaml names it ({named})"
    raise PipelineError(f"{layout.SUMMARY}: {why}; run dvc repro to prepare round {params.round}, then start "
                        "the next round")


def check_incoming(path: Path, shown: str, old: pd.DataFrame, data: Prepared, params: Params) -> None:
    """The arriving data as prepare will read it next to the old data: the same columns of
    the same kinds (or, for arrays, rows of the same shape), and labels it can learn."""
    setting = "--incremental"
    if data.summary.input_shape is not None:
        x, _ = read_arrays(path, shown, setting)
        shape = data.summary.input_shape
        if x.shape[1:] != shape:
            raise DataError(f"{shown}: rows have shape {x.shape[1:]} but {shape} in the old data; make them agree")
        return
    frame, _ = read_table(path, shown, setting)
    features = params.data.files.features or None
    tidy(old, frame, data.label, features, (f"round {params.round}'s data", shown), params.data.missing,
         text=params.data.files.text, task=params.data.task)


def check_champion(params: Params, root: Path) -> None:
    """The next round starts from the champion: there must be one."""
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
