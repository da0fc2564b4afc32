"""Team mode: an MLflow tracking server backed by PostgreSQL that serves the artifacts itself.

`retrainlab server` checks the port and the database, then runs `mlflow server` with
`--serve-artifacts`, bound to 127.0.0.1 unless told otherwise. Clients then log runs,
register models and fetch artifacts through the server alone
(`MLFLOW_TRACKING_URI=http://HOST:PORT`); only the server touches the artifact store.
Without a database URI it starts a throwaway PostgreSQL cluster of its own in
`.retrainlab/postgres/`, reachable through a unix socket only, to try the mode on one machine.

`retrainlab ui` runs MLflow's UI the same way on the project's own store, for one user, and
quietly: the web server's line per request and MLflow's start-up notes are left out unless
`--verbose` (or RETRAINLAB_VERBOSE=1) asks for them.
"""

from __future__ import annotations

import dataclasses
import os
import pwd
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from retrainlab.base import console, layout
from retrainlab.base.errors import RetrainlabError, Terminated

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 5000
ARTIFACTS_DIR = "mlartifacts-server"
LOCAL_CLUSTER_DIR = layout.WORK_DIR / "postgres"
LOCAL_DATABASE = "mlflow"
SUPERUSER = "postgres"
START_SECONDS = 120
# A quiet `retrainlab ui`: uvicorn logs at WARNING, not a line per HTTP request (every file a
# page of the UI loads is one); a deprecation that Starlette warns of inside MLflow's own code
# is left out, and so is MLflow's note on its security defaults, which it prints whatever the
# options (and whose advice, --host 0.0.0.0, is not retrainlab ui's).
QUIET_UVICORN = "--log-level warning"
QUIET_WARNINGS = "ignore:starlette.middleware.wsgi is deprecated:UserWarning"
UI_NOTICES = re.compile(r"\[MLflow\] Security middleware enabled with default settings")


def postgres_bin_dir() -> Path:
    """Where PostgreSQL's programs are: pg_ctl's folder on PATH, else Debian's /usr/lib/postgresql/<newest>/bin."""
    found = shutil.which("pg_ctl")
    on_path = [Path(found).resolve().parent] if found else []
    debian = sorted(
        (p.parent for p in Path("/usr/lib/postgresql").glob("*/bin/pg_ctl")),
        key=lambda bin_dir: [int(part) for part in bin_dir.parent.name.split(".") if part.isdigit()],
        reverse=True,
    )
    for bin_dir in on_path + debian:
        if all((bin_dir / program).is_file() for program in ("initdb", "pg_ctl", "psql")):
            return bin_dir
    raise RetrainlabError(
        "PostgreSQL is not installed (no initdb, pg_ctl and psql on PATH or in /usr/lib/postgresql/*/bin): "
        "install it (Debian: apt-get install postgresql) or give the URI of a running one"
    )


