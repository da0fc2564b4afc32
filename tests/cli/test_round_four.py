"""Hostile round four: a new user's bad and odd input on the newest surfaces (text columns,
labels read from text, numbers written other ways, `retrainlab check`, the served model),
each scenario run through the real thing and its outcome checked: a one-line refusal naming
the column and the value, or the data read as prepare reads it and said so. Before this
round, what failed here failed silently: a wrong answer, not an error.

docs/RELIABILITY.md lists the scenarios; replay them with
`.venv/bin/pytest tests/cli/test_round_four.py`.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from retrainlab.base import layout

from .test_fuzz import run_cli, small_project

PARAMS = {
    "seeds": [0],
    "checkpoint_seconds": 0,
    "data": {"source": "files", "files": {"initial": "old.csv", "incremental": "new.csv", "label": "y",
                                           "text": ["note"]}},
    "model": {"hidden_units": [8], "epochs": 2, "learning_rate": 0.01, "text_tokens": 50, "text_length": 8},
    "strategies": {"incremental": {"epochs": 1}, "fine-tune": {"epochs": 1}},
    "tracking": {"experiment": "round4", "registered_model": "round4", "system_metrics": False},
}
WORDS = np.array(["sunny day", "grey rain", "cold wind", "warm sun", "dark cloud", "bright sky"])


def rows(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"x0": rng.normal(size=n), "city": rng.choice(["a", "b"], n),
                          "note": rng.choice(WORDS, n)})
    frame["y"] = np.where(frame["x0"] + (frame["city"] == "a") > 0.5, "p", "q")
    return frame


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A small project with a number, a category and a text column, after `prepare` and a
    two-epoch baseline registered in its embedded store."""
    return small_project(tmp_path_factory.mktemp("round4") / "project", rows, PARAMS)


def ran(root: Path, argv: list[str], capfd) -> tuple[int, str, str]:
    capfd.readouterr()
    status = run_cli(root, argv)
    out, err = capfd.readouterr()
    return status, out, err


def refused_in_one_line(status: int, err: str, pattern: str) -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    assert status == 2 and len(lines) == 1, err[-3000:]
    assert re.search(pattern, lines[0]), lines[0]
    assert "Traceback" not in err


# --- prepare: values read from the files -------------------------------------------------------


@dataclass(frozen=True)
class Prepared:
    """Old and new files (frames, or a writer of the file), params changes, and what prepare must do:
    `said` a pattern of its one-line refusal, or `holds` a check of summary.json."""

    old: pd.DataFrame | Callable[[Path], None]
    new: pd.DataFrame | Callable[[Path], None]
    files: dict | None = None
    said: str | None = None
    holds: Callable[[dict], bool] | None = None
    task: str | None = None


def labelled(frame: pd.DataFrame, labels) -> pd.DataFrame:
    return frame.assign(y=(list(labels) * len(frame))[: len(frame)])


def written(frame: pd.DataFrame, **to_csv) -> Callable[[Path], None]:
    return lambda path: path.write_text(frame.to_csv(index=False, **to_csv))


def quantity(n: int, seed: int, scale: float = 1.0, offset: float = 0.0) -> pd.DataFrame:
    frame = rows(n, seed)
    return frame.assign(y=offset + scale * (frame["x0"] * 3 + np.random.default_rng(seed).normal(size=n)))


