"""What promotion trusts: gates against useless models, the workspace's recommendation, and only
model files whose digest the registry recorded, on a real MLflow store and registry."""

import contextlib
import dataclasses
import json
import logging
import math
import shutil
import subprocess
import tempfile
import urllib.parse
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from retrainlab.base import layout
from retrainlab.base.errors import RetrainlabError
from retrainlab.config import CompareParams, FilesParams
from retrainlab.pipeline.compare import compare_step
from retrainlab.pipeline.params import load_params
from retrainlab.pipeline.prepare import prepare_step
from retrainlab.pipeline.strategy_step import run_strategy
from retrainlab.registry import promotion
from retrainlab.registry.promotion import PromotionRefused
from retrainlab.strategies import BASELINE
from retrainlab.tracking import store
from retrainlab.tracking.pyfunc_model import MODEL_DIGEST_TAG, files_sha256

from ..conftest import PROJECT, tiny, tool_env
from ..tracking.test_tracking import churn
from .test_registry import churn_with_pauses

NAME = "churn-trust"


def experiment_in(root: Path, params):
    """The experiment with its artifacts in `root`/mlartifacts, as the embedded store keeps them."""
    mlflow.create_experiment(params.tracking.experiment, (root / store.ARTIFACTS_DIR / "e").as_uri())


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """prepare, the four strategies and compare, once, on small CSV files, with a store of its own."""
    root = tmp_path_factory.mktemp("trust")
    churn(300, 0).to_csv(root / "old.csv", index=False)
    churn_with_pauses(200, 1).to_csv(root / "new.csv", index=False)
    params = tiny(load_params(PROJECT / "params.yaml"))
    params = dataclasses.replace(
        params,
        data=dataclasses.replace(params.data, source="files", files=FilesParams("old.csv", "new.csv", "churned")),
        tracking=dataclasses.replace(params.tracking, registered_model=NAME, experiment=NAME),
    )
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow.db'}")
        mp.delenv("MLFLOW_RUN_ID", raising=False)
        mlflow.set_tracking_uri(f"sqlite:///{root / 'mlflow.db'}")
        experiment_in(root, params)
        prepare_step(params, root)
        records = {name: run_strategy(name, params, root) for name in (BASELINE, *params.strategies)}
        summary = compare_step(params, root)
        yield root, params, records, summary.recommended


@pytest.fixture(autouse=True)
def fresh_aliases(request):
    """Each test starts with no champion and the challenger compare chose."""
    yield
    if "project" not in request.fixturenames:
        return
    _, _, records, recommended = request.getfixturevalue("project")
    client = MlflowClient()
    for alias in (promotion.CHAMPION, promotion.PREVIOUS):
        with contextlib.suppress(mlflow.exceptions.MlflowException):
            client.delete_registered_model_alias(NAME, alias)
    client.set_registered_model_alias(NAME, promotion.CHALLENGER, version_of(records[recommended]))


def version_of(record) -> str:
    return str(record.mlflow.model_version)


def files_of(version: str) -> Path:
    """Where the artifact store keeps a version's files."""
    return Path(urllib.parse.urlparse(MlflowClient().get_model_version_download_uri(NAME, version)).path)


def one_line(exc_info) -> str:
    message = str(exc_info.value)
    assert "\n" not in message
    return message


def test_a_version_whose_run_recorded_a_nan_loss_is_refused_without_force(project):
    # What model.learning_rate: .inf gave: NaN losses, and a model that passed every gate.
    root, params, records, _ = project
    version, run_id = version_of(records["full-retrain"]), records["full-retrain"].mlflow.run_id
    client = MlflowClient()
    loss_new = client.get_run(run_id).data.metrics["loss_new"]
    client.log_metric(run_id, "loss_new", math.nan, step=1)
    try:
        with pytest.raises(PromotionRefused) as refused:
            promotion.promote(params, version=version, root=root)
    finally:
        client.log_metric(run_id, "loss_new", loss_new, step=2)
    assert "gate 'finite loss' failed (loss_old 0." in one_line(refused)
    assert ", loss_new nan recorded: training diverged or was not logged)" in one_line(refused)
    assert promotion.alias_version(NAME, promotion.CHAMPION) is None


