import json
import signal
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from retrainlab.base import layout
from retrainlab.base.errors import Terminated, forget_stop, stop_asked
from retrainlab.config import FilesParams
from retrainlab.pipeline.prepare import prepare_step
from retrainlab.pipeline.strategy_step import run_strategy
from retrainlab.strategies import settings_of
from retrainlab.tracking import store
from retrainlab.tracking.store import CURVE_PREFIX


def test_project_root_of_a_dvc_temp_workspace_is_the_project(tmp_path):
    workspace = tmp_path / "proj" / ".dvc" / "tmp" / "exps" / "tmpab12"
    (workspace / ".dvc").mkdir(parents=True)
    (workspace / "src").mkdir()
    assert store.workspace_root(workspace / "src") == workspace
    assert store.project_root(workspace / "src") == tmp_path / "proj"


def test_the_embedded_store_is_an_absolute_path_in_the_project(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    (tmp_path / ".dvc").mkdir()
    monkeypatch.chdir(tmp_path)
    assert store.tracking_uri() == f"sqlite:///{tmp_path}/mlflow.db?timeout=60"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    assert store.tracking_uri() == "http://127.0.0.1:5000"


def test_configure_keeps_artifacts_in_the_project(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    experiment_id = store.configure("exp one", tmp_path)
    location = mlflow.get_experiment(experiment_id).artifact_location
    assert location == (tmp_path / "mlartifacts" / "exp_one").as_uri()
    assert store.configure("exp one", tmp_path) == experiment_id


def churn(n, seed, plans=("basic", "pro")):
    rng = np.random.default_rng(seed)
    tenure = rng.integers(1, 60, n)
    plan = rng.choice(plans, n)
    churned = np.where((tenure < 20) | (plan == "trial"), "yes", "no")
    return pd.DataFrame({"tenure": tenure, "plan": plan, "churned": churned})


@pytest.fixture
def files_project(tmp_path, monkeypatch, tiny_params, store):
    (tmp_path / ".dvc").mkdir()
    churn(200, 0).to_csv(tmp_path / "old.csv", index=False)
    churn(100, 1, plans=("basic", "pro", "trial")).to_csv(tmp_path / "new.csv", index=False)
    monkeypatch.chdir(tmp_path)
    data = tiny_params.data.__class__(source="files", files=FilesParams("old.csv", "new.csv", "churned"))
    return tmp_path, tiny_params.__class__(**{**tiny_params.__dict__, "data": data})


def test_strategy_runs_nest_log_and_register_models_that_predict_original_labels(files_project):
    root, params = files_project
    prepare_step(params, Path("."))
    baseline = run_strategy("baseline", params)
    fine = run_strategy("fine-tune", params)

    client = MlflowClient()
    parent = fine.mlflow.parent_run_id
    assert baseline.mlflow.parent_run_id == parent
    run = client.get_run(fine.mlflow.run_id)
    assert run.data.tags["mlflow.parentRunId"] == parent
    assert run.data.tags["retrainlab.strategy"] == "fine-tune"
    assert run.data.params["strategies.fine-tune.new_layers"] == "1"
    assert not [k for k in run.data.params if k.startswith("strategies.") and not k.startswith("strategies.fine-tune.")]
    # Only what applies: the files source has no scenario, and no classes it affects.
    assert run.data.params["data.files.label"] == "churned" and "data.synthetic.rows" not in run.data.params
    assert "data.scenario" not in run.data.params and "data.affected_classes" not in run.data.params
    for name in ("acc_old", "acc_new", "acc_all", "f1_new", "forgetting", "wall_seconds", "gpu_seconds"):
        assert name in run.data.metrics
    # The curves, training and held-out, in one "curves/" section of the UI's charts.
    for curve in ("loss", "accuracy", "held_out_acc_old", "held_out_acc_new"):
        history = client.get_metric_history(run.info.run_id, CURVE_PREFIX + curve)
        assert len(history) == settings_of(params, "fine-tune").epochs, curve
        assert all(0 <= point.value <= 1 for point in history) or curve == "loss"

    # One nested run per seed; the strategy run holds their mean and 95% interval.
    seed_runs = client.search_runs(
        [run.info.experiment_id], filter_string=f"tags.`mlflow.parentRunId` = '{run.info.run_id}'"
    )
    assert sorted(r.data.params["seed"] for r in seed_runs) == ["0", "1"]
    accs = [r.data.metrics["acc_new"] for r in seed_runs]
    assert run.data.metrics["acc_new"] == pytest.approx(np.mean(accs), abs=1e-4)  # each rounded to 4 decimals
    assert run.data.metrics["acc_new_ci_low"] <= min(accs) <= max(accs) <= run.data.metrics["acc_new_ci_high"]
    assert fine.per_seed["1"]["forgetting"] == pytest.approx(
        baseline.per_seed["1"]["acc_old"] - fine.per_seed["1"]["acc_old"]
    )
    seed_run = seed_runs[0]
    inputs = {i.dataset.name: i.dataset for i in seed_run.inputs.dataset_inputs}
    path = root / layout.split_path("incremental_train")
    assert inputs["incremental_train"].digest == store.file_md5(path)

    record = json.loads((root / layout.record_path("fine-tune")).read_text())
    assert record == json.loads(json.dumps(fine.to_json()))
    assert (root / layout.model_dir("fine-tune") / "seed-1" / "model.keras").is_file()

    version = client.get_model_version(params.tracking.registered_model, str(fine.mlflow.model_version))
    assert version.tags["strategy"] == "fine-tune" and version.run_id == run.info.run_id
    # The experiment's Models tab names each logged model after its option.
    logged = mlflow.search_logged_models(experiment_ids=[run.info.experiment_id], output_format="list")
    assert sorted(m.name for m in logged) == ["baseline", "fine-tune"]
    assert {m.name: m.source_run_id for m in logged}["fine-tune"] == run.info.run_id
    uri = f"models:/{params.tracking.registered_model}/{version.version}"
    assert not list(Path(mlflow.artifacts.download_artifacts(uri)).rglob("*.pkl"))  # models from code: no pickle
    model = mlflow.pyfunc.load_model(uri)
    test = pd.read_parquet(root / layout.split_path("incremental_test"))
    predicted = model.predict(test[["tenure", "plan"]])["churned"]
    assert set(predicted) <= {"yes", "no"}
    assert np.mean(predicted.to_numpy() == test["churned"].to_numpy()) == pytest.approx(fine.per_seed["0"]["acc_new"])

    # `seeds_parallel`: each seed in a worker process of its own logs its seed run under the
    # strategy's run, as one process does, with the same figures (seeded training on the CPU
    # is deterministic), and hands its model back.
    import dataclasses

    together = run_strategy("fine-tune", dataclasses.replace(params, seeds_parallel=2))
    for seed, figures in fine.per_seed.items():
        for name in ("acc_old", "acc_new", "loss_new", "forgetting"):
            assert together.per_seed[seed][name] == pytest.approx(figures[name], abs=1e-6), (seed, name)
    for seed, run_id in together.mlflow.seed_run_ids.items():
        seed_run = client.get_run(run_id)
        assert seed_run.data.tags["mlflow.parentRunId"] == together.mlflow.run_id
        assert seed_run.data.tags["retrainlab.seed"] == seed and "acc_new" in seed_run.data.metrics
    assert sorted(p.name for p in (root / layout.model_dir("fine-tune")).iterdir()) == ["seed-0", "seed-1"]


def test_a_strategy_before_its_baseline_says_what_to_run(files_project):
    from retrainlab.base.errors import PipelineError

    _, params = files_project
    prepare_step(params, Path("."))
    with pytest.raises(PipelineError, match="run the baseline step first"):
        run_strategy("incremental", params)


def test_a_strategy_from_scratch_reads_no_baseline_model_it_does_not_start_from(files_project):
    """Full-retrain on the project's own MLP builds its model from the model section: it
    needs the baseline's record (forgetting is measured against it), not its models. With
    every baseline model file damaged it still trains; an update that starts from them
    says which file is damaged."""
    from retrainlab.base.errors import ModelFileError

    root, params = files_project
    prepare_step(params, Path("."))
    run_strategy("baseline", params)
    for model_file in (root / layout.model_dir("baseline")).rglob("model.keras"):
        model_file.write_bytes(b"not a model")
    record = run_strategy("full-retrain", params)
    assert sorted(record.per_seed) == ["0", "1"] and "forgetting" in record.per_seed["0"]
    with pytest.raises(ModelFileError, match="model.keras"):
        run_strategy("incremental", params)


def test_curves_are_written_in_batches_and_all_by_the_end_of_training(tmp_path, monkeypatch):
    from retrainlab.pipeline.strategy_step import EpochLogger

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    experiment_id = store.configure("curves", tmp_path)
    client = MlflowClient()
    logger = EpochLogger()
    with mlflow.start_run(experiment_id=experiment_id) as run:
        logger.FLUSH_SECONDS = 3600  # no flush while training: everything waits for the end
        for epoch in range(3):
            logger.on_epoch_end(epoch, {"loss": 1.0 / (epoch + 1)})
        assert client.get_metric_history(run.info.run_id, CURVE_PREFIX + "loss") == []
        logger.on_train_end()
        logger.FLUSH_SECONDS = 0  # a flush after every epoch
        logger.on_epoch_end(3, {"loss": 0.2})
        history = client.get_metric_history(run.info.run_id, CURVE_PREFIX + "loss")
    assert [(m.step, m.value) for m in history] == [(1, 1.0), (2, 0.5), (3, 1 / 3), (4, 0.2)]


def test_a_copied_project_keeps_its_artifacts_in_its_own_tree(tmp_path, monkeypatch):
    """Artifact locations are absolute in MLflow's store: a copy of a project would write into
    the original's mlartifacts/. The copy's store is rebased onto its own tree; a copy
    without mlartifacts/ is a one-line error."""
    import shutil

    from retrainlab.base.errors import PipelineError

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    original, copy, bare = tmp_path / "original", tmp_path / "copy", tmp_path / "bare"
    original.mkdir()
    experiment = store.configure("moving", original)
    (tmp_path / "note.txt").write_text("kept")
    with mlflow.start_run(experiment_id=experiment) as run:
        mlflow.log_artifact(str(tmp_path / "note.txt"))
    shutil.copytree(original, copy)
    shutil.copytree(original, bare, ignore=shutil.ignore_patterns(store.ARTIFACTS_DIR))
    before = sorted(p.relative_to(original) for p in original.rglob("*") if p.is_file())

    monkeypatch.delenv("MLFLOW_TRACKING_URI")  # set_tracking_uri exports it; a new step starts without
    experiment = store.configure("moving", copy)
    assert mlflow.get_experiment(experiment).artifact_location.startswith(copy.as_uri())
    assert mlflow.get_run(run.info.run_id).info.artifact_uri.startswith(copy.as_uri())
    with mlflow.start_run(experiment_id=experiment) as later:
        mlflow.log_artifact(str(tmp_path / "note.txt"))
    assert later.info.artifact_uri.startswith(copy.as_uri())
    assert Path(mlflow.artifacts.download_artifacts(f"runs:/{run.info.run_id}/note.txt")).read_text() == "kept"
    assert sorted(p.relative_to(original) for p in original.rglob("*") if p.is_file()) == before

    with pytest.raises(PipelineError, match=r"mlflow\.db: its artifacts are in .*original/mlartifacts, another "
                       r"directory tree .*copy mlartifacts/ along"):
        monkeypatch.delenv("MLFLOW_TRACKING_URI")
        store.configure("moving", bare)



def _record_naming_runs(root: Path, mlflow_section: dict | None) -> None:
    """records/baseline.json as a strategy step leaves it, cut to the section that matters here."""
    path = root / layout.record_path("baseline")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"strategy": "baseline", "mlflow": mlflow_section}))


