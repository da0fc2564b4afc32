"""The real pipeline, end to end: `dvc repro` in a fresh git repository of the project.

Each test copies the project's files (what git tracks or would track) to a temporary
directory, makes it a git repository, shrinks params.yaml, and runs the real DVC, MLflow
and Keras with an SQLite store of its own.
"""

import json
import shutil
import subprocess
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import yaml
from mlflow.tracking import MlflowClient

from retrainlab import layout

from .conftest import PROJECT, tool_env

pytestmark = pytest.mark.integration
STAGES = list(layout.STEPS)


def make_project(tmp_path: Path, **data_changes) -> Path:
    files = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=PROJECT, capture_output=True, check=True,
    ).stdout.decode().split("\0")
    root = tmp_path / "project"
    for name in filter(None, files):
        source = PROJECT / name
        if source.is_file() and not name.startswith(("metrics/", "plots/")) and name != "dvc.lock":
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, root / name)
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["data"].update(data_changes)
    params["seeds"] = [0, 1]
    params["model"].update(hidden_units=[16, 8], epochs=4, learning_rate=0.01)
    params["incremental"].update(epochs=2, learning_rate=0.01)
    params["fine_tune"].update(epochs=2, learning_rate=0.01)
    params["tracking"]["system_metrics"] = False
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "project under test")
    return root


def git(root, *args):
    identity = ["-c", "user.name=retrainlab tests", "-c", "user.email=tests@retrainlab.invalid"]
    subprocess.run(["git", *identity, *args], cwd=root, check=True)


def run(root: Path, *command: str, **env: str) -> subprocess.CompletedProcess:
    result = subprocess.run(command, cwd=root, env=tool_env(**env), capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, f"{command} failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    return result


def check_pipeline(root: Path, label: str, features: list[str]) -> None:
    first = run(root, "dvc", "repro")
    for stage in STAGES:
        assert f"Running stage '{stage}'" in first.stdout

    params = yaml.safe_load((root / "params.yaml").read_text())["tracking"]
    client = MlflowClient(f"sqlite:///{root / 'mlflow.db'}")
    experiment = client.get_experiment_by_name(params["experiment"])
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if r.data.tags.get("retrainlab.role") == "pipeline"]
    assert len(parents) == 1
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parents[0].info.run_id]
    assert sorted(r.info.run_name for r in children) == sorted([*layout.STRATEGY_NAMES, layout.COMPARE])
    children = [r for r in children if "retrainlab.strategy" in r.data.tags]
    for child in children:
        assert child.info.status == "FINISHED"
        for metric in ("acc_old", "acc_new", "acc_all", "forgetting", "wall_seconds", "cpu_seconds",
                       "gpu_seconds", "gpu_util_seconds", "peak_memory_mb", "samples"):
            assert metric in child.data.metrics, (child.data.tags["retrainlab.strategy"], metric)
        assert child.data.tags["retrainlab.device"] == "cpu"
        assert str(experiment.artifact_location).startswith((root / "mlartifacts").as_uri())

    metrics = json.loads(run(root, "dvc", "metrics", "show", "--json").stdout)
    shown = next(iter(metrics.values()))["data"]
    test = pd.read_parquet(root / layout.split_path("incremental_test"))
    mlflow.set_tracking_uri(f"sqlite:///{root / 'mlflow.db'}")
    for strategy in layout.STRATEGY_NAMES:
        record = shown[layout.metrics_path(strategy).as_posix()]["data"]
        assert 0 <= record["acc_new"] <= 1 and record["forgetting"] == pytest.approx(
            shown["metrics/baseline.json"]["data"]["acc_old"] - record["acc_old"]
        )
        version = record["mlflow"]["model_version"]
        model = mlflow.pyfunc.load_model(f"models:/{params['registered_model']}/{version}")
        predicted = model.predict(test[features])[label].to_numpy()
        registered_seed = str(record["mlflow"]["model_seed"])
        assert np.mean(predicted == test[label].to_numpy()) == pytest.approx(record["per_seed"][registered_seed]["acc_new"])
    assert len(client.search_model_versions(f"name='{params['registered_model']}'")) == 4

    comparison = json.loads((root / layout.REPORT_JSON).read_text())
    recommended = shown[layout.metrics_path(comparison["recommended"]).as_posix()]["data"]
    challenger = client.get_model_version_by_alias(params["registered_model"], "challenger")
    assert str(challenger.version) == str(recommended["mlflow"]["model_version"])
    assert client.get_run(parents[0].info.run_id).data.tags["retrainlab.recommendation"] == comparison["recommended"]
    for path in layout.REPORT_FILES:
        assert (root / path).stat().st_size > 0

    second = run(root, "dvc", "repro")
    assert "Running stage" not in second.stdout
    assert "Data and pipelines are up to date" in second.stdout


