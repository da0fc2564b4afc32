"""The compare step's report for a regressor: predicted-against-true and residual plots where a
classifier's confusion matrices go, the RMSE's direction in the plots, and DVC's confusion plot
fed with bands of the label's range; a classifier's report as before. Real files, no mocks."""

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest
from matplotlib import image

from retrainlab.base import layout
from retrainlab.config import CompareParams
from retrainlab.decision import comparison
from retrainlab.decision.diagnosis import Diagnosis, ShiftedFeature
from retrainlab.measure.record import Runs, StrategyRecord, summarize
from retrainlab.measure.task import measure_of
from retrainlab.reporting import plots, report

POLICY = CompareParams(new_traffic_share=0.5, tolerance=0.01, max_forgetting=0.025)
PNG = b"\x89PNG\r\n\x1a\n"


def regression_record(rmse_old, rmse_new, forgetting=0.0, cpu=10.0, version=1):
    per_seed = {
        str(i): {"rmse_old": o, "rmse_new": n, "rmse_all": (o + n) / 2, "mae_old": 0.8 * o, "mae_new": 0.8 * n,
                 "r2_all": 0.5, "forgetting": forgetting, "cpu_seconds": cpu, "gpu_seconds": 0.0}
        for i, (o, n) in enumerate(zip(rmse_old, rmse_new))
    }
    means, ci95 = summarize(list(per_seed.values()))
    return StrategyRecord("any", 1, "cpu", {}, means, ci95, per_seed,
                          Runs("1", "r", "p", {}, "m", version, 0))


def classifier_record(acc_old, acc_new, cpu=10.0, confusion=None):
    per_seed = {str(i): {"acc_old": o, "acc_new": n, "acc_all": (o + n) / 2, "f1_all": 0.5, "forgetting": 0.0,
                         "cpu_seconds": cpu, "gpu_seconds": 0.0} for i, (o, n) in enumerate(zip(acc_old, acc_new))}
    means, ci95 = summarize(list(per_seed.values()))
    return StrategyRecord("any", 1, "cpu", {}, means, ci95, per_seed,
                          Runs("1", "r", "p", {}, "m", 1, 0), confusion=confusion)


DIAGNOSIS = Diagnosis(rows_old=300, rows_new=100, size_ratio=1 / 3, new_classes=[], vanished_classes=[],
                      label_shift_tv=0.0, psi_max=0.4, psi_mean=0.1, domain_auc=0.7,
                      top_shifted_features=(ShiftedFeature("x0", "numeric", 0.4, 0.3),))


def predictions(bias_old: float, bias_new: float, rows: int = 50) -> pd.DataFrame:
    """Numbers as Predictions(numbers=True).frame() holds them: each test set's true values
    from 2 to 28, predicted `bias` too high, with a little noise."""
    noise = np.random.default_rng(0).normal(0, 0.1, rows)
    truth = np.linspace(2.0, 28.0, rows)
    return pd.DataFrame({"test_set": ["old"] * rows + ["new"] * rows, "actual": np.concatenate([truth, truth]),
                         "predicted": np.concatenate([truth + bias_old + noise, truth + bias_new + noise])})


def curves(figure: str, held_out: str) -> pd.DataFrame:
    return pd.DataFrame({"epoch": [1, 2, 3], "loss": [9.0, 4.0, 2.0], figure: [3.0, 2.0, 1.4],
                         f"held_out_{held_out}_old": [2.0, 2.1, 2.2], f"held_out_{held_out}_new": [5.0, 4.0, 3.0]})


