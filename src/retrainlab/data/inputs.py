"""What the prepared data is made from: the data params and, for the user's files, each file's md5.

The `resolve-data` stage writes it to data/inputs.json at every `dvc repro`, and the prepare
stage depends on that file: a changed input is noticed whichever source params.yaml chooses
and wherever its files lie (dependencies on the file paths would follow one source only).
`prepare` writes the same into summary.json, so a later step can tell whether the prepared
data is what params.yaml names now (`retrainlab next-round` refuses to build on data that
was never prepared).
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

from retrainlab.base import layout
from retrainlab.base.errors import DataError
from retrainlab.base.files import file_md5, write_text_atomically
from retrainlab.config import DataParams
from retrainlab.data.sources import check_file


def files_of(data: DataParams) -> dict[str, str]:
    """The files the source reads, by the parameter that names them (none for a built-in source)."""
    if data.source not in ("files", "arrays"):
        return {}
    spec = getattr(data, data.source)
    return {f"data.{data.source}.initial": spec.initial, f"data.{data.source}.incremental": spec.incremental}


def identify(data: DataParams, root: Path) -> dict[str, Any]:
    """The data params and each input file's path and md5. The old and the new data must be
    two files: one file given twice, by any path, is a slip, refused here."""
    files, paths = {}, []
    for setting, given in files_of(data).items():
        paths.append((root / given).resolve())
        check_file(paths[-1], given, setting, data.source)
        files[setting] = {"path": given, "md5": file_md5(paths[-1])}
    if files:
        (old_setting, old), (new_setting, new) = files.items()
        if os.path.samefile(*paths):
            raise DataError(f"{new['path']}: is the same file as {old['path']} ({old_setting}); "
                            f"set {new_setting} to the new data")
    return {"source": data.source, "params": dataclasses.asdict(data), "files": files}


def write(data: DataParams, root: Path) -> dict[str, Any]:
    """The resolve-data stage's output: unchanged unless the params or an input's content are."""
    found = identify(data, root)
    write_text_atomically(root / layout.DATA_INPUTS, json.dumps(found, indent=2, sort_keys=True) + "\n")
    return found
