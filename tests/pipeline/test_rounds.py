"""`retrainlab next-round`: no round's data is lost, and nothing changes until every check passed.

A small project (CSV files, a real `prepare`, a one-epoch baseline registered in a real
SQLite store and made champion), copied for each test; the real CLI in this process.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from retrainlab.base import layout
from retrainlab.data import load_prepared

from ..cli.test_fuzz import GOOD_PARAMS, copy_of, first_steps, rows, run_cli, store_client


def listing(root: Path) -> dict[str, bytes]:
    """Every file the project has, but the MLflow store (read, not changed, by a refusal)."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.name != "mlflow.db" and "mlartifacts" not in p.parts}


def start(root: Path, params: dict) -> None:
    """Round 1 of the data in `root`: prepared, its baseline registered (in the project's own
    store, whatever an earlier test exported) and made champion."""
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    first_steps(root)
    store_client(root).set_registered_model_alias("fuzz", "champion", "1")


@pytest.fixture(scope="module")
def round_one(tmp_path_factory):
    """Round 1 prepared, its baseline registered and made champion."""
    root = tmp_path_factory.mktemp("rounds") / "project"
    root.mkdir()
    rows(120, 0).to_csv(root / "old.csv", index=False)
    rows(60, 1).to_csv(root / "new.csv", index=False)
    start(root, GOOD_PARAMS)
    rows(50, 2).to_csv(root.parent / "feb.csv", index=False)
    rows(40, 3).to_csv(root.parent / "mar.csv", index=False)
    return root


@pytest.fixture
def project(round_one, tmp_path, monkeypatch):
    root = copy_of(round_one, tmp_path, monkeypatch)
    for name in ("feb.csv", "mar.csv"):
        shutil.copy(round_one.parent / name, tmp_path / name)
    return root


def one_line_error(capfd) -> str:
    err = capfd.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("retrainlab: error: "), err[-3000:]
    return lines[0]


def test_a_second_round_before_the_first_is_prepared_is_refused_and_no_rows_are_lost(project, capfd):
    """Before: round 3's old data was round 1's, feb.csv's rows gone, and dvc repro went on."""
    assert run_cli(project, ["next-round", "--incremental", "../feb.csv"]) == 0
    params = yaml.safe_load((project / "params.yaml").read_text())
    assert params["round"] == 2 and params["data"]["files"]["incremental"] == "data/raw/round-2/incremental.csv"
    before = listing(project)
    capfd.readouterr()

    assert run_cli(project, ["next-round", "--incremental", "../mar.csv"]) == 2
    said = one_line_error(capfd)
    assert f"{layout.SUMMARY}: was made from other data than round 2's" in said
    assert "run dvc repro to prepare round 2" in said
    assert listing(project) == before

    # Once round 2 is prepared, round 3 starts from all of it: round 1's rows and feb.csv's.
    assert run_cli(project, ["prepare"]) == 0
    round_two = sum(load_prepared(project).summary.rows.values())
    assert round_two == 120 + 60 + 50
    assert run_cli(project, ["next-round", "--incremental", "../mar.csv"]) == 0
    old = pd.read_parquet(project / "data/raw/round-3/initial.parquet")
    assert len(old) == round_two
    feb = pd.read_csv(project.parent / "feb.csv")
    assert feb["x0"].round(10).isin(old["x0"].round(10)).all()  # every row of round 2's new data is kept


def test_data_prepared_by_an_earlier_retrainlab_is_prepared_again_first(project, capfd):
    summary = project / layout.SUMMARY
    raw = json.loads(summary.read_text())
    raw.pop("inputs")
    summary.write_text(json.dumps(raw))
    before = listing(project)
    capfd.readouterr()
    assert run_cli(project, ["next-round", "--incremental", "../feb.csv"]) == 2
    assert "does not say which data it was made from" in one_line_error(capfd)
    assert listing(project) == before


