"""Challenger, gated promotion, rollback and serving, on a real MLflow store and registry."""

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from retrainlab.base import layout
from retrainlab.base.errors import RetrainlabError
from retrainlab.config import FilesParams
from retrainlab.pipeline.compare import compare_step
from retrainlab.pipeline.params import load_params
from retrainlab.pipeline.prepare import prepare_step
from retrainlab.pipeline.strategy_step import run_strategy
from retrainlab.registry import promotion
from retrainlab.registry.events import Event
from retrainlab.registry.promotion import PromotionRefused
from retrainlab.strategies import BASELINE
from retrainlab.tracking.pyfunc_model import MODEL_DIGEST_TAG

from ..conftest import PROJECT, served, tiny
from ..tracking.test_tracking import churn


def churn_with_pauses(n, seed):
    """The new data: a new plan, "trial", whose customers get a new label, "paused"."""
    frame = churn(n, seed, plans=("basic", "pro", "trial"))
    frame.loc[frame["plan"] == "trial", "churned"] = "paused"
    return frame


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    """The whole pipeline, in-process, on small CSV files, with a store of its own."""
    root = tmp_path_factory.mktemp("registry")
    (root / ".dvc").mkdir()
    churn(300, 0).to_csv(root / "old.csv", index=False)
    churn_with_pauses(200, 1).to_csv(root / "new.csv", index=False)
    # Options other than the other tests': the report, the registry and promotion take any set.
    params = tiny(load_params(PROJECT / "params.yaml"), strategies=("replay", "distill", "shrink-perturb"))
    files = FilesParams("old.csv", "new.csv", "churned")
    params = dataclasses.replace(
        params,
        seeds=[0, 1, 2],
        data=dataclasses.replace(params.data, source="files", files=files),
        tracking=dataclasses.replace(params.tracking, registered_model="churn", experiment="churn"),
    )
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow.db'}")
        mp.delenv("MLFLOW_RUN_ID", raising=False)
        prepare_step(params)
        records = {name: run_strategy(name, params) for name in (BASELINE, *params.strategies)}
        summary = compare_step(params)
        yield root, params, records, summary


def test_compare_writes_the_report_and_points_challenger_at_the_recommendation(pipeline):
    root, params, records, summary = pipeline
    for path in layout.REPORT_FILES:
        assert (root / path).is_file() and (root / path).stat().st_size > 0
    recommended = summary.recommended
    assert recommended in (BASELINE, *params.strategies)
    assert f"**Recommendation: {recommended}.**" in (root / layout.REPORT_MD).read_text()
    assert promotion.alias_version("churn", promotion.CHALLENGER) == str(records[recommended].mlflow.model_version)
    client = MlflowClient()
    for strategy, record in records.items():
        tags = client.get_model_version("churn", str(record.mlflow.model_version)).tags
        assert json.loads(tags[promotion.DETAILS_TAG])["recommended"] == recommended
        assert tags["comparison.verdict"] == summary.strategies[strategy]["verdict"]
    parent = client.get_run(records["baseline"].mlflow.parent_run_id)
    assert parent.data.tags["retrainlab.recommendation"] == recommended
    assert "diagnostics.domain_auc" in parent.data.metrics and "recommended.target" in parent.data.metrics
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id, "comparison")}
    assert "comparison/accuracy_vs_cost.png" in artifacts and "comparison/comparison.md" in artifacts
    assert summary.diagnostics.new_classes == ["paused"]


def test_each_version_has_a_few_named_tags_and_the_comparisons_other_figures_in_one(pipeline, tmp_path):
    """The versions page shows every tag of a version: the few that code reads back (lineage,
    status, the gates) or a person filters on, and one JSON tag for the rest of what the
    comparison said; the version's description has its other figures. The report's page is
    logged to the pipeline's run, where MLflow shows it."""
    root, params, records, summary = pipeline
    client = MlflowClient()
    for strategy, record in records.items():
        version = client.get_model_version("churn", str(record.mlflow.model_version))
        lineage = {"retrainlab.parent_version"} if record.mlflow.parent_version else set()
        assert set(version.tags) == {
            "strategy", "seed", "retrainlab.round", MODEL_DIGEST_TAG, "measure", "acc_old", "acc_new", "forgetting",
            "mean_acc_old", "mean_acc_new", "mean_target", "mean_over_seeds", "comparison.verdict",
            promotion.CEILING_TAG, promotion.DETAILS_TAG} | lineage, strategy
        row = summary.strategies[strategy]
        details = json.loads(version.tags[promotion.DETAILS_TAG])
        assert float(version.tags["mean_target"]) == pytest.approx(row["target"], abs=1e-4)
        assert [details["target_ci_low"], details["target_ci_high"]] == pytest.approx(
            [row["target_low"], row["target_high"]], abs=1e-4)
        assert details["acc_all"] == pytest.approx(record.means["acc_all"], abs=1e-4)
        assert details["forgetting"] == pytest.approx(row["forgetting"], abs=1e-4)
        assert details["parent_run_id"] == record.mlflow.parent_run_id and version.run_id == record.mlflow.run_id
        assert f"| acc_all | {record.per_seed[str(record.mlflow.model_seed)]['acc_all']:.4f} |" in version.description
    logged = f"comparison/{layout.REPORT_HTML.name}"
    page = client.download_artifacts(record.mlflow.parent_run_id, logged, str(tmp_path))
    assert Path(page).read_text() == (root / layout.REPORT_HTML).read_text()