PREPARE = {
    "labels with a trailing space": Prepared(
        rows(120, 0), labelled(rows(60, 1), ["p ", "q "]),
        holds=lambda s: s["new_classes"] == [] and "merged" in s["label_cleaning"]),
    "labels with spaces and tabs around": Prepared(
        rows(120, 0), labelled(rows(60, 1), [" p\t", "\tq "]),
        holds=lambda s: s["new_classes"] == [] and s["classes"]["incremental_train"] == ["p", "q"]),
    "0/1 labels, then '1.0', '0' and 'yes'": Prepared(
        labelled(rows(120, 0), [0, 1]), labelled(rows(60, 1), ["1.0", "0", "yes"]),
        holds=lambda s: s["new_classes"] == ["yes"]),
    "'1.0' and '1' among text labels of both files": Prepared(
        labelled(rows(120, 0), ["1", "2", "cat"]), labelled(rows(60, 1), ["1.0", "2.00", "cat"]),
        holds=lambda s: s["new_classes"] == [] and s["classes"]["incremental_train"] == ["1", "2", "cat"]),
    "labels that are only spaces": Prepared(
        rows(120, 0), labelled(rows(60, 1), ["p", "q", "   "]),
        holds=lambda s: s["cleaning"]["incremental"]["dropped_unlabelled"] == 20
        and "label_cleaning" not in s),
    "a ';' file with decimal commas": Prepared(
        written(rows(120, 0), sep=";", decimal=","), rows(60, 1),
        holds=lambda s: s["files"]["old.csv"]["decimal_comma"] == ["x0"]
        and {f["name"]: f["kind"] for f in s["features"]}["x0"] == "numeric"),
    "a tab file with decimal commas in the new data only": Prepared(
        rows(120, 0), written(rows(60, 1), sep="\t", decimal=","),
        holds=lambda s: s["files"]["new.csv"] == {"format": "csv", "delimiter": "\t", "decimal_comma": ["x0"]}),
    "a regression label written with decimal commas": Prepared(
        written(quantity(120, 0), sep=";", decimal=","), written(quantity(60, 1), sep=";", decimal=","),
        task="regression", holds=lambda s: s["task"] == "regression" and "y" in s["files"]["old.csv"]["decimal_comma"]),
    "commas that may separate thousands": Prepared(
        rows(120, 0).assign(x0=["1,250", "12,500", "3,000"] * 40).pipe(lambda f: written(f, sep=";")), rows(60, 1),
        said=r"^retrainlab: error: old.csv: column 'x0' holds '1,250': a decimal comma or a thousands separator\?"),
    "an empty text column listed in data.files.text": Prepared(
        rows(120, 0).assign(note=""), rows(60, 1).assign(note=""),
        said=r"^retrainlab: error: old.csv: column 'note' is empty in every row; fill it"),
    "an empty text column left to detection": Prepared(
        rows(120, 0).assign(note=""), rows(60, 1).assign(note=""), files={"text": None},
        said=r"^retrainlab: error: old.csv: column 'note' is empty in every row; fill it"),
    "texts of only spaces in the new file": Prepared(
        rows(120, 0), rows(60, 1).assign(note="  "),
        said=r"^retrainlab: error: new.csv: no rows left after dropping 0 without a label and 60 with missing.*: "
             r"column 'note' is empty in 60 rows$"),
    "every number of the new file beyond float32": Prepared(
        rows(120, 0), rows(60, 1).assign(x0=1e39),
        said=r"^retrainlab: error: new.csv: no rows left .*: column 'x0' holds 1e\+39 \(beyond float32's range"),
    "a regression label near 1e31": Prepared(
        quantity(120, 0, 1e30, 1e31), quantity(60, 1, 1e30, 1e31), task="regression",
        said=r"^retrainlab: error: old.csv: label 'y' lies up to [\d.e+]+ from its mean; a squared error that large "
             r"overflows float32.*divide the label by 1e\+\d+"),
    "a regression label near 1e12, which float32 trains on": Prepared(
        quantity(120, 0, 1e10, 1e12), quantity(60, 1, 1e10, 1e12), task="regression",
        holds=lambda s: s["task"] == "regression"),
}


@pytest.mark.parametrize("name", PREPARE)
def test_prepare_reads_each_value_by_one_rule(name, tmp_path, monkeypatch, capfd):
    case = PREPARE[name]
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    for file, content in (("old.csv", case.old), ("new.csv", case.new)):
        content(tmp_path / file) if callable(content) else content.to_csv(tmp_path / file, index=False)
    tree = json.loads(json.dumps(PARAMS))
    tree["data"]["files"] |= case.files or {}
    if case.task:
        tree["data"]["task"] = case.task
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(tree))
    status, _, err = ran(tmp_path, ["prepare"], capfd)
    if case.said:
        refused_in_one_line(status, err, case.said)
        assert not (tmp_path / layout.PREPARED_DIR).exists()
    else:
        assert status == 0, err[-3000:]
        summary = json.loads((tmp_path / layout.SUMMARY).read_text())
        assert case.holds(summary), summary


# --- check: the rows it scores and the labels it reads -----------------------------------------


