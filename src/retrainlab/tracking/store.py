"""MLflow at the edge: where the store is, the pipeline's parent run, strategy runs, models.

The tracking location is `MLFLOW_TRACKING_URI` when set, else an SQLite file in the
project root, by absolute path. The root of a DVC experiment's temporary workspace
(`<project>/.dvc/tmp/exps/...`) is the project it belongs to, so queued experiments log
to the same store as the workspace.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import logging
import os
import re
import socket
import sqlite3
import subprocess
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import mlflow
import mlflow.projects
import psutil
from mlflow.data.dataset_source_registry import resolve_dataset_source
from mlflow.data.meta_dataset import MetaDataset
from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import ExecutionException
from mlflow.models import ModelSignature
from mlflow.tracking import MlflowClient
from mlflow.types import ColSpec, Schema

import retrainlab
from retrainlab.base import console
from retrainlab.base.errors import PipelineError, RetrainlabError, Terminated, raise_if_stop_asked
from retrainlab.base.escape import Markdown, require_markdown
from retrainlab.base.files import file_md5
from retrainlab.data import NUMERIC
from retrainlab.measure.record import logged_record
from retrainlab.tracking.pyfunc_model import BUNDLE_ARTIFACT, MODEL_DIGEST_TAG, logged_model_sha256

STORE_FILE = "mlflow.db"
ARTIFACTS_DIR = "mlartifacts"
TAG_PREFIX = "retrainlab."
TAG_STRATEGY = TAG_PREFIX + "strategy"
TAG_ROLE = TAG_PREFIX + "role"
TAG_FAILURE = TAG_PREFIX + "failure"
TAG_ROUND = TAG_PREFIX + "round"
TAG_PARENT_VERSION = TAG_PREFIX + "parent_version"
PARENT_TAG = "mlflow.parentRunId"
# A seed run's fit (retrainlab.pipeline.fits.fit_key): the same key, the same training.
TAG_FIT = TAG_PREFIX + "fit"
# On a Ray cluster (retrainlab.pipeline.cluster_fits): the node a fit ran on, which attempt
# its run is, and the stage's submission its task belongs to.
TAG_NODE = TAG_PREFIX + "node"
TAG_ATTEMPT = TAG_PREFIX + "attempt"
TAG_SUBMISSION = TAG_PREFIX + "submission"
TAG_VERDICT = TAG_PREFIX + "verdict"
NOTE_TAG = "mlflow.note.content"  # a run's description in the MLflow UI (Markdown)
# The per-epoch curves, in one section of the MLflow UI's charts ("curves/loss", ...).
CURVE_PREFIX = "curves/"
# What the model needs at load time besides its bundled code (retrainlab itself).
MODEL_REQUIREMENTS = ("mlflow", "keras", "tensorflow-cpu|tensorflow", "pandas", "numpy", "pyyaml")
# The longest dataset schema MLflow stores (its JSON, in characters): some 10,000 columns.
DATASET_SCHEMA_CHARS = 1_048_575
# What MLflow's registry prints (not logs) on registering: the step's own line gives the version.
REGISTRY_NOTES = re.compile(r"^(Successfully registered model|Registered model .* already exists|Created version )")


def data_tag(split: str) -> str:
    """The tag of a step's run that holds the digest of a prepared split it read: what
    the registry knows of the rows that trained a version (retrainlab.pipeline.lineage)."""
    return f"{TAG_PREFIX}data.{split}.md5"


def workspace_root(start: Path | None = None) -> Path:
    """The DVC repository holding `start` (the working directory by default)."""
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if (candidate / ".dvc").is_dir():
            return candidate
    return here


def project_root(start: Path | None = None) -> Path:
    """Where the embedded store lives: the workspace, or the project a DVC temp workspace is in."""
    workspace = workspace_root(start)
    parts = workspace.parts
    for i in range(len(parts) - 2):
        if parts[i : i + 3] == (".dvc", "tmp", "exps"):
            return Path(*parts[:i])
    return workspace


def tracking_uri(root: Path | None = None) -> str:
    # SQLite waits up to a minute for a lock instead of failing with "database is locked"
    # when parallel steps write at once.
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{(root or project_root()) / STORE_FILE}?timeout=60"


def store_file(root: Path | None = None) -> Path | None:
    """The SQLite file the tracking store is (the embedded store, or MLFLOW_TRACKING_URI's
    sqlite:///...); None for a server or another database."""
    uri = tracking_uri(root)
    return Path(uri.removeprefix("sqlite:///").split("?")[0]) if uri.startswith("sqlite:///") else None


def shown_tracking_uri(root: Path | None = None) -> str:
    """The tracking URI as messages show it: an SQLite store by its file, a server's password hidden."""
    path = store_file(root)
    return str(path) if path else re.sub(r"://([^:/@]+):[^@]*@", r"://\1:***@", tracking_uri(root))


def check_store_kept(root: Path) -> None:
    """Where the project's records (`root`'s records/*.json) name runs, the SQLite store they
    were logged to must still be there: a command that reads it would connect, SQLite would
    make an empty file in its place, and its empty registry would then say 'not registered'
    or 'promote a version first' of versions the records and the report name. One line
    naming the file instead, and nothing made."""
    path = store_file(root)
    if path is None or path.is_file():
        return
    record = logged_record(root)
    if record is not None:
        raise PipelineError(
            f"{path}: the MLflow store is missing, but {record.as_posix()} names runs logged to it; restore it from "
            "a backup or set MLFLOW_TRACKING_URI to the store they were logged to"
        )


def store_exists(root: Path) -> bool:
    """Whether there is a store to read, for a command that only reads it (no empty one is
    made to be read): False for a project that has logged nothing yet; one whose store is
    gone is a one-line error (check_store_kept); a server's store is taken as there."""
    check_store_kept(root)
    path = store_file(root)
    return path is None or path.is_file()


def check_store_writable(root: Path) -> None:
    """The embedded SQLite store, and the folder SQLite keeps its journal in, must be writable:
    found here, this is one line, where SQLite's own complaint is a long traceback mid-step."""
    path = root / STORE_FILE
    for target in (path, root) if path.exists() else (root,):
        if not os.access(target, os.W_OK):
            raise PipelineError(
                f"{target}: the MLflow store cannot be written here (read-only); make it writable "
                "or set MLFLOW_TRACKING_URI to a store you can write"
            )


def uses_embedded_store() -> bool:
    return not os.environ.get("MLFLOW_TRACKING_URI")


def configure(experiment: str, root: Path | None = None) -> str:
    """Point MLflow at the store and return the experiment's id, creating it if needed.

    With the embedded store, artifacts go to `<project>/mlartifacts/`, by absolute path, so
    they do not land in whatever directory the step happens to run in.
    """
    root = root or project_root()
    embedded = uses_embedded_store()  # before set_tracking_uri, which exports the variable
    if embedded:
        check_store_writable(root)
    mlflow.set_tracking_uri(tracking_uri(root))
    found = mlflow.get_experiment_by_name(experiment)
    if found is not None:
        if embedded:
            follow_moved_store(root, found.artifact_location)
        return found.experiment_id
    location = None
    if embedded:
        location = (root / ARTIFACTS_DIR / re.sub(r"[^\w.-]", "_", experiment)).as_uri()
    try:
        return mlflow.create_experiment(experiment, artifact_location=location)
    except mlflow.exceptions.MlflowException:
        # Another step created it between our look-up and our create.
        return mlflow.get_experiment_by_name(experiment).experiment_id


# Where the embedded store writes absolute artifact locations (MLflow resolves a relative one
# when it creates an experiment): every table that holds one.
_LOCATION_COLUMNS = (("experiments", "artifact_location"), ("runs", "artifact_uri"),
                     ("logged_models", "artifact_location"), ("model_versions", "storage_location"))


def follow_moved_store(root: Path, location: str) -> None:
    """A project copied or moved with its store still points at the old tree's mlartifacts/:
    its runs would read and write another project's artifacts. Where mlartifacts/ came along,
    rebase every stored location onto this tree; where it did not, say so and stop."""
    here = (root / ARTIFACTS_DIR).resolve()
    path = Path(unquote(urlparse(location).path)) if location.startswith("file:") else Path(location)
    if ARTIFACTS_DIR not in path.parts:
        return  # a location the user chose: theirs to keep
    old = Path(*path.parts[: len(path.parts) - path.parts[::-1].index(ARTIFACTS_DIR)])
    if old == here:
        return
    if not here.is_dir():
        raise PipelineError(
            f"{root / STORE_FILE}: its artifacts are in {old}, another directory tree (the project was moved or "
            f"copied without {ARTIFACTS_DIR}/); copy {ARTIFACTS_DIR}/ along, or set MLFLOW_TRACKING_URI"
        )
    with contextlib.closing(sqlite3.connect(root / STORE_FILE, timeout=60)) as db, db:
        for table, column in _LOCATION_COLUMNS:
            for before, after in ((old.as_uri(), here.as_uri()), (str(old), str(here))):
                db.execute(f"UPDATE {table} SET {column} = ? || substr({column}, ?) WHERE {column} LIKE ? ESCAPE '\\'",
                           (after, len(before) + 1, _like_prefix(before)))
    # Handled, not a problem: said on stdout, where a stage's progress goes.
    logging.getLogger(__name__).info("%s: the project moved from %s; its artifact locations now point into %s",
                                     root / STORE_FILE, old.parent, here)


def _like_prefix(text: str) -> str:
    return re.sub(r"([%_\\])", r"\\\1", text) + "/%"


def start_parent_run(experiment_id: str, tags: dict[str, str], round_: int = 1,
                     params: dict[str, Any] | None = None) -> str:
    """A parent run for one pipeline execution, with its params; strategy runs nest under it.

    It is named after the DVC experiment when `dvc exp run` runs the pipeline (DVC sets
    DVC_EXP_NAME for its stages), else after its round and start time."""
    client = MlflowClient()
    experiment = os.environ.get("DVC_EXP_NAME")
    name = experiment or f"round-{round_}-pipeline-" + time.strftime("%Y%m%d-%H%M%S")
    tags = {TAG_ROLE: "pipeline", **tags} | ({TAG_PREFIX + "dvc_experiment": experiment} if experiment else {})
    run = client.create_run(experiment_id, run_name=name, tags=tags)
    if params:
        client.log_batch(run.info.run_id, params=[Param(k, _param_text(v)) for k, v in params.items()])
    client.set_terminated(run.info.run_id, "FINISHED")
    return run.info.run_id


def describe_version(name: str, version: str, text: Markdown) -> None:
    """Set a registered version's description: Markdown, which the UI renders."""
    MlflowClient().update_model_version(name, version, description=require_markdown(text))


@contextlib.contextmanager
def step_run(
    experiment_id: str, name: str, parent_run_id: str | None, tags: dict[str, str], system_metrics: bool
) -> Iterator[mlflow.ActiveRun]:
    """The MLflow run of one step.

    Under `mlflow run` (MLFLOW_RUN_ID set) the launcher's run is used, so MLproject's entry
    and our run are one; otherwise a run is started in `experiment_id`. Runs of this host
    left RUNNING by a process that no longer exists (killed with SIGKILL) are closed first.
    """
    close_stale_runs(experiment_id)
    if system_metrics:
        mlflow.set_system_metrics_sampling_interval(2)
    if os.environ.get("MLFLOW_RUN_ID"):
        active = mlflow.start_run(log_system_metrics=system_metrics)
    else:
        active = mlflow.start_run(experiment_id=experiment_id, run_name=name, log_system_metrics=system_metrics)
    with _killed_on_terminate(active) as run:
        all_tags = {"mlflow.runName": name, TAG_ROLE: "step", **_owner_tags(), **tags}
        if not os.environ.get("MLFLOW_RUN_ID"):
            all_tags |= project_tags(name)
        if parent_run_id:
            all_tags[PARENT_TAG] = parent_run_id
        mlflow.set_tags(all_tags)
        yield run
        mlflow.flush_async_logging()
    if parent_run_id:
        _supersede_siblings(run.info.run_id, parent_run_id, tags.get(TAG_STRATEGY))


def project_tags(entry_point: str) -> dict[str, str]:
    """The tags `mlflow run` gives a run of an MLproject entry point, for a step DVC ran
    directly: the UI then shows it as a project run, with its source and git commit."""
    root = workspace_root()
    tags = {"mlflow.source.type": "PROJECT", "mlflow.source.name": str(root),
            "mlflow.project.entryPoint": entry_point, "mlflow.project.env": "local",
            "mlflow.project.backend": "local"}
    try:
        found = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True)
    except OSError:  # no git on this machine
        return tags
    if found.returncode == 0:
        tags["mlflow.source.git.commit"] = found.stdout.strip()
    return tags