@dataclasses.dataclass(frozen=True)
class Cluster:
    """A PostgreSQL cluster of our own in `directory`: `data/`, its unix socket in `run/`, `server.log`.

    It listens on 127.0.0.1:`port` when `tcp`, else on the socket only. Local (socket)
    connections are trusted and the socket is its owner's alone; TCP ones need a password.
    As root it runs as the `postgres` user, since PostgreSQL refuses to run as root.
    """

    directory: Path
    port: int = 5432
    tcp: bool = False

    @property
    def socket_dir(self) -> Path:
        return self.directory / "run"

    def start(self) -> None:
        bin_dir = postgres_bin_dir()
        data = self.directory / "data"
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        _give_to_postgres(self.directory, self.socket_dir)
        if not (data / "PG_VERSION").is_file():
            self._run(bin_dir / "initdb", "-D", data, "-U", SUPERUSER, "-E", "UTF8",
                      "--auth-local=trust", "--auth-host=scram-sha-256")
        listen = "127.0.0.1" if self.tcp else "''"
        options = (f"-c listen_addresses={listen} -p {self.port} -k {shlex.quote(str(self.socket_dir))} "
                   "-c unix_socket_permissions=0700")
        log = self.directory / "server.log"
        try:
            self._run(bin_dir / "pg_ctl", "start", "-w", "-t", str(START_SECONDS), "-D", data, "-l", log, "-o", options)
        except RetrainlabError:
            last = log.read_text(errors="replace").strip().splitlines()[-1:] if log.is_file() else []
            raise RetrainlabError(f"PostgreSQL did not start in {self.directory}: {' '.join(last) or 'see server.log'}") from None

    def stop(self) -> None:
        self._run(postgres_bin_dir() / "pg_ctl", "stop", "-D", self.directory / "data", "-m", "fast", "-w")

    def sql(self, script: str) -> None:
        """Run psql's `script` as the superuser, through the socket; stop at the first error."""
        self._run(postgres_bin_dir() / "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", self.socket_dir,
                  "-p", str(self.port), "-U", SUPERUSER, "-d", "postgres", stdin=script)

    def create_database(self, name: str) -> None:
        """Create database `name`, owned by the superuser, unless it exists."""
        self.sql(f"SELECT 'CREATE DATABASE \"{name}\"' WHERE NOT EXISTS "
                 f"(SELECT FROM pg_database WHERE datname = '{name}')\\gexec\n")

    def socket_uri(self, database: str) -> str:
        return f"postgresql://{SUPERUSER}@/{database}?host={self.socket_dir}&port={self.port}"

    def _run(self, *command, stdin: str | None = None) -> None:
        argv = [*_as_postgres(), *map(str, command)]
        done = subprocess.run(argv, input=stdin, capture_output=True, text=True, cwd="/")
        if done.returncode != 0:
            said = (done.stderr.strip() or done.stdout.strip() or f"exit status {done.returncode}").splitlines()[0]
            raise RetrainlabError(f"{Path(argv[len(_as_postgres())]).name} failed: {said}")


def _as_postgres() -> list[str]:
    return ["runuser", "-u", SUPERUSER, "--"] if os.geteuid() == 0 else []


def _give_to_postgres(*paths: Path) -> None:
    if os.geteuid() != 0:
        return
    try:
        account = pwd.getpwnam(SUPERUSER)
    except KeyError:
        raise RetrainlabError(
            f"PostgreSQL refuses to run as root, and there is no '{SUPERUSER}' user to run it as: "
            "install Debian's postgresql package, or run this as another user"
        ) from None
    for path in paths:
        os.chown(path, account.pw_uid, account.pw_gid)


def check_port_free(host: str, port: int) -> None:
    family, kind, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    with socket.socket(family, kind) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            raise RetrainlabError(
                f"port {port} on {host} is not free ({exc.strerror}): stop what listens there or pass --port N"
            ) from None


def check_database(uri: str) -> str:
    """Connect once to the PostgreSQL database at `uri`; return the URI with its password hidden."""
    # start-up: the CLI reads this module's defaults to build its parser
    import sqlalchemy

    try:
        url = sqlalchemy.engine.make_url(uri)
    except sqlalchemy.exc.ArgumentError:
        url = None
    if url is None or url.get_backend_name() != "postgresql":
        raise RetrainlabError(
            "--backend-store-uri must be a PostgreSQL URI, postgresql://USER:PASSWORD@HOST:PORT/DATABASE"
        )
    shown = url.render_as_string(hide_password=True)
    engine = None
    try:
        engine = sqlalchemy.create_engine(url, connect_args={"connect_timeout": 10})
        with engine.connect():
            pass
    except ModuleNotFoundError as exc:
        raise RetrainlabError(f"the PostgreSQL driver '{exc.name}' is not installed: run make setup") from None
    except sqlalchemy.exc.SQLAlchemyError as exc:
        said = (str(getattr(exc, "orig", None) or exc).strip().splitlines() or ["no answer"])[0]
        raise RetrainlabError(
            f"cannot connect to {shown}: {said}; check that PostgreSQL runs there and that the user "
            "and database exist (README: Team mode)"
        ) from None
    finally:
        if engine is not None:
            engine.dispose()
    return shown


