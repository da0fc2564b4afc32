"""The Ray engine's checks before anything is written, and what makes a fit the same fit.

The engine against a real cluster: tests/e2e/test_ray.py."""

from __future__ import annotations

import dataclasses
import socket
import time

import pytest

from retrainlab.base.errors import ConfigError, PipelineError
from retrainlab.config import EngineParams
from retrainlab.pipeline.fits import Step, fit_key
from retrainlab.pipeline.params import params_from_text
from retrainlab.pipeline.strategy_step import run_strategy
from retrainlab.strategies import CATALOGUE
from retrainlab.training import cluster
from retrainlab.training.distribute import NONE, Distribution

from ..conftest import free_port


@pytest.mark.parametrize("address, found", [
    ("127.0.0.1:6379", ("127.0.0.1", 6379)),
    ("ray://head.example:10001", ("head.example", 10001)),
    ("[::1]:6379", ("::1", 6379)),
    ("auto", None),
])
def test_the_head_is_read_from_the_address(address, found):
    assert cluster.head(address) == found


@pytest.mark.parametrize("address", ["head", "head:port", "ray://:10001", "head:99999"])
def test_an_address_without_a_port_is_refused_in_one_line(address):
    with pytest.raises(PipelineError, match=r"^parameter 'engine.address' is .*: give HOST:PORT, ray://HOST:PORT"):
        cluster.head(address)


def test_this_machine_is_loopback_its_name_or_its_addresses():
    assert cluster.is_this_machine("127.0.0.1") and cluster.is_this_machine("localhost")
    assert cluster.is_this_machine(socket.gethostname()) and cluster.is_this_machine("::1")
    assert not cluster.is_this_machine("192.0.2.250") and not cluster.is_this_machine("ray-head.invalid")


def test_a_cluster_of_other_machines_is_refused_a_store_on_this_one():
    for uri in ("sqlite:////srv/project/mlflow.db?timeout=60", "file:///srv/mlruns", "/srv/mlruns"):
        with pytest.raises(PipelineError, match=r"^engine.address 'ray-head.invalid:6379' is a cluster of other "
                                                r"machines, but the tracking store is shown on this one.*"
                                                r"set MLFLOW_TRACKING_URI"):
            cluster.refuse_local_store("ray-head.invalid:6379", uri, "shown")
    cluster.refuse_local_store("ray-head.invalid:6379", "http://tracking.invalid:5000", "shown")
    cluster.refuse_local_store("127.0.0.1:6379", "sqlite:////srv/project/mlflow.db", "shown")


def test_an_address_nothing_answers_at_is_one_line_within_seconds():
    port = free_port()  # bound, then let go: nothing listens there
    started = time.monotonic()
    with pytest.raises(PipelineError, match=rf"^engine.address '127.0.0.1:{port}': no Ray cluster answers there "
                                            r"\(connection refused\); start one \(ray start --head\)"):
        cluster.probe(f"127.0.0.1:{port}")
    assert time.monotonic() - started < cluster.PROBE_SECONDS


@pytest.mark.parametrize("text, key", [
    ("engine:\n  kind: ray\n", "engine.address"),
    ("engine:\n  kind: ray\n  address: ' 127.0.0.1:6379'\n", "engine.address"),
    ("engine:\n  cpus_per_fit: 0\n", "engine.cpus_per_fit"),
    ("engine:\n  gpus_per_fit: -1\n", "engine.gpus_per_fit"),
    ("engine:\n  retries: 11\n", "engine.retries"),
    ("engine:\n  kind: spark\n", "engine.kind"),
    ("engine:\n  kind: ray\n  address: auto\ndistribute:\n  mode: mirrored\n", "engine.kind"),
])
def test_bad_engine_settings_are_refused_naming_the_key(text, key):
    with pytest.raises(ConfigError, match=rf"parameter '{key}'"):
        params_from_text(text, "params.yaml")


def test_a_step_on_ray_is_refused_before_anything_is_written(tmp_path, monkeypatch, project_params):
    """No store, no run, no file: the refusal comes first."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    remote = dataclasses.replace(project_params, engine=EngineParams(kind="ray", address="ray-head.invalid:6379"))
    with pytest.raises(PipelineError, match=r"is a cluster of other machines, but the tracking store is"):
        run_strategy("full-retrain", remote, tmp_path)
    here = dataclasses.replace(project_params, engine=EngineParams(kind="ray", address=f"127.0.0.1:{free_port()}"))
    with pytest.raises(PipelineError, match=r"no Ray cluster answers there"):
        run_strategy("full-retrain", here, tmp_path)
    assert list(tmp_path.iterdir()) == []


def step_of(params, name="incremental", digests=None) -> Step:
    return Step(CATALOGUE[name], params, None, Distribution(NONE), None, {}, None, None,
                digests=digests or {"initial_train": "a"})


def test_a_fit_is_the_same_fit_whatever_the_engine_and_the_other_options(tiny_params):
    key = fit_key(step_of(tiny_params), "incremental", 0)
    on_ray = dataclasses.replace(tiny_params, engine=EngineParams(kind="ray", address="auto", cpus_per_fit=4),
                                 seeds_parallel=2, checkpoint_seconds=0)
    others = dataclasses.replace(tiny_params, strategies={
        **tiny_params.strategies,
        "fine-tune": dataclasses.replace(tiny_params.strategies["fine-tune"], epochs=9)})
    assert fit_key(step_of(on_ray), "incremental", 0) == fit_key(step_of(others), "incremental", 0) == key
    assert fit_key(step_of(others), "fine-tune", 0) != fit_key(step_of(tiny_params), "fine-tune", 0)
    assert fit_key(step_of(tiny_params), "incremental", 1) != key
    assert fit_key(step_of(tiny_params, digests={"initial_train": "b"}), "incremental", 0) != key