def check_of(project: Path, tmp_path: Path, week: pd.DataFrame | Callable[[Path], None], capfd,
             *extra: str) -> tuple[int, str, str, dict | None]:
    """`retrainlab check --data week.csv --model models:/round4/1` in a copy of the project."""
    root = tmp_path / "project"
    shutil.copytree(project, root)
    week(root / "week.csv") if callable(week) else week.to_csv(root / "week.csv", index=False)
    with pytest.MonkeyPatch.context() as env:  # the project's embedded store, whatever an earlier test exported
        env.delenv("MLFLOW_TRACKING_URI", raising=False)
        env.delenv("MLFLOW_RUN_ID", raising=False)
        status, out, err = ran(root, ["check", "--data", "week.csv", "--model", "models:/round4/1", *extra], capfd)
    report = root / layout.REPORTS_DIR / "check.json"
    return status, out, err, json.loads(report.read_text()) if report.exists() else None


CHECK_REFUSED = {
    # Before: 120 rows scored, `dropped_rows: 0`.
    "every text empty": (rows(40, 5).assign(note=""), r"week.csv: no row is usable as training reads rows: column "
                                                      r"'note' is empty in 40 rows"),
    # Before: "the model predicts values that are not finite; it must not be served (retrainlab rollback ...)".
    "every x0 1e39": (rows(40, 5).assign(x0=1e39), r"week.csv: no row is usable as training reads rows: column 'x0' "
                                                   r"holds 1e\+39 \(beyond float32's range, 3\.4e\+38\) in 40 rows"),
    "every x0 'inf'": (rows(40, 5).assign(x0="inf"), r"column 'x0' holds inf \(not finite\) in 40 rows"),
    "text in a number column": (rows(40, 5).assign(x0="12 kg"), r"column 'x0' holds '12 kg' where the model reads "
                                                                r"numbers"),
    "every category missing": (rows(40, 5).assign(city=None), r"column 'city' is empty in 40 rows"),
}


@pytest.mark.parametrize("name", CHECK_REFUSED)
def test_the_check_refuses_rows_training_would_not_use_naming_the_column(name, project, tmp_path, capfd):
    week, said = CHECK_REFUSED[name]
    status, _, err, report = check_of(project, tmp_path, week, capfd)
    refused_in_one_line(status, err, said)
    assert "rollback" not in err and report is None


def test_the_check_leaves_out_the_rows_training_drops_and_counts_them(project, tmp_path, capfd):
    week = rows(60, 6)
    week.loc[:9, "note"] = ""
    week.loc[10:14, "x0"] = 1e39
    status, _, err, report = check_of(project, tmp_path, week, capfd, "--no-labels")
    assert status in (0, 3, 4), err[-3000:]
    assert report["data"]["rows"] == 45 and report["data"]["dropped_rows"] == 15


def test_the_check_reads_labels_as_prepare_does(project, tmp_path, capfd):
    """Before: 'p ' and ' q' were classes the model has no output for: an urgent verdict."""
    week = labelled(rows(60, 7), ["p ", " q"])
    week["y"] = np.where(week["x0"] + (week["city"] == "a") > 0.5, "p ", " q")
    status, _, err, report = check_of(project, tmp_path, week, capfd)
    assert status in (0, 3, 5), err[-3000:]
    assert report["data"]["labelled_rows"] == 60
    assert not any("no output for" in reason for reason in report["reasons"])


def test_one_labelled_row_gives_too_few_labels_and_an_honest_count(project, tmp_path, capfd):
    """Before: accuracy 1, "labelled new rows needed: 1", "AUC nan" as evidence, and "no action"."""
    week = rows(30, 8)
    week.loc[1:, "y"] = None
    status, out, err, report = check_of(project, tmp_path, week, capfd)
    assert status == 5 and report["verdict"] == "too few labels", out + err[-3000:]
    assert report["labels_needed"]["rows"] == 1537  # at p = 0.5, which the one row's interval holds
    assert not any("nan" in c["evidence"].lower() for c in report["changes"])
    assert "check: too few labels (exit status 5)" in out


def test_a_new_category_and_a_decimal_comma_file_are_read_for_the_check(project, tmp_path, capfd):
    week = rows(40, 9)
    week.loc[:4, "city"] = "c"  # a category the model never saw: read, scored, not refused
    status, _, err, report = check_of(project, tmp_path, written(week, sep=";", decimal=","), capfd, "--no-labels")
    assert status in (0, 3, 4), err[-3000:]
    assert report["data"]["rows"] == 40


# --- the served model ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def served_model(project):
    """The registered baseline as `mlflow models serve` loads it, and its input schema."""
    import mlflow.pyfunc

    with pytest.MonkeyPatch.context() as env:
        env.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{project / 'mlflow.db'}")
        env.setenv("MLFLOW_REGISTRY_URI", f"sqlite:///{project / 'mlflow.db'}")
        model = mlflow.pyfunc.load_model("models:/round4/1")
    return model, model.metadata.get_input_schema()