def check_binding(host: str, allow_remote: bool, mlflow_args: list[str]) -> None:
    """The server has no authentication: it binds loopback unless --allow-remote says otherwise,
    and the address is retrainlab's --host alone, so that nothing after -- can widen it."""
    given = [a for a in mlflow_args if a in ("-h", "--host") or a.startswith("--host=")]
    if given:
        raise RetrainlabError(
            f"'{given[0]}' after --: give the address as retrainlab server's own --host "
            "(binding beyond 127.0.0.1 also needs --allow-remote)"
        )
    loopback = host == "localhost" or host.startswith("127.") or host == "::1"
    if not loopback and not allow_remote:
        raise RetrainlabError(
            f"--host {host} would expose a server without authentication beyond this machine; put "
            "authentication and TLS in front of it (docs/RELIABILITY.md: trust model) and pass --allow-remote"
        )
    if not loopback:
        print(f"retrainlab: warning: binding {host}: anyone who reaches this port can read and write every "
              "run and model, unless a proxy in front of it authenticates them", file=sys.stderr)


def serve(
    backend_store_uri: str | None, artifacts_destination: str | None, host: str, port: int,
    mlflow_args: list[str], root: Path, allow_remote: bool = False,
) -> None:
    """Run `mlflow server` in the foreground until it exits or this process is stopped."""
    check_binding(host, allow_remote, mlflow_args)
    check_port_free(host, port)
    cluster = None
    if not backend_store_uri:
        cluster = Cluster(root / LOCAL_CLUSTER_DIR)
        print(f"retrainlab: no --backend-store-uri: starting a throwaway PostgreSQL in {LOCAL_CLUSTER_DIR}/",
              file=sys.stderr)
        cluster.start()
    try:
        if cluster is not None:
            cluster.create_database(LOCAL_DATABASE)
            backend_store_uri = cluster.socket_uri(LOCAL_DATABASE)
        shown = check_database(backend_store_uri)
        destination = artifacts_destination or str(root / ARTIFACTS_DIR)
        command = [
            sys.executable, "-m", "mlflow", "server", "--serve-artifacts", "--artifacts-destination", destination,
            "--host", host, "--port", str(port), *mlflow_args,
        ]
        # The URI goes through the environment, so that its password is not on a command line.
        env = os.environ | {"MLFLOW_BACKEND_STORE_URI": backend_store_uri}
        _run_server(command, env, host, port, lambda url: print(
            f"retrainlab: MLflow tracking server on {url} (store {shown}, artifacts {destination}); "
            f"clients: export MLFLOW_TRACKING_URI={url}", file=sys.stderr, flush=True))
    finally:
        if cluster is not None:
            cluster.stop()


# MLflow's server starts a job runner of its own (huey consumers: six processes of about 250 MB
# on 2 cores) for jobs retrainlab never submits; left off unless the user asks for it.
NO_JOBS = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}


def _run_server(command: list[str], env: dict[str, str], host: str, port: int,
                announce: Callable[[str], None], dropped: re.Pattern | None = None) -> None:
    """Run `mlflow server` or `mlflow ui` until it exits or this process is stopped; once it
    answers, `announce` its URL. `dropped`: the lines of its stderr to leave out."""
    env = NO_JOBS | env
    # Its own session, so that stopping it reaches the web server's worker processes too.
    server = subprocess.Popen(command, env=env, start_new_session=True, text=True, errors="replace",
                              stderr=None if dropped is None else subprocess.PIPE)
    relay = None
    if dropped is not None:
        relay = threading.Thread(target=_relay, args=(server.stderr, dropped), daemon=True)
        relay.start()
    try:
        announce(_wait_until_up(server, host, port))
        server.wait()
    except (Terminated, KeyboardInterrupt):
        return  # asked to stop: a clean exit, whatever status the stopped server reports
    finally:
        _stop(server)
        if relay is not None:
            relay.join(timeout=5)  # its last lines, before what this process says next
    if server.returncode != 0:
        raise RetrainlabError(f"mlflow server exited with status {server.returncode}; its output is above")


def _relay(stream, dropped: re.Pattern) -> None:
    """The server's stderr as it comes, less the lines `dropped` finds."""
    for line in stream:
        if not dropped.search(line):
            sys.stderr.write(line)
            sys.stderr.flush()


