"""What "better" means, end to end: the real `dvc repro` on an imbalanced table (3.6% of
rows late), once with `compare.metric: f1`, where accuracy and F1 rank the options
differently (by accuracy, keeping the model is as good; by F1 it is not) and the
recommendation follows F1 on every surface (the report, `dvc metrics
show`, the MLflow runs and versions, promotion's gates, serving at the declared threshold),
and once with a cost matrix, where the headline speaks in the costs' unit."""

import dataclasses
import json

import mlflow
import numpy as np
import pandas as pd
import pytest
import yaml
from mlflow import MlflowClient

from retrainlab.base import layout
from retrainlab.config import CompareParams
from retrainlab.decision import comparison
from retrainlab.measure.evaluation import decide
from retrainlab.measure.record import load as load_record
from retrainlab.measure.task import Scoring
from retrainlab.strategies import BASELINE

from .test_pipeline import check_pipeline, git, make_project, run

pytestmark = pytest.mark.integration

FEATURES = ["a", "b", "route"]


def late_table(rows: int, new: bool, seed: int) -> pd.DataFrame:
    """Departures: late where `a` is high; in the new data also every departure of a route
    the current model has never seen, "Z" (2.0% of old rows late, 5.7% of new)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 2))
    route = rng.choice(list("ABCDEF"), rows)
    if new:
        route = np.where(rng.random(rows) < 0.03, "Z", route)
    late = (x[:, 0] > 2.05) | (route == "Z")
    return pd.DataFrame({"a": x[:, 0].round(4), "b": x[:, 1].round(4), "route": route,
                         "status": np.where(late, "late", "on_time")})


def imbalanced_project(tmp_path, options, seeds, converged: bool = True, **compare) -> tuple:
    """The table as a project; `converged`: models that learn the rare lates (80 epochs at
    most, stopping early), else make_project's few epochs."""
    root = make_project(tmp_path, options=options, seeds=seeds, source="files",
                        files={"initial": "data/raw/initial.csv", "incremental": "data/raw/incremental.csv",
                               "label": "status", "features": [], "text": None})
    (root / "data/raw").mkdir(parents=True, exist_ok=True)
    late_table(4000, False, 1).to_csv(root / "data/raw/initial.csv", index=False)
    late_table(3000, True, 2).to_csv(root / "data/raw/incremental.csv", index=False)
    params = yaml.safe_load((root / "params.yaml").read_text())
    if converged:
        params["model"].update(hidden_units=[32, 16], epochs=80, patience=15)
        for settings in params["strategies"].values():
            if "epochs" in settings:
                settings["epochs"] = 20
    params["compare"].update(compare)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    git(root, "add", "-A")
    git(root, "commit", "-qm", "an imbalanced table")
    return root, params


