"""`retrainlab init`: this project's pipeline in the user's own git repository.

The package carries this project's MLproject, dvc.yaml and params.yaml (links to the
top-level files, so each is written once); init writes them into the repository with what
differs there: the user's data files, in params (the resolve-data stage then follows them,
whichever source and round params.yaml names); no dependency on retrainlab's source,
which is installed, not in the repository; no python_env file. Everything is checked
before anything is written.
"""

from __future__ import annotations

import dataclasses
import importlib.resources
import io
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from retrainlab import version
from retrainlab.base import layout
from retrainlab.base.errors import RetrainlabError
from retrainlab.base.files import write_text_atomically
from retrainlab.data.sources import SUFFIXES, read_table
from retrainlab.pipeline.params import params_from_text
from retrainlab.reporting import plots_page
from retrainlab.tracking import server, store

TEMPLATES = "project"  # the package's folder of project files
# The files init writes (layout.PROJECT_FILES), each from the package's file of the same
# path (retrainlab/project/...), rendered for the repository where RENDERERS says how.
WRITTEN = layout.PROJECT_FILES
# This repository's stages depend on retrainlab's source; a user's repository has none.
SOURCE_DEPENDENCY = "src/retrainlab"


@dataclasses.dataclass(frozen=True)
class Setup:
    """What the user's params say that the template's do not: paths relative to the root."""

    initial: str
    incremental: str
    label: str
    baseline: str  # baseline.from: train, or the user's .keras file
    name: str  # the MLflow experiment and registered model


def template(name: str) -> str:
    return importlib.resources.files("retrainlab").joinpath(TEMPLATES, name).read_text()


def ignore_lines() -> dict[str, tuple[str, ...]]:
    """What git should not keep, and DVC not look at, as this repository's .gitignore and
    .dvcignore say: the embedded MLflow store, its artifacts, the work in progress."""
    work = f"{layout.WORK_DIR.as_posix()}/"
    return {
        ".gitignore": (f"/{store.STORE_FILE}", f"/{store.ARTIFACTS_DIR}/", f"/{server.ARTIFACTS_DIR}/", work),
        ".dvcignore": (work,),
    }


def init(cwd: Path, initial: str, incremental: str, label: str, model: str | None, force: bool) -> dict[str, Any]:
    """Check, then write the project files, initialise DVC and extend the ignore files;
    return what was done, for the message."""
    root = repository_root(cwd)
    if not label.strip():
        raise RetrainlabError("--label is empty: give the label column's name")
    initial_path = inside(root, cwd, initial, "--initial")
    incremental_path = inside(root, cwd, incremental, "--incremental")
    if initial_path == incremental_path:
        raise RetrainlabError(f"--initial and --incremental are both {initial_path}: give the old data and the new")
    for given, path, flag in ((initial, initial_path, "--initial"), (incremental, incremental_path, "--incremental")):
        check_table(root / path, given, flag, label)
    baseline = "train" if model is None else check_model(root, cwd, model)
    setup = Setup(initial_path, incremental_path, label, baseline, project_name(root))
    texts = {name: RENDERERS.get(name, lambda text, _: text)(template(name), setup) for name in WRITTEN}
    params_from_text(texts["params.yaml"], "params.yaml as init would write it")
    for name in WRITTEN:
        target = root / name
        if target.is_dir() or (target.exists() and not force):
            why = "is a directory" if target.is_dir() else "exists already; pass --force to overwrite it"
            raise RetrainlabError(f"{name}: {why} (nothing was written)")
    ignores = {name: missing_lines(root / name, lines) for name, lines in ignore_lines().items()}

    dvc = not (root / ".dvc").is_dir()
    if dvc:
        run_dvc_init(root)
    for name, text in texts.items():
        write(root / name, text)
    for name, lines in ignores.items():
        if lines:  # read now: dvc init has just written .dvcignore
            write(root / name, with_lines((root / name).read_text() if (root / name).is_file() else "", lines))
    page = plots_page.install(root)  # after .gitignore names its folder
    return {"root": root, "written": list(WRITTEN), "dvc_init": dvc, "ignored": ignores, "setup": setup,
            "plots_page": page.relative_to(root)}


def repository_root(cwd: Path) -> Path:
    try:
        found = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=cwd, capture_output=True, text=True)
    except OSError as exc:
        raise RetrainlabError(f"git cannot be run ({exc.strerror}): install git; init needs a git repository") from None
    if found.returncode != 0 or not found.stdout.strip():
        raise RetrainlabError(f"{cwd}: not in a git repository; run git init, or cd into one (nothing was written)")
    return Path(found.stdout.strip()).resolve()


def inside(root: Path, cwd: Path, given: str, flag: str) -> str:
    """`given` (relative to `cwd`) as a path relative to the repository root, which it must be in."""
    if not given.strip():
        raise RetrainlabError(f"{flag} is empty: give a file in the repository")
    path = (cwd / given).resolve()
    if not path.is_relative_to(root):
        raise RetrainlabError(
            f"{flag} {shown(given)}: outside the repository {root}; copy it in (DVC tracks files in it only)"
        )
    try:
        kind = "a directory" if path.is_dir() else "a file" if path.is_file() else None
    except OSError as exc:  # a name too long, a loop of links
        raise RetrainlabError(f"{flag} {shown(given)}: cannot be read ({exc.strerror})") from None
    if kind != "a file":
        raise RetrainlabError(f"{flag} {shown(given)}: {'is a directory; give a file' if kind else 'file not found'}")
    return path.relative_to(root).as_posix()