def test_dvc_gets_bands_of_the_labels_range_that_sort_as_text_and_the_numbers_stay():
    frame = pd.DataFrame({"test_set": ["old", "old", "old", "new", "new"], "actual": [2.05, 10.0, 28.16, 5.0, 6.0],
                          "predicted": [-1.0, 12.0, 40.0, 5.5, math.nan]})
    banded = plots.banded(frame)
    assert list(banded.columns) == ["test_set", "actual", "predicted", plots.ACTUAL_VALUE, plots.PREDICTED_VALUE]
    # Ten bands of 2.611 from 2.05: the first and the last open-ended, for predictions beyond the true values.
    assert list(banded["actual"]) == ["01: under 4.66", "04: 9.88 to 12.49", "10: 25.55 or more",
                                      "02: 4.66 to 7.27", "02: 4.66 to 7.27"]
    assert list(banded["predicted"]) == ["01: under 4.66", "04: 9.88 to 12.49", "10: 25.55 or more",
                                         "02: 4.66 to 7.27", ""]
    assert banded[plots.ACTUAL_VALUE].tolist() == frame["actual"].tolist()
    assert banded[plots.PREDICTED_VALUE].iloc[:4].tolist() == frame["predicted"].iloc[:4].tolist()
    everything = plots.banded(pd.DataFrame({"test_set": "old", "actual": np.linspace(0, 1000, 101),
                                            "predicted": np.linspace(0, 1000, 101)}))
    names = sorted(set(everything["actual"]))
    assert len(names) == plots.BANDS and names == list(dict.fromkeys(everything["actual"]))  # text order = value order
    assert names[1] == "02: 100 to 200" and names[-1] == "10: 900 or more"
    assert set(plots.banded(frame.assign(actual=5.0))["actual"]) == {"01: 5"}
    assert plots.banded(frame.iloc[:0]).empty


def write_regression_case(root, numbers=None):
    records = {"baseline": regression_record([2.0, 2.1], [6.0, 6.2], version=1),
               "full-retrain": regression_record([1.9, 1.95], [3.0, 3.1], forgetting=-0.1, cpu=100, version=2),
               "incremental": regression_record([4.4, 4.5], [4.5, 4.6], forgetting=2.4, cpu=20, version=3)}
    biases = {"baseline": (0.0, 4.0), "full-retrain": (0.1, 0.5), "incremental": (0.8, -0.3)}
    for strategy, (old, new) in biases.items():
        path = root / layout.predictions_path(strategy)
        path.parent.mkdir(parents=True, exist_ok=True)
        frame = numbers(strategy) if numbers else plots.banded(predictions(old, new))
        frame.to_csv(path, index=False)
    verdict = comparison.recommend(records, POLICY)
    summary = report.write_report(root, records, verdict, DIAGNOSIS, POLICY,
                                  {s: curves("rmse", "rmse") for s in records})
    return records, verdict, summary


def test_a_regressors_report_draws_predictions_and_residuals_where_a_classifier_has_confusion(tmp_path):
    _, verdict, summary = write_regression_case(tmp_path)
    assert verdict.measure == measure_of("regression") and summary.recommended == "full-retrain"
    for path in (*layout.REPORT_FILES, report.REPORT_PNG_PREDICTED, report.REPORT_PNG_RESIDUALS):
        assert (tmp_path / path).is_file(), path
    for path in (layout.REPORT_PNG_COST, layout.REPORT_PNG_CURVES, layout.REPORT_PNG_CONFUSION,
                 report.REPORT_PNG_PREDICTED, report.REPORT_PNG_RESIDUALS):
        assert (tmp_path / path).read_bytes().startswith(PNG), path
    # One panel per option, four to a row: three options side by side; the note is one small panel.
    height, width, _ = image.imread(tmp_path / report.REPORT_PNG_PREDICTED).shape
    assert width > 2 * height
    assert image.imread(tmp_path / layout.REPORT_PNG_CONFUSION).shape[:2] == (160, 600)

    text = (tmp_path / layout.REPORT_MD).read_text()
    assert "## Per class" not in text and "](confusion.png)" not in text
    assert "## Predicted against true" in text
    assert text.index("## The strategies side by side") < text.index("## Predicted against true") < text.index(
        "## What kind of new data is this?")
    assert text.endswith("![predicted against true](predicted_vs_true.png)\n\n![residuals](residuals.png)\n")
    lines = text.splitlines()
    assert {f"On the {test_set} test set, in the label's units:" for test_set in ("old", "new")} <= set(lines)
    assert "| strategy | rows | mean residual | residual SD | 90% of errors within |" in lines
    # The baseline predicts the new data 4 too high: a residual (true - predicted) of -4, spread by the noise only.
    _, rows, mean, sd, p90 = row_of(lines, "new", "baseline")
    assert rows == "50" and float(mean) == pytest.approx(-4, abs=0.05) and float(sd) == pytest.approx(0.1, abs=0.03)
    assert float(p90) == pytest.approx(4, abs=0.2)
    _, rows, mean, *_ = row_of(lines, "old", "incremental")
    assert rows == "50" and mean.startswith("-") and float(mean) == pytest.approx(-0.8, abs=0.05)
    assert row_of(lines, "old", "full-retrain")[2].startswith("-")

    # accuracy_vs_cost.csv keeps its name; its Pareto front is in the RMSE's direction (lower is better):
    # incremental costs more than keeping the model for a higher error, so it is off the front.
    scatter = pd.read_csv(tmp_path / layout.REPORT_SCATTER).set_index("strategy")
    targets = scatter["target"].to_dict()
    assert targets["full-retrain"] < targets["baseline"] < targets["incremental"]
    assert scatter["pareto"].to_dict() == {"baseline": True, "full-retrain": True, "incremental": False}