def test_f1_on_an_imbalanced_table_decides_where_accuracy_would_keep_the_model(tmp_path):
    # A tolerance of 3 points: by accuracy, missing the new route's lates (3% of new rows, 1.5
    # points of target) costs the current model less than that; by F1 it costs far more.
    options = ("full-retrain", "replay")
    root, params = imbalanced_project(tmp_path, options, (0, 1, 2), metric="f1", tolerance=0.03, threshold=0.4)
    check_pipeline(root, "status", FEATURES, options)

    summary = json.loads((root / layout.SUMMARY).read_text())
    assert summary["scoring"] == {"metric": "f1", "positive": "late", "threshold": 0.4, "quantile": 0.5,
                                  "costs": None, "positive_rule": "the less frequent label of the old training rows"}
    rows = pd.concat([pd.read_csv(root / f"data/raw/{part}.csv") for part in ("initial", "incremental")])
    assert 0.03 <= (rows["status"] == "late").mean() <= 0.05  # the table is imbalanced: 3 to 5% of rows late

    # The same records weighed by accuracy and by F1: different answers, and the pipeline's is F1's.
    policy = CompareParams(**{k: v for k, v in params["compare"].items()
                              if k not in ("metric", "costs")})
    records = {name: load_record(root, name) for name in (BASELINE, *options)}
    assert {r.metric for r in records.values()} == {"f1"}
    by = {metric: comparison.recommend({n: dataclasses.replace(r, metric=metric) for n, r in records.items()},
                                       policy) for metric in ("accuracy", "f1")}
    report = json.loads((root / layout.REPORT_JSON).read_text())
    assert by["accuracy"].recommended == BASELINE != report["recommended"] == by["f1"].recommended
    # By accuracy keeping the model is as good as the best; by F1 it is behind it.
    assert by["accuracy"].assessments[BASELINE].standing == comparison.AS_GOOD
    assert by["f1"].assessments[BASELINE].standing in (comparison.WORSE, comparison.NOT_SEPARATED)

    text = (root / layout.REPORT_MD).read_text()
    assert "points of target F1 over keeping the model" in text.split("\n\n")[1]
    assert "The decision weighs F1 (compare.metric: f1) of the positive class 'late'" in text
    assert "| f1_old | f1_new |" in text and "| acc_old | acc_new | precision_all | recall_all |" in text
    # dvc metrics show: the chosen figure (its 120 columns hold no more; the report has accuracy beside it).
    metrics = json.loads((root / layout.metrics_path(report["recommended"])).read_text())
    assert {"f1_target", "f1_old", "f1_new"} <= set(metrics) and "acc_old" not in metrics
    assert set(json.loads((root / layout.DECISION).read_text())) == {"verdict", "f1_target"}

    # MLflow: the measure on the pipeline's run and on every version; every figure on the runs.
    client = MlflowClient(f"sqlite:///{root / 'mlflow.db'}")
    experiment = client.get_experiment_by_name(params["tracking"]["experiment"])
    runs = client.search_runs([experiment.experiment_id])
    parent = next(r for r in runs if r.data.tags.get("retrainlab.role") == "pipeline")
    compared = next(r for r in runs if r.info.run_name == layout.COMPARE)
    assert parent.data.tags["retrainlab.measure"] == "f1" and compared.data.params["compare.metric"] == "f1"
    name = params["tracking"]["registered_model"]
    challenger = client.get_model_version_by_alias(name, "challenger")
    assert challenger.tags["measure"] == "f1" and "f1_old" in challenger.tags and "mean_f1_new" in challenger.tags
    strategy_run = client.get_run(records[report["recommended"]].mlflow.run_id)
    assert {"f1_old", "precision_new", "recall_all", "acc_old"} <= set(strategy_run.data.metrics)

    # Promotion's gates read F1: the majority class (never late) scores 0 and is beaten.
    promoted = run(root, "retrainlab", "promote").stdout
    assert "pass  better than the majority class: target" in promoted and "f1_old" in promoted, promoted
    assert "against 0.0000 for always predicting the most frequent class" in promoted, promoted

    # Serving predicts late at the declared threshold, as the evaluation did.
    test = pd.read_parquet(root / layout.split_path("incremental_test"))
    mlflow.set_tracking_uri(f"sqlite:///{root / 'mlflow.db'}")
    served = mlflow.pyfunc.load_model(f"models:/{name}@champion")
    bundle = served.unwrap_python_model().bundle
    assert bundle.decision == {"positive": "late", "threshold": 0.4}
    probs = bundle.predict_proba(test[FEATURES])
    expected = decide(probs, bundle.labels, Scoring(positive="late", threshold=0.4))
    assert list(served.predict(test[FEATURES])["status"]) == list(expected)
    between = (probs[:, bundle.labels.index("late")] >= 0.4) & (probs[:, bundle.labels.index("late")] < 0.5)
    assert (expected[between] == "late").all()


def test_a_cost_matrix_makes_the_target_money_and_the_headline_speaks_in_its_unit(tmp_path):
    costs = {"late": {"late": 5, "on_time": 400}, "on_time": {"late": 30, "on_time": 0}}
    root, params = imbalanced_project(tmp_path, ("full-retrain",), (0,), converged=False, metric="cost", costs=costs,
                                      cost_unit="EUR", rows_per_week=20000)
    check_pipeline(root, "status", FEATURES, ("full-retrain",))
    report = json.loads((root / layout.REPORT_JSON).read_text())
    headline = report["headline"]
    rows = report["strategies"]
    if report["recommended"] != BASELINE:
        saved = rows[BASELINE]["target"] - rows[report["recommended"]]["target"]
        assert f"saves about {comparison.money_text(saved, 'EUR')} a row in errors" in headline, headline
        assert f"{saved * 20000:,.2f} EUR a week at 20,000 rows a week" in headline, headline
    else:
        kept = rows[BASELINE]["target"]
        assert (f"keeping it costs nothing to adopt; its errors cost about {comparison.money_text(kept, 'EUR')} a row, "
                f"{kept * 20000:,.2f} EUR a week") in headline, headline
    # The target is the mean cost of a row's (true, predicted) pair, from the registered seed's pairs.
    record = load_record(root, "full-retrain")
    pairs = [(actual, predicted, n) for actual, predicted, n in record.confusion["new"]]
    mean_cost = sum(costs[a][p] * n for a, p, n in pairs) / sum(n for *_, n in pairs)
    assert record.per_seed[str(record.mlflow.model_seed)]["cost_new"] == pytest.approx(mean_cost)
    assert set(json.loads((root / layout.DECISION).read_text())) == {"verdict", "cost_target"}
    assert "lower is better" in (root / layout.REPORT_MD).read_text()
