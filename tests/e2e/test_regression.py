"""Regression end to end: a model that predicts a number (the friedman source) through the
real `dvc repro`, every option, the registry, promotion with its gates in RMSE, and
serving a prediction in the label's units over HTTP."""

import json

import numpy as np
import pytest
import yaml

from retrainlab.base import layout
from retrainlab.base.tasks import REGRESSION
from retrainlab.data.task import AUTO_RULE
from retrainlab.strategies import BASELINE, UPDATES

from .between_rounds import check_a_regressor_between_rounds
from .test_pipeline import check_pipeline, git, make_project, run, served_champion

pytestmark = pytest.mark.integration


def test_dvc_repro_on_a_regressor_with_every_option_then_promotion_and_serving(tmp_path):
    options = tuple(UPDATES)
    root = make_project(tmp_path, options=options, seeds=(0,), source="friedman", scenario="covariate_shift",
                        synthetic={"rows": 1200, "features": 6, "classes": 2})
    # Four epochs leave every seed's model far from converged: the registered seed's own forgetting
    # is noisier than the means the recommendation weighs, so the promotion ceiling is looser here.
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["compare"]["max_forgetting"] = 0.25
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    git(root, "commit", "-qam", "a looser forgetting ceiling")
    check_pipeline(root, "y", [f"x{i}" for i in range(6)], options)

    summary = json.loads((root / layout.SUMMARY).read_text())
    assert summary["task"] == REGRESSION and summary["task_rule"] == "auto: the label holds fractions"
    assert summary["classes"]["initial_train"] == [] and summary["new_classes"] == []
    assert set(summary["label_stats"]["incremental_test"]) == {"mean", "std", "min", "max"}
    assert AUTO_RULE  # the rule README states
    records = {s: json.loads((root / layout.record_path(s)).read_text()) for s in (BASELINE, *options)}
    for strategy, record in records.items():
        assert {"rmse_old", "mae_new", "r2_all", "forgetting"} <= set(record), strategy
        assert not [name for name in record if name.startswith(("acc_", "f1_", "loss_"))], strategy
        assert "confusion" not in record
    # The inputs moved: every option that trains on the new rows beats keeping the model there.
    assert records["full-retrain"]["rmse_new"] < records[BASELINE]["rmse_new"]

    report = json.loads((root / layout.REPORT_JSON).read_text())
    assert report["strategies"][report["recommended"]]["target"] > 0
    text = (root / layout.REPORT_MD).read_text()
    assert "rmse_old" in text and "acc_old" not in text and "lower is better" in text

    # Promote the challenger: the gates read RMSE and MAE against constant predictions.
    promoted = run(root, "retrainlab", "promote").stdout
    for gate in ("better than predicting the mean", "better than predicting the median",
                 "forgetting under the ceiling"):
        assert f"pass  {gate}" in promoted, promoted
    assert "rmse_old" in promoted and "acc_old" not in promoted
    check_a_regressor_between_rounds(root, "y", params["tracking"]["experiment"], tmp_path)

    # The champion, served over HTTP, answers numbers in a column named after the label.
    answer, record, test = served_champion(root, records, [f"x{i}" for i in range(6)])
    predicted = np.array([row["y"] for row in answer], dtype=float)
    logged = record["per_seed"][str(record["mlflow"]["model_seed"])]["rmse_new"]
    assert np.sqrt(np.mean((predicted - test["y"].to_numpy()) ** 2)) == pytest.approx(logged, rel=1e-4)