def answer(served_model, body) -> tuple[int, dict]:
    """A request as the scoring server handles it (its own `invocations`): status and JSON body."""
    from mlflow.exceptions import MlflowException
    from mlflow.pyfunc import scoring_server

    model, schema = served_model
    try:
        response = scoring_server.invocations(json.dumps(body), "application/json", model, schema)
    except MlflowException as error:
        return error.get_http_status_code(), json.loads(error.serialize_as_json())
    return response.status, json.loads(response.response)


COLUMNS = ["x0", "city", "note"]
SERVED = {
    "NaN in a number column": ([[float("nan"), "a", "sunny day"]], 400, "column 'x0' is empty or NaN in 1 row"),
    "Infinity": ([[float("inf"), "a", "sunny day"]], 400, "column 'x0' holds inf (not finite) in 1 row"),
    "-Infinity": ([[float("-inf"), "a", "sunny day"]], 400, "column 'x0' holds -inf (not finite)"),
    "1e308": ([[1e308, "a", "sunny day"]], 400, "column 'x0' holds 1e+308 (beyond float32's range"),
    "null in a category column": ([[0.1, None, "sunny day"]], 400, "column 'city' is empty in 1 row"),
    "null in a text column": ([[0.1, "a", None]], 400, "column 'note' is empty in 1 row"),
    "a text of only spaces": ([[0.1, "a", "   "]], 400, "column 'note' is empty in 1 row"),
    "one bad row among good ones": ([[0.1, "a", "sunny day"], [float("nan"), "b", "grey rain"]], 400,
                                    "column 'x0' is empty or NaN in 1 row"),
    "no rows": ([], 200, None),
    "a category the model never saw": ([[0.1, "zz", "sunny day"]], 200, None),
    "good rows": ([[0.1, "a", "sunny day"], [-1.0, "b", "grey rain"]], 200, None),
}


@pytest.mark.parametrize("name", SERVED)
def test_the_served_model_answers_only_rows_training_would_use(name, served_model):
    """Before: NaN, Infinity and 1e308 got a class; a null, TensorFlow's stack trace; no rows, an error."""
    data, status, said = SERVED[name]
    got, body = answer(served_model, {"dataframe_split": {"columns": COLUMNS, "data": data}})
    assert got == status, body
    if said:
        assert body["error_code"] == "INVALID_PARAMETER_VALUE" and said in body["message"], body
        assert "stack_trace" not in body
    else:
        assert len(body["predictions"]) == len(data) and all(p["y"] in ("p", "q") for p in body["predictions"])


# --- the check's forecast, and values the model never saw --------------------------------------


def test_a_forecast_on_rows_that_bring_a_hostile_new_class_is_urgent_and_escaped(project, tmp_path, capfd):
    """A class the model has no output for, named as markup: urgent, and check.md shows it as text."""
    week = rows(60, 10)
    week.loc[:29, "y"] = "<script>alert(1)</script>"
    status, out, err, report = check_of(project, tmp_path, week, capfd)
    assert status == 4 and report["verdict"] == "urgent", out + err[-3000:]
    assert [f["option"] for f in report["forecast"]["options"]] == ["incremental"]  # those strategies lists
    page = (tmp_path / "project" / layout.REPORTS_DIR / "check.md").read_text()
    assert "<script>" not in page


def test_too_few_labelled_rows_for_a_forecast_say_so_and_the_verdict_is_not_no_action(project, tmp_path, capfd):
    week = rows(40, 11)
    week.loc[5:, "y"] = None  # 5 labelled rows: fewer than a forecast splits (forecast.MIN_ROWS)
    status, out, err, report = check_of(project, tmp_path, week, capfd)
    assert report["forecast"]["options"] == [] and "labelled" in report["forecast"]["said"], report["forecast"]
    assert status != 0 and report["verdict"] != "no action", out + err[-3000:]


def test_the_docs_list_every_scenario_of_the_round():
    """docs/RELIABILITY.md's round-four table names each scenario above."""
    from ..conftest import PROJECT

    text = (PROJECT / "docs" / "RELIABILITY.md").read_text()
    names = ([f"prepare: {n}" for n in PREPARE] + [f"check --data: {n}" for n in CHECK_REFUSED]
             + [f"served: {n}" for n in SERVED])
    missing = [n for n in names if f"| {n.replace('|', chr(92) + '|')} |" not in text]
    assert not missing, missing