def test_dvc_repro_on_the_default_digits_demo(tmp_path):
    root = make_project(tmp_path)
    check_pipeline(root, "digit", [f"pixel_{r}_{c}" for r in range(8) for c in range(8)])
    check_a_failed_stage_keeps_the_last_good_outputs(root)

    # A DVC remote in a local directory: commit as a user would, push the datasets and
    # models, remove everything git ignores (DVC's cache and outputs, the MLflow store), pull
    # them back; then nothing needs to run again.
    remote = tmp_path / "remote"
    run(root, "dvc", "remote", "add", "--default", "shared", str(remote))
    git(root, "add", "-A")
    git(root, "commit", "-qm", "pipeline results")
    run(root, "dvc", "push")
    assert any(p.is_file() for p in remote.rglob("*"))
    git(root, "clean", "-fdqX")
    assert not (root / ".dvc" / "cache").exists() and not (root / layout.model_dir("fine-tune")).exists()
    run(root, "dvc", "pull")
    assert (root / layout.model_dir("fine-tune") / "seed-0" / "model.keras").is_file()
    assert (root / layout.split_path("incremental_test")).is_file()
    after = run(root, "dvc", "repro")
    assert "Running stage" not in after.stdout


def check_a_failed_stage_keeps_the_last_good_outputs(root: Path) -> None:
    """DVC deletes a stage's outputs before running it unless they persist: before they did,
    a misspelt `model` key lost the baseline's model, metrics and curves, and a bad
    `compare.tolerance` emptied reports/."""
    kept = [layout.metrics_path("baseline"), layout.curves_path("baseline"), *layout.REPORT_FILES,
            layout.model_dir("baseline") / "seed-0" / "model.keras", layout.SUMMARY]
    before = {path: (root / path).read_bytes() for path in kept}
    good = (root / "params.yaml").read_text()
    for section, key, value in (("model", "hiden_units", [4]), ("compare", "tolerance", -1)):
        params = yaml.safe_load(good)
        params[section][key] = value
        (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        failed = subprocess.run(["dvc", "repro"], cwd=root, env=tool_env(), capture_output=True, text=True)
        assert failed.returncode != 0 and f"{section}.{key}" in failed.stderr, failed.stderr[-2000:]
        assert {path: (root / path).read_bytes() for path in kept} == before, key
    (root / "params.yaml").write_text(good)
    assert "Running stage" not in run(root, "dvc", "repro").stdout


def test_dvc_repro_on_csv_files_the_project_has_never_seen(tmp_path):
    rng = np.random.default_rng(5)

    def customers(n, regions):
        frame = pd.DataFrame({
            "monthly spend": rng.gamma(2.0, 30.0, n).round(2),
            "region": rng.choice(regions, n),
            "tickets": rng.poisson(2, n),
        })
        frame["segment"] = np.select(
            [frame["region"] == "apac", frame["monthly spend"] > 70, frame["tickets"] > 2],
            ["growth", "premium", "at-risk"], "steady",
        )
        return frame

    root = make_project(tmp_path, source="files")
    customers(400, ["emea", "amer"]).to_csv(root / "data/raw/initial.csv", index=False)
    customers(150, ["emea", "amer", "apac"]).to_csv(root / "data/raw/incremental.csv", index=False)
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["data"]["files"]["label"] = "segment"
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    check_pipeline(root, "segment", ["monthly spend", "region", "tickets"])
