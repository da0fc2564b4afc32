"""`retrainlab check` run for real against a registry champion, from the end-to-end tests
that promote one (the digits demo, the regressor, the text demo): the rows that trained it
refused, its held-out rows said to be, the forecast, labelled and unlabelled rows, the
reports and the MLflow run, and bad input."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pandas as pd
import pytest
import yaml
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


def refused(root: Path, *args: str) -> str:
    """`retrainlab check ARGS` refused: exit 2, one line, before the model is loaded; what it said."""
    result = subprocess.run(["retrainlab", "check", *args], cwd=root, env=tool_env(), capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr[-2000:]
    return result.stderr


def forecast_options(root: Path, options: list[str]) -> str:
    """Set params.yaml's compare.forecast; return the file as it was."""
    text = (root / "params.yaml").read_text()
    params = yaml.safe_load(text)
    params["compare"]["forecast"] = options
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return text


def check_a_classifier_between_rounds(root: Path, label: str, experiment: str, scratch: Path) -> None:
    """Against the champion: the rows that trained it are refused (the default new rows, and
    its old training rows); its held-out new rows are read, said to be what they are, with a
    forecast trained on them; without labels, ATC gives back the old accuracy on the old test
    rows; those rows with every label moved, without a forecast, are urgent; then bad input
    changes nothing."""
    test = pd.read_parquet(root / layout.split_path("initial_test"))
    classes = sorted(test[label].unique())
    moved = {c: classes[(i + 1) % len(classes)] for i, c in enumerate(classes)}

    said = refused(root)  # the prepared incremental rows: the champion trained on three quarters of them
    assert "rows trained the model" in said and "give the new rows with --data PATH" in said
    assert "rows trained the model" in refused(root, "--data", str(layout.split_path("initial_train")))

    held_out = str(layout.split_path("incremental_test"))
    status, report, printed = checked(root, "--data", held_out, user_env=True)  # a quiet console
    assert report["new"]["how"] == MEASURED and report["model"]["spec"].endswith("@champion")
    assert report["data"]["held_out_rows"] == report["data"]["rows"] > 0 and report["data"]["trained_rows"] == 0
    assert "incremental_train" in report["lineage"]["trained"] and "held-out test rows" in printed
    options = [f["option"] for f in report["forecast"]["options"]]
    assert options == ["full-retrain"]  # compare.forecast's options that strategies lists
    assert any(reason.startswith("forecast for full-retrain") for reason in report["reasons"])
    assert report["comparison_cost"]["metric"] == "cpu_seconds" and report["comparison_cost"]["value"] > 0
    assert "## Forecast" in (root / "reports" / "check.md").read_text()
    forecast_gain = report["forecast"]["options"][0]["gain"]["value"]

    test.drop(columns=[label]).to_csv(scratch / "unlabelled.csv", index=False)
    status, report, _ = checked(root, "--data", str(scratch / "unlabelled.csv"))
    assert report["new"]["how"] == ESTIMATED and report["data"]["labelled_rows"] == 0 and not report["forecast"]["options"]
    # ATC's threshold is learned on these very rows: the estimate is their accuracy.
    assert report["new"]["value"] == pytest.approx(report["old_test"]["value"], abs=0.01) and status == 0
    assert "concept drift" in (root / "reports" / "check.md").read_text()

    test.assign(**{label: test[label].map(moved)}).to_csv(scratch / "moved.csv", index=False)
    kept = forecast_options(root, [])
    try:
        status, report, printed = checked(root, "--data", str(scratch / "moved.csv"))
    finally:
        (root / "params.yaml").write_text(kept)
    assert status == 4 and "measurably broken" in printed and report["forecast"]["options"] == []
    runs = check_runs(root, experiment)
    assert len(runs) == 3 and runs[-1].data.tags["retrainlab.verdict"] == report["verdict"]
    assert runs[-1].data.metrics["check.old"] == pytest.approx(report["old_test"]["value"])
    assert runs[0].data.metrics["check.forecast.full-retrain"] == pytest.approx(forecast_gain)
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
        assert said in refused(root, "--data", *args)
    assert "--width" in refused(root, "--width", "0")
    assert (root / REPORT).read_bytes() == before and len(check_runs(root, experiment)) == 3


def check_a_regressor_between_rounds(root: Path, label: str, experiment: str, scratch: Path) -> None:
    """Against the champion, just promoted (it trained on the new rows): the default rows are
    refused; on its held-out new rows, whose labels spread otherwise than the old test set's,
    the error is compared as a relative error and the forecast decides: never urgent (before,
    the RMSE across the two sets said "measurably broken"); without labels, no estimate."""
    assert "rows trained the model" in refused(root)
    held_out = str(layout.split_path("incremental_test"))
    status, report, printed = checked(root, "--data", held_out)
    assert report["figure"] == "relative_error" and report["new"]["how"] == MEASURED and status in (0, 3)
    assert report["rmse"]["old_test"]["value"] > 0 and report["rmse"]["new"]["value"] > 0
    assert [f["option"] for f in report["forecast"]["options"]] == ["full-retrain", "incremental"]
    assert "RMSE on the new rows, in the label's units" in (root / "reports" / "check.md").read_text()
    status, report, printed = checked(root, "--data", held_out, "--no-labels")
    assert report["new"] == {"how": NOT_ESTIMATED} and report["loss_on_traffic"] is None
    assert "no label-free estimate" in printed and not report["forecast"]["options"]
    assert len(check_runs(root, experiment)) == 2


def check_a_text_model_between_rounds(root: Path, experiment: str) -> None:
    """Against the text champion, on its held-out new rows (reviews after tweets): measured
    with labels and forecast, estimated without; both see the new vocabulary."""
    from retrainlab.base.kinds import NEW_VOCABULARY

    held_out = str(layout.split_path("incremental_test"))
    for args, how in (((), MEASURED), (("--no-labels",), ESTIMATED)):
        _, report, _ = checked(root, "--data", held_out, *args)
        assert report["new"]["how"] == how and 0 <= report["new"]["value"] <= 1
        assert NEW_VOCABULARY in [c["kind"] for c in report["changes"]], report["changes"]
        assert report["diagnostics"]["text"][0]["oov_tokens"] >= 0.2
        assert bool(report["forecast"]["options"]) == (how == MEASURED)
    assert len(check_runs(root, experiment)) == 2