RUNS = {"experiment_id": "1", "run_id": "abc", "registered_model": "m", "model_version": 2}


def test_a_store_the_records_name_that_is_gone_is_one_line_and_none_is_made(tmp_path, monkeypatch):
    """After `rm mlflow.db`, a command that reads the store must not connect (SQLite would make
    an empty file whose empty registry says 'not registered' of the versions the records name)."""
    from retrainlab.base.errors import PipelineError

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    _record_naming_runs(tmp_path, RUNS)
    with pytest.raises(PipelineError, match=rf"^{tmp_path}/mlflow\.db: the MLflow store is missing, but "
                       r"records/baseline\.json names runs logged to it; restore it from a backup or set "
                       r"MLFLOW_TRACKING_URI to the store they were logged to$"):
        store.store_exists(tmp_path)
    assert not (tmp_path / "mlflow.db").exists()

    other = tmp_path / "elsewhere" / "team.db"  # an SQLite store named by MLFLOW_TRACKING_URI: the same
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{other}")
    with pytest.raises(PipelineError, match=rf"^{other}: the MLflow store is missing"):
        store.check_store_kept(tmp_path)
    assert not other.exists()


def test_a_project_that_logged_nothing_has_no_store_to_read_and_gets_none(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert store.store_exists(tmp_path) is False
    _record_naming_runs(tmp_path, None)  # the decision map's records: nothing logged
    assert store.store_exists(tmp_path) is False
    assert not (tmp_path / "mlflow.db").exists()
    store.configure("first", tmp_path)  # a step that logs makes it, as on a fresh project
    assert store.store_exists(tmp_path) is True
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")  # a server's store is the server's to keep
    _record_naming_runs(tmp_path, RUNS)
    assert store.store_exists(tmp_path) is True


@pytest.mark.usefixtures("store")
def test_a_run_whose_work_ends_after_a_stop_was_asked_for_is_killed():
    """A stop that a library swallowed before the run's work ended (base.errors.raise_if_stop_asked)
    is raised as the run closes: the run is KILLED, not FINISHED."""
    experiment_id = mlflow.create_experiment("stopped")
    stop_asked(signal.SIGTERM)
    try:
        with pytest.raises(Terminated), store.seed_run("baseline", 0, under=(experiment_id, "a parent")) as run:
            pass
    finally:
        forget_stop()
    assert MlflowClient().get_run(run.info.run_id).info.status == "KILLED"