@pytest.mark.parametrize("arriving, says", [
    (lambda p: rows(50, 2).assign(extra=1).to_csv(p, index=False), r"feb\.csv: extra column 'extra' that round 1's"),
    (lambda p: rows(50, 2).drop(columns="city").to_csv(p, index=False), r"feb\.csv: missing feature column 'city'"),
    (lambda p: rows(50, 2).assign(x0="high").to_csv(p, index=False), r"column 'x0' is text but numeric"),
    (lambda p: rows(50, 2).drop(columns="y").to_csv(p, index=False), r"feb\.csv: no label column 'y'"),
    (lambda p: pd.concat([rows(50, 2), rows(1, 3).assign(y="r")]).to_csv(p, index=False),
     r"feb\.csv: class 'r' has a single row"),
    (lambda p: p.write_text(""), r"feb\.csv: the file is empty"),
    (lambda p: np.savez(p.with_suffix(".npz"), x=np.zeros((4, 3)), y=np.arange(4)),
     r"feb\.npz: unsupported file type '\.npz'; give a \.csv or \.parquet file"),
])
def test_arriving_data_the_next_round_could_not_prepare_is_refused_before_anything_changes(project, capfd, arriving,
                                                                                             says):
    """Before: accepted, and only the later dvc repro refused it."""
    path = project.parent / "feb.csv"
    arriving(path)
    given = "../feb.npz" if "npz" in says else "../feb.csv"
    before = listing(project)
    capfd.readouterr()
    assert run_cli(project, ["next-round", "--incremental", given]) == 2
    assert re.search(says, one_line_error(capfd))
    assert listing(project) == before


def test_a_project_without_a_champion_has_no_next_round(project, capfd):
    store_client(project).delete_registered_model_alias("fuzz", "champion")
    before = listing(project)
    capfd.readouterr()
    assert run_cli(project, ["next-round", "--incremental", "../feb.csv"]) == 2
    said = one_line_error(capfd)
    assert "model 'fuzz' has no 'champion'" in said and "retrainlab promote" in said
    assert listing(project) == before


# --- the arriving rows must be new: looked up by content, not by the file's name ---------------

def write_rows(path: Path, frame: pd.DataFrame) -> None:
    """`frame` written as `path`'s suffix says."""
    if path.suffix == ".parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False)


def new_rows(root: Path) -> pd.DataFrame:
    return pd.read_csv(root / "new.csv")


@pytest.mark.parametrize("given, arriving, known, of", [
    ("new.csv", None, 60, 60),  # round 1's own new file
    ("old.csv", None, 120, 120),
    ("../feb.csv", lambda root: new_rows(root), 60, 60),  # a copy under another name
    ("../feb.csv", lambda root: new_rows(root).sample(frac=1, random_state=0), 60, 60),  # the rows reordered
    ("../feb.csv", lambda root: new_rows(root)[["city", "y", "x1", "x0"]], 60, 60),  # the columns reordered
    ("../feb.parquet", lambda root: new_rows(root), 60, 60),  # another format
    ("../feb.csv", lambda root: pd.concat([new_rows(root).head(30), rows(30, 2)]), 30, 60),  # half: the wrong file
    ("../feb.csv", lambda root: pd.concat([pd.read_csv(root / "old.csv").head(30), new_rows(root).head(10),
                                           rows(20, 2)]), 40, 60),  # rows of both files
])
def test_rows_the_last_round_had_already_are_refused_by_content_before_anything_changes(project, capfd, given,
                                                                                          arriving, known, of):
    """Before: accepted (exit 0), round 2 built with the rows in its old data and in its new
    test rows both: its options measured on rows they trained on."""
    if arriving is not None:
        write_rows(project / given, arriving(project))
    before = listing(project)
    capfd.readouterr()
    assert run_cli(project, ["next-round", "--incremental", given]) == 2
    said = one_line_error(capfd)
    assert f"{given}: {known} of its {of} rows are in round 1's data already (old.csv, new.csv)" in said
    assert "give the rows that arrived since round 1" in said
    assert listing(project) == before


