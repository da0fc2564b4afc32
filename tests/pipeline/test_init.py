"""retrainlab in the user's own repository: --version, every --help, init, status and ui."""

import importlib.metadata
import json
import subprocess
import tomllib
from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd
import pytest
import yaml

from retrainlab import cli
from retrainlab.base import layout
from retrainlab.pipeline import repository, status
from retrainlab.pipeline.params import params_from_text
from retrainlab.tracking import server

from ..conftest import PROJECT, tool_env


def test_version_is_the_installed_packages(capsys):
    with pytest.raises(SystemExit) as done:
        cli.main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.strip() == f"retrainlab {importlib.metadata.version('retrainlab')}"


def test_every_subcommands_help_has_a_description_and_examples():
    steps = cli._parser()._subparsers._group_actions[0]
    for name, sub in steps.choices.items():
        text = sub.format_help()
        assert sub.description and sub.description in text, name
        examples = text.split("examples:\n", 1)[1]
        assert f"  retrainlab {name}" in examples, name


# --- the project files the package carries ----------------------------------------------


def test_the_package_carries_the_projects_own_files():
    """One copy of each: the package's files are links to the top-level ones, and a built
    wheel holds them (package data)."""
    for name in repository.WRITTEN:
        carried = PROJECT / "src" / "retrainlab" / repository.TEMPLATES / name
        assert carried.is_symlink() and carried.resolve() == (PROJECT / name).resolve(), name
        assert repository.template(name) == (PROJECT / name).read_text()
    package_data = tomllib.loads((PROJECT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    for name in repository.WRITTEN:  # as setuptools globs package data: a `*` within one folder
        carried = PurePosixPath(repository.TEMPLATES, name)
        assert any(carried.match(pattern) and len(carried.parts) == len(PurePosixPath(pattern).parts)
                   for pattern in package_data["retrainlab"]), name


SETUP = repository.Setup("data/old.csv", "data/new.csv", 'a"b;rm', "models/current.keras", "retrainlab-mine")


def stage_bodies(tree):
    return {name: stage.get("do", stage) for name, stage in tree["stages"].items()}


def test_dvc_yaml_for_a_repository_depends_on_its_data_not_on_retrainlabs_source():
    template = yaml.safe_load(repository.template("dvc.yaml"))
    written = yaml.safe_load(repository.render_dvc(repository.template("dvc.yaml"), SETUP))
    for name, body in stage_bodies(written).items():
        expected = [d for d in stage_bodies(template)[name].get("deps", []) if d != repository.SOURCE_DEPENDENCY]
        assert body.get("deps", []) == expected, name
        assert {k: v for k, v in body.items() if k != "deps"} == {
            k: v for k, v in stage_bodies(template)[name].items() if k != "deps"}, name
    # prepare follows what resolve-data finds the params name, whichever source they choose.
    assert written["stages"][layout.PREPARE]["deps"] == [layout.DATA_INPUTS.as_posix()]


def test_mlproject_for_a_repository_runs_with_the_installed_retrainlab():
    template = yaml.safe_load(repository.template("MLproject"))
    written = yaml.safe_load(repository.render_mlproject(repository.template("MLproject"), SETUP))
    assert "python_env" in template and "python_env" not in written
    assert written["entry_points"] == template["entry_points"]


def test_params_for_a_repository_name_its_files_and_keep_the_comments():
    text = repository.render_params(repository.template("params.yaml"), SETUP)
    params = params_from_text(text, "params.yaml")
    assert params.data.source == "files"
    assert (params.data.files.initial, params.data.files.incremental) == ("data/old.csv", "data/new.csv")
    assert params.data.files.label == 'a"b;rm'
    assert params.baseline.from_ == "models/current.keras"
    assert params.tracking.experiment == params.tracking.registered_model == "retrainlab-mine"
    assert "# digits | synthetic | text | friedman | recommender | files | arrays" in text and "old_rows: null" in text
    template = yaml.safe_load(repository.template("params.yaml"))
    written = yaml.safe_load(text)
    for section in ("seeds", "model", "strategies", "compare", "cost"):
        assert written[section] == template[section], section


# --- init: what it refuses, writing nothing ---------------------------------------------


def tables(root: Path, rows=200, label="label"):
    """Old and new data: two numeric features, a label the new data draws a little further on."""
    rng = np.random.default_rng(0)
    (root / "data").mkdir(parents=True, exist_ok=True)
    for name, shift in (("old", 0.0), ("new", 0.5)):
        x = rng.normal(size=(rows, 2)) + [shift, 0.0]
        frame = pd.DataFrame({"x1": x[:, 0].round(4), "x2": x[:, 1].round(4),
                              label: np.where(x[:, 0] + x[:, 1] > shift, "yes", "no")})
        frame.to_csv(root / "data" / f"{name}.csv", index=False)


def git(root, *args):
    identity = ["-c", "user.name=retrainlab tests", "-c", "user.email=tests@retrainlab.invalid"]
    subprocess.run(["git", *identity, *args], cwd=root, check=True, capture_output=True)


def listing(root: Path) -> dict[str, bytes]:
    """Every file of the working tree and its bytes (not git's own)."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.relative_to(root).parts[0] != ".git"}


@pytest.fixture
def repo(tmp_path, monkeypatch):
    """A git repository with two small CSV files, as the working directory; git looks no
    further up than its parent."""
    root = tmp_path / "mine"
    root.mkdir()
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    git(root, "init", "-q")
    tables(root)
    (tmp_path / "outside.csv").write_bytes((root / "data" / "old.csv").read_bytes())
    (root / "data" / "notes.txt").write_text("not a table\n")
    monkeypatch.chdir(root)
    return root


GOOD = ["--initial", "data/old.csv", "--incremental", "data/new.csv", "--label", "label"]


@pytest.mark.parametrize("changes, says", [
    ({"--initial": "data/missing.csv"}, "--initial data/missing.csv: file not found"),
    ({"--initial": ""}, "--initial is empty"),
    ({"--incremental": "data"}, "--incremental data: is a directory"),
    ({"--initial": "../outside.csv"}, "--initial ../outside.csv: outside the repository"),
    ({"--initial": "data/notes.txt"}, "unsupported file type '.txt'"),
    ({"--incremental": "data/old.csv"}, "--initial and --incremental are both data/old.csv"),
    ({"--label": 'a"b;rm'}, """--label 'a"b;rm': no such column in data/old.csv"""),
    ({"--label": ""}, "--label is empty"),
    ({"--model": "data/old.csv"}, "give a Keras 3 .keras file"),
    ({"--model": "models/missing.keras"}, "--model models/missing.keras: file not found"),
])
def test_init_refuses_bad_input_in_one_line_and_writes_nothing(repo, capsys, changes, says):
    before = listing(repo)
    flags = dict(zip(GOOD[::2], GOOD[1::2])) | changes
    assert cli.main(["init", *(part for pair in flags.items() for part in pair)]) == 2
    error = capsys.readouterr().err
    assert error.startswith("retrainlab: error: ") and error.count("\n") == 1 and says in error, error
    assert listing(repo) == before and not (repo / ".dvc").exists()


def test_init_outside_a_git_repository_writes_nothing(repo, capsys, monkeypatch):
    elsewhere = repo.parent / "not-a-repository"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert cli.main(["init", "--initial", "../mine/data/old.csv", "--incremental", "../mine/data/new.csv",
                     "--label", "label"]) == 2
    assert "not in a git repository" in capsys.readouterr().err
    assert list(elsewhere.iterdir()) == []


def test_init_leaves_an_existing_file_unless_forced(repo, capsys):
    (repo / "dvc.yaml").write_text("stages: {}\n")
    before = listing(repo)
    assert cli.main(["init", *GOOD]) == 2
    assert "dvc.yaml: exists already; pass --force" in capsys.readouterr().err
    assert listing(repo) == before and not (repo / ".dvc").exists()

    assert cli.main(["init", *GOOD, "--force"]) == 0
    assert (repo / ".dvc").is_dir()
    # `dvc plots show` draws offline: its page (tests/reporting/test_plots_page.py), this clone's own.
    assert (repo / layout.PLOTS_PAGE).is_file() and "plots-page.html" in (repo / ".dvc" / "config.local").read_text()
    assert yaml.safe_load((repo / "dvc.yaml").read_text())["stages"][layout.PREPARE]["deps"] == [
        layout.DATA_INPUTS.as_posix()]
    ignored = (repo / ".gitignore").read_text().splitlines()
    assert set(repository.ignore_lines()[".gitignore"]) <= set(ignored)
    assert cli.main(["init", *GOOD, "--force"]) == 0  # again: the ignore files gain nothing twice
    assert (repo / ".gitignore").read_text().splitlines() == ignored


# --- status and ui ------------------------------------------------------------------------


def test_status_without_a_report_or_a_store_says_so_and_makes_no_store(tmp_path, monkeypatch, project_params):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    (tmp_path / ".dvc").mkdir()
    lines = status.lines(project_params, tmp_path)
    assert lines == [
        f"recommendation: none yet ({layout.REPORT_JSON} not found; run dvc repro)",
        f"model '{project_params.tracking.registered_model}': not registered yet (run dvc repro)",
    ]
    assert not (tmp_path / "mlflow.db").exists()


def test_status_lists_the_aliases_and_the_versions_newest_first():
    registry = {"store": "mlflow.db", "aliases": {"challenger": "3", "champion": "1"}, "versions": [
        {"version": str(v), "strategy": s, "run_id": f"run{v}", "aliases": a}
        for v, s, a in ((1, "baseline", ["champion"]), (2, "full-retrain", []), (3, "fine-tune", ["challenger"]))
    ]}
    lines = status.registry_lines("m", registry)
    assert lines[0] == "model 'm' in mlflow.db: champion v1, challenger v3"
    assert [line.split()[0] for line in lines[1:]] == ["v3", "v2", "v1"]
    assert lines[1].endswith("run run3  challenger") and "fine-tune" in lines[1]


@pytest.mark.parametrize("port", ["", "abc", "0", "65536", "-1", " 80"])
def test_a_bad_ui_port_is_a_one_line_error(port, capsys):
    assert cli.main(["ui", "--port", port, "--print-url", "--params", str(PROJECT / "params.yaml")]) == 2
    error = capsys.readouterr().err
    said = "--port is empty" if not port else "give a port number from 1 to 65535"
    assert error.count("\n") == 1 and said in error


def test_the_ui_link_opens_the_experiments_runs_table():
    """Checked with MLflow 3.17's UI in headless Chromium: this shows the runs table in the
    model-training view, where the bare experiment link opens the GenAI overview."""
    assert server.experiment_link("http://127.0.0.1:5000/", "7") == (
        "http://127.0.0.1:5000/#/experiments/7/runs?workflowType=machine_learning")


# --- the whole way, as a user would go ----------------------------------------------------


def new_repository(tmp_path):
    """A git repository with the two CSV files, and a function running a command in it (its
    stdout, once it succeeded); git looks no further up than `tmp_path`."""
    root = tmp_path / "mine"
    root.mkdir()
    git(root, "init", "-q")
    tables(root)
    env = tool_env(GIT_CEILING_DIRECTORIES=str(tmp_path))

    def run(*command):
        done = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, f"{command}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        return done.stdout

    return root, run


@pytest.mark.integration
def test_init_then_dvc_repro_in_a_new_repository_recommends_and_status_says_so(tmp_path, monkeypatch, capsys):
    root, run = new_repository(tmp_path)

    said = run("retrainlab", "init", *GOOD)
    assert "ran dvc init" in said and (root / ".dvc").is_dir()
    # Shrunk for time: one seed, two epochs, one option.
    params = yaml.safe_load((root / "params.yaml").read_text())
    params |= {"seeds": [0], "strategies": {"fine-tune": {"epochs": 2, "learning_rate": 0.01}}}
    params["model"].update(hidden_units=[8], epochs=2, learning_rate=0.01)
    params["tracking"]["system_metrics"] = False
    params["compare"]["max_seeds"] = 1
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))

    run("dvc", "repro")
    report = json.loads((root / layout.REPORT_JSON).read_text())
    assert report["recommended"] in ("baseline", "fine-tune")
    # DVC's tables and plots read there as here: the plot templates came along.
    assert {"metrics/baseline.json", "metrics/fine-tune.json"} <= set(
        next(iter(json.loads(run("dvc", "metrics", "show", "--json")).values()))["data"])
    loss = json.loads(run("dvc", "plots", "show", "--json"))["data"]["Training loss"][0]["content"]
    assert {point["strategy"] for point in loss["data"]["values"]} == {"baseline", "fine-tune"}
    shown = run("retrainlab", "status")
    assert f"recommendation ({layout.REPORT_JSON}): {report['recommended']}" in shown
    assert report["headline"] in shown
    assert "model 'retrainlab-mine' in " in shown and "challenger v" in shown
    assert " fine-tune " in shown and " baseline " in shown
    monkeypatch.chdir(root)  # the link in this process: MLflow is loaded already
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    capsys.readouterr()
    assert cli.main(["ui", "--print-url"]) == 0
    link = capsys.readouterr().out.strip()
    assert link.startswith("http://127.0.0.1:5000/#/experiments/")
    assert link.endswith("/runs?workflowType=machine_learning")
    assert "mlflow.db" in (root / ".gitignore").read_text()


@pytest.mark.integration
def test_prepare_follows_the_source_params_name_so_a_changed_npz_is_noticed(tmp_path):
    """Before: dvc.yaml in a repository set up by init depended on data.files' paths, so with
    data.source: arrays a changed .npz was never noticed, and dvc repro kept stale results."""
    root, command = new_repository(tmp_path)

    def run(*args):
        return [line.split("'")[1] for line in command(*args).splitlines() if line.startswith("Running stage")]

    def arrays(seed):
        rng = np.random.default_rng(seed)
        for name, n in (("old", 80), ("new", 40)):
            np.savez(root / "data" / f"{name}.npz", x=rng.random((n, 4, 2)), y=rng.integers(0, 2, n))

    run("retrainlab", "init", *GOOD)
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["data"] |= {"source": "arrays", "arrays": {"initial": "data/old.npz", "incremental": "data/new.npz"}}
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    arrays(0)
    assert run("dvc", "repro", "prepare") == [layout.RESOLVE_DATA, layout.PREPARE]
    assert run("dvc", "repro", "prepare") == [layout.RESOLVE_DATA]  # nothing changed: prepare is skipped
    first = (root / layout.split_path("initial_train")).read_bytes()
    arrays(1)  # new contents, same paths
    assert run("dvc", "repro", "prepare") == [layout.RESOLVE_DATA, layout.PREPARE]
    assert (root / layout.split_path("initial_train")).read_bytes() != first
    made_from = json.loads((root / layout.SUMMARY).read_text())["inputs"]
    assert made_from == json.loads((root / layout.DATA_INPUTS).read_text())
    assert set(made_from["files"]) == {"data.arrays.initial", "data.arrays.incremental"}