@contextlib.contextmanager
def seed_run(strategy: str, seed: int, extra_tags: dict[str, str] | None = None,
             under: tuple[str, str] | None = None) -> Iterator[mlflow.ActiveRun]:
    """A run for one seed, nested under the active strategy run, or under `under`
    (experiment id, strategy run id): a seed trained in a worker process of its own."""
    tags = {TAG_STRATEGY: strategy, TAG_ROLE: "seed", TAG_PREFIX + "seed": str(seed), **_owner_tags()}
    tags |= extra_tags or {}
    if under is None:
        experiment_id = mlflow.active_run().info.experiment_id  # not the default experiment
        active = mlflow.start_run(experiment_id=experiment_id, run_name=f"{strategy} seed {seed}", nested=True,
                                  tags=tags)
    else:
        experiment_id, parent = under
        active = mlflow.start_run(experiment_id=experiment_id, run_name=f"{strategy} seed {seed}",
                                  tags=tags | {PARENT_TAG: parent})
    with _killed_on_terminate(active) as run:
        mlflow.log_param("seed", seed)
        yield run
        mlflow.flush_async_logging()


@contextlib.contextmanager
def _killed_on_terminate(active: mlflow.ActiveRun) -> Iterator[mlflow.ActiveRun]:
    """Close the run as KILLED on SIGTERM/SIGINT; on one of our errors, as FAILED (MLflow's
    own doing) with the one-line reason as a tag, so that the UI says why. A run whose work
    ended after a stop was asked for is KILLED too: a library swallowed the stop
    (errors.raise_if_stop_asked), and the work it should have cut short is not kept."""
    try:
        with active as run:
            try:
                yield run
            except RetrainlabError as exc:
                mlflow.set_tag(TAG_FAILURE, str(exc)[:5000])
                raise
            raise_if_stop_asked()
    except Terminated:
        MlflowClient().set_terminated(active.info.run_id, "KILLED")
        raise