def _wait_until_up(server: subprocess.Popen, host: str, port: int) -> str:
    """Wait for its health check to pass; return the URL clients use."""
    bracketed = f"[{host}]" if ":" in host else host
    url = f"http://{socket.gethostname() if host in ('0.0.0.0', '::') else bracketed}:{port}"
    local = {"0.0.0.0": "127.0.0.1", "::": "[::1]"}.get(host, bracketed)
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RetrainlabError(f"mlflow server exited with status {server.returncode} before answering; "
                                  "its output is above")
        try:
            with urllib.request.urlopen(f"http://{local}:{port}/health", timeout=2):
                return url
        except (urllib.error.URLError, OSError):
            time.sleep(0.5)
    raise RetrainlabError(f"mlflow server did not answer on {url} within {START_SECONDS} s")


def _stop(server: subprocess.Popen) -> None:
    if server.poll() is None:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


# --- retrainlab ui: MLflow's UI on the project's own store ---------------------------------


def experiment_link(base_url: str, experiment_id: str) -> str:
    """The experiment's runs table in the UI's model-training view: MLflow 3's UI otherwise
    opens an experiment on its GenAI overview (checked with MLflow 3.17's UI in Chromium)."""
    return f"{base_url.rstrip('/')}/#/experiments/{experiment_id}/runs?workflowType=machine_learning"


def parse_port(text: str) -> int:
    if not (text.isascii() and text.isdigit() and 1 <= int(text) <= 65535):
        raise RetrainlabError(f"--port {text!r}: give a port number from 1 to 65535")
    return int(text)


def ui(experiment: str, port_text: str, print_only: bool, root: Path) -> None:
    """Print the link to the experiment's runs and, unless `print_only`, serve the UI there on
    127.0.0.1 until stopped. A tracking server (MLFLOW_TRACKING_URI=http...) serves its own UI:
    its link is printed, and nothing started."""
    # start-up: the CLI reads this module's defaults to build its parser
    from retrainlab.tracking import store

    port = parse_port(port_text)
    if not store.store_exists(root):
        raise RetrainlabError(f"{store.STORE_FILE}: no MLflow store in {root} yet; run dvc repro first")
    uri = store.tracking_uri(root)
    experiment_id = _experiment_id(uri, experiment)
    if uri.startswith(("http://", "https://")):
        if not print_only:
            print(f"retrainlab: the tracking server at {store.shown_tracking_uri()} serves the UI; "
                  "nothing started", file=sys.stderr)
        print(experiment_link(uri, experiment_id))
        return
    link = experiment_link(f"http://{DEFAULT_HOST}:{port}", experiment_id)
    if print_only:
        print(link)
        return
    check_port_free(DEFAULT_HOST, port)
    command = [sys.executable, "-m", "mlflow", "ui", "--host", DEFAULT_HOST, "--port", str(port), "--workers", "1"]

    def announce(url: str) -> None:
        print(f"retrainlab: MLflow UI on {url} (store {store.shown_tracking_uri()}); Ctrl-C stops it",
              file=sys.stderr, flush=True)
        print(link, flush=True)

    # The URI goes through the environment, so that a database password is not on a command line.
    env = os.environ | {"MLFLOW_BACKEND_STORE_URI": uri, "MLFLOW_REGISTRY_STORE_URI": uri}
    if console.verbose():
        _run_server(command, env, DEFAULT_HOST, port, announce)
        return
    if not env.get("MLFLOW_UVICORN_OPTS") and not env.get("MLFLOW_GUNICORN_OPTS"):  # options a user set stay
        env["MLFLOW_UVICORN_OPTS"] = QUIET_UVICORN
    env["PYTHONWARNINGS"] = ",".join(filter(None, (env.get("PYTHONWARNINGS"), QUIET_WARNINGS)))
    _run_server(command, env, DEFAULT_HOST, port, announce, UI_NOTICES)


def _experiment_id(uri: str, experiment: str) -> str:
    # start-up: the CLI reads this module's defaults to build its parser
    from mlflow.tracking import MlflowClient

    from retrainlab.tracking import store

    found = MlflowClient(tracking_uri=uri).get_experiment_by_name(experiment)
    if found is None:
        raise RetrainlabError(
            f"experiment '{experiment}' is not in {store.shown_tracking_uri()} yet; run dvc repro first"
        )
    return found.experiment_id