def row_of(lines: list[str], test_set: str, strategy: str) -> list[str]:
    """A strategy's row of the residual table of a test set, cell by cell."""
    below = lines[lines.index(f"On the {test_set} test set, in the label's units:"):]
    row = next(line for line in below if line.startswith(f"| {strategy} |"))
    return [cell.strip() for cell in row.strip("|").split("|")]


def test_a_predictions_file_written_before_the_bands_is_read_as_numbers(tmp_path):
    write_regression_case(tmp_path, numbers=lambda strategy: predictions(1.0, 1.0))
    numbers = report.read_numbers(tmp_path, ["baseline", "missing"])
    assert list(numbers) == ["baseline"] and numbers["baseline"]["actual"].dtype == float
    table = report.residual_table(numbers)
    assert list(table) == ["old", "new"]
    assert table["old"].loc["baseline", "mean"] == pytest.approx(-1.0, abs=0.05)
    assert table["old"].loc["baseline", "rows"] == 50


def test_a_classifiers_report_keeps_its_confusion_matrices_and_notes_in_a_regressors_plots(tmp_path):
    confusion = {"old": [["0", "0", 9], ["0", "1", 1], ["1", "1", 10]], "new": [["0", "0", 5], ["1", "0", 5]]}
    records = {"baseline": classifier_record([0.95, 0.95], [0.5, 0.5], confusion=confusion),
               "full-retrain": classifier_record([0.95, 0.96], [0.9, 0.91], cpu=100, confusion=confusion)}
    stale = tmp_path / report.REPORT_PNG_PREDICTED
    stale.parent.mkdir(parents=True)
    stale.write_bytes(PNG)  # a regressor compared here before
    verdict = comparison.recommend(records, POLICY)
    report.write_report(tmp_path, records, verdict, DIAGNOSIS, POLICY,
                        {s: curves("accuracy", "acc") for s in records})
    # The regressor's plots are outputs whatever the task: a classifier writes a small note there.
    for path in (stale, tmp_path / report.REPORT_PNG_RESIDUALS):
        assert path.read_bytes() != PNG and image.imread(path).shape[0] < 200
    for path in layout.REPORT_FILES:
        assert (tmp_path / path).is_file(), path
    # Confusion matrices: a column per option, a row per test set.
    height = image.imread(tmp_path / layout.REPORT_PNG_CONFUSION).shape[0]
    assert height > 400
    text = (tmp_path / layout.REPORT_MD).read_text()
    assert "## Per class" in text and "## Predicted against true" not in text
    assert text.endswith("![per-class confusion](confusion.png)\n") and "residuals.png" not in text
    scatter = pd.read_csv(tmp_path / layout.REPORT_SCATTER).set_index("strategy")
    assert scatter["pareto"].to_dict() == {"baseline": True, "full-retrain": True}


