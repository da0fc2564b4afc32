"""What the compare step's MLflow run logs of the diagnosis: a text or categorical column's
figures under its own name, as MLflow takes a metric's name, logged to a real MLflow store;
and the diagnosis as comparison.json keeps it."""

import dataclasses
import json

import mlflow
from mlflow.tracking import MlflowClient

from retrainlab.decision.diagnosis import CategoryShift, Diagnosis, TextShift, metric_names


def diagnosis(*columns: str) -> Diagnosis:
    return Diagnosis(rows_old=100, rows_new=50, size_ratio=0.5, new_classes=[], vanished_classes=[],
                     label_shift_tv=0.0, psi_max=0.1, psi_mean=0.1, domain_auc=0.6, top_shifted_features=(),
                     text=tuple(TextShift(c, 0.61, 0.4, 0.25, 6.5, 23.75, 0.987) for c in columns))


def test_a_text_columns_figures_are_named_by_the_column_as_mlflow_allows(store):
    columns = ("review", "title: <b>/../é", "title___b______", "a.b", "a_b", "")
    found = diagnosis(*columns).metrics()
    assert found["diagnostics.text.review.oov_tokens"] == 0.61
    assert found["diagnostics.text.review.domain_auc"] == 0.987
    names = [name.split(".")[2] for name in found if name.startswith("diagnostics.text.") and name.endswith(".overlap")]
    # Every character a metric name may not hold, and the dot that would nest it, is _; a
    # column that comes out as an earlier one did is told apart from it.
    assert names == ["review", "title___b______", "title___b_______2", "a_b", "a_b_2", "_"]
    assert not [name for name in found if "text0" in name]
    with mlflow.start_run() as run:  # the test's own SQLite store
        mlflow.log_metrics(found)
    assert MlflowClient().get_run(run.info.run_id).data.metrics == found


def test_metric_names_are_short_and_unique():
    assert metric_names(["x" * 200, "x" * 61]) == ["x" * 60, "x" * 60 + "_2"]
    assert metric_names(["a b", "a_b", "a_b_2", "a-b"]) == ["a_b", "a_b_2", "a_b_2_2", "a-b"]


def test_categories_go_to_json_and_back_and_old_json_without_them_still_loads():
    shift = CategoryShift("item id", unseen_rows=0.31, new_values=1204, old_values=20000)
    found = dataclasses.replace(diagnosis(), categories=(shift,))
    written = json.loads(json.dumps(found.to_json()))
    assert written["categories"] == [{"feature": "item id", "unseen_rows": 0.31, "new_values": 1204,
                                      "old_values": 20000}]
    assert Diagnosis.from_json(written) == found
    assert "categories" not in diagnosis().to_json()  # written only where there is one
    assert Diagnosis.from_json(diagnosis().to_json()).categories == ()


def test_a_categorical_columns_figures_are_logged_under_its_name(store):
    found = dataclasses.replace(diagnosis(), categories=(CategoryShift("item id", 0.31, 1204, 20000),
                                                         CategoryShift("zip", 0.0, 0, 90))).metrics()
    assert {name: value for name, value in found.items() if name.startswith("diagnostics.categories.")} == {
        "diagnostics.categories.item_id.unseen_rows": 0.31, "diagnostics.categories.item_id.new_values": 1204.0,
        "diagnostics.categories.zip.unseen_rows": 0.0, "diagnostics.categories.zip.new_values": 0.0}
    with mlflow.start_run() as run:  # the test's own SQLite store
        mlflow.log_metrics(found)
    assert MlflowClient().get_run(run.info.run_id).data.metrics == found
