"""Round after round: the champion of round N is the baseline of round N+1.

`next_round` does the bookkeeping a user would otherwise do by hand when new data arrives:
round N's data, old and new (what prepare made of it, train and test), becomes round N+1's
old data; the arriving file becomes the new data; `baseline.from` points at the
registry's champion; `round` counts on. The files go to `data/raw/round-<N+1>/` and, in a
DVC repository, under DVC (`dvc add`), so every round can be checked out and run again.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from retrainlab import layout
from retrainlab.config import load_params
from retrainlab.data import load_prepared, read_arrays, read_table
from retrainlab.errors import DataError
from retrainlab.files import write_atomically

CHAMPION_URI = "models:/{name}@champion"
RAW_DIR = Path("data") / "raw"


def next_round(params_path: Path, incoming: Path, root: Path = Path(".")) -> dict[str, Any]:
    """Write round N+1's data and params; return what changed, for the message."""
    params = load_params(root / params_path)
    data = load_prepared(root)
    arrays = "input_shape" in data.summary
    shown = str(incoming)
    incoming = (root / incoming).resolve()
    if arrays:
        read_arrays(incoming, shown, "--incremental")  # checked before anything is written
    else:
        read_table(incoming, shown, "--incremental")
    round_ = params.round + 1
    folder = RAW_DIR / f"round-{round_}"
    if (root / folder).exists():
        raise DataError(f"{folder}: exists already; round {round_} was started before (git checkout to redo it)")
    old = pd.concat([data.frame(split) for split in layout.SPLITS], ignore_index=True)
    initial = folder / ("initial.npz" if arrays else "initial.parquet")
    incremental = folder / ("incremental" + incoming.suffix.lower())
    (root / folder).mkdir(parents=True)
    try:
        if arrays:
            x = old[data.feature_names].to_numpy().reshape(len(old), *data.summary["input_shape"])
            write_atomically(root / initial, lambda tmp: _save_npz(tmp, x, old[data.label].to_numpy()))
        else:
            write_atomically(root / initial, lambda tmp: old.to_parquet(tmp, index=False))
        shutil.copyfile(incoming, root / incremental)
        _update_params(root / params_path, round_, arrays, initial, incremental, data.label,
                       CHAMPION_URI.format(name=params.tracking.registered_model))
    except BaseException:
        shutil.rmtree(root / folder, ignore_errors=True)
        raise
    tracked = _dvc_add(root, folder)
    return {"round": round_, "initial": initial, "incremental": incremental, "rows_old": len(old), "dvc": tracked,
            "baseline": CHAMPION_URI.format(name=params.tracking.registered_model)}


def _save_npz(path: str, x: np.ndarray, y: np.ndarray) -> None:
    with open(path, "wb") as handle:  # a file object: savez would add .npz to a temporary name
        np.savez(handle, x=x, y=y)


def _update_params(path: Path, round_: int, arrays: bool, initial: Path, incremental: Path, label: str,
                   baseline: str) -> None:
    """Edit params.yaml in place, keeping its comments and order (ruamel's round trip)."""
    from ruamel.yaml import YAML

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