def test_the_plots_take_a_regressors_curves_and_no_predictions(tmp_path):
    regression = measure_of("regression")
    plots.plot_curves(str(tmp_path / "curves.png"), {"baseline": curves("rmse", "rmse")}, regression)
    plots.plot_curves(str(tmp_path / "old.png"), {"baseline": curves("accuracy", "acc")})  # a classifier's
    plots.plot_predicted(str(tmp_path / "none.png"), {})
    plots.plot_residuals(str(tmp_path / "none-residuals.png"), {})
    one = {"baseline": predictions(0.0, 0.0).assign(actual=3.0, predicted=3.0)}  # no spread at all
    plots.plot_predicted(str(tmp_path / "one.png"), one)
    plots.plot_residuals(str(tmp_path / "one-residuals.png"), one)
    for name in ("curves", "old", "none", "none-residuals", "one", "one-residuals"):
        assert (tmp_path / f"{name}.png").read_bytes().startswith(PNG), name


@pytest.mark.parametrize("task", ["regression", "classification"])
def test_the_strategy_step_writes_dvc_bands_for_a_regressor_and_labels_as_they_are_for_a_classifier(tmp_path, task):
    from retrainlab.pipeline.strategy_step import _publish  # loads TensorFlow: here only

    if task == "regression":
        record, frame = regression_record([2.0], [6.0]), predictions(0.0, 4.0, rows=10)
    else:
        record = classifier_record([0.9], [0.5])
        frame = pd.DataFrame({"test_set": ["old", "new"], "actual": ["7", "cat"], "predicted": ["1", "cat"]})
    record = dataclasses.replace(record, strategy="baseline")
    staged = tmp_path / "staged"
    (staged / "seed-0").mkdir(parents=True)
    _publish(tmp_path, "baseline", staged, record, {"loss": [1.0], "rmse": [0.5]}, frame)
    written = pd.read_csv(tmp_path / layout.predictions_path("baseline"), dtype={"actual": str, "predicted": str})
    if task == "classification":
        pd.testing.assert_frame_equal(written, frame)
        return
    assert list(written.columns) == ["test_set", "actual", "predicted", plots.ACTUAL_VALUE, plots.PREDICTED_VALUE]
    assert written["actual"].iloc[0] == "01: under 4.60" and written["actual"].iloc[9] == "10: 25.40 or more"
    assert written["predicted"].iloc[-1] == "10: 25.40 or more"  # 28 + 4: beyond the true values' range
    assert written[plots.PREDICTED_VALUE].tolist() == pytest.approx(frame["predicted"].tolist())
    assert report.read_numbers(tmp_path, ["baseline"])["baseline"]["predicted"].tolist() == pytest.approx(
        frame["predicted"].tolist())


def test_a_baseline_whose_held_out_curve_still_rose_is_named_underfitted_in_the_report(tmp_path):
    records = {"baseline": classifier_record([0.80, 0.81], [0.70, 0.71]),
               "full-retrain": classifier_record([0.90, 0.91], [0.88, 0.89], cpu=100)}
    verdict = comparison.recommend(records, POLICY)
    rising = pd.DataFrame({"epoch": range(1, 13), "loss": np.linspace(2, 1, 12), "accuracy": np.linspace(0.5, 0.8, 12),
                           "held_out_acc_old": np.linspace(0.5, 0.8, 12), "held_out_acc_new": np.linspace(0.4, 0.7, 12)})
    summary = report.write_report(tmp_path, records, verdict, DIAGNOSIS, POLICY,
                                  {"baseline": rising, "full-retrain": curves("accuracy", "acc")})
    text = (tmp_path / layout.REPORT_MD).read_text()
    assert "**underfitted baseline**: its held-out acc was still improving" in text
    assert any(reason.startswith("the baseline is underfitted") for reason in summary.reasons)
    # A curve that flattened: nothing said.
    flat = rising.assign(held_out_acc_old=[0.5, 0.6, 0.7, 0.75, *[0.8, 0.801, 0.799] * 2, 0.8, 0.8])
    report.write_report(tmp_path, records, verdict, DIAGNOSIS, POLICY,
                        {"baseline": flat, "full-retrain": curves("accuracy", "acc")})
    assert "underfitted" not in (tmp_path / layout.REPORT_MD).read_text()
