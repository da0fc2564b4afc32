"""Team mode end to end: a real PostgreSQL, `retrainlab server` (the real `mlflow server`,
serving the artifacts) on 127.0.0.1, and the real pipeline, comparison and promotion
logging to it through MLFLOW_TRACKING_URI.

Without PostgreSQL installed these tests skip, unless RETRAINLAB_REQUIRE_POSTGRES=1 (CI)
makes that a failure.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import psutil
import pytest
import sqlalchemy
import yaml
from mlflow.tracking import MlflowClient

from retrainlab.base import layout
from retrainlab.base.errors import RetrainlabError
from retrainlab.strategies import BASELINE
from retrainlab.tracking import server

from ..conftest import tool_env
from .test_pipeline import make_project, ran, run, stages

# One option, from the baseline: what a stage logs, registers and loads goes through the server.
TEAM_OPTIONS = ("fine-tune",)

# The role and database README's "Team mode" asks a team to create.
TEAM_SQL = "CREATE USER mlflow WITH PASSWORD 'change-me';\nCREATE DATABASE mlflow OWNER mlflow;\n"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        return probe.connect_ex(("127.0.0.1", port)) != 0


@pytest.fixture
def postgres_installed():
    try:
        server.postgres_bin_dir()
    except RetrainlabError as exc:
        if os.environ.get("RETRAINLAB_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"RETRAINLAB_REQUIRE_POSTGRES=1, but {exc}")
        pytest.skip(str(exc))


@pytest.fixture
def shared_dir(postgres_installed):
    """A folder the `postgres` user can reach: when the tests run as root, PostgreSQL runs as
    that user, and pytest's tmp_path is private to the user running the tests."""
    directory = Path(tempfile.mkdtemp(prefix="retrainlab-team-"))
    directory.chmod(0o755)
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def postgres(shared_dir):
    """A PostgreSQL on 127.0.0.1 with the team's password-protected `mlflow` user and database."""
    cluster = server.Cluster(shared_dir / "postgres", port=free_port(), tcp=True)
    cluster.start()
    try:
        cluster.sql(TEAM_SQL)
        yield f"postgresql://mlflow:change-me@127.0.0.1:{cluster.port}/mlflow"
    finally:
        cluster.stop()


