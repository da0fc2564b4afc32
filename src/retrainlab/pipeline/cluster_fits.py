"""The comparison's fits as tasks on a Ray cluster (`engine.kind: ray`).

DVC runs one stage at a time, and each option is a stage: fanning out only a stage's own
seeds would keep at most that many fits at once. So the first option's stage to run trains
ahead: it submits its own fits and those of every other option whose stage will need them,
all at once, and waits for them all. The fits of the other options are held under
`.retrainlab/staging/fits/KEY` (the fit's key: retrainlab.pipeline.strategy_step.fit_key),
and when DVC runs their stages, each takes its own there instead of training. So `dvc repro`
stays the entry point and each option's outputs stay its stage's, while the cluster runs
every fit of the comparison at the same time. An option needs its fits unless its record's
seed runs carry the keys of this training; a held fit of any other key is thrown away. The
baseline's stage trains its own seeds only: the options start from its models.

Nothing a task needs lies on the driver's disk: the prepared splits and the baseline's models
go once to the cluster's object store, and each task checks every split against the digest
the driver read before it trains. A task logs its seed run to the tracking server, under its
option's run, or, trained ahead, under the pipeline execution's run until its option's stage
takes it and nests it under its own; its model goes to the server's artifact store, and only
figures and the run's id come back. The driver alone registers models, after every fit of the
stage is in.

A worker that died (out of memory, a node lost) leaves its seed run RUNNING: the next attempt
closes it as FAILED, saying why, and tags its own run with its attempt. A driver stopped
(Ctrl-C) or failed cancels the tasks still running and closes their runs as KILLED.
"""

from __future__ import annotations

import dataclasses
import io
import logging
import pickle
import shutil
import tarfile
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path

import mlflow
from mlflow.tracking import MlflowClient

from retrainlab.base import layout
from retrainlab.base.errors import PipelineError, RetrainlabError
from retrainlab.config import Params
from retrainlab.base.files import file_md5
from retrainlab.measure.record import load as load_record
from retrainlab.models.bundle import ModelBundle
from retrainlab.pipeline.fits import SeedJob, SeedResult, Step, code_digest, fit_key, seed_dir
from retrainlab.strategies import BASELINE
from retrainlab.tracking import store
from retrainlab.training import cluster

log = logging.getLogger(__name__)

HELD_DIR = layout.STAGING_DIR / "fits"
MODEL_ARTIFACT = "fit"  # where a task's seed run keeps its model
TAG_AHEAD = store.TAG_PREFIX + "trained_ahead_by"
Work = Callable[[SeedJob, int], SeedResult]


@dataclasses.dataclass(frozen=True)
class Fit:
    strategy: str
    seed: int
    key: str

    @property
    def name(self) -> str:
        return f"{self.strategy} seed {self.seed}"


def connect(params: Params, root: Path) -> None:
    """Join the cluster before the step writes anything (retrainlab.training.cluster)."""
    project = store.project_root(root)
    cluster.connect(params.engine, store.tracking_uri(project), store.shown_tracking_uri(project))


def train_on_cluster(step: Step, strategy_run: str, work: Work) -> list[SeedResult]:
    """The step's seeds, trained on the cluster with every fit of the other options that is
    due, or taken where an earlier stage trained them ahead. `work` trains one seed of a job
    in a process of its own (strategy_step.seed_in_worker)."""
    own = [Fit(step.name, seed, fit_key(step, step.name, seed)) for seed in step.params.seeds]
    ahead = [Fit(name, seed, fit_key(step, name, seed)) for name in _due(step) for seed in step.params.seeds]
    held = step.root / HELD_DIR
    _forget_others(held, {fit.key for fit in own + ahead})
    todo = [fit for fit in own + ahead if not (held / fit.key).is_dir()]
    if todo:
        if ahead:
            log.info(f"{step.name}: training ahead {', '.join(sorted({f.strategy for f in ahead}))}, whose stages "
                     "take their fits from this one")
        _train(step, strategy_run, todo, held, work)
    else:
        log.info(f"{step.name}: every fit was trained ahead by an earlier stage")
    return [_take(held / fit.key, strategy_run) for fit in own]


def _due(step: Step) -> list[str]:
    """The other options whose stage will want fits: those whose record was not made by the
    fits of this training (none for the baseline: the options start from its models)."""
    if step.name == BASELINE:
        return []
    return [name for name in step.params.strategies if name != step.name and not _made_by(step, name)]


def _made_by(step: Step, name: str) -> bool:
    if not (step.root / layout.record_path(name)).is_file():
        return False
    try:
        runs = load_record(step.root, name).mlflow
    except RetrainlabError:
        return False  # unreadable: its stage will write it again
    if runs is None or not all(str(seed) in runs.seed_run_ids for seed in step.params.seeds):
        return False
    client = MlflowClient()
    try:
        return all(client.get_run(runs.seed_run_ids[str(seed)]).data.tags.get(store.TAG_FIT)
                   == fit_key(step, name, seed) for seed in step.params.seeds)
    except mlflow.exceptions.MlflowException:
        return False  # logged to another store


def _forget_others(held: Path, keys: set[str]) -> None:
    """Held fits of any other training can never be taken."""
    if held.is_dir():
        for path in held.iterdir():
            if path.name not in keys:
                shutil.rmtree(path, ignore_errors=True)