def _owner_tags() -> dict[str, str]:
    return {TAG_PREFIX + "host": socket.gethostname(), TAG_PREFIX + "pid": str(os.getpid())}


def close_stale_runs(experiment_id: str) -> list[str]:
    """Mark KILLED the RUNNING runs of this host whose process is gone; return their ids."""
    client = MlflowClient()
    running = client.search_runs(
        [experiment_id],
        filter_string=f"attributes.status = 'RUNNING' and tags.`{TAG_PREFIX}host` = '{socket.gethostname()}'",
    )
    closed = []
    for run in running:
        pid = int(run.data.tags.get(TAG_PREFIX + "pid", "0"))
        try:
            alive = psutil.Process(pid).create_time() <= run.info.start_time / 1000 + 1
        except (psutil.NoSuchProcess, ValueError):
            alive = False
        if not alive and pid != os.getpid():
            client.set_tag(run.info.run_id, TAG_PREFIX + "closed_as_stale", f"process {pid} gone")
            client.set_terminated(run.info.run_id, "KILLED")
            closed.append(run.info.run_id)
    return closed


def log_curves(curves: dict[str, list[float]], prefix: str) -> None:
    """Per-epoch curves, step = epoch (from 1), in one batch."""
    now = int(time.time() * 1000)
    metrics = [
        Metric(prefix + name, float(value), now, epoch)
        for name, values in curves.items()
        for epoch, value in enumerate(values, start=1)
    ]
    MlflowClient().log_batch(mlflow.active_run().info.run_id, metrics=metrics)


