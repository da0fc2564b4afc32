"""`retrainlab check` run for real against a registry champion, from the end-to-end tests
that promote one (the digits demo, the regressor): labelled and unlabelled rows, every exit
status, the reports and the MLflow run, and bad input."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from retrainlab.base import layout
from retrainlab.decision.check import ESTIMATED, EXIT_STATUS, MEASURED, NOT_ESTIMATED

from ..conftest import tool_env

REPORT = Path("reports") / "check.json"


def checked(root: Path, *args: str, user_env: bool = False) -> tuple[int, dict, str]:
    """`retrainlab check ARGS`: its exit status, check.json, and what it printed. `user_env`:
    without the tests' TF_CPP_MIN_LOG_LEVEL, as a user has it, and then nothing on stderr."""
    env = tool_env()
    if user_env:
        env.pop("TF_CPP_MIN_LOG_LEVEL")
    result = subprocess.run(["retrainlab", "check", *args], cwd=root, env=env, capture_output=True,
                            text=True, timeout=600)
    assert not user_env or result.stderr == "", result.stderr[-2000:]
    assert result.returncode in EXIT_STATUS.values(), f"{args}:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
    report = json.loads((root / REPORT).read_text())
    assert result.returncode == report["exit_status"] == EXIT_STATUS[report["verdict"]]
    assert f"check: {report['verdict']} (exit status {result.returncode})" in result.stdout
    return result.returncode, report, result.stdout


def check_runs(root: Path, experiment: str) -> list:
    client = MlflowClient(f"sqlite:///{root / 'mlflow.db'}")
    experiment_id = client.get_experiment_by_name(experiment).experiment_id
    return client.search_runs([experiment_id], filter_string="tags.`retrainlab.role` = 'check'",
                              order_by=["attributes.start_time ASC"])


def check_a_classifier_between_rounds(root: Path, label: str, experiment: str, scratch: Path) -> None:
    """Against the champion: rows it trained on (no action), its old test rows with a tenth
    of the labels moved (compare) or all of them (urgent), the same rows without labels (ATC
    gives back the old accuracy), the default new rows; then bad input changes nothing."""
    test = pd.read_parquet(root / layout.split_path("initial_test"))
    classes = sorted(test[label].unique())
    moved = {c: classes[(i + 1) % len(classes)] for i, c in enumerate(classes)}

    status, report, _ = checked(root, "--data", str(layout.split_path("initial_train")))
    assert status == 0 and report["new"]["how"] == MEASURED and report["model"]["spec"].endswith("@champion")
    assert report["new"]["value"] >= report["old_test"]["value"] - 0.02

    tenth = test.copy()
    rows = np.random.default_rng(0).choice(len(test), len(test) // 10, replace=False)
    tenth.loc[rows, label] = tenth.loc[rows, label].map(moved)
    tenth.to_csv(scratch / "tenth.csv", index=False)
    status, report, _ = checked(root, "--data", str(scratch / "tenth.csv"))
    assert status == 3, report["reasons"]
    assert 0.01 < report["loss_on_traffic"]["value"] and report["loss_on_traffic"]["low"] < 0.05

    test.assign(**{label: test[label].map(moved)}).to_csv(scratch / "moved.csv", index=False)
    status, report, printed = checked(root, "--data", str(scratch / "moved.csv"))
    assert status == 4 and "measurably broken" in printed

    test.drop(columns=[label]).to_csv(scratch / "unlabelled.csv", index=False)
    status, report, _ = checked(root, "--data", str(scratch / "unlabelled.csv"))
    assert report["new"]["how"] == ESTIMATED and report["data"]["labelled_rows"] == 0
    # ATC's threshold is learned on these very rows: the estimate is their accuracy.
    assert report["new"]["value"] == pytest.approx(report["old_test"]["value"], abs=0.01) and status == 0
    assert "concept drift" in (root / "reports" / "check.md").read_text()

    status, report, _ = checked(root, user_env=True)  # the prepared incremental rows, labelled; a quiet console
    assert report["data"]["source"].startswith(str(layout.PREPARED_DIR)) and report["new"]["how"] == MEASURED
    assert report["comparison_cost"]["metric"] == "cpu_seconds" and report["comparison_cost"]["value"] > 0
    runs = check_runs(root, experiment)
    assert len(runs) == 5 and runs[-1].data.tags["retrainlab.verdict"] == report["verdict"]
    assert runs[-1].data.metrics["check.old"] == pytest.approx(report["old_test"]["value"])
    assert sorted(a.path for a in MlflowClient(f"sqlite:///{root / 'mlflow.db'}").list_artifacts(
        runs[-1].info.run_id, "check")) == ["check/check.json", "check/check.md"]

    # Bad input: one line naming what is wrong, exit 2, the last report as it was, no run.
    before = (root / REPORT).read_bytes()
    test.drop(columns=[test.columns[0]]).to_csv(scratch / "short.csv", index=False)
    bad = pd.DataFrame({c: ["seven"] * 3 for c in test.columns})
    bad.to_csv(scratch / "words.csv", index=False)
    (scratch / "empty.csv").write_text("")
    for args, said in (((str(scratch / "short.csv"),), f"no column '{test.columns[0]}'"),
                       ((str(scratch / "words.csv"),), "where the model reads numbers"),
                       ((str(scratch / "empty.csv"),), "the file is empty"),
                       ((str(scratch / "missing.csv"),), "file not found")):
        result = subprocess.run(["retrainlab", "check", "--data", *args], cwd=root, env=tool_env(),
                                capture_output=True, text=True, timeout=300)
        assert result.returncode == 2 and said in result.stderr, result.stderr[-2000:]
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    result = subprocess.run(["retrainlab", "check", "--width", "0"], cwd=root, env=tool_env(), capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 2 and "--width" in result.stderr
    assert (root / REPORT).read_bytes() == before and len(check_runs(root, experiment)) == 5


def check_a_regressor_between_rounds(root: Path, label: str, experiment: str, scratch: Path) -> None:
    """Against the champion: its old test rows, labelled (no action: the loss is nil) and
    without labels (no estimate; the inputs did not move)."""
    status, report, _ = checked(root, "--data", str(layout.split_path("initial_test")))
    assert status == 0 and report["figure"] == "rmse" and report["new"]["how"] == MEASURED
    assert report["new"]["value"] == pytest.approx(report["old_test"]["value"])
    status, report, printed = checked(root, "--data", str(layout.split_path("initial_test")), "--no-labels")
    assert status == 0 and report["new"] == {"how": NOT_ESTIMATED} and report["loss_on_traffic"] is None
    assert "no label-free estimate" in printed
    assert len(check_runs(root, experiment)) == 2


def check_a_text_model_between_rounds(root: Path, experiment: str) -> None:
    """Against the text champion, on the prepared new rows (reviews after tweets): measured
    with labels, estimated without; both see the new vocabulary."""
    from retrainlab.base.kinds import NEW_VOCABULARY

    for args, how in (((), MEASURED), (("--no-labels",), ESTIMATED)):
        _, report, _ = checked(root, *args)
        assert report["new"]["how"] == how and 0 <= report["new"]["value"] <= 1
        assert NEW_VOCABULARY in [c["kind"] for c in report["changes"]], report["changes"]
        assert report["diagnostics"]["text"][0]["oov_tokens"] >= 0.2
    assert len(check_runs(root, experiment)) == 2
