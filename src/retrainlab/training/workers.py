"""Worker processes: the one pool the seeds trained at once (`seeds_parallel`) and the
decision map's cells run in.

Each worker is started afresh (spawn: TensorFlow is not fork-safe) and set up before its
first task as a step's own process is: the console configured, TensorFlow loaded quietly,
Ctrl-C left to the parent (it reaches the whole process group; the parent stops the
workers). The parent hands a worker a task, a module-level function and its arguments,
and gets its return value or its exception. A worker may be replaced after a few tasks
(`tasks_per_worker`): what a task left in TensorFlow's process-wide registries goes with it.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import logging
import multiprocessing
import os
import signal
from collections.abc import Iterator
from concurrent.futures.process import BrokenProcessPool

from retrainlab.base import console
from retrainlab.base.errors import RetrainlabError


@contextlib.contextmanager
def pool(workers: int, tasks_per_worker: int | None = None) -> Iterator[concurrent.futures.ProcessPoolExecutor]:
    """`workers` processes; on an error, or Ctrl-C, in the parent they are stopped at once
    rather than waited for. A worker that dies (out of memory, say) is one RetrainlabError.

    With `tasks_per_worker`, submit a task only once the last one's result is in (as the
    decision map does): with tasks queued ahead, a worker that reaches its limit is not
    replaced and the pool hangs on Python 3.11 to 3.13 (CPython gh-115634)."""
    executor = concurrent.futures.ProcessPoolExecutor(
        workers, mp_context=multiprocessing.get_context("spawn"), initializer=_set_up,
        max_tasks_per_child=tasks_per_worker,
    )
    try:
        yield executor
    except BrokenProcessPool:
        _stop(executor)
        raise RetrainlabError("a worker process ended without an answer (out of memory?)") from None
    except BaseException:
        _stop(executor)
        raise
    executor.shutdown(wait=True)


def _stop(executor: concurrent.futures.ProcessPoolExecutor) -> None:
    for process in list((executor._processes or {}).values()):  # the pool has no way to stop a running task
        process.terminate()
    executor.shutdown(wait=False, cancel_futures=True)


def _set_up() -> None:
    """A worker's start, before its first task: as a step's process starts."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    console.configure()
    quiet_tensorflow()


def quiet_tensorflow() -> None:
    """TensorFlow loaded in a worker process, saying as little as in a step's process."""
    # At level 2 (what tests set), TensorFlow's C++ side logs an error line per training about
    # an attribute of the input pipeline's graph it ignores. A level set otherwise is kept.
    if os.environ.get(console.TF_LEVEL) == "2":
        os.environ[console.TF_LEVEL] = "3"
    console.load_tensorflow()
    # TensorFlow warns each time a new model's predict function is traced: in a worker every
    # training is a new model, so the warning says nothing.
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