def test_promote_refuse_force_and_rollback(pipeline):
    root, params, records, _ = pipeline
    challenger = promotion.alias_version("churn", promotion.CHALLENGER)
    first = promotion.promote(params, root=root)
    assert first.version == challenger and first.from_version is None
    assert promotion.alias_version("churn", promotion.CHAMPION) == challenger

    # The baseline cannot predict the label the new data brought: worse than the champion.
    worse = str(records["baseline"].mlflow.model_version)
    assert worse != challenger
    with pytest.raises(PromotionRefused, match=r"gate 'not worse than the champion' failed \(target .* worse by"):
        promotion.promote(params, version=worse, root=root)
    assert promotion.alias_version("churn", promotion.CHAMPION) == challenger
    assert promotion.alias_version("churn", promotion.PREVIOUS) is None

    with pytest.raises(RetrainlabError, match="--force needs --reason"):
        promotion.promote(params, version=worse, force=True, root=root)
    forced = promotion.promote(params, version=worse, force=True, reason="audit asked for it", root=root)
    assert forced.forced
    assert promotion.alias_version("churn", promotion.CHAMPION) == worse
    assert promotion.alias_version("churn", promotion.PREVIOUS) == challenger
    tags = MlflowClient().get_model_version("churn", worse).tags
    assert tags["last_promote.reason"] == "audit asked for it"
    history = [json.loads(v) for k, v in tags.items() if k.startswith("history.")]
    assert any(event["forced"] and event["from_version"] == challenger for event in history)
    assert Event.from_json(history[-1]).to_json() == history[-1]  # the tag keeps the event's shape, whole

    rolled = promotion.rollback(params, reason="forced one was worse")
    assert rolled.version == challenger and rolled.to_json() == Event.from_json(rolled.to_json()).to_json()
    assert promotion.alias_version("churn", promotion.CHAMPION) == challenger
    assert promotion.alias_version("churn", promotion.PREVIOUS) == worse


def test_serving_the_champion_answers_with_the_accuracy_logged_for_it(pipeline):
    root, params, records, _ = pipeline
    champion = promotion.alias_version("churn", promotion.CHAMPION)
    if champion is None:
        promotion.promote(params, root=root)
        champion = promotion.alias_version("churn", promotion.CHAMPION)
    record = next(r for r in records.values() if str(r.mlflow.model_version) == champion)
    logged = record.per_seed[str(record.mlflow.model_seed)]["acc_new"]

    test = pd.read_parquet(root / layout.split_path("incremental_test"))
    columns = ["tenure", "plan"]
    bad = [[float("nan"), "basic"], [float("inf"), "basic"], [1e308, "basic"], [12.0, None]]
    answer, refused = served(root, "models:/churn@champion", test[columns], f"sqlite:///{root / 'mlflow.db'}",
                             also=tuple({"dataframe_split": {"columns": columns, "data": [row]}} for row in bad)
                             + ({"dataframe_split": {"columns": columns, "data": []}},))
    predicted = [p["churned"] for p in answer]
    assert set(predicted) <= {"yes", "no", "paused"}
    assert np.mean(np.array(predicted) == test["churned"].to_numpy()) == pytest.approx(logged)
    # A row training would not use gets a 400 naming the column and the value, and no stack trace
    # (before: NaN, Infinity and 1e308 got a class; a null, TensorFlow's stack trace).
    said = ["'tenure' is empty or NaN", "'tenure' holds inf (not finite)",
            "'tenure' holds 1e+308 (beyond float32's range", "'plan' is empty"]
    for (status, body), words in zip(refused, said):
        assert status == 400 and body["error_code"] == "INVALID_PARAMETER_VALUE", body
        assert words in body["message"] and "stack_trace" not in body, body
    assert refused[-1] == (200, {"predictions": []})  # an empty request: an empty answer


def test_an_option_taken_out_of_strategies_is_left_out_of_the_comparison(pipeline):
    """Its record stays on disk (DVC keeps outputs that persist) but is not compared."""
    root, params, records, _ = pipeline
    fewer = dataclasses.replace(params, strategies={k: v for k, v in params.strategies.items() if k != "distill"})
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow.db'}")
        summary = compare_step(fewer)
    assert set(summary.strategies) == {BASELINE, *fewer.strategies} and (root / layout.record_path("distill")).is_file()
    assert "distill" not in (root / layout.REPORT_MD).read_text()
