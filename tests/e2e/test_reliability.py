"""Killed runs, parallel steps, concurrent promotions and leaked credentials, with real processes."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient

from retrainlab import data
from retrainlab.base import layout
from retrainlab.base.errors import Terminated
from retrainlab.pipeline.params import load_params
from retrainlab.strategies import BASELINE

from ..conftest import tool_env
from .test_pipeline import OPTIONS, make_project

pytestmark = pytest.mark.integration
FAKE_TOKEN = "rl-fake-token-7f3a9c1e55d04b2a"


def env_for(root: Path) -> dict[str, str]:
    # Credentials as a team setup would have them: they must never reach the store or artifacts.
    return tool_env(MLFLOW_TRACKING_TOKEN=FAKE_TOKEN, AWS_SECRET_ACCESS_KEY=FAKE_TOKEN)


def retrainlab(root: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(["retrainlab", *args], cwd=root, env=env_for(root), capture_output=True, text=True, timeout=600)
    if check:
        assert result.returncode == 0, f"{args}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


def client_for(root: Path) -> MlflowClient:
    return MlflowClient(f"sqlite:///{root / 'mlflow.db'}")


def runs_of(root: Path, params) -> list:
    """The step and seed runs (not the pipeline's parent run)."""
    client = client_for(root)
    experiment = client.get_experiment_by_name(params.tracking.experiment)
    runs = client.search_runs([experiment.experiment_id]) if experiment else []
    return [r for r in runs if r.data.tags.get("retrainlab.role") in ("step", "seed")]


@pytest.fixture
def slow_project(tmp_path):
    """A prepared project whose baseline trains long enough to be killed: 20 small-batch epochs,
    each checkpointed (at least 17 left after the epoch a test stops it at), and no longer,
    for the resumed half of the SIGKILL test trains the rest."""
    root = make_project(tmp_path)
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["seeds"] = [0]
    params["checkpoint_seconds"] = 0
    params["model"].update(epochs=20, batch_size=8, patience=None)  # every epoch: the resumed half trains the rest
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    loaded = load_params(root / "params.yaml")
    data.prepare(loaded.data, root)
    return root, loaded


def start_and_wait_for_epochs(root: Path, epochs: int, *command: str) -> tuple[subprocess.Popen, Path]:
    """Start the baseline (`retrainlab baseline`, or `command`) in a process group of its own."""
    process = subprocess.Popen(["retrainlab", *(command or ["baseline"])], cwd=root, env=env_for(root),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        states = list((root / layout.CHECKPOINTS_DIR).rglob("state.json"))
        if states and json.loads(states[0].read_text())["epoch"] >= epochs:
            return process, states[0]
        assert process.poll() is None, process.communicate()
        time.sleep(0.1)
    process.kill()
    raise AssertionError("training did not reach the epoch to kill it at")


@pytest.mark.parametrize(
    "signum, command, group",
    [
        (signal.SIGTERM, ["baseline"], True),
        # Ctrl-C in a terminal: SIGINT to the whole group, here MLflow's runner and the step it started.
        (signal.SIGINT, ["run", "baseline"], True),
        # A supervisor stopping the runner by its pid: the runner stops the step it started.
        # Before, the runner exited at once and the step trained on to the end, FINISHED.
        (signal.SIGTERM, ["run", "baseline"], False),
    ],
    ids=["sigterm", "ctrl-c", "sigterm-to-the-runner-alone"],
)
def test_a_stop_signal_closes_the_runs_as_killed_and_changes_nothing_else(slow_project, signum, command, group):
    root, params = slow_project
    process, _ = start_and_wait_for_epochs(root, 2, *command)
    if group:
        os.killpg(process.pid, signum)
    else:
        os.kill(process.pid, signum)
    _, stderr = process.communicate(timeout=60)
    assert_stopped_and_nothing_changed(root, params, signum, process.returncode, stderr)


def assert_stopped_and_nothing_changed(root: Path, params, signum: int, returncode: int, stderr: str) -> None:
    """The command said it was stopped and exited 128 + the signal; every run ended KILLED; no
    model, record or registered version was written."""
    assert returncode == 128 + signum, stderr[-2000:]
    assert f"stopped by {signal.Signals(signum).name}" in stderr
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr, stderr[-3000:]
    deadline = time.monotonic() + 30  # the step closes its runs as it unwinds, maybe after its launcher
    while any(r.info.status == "RUNNING" for r in runs_of(root, params)) and time.monotonic() < deadline:
        time.sleep(0.2)
    runs = runs_of(root, params)
    assert runs and {r.info.status for r in runs} == {"KILLED"}
    assert not (root / layout.model_dir("baseline")).exists()
    assert not (root / layout.record_path("baseline")).exists()
    assert client_for(root).search_model_versions() == []


# `retrainlab` whose step, once Keras has turned a few hundred of its batches' logs into
# numbers, presses Ctrl-C (SIGINT to its whole process group: the runner and itself, as a
# terminal does) from inside that conversion. Keras converts each batch's logs in a bare
# `except: pass` (keras.src.utils.python_utils.pythonify_logs), so the Terminated the signal
# handler raises there is swallowed: where a real Ctrl-C landed when the step trained on to FINISHED.
CTRL_C_IN_KERAS_LOGS = """\
import os
import signal
import sys
import time

from retrainlab.base import console
from retrainlab.cli import main

load_tensorflow = console.load_tensorflow


def load_then_press_ctrl_c_in_keras_logs():
    load_tensorflow()
    from keras.src import backend
    from keras.src.utils.python_utils import pythonify_logs

    convert, converted = backend.convert_to_numpy, []

    def convert_pressing_ctrl_c(value):
        if sys._getframe(1).f_code is pythonify_logs.__code__:
            converted.append(value)
            if len(converted) == {at}:
                os.killpg(0, signal.SIGINT)
                time.sleep(1)  # the handler runs by now, inside Keras' bare except
        return convert(value)

    backend.convert_to_numpy = convert_pressing_ctrl_c


console.load_tensorflow = load_then_press_ctrl_c_in_keras_logs
sys.exit(main())
"""


def test_keras_swallows_a_stop_raised_while_it_converts_a_batchs_logs(monkeypatch):
    """Why a stop must be raised again after the batch (base.errors.raise_if_stop_asked): Keras
    drops any exception, Terminated included, raised while it turns a batch's logs into numbers."""
    import tensorflow as tf
    from keras.src import backend
    from keras.src.utils.python_utils import pythonify_logs

    def stopped(value):
        raise Terminated(signal.SIGINT)

    monkeypatch.setattr(backend, "convert_to_numpy", stopped)
    loss = tf.constant(0.5)
    assert pythonify_logs({"loss": loss}) == {"loss": loss}  # no Terminated: swallowed


def test_a_ctrl_c_that_keras_swallows_still_stops_the_step(slow_project, tmp_path):
    """Ctrl-C to `retrainlab run`'s group that lands in Keras' bare except: the step raises the
    stop again after the batch and stops there, its runs KILLED. Before, the step lost it,
    ignored the runner's repeat (a step ignores a second stop) and trained on to FINISHED,
    while the runner, having waited for it, exited 130: the flake of the `ctrl-c` case above."""
    root, params = slow_project
    hooked = tmp_path / "bin"
    hooked.mkdir()
    command = hooked / "retrainlab"
    command.write_text(f"#!{sys.executable}\n" + CTRL_C_IN_KERAS_LOGS.format(at=400))
    command.chmod(0o755)
    env = env_for(root)
    env["PATH"] = f"{hooked}{os.pathsep}{env['PATH']}"  # the runner's step runs this `retrainlab` too
    # A session of its own: the Ctrl-C goes to the runner and its step, not to pytest.
    result = subprocess.run(["retrainlab", "run", "baseline"], cwd=root, env=env, capture_output=True, text=True,
                            timeout=300, start_new_session=True)
    assert_stopped_and_nothing_changed(root, params, signal.SIGINT, result.returncode, result.stderr)
    stopped_at = json.loads(next((root / layout.CHECKPOINTS_DIR).rglob("state.json")).read_text())["epoch"]
    assert stopped_at < params.model.epochs  # after that batch, not at the end


def test_sigkill_leaves_a_run_that_the_next_start_closes_and_resumes(slow_project):
    root, params = slow_project
    process, state = start_and_wait_for_epochs(root, 3)
    process.kill()
    process.communicate(timeout=60)
    killed = runs_of(root, params)
    assert {r.info.status for r in killed} == {"RUNNING"}  # SIGKILL cannot be caught
    epochs_done = json.loads(state.read_text())["epoch"]

    # The next `dvc repro` closes the stale runs, resumes, and completes.
    again = subprocess.run(["dvc", "repro", "baseline"], cwd=root, env=env_for(root), capture_output=True,
                           text=True, timeout=600)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert "resuming after epoch" in again.stdout
    runs = {r.info.run_id: r for r in runs_of(root, params)}
    for old in killed:
        assert runs[old.info.run_id].info.status == "KILLED"
        assert "closed_as_stale" in " ".join(runs[old.info.run_id].data.tags)
    finished = [r for r in runs.values() if r.info.status == "FINISHED" and "retrainlab.strategy" in r.data.tags]
    assert len(finished) == 2  # the strategy run and its seed run
    seed_run = next(r for r in finished if r.data.tags.get("retrainlab.role") == "seed")
    assert int(seed_run.data.tags["retrainlab.resumed_after_epoch"]) >= epochs_done
    curves = (root / layout.curves_path("baseline")).read_text().splitlines()
    assert len(curves) == 1 + params.model.epochs  # the whole run, both halves
    assert not list((root / layout.CHECKPOINTS_DIR).rglob("state.json"))
    assert len(client_for(root).search_model_versions()) == 1


@pytest.fixture(scope="module")
def parallel_project(tmp_path_factory):
    """prepare and baseline, then the three updates at once, against the default SQLite store."""
    root = make_project(tmp_path_factory.mktemp("parallel"))
    retrainlab(root, "run", "prepare")
    retrainlab(root, "run", "baseline")
    processes = [
        subprocess.Popen(["retrainlab", "run", name], cwd=root, env=env_for(root),
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for name in OPTIONS
    ]
    outputs = [p.communicate(timeout=600)[0] for p in processes]
    retrainlab(root, "run", "compare")
    return root, load_params(root / "params.yaml"), processes, outputs


def test_parallel_strategy_steps_lose_no_run(parallel_project):
    root, params, processes, outputs = parallel_project
    for process, output in zip(processes, outputs):
        assert process.returncode == 0, output[-3000:]
        assert "database is locked" not in output
    strategy_runs = [r for r in runs_of(root, params) if r.data.tags.get("retrainlab.role") == "step"
                     and "retrainlab.strategy" in r.data.tags]
    assert sorted(r.data.tags["retrainlab.strategy"] for r in strategy_runs) == sorted([BASELINE, *OPTIONS])
    assert {r.info.status for r in strategy_runs} == {"FINISHED"}
    assert len(client_for(root).search_model_versions()) == 1 + len(OPTIONS)


def test_two_promotions_at_once_leave_consistent_aliases(parallel_project):
    root, params, _, _ = parallel_project
    name = params.tracking.registered_model
    processes = [
        subprocess.Popen(["retrainlab", "promote", "--version", v, "--force", "--reason", f"race {v}"],
                         cwd=root, env=env_for(root), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for v in ("2", "3")
    ]
    # What this checks is the order the lock imposes (the aliases below), not how long it takes.
    # Each promotion loads TensorFlow and measures two models, and the second waits for the
    # first: about a minute on an idle 2-core machine, several when other work loads it. The
    # limit is there to stop a hung promotion, so it is wide, and it ends both processes.
    try:
        outputs = [p.communicate(timeout=900)[0] for p in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    assert all(p.returncode == 0 for p in processes), outputs
    client = client_for(root)
    champion = str(client.get_model_version_by_alias(name, "champion").version)
    previous = str(client.get_model_version_by_alias(name, "previous-champion").version)
    # Serialised: the second promotion saw the first one's champion and kept it as previous.
    assert {champion, previous} == {"2", "3"}
    assert client.get_model_version(name, champion).tags["last_promote.from_version"] == previous


def test_credentials_in_the_environment_never_reach_the_store_or_artifacts(parallel_project):
    root, _, _, _ = parallel_project
    written = [p for p in root.rglob("*") if p.is_file() and not {".git", "tests"} & set(p.relative_to(root).parts)]
    assert any(p.name == "mlflow.db" for p in written) and any("mlartifacts" in p.parts for p in written)
    leaks = [str(p.relative_to(root)) for p in written if FAKE_TOKEN.encode() in p.read_bytes()]
    assert leaks == []
