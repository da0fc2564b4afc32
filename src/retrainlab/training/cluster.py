"""A Ray cluster as the engine the fits run on (`engine.kind: ray`): one Ray Core task per fit.

The only module that imports Ray, an optional dependency (requirements-ray.lock). The driver
checks the cluster before anything is written: a store on this machine that a cluster of
other machines cannot write to, an address nothing answers at, a Ray that is not installed;
each is one line. Then `run` submits every task at once, spread over the nodes, each asking
for `engine.cpus_per_fit` CPUs and `engine.gpus_per_fit` GPUs, and hands each result to the
caller as it comes. A task whose worker died (out of memory, a node lost) is tried again up to
`engine.retries` times; one that raised is not: its error, one line naming the task, ends the
run, and the other tasks are cancelled, as they are on Ctrl-C.

A task runs in one of Ray's worker processes, which Ray keeps for later tasks: set up once, as
a step's own process is (retrainlab.training.workers), with TensorFlow held to the task's CPUs.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import logging
import os
import signal
import socket
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import psutil

from retrainlab.base import console
from retrainlab.base.errors import PipelineError, RetrainlabError, raise_if_stop_asked
from retrainlab.config.sections import EngineParams
from retrainlab.training import workers

log = logging.getLogger(__name__)

INSTALL = "pip install -r requirements-ray.lock (make setup-ray)"
PROBE_SECONDS = 5.0
CANCEL_SECONDS = 30.0
WAIT_SECONDS = 0.5
# About 15 MB a training stays in TensorFlow's registries for the life of a process.
TASKS_PER_WORKER = 16
# A store only this machine reaches: a file, or SQLite (MLFLOW_TRACKING_URI's or the embedded one).
LOCAL_STORES = ("sqlite:", "file:")
THREADS = "RETRAINLAB_FIT_THREADS"  # TensorFlow's threads in a task's worker process


@dataclasses.dataclass(frozen=True)
class Task:
    """One unit of work: `fn(*args)` in a worker process of the cluster. `name` is what its
    errors and the progress lines call it ("replay seed 2")."""

    name: str
    fn: Callable[..., Any]
    args: tuple


@dataclasses.dataclass(frozen=True)
class Done:
    """A task's value, the node it ran on and how long it took there."""

    value: Any
    node: str
    seconds: float


def head(address: str) -> tuple[str, int] | None:
    """The host and port of a cluster's head (None for `auto`: the one on this machine)."""
    if address == "auto":
        return None
    parts = urlsplit(address if "://" in address else f"ray://{address}")
    try:
        port = parts.port
    except ValueError:
        port = None
    if not parts.hostname or port is None:
        raise PipelineError(f"parameter 'engine.address' is {address!r}: give HOST:PORT, ray://HOST:PORT or auto")
    return parts.hostname, port


def is_this_machine(host: str) -> bool:
    """Whether `host` names this machine: loopback, its name, or one of its addresses."""
    if host in ("localhost", socket.gethostname(), socket.getfqdn()):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    own = {a.address.split("%")[0] for addrs in psutil.net_if_addrs().values() for a in addrs}
    return address.is_loopback or str(address) in own


def refuse_local_store(address: str, tracking_uri: str, shown_uri: str) -> None:
    """A cluster of other machines writes its runs to the tracking store: one on this
    machine's disk (SQLite, a folder) is out of their reach."""
    found = head(address)
    local_store = tracking_uri.startswith(LOCAL_STORES) or "://" not in tracking_uri
    if found and local_store and not is_this_machine(found[0]):
        raise PipelineError(
            f"engine.address {address!r} is a cluster of other machines, but the tracking store is {shown_uri} on "
            "this one, which they cannot write to: run a tracking server every node reaches (retrainlab server, "
            "README: Team mode) and set MLFLOW_TRACKING_URI to its address"
        )


def probe(address: str) -> None:
    """Whether something answers at the head's port, in PROBE_SECONDS at most (Ray itself
    waits a minute and more before it gives up)."""
    found = head(address)
    if found is None:
        return
    try:
        socket.create_connection(found, timeout=PROBE_SECONDS).close()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise PipelineError(
            f"engine.address {address!r}: no Ray cluster answers there ({reason.lower()}); start one "
            "(ray start --head) or correct engine.address"
        ) from None


def connect(engine: EngineParams, tracking_uri: str | None = None, shown_uri: str = "") -> None:
    """Join the cluster, once per process, after the checks that need no Ray; the tasks get
    the tracking store's address, if they log (and never an active run's id:
    mlflow/mlflow#15713)."""
    if tracking_uri is not None:
        refuse_local_store(engine.address, tracking_uri, shown_uri)
    probe(engine.address)
    ray = _ray()
    if ray.is_initialized():
        return
    env = {THREADS: str(max(1, int(engine.cpus_per_fit)))} | ({"MLFLOW_TRACKING_URI": tracking_uri} if tracking_uri else {})
    env |= {k: os.environ[k] for k in ("TF_CPP_MIN_LOG_LEVEL", "RETRAINLAB_VERBOSE") if k in os.environ}
    handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        ray.init(address=engine.address, runtime_env={"env_vars": env}, log_to_driver=False,
                 logging_level=logging.WARNING, configure_logging=False)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise PipelineError(f"engine.address {engine.address!r}: could not join the Ray cluster: {first}") from None
    finally:  # Ray puts its own SIGTERM handler in: a stop must close the runs as ours does
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    cpus = sum(n.get("Resources", {}).get("CPU", 0) for n in nodes)
    log.info(f"Ray cluster at {engine.address}: {len(nodes)} node(s), {cpus:g} CPUs")


