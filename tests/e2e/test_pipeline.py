"""The real pipeline, end to end: `dvc repro` in a fresh git repository of the project.

Each test copies the project's files (what git tracks or would track) to a temporary
directory, makes it a git repository, shrinks params.yaml, and runs the real DVC, MLflow
and Keras with an SQLite store of its own.
"""

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import yaml
from mlflow.tracking import MlflowClient

from retrainlab.base import escape, layout
from retrainlab.measure.task import measure_of
from retrainlab.strategies import BASELINE

from ..conftest import PROJECT, assert_same_choices, served, tool_env
from .between_rounds import check_a_classifier_between_rounds

pytestmark = pytest.mark.integration
# The options the pipeline tests run (the demo's default is all of them), two to keep the
# suite short: one from scratch, one from the baseline. The digits demo's test runs replay,
# which samples old rows in its own stage, where the others run fine-tune.
OPTIONS = ("full-retrain", "fine-tune")


def stages(options=OPTIONS) -> list[str]:
    """The stages a first `dvc repro` runs, in DVC's order."""
    return [layout.RESOLVE_DATA, layout.PREPARE, layout.RESOLVE, BASELINE,
            *(f"{layout.UPDATE_STAGE}@{o}" for o in options), layout.COMPARE]


def make_project(tmp_path: Path, options=OPTIONS, seeds=(0, 1), **data_changes) -> Path:
    files = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=PROJECT, capture_output=True, check=True,
    ).stdout.decode().split("\0")
    root = tmp_path / "project"
    for name in filter(None, files):
        source = PROJECT / name
        if (source.is_file() and not name.startswith(("metrics/", "records/", "plots/"))
                and name not in ("dvc.lock", layout.DECISION.as_posix())):
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, root / name)
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["data"].update(data_changes)
    params["seeds"] = list(seeds)
    params["model"].update(hidden_units=[16, 8], epochs=4, learning_rate=0.01)
    params["strategies"] = {name: params["strategies"][name] for name in options}
    for settings in params["strategies"].values():
        if "epochs" in settings:
            settings.update(epochs=2, learning_rate=0.01)
    params["tracking"]["system_metrics"] = False
    params["compare"]["max_seeds"] = len(seeds)  # no seeds beyond these (tests/decision/test_comparison.py tests the adaptive ones)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "project under test")
    return root


def served_champion(root: Path, records: dict, columns: list[str]) -> tuple[list, dict, pd.DataFrame]:
    """The champion served over HTTP on the new test rows' `columns`: its answers, the record
    of the strategy that registered it, and the test rows."""
    params = yaml.safe_load((root / "params.yaml").read_text())["tracking"]
    uri = f"sqlite:///{root / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    champion = MlflowClient(uri).get_model_version_by_alias(params["registered_model"], "champion").version
    record = next(r for r in records.values() if str(r["mlflow"]["model_version"]) == str(champion))
    test = pd.read_parquet(root / layout.split_path("incremental_test"))
    return served(root, f"models:/{params['registered_model']}@champion", test[columns], uri), record, test


def git(root, *args):
    identity = ["-c", "user.name=retrainlab tests", "-c", "user.email=tests@retrainlab.invalid"]
    subprocess.run(["git", *identity, *args], cwd=root, check=True)


def run(root: Path, *command: str, user_env: bool = False, **env: str) -> subprocess.CompletedProcess:
    """Run a command in the project; `user_env`: without the tests' TF_CPP_MIN_LOG_LEVEL, as a user has it."""
    env = tool_env(**env)
    if user_env:
        env.pop("TF_CPP_MIN_LOG_LEVEL")
    result = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, f"{command} failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    return result


