"""The measure of each task, defined once (retrainlab.measure.task), and a regressor's figures
added up chunk by chunk (evaluation.Errors), against scikit-learn on the whole."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

from retrainlab.base.tasks import CLASSIFICATION, REGRESSION
from retrainlab.measure import evaluation
from retrainlab.config.sections import MEASURE_NAMES
from retrainlab.measure.task import FORGETTING, MEASURES, choices, measure_of, of_figures

CLS, REG = MEASURES[CLASSIFICATION], MEASURES[REGRESSION]


def test_each_task_names_its_figures_on_old_new_and_all_then_forgetting():
    stems = ("acc", "loss", "f1", "bacc", "precision", "recall")
    assert CLS.metric_names == tuple(f"{s}_{t}" for t in ("old", "new", "all") for s in stems) + ("forgetting",)
    assert REG.metric_names == ("rmse_old", "mae_old", "r2_old", "rmse_new", "mae_new", "r2_new", "rmse_all",
                                "mae_all", "r2_all", "forgetting")
    assert (REG.primary, REG.old, REG.new, REG.all) == ("rmse", "rmse_old", "rmse_new", "rmse_all")
    assert (CLS.primary, CLS.old, CLS.new, CLS.all) == ("acc", "acc_old", "acc_new", "acc_all")
    assert REG.headline == ("rmse_old", "rmse_new", "rmse_all", FORGETTING)
    assert CLS.headline == ("acc_old", "acc_new", "acc_all", FORGETTING)
    assert (CLS.loss, REG.loss) == ("loss", "rmse")
    assert REG.name("mae", "new") == "mae_new"


def test_a_chosen_measure_is_the_primary_figure_and_the_tasks_own_stays_beside_it():
    f1 = measure_of(CLASSIFICATION, "f1")
    assert (f1.primary, f1.old, f1.target_name, f1.metric) == ("f1", "f1_old", "f1_target", "f1")
    assert f1.measures[1:] == ("acc", "loss", "bacc", "precision", "recall") and f1.reference == "acc"
    assert f1.table_row[:4] == ("f1_old", "f1_new", "acc_old", "acc_new")
    auc = measure_of(CLASSIFICATION, "roc_auc")
    assert auc.primary == "auc" and "auc" not in CLS.measures  # computed only where chosen
    loss = measure_of(CLASSIFICATION, "log_loss")
    assert not loss.higher_is_better and loss.relative and loss.primary == "loss" and not loss.regression
    r2 = measure_of(REGRESSION, "r2")
    assert r2.higher_is_better and not r2.relative and r2.regression and r2.measures == ("r2", "rmse", "mae")
    assert measure_of(REGRESSION, "mape").relative and measure_of(REGRESSION, "pinball").primary == "pinball"
    for task in (CLASSIFICATION, REGRESSION):
        cost = measure_of(task, "cost")
        assert cost.primary == "cost" and not cost.higher_is_better and cost.relative
    assert measure_of(CLASSIFICATION, "auto") == CLS and measure_of(REGRESSION, None) == REG


def test_a_measure_that_does_not_fit_the_task_is_refused_naming_the_valid_ones():
    with pytest.raises(ValueError, match="does not measure a regression model; choose one of: rmse, mae, r2"):
        measure_of(REGRESSION, "roc_auc")
    with pytest.raises(ValueError, match="'f2'"):
        measure_of(CLASSIFICATION, "f2")
    assert set(choices(CLASSIFICATION)) | set(choices(REGRESSION)) == set(MEASURE_NAMES)  # params' list agrees


def test_the_task_is_read_from_its_name_or_from_the_figures():
    assert measure_of(None) == CLS and measure_of(CLASSIFICATION) == CLS and measure_of(REGRESSION) == REG
    assert of_figures({"rmse_old": 1.0, "forgetting": 0.1}) == REG
    assert of_figures({"acc_old": 0.9}) == CLS and of_figures({}) == CLS
    assert of_figures({"rmse_old": 1.0, "mape_old": 0.1}, "mape").primary == "mape"
    with pytest.raises(KeyError):
        measure_of("ranking")


def test_the_target_weighs_old_and_new_by_the_traffic_share():
    assert CLS.target({"acc_old": 0.9, "acc_new": 0.5}, 0.25) == pytest.approx(0.8)
    assert REG.target({"rmse_old": 2.0, "rmse_new": 6.0}, 0.25) == pytest.approx(3.0)
    assert REG.target({"rmse_old": 2.0, "rmse_new": 6.0}, 0.0) == 2.0
    assert REG.target({"rmse_old": 2.0, "rmse_new": 6.0}, 1.0) == 6.0
    assert REG.describe_target(0.25) == "0.75 x rmse_old + 0.25 x rmse_new"


def test_forgetting_is_how_much_worse_the_old_data_got_in_the_figures_units():
    assert CLS.forgetting(0.9, 0.7) == pytest.approx(0.2)  # accuracy fell: forgot
    assert CLS.forgetting(0.7, 0.9) == pytest.approx(-0.2)
    assert REG.forgetting(2.0, 2.5) == pytest.approx(0.5)  # the error grew: forgot
    assert REG.forgetting(2.5, 2.0) == pytest.approx(-0.5)


def test_better_follows_the_figures_direction():
    assert CLS.higher_is_better and not REG.higher_is_better
    assert CLS.goodness(0.8) == 0.8 and REG.goodness(3.0) == -3.0
    assert CLS.improvement(0.9, 0.8) == pytest.approx(0.1)
    assert REG.improvement(2.0, 3.0) == pytest.approx(1.0)  # 2 is better than 3 by 1
    assert REG.improvement(3.0, 2.0) == pytest.approx(-1.0)


def test_a_regressors_policy_shares_are_shares_of_the_baselines_error():
    assert CLS.scale(7.5) == 1.0 and not CLS.relative
    assert REG.relative and REG.scale(7.5) == 7.5 and REG.scale(-2.0) == 2.0
    assert REG.scale(None) == REG.scale(0.0) == REG.scale(math.nan) == REG.scale(math.inf) == 1.0


def test_each_figure_keeps_to_its_range():
    assert CLS.bounds("acc_new") == CLS.bounds("f1_all") == CLS.bounds("target") == (0, 1)
    assert CLS.bounds("forgetting") == (-1, 1)
    assert CLS.bounds("loss_old") == (0, math.inf) and CLS.bounds("cpu_seconds") is None
    assert measure_of(CLASSIFICATION, "log_loss").bounds("forgetting") is None
    assert REG.bounds("rmse_old") == REG.bounds("mae_all") == REG.bounds("target") == (0, math.inf)
    assert REG.bounds("r2_new") == (-math.inf, 1.0)
    assert REG.bounds("forgetting") is None and REG.bounds("cpu_seconds") is None


def test_figures_are_shown_as_their_scale_tells():
    assert format(0.91234, CLS.spec) == "0.9123"
    assert format(12345.678, REG.spec) == "1.235e+04" and format(0.0012345, REG.spec) == "0.001234"


@given(
    truth=st.lists(st.floats(-1e3, 1e3), min_size=2, max_size=40),
    noise=st.integers(0, 100),
    cut=st.integers(0, 40),
)
def test_errors_added_chunk_by_chunk_equal_scikit_learns_on_the_whole(truth, noise, cut):
    y = np.array(truth)
    predicted = y + np.random.default_rng(noise).normal(size=len(y))
    cut = min(cut, len(y))
    chunked = evaluation.Errors().add(predicted[:cut], y[:cut]) + evaluation.Errors().add(predicted[cut:], y[cut:])
    figures = chunked.metrics()
    assert figures["rmse"] == pytest.approx(math.sqrt(mean_squared_error(y, predicted)), rel=1e-9)
    assert figures["mae"] == pytest.approx(mean_absolute_error(y, predicted), rel=1e-9)
    if np.ptp(y) > 1e-6:
        assert figures["r2"] == pytest.approx(r2_score(y, predicted), rel=1e-6, abs=1e-9)


def test_r2_pools_a_large_mean_without_losing_precision_and_is_nan_for_a_constant_label():
    y = 1e9 + np.array([0.0, 1.0, 2.0, 3.0])
    predicted = y + np.array([0.5, -0.5, 0.5, -0.5])
    pooled = evaluation.Errors().add(predicted[:2], y[:2]) + evaluation.Errors().add(predicted[2:], y[2:])
    assert pooled.metrics()["r2"] == pytest.approx(r2_score(y, predicted))
    assert pooled.mean == pytest.approx(1e9 + 1.5) and pooled.rows == 4
    assert math.isnan(evaluation.Errors().add(np.array([1.0, 2.0]), np.array([3.0, 3.0])).metrics()["r2"])
    empty = evaluation.Errors() + evaluation.Errors()
    assert empty.rows == 0 and empty.mean == 0.0


def test_a_regressors_evaluation_names_its_figures_and_keeps_the_numbers():
    tests = {"old": [(None, np.array([1.0, 2.0, 3.0]))], "new": [(None, np.array([10.0]))]}
    kept = evaluation.Predictions(numbers=True)
    figures = evaluation.evaluate(lambda x: np.array([[1.0], [2.0], [5.0]]) if x is None and len(kept.rows) == 0
                                  else np.array([7.0]), [], tests, kept, REG)
    assert set(figures) == set(REG.metric_names) - {FORGETTING}
    assert figures["rmse_old"] == pytest.approx(math.sqrt(4 / 3))
    assert figures["mae_new"] == pytest.approx(3.0)
    assert figures["rmse_all"] == pytest.approx(math.sqrt((4 + 9) / 4))
    frame = kept.frame()
    assert list(frame["actual"]) == [1.0, 2.0, 3.0, 10.0] and list(frame["predicted"]) == [1.0, 2.0, 5.0, 7.0]
    assert frame["actual"].dtype == np.float64 and kept.confusion() == {}


def test_errors_take_columns_and_integers_as_numbers():
    column = np.array([[1], [2], [4]])  # (rows, 1) ints, as a model's output or a label column
    figures = evaluation.Errors().add(np.array([[2], [2], [2]]), column).metrics()
    assert figures["rmse"] == pytest.approx(math.sqrt(5 / 3)) and figures["mae"] == pytest.approx(1.0)
    big = np.array([3_000_000_000, 3_000_000_001])  # squared, beyond int64 unless taken as floats
    assert evaluation.Errors().add(big + 3_100_000_000, big).metrics()["rmse"] == pytest.approx(3.1e9)
