"""A real Ray cluster of two nodes on 127.0.0.1, each a `ray start --block` process in its own
session with one CPU, and an `mlflow server` on SQLite that serves the artifacts: what the
Ray engine's tests run against. Each is stopped by its process id (SIGTERM to its session,
then SIGKILL), never with `ray stop`, which stops Ray's processes by name across the host.

Without Ray installed the tests that use them skip, unless RETRAINLAB_REQUIRE_RAY=1 (CI)
makes that a failure.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

from retrainlab.tracking.server import NO_JOBS

from ..conftest import free_port, tool_env

BIN = Path(sys.executable).parent


def require_ray() -> None:
    if importlib.util.find_spec("ray") is None:
        if os.environ.get("RETRAINLAB_REQUIRE_RAY") == "1":
            pytest.fail("RETRAINLAB_REQUIRE_RAY=1, but Ray is not installed (make setup-ray)")
        pytest.skip("Ray is not installed (make setup-ray)")


class Process:
    """A command in its own session, logging to a file."""

    def __init__(self, command: list[str], log: Path, **env: str):
        self.log = log
        with open(log, "w") as out:
            self.process = subprocess.Popen(command, env=tool_env(**env), stdout=out, stderr=subprocess.STDOUT,
                                            start_new_session=True)

    def wait_for(self, text: str, seconds: float = 90) -> None:
        deadline = time.monotonic() + seconds
        while text not in self.log.read_text():
            assert self.process.poll() is None, f"exited:\n{self.log.read_text()[-4000:]}"
            assert time.monotonic() < deadline, f"no {text!r} in {seconds} s:\n{self.log.read_text()[-4000:]}"
            time.sleep(0.2)

    def stop(self) -> None:
        """SIGTERM to the command, which stops what it started; then whatever is left of its
        session, SIGKILL."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait()


class RayCluster:
    """A head and one more node, one CPU each, on 127.0.0.1; `address` is the head's."""

    def __init__(self, directory: Path, nodes: int = 2):
        directory.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        common = ["--node-ip-address=127.0.0.1", "--num-cpus=1", "--object-store-memory=200000000",
                  "--disable-usage-stats", "--block"]
        # Ray's sockets lie in its temp folder, whose path must leave room for theirs (107 bytes in all).
        self.temp = Path(tempfile.mkdtemp(prefix="rl-ray-"))
        self.nodes = [Process([str(BIN / "ray"), "start", "--head", f"--port={self.port}", "--include-dashboard=false",
                               f"--temp-dir={self.temp}", *common], directory / "head.log")]
        try:
            self.nodes[0].wait_for("Ray runtime started")
            for i in range(1, nodes):
                self.nodes.append(Process([str(BIN / "ray"), "start", f"--address={self.address}", *common],
                                          directory / f"node-{i}.log"))
                self.nodes[-1].wait_for("Ray runtime started")
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        for node in reversed(self.nodes):
            node.stop()
        shutil.rmtree(self.temp, ignore_errors=True)
        # The head leaves its address where `ray.init()` looks for a cluster on this machine.
        current = Path(tempfile.gettempdir()) / "ray" / "ray_current_cluster"
        if current.is_file() and current.read_text().strip() == self.address:
            current.unlink()


class SqliteServer:
    """`mlflow server` on an SQLite file, serving the artifacts, on 127.0.0.1."""

    def __init__(self, directory: Path):
        directory.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = Process(
            [str(BIN / "mlflow"), "server", "--backend-store-uri", f"sqlite:///{directory / 'mlflow.db'}",
             "--artifacts-destination", str(directory / "artifacts"), "--host", "127.0.0.1", "--port", str(self.port),
             "--workers", "2"],
            directory / "server.log", **NO_JOBS,
        )

    def wait_until_up(self) -> None:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=5) as answer:
                    if answer.read() == b"OK":
                        return
            except OSError:
                pass
            assert self.server.process.poll() is None, f"server exited:\n{self.server.log.read_text()[-4000:]}"
            assert time.monotonic() < deadline, f"server not up:\n{self.server.log.read_text()[-4000:]}"
            time.sleep(0.5)

    def stop(self) -> None:
        self.server.stop()