def check_pipeline(root: Path, label: str, features: list[str], options=OPTIONS) -> None:
    first = run(root, "dvc", "repro", user_env=True)
    assert ran(first) == stages(options)
    strategies = [BASELINE, *options]
    # A quiet console: the stages' progress on stdout, and nothing at all on stderr.
    assert first.stderr.splitlines() == [], first.stderr[-3000:]
    summary = json.loads((root / layout.SUMMARY).read_text())
    m = measure_of(summary.get("task"), (summary.get("scoring") or {}).get("metric"))
    for strategy in strategies:
        assert f"== {strategy}: " in first.stdout and f"\n{strategy}: {m.old}=" in first.stdout, strategy
    params_file = yaml.safe_load((root / "params.yaml").read_text())
    seeds = params_file["seeds"]
    for i, seed in enumerate(seeds, start=1):
        assert first.stdout.count(f"seed {i}/{len(seeds)} (seed {seed}): ") == len(strategies), seed
    params = params_file["tracking"]
    client = MlflowClient(f"sqlite:///{root / 'mlflow.db'}")
    experiment = client.get_experiment_by_name(params["experiment"])
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if r.data.tags.get("retrainlab.role") == "pipeline"]
    assert len(parents) == 1
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parents[0].info.run_id]
    assert sorted(r.info.run_name for r in children) == sorted([*strategies, layout.COMPARE])
    children = [r for r in children if "retrainlab.strategy" in r.data.tags]
    for child in children:
        assert child.info.status == "FINISHED"
        for metric in (m.old, m.new, m.all, "forgetting", "wall_seconds", "cpu_seconds",
                       "gpu_seconds", "gpu_util_seconds", "peak_memory_mb", "samples", "target", "target_ci_low"):
            assert metric in child.data.metrics, (child.data.tags["retrainlab.strategy"], metric)
        assert not {"gpus_ci_low", "samples_ci_high"} & set(child.data.metrics)  # no interval where none means anything
        assert child.data.tags["retrainlab.device"] == "cpu"
        assert child.data.tags["retrainlab.verdict"] and "Verdict:" in child.data.tags["mlflow.note.content"]
        assert str(experiment.artifact_location).startswith((root / "mlartifacts").as_uri())

    # `dvc metrics show`: a row per strategy, a few columns, readable in a 120-column terminal.
    assert max(map(len, run(root, "dvc", "metrics", "show").stdout.splitlines())) <= 120
    shown = next(iter(json.loads(run(root, "dvc", "metrics", "show", "--json").stdout).values()))["data"]
    rows = {Path(path).stem: found["data"] for path, found in shown.items()}
    decision = rows.pop(layout.DECISION.stem)
    assert set(rows) == set(strategies)
    comparison = json.loads((root / layout.REPORT_JSON).read_text())
    assert [s for s, row in rows.items() if row["verdict"] == "recommended"] == [comparison["recommended"]]
    # The decision in the strategies' columns: the recommended option, and its target named by its measure.
    assert decision == {"verdict": comparison["recommended"],
                        m.target_name: rows[comparison["recommended"]][m.target_name]}
    test = pd.read_parquet(root / layout.split_path("incremental_test"))
    mlflow.set_tracking_uri(f"sqlite:///{root / 'mlflow.db'}")
    baseline = json.loads((root / layout.record_path(BASELINE)).read_text())
    for strategy in strategies:
        record = json.loads((root / layout.record_path(strategy)).read_text())
        assert set(rows[strategy]) == {"verdict", m.target_name, m.old, m.new, "forgetting",
                                       comparison["cost_metric"], "seeds"}
        assert rows[strategy][m.new] == pytest.approx(record[m.new], rel=1e-3)
        assert not any(name.startswith("acc_") for name in record) or not m.regression  # no acc_* holds an error
        assert record["forgetting"] == pytest.approx(m.forgetting(baseline[m.old], record[m.old]))
        version = record["mlflow"]["model_version"]
        model = mlflow.pyfunc.load_model(f"models:/{params['registered_model']}/{version}")
        predicted = model.predict(test[features])[label].to_numpy()
        registered_seed = str(record["mlflow"]["model_seed"])
        own = record["per_seed"][registered_seed][m.new]
        if not m.regression:  # served labels score the accuracy logged, whatever figure is weighed
            assert 0 <= record["acc_new"] <= 1
            served = record["per_seed"][registered_seed]["acc_new"]
            assert np.mean(predicted == test[label].to_numpy()) == pytest.approx(served)
        else:  # a regressor serves numbers in the label's units: its RMSE is the one logged
            assert predicted.dtype == np.float64
            served = record["per_seed"][registered_seed]["rmse_new"]
            assert np.sqrt(np.mean((predicted - test[label].to_numpy()) ** 2)) == pytest.approx(served, rel=1e-4)
        # The version carries its own seed's figures, the means named as such, and a description.
        details = client.get_model_version(params["registered_model"], str(version))
        assert float(details.tags[m.new]) == pytest.approx(own, rel=1e-4, abs=1e-4)
        assert float(details.tags[f"mean_{m.new}"]) == pytest.approx(record[m.new], rel=1e-4, abs=1e-4)
        assert f"seed {registered_seed}" in details.description and "Verdict" in details.description
    assert len(client.search_model_versions(f"name='{params['registered_model']}'")) == len(strategies)

    recommended = json.loads((root / layout.record_path(comparison["recommended"])).read_text())
    challenger = client.get_model_version_by_alias(params["registered_model"], "challenger")
    assert str(challenger.version) == str(recommended["mlflow"]["model_version"])
    parent = client.get_run(parents[0].info.run_id).data
    assert parent.tags["retrainlab.recommendation"] == comparison["recommended"]
    assert parent.tags["mlflow.note.content"].startswith(escape.markdown(comparison["headline"]))
    # dvc metrics show's 4 decimals of a score, 4 significant digits of an error or a cost
    assert parent.metrics["recommended.target"] == pytest.approx(
        comparison["strategies"][comparison["recommended"]]["target"], abs=1e-4, rel=1e-3)
    assert parent.params["model.epochs"] == str(params_file["model"]["epochs"])
    for path in layout.REPORT_FILES:
        assert (root / path).stat().st_size > 0

    # `dvc plots show`: one plot per figure, every strategy in it.
    plots = json.loads(run(root, "dvc", "plots", "show", "--json").stdout)["data"]
    loss = plots["Training loss"][0]["content"]["data"]["values"]
    assert {point["strategy"] for point in loss} == set(strategies)
    assert {layout.REPORT_PNG_COST.as_posix(), layout.REPORT_PNG_CURVES.as_posix()} <= set(plots)

    second = run(root, "dvc", "repro")
    assert ran(second) == ALWAYS
    assert "Stage 'baseline' didn't change, skipping" in second.stdout


