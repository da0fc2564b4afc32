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

from ..cli.test_fuzz import GOOD_PARAMS, rows, run_cli, store_client


def listing(root: Path) -> dict[str, bytes]:
    """Every file the project has, but the MLflow store (read, not changed, by a refusal)."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.name != "mlflow.db" and "mlartifacts" not in p.parts}


@pytest.fixture(scope="module")
def round_one(tmp_path_factory):
    """Round 1 prepared, its baseline registered and made champion."""
    root = tmp_path_factory.mktemp("rounds") / "project"
    root.mkdir()
    rows(120, 0).to_csv(root / "old.csv", index=False)
    rows(60, 1).to_csv(root / "new.csv", index=False)
    (root / "params.yaml").write_text(yaml.safe_dump(GOOD_PARAMS))
    with pytest.MonkeyPatch.context() as env:
        env.delenv("MLFLOW_TRACKING_URI", raising=False)
        env.delenv("MLFLOW_RUN_ID", raising=False)
        for step in ("prepare", "baseline"):
            assert run_cli(root, [step]) == 0
    store_client(root).set_registered_model_alias("fuzz", "champion", "1")
    rows(50, 2).to_csv(root.parent / "feb.csv", index=False)
    rows(40, 3).to_csv(root.parent / "mar.csv", index=False)
    return root


@pytest.fixture
def project(round_one, tmp_path, monkeypatch):
    root = tmp_path / "project"
    shutil.copytree(round_one, root)
    for name in ("feb.csv", "mar.csv"):
        shutil.copy(round_one.parent / name, tmp_path / name)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
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