def slots(engine: EngineParams) -> int:
    """How many tasks the cluster runs at once, as it is now."""
    return max(1, int(_ray().cluster_resources().get("CPU", 0) // engine.cpus_per_fit))


def put(value: Any) -> Any:
    """`value` in the cluster's object store, once; a task's argument that is the reference
    reaches the task as the value, fetched to its node."""
    return _ray().put(value)


def run(tasks: list[Task], engine: EngineParams, on_done: Callable[[Task, Done], None],
        tasks_per_worker: int = TASKS_PER_WORKER, what: str = "fits") -> None:
    """Every task at once, spread over the nodes; `on_done` gets each result as it comes (and
    says so: progress is the caller's).
    A worker process is replaced after `tasks_per_worker` tasks, as a local one is
    (retrainlab.training.workers): what a training leaves in TensorFlow's process-wide
    registries goes with it. On an error (a task's, `on_done`'s) or Ctrl-C, the tasks still
    running are cancelled (their worker processes stopped) before it is raised."""
    ray = _ray()
    remote = ray.remote(max_calls=tasks_per_worker)(_in_worker)
    asks = {"num_cpus": engine.cpus_per_fit, "num_gpus": engine.gpus_per_fit, "max_retries": engine.retries,
            "retry_exceptions": False, "scheduling_strategy": "SPREAD"}
    pending = {remote.options(name=task.name, **asks).remote(task.fn, *task.args): task for task in tasks}
    log.info(f"{len(tasks)} {what} submitted to the Ray cluster")
    try:
        while pending:
            # In short waits, so that a stop (Ctrl-C) is handled at once, not when a fit ends.
            try:
                finished, _ = ray.wait(list(pending), num_returns=1, timeout=WAIT_SECONDS)
            except SystemError:  # what Ray's wait makes of the Terminated a stop raised in it
                raise_if_stop_asked()
                raise
            if not finished:
                continue
            task = pending.pop(finished[0])
            on_done(task, _result(task, finished[0], engine))
    except BaseException:
        for ref in pending:
            ray.cancel(ref, force=True)
        if pending:  # until their workers are gone: none may write to its run after this
            ray.wait(list(pending), num_returns=len(pending), timeout=CANCEL_SECONDS)
            log.warning(f"{len(pending)} {what} still running on the cluster were cancelled")
        raise


def _result(task: Task, ref: Any, engine: EngineParams) -> Done:
    ray = _ray()
    exceptions = ray.exceptions
    try:
        return ray.get(ref)
    except exceptions.RayTaskError as exc:
        cause = exc.cause if isinstance(exc.cause, BaseException) else exc
        lines = str(cause).strip().splitlines() or [""]
        # Ours says it in its first line; another's, with its type, in its last.
        reason = lines[0] if isinstance(cause, RetrainlabError) else f"{type(cause).__name__}: {lines[-1]}"
        raise PipelineError(f"{task.name} failed on the cluster: {reason}") from None
    except (exceptions.WorkerCrashedError, exceptions.NodeDiedError, exceptions.OutOfMemoryError,
            exceptions.TaskCancelledError) as exc:
        tries = engine.retries + 1
        raise PipelineError(
            f"{task.name}: its worker ended without an answer {tries} time{'s' * (tries > 1)} "
            f"(out of memory, or its node lost: {type(exc).__name__}); engine.retries is {engine.retries}"
        ) from None


_set_up_done = False


def _in_worker(fn: Callable[..., Any], *args: Any) -> Done:
    """A task in a Ray worker process: set it up on its first task, then `fn(*args)`."""
    global _set_up_done
    if not _set_up_done:
        _set_up()
        _set_up_done = True
    os.environ.pop("MLFLOW_RUN_ID", None)  # a task's runs go where its arguments say, never under another's
    started = time.monotonic()
    value = fn(*args)
    return Done(value, _ray().get_runtime_context().get_node_id(), time.monotonic() - started)


def _ray():
    """Ray, where the Ray engine is used: an optional dependency."""
    try:
        # Not at the top: Ray is optional (requirements-ray.lock), and the local engine never needs it.
        import ray
    except ImportError:
        raise PipelineError(f"engine.kind is ray, but Ray is not installed here: {INSTALL}") from None
    return ray


def _set_up() -> None:
    console.configure()
    workers.quiet_tensorflow()
    # Loaded by quiet_tensorflow; its threads are set here, before the worker's first operation.
    import tensorflow as tf

    threads = int(os.environ.get(THREADS, "1"))
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