class TrackingServer:
    """`retrainlab server ...` as a user starts it, in its own session, logging to a file."""

    def __init__(self, cwd: Path, log: Path, *args: str, **env: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        with open(log, "w") as out:
            self.process = subprocess.Popen(
                ["retrainlab", "server", "--port", str(self.port), *args, "--", "--workers", "2"],
                cwd=cwd, env=tool_env(**env), stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )

    def wait_until_up(self, seconds: float = 120) -> None:
        """Until it says it answers, as it does once its health check passed; check that it does."""
        deadline = time.monotonic() + seconds
        while f"MLflow tracking server on {self.url}" not in self.log.read_text():
            assert self.process.poll() is None, f"server exited:\n{self.log.read_text()[-4000:]}"
            assert time.monotonic() < deadline, f"{self.url} not up in {seconds} s:\n{self.log.read_text()[-4000:]}"
            time.sleep(0.5)
        with urllib.request.urlopen(self.url + "/health", timeout=10) as answer:
            assert answer.read() == b"OK"

    def stop(self) -> int:
        """SIGTERM, as a service manager sends it; its exit status."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        return self.process.returncode


def running_command_lines(pid: int) -> list[str]:
    """The command lines of a process and of its descendants that still run. The server starts
    and ends helper processes as it comes up: one that ended between the listing and the
    reading is a zombie, or gone, and has no command line left to read (before, reading it
    failed the test now and then)."""
    lines = []
    for process in [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]:
        try:
            lines.append(" ".join(process.cmdline()))
        except (psutil.ZombieProcess, psutil.NoSuchProcess):
            continue
    return lines


@pytest.fixture
def start_server(tmp_path):
    started = []

    def start(cwd: Path, *args: str, **env: str) -> TrackingServer:
        started.append(TrackingServer(cwd, tmp_path / f"server-{len(started)}.log", *args, **env))
        started[-1].wait_until_up()
        return started[-1]

    yield start
    for each in started:
        each.stop()


@pytest.mark.integration
def test_pipeline_compare_and_promote_against_a_postgres_backed_server(tmp_path, postgres, start_server, monkeypatch):
    artifacts = tmp_path / "server-artifacts"
    team = start_server(tmp_path, "--artifacts-destination", str(artifacts), MLFLOW_BACKEND_STORE_URI=postgres)
    # The database password stays out of command lines and the server's output.
    command_lines = running_command_lines(team.process.pid)
    assert len(command_lines) > 2 and not any("change-me" in line for line in command_lines)
    assert "mlflow:***@127.0.0.1" in team.log.read_text() and "change-me" not in team.log.read_text()

    root = make_project(tmp_path, options=TEAM_OPTIONS, seeds=(0,))
    params = yaml.safe_load((root / "params.yaml").read_text())
    repro = run(root, "dvc", "repro", MLFLOW_TRACKING_URI=team.url)
    assert ran(repro) == stages(TEAM_OPTIONS)

    # Every run, in the server's store, FINISHED; artifacts went through the server.
    name = params["tracking"]["registered_model"]
    client = MlflowClient(team.url)
    experiment = client.get_experiment_by_name(params["tracking"]["experiment"])
    assert experiment.artifact_location.startswith("mlflow-artifacts:/")
    runs = client.search_runs([experiment.experiment_id])
    assert {r.info.status for r in runs} == {"FINISHED"}
    (parent,) = [r for r in runs if r.data.tags.get("retrainlab.role") == "pipeline"]
    children = {r.info.run_name for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id}
    assert children == {BASELINE, *TEAM_OPTIONS, layout.COMPARE}
    assert not (root / "mlflow.db").exists() and not (root / "mlartifacts").exists()
    assert {p.name for p in artifacts.rglob("*")} >= {"MLmodel", "comparison.md", "summary.json"}

    # ... and that store is PostgreSQL.
    engine = sqlalchemy.create_engine(postgres)
    try:
        with engine.connect() as db:
            stored = db.execute(sqlalchemy.text("SELECT status, count(*) FROM runs GROUP BY status")).all()
            stored_versions = db.execute(
                sqlalchemy.text("SELECT count(*) FROM model_versions WHERE name = :name"), {"name": name}
            ).scalar()
    finally:
        engine.dispose()
    assert dict(stored) == {"FINISHED": len(runs)}

    # Four registered versions; compare logged to the parent run and set the challenger.
    versions = client.search_model_versions(f"name='{name}'")
    assert len(versions) == stored_versions == 1 + len(TEAM_OPTIONS)
    assert {v.tags["strategy"] for v in versions} == {BASELINE, *TEAM_OPTIONS}
    report = json.loads((root / layout.REPORT_JSON).read_text())
    recommended = json.loads((root / layout.record_path(report["recommended"])).read_text())
    challenger = client.get_model_version_by_alias(name, "challenger")
    assert challenger.version == str(recommended["mlflow"]["model_version"])
    assert client.get_run(parent.info.run_id).data.tags["retrainlab.recommendation"] == report["recommended"]
    logged = {Path(a.path).name for a in client.list_artifacts(parent.info.run_id, "comparison")}
    assert {Path(p).name for p in layout.REPORT_FILES} <= logged

    # Promotion moves champion, and the champion loads through models:/ from the server.
    promoted = run(root, "retrainlab", "promote", MLFLOW_TRACKING_URI=team.url)
    assert f"v{challenger.version} is now 'champion'" in promoted.stdout
    champion = client.get_model_version_by_alias(name, "champion")
    assert champion.version == challenger.version
    assert champion.tags["last_promote.action"] == "promote"
    assert client.get_run(champion.run_id).info.artifact_uri.startswith("mlflow-artifacts:/")
    test = pd.read_parquet(root / layout.split_path("incremental_test"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", team.url)  # restored afterwards, as set_tracking_uri exports it
    mlflow.set_tracking_uri(team.url)
    try:
        model = mlflow.pyfunc.load_model(f"models:/{name}@champion")
    finally:
        mlflow.set_tracking_uri(None)
    predicted = model.predict(test.drop(columns="digit"))["digit"].to_numpy()
    assert np.mean(predicted == test["digit"].to_numpy()) == pytest.approx(recommended["per_seed"]["0"]["acc_new"])

    # SIGTERM stops the server and its workers: a clean exit, and the port is free again.
    assert team.stop() == 0
    assert port_is_free(team.port)


@pytest.mark.integration
def test_without_a_database_uri_a_throwaway_postgres_is_started_and_stopped(shared_dir, start_server):
    project = shared_dir / "project"
    (project / ".dvc").mkdir(parents=True)
    team = start_server(project)
    client = MlflowClient(team.url)
    run_id = client.create_run(client.create_experiment("try-team-mode")).info.run_id
    (shared_dir / "note.txt").write_text("through the server")
    client.log_artifact(run_id, str(shared_dir / "note.txt"))

    assert [p.read_text() for p in (project / server.ARTIFACTS_DIR).rglob("note.txt")] == ["through the server"]
    cluster = server.Cluster(project / server.LOCAL_CLUSTER_DIR)
    engine = sqlalchemy.create_engine(cluster.socket_uri(server.LOCAL_DATABASE))
    try:
        with engine.connect() as db:
            stored = db.execute(sqlalchemy.text("SELECT run_uuid FROM runs")).scalars().all()
    finally:
        engine.dispose()
    assert stored == [run_id]
    assert team.stop() == 0
    assert not (cluster.directory / "data" / "postmaster.pid").exists()


@pytest.mark.parametrize("problem", ["port in use", "database unreachable", "not PostgreSQL"])
def test_bad_server_input_gets_one_clear_line(tmp_path, problem):
    taken, closed = socket.socket(), free_port()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1] if problem == "port in use" else free_port()
    uri = {"not PostgreSQL": f"sqlite:///{tmp_path}/mlflow.db"}.get(
        problem, f"postgresql://mlflow:secret@127.0.0.1:{closed}/mlflow"
    )
    with taken:
        result = subprocess.run(
            ["retrainlab", "server", "--backend-store-uri", uri, "--port", str(port)],
            cwd=tmp_path, env=tool_env(), capture_output=True, text=True, timeout=60,
        )
    expected = {
        "port in use": f"port {port} on 127.0.0.1 is not free",
        "database unreachable": f"cannot connect to postgresql://mlflow:***@127.0.0.1:{closed}/mlflow",
        "not PostgreSQL": "--backend-store-uri must be a PostgreSQL URI",
    }[problem]
    assert result.returncode == 2
    assert result.stderr.startswith(f"retrainlab: error: {expected}") and result.stderr.count("\n") == 1
    assert "secret" not in result.stderr
