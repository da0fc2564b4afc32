"""The project's own files agree with each other: one name and one pin per fact."""

import re
import tomllib

import yaml

from retrainlab.base import layout
from retrainlab.pipeline.params import load_params
from retrainlab.strategies import BASELINE, CATALOGUE, UPDATES
from retrainlab.measure import choice

from ..conftest import PROJECT


def load(name):
    return yaml.safe_load((PROJECT / name).read_text())


def test_mlproject_dvc_stages_and_cli_name_the_declared_strategies():
    """The strategies' declarations are the one list: an entry point each, and DVC stages
    for the baseline and, through `foreach`, for each option params.yaml chooses."""
    from retrainlab.cli import _parser

    steps = [layout.PREPARE, *CATALOGUE, layout.COMPARE]
    assert list(load("MLproject")["entry_points"]) == steps
    stages = load("dvc.yaml")["stages"]
    assert list(stages) == [layout.RESOLVE_DATA, layout.PREPARE, layout.RESOLVE, BASELINE, layout.UPDATE_STAGE,
                            layout.COMPARE]
    assert stages[layout.UPDATE_STAGE]["foreach"] == "${strategies}"
    commands = _parser()._subparsers._group_actions[0].choices
    assert set(CATALOGUE) <= set(commands)
    assert list(load_params(PROJECT / "params.yaml").strategies) == list(UPDATES)  # all seven run on the demo


def expanded_stages():
    """dvc.yaml's stages with the foreach stage written out for each option, as DVC does."""
    stages = load("dvc.yaml")["stages"]
    template = yaml.safe_dump(stages.pop(layout.UPDATE_STAGE)["do"])
    for name in UPDATES:
        stages[f"{layout.UPDATE_STAGE}@{name}"] = yaml.safe_load(template.replace("${key}", name))
    return stages


def test_every_stage_runs_its_own_entry_points_command():
    """MLproject is the one definition: each stage's command is its entry point's, with the
    entry's default parameters. resolve-data and resolve-baseline only write down what the
    data is made from and where the baseline comes from (no MLflow run), so they are no
    entry points, and run at every repro."""
    stages = expanded_stages()
    for resolve in (layout.RESOLVE_DATA, layout.RESOLVE):
        assert stages.pop(resolve)["always_changed"] is True
    for stage_name, stage in stages.items():
        name = stage_name.rpartition("@")[2]
        entry = load("MLproject")["entry_points"][name]
        defaults = {key: spec["default"] for key, spec in entry["parameters"].items()}
        assert stage["cmd"] == entry["command"].format(**defaults), name
        assert entry["command"].startswith(f"retrainlab {name} --params {{params}}")
        if name in UPDATES:
            assert f"strategies.{name}" in stage["params"], name


def outputs(stage, kind):
    return [next(iter(o)) for o in stage.get(kind, [])]


def test_dvc_outputs_are_where_the_code_writes():
    stages = expanded_stages()
    assert outputs(stages[layout.PREPARE], "outs") == [
        *(layout.split_path(s).as_posix() for s in layout.SPLITS),
        layout.SUMMARY.as_posix(),
    ]
    compare = stages[layout.COMPARE]
    assert sorted([*outputs(compare, "outs"), *outputs(compare, "plots")]) == sorted(
        p.as_posix() for p in layout.REPORT_FILES)
    # the only metrics: the decision, and a row per strategy
    assert outputs(compare, "metrics") == [layout.DECISION.as_posix(), layout.METRICS_DIR.as_posix()]
    assert {"records", "plots"} <= set(compare["deps"])
    assert outputs(stages[layout.RESOLVE], "outs") == [layout.BASELINE_ORIGIN.as_posix()]
    # prepare follows what the params name, whichever source: through resolve-data's output.
    assert outputs(stages[layout.RESOLVE_DATA], "outs") == [layout.DATA_INPUTS.as_posix()]
    assert layout.DATA_INPUTS.as_posix() in stages[layout.PREPARE]["deps"]
    assert stages[layout.RESOLVE_DATA]["params"] == ["data"]
    # and resolves the measure every later step scores with: the compare keys choice.resolve reads.
    assert stages[layout.PREPARE]["params"] == ["data", *(f"compare.{key}" for key in choice.READS)]
    assert layout.BASELINE_ORIGIN.as_posix() in stages["baseline"]["deps"]
    for name in CATALOGUE:
        stage = stages[name if name == BASELINE else f"{layout.UPDATE_STAGE}@{name}"]
        assert outputs(stage, "outs") == [layout.model_dir(name).as_posix(), layout.record_path(name).as_posix(),
                                          layout.curves_path(name).as_posix()]
        assert outputs(stage, "plots") == [layout.predictions_path(name).as_posix()]
        assert "metrics" not in stage
        if name != BASELINE:
            assert {layout.model_dir(BASELINE).as_posix(), layout.record_path(BASELINE).as_posix()} <= set(stage["deps"])


