"""Outputs are written whole, by rename, with the permissions git and DVC would give them."""

import os
import stat
from pathlib import Path

import pytest

from retrainlab.base import files


@pytest.fixture
def umask():
    """Set the process's umask for the test, and put the old one back."""
    old = os.umask(0o022)
    os.umask(old)
    yield lambda mask: os.umask(mask)
    os.umask(old)


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("mask, expected", [(0o022, 0o644), (0o027, 0o640), (0o002, 0o664), (0o077, 0o600)])
def test_a_new_file_gets_the_mode_the_umask_gives(tmp_path, umask, mask, expected):
    """Before: 0600 whatever the umask (mkstemp's own mode)."""
    umask(mask)
    assert files.umask() == mask
    files.write_text_atomically(tmp_path / "out" / "report.md", "text\n")
    assert mode(tmp_path / "out" / "report.md") == expected
    assert (tmp_path / "out" / "report.md").read_text() == "text\n"
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["report.md"]  # no temporary file left


def test_a_file_written_again_keeps_its_mode(tmp_path, umask):
    umask(0o022)
    path = tmp_path / "params.yaml"
    path.write_text("round: 1\n")
    path.chmod(0o660)
    files.write_text_atomically(path, "round: 2\n")
    assert mode(path) == 0o660 and path.read_text() == "round: 2\n"


def test_a_failed_write_leaves_the_file_as_it_was(tmp_path):
    path = tmp_path / "metrics.json"
    path.write_text("{}\n")

    def fail(tmp):
        Path(tmp).write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        files.write_atomically(path, fail)
    assert path.read_text() == "{}\n" and [p.name for p in tmp_path.iterdir()] == ["metrics.json"]