DEMO_OPTIONS = ("full-retrain", "replay")


def test_dvc_repro_on_the_default_digits_demo(tmp_path):
    root = make_project(tmp_path, options=DEMO_OPTIONS)
    check_pipeline(root, "digit", [f"pixel_{r}_{c}" for r in range(8) for c in range(8)], DEMO_OPTIONS)
    check_a_failed_stage_keeps_the_last_good_outputs(root)

    # A DVC remote in a local directory: commit as a user would, push the datasets and
    # models, remove everything git ignores (DVC's cache and outputs, the MLflow store), pull
    # them back; then nothing needs to run again.
    # The MLflow store is a tracking server's on another machine: kept aside meanwhile.
    remote = tmp_path / "remote"
    run(root, "dvc", "remote", "add", "--default", "shared", str(remote))
    git(root, "add", "-A")
    git(root, "commit", "-qm", "pipeline results")
    run(root, "dvc", "push")
    assert any(p.is_file() for p in remote.rglob("*"))
    store = tmp_path / "store"
    store.mkdir()
    for name in ("mlflow.db", "mlartifacts"):
        shutil.move(root / name, store / name)
    git(root, "clean", "-fdqX")
    assert not (root / ".dvc" / "cache").exists() and not (root / layout.model_dir("replay")).exists()
    run(root, "dvc", "pull")
    assert (root / layout.model_dir("replay") / "seed-0" / "model.keras").is_file()
    assert (root / layout.split_path("incremental_test")).is_file()
    for name in ("mlflow.db", "mlartifacts"):
        shutil.move(store / name, root / name)
    assert ran(run(root, "dvc", "repro")) == ALWAYS

    check_the_next_round_starts_from_the_champion(root, tmp_path)


# What every dvc repro runs: the stages that look outside DVC's view (the files params.yaml
# names, the registry), and change nothing unless what they find moved.
ALWAYS = [layout.RESOLVE_DATA, layout.RESOLVE]


def ran(result: subprocess.CompletedProcess) -> list[str]:
    """The stages a dvc repro ran."""
    return [line.split("'")[1] for line in result.stdout.splitlines() if line.startswith("Running stage")]