def test_dvc_plots_show_each_figure_once_with_the_strategies_in_colours():
    """Top-level plots read compare's tables, which hold every strategy: one plot per figure,
    coloured by the `strategy` column through the templates in .dvc/plots/, whatever
    strategies params.yaml chooses."""
    import json

    templates = {p.stem: json.loads(p.read_text()) for p in (PROJECT / ".dvc" / "plots").glob("*.json")}
    for plot in load("dvc.yaml")["plots"]:
        (title, spec), = plot.items()
        template = templates[spec["template"]]
        assert template["encoding"]["color"]["field"] == "strategy", title
        (path, _), = spec["y"].items()
        assert path in {layout.REPORT_CURVES.as_posix(), layout.REPORT_SCATTER.as_posix()}, title
    scatter = templates["labelled_scatter"]
    assert any(layer["mark"]["type"] == "text" for layer in scatter["layer"])  # the points are labelled


def test_every_model_is_a_dvc_artifact():
    artifacts = load("dvc.yaml")["artifacts"]
    assert list(artifacts) == list(CATALOGUE)
    for name, artifact in artifacts.items():
        assert artifact["path"] == layout.model_dir(name).as_posix() and artifact["type"] == "model"
        assert artifact["desc"].startswith(f"{name}: {CATALOGUE[name].summary}")


def test_every_output_persists_so_a_failed_stage_keeps_the_last_good_one():
    """DVC deletes a stage's outputs before it runs unless they persist; the steps write theirs
    last, by rename, so a stage that fails leaves them as they were (docs/RELIABILITY.md)."""
    for name, stage in expanded_stages().items():
        for kind in ("outs", "metrics", "plots"):
            for out in stage.get(kind, []):
                assert next(iter(out.values())).get("persist") is True, (name, out)


def pins(lines):
    found = {}
    for line in lines:
        match = re.fullmatch(r"([A-Za-z0-9_.-]+)==(\S+)", line.strip())
        if match:
            found[match[1].lower().replace("_", "-")] = match[2]
    return found


def test_dependency_pins_agree_across_pyproject_python_env_and_the_lock():
    project = pins(tomllib.loads((PROJECT / "pyproject.toml").read_text())["project"]["dependencies"])
    python_env = pins(load("python_env.yaml")["dependencies"])
    lock = pins((PROJECT / "requirements.lock").read_text().splitlines())
    assert project == python_env
    assert {name: lock.get(name) for name in project} == project
    for required in ("tensorflow-cpu", "keras", "mlflow", "dvc", "pandas", "numpy", "pyarrow",
                     "scikit-learn", "nvidia-ml-py", "psutil"):
        assert required in project
    # `make mutation` installs its tool on top of the lock, and pins nothing the lock pins.
    mutation = pins((PROJECT / "requirements-mutation.lock").read_text().splitlines())
    assert "mutmut" in mutation and not set(mutation) & set(lock)


def test_the_prepare_and_compare_steps_do_not_load_tensorflow(tmp_path):
    """Loading TensorFlow takes seconds: only the strategy step (retrainlab.pipeline.strategy_step) needs it."""
    import subprocess
    import sys

    from ..conftest import tool_env

    (tmp_path / ".dvc").mkdir()
    (tmp_path / "params.yaml").write_text("tracking:\n  system_metrics: false\n")
    script = (
        "import sys\n"
        "from retrainlab import cli\n"
        "from retrainlab.decision import comparison, diagnostics\n"
        "from retrainlab.pipeline import compare, prepare\n"
        "from retrainlab.registry import promotion\n"
        "from retrainlab.reporting import report\n"
        "assert cli.main(['prepare']) == 0\n"
        "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=tool_env(), capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "[]"
