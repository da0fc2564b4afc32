import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import dataclasses  # noqa: E402
import json  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import urllib.error
import urllib.request  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from retrainlab.config import Params
from retrainlab.pipeline.params import load_params
from retrainlab.strategies import settings_of

PROJECT = Path(__file__).resolve().parents[1]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The files that hold end-to-end tests first, each file's tests kept together and in
    order. `make test` hands each file to one xdist worker in this order
    (`--dist loadfile --no-loadscope-reorder`): the minutes-long files start at once and the
    many short ones fill both workers' tails. xdist's own order (the most tests first) left
    the longest files for last, and one worker ran them alone for a minute or more."""
    slow = {item.path for item in items if item.get_closest_marker("integration")}
    items.sort(key=lambda item: item.path not in slow)  # a stable sort: the order within each group is kept


# Two computations of the same float32 network that batch the rows differently (the bundle
# against Keras' own predict, MLflow's pyfunc against the pipeline's evaluation, a wider
# output layer) add the same terms in another order: they agree to a few units in the last
# place of a float32 (eps 1.2e-7), not bit for bit. Exact equality is for the same call made
# twice, integers, labels and digests.
SAME_NETWORK = {"rtol": 1e-5, "atol": 1e-7}


def assert_same_choices(labels, other_labels, probs: np.ndarray, classes) -> None:
    """Two computations' predicted labels agree on every row, but where `probs` (one of them,
    columns in `classes`' order) puts its top two classes within SAME_NETWORK's tolerance:
    there another order of the sums may pick the other, as may the other computation."""
    probs = np.asarray(probs, dtype=np.float64)
    top_two = np.sort(probs, axis=1)[:, -2:]
    tied = top_two[:, 1] - top_two[:, 0] <= SAME_NETWORK["rtol"] * top_two[:, 1] + SAME_NETWORK["atol"]
    labels, other_labels = np.asarray(labels), np.asarray(other_labels)
    assert len(labels) == len(other_labels) == len(probs)
    differ = (labels != other_labels) & ~tied
    assert not differ.any(), (np.flatnonzero(differ)[:10], labels[differ][:10], other_labels[differ][:10])
    assert np.isin(other_labels[tied], np.asarray(classes)).all()


def tool_env(**extra: str) -> dict[str, str]:
    """The environment for the project's commands run as subprocesses: this venv's tools
    first on PATH, no MLflow settings inherited from the caller, TensorFlow quiet."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    return env | extra


# The options most tests compare with the baseline; tests of the others name them.
TINY_STRATEGIES = ("full-retrain", "incremental", "fine-tune")


def tiny_settings(params: Params, names=TINY_STRATEGIES) -> dict:
    """Those options' settings, shrunk to 2 epochs at a learning rate of 0.01."""
    from retrainlab.strategies import Training

    def shrunk(settings):
        return dataclasses.replace(settings, epochs=2, learning_rate=0.01) if isinstance(settings, Training) else settings

    return {name: shrunk(settings_of(params, name)) for name in names}


def tiny(params: Params, strategies=TINY_STRATEGIES, **data_changes) -> Params:
    """The project's params, shrunk so that training takes seconds."""
    return dataclasses.replace(
        params,
        seeds=[0, 1],
        data=dataclasses.replace(params.data, **data_changes),
        # Every epoch: the tests of early stopping (tests/training/test_stopping.py) ask for it.
        model=dataclasses.replace(params.model, hidden_units=[16, 8], epochs=4, learning_rate=0.01, patience=None),
        strategies=tiny_settings(params, strategies),
        tracking=dataclasses.replace(params.tracking, system_metrics=False),
        # No seeds beyond the two: tests of the adaptive seeds ask for them.
        compare=dataclasses.replace(params.compare, max_seeds=2),
    )


@pytest.fixture
def project_params() -> Params:
    return load_params(PROJECT / "params.yaml")


@pytest.fixture
def tiny_params(project_params) -> Params:
    return tiny(project_params)


@pytest.fixture
def store(tmp_path, monkeypatch):
    """A real SQLite MLflow store of the test's own, used through MLFLOW_TRACKING_URI."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    import mlflow

    mlflow.set_tracking_uri(uri)
    yield uri


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def served(root: Path, model_uri: str, rows: pd.DataFrame, tracking_uri: str,
           also: tuple[dict, ...] = ()) -> list[dict] | tuple[list[dict], list[tuple[int, dict]]]:
    """`rows` sent to `mlflow models serve -m MODEL_URI` on a loopback port, as a client
    would send them (JSON, dataframe_split); the server's predictions. With `also`, bodies
    sent after it to the same server, and each one's HTTP status and JSON answer. The server
    is stopped before this returns."""
    port = free_port()
    server = subprocess.Popen(
        ["mlflow", "models", "serve", "-m", model_uri, "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port)],
        cwd=root, env=tool_env(MLFLOW_TRACKING_URI=tracking_uri), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        wait_until_up(f"http://127.0.0.1:{port}/ping", server)
        body = {"dataframe_split": {"columns": list(rows.columns), "data": rows.values.tolist()}}
        predictions = _post(port, body)[1]["predictions"]
        return (predictions, [_post(port, other) for other in also]) if also else predictions
    finally:
        server.terminate()
        server.wait(timeout=30)
        server.stderr.close()


def wait_until_up(url: str, process: subprocess.Popen, seconds: float = 120) -> None:
    """Until `url` answers: the server `process` started and is listening (it must not exit meanwhile)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except OSError:
            assert process.poll() is None, process.communicate()[-1][-3000:]
            assert time.monotonic() < deadline, f"{url} did not answer in {seconds:g} s"
            time.sleep(0.5)


def _post(port: int, body: dict) -> tuple[int, dict]:
    """A JSON body (NaN and Infinity as Python's json writes them) to /invocations: the status and the answer."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}/invocations", json.dumps(body).encode(),
                                     {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())