def log_to_run(
    run_id: str, metrics: dict[str, float], tags: dict[str, str], files: list[Path], artifact_dir: str
) -> None:
    """Log to a run other than the active one (the pipeline's parent run)."""
    client = MlflowClient()
    now = int(time.time() * 1000)
    client.log_batch(
        run_id,
        metrics=[Metric(k, v, now, 0) for k, v in metrics.items()],
        tags=[RunTag(k, require_markdown(v) if k == NOTE_TAG else v) for k, v in tags.items()],
    )
    for path in files:
        client.log_artifact(run_id, str(path), artifact_path=artifact_dir)


def _supersede_siblings(run_id: str, parent_run_id: str, strategy: str | None) -> None:
    """Mark earlier runs of the same strategy under this parent as replaced by this one."""
    if not strategy:
        return
    client = MlflowClient()
    run = client.get_run(run_id)
    siblings = client.search_runs(
        [run.info.experiment_id],
        filter_string=f"tags.`{PARENT_TAG}` = '{parent_run_id}' and tags.`{TAG_STRATEGY}` = '{strategy}'",
    )
    for sibling in siblings:
        if sibling.info.run_id != run_id and TAG_PREFIX + "superseded_by" not in sibling.data.tags:
            client.set_tag(sibling.info.run_id, TAG_PREFIX + "superseded_by", run_id)
    client.set_terminated(parent_run_id, "FINISHED")  # the parent's end time follows its children


