"""`retrainlab check` reads the chosen measure (compare.metric): on prepared data scored for
it, with a model whose probability of the positive class is a logistic function of one
column, and labels drawn from that probability (so its probabilities are calibrated)."""

import contextlib
import dataclasses
import io
import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import f1_score

from retrainlab.data import load_prepared, prepare
from retrainlab.decision import check
from retrainlab.measure import choice
from retrainlab.pipeline.check import NewRows, assess, markdown


class Logistic:
    """A model of the labels "p" and "q": the probability of "p" is 1 / (1 + exp(-2x)). It
    predicts probabilities only: a classifier's check must never ask it for a number."""

    labels = ["p", "q"]

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        p = 1 / (1 + np.exp(-2 * frame["x"].to_numpy(float)))
        return np.column_stack([p, 1 - p])

    def predict(self, frame):
        raise AssertionError("a classifier's check asked for a regressor's prediction")


def drawn(rows: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(shift, 1.0, rows)
    return pd.DataFrame({"x": x, "y": np.where(rng.random(rows) < 1 / (1 + np.exp(-2 * x)), "p", "q")})


def prepared_files(tmp_path, project_params, old: pd.DataFrame, new: pd.DataFrame, **compare):
    """`old` and `new` prepared as the user's files, scored as `compare` says."""
    old.to_csv(tmp_path / "old.csv", index=False)
    new.to_csv(tmp_path / "new.csv", index=False)
    files = dataclasses.replace(project_params.data.files, initial="old.csv", incremental="new.csv", label="y",
                                text=[])
    params = dataclasses.replace(project_params, data=dataclasses.replace(project_params.data, source="files",
                                                                          files=files),
                                 compare=dataclasses.replace(project_params.compare, **compare))
    with contextlib.redirect_stdout(io.StringIO()):
        prepare(params.data, tmp_path, choice.scorer(params.compare))
    return params, load_prepared(tmp_path)


def prepared(tmp_path, project_params, metric: str):
    return prepared_files(tmp_path, project_params, drawn(1500, 0), drawn(600, 1), metric=metric, positive_class="p")


def rows(frame: pd.DataFrame, labelled: bool = True) -> NewRows:
    frame = frame.reset_index(drop=True)
    labels = frame["y"] if labelled else pd.Series(dtype=object)
    return NewRows("week.csv", frame[["x"]], labels, 0)


def strict(result: dict) -> dict:
    """check.json as written: no NaN, no infinity."""
    from retrainlab.pipeline.check import _strict

    return json.loads(json.dumps(_strict(result), allow_nan=False))


def test_f1_is_measured_with_a_bootstrap_interval_and_estimated_without_labels_by_cbpe(tmp_path, project_params):
    params, data = prepared(tmp_path, project_params, "f1")
    model = Logistic()
    week = drawn(800, 2, shift=-0.8)  # fewer rows of "p": F1 falls, for this model and any other
    result = strict(assess(model, data, rows(week), params, None))
    old = data.frame("initial_test")
    predicted = np.where(model.predict_proba(old)[:, 0] >= 0.5, "p", "q")
    assert result["figure"] == "f1" and result["measure"] == {"metric": "f1", "figure": "f1", "shown": "F1",
                                                              "weighed": True, "instead": None}
    assert result["old_test"]["value"] == pytest.approx(f1_score(old["y"], predicted, pos_label="p"))
    assert result["old_test"]["interval"] == result["new"]["interval"] == "bootstrap over the rows"
    assert result["new"]["how"] == check.MEASURED and result["new"]["value"] < result["old_test"]["value"]
    assert result["new"]["low"] < result["new"]["value"] < result["new"]["high"]
    assert any("of F1 (95% bootstrap interval" in reason for reason in result["reasons"])
    assert [b["figure"] for b in result["beside"]] == ["acc"]  # accuracy, read beside it
    assert "bootstrap interval on the 800 labelled new rows" in result["labels_needed"]["for"]
    page = markdown({**result, "model": {"spec": "m", "version": None}})
    assert "F1 on the new rows, measured" in page and "bootstrap over the rows" in page
    assert "accuracy on the old test set, beside it" in page
    # Without labels: CBPE, from the calibrated probabilities, near the F1 the labels give.
    estimated = strict(assess(model, data, rows(week, labelled=False), params, None))
    assert estimated["figure"] == "f1" and estimated["new"]["how"] == check.CBPE
    assert abs(estimated["new"]["value"] - result["new"]["value"]) < 0.04
    assert any("estimated without labels by CBPE" in reason for reason in estimated["reasons"])
    assert "calibrated" in estimated["limits"]
    assert estimated["labels_needed"]["for"].startswith("accuracy, at 0.5")


def test_log_loss_takes_the_classifier_branch_and_without_labels_accuracy_is_estimated_instead(tmp_path,
                                                                                               project_params):
    params, data = prepared(tmp_path, project_params, "log_loss")
    week = drawn(500, 3)
    result = strict(assess(Logistic(), data, rows(week), params, None))
    assert result["figure"] == "loss" and result["figure_shown"] == "log loss" and result["measure"]["weighed"]
    assert result["new"]["how"] == check.MEASURED and result["unseen_class_share"] == 0.0
    estimated = strict(assess(Logistic(), data, rows(week, labelled=False), params, None))
    assert estimated["figure"] == "acc" and estimated["new"]["how"] == check.ESTIMATED
    assert estimated["measure"]["instead"] == ("log loss has no sound estimate without labels: accuracy is "
                                               "estimated instead (ATC) and weighed")
    assert estimated["reasons"][0] == estimated["measure"]["instead"]
    assert [b["figure"] for b in estimated["beside"]] == ["loss"]  # the log loss on the old test set, beside it


def test_a_measure_undefined_on_the_new_rows_is_said_and_accuracy_is_weighed(tmp_path, project_params):
    params, data = prepared(tmp_path, project_params, "recall")
    week = drawn(300, 4).assign(y="q")  # no row of the positive class "p"
    result = strict(assess(Logistic(), data, rows(week), params, None))
    said = "recall is undefined on the labelled new rows: they hold no row of the positive class 'p'"
    assert result["reasons"][0].startswith(said) and result["measure"]["instead"].startswith(said)
    assert result["figure"] == "acc" and result["new"]["how"] == check.MEASURED and "value" in result["new"]
    assert result["verdict"] in check.VERDICTS
    recall = result["beside"][0]
    assert recall["figure"] == "recall" and recall["new"] == {"how": check.UNDEFINED}  # no NaN: no value at all


class Linear:
    """A regressor: 2x. It predicts numbers only: a regressor's check must never ask it for probabilities."""

    labels = None

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return 2 * frame["x"].to_numpy(float)

    def predict_proba(self, frame):
        raise AssertionError("a regressor's check asked for a classifier's probabilities")


def numbers(rows: int, seed: int, spread: float = 1.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1.0, rows)
    return pd.DataFrame({"x": x, "y": 2 * x + rng.normal(0, spread, rows)})


def regression(tmp_path, project_params, metric: str):
    return prepared_files(tmp_path, project_params, numbers(1200, 0), numbers(400, 1), metric=metric)


@pytest.mark.parametrize("metric", ["mae", "r2"])
def test_a_regressors_chosen_measure_takes_the_regressor_branch_and_is_compared_as_it_is(tmp_path, project_params,
                                                                                         metric):
    params, data = regression(tmp_path, project_params, metric)
    assert data.summary.task == "regression"
    week = numbers(500, 2, spread=1.5)  # a larger error on the new rows
    result = strict(assess(Linear(), data, rows(week), params, None))
    error = week["y"] - 2 * week["x"]
    spread = ((week["y"] - week["y"].mean()) ** 2).sum()
    expected = error.abs().mean() if metric == "mae" else 1 - (error**2).sum() / spread
    assert result["figure"] == metric and result["new"]["value"] == pytest.approx(expected)
    assert result["new"]["how"] == check.MEASURED and result["new"]["interval"] == "bootstrap over the rows"
    assert [b["figure"] for b in result["beside"]] == ["relative_error"] and result["rmse"]["new"]["value"] > 0
    assert result["verdict"] in (check.COMPARE, check.URGENT)
    said = "moves with the labels' spread" in result["limits"]
    assert said == (metric == "mae")
    unlabelled = strict(assess(Linear(), data, rows(week, labelled=False), params, None))
    assert unlabelled["figure"] == metric and unlabelled["new"] == {"how": check.NOT_ESTIMATED}
    assert any("no label-free estimate of a regressor's error" in r for r in unlabelled["reasons"])


def test_a_forecast_made_in_accuracy_has_accuracy_weighed_as_it_is(tmp_path, project_params):
    """The forecast decides, in one measure with the loss: where it fell back to accuracy (the
    chosen measure undefined on its held-out rows), accuracy is weighed, and said to be."""
    params, data = prepared(tmp_path, project_params, "f1")
    gain = check.Forecast("full-retrain", check.Estimate(0.03, 0.02, 0.04), 0.8, "trained once", {"cpu_seconds": 1.0},
                          "acc")
    result = strict(assess(Logistic(), data, rows(drawn(400, 5)), params, None, found=[gain],
                           forecast_said="F1 is undefined on the held-out new rows: ..."))
    assert result["figure"] == "acc" and result["measure"]["weighed"] is False
    assert result["reasons"][0] == ("the forecast could not be made in F1 (its line says why): accuracy is weighed "
                                    "instead, as the forecast is")
    assert result["verdict"] == check.COMPARE and result["forecast"]["options"][0]["figure"] == "acc"