def test_a_version_with_a_weight_not_finite_never_becomes_champion_even_forced(project, tmp_path):
    """A model with one NaN in a kernel, registered (as an earlier retrainlab registered a brought
    one): its files are as registered, its recorded losses finite, and Keras' fused predict
    can hide the NaN. Loading it for the gates refuses it, --force or not."""
    import keras
    import numpy as np

    from retrainlab.models.bundle import ModelBundle

    root, params, records, _ = project
    bundle = ModelBundle.load(root / layout.model_dir(BASELINE) / "seed-0")
    kernel = next(v for v in bundle.model.weights if v.path.endswith("kernel"))
    values = keras.ops.convert_to_numpy(kernel)
    values[0, 0] = np.nan
    kernel.assign(values)
    bundle.save(tmp_path / "poisoned")
    data = promotion.load_prepared(root)
    with mlflow.start_run(experiment_id=mlflow.get_experiment_by_name(NAME).experiment_id) as run:
        for name in promotion.RECORDED_LOSSES:
            mlflow.log_metric(name, 0.5)
        version = str(store.log_and_register_model(
            "poisoned", tmp_path / "poisoned", store.signature(data.features, data.label, bundle.labels),
            data.sample("incremental_test", 5)[data.feature_names], NAME, {"run_id": run.info.run_id}))
    with pytest.raises(PromotionRefused) as refused:
        promotion.promote(params, version=version, force=True, reason="forced on purpose", root=root)
    said = one_line(refused)
    assert said.startswith(f"promotion of {NAME} v{version} refused, nothing changed: gate 'loads and predicts' "
                           f"failed: version {version} of '{NAME}': ")
    assert f"1 of its {sum(int(np.prod(v.shape)) for v in bundle.model.weights if 'float' in str(v.dtype))} " \
           f"weights are not finite (NaN or inf; the first in {kernel.path})" in said
    assert promotion.alias_version(NAME, promotion.CHAMPION) is None

    # As a user runs it: one line on stderr, TensorFlow's notices on loading it left out.
    (tmp_path / "params.yaml").write_text(f"tracking: {{experiment: {NAME}, registered_model: {NAME}}}\n")
    env = tool_env(MLFLOW_TRACKING_URI=mlflow.get_tracking_uri())
    env.pop("TF_CPP_MIN_LOG_LEVEL")
    done = subprocess.run(["retrainlab", "promote", "--params", str(tmp_path / "params.yaml"), "--version", version,
                           "--force", "--reason", "forced on purpose"], cwd=root, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 2 and done.stderr.splitlines() == [f"retrainlab: error: {said}"], done.stderr[-3000:]


def test_the_majority_class_target_is_what_always_predicting_the_commonest_training_label_scores(project):
    root, _, _, _ = project
    def split(name):
        return pd.read_parquet(root / layout.split_path(name))["churned"]

    commonest = pd.concat([split("initial_train"), split("incremental_train")]).value_counts().idxmax()
    old, new = ((split(name) == commonest).mean() for name in ("initial_test", "incremental_test"))
    assert old != new  # so that the weights of the two test sets tell
    share_of_new = CompareParams(new_traffic_share=0.2)
    target = promotion.majority_class_target(promotion.load_prepared(root), share_of_new)
    assert target == pytest.approx(0.8 * old + 0.2 * new)


def test_every_version_carries_the_digest_of_its_files_as_stored(project):
    _, _, records, _ = project
    for record in records.values():
        tags = MlflowClient().get_model_version(NAME, version_of(record)).tags
        assert tags[MODEL_DIGEST_TAG] == files_sha256(files_of(version_of(record)))


def test_a_version_whose_files_changed_is_refused_before_its_code_runs(project, tmp_path):
    root, params, records, _ = project
    version = version_of(records["fine-tune"])
    code = next(p for p in files_of(version).glob("*.py") if "set_model" in p.read_text())
    original = code.read_bytes()
    marker = tmp_path / "code-ran"
    code.write_bytes(original + f"\nimport pathlib; pathlib.Path({str(marker)!r}).write_text('ran')\n".encode())
    try:
        with pytest.raises(PromotionRefused) as refused:
            promotion.promote(params, version=version, root=root)
    finally:
        code.write_bytes(original)
    assert one_line(refused).endswith(
        f"version {version} of '{NAME}' does not match the digest recorded when it was registered: "
        "its files were changed in the artifact store; refusing to load it"
    )
    assert not marker.exists()
    assert promotion.alias_version(NAME, promotion.CHAMPION) is None


def test_what_loading_in_place_writes_into_the_store_is_ignored_and_never_loaded(project, tmp_path):
    """Loading `models:/NAME/VERSION` from a local store reads the files in place and writes
    MLflow's registered_model_meta and Python's __pycache__ into them (found when a test
    loaded every version before promoting): the digest must not fail on them, and a .pyc
    planted there must never run."""
    import os
    import subprocess
    import sys

    root, params, records, _ = project
    version = version_of(records["full-retrain"])
    load = f"import mlflow; mlflow.set_tracking_uri({mlflow.get_tracking_uri()!r}); " \
           f"mlflow.pyfunc.load_model('models:/{NAME}/{version}')"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    subprocess.run([sys.executable, "-c", load], check=True, capture_output=True, env=env)
    assert (files_of(version) / "registered_model_meta").is_file()
    caches = [p for p in files_of(version).rglob("__pycache__") if p.is_dir()]
    assert caches
    planted = caches[0] / "planted.cpython-311.pyc"
    planted.write_bytes(b"not bytecode")
    try:
        measured = promotion.measure(NAME, version, params.compare, promotion.load_prepared(root))
    finally:
        planted.unlink()
    assert 0 <= measured.old <= 1
    with tempfile.TemporaryDirectory() as scratch:
        local = promotion.verified_copy(NAME, version, Path(scratch))
        assert not [p for p in local.rglob("__pycache__")]


def test_a_version_without_its_digest_is_refused(project):
    root, params, records, _ = project
    version = version_of(records["incremental"])
    client = MlflowClient()
    digest = client.get_model_version(NAME, version).tags[MODEL_DIGEST_TAG]
    client.delete_model_version_tag(NAME, version, MODEL_DIGEST_TAG)
    try:
        with pytest.raises(PromotionRefused) as refused:
            promotion.promote(params, version=version, root=root)
    finally:
        client.set_model_version_tag(NAME, version, MODEL_DIGEST_TAG, digest)
    assert f"has no '{MODEL_DIGEST_TAG}' tag" in one_line(refused)


def test_measure_loads_the_copy_it_verified(project, monkeypatch):
    root, params, records, _ = project
    version = version_of(records["baseline"])
    loaded, load = [], mlflow.pyfunc.load_model

    def spy(uri, *args, **kwargs):
        loaded.append((uri, files_sha256(Path(uri))))  # a local directory, read before loading
        return load(uri, *args, **kwargs)

    monkeypatch.setattr(mlflow.pyfunc, "load_model", spy)
    measured = promotion.measure(NAME, version, CompareParams(new_traffic_share=0.2), promotion.load_prepared(root))
    assert loaded == [(loaded[0][0], MlflowClient().get_model_version(NAME, version).tags[MODEL_DIGEST_TAG])]
    assert Path(loaded[0][0]).is_absolute() and not Path(loaded[0][0]).is_relative_to(files_of(version).parent)
    # The baseline cannot predict the new label, "paused": its two accuracies differ, and the
    # target weighs them by the traffic share, 0.8 old and 0.2 new.
    assert measured.version == version and measured.old != measured.new
    assert measured.target == pytest.approx(0.8 * measured.old + 0.2 * measured.new)
    seed = str(records["baseline"].mlflow.model_seed)
    logged = records["baseline"].per_seed[seed]
    assert (measured.old, measured.new) == pytest.approx((logged["acc_old"], logged["acc_new"]))


def test_a_deleted_artifact_store_is_one_clear_line(project):
    root, params, records, recommended = project
    artifacts = root / store.ARTIFACTS_DIR
    artifacts.rename(root / "mlartifacts.moved")
    try:
        with pytest.raises(PromotionRefused) as refused:
            promotion.promote(params, root=root)
    finally:
        (root / "mlartifacts.moved").rename(artifacts)
    message = one_line(refused)
    assert f"the files of version {version_of(records[recommended])} of '{NAME}' are missing from the artifact " \
           f"store ({artifacts.as_uri()}/" in message
    assert "restore them (e.g. from a backup) or re-run the pipeline" in message
    assert "No such artifact" not in message


def test_a_champion_that_cannot_be_loaded_refuses_in_one_line(project):
    root, params, records, _ = project
    champion, candidate = version_of(records["baseline"]), version_of(records["full-retrain"])
    MlflowClient().set_registered_model_alias(NAME, promotion.CHAMPION, champion)
    files = files_of(champion)
    files.rename(files.with_name("moved"))
    try:
        with pytest.raises(PromotionRefused) as refused:
            promotion.promote(params, version=candidate, root=root)
    finally:
        files.with_name("moved").rename(files)
    assert one_line(refused).startswith(
        f"promotion of {NAME} v{candidate} refused, nothing changed: the champion v{champion} cannot be measured: "
        f"the files of version {champion} of '{NAME}' are missing from the artifact store"
    )
    assert promotion.alias_version(NAME, promotion.CHAMPION) == champion


def test_promote_takes_the_workspace_recommendation_not_a_challenger_moved_since(project, caplog):
    # A later execution on other data moved `challenger`; the workspace was then checked out
    # back to this execution's report (git checkout -- . && dvc checkout).
    root, params, records, recommended = project
    wanted = version_of(records[recommended])
    moved = next(version_of(r) for s, r in records.items() if version_of(r) != wanted)
    MlflowClient().set_registered_model_alias(NAME, promotion.CHALLENGER, moved)
    with caplog.at_level(logging.WARNING, logger=promotion.__name__):
        event = promotion.promote(params, root=root)
    assert event.version == wanted and promotion.alias_version(NAME, promotion.CHAMPION) == wanted
    assert f"'{promotion.CHALLENGER}' points at v{moved}" in caplog.text
    passed = {g.name for g in event.gates if g.passed}
    assert {"finite loss", "better than the majority class"} <= passed


def workspace_copy(root: Path, into: Path, strategy: str, **mlflow_changes) -> Path:
    """The project's report, records and data, with the recommended record's `mlflow` section changed."""
    for folder in (layout.REPORTS_DIR, Path("records"), layout.PREPARED_DIR):
        shutil.copytree(root / folder, into / folder)
    path = into / layout.record_path(strategy)
    record = json.loads(path.read_text())
    record["mlflow"] |= mlflow_changes
    path.write_text(json.dumps(record))
    return into


def test_a_recommendation_from_another_store_or_execution_is_refused(project, tmp_path):
    root, params, records, recommended = project
    version = version_of(records[recommended])
    workspace = workspace_copy(root, tmp_path / "other-run", recommended, run_id="abc123")
    with pytest.raises(RetrainlabError) as refused:
        promotion.promote(params, root=workspace)
    assert one_line(refused) == (
        f"{layout.REPORT_JSON} recommends {recommended} = v{version} from run abc123, but version {version} of "
        f"'{NAME}' comes from run {records[recommended].mlflow.run_id} (another store or execution); "
        "run dvc repro, or give --version"
    )
    workspace = workspace_copy(root, tmp_path / "no-version", recommended, model_version=99)
    with pytest.raises(RetrainlabError, match=f"but version 99 of '{NAME}' does not exist"):
        promotion.promote(params, root=workspace)
    assert promotion.alias_version(NAME, promotion.CHAMPION) is None


def test_promote_without_a_report_or_version_says_what_to_run(project, tmp_path):
    root, params, _, _ = project
    shutil.copytree(root / layout.PREPARED_DIR, tmp_path / layout.PREPARED_DIR)
    with pytest.raises(RetrainlabError) as refused:
        promotion.promote(params, root=tmp_path)
    assert one_line(refused) == (
        f"{layout.REPORT_JSON}: not found, so nothing is recommended; run the compare step (dvc repro) "
        "or give --version"
    )