def log_params(flat: dict[str, Any]) -> None:
    """Log params, skipping keys the launcher (`mlflow run`) already logged for its entry."""
    run = mlflow.active_run()
    logged = MlflowClient().get_run(run.info.run_id).data.params
    mlflow.log_params({k: _param_text(v) for k, v in flat.items() if k not in logged})


def _param_text(value: Any) -> str:
    return "null" if value is None else str(value)


def log_dataset(data, split: str, context: str, md5: str | None = None) -> str:
    """Log a prepared split as a run input: its file, schema and DVC md5, not its rows
    (a split may be far larger than memory); return the md5. Give `md5` where it is known
    already, so that a large file is not hashed again."""
    path = data.path(split)
    md5 = md5 or file_md5(path)
    schema = Schema([ColSpec("double" if f.kind == NUMERIC else "string", f.name) for f in data.features])
    if len(schema.to_json()) > DATASET_SCHEMA_CHARS:
        schema = None  # too wide for MLflow's store: the columns are in summary.json
    with warnings.catch_warnings():
        # MLflow hints about ambiguous local sources; a prepared split is a local file.
        warnings.simplefilter("ignore", UserWarning)
        source = resolve_dataset_source(path.as_posix())
    dataset = MetaDataset(source, name=split, digest=md5, schema=schema)
    tags = {"rows": str(data.rows(split)), "columns": str(len(data.features)), "label": data.label}
    mlflow.log_input(dataset, context=context, tags=tags)
    return md5