def _train(step: Step, strategy_run: str, fits: list[Fit], held: Path, work: Work) -> None:
    submission = uuid.uuid4().hex[:12]
    snapshot = cluster.put(_snapshot(step))
    tasks = []
    for fit in fits:
        own = fit.strategy == step.name
        tags = {store.TAG_FIT: fit.key, store.TAG_SUBMISSION: submission}
        if not own:
            tags[TAG_AHEAD] = step.name
        job = SeedJob(fit.strategy, step.params, Path(), step.experiment_id, step.parent,
                      strategy_run if own else step.parent, step.digests, step.lineage | tags, Path())
        tasks.append(cluster.Task(fit.name, fit_in_task, (work, job, fit.seed, code_digest(), snapshot)))
    by_name, finished = {fit.name: fit for fit in fits}, []

    def hold(task: cluster.Task, done: cluster.Done) -> None:
        _hold(held, by_name[task.name], done)
        finished.append(task)
        log.info(f"  {task.name}: {done.seconds:.1f} s on node {done.node[:8]} ({len(finished)}/{len(fits)})")

    try:
        cluster.run(tasks, step.params.engine, hold)
    except BaseException:
        _close_unfinished(step.experiment_id, submission)
        raise


def _snapshot(step: Step) -> bytes:
    """What a fit reads from the project: the prepared data and, for an option, the
    baseline's record and models; as one tar archive."""
    paths = [layout.PREPARED_DIR]
    if step.name != BASELINE:
        paths += [layout.record_path(BASELINE), layout.model_dir(BASELINE)]
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w") as tar:
        for path in paths:
            tar.add(step.root / path, arcname=path.as_posix())
    return archive.getvalue()


def fit_in_task(work: Work, job: SeedJob, seed: int, code: str, snapshot: bytes) -> SeedResult:
    """One fit in a worker process of the cluster: the project's files unpacked and checked,
    an earlier attempt's run closed, the seed trained by `work` as a step's own worker
    trains it, its model logged to its run."""
    if code_digest() != code:
        raise PipelineError("this node's retrainlab is not the driver's: install the same version on every node")
    with tempfile.TemporaryDirectory(prefix="retrainlab-fit-") as directory:
        root = Path(directory)
        with tarfile.open(fileobj=io.BytesIO(snapshot)) as tar:
            tar.extractall(root, filter="data")
        for split, md5 in job.digests.items():
            if file_md5(root / layout.split_path(split)) != md5:
                raise PipelineError(f"{layout.split_path(split)}: what reached this node is not what the driver read "
                                    "(its digest differs)")
        attempt = _close_earlier_attempts(job)
        tags = job.lineage | ({store.TAG_ATTEMPT: str(attempt)} if attempt > 1 else {})
        job = dataclasses.replace(job, root=root, staging=root / "out", lineage=tags)
        result = work(job, seed)
        MlflowClient().log_artifacts(result.run_id, str(job.staging / seed_dir(seed)), MODEL_ARTIFACT)
        return result


def _close_earlier_attempts(job: SeedJob) -> int:
    """Close as FAILED the runs of this fit's earlier attempts that a dead worker left
    RUNNING; return this attempt's number."""
    client = MlflowClient()
    earlier = client.search_runs(
        [job.experiment_id],
        filter_string=f"tags.`{store.TAG_FIT}` = '{job.lineage[store.TAG_FIT]}' and "
                      f"tags.`{store.TAG_SUBMISSION}` = '{job.lineage[store.TAG_SUBMISSION]}'",
    )
    for run in earlier:
        if run.info.status == "RUNNING":
            client.set_tag(run.info.run_id, store.TAG_FAILURE,
                           "its worker ended without an answer (out of memory, or its node lost); tried again")
            client.set_terminated(run.info.run_id, "FAILED")
    return len(earlier) + 1


def _hold(held: Path, fit: Fit, done: cluster.Done) -> None:
    """A fit's result on the driver: its model from the artifact store and its figures, kept
    under its key (written whole, then renamed) until its option's stage takes them."""
    result: SeedResult = done.value
    MlflowClient().set_tag(result.run_id, store.TAG_NODE, done.node)
    held.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=held) as directory:
        partial = Path(directory) / fit.key
        partial.mkdir()
        mlflow.artifacts.download_artifacts(run_id=result.run_id, artifact_path=MODEL_ARTIFACT, dst_path=str(partial))
        (partial / "result.pickle").write_bytes(pickle.dumps(result))
        partial.rename(held / fit.key)


def _take(path: Path, strategy_run: str) -> SeedResult:
    """A held fit, its seed run nested under the option's run."""
    result: SeedResult = pickle.loads((path / "result.pickle").read_bytes())
    client = MlflowClient()
    if client.get_run(result.run_id).data.tags.get(store.PARENT_TAG) != strategy_run:
        client.set_tag(result.run_id, store.PARENT_TAG, strategy_run)
    bundle = ModelBundle.load(path / MODEL_ARTIFACT)
    shutil.rmtree(path)
    return dataclasses.replace(result, bundle=bundle)


def _close_unfinished(experiment_id: str, submission: str) -> None:
    """The runs of cancelled tasks, left RUNNING by the workers stopped under them: KILLED."""
    client = MlflowClient()
    running = client.search_runs(
        [experiment_id], filter_string=f"attributes.status = 'RUNNING' and tags.`{store.TAG_SUBMISSION}` = '{submission}'"
    )
    for run in running:
        client.set_tag(run.info.run_id, store.TAG_FAILURE, "cancelled: the stage that submitted it stopped")
        client.set_terminated(run.info.run_id, "KILLED")