def shown(given: str) -> str:
    """A path as messages show it: as typed, or quoted and escaped where it holds a line break
    or another unprintable character, so that every error stays one line."""
    return given if given.isprintable() else repr(given)


def check_table(path: Path, given: str, flag: str, label: str) -> None:
    """A CSV or Parquet file prepare can read, with the label column."""
    if path.suffix.lower() not in SUFFIXES["files"]:
        raise RetrainlabError(f"{flag} {shown(given)}: unsupported file type {path.suffix!r}; give .csv or .parquet")
    frame, _ = read_table(path, f"{flag} {shown(given)}", flag)
    if label not in frame.columns:
        columns = ", ".join(map(repr, frame.columns[:10])) + (", ..." if len(frame.columns) > 10 else "")
        raise RetrainlabError(f"--label {label!r}: no such column in {shown(given)} (its columns: {columns})")


def check_model(root: Path, cwd: Path, given: str) -> str:
    path = inside(root, cwd, given, "--model")
    if not path.endswith(".keras"):
        raise RetrainlabError(f"--model {shown(given)}: give a Keras 3 .keras file (saved by model.save('....keras'))")
    return path


def project_name(root: Path) -> str:
    """The MLflow experiment and registered model of a repository: retrainlab-<its folder>."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", root.name).strip("-._")[:60]
    return f"retrainlab-{slug or 'project'}"


def missing_lines(path: Path, lines: tuple[str, ...]) -> list[str]:
    if path.exists() and not path.is_file():
        raise RetrainlabError(f"{path.name}: is not a file (nothing was written)")
    present = set(path.read_text().splitlines()) if path.is_file() else set()
    return [line for line in lines if line not in present]


def with_lines(text: str, lines: list[str]) -> str:
    """An ignore file's text with `lines` added at its end, under a comment saying why."""
    start = text + ("\n" if text and not text.endswith("\n") else "")
    comment = "# retrainlab: the MLflow store, its artifacts, work in progress\n"
    return start + comment + "".join(f"{line}\n" for line in lines)


def run_dvc_init(root: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "dvc", "init", "-q"], cwd=root, capture_output=True, text=True)
    if done.returncode != 0:
        said = (done.stderr.strip() or done.stdout.strip() or f"exit status {done.returncode}").splitlines()[-1]
        raise RetrainlabError(f"dvc init failed ({said}); nothing else was written")


def write(path: Path, text: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomically(path, text)
    except OSError as exc:
        raise RetrainlabError(f"{path.name}: cannot be written ({exc.strerror})") from None


# --- the project files, rendered for the user's repository (pure: text in, text out) ---


def _yaml():
    """ruamel's round trip, keeping the templates' comments, quotes, indentation and nulls."""
    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.width = 4096
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.representer.add_representer(
        type(None), lambda representer, _: representer.represent_scalar("tag:yaml.org,2002:null", "null")
    )
    return yaml


def _dump(yaml, tree) -> str:
    out = io.StringIO()
    yaml.dump(tree, out)
    return out.getvalue()


def _header(name: str) -> str:
    return f"# Written by `retrainlab init` (retrainlab {version()}): retrainlab's own {name}, for this repository.\n"


def render_mlproject(text: str, setup: Setup) -> str:
    """No python_env: the entry points run with the retrainlab installed here
    (`retrainlab run ENTRY`, or `mlflow run . -e ENTRY --env-manager local`)."""
    yaml = _yaml()
    tree = yaml.load(text)
    tree.pop("python_env", None)
    note = "# Run an entry point with `retrainlab run ENTRY` or `mlflow run . -e ENTRY --env-manager local`.\n"
    return _header("MLproject") + note + _dump(yaml, tree)


def render_dvc(text: str, setup: Setup) -> str:
    """No dependency on retrainlab's source (installed, not in the repository)."""
    yaml = _yaml()
    tree = yaml.load(text)
    for stage in tree["stages"].values():
        deps = stage.get("do", stage).get("deps")
        if deps and SOURCE_DEPENDENCY in deps:
            deps.remove(SOURCE_DEPENDENCY)
    return _header("dvc.yaml") + _dump(yaml, tree)


def render_params(text: str, setup: Setup) -> str:
    """The template's params, comments kept, with the data section on the user's files, the
    baseline from their model if they brought one, and the MLflow names of this repository."""
    yaml = _yaml()
    tree = yaml.load(text)
    data = tree["data"]
    data["source"] = "files"
    files = data["files"]
    files["initial"], files["incremental"], files["label"] = setup.initial, setup.incremental, setup.label
    tree["baseline"]["from"] = setup.baseline
    tree["tracking"]["experiment"] = tree["tracking"]["registered_model"] = setup.name
    return _header("params.yaml") + _dump(yaml, tree)


RENDERERS = {"MLproject": render_mlproject, "dvc.yaml": render_dvc, "params.yaml": render_params}