def signature(features, label_column: str, labels: list, regression: bool = False) -> ModelSignature:
    """Raw feature columns in (numbers as double, categories as string), one label column out
    (a regressor's: its number, a double)."""
    inputs = Schema([ColSpec("double" if f.kind == NUMERIC else "string", f.name) for f in features])
    label_type = (
        "double" if regression
        else "long" if all(isinstance(v, int) for v in labels)
        else "double" if all(isinstance(v, (int, float)) for v in labels)
        else "string"
    )
    return ModelSignature(inputs=inputs, outputs=Schema([ColSpec(label_type, label_column)]))


def pinned_requirements() -> list[str]:
    """The model's pip requirements, pinned to what is installed here."""
    pins = []
    for choices in MODEL_REQUIREMENTS:
        for name in choices.split("|"):
            try:
                pins.append(f"{name}=={importlib.metadata.version(name)}")
                break
            except importlib.metadata.PackageNotFoundError:
                continue
    return pins


def log_and_register_model(
    strategy: str, bundle_dir: Path, model_signature: ModelSignature, example, registered_model: str,
    tags: dict[str, str], description: Markdown | None = None,
) -> int:
    """Log the bundle as a pyfunc model that predicts original labels, named after its strategy
    (so the experiment's Models tab lines the options up by name); register it with the
    digest of its files as stored (the registry vouches for them); return the version."""
    package = Path(retrainlab.__file__).parent
    info = mlflow.pyfunc.log_model(
        name=strategy,
        python_model=str(Path(__file__).with_name("model_code.py")),
        artifacts={BUNDLE_ARTIFACT: str(bundle_dir)},
        code_paths=[str(package)],
        signature=model_signature,
        input_example=example,
        pip_requirements=pinned_requirements(),
    )
    digest = logged_model_sha256(mlflow.get_logged_model(info.model_id).artifact_location)
    with console.dropping(REGISTRY_NOTES):
        version = mlflow.register_model(info.model_uri, registered_model, tags=tags | {MODEL_DIGEST_TAG: digest})
    if description:
        describe_version(registered_model, version.version, description)
    return int(version.version)


def launch(entry: str, entry_params: dict[str, str], params) -> str:
    """`mlflow run <workspace> -e ENTRY --env-manager local`, logging to this project's store.

    MLproject stays the one definition of the entry points; this only fixes where the run
    goes (the project's store and the experiment named in params), which plain `mlflow run`
    would take from the working directory. Returns the run id.
    """
    root = project_root()
    experiment_id = configure(params.tracking.experiment, root)
    os.environ["MLFLOW_TRACKING_URI"] = mlflow.get_tracking_uri()
    try:
        submitted = mlflow.projects.run(
            str(workspace_root()),
            entry_point=entry,
            parameters=entry_params,
            env_manager="local",
            experiment_id=experiment_id,
            run_name=entry,
        )
    except ExecutionException as exc:
        raise PipelineError(f"MLproject entry '{entry}' failed: {exc}".splitlines()[0]) from None
    except Terminated as stop:
        _stop_entry(stop.signum)
        raise
    return submitted.run_id


ENTRY_STOP_SECONDS = 60  # for the step to close its runs as KILLED before it is killed


def _stop_entry(signum: int) -> None:
    """The runner was stopped while its entry point runs: the step it started gets the same
    signal, and the runner returns only once the step has ended. Without this a signal to
    the runner alone (a supervisor's `kill PID`) left the step training to the end, FINISHED,
    after its launcher had said it stopped. A signal to the whole group (Ctrl-C) reached the
    step already; it ignores the repeat (cli.main), and raises the first again itself where a
    library swallowed it (errors.raise_if_stop_asked). A step still running after
    ENTRY_STOP_SECONDS is killed; the next start closes its runs as stale."""
    steps = psutil.Process().children()
    for step in steps:
        with contextlib.suppress(psutil.NoSuchProcess):
            step.send_signal(signum)
    _, alive = psutil.wait_procs(steps, timeout=ENTRY_STOP_SECONDS)
    for step in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            step.kill()
