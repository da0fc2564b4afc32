"""Writing outputs so that a reader, or DVC, never sees half a file, with the permissions the
user's umask gives, as git and DVC give theirs."""

from __future__ import annotations

import hashlib
import os
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from retrainlab.base import escape

if TYPE_CHECKING:
    import pandas as pd


def write_atomically(path: Path, write: Callable[[str], Any]) -> None:
    """Call `write(tmp_path)` beside `path`, then rename over it; on failure leave `path` as it was.

    The file gets the mode `path` had, or a new file's mode under the umask (mkstemp's own
    0600 would keep every other user of a shared checkout out)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = stat.S_IMODE(path.stat().st_mode) if path.is_file() else new_file_mode()
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomically(path: Path, text: str) -> None:
    write_atomically(path, lambda tmp: Path(tmp).write_text(text))


def file_md5(path: Path) -> str:
    """The md5 DVC records for a file (DVC 3 hashes the raw bytes)."""
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_csv(path: Path, frame: pd.DataFrame) -> None:
    """A CSV for people and for `dvc plots show`: every text cell escaped (escape.csv_frame)."""
    write_text_atomically(path, escape.csv_frame(frame).to_csv(index=False))


def new_file_mode() -> int:
    """The mode `open(path, "w")` would give a new file: 0666 less the umask."""
    return 0o666 & ~umask()


def umask() -> int:
    """The process's umask, read without changing it where Linux shows it (another thread
    creating a file meanwhile would otherwise get a mask of 0)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