def test_a_header_without_rows_is_refused_before_anything_changes(project, capfd):
    (project.parent / "feb.csv").write_text("x0,x1,city,y\n")
    before = listing(project)
    capfd.readouterr()
    assert run_cli(project, ["next-round", "--incremental", "../feb.csv"]) == 2
    assert "feb.csv: has a header but no data rows" in one_line_error(capfd)
    assert listing(project) == before


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_a_few_known_rows_are_left_out_and_counted_so_no_new_test_row_is_a_training_row(project, capfd, suffix):
    """Before: the 10 rows round 1 had were copied into round 2's new data too."""
    fresh = rows(50, 2)
    given = project.parent / f"feb{suffix}"
    write_rows(given, pd.concat([fresh.head(25), new_rows(project).tail(10), fresh.tail(25)], ignore_index=True))
    capfd.readouterr()
    assert run_cli(project, ["next-round", "--incremental", f"../feb{suffix}"]) == 0
    out = capfd.readouterr().out
    assert f"new data data/raw/round-2/incremental{suffix} (50 rows; 10 of ../feb{suffix}'s rows are in the old data " \
           "already: left out, so that no new test row is a training row)" in out
    written = project / f"data/raw/round-2/incremental{suffix}"
    kept = pd.read_parquet(written) if suffix == ".parquet" else pd.read_csv(written)
    pd.testing.assert_frame_equal(kept, fresh)  # the new rows, as given, in their order

    assert run_cli(project, ["prepare"]) == 0
    data = load_prepared(project)
    columns = ["x0", "x1", "city"]
    trained = pd.concat([data.frame("initial_train"), data.frame("initial_test")])[columns]
    assert len(data.frame("incremental_test")[columns].merge(trained)) == 0


def test_new_rows_are_copied_as_given(project, capfd):
    capfd.readouterr()
    assert run_cli(project, ["next-round", "--incremental", "../feb.csv"]) == 0
    assert "(50 rows), baseline" in capfd.readouterr().out
    assert (project / "data/raw/round-2/incremental.csv").read_bytes() == (project.parent / "feb.csv").read_bytes()


@pytest.fixture(scope="module")
def arrays_round_one(tmp_path_factory):
    """Round 1 of images (.npz), prepared, its baseline the champion."""
    root = tmp_path_factory.mktemp("array-rounds") / "project"
    root.mkdir()
    rng = np.random.default_rng(0)
    for name, n in (("old", 120), ("new", 60)):
        x = rng.random((n, 2, 2))
        np.savez(root / f"{name}.npz", x=x, y=(x[:, 0, 0] > 0.5).astype(int))
    start(root, {**GOOD_PARAMS, "data": {"source": "arrays",
                                         "arrays": {"initial": "old.npz", "incremental": "new.npz"}}})
    return root


@pytest.fixture
def arrays_project(arrays_round_one, tmp_path, monkeypatch):
    return copy_of(arrays_round_one, tmp_path, monkeypatch)


def test_arrays_a_round_had_are_refused_and_a_few_left_out(arrays_project, capfd):
    with np.load(arrays_project / "new.npz") as new:
        x, y = new["x"], new["y"]
    np.savez(arrays_project.parent / "copy.npz", x=x[::-1], y=y[::-1])
    before = listing(arrays_project)
    capfd.readouterr()
    assert run_cli(arrays_project, ["next-round", "--incremental", "../copy.npz"]) == 2
    assert "../copy.npz: 60 of its 60 rows are in round 1's data already (old.npz, new.npz)" in one_line_error(capfd)
    assert listing(arrays_project) == before

    fresh = np.random.default_rng(1).random((30, 2, 2))
    np.savez(arrays_project.parent / "feb.npz", x=np.concatenate([fresh, x[:5]]),
             y=np.concatenate([(fresh[:, 0, 0] > 0.5).astype(int), y[:5]]))
    assert run_cli(arrays_project, ["next-round", "--incremental", "../feb.npz"]) == 0
    assert "(30 rows; 5 of ../feb.npz's rows are in the old data already: left out" in capfd.readouterr().out
    with np.load(arrays_project / "data/raw/round-2/incremental.npz") as kept:
        np.testing.assert_array_equal(kept["x"], fresh)
        assert kept["y"].dtype == y.dtype and len(kept["y"]) == 30