def check_the_next_round_starts_from_the_champion(root: Path, tmp_path: Path) -> None:
    """Round 1's recommendation is promoted; new data arrives; `retrainlab next-round`
    makes round 1's data the old data and the champion the baseline; round 2 runs."""
    from sklearn.datasets import load_digits

    from retrainlab.models.bundle import ModelBundle

    promoted = run(root, "retrainlab", "promote").stdout
    # The same figures as the report, each said for what it is.
    report = json.loads((root / layout.REPORT_JSON).read_text())
    shown = report["strategies"][report["recommended"]]
    assert "measured now on the test sets: target" in promoted and "recorded for this model (seed 0)" in promoted
    # over every seed the report weighed, the comparison's extra seeds included
    assert f"the report's mean over {shown['seeds']} seeds: target {shown['target']:.4f}" in promoted
    name = yaml.safe_load((root / "params.yaml").read_text())["tracking"]["registered_model"]
    client = MlflowClient(f"sqlite:///{root / 'mlflow.db'}")
    champion = client.get_model_version_by_alias(name, "champion")
    versions_before = {v.version for v in client.search_model_versions(f"name='{name}'")}
    # Between rounds: is it time? The check against the champion, without training.
    experiment = yaml.safe_load((root / "params.yaml").read_text())["tracking"]["experiment"]
    check_a_classifier_between_rounds(root, "digit", experiment, tmp_path)

    # New data is rows no round has had: next-round refuses round 1's own rows (tests/pipeline/test_rounds.py).
    digits = load_digits(as_frame=True).frame.rename(columns={"target": "digit"})
    had = pd.concat([pd.read_parquet(root / layout.split_path(split)) for split in layout.SPLITS])
    pixels = [column for column in digits.columns if column != "digit"]
    unseen = digits.merge(had[pixels].drop_duplicates(), how="left", indicator=True)["_merge"] == "left_only"
    arrived = digits[unseen.to_numpy()].sample(300, random_state=7)
    arrived.to_csv(tmp_path / "arrived.csv", index=False)
    said = run(root, "retrainlab", "next-round", "--incremental", str(tmp_path / "arrived.csv"))
    assert "round 2" in said.stdout
    params = yaml.safe_load((root / "params.yaml").read_text())
    assert params["round"] == 2 and params["baseline"]["from"] == f"models:/{name}@champion"
    assert params["data"]["source"] == "files" and params["data"]["files"]["label"] == "digit"
    assert (root / "data/raw/round-2.dvc").is_file()

    second = run(root, "dvc", "repro", user_env=True, RETRAINLAB_VERBOSE="1")
    assert ran(second) == stages(DEMO_OPTIONS)
    # Verbose: TensorFlow's and MLflow's own lines are back (MLflow's registry notes, on every platform).
    assert len(second.stderr.splitlines()) > 0 and "Created version" in second.stderr, second.stderr[-3000:]
    baseline = json.loads((root / layout.record_path("baseline")).read_text())
    assert baseline["origin"]["version"] == str(champion.version)
    assert str(baseline["mlflow"]["model_version"]) == str(champion.version)  # no duplicate version
    assert baseline["cpu_seconds"] == 0 and baseline["round"] == 2
    test = pd.read_parquet(root / layout.split_path("incremental_test"))
    mlflow.set_tracking_uri(f"sqlite:///{root / 'mlflow.db'}")
    served = mlflow.pyfunc.load_model(f"models:/{name}@champion").predict(test)["digit"].to_numpy()
    round_2 = ModelBundle.load(root / layout.model_dir("baseline") / "seed-0")
    assert_same_choices(round_2.predict_labels(test).astype(int), served.astype(int), round_2.predict_proba(test),
                        round_2.labels)

    new = [v for v in client.search_model_versions(f"name='{name}'") if v.version not in versions_before]
    assert len(new) == len(DEMO_OPTIONS)  # the baseline was not registered again
    for version in new:
        assert version.tags["retrainlab.round"] == "2"
        assert version.tags["retrainlab.parent_version"] == str(champion.version)
    assert client.get_model_version(name, champion.version).tags["retrainlab.round"] == "1"
    parents = client.search_runs([client.get_experiment_by_name(params["tracking"]["experiment"]).experiment_id],
                                 filter_string="tags.`retrainlab.role` = 'pipeline'")
    assert sorted(r.data.tags["retrainlab.round"] for r in parents) == ["1", "2"]
    assert any(r.info.run_name.startswith("round-2-pipeline-") for r in parents)
    assert ran(run(root, "dvc", "repro")) == ALWAYS


