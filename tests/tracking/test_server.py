"""`retrainlab ui` as a user runs it: MLflow's UI on a free loopback port, on the project's own
store, quiet unless asked (a line per HTTP request buried the link it prints)."""

import shutil
import signal
import subprocess
import time
import urllib.request

import pytest
from mlflow.tracking import MlflowClient

from retrainlab.pipeline.params import load_params

from ..conftest import PROJECT, free_port, tool_env, wait_until_up

PAGES = ("/", "/health", "/version", "/ajax-api/2.0/mlflow/experiments/search?max_results=10",
         "/ajax-api/2.0/mlflow/registered-models/search")


def ui_output(root, *options: str) -> tuple[int, list[str], list[str]]:
    """Start `retrainlab ui` in `root`, request each page three times, stop it as Ctrl-C would;
    its exit status and the lines it wrote to stdout and to stderr."""
    port = free_port()
    ui = subprocess.Popen(["retrainlab", "ui", "--port", str(port), *options], cwd=root, env=tool_env(),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_until_up(f"http://127.0.0.1:{port}/health", ui)
        for page in PAGES * 3:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{page}", timeout=30) as answer:
                assert answer.status == 200, page
        time.sleep(1)  # the server's log of the last request, if it logs one
        ui.send_signal(signal.SIGINT)
        out, err = ui.communicate(timeout=60)
    finally:
        if ui.poll() is None:
            ui.kill()
            ui.wait()
    return ui.returncode, out.splitlines(), err.splitlines()


@pytest.fixture
def project(tmp_path):
    """A project whose store holds its experiment and nothing else."""
    shutil.copy(PROJECT / "params.yaml", tmp_path / "params.yaml")
    (tmp_path / ".dvc").mkdir()
    name = load_params(tmp_path / "params.yaml").tracking.experiment
    experiment = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}").create_experiment(name)
    return tmp_path, experiment


def test_the_ui_says_where_it_is_and_nothing_per_request_unless_verbose(project):
    root, experiment = project
    status, out, err = ui_output(root)
    assert status == 0
    assert len(out) == 1 and out[0].endswith(f"/#/experiments/{experiment}/runs?workflowType=machine_learning")
    assert len(err) == 1 and err[0].startswith("retrainlab: MLflow UI on http://127.0.0.1:"), err

    status, out, err = ui_output(root, "--verbose")
    assert status == 0
    requests = [line for line in out + err if '"GET /' in line]
    assert len(requests) >= 3 * len(PAGES), out + err
