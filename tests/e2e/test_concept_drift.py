"""The case that once got a wrong answer: the labels follow a new rule on the same inputs,
and the user says the old rule is obsolete (new_traffic_share 1.0). The whole pipeline runs
in-process on the synthetic concept-drift scenario, with a real store and real training."""

import dataclasses

import pytest

from retrainlab.pipeline.compare import compare_step
from retrainlab.pipeline.params import load_params
from retrainlab.pipeline.prepare import prepare_step
from retrainlab.pipeline.strategy_step import run_strategy
from retrainlab.strategies import BASELINE, CATALOGUE

from ..conftest import PROJECT, tiny

pytestmark = pytest.mark.integration


def test_concept_drift_at_share_one_recommends_an_option_as_good_as_the_best(tmp_path, monkeypatch):
    params = tiny(load_params(PROJECT / "params.yaml"), strategies=("full-retrain", "incremental"))
    params = dataclasses.replace(
        params,
        seeds=[0, 1],
        data=dataclasses.replace(params.data, source="synthetic", scenario="concept_drift", affected_classes=4,
                                 synthetic=dataclasses.replace(params.data.synthetic, rows=600)),
        compare=dataclasses.replace(params.compare, new_traffic_share=1.0, max_seeds=3, budget_seconds=60),
        tracking=dataclasses.replace(params.tracking, experiment="drift", registered_model="drift"),
    )
    (tmp_path / ".dvc").mkdir()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    prepare_step(params, tmp_path)
    for name in (BASELINE, *params.strategies):
        run_strategy(name, params, tmp_path)
    summary = compare_step(params, tmp_path).to_json()

    rows = summary["strategies"]
    best = max(rows, key=lambda s: rows[s]["target"] if not rows[s]["verdict"].startswith("rejected: forgets") else -1)
    assert rows[summary["recommended"]]["target"] >= rows[best]["target"] - params.compare.tolerance
    assert summary["forgetting_ceiling"] is None  # no old traffic: forgetting it is no reason to reject
    assert not any("forgets too much" in row["verdict"] for row in rows.values())
    assert summary["changes"][0]["kind"] == "concept drift"  # rotated labels may move the class mix too
    assert "Forgetting ceiling: none (all traffic is new)" in " ".join(summary["reasons"])
    assert summary["headline"].startswith(CATALOGUE[summary["recommended"]].action)