def check_a_failed_stage_keeps_the_last_good_outputs(root: Path) -> None:
    """DVC deletes a stage's outputs before running it unless they persist: before they did,
    a misspelt `model` key lost the baseline's model, metrics and curves, and a bad
    `compare.tolerance` emptied reports/."""
    kept = [layout.record_path("baseline"), layout.curves_path("baseline"), *layout.REPORT_FILES,
            layout.model_dir("baseline") / "seed-0" / "model.keras", layout.SUMMARY]
    before = {path: (root / path).read_bytes() for path in kept}
    good = (root / "params.yaml").read_text()
    for section, key, value in (("model", "hiden_units", [4]), ("compare", "tolerance", -1)):
        params = yaml.safe_load(good)
        params[section][key] = value
        (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        failed = subprocess.run(["dvc", "repro"], cwd=root, env=tool_env(), capture_output=True, text=True)
        assert failed.returncode != 0 and f"{section}.{key}" in failed.stderr, failed.stderr[-2000:]
        assert {path: (root / path).read_bytes() for path in kept} == before, key
    (root / "params.yaml").write_text(good)
    assert ran(run(root, "dvc", "repro")) == ALWAYS


# Labels, a column name and category values a careless or hostile user could bring; the new
# class only the new data has is a script, as `dvc plots show` would have run it.
NEW_CLASS = '</script><script>alert("new class")</script>'
SEGMENTS = (NEW_CLASS, "<img src=x onerror=alert(1)>", '=HYPERLINK("http://evil.invalid")|**bold**', "steady 稳定 🙂")
REGION = "region <b>|*x*"
# One option, from the baseline: it grows the output for the hostile new class, and writes
# every surface the others would.
HOSTILE_OPTIONS = ("fine-tune",)


def test_dvc_repro_on_csv_files_the_project_has_never_seen(tmp_path):
    """A user's CSV files, with hostile labels, column names and category values: the pipeline
    runs, and every output a person reads (the report, the DVC plot files and their HTML, the
    MLflow descriptions) shows them as text, none raw."""
    rng = np.random.default_rng(5)

    def customers(n, regions):
        frame = pd.DataFrame({
            "monthly spend": rng.gamma(2.0, 30.0, n).round(2),
            REGION: rng.choice(regions, n),
            "tickets": rng.poisson(2, n),
        })
        frame["segment"] = np.select(
            [frame[REGION] == "apac<svg onload=alert(1)>", frame["monthly spend"] > 70, frame["tickets"] > 2],
            SEGMENTS[:3], SEGMENTS[3],
        )
        return frame

    root = make_project(tmp_path, options=HOSTILE_OPTIONS, source="files")
    customers(400, ["emea", "amer"]).to_csv(root / "data/raw/initial.csv", index=False)
    customers(150, ["emea", "amer", "apac<svg onload=alert(1)>"]).to_csv(root / "data/raw/incremental.csv", index=False)
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["data"]["files"]["label"] = "segment"
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    mask = os.umask(0o022)
    try:
        check_pipeline(root, "segment", ["monthly spend", REGION, "tickets"], HOSTILE_OPTIONS)
    finally:
        os.umask(mask)
    check_every_surface_shows_user_text_as_text(root)
    check_outputs_are_readable_as_the_umask_says(root)


def check_every_surface_shows_user_text_as_text(root: Path) -> None:
    from markdown_it import MarkdownIt

    hostile = re.compile(r"<(script|img|svg|b>)", re.IGNORECASE)  # as markup; as text they show
    ours = re.compile(r'<img src="(diagnostics|accuracy_vs_cost|learning_curves|confusion|predicted_vs_true|residuals)\.png" alt="[\w -]+" />')
    render = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"]).render

    def shown_as_text(markdown: str, where: str) -> None:
        html = ours.sub("", render(markdown))
        assert not hostile.search(html), (where, hostile.search(html), html[:3000])

    report = (root / layout.REPORT_MD).read_text()
    shown_as_text(report, "comparison.md")
    assert "## What changed" in report and "&lt;/script&gt;&lt;script&gt;alert(\"new class\")" in report
    # The plot files and what `dvc plots show` makes of them: DVC puts their values, as JSON,
    # inside <script> blocks of its HTML, where a raw </script> ends the block.
    for path in [*(root / "plots").glob("*.csv"), *(root / "reports").glob("*.csv")]:
        assert "<" not in path.read_text(), path
    run(root, "dvc", "plots", "show", "-o", "dvc_plots")
    page = (root / "dvc_plots" / "index.html").read_text()
    assert page.count("</script>") == page.count("<script"), "a value ended a script block"
    assert not re.search(r"</script><script>alert|<img src=x|<svg onload", page)
    assert json.dumps("‹/script›‹script›alert")[1:-1] in page  # the new class, as the plot shows it
    client = MlflowClient(f"sqlite:///{root / 'mlflow.db'}")
    experiment = client.get_experiment_by_name(yaml.safe_load((root / "params.yaml").read_text())["tracking"]["experiment"])
    notes = [r.data.tags["mlflow.note.content"] for r in client.search_runs([experiment.experiment_id])
             if "mlflow.note.content" in r.data.tags]
    notes += [v.description for v in client.search_model_versions() if v.description]
    assert len(notes) >= 5  # the pipeline run, two strategy runs, two versions
    for note in notes:
        shown_as_text(note, "an MLflow description")


def check_outputs_are_readable_as_the_umask_says(root: Path) -> None:
    """Before: written 0600 whatever the umask (mkstemp's mode), so other users of a shared
    checkout could not read them."""
    outputs = [layout.DATA_INPUTS, layout.PREPARED_DIR, Path("records"), Path("metrics"), Path("plots"),
               layout.REPORTS_DIR, Path("models")]
    for top in outputs:
        for path in [root / top, *(root / top).rglob("*")] if (root / top).is_dir() else [root / top]:
            if path.is_symlink():  # DVC links outputs to its cache, which it keeps read-only
                continue
            assert path.stat().st_mode & 0o044 == 0o044, (path, oct(path.stat().st_mode))


def readme_commands(section: str, prefix: str) -> list[str]:
    """The command lines of a README section that start with `prefix`, as a user copies them."""
    text = (PROJECT / "README.md").read_text()
    body = text.split(f"## {section}\n", 1)[1].split("\n## ", 1)[0]
    return [line.strip() for line in body.splitlines() if line.strip().startswith(prefix)]


def test_the_bring_your_own_model_examples_run_as_written(tmp_path):
    """README's examples on a copy of the project: `make examples`' script, then each
    `dvc exp run` line as written (with one seed and one option, fine-tune, to keep the suite
    short: it changes the brought model the most)."""
    import shlex

    options = ("fine-tune",)
    root = make_project(tmp_path, options=options, seeds=(0,))
    run(root, "python", "examples/make_examples.py")
    commands = readme_commands("Bring your own model", "dvc exp run")
    assert len(commands) == 3
    for command in commands:
        result = run(root, *shlex.split(command), user_env=True)
        assert ran(result) == stages(options), command
        # Quiet on a brought model too: before, Keras warned on stderr that it skipped loading
        # the saved optimizer's variables, at every load. (DVC notes outputs of the workspace
        # it has no hash for, here where none was committed: DVC's own, and about DVC.)
        said = [line for line in result.stderr.splitlines() if not line.startswith("WARNING: No file hash info")]
        assert said == [], result.stderr[-3000:]
        baseline = json.loads((root / layout.record_path("baseline")).read_text())
        assert baseline["origin"]["kind"] == "file" and baseline["cpu_seconds"] == 0
        assert baseline["acc_old"] > 0.8, command  # the brought model, as it was trained
        for strategy in options:
            record = json.loads((root / layout.record_path(strategy)).read_text())
            assert record["cpu_seconds"] > 0 and 0 <= record["acc_new"] <= 1, (command, strategy)
            assert record["mlflow"]["parent_version"] == str(baseline["mlflow"]["model_version"])
        report = json.loads((root / layout.REPORT_JSON).read_text())
        assert report["recommended"] in (BASELINE, *options)
        # The pipeline's MLflow run is named after the DVC experiment.
        experiment = re.search(r"Ran experiment\(s\): (\S+)", result.stdout)[1]
        client = MlflowClient(f"sqlite:///{root / 'mlflow.db'}")
        assert client.get_run(baseline["mlflow"]["parent_run_id"]).info.run_name == experiment
