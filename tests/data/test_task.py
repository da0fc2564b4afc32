"""The task (data.task and the auto rule), and every bad regression label: one line naming the
file, the column and what to do, and nothing written. Real CSV files through the real prepare."""

import logging

import numpy as np
import pandas as pd
import pytest

from retrainlab import data
from retrainlab.base import layout
from retrainlab.base.errors import DataError
from retrainlab.base.tasks import CLASSIFICATION, REGRESSION
from retrainlab.config import DataParams, FilesParams
from retrainlab.data.task import AUTO, MAX_CLASS_INTEGERS, decide, looks_like_a_quantity


def numbers(n=60, seed=0, label=None):
    """Two features and a label that is a number to predict (fractions, all distinct)."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"size": rng.normal(50, 10, n), "rooms": rng.integers(1, 6, n).astype(float)})
    frame["y"] = 3.0 * frame["size"] + 10.0 * frame["rooms"] + rng.normal(0, 1, n) if label is None else label
    return frame


def prepare(tmp_path, initial, incremental, task=AUTO):
    for name, frame in (("initial.csv", initial), ("incremental.csv", incremental)):
        if isinstance(frame, str):
            (tmp_path / name).write_text(frame)
        else:
            frame.to_csv(tmp_path / name, index=False)
    params = DataParams(source="files", task=task, files=FilesParams("initial.csv", "incremental.csv", "y"))
    return data.prepare(params, tmp_path).to_json()


def written(tmp_path) -> dict:
    """Every file under data/prepared, with its bytes."""
    root = tmp_path / layout.PREPARED_DIR
    return {p.relative_to(root): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# --- the rule -----------------------------------------------------------------------------


def labels(*parts):
    return {f"part{i}.csv": pd.Series(values) for i, values in enumerate(parts)}


def test_auto_reads_fractions_and_many_whole_numbers_as_a_quantity_and_few_as_classes():
    assert decide(AUTO, labels([1.5, 2.0], [3.25]), "y", "number") == (REGRESSION, "auto: the label holds fractions")
    many = labels(list(range(MAX_CLASS_INTEGERS)), [MAX_CLASS_INTEGERS])
    assert decide(AUTO, many, "y", "number") == (
        REGRESSION, f"auto: the label holds {MAX_CLASS_INTEGERS + 1} distinct whole numbers, more than 20")
    at_most = labels(list(range(MAX_CLASS_INTEGERS - 1)), [MAX_CLASS_INTEGERS - 1, 0])
    assert decide(AUTO, at_most, "y", "number")[0] == CLASSIFICATION  # 20 distinct: classes
    task, rule = decide(AUTO, labels([0, 1, 2, 1], [2, 0]), "y", "number")
    assert task == CLASSIFICATION
    assert rule == ("auto: the label holds 3 distinct whole numbers, 20 or fewer (set data.task: regression to "
                    "predict it as a number)")
    assert decide(AUTO, labels(["a", "b"], ["a"]), "y", "text") == (
        CLASSIFICATION, "auto: the label holds text (or booleans)")


def test_a_setting_overrides_the_rule():
    few = labels([0, 1, 2], [1])
    assert decide(REGRESSION, few, "y", "number") == (REGRESSION, "data.task: regression")
    assert decide(CLASSIFICATION, labels([1.5, 2.5], [0.5]), "y", "number") == (
        CLASSIFICATION, "data.task: classification")


def test_looks_like_a_quantity_is_the_auto_rule_on_numbers_only():
    assert looks_like_a_quantity(pd.Index([1.5, 2.0]))
    assert looks_like_a_quantity(pd.Index(range(MAX_CLASS_INTEGERS + 1)))
    assert not looks_like_a_quantity(pd.Index(range(MAX_CLASS_INTEGERS)))
    assert not looks_like_a_quantity(pd.Index(["1.5", "2"]))
    assert not looks_like_a_quantity(pd.Index([True, False]))


# --- prepare: what the summary and the log say --------------------------------------------


def test_a_numeric_label_is_prepared_as_a_number_and_the_log_says_which_rule(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="retrainlab")
    summary = prepare(tmp_path, numbers(60, 0), numbers(30, 1))
    assert summary["task"] == REGRESSION and summary["task_rule"] == "auto: the label holds fractions"
    assert summary["classes"]["initial_train"] == [] and set(summary["label_stats"]) == set(layout.SPLITS)
    assert "prepare: task: regression (auto: the label holds fractions)" in caplog.messages
    assert data.load_prepared(tmp_path).y("initial_train").dtype == np.float64


def test_a_few_integers_are_classes_under_auto_and_the_summary_and_log_say_why(tmp_path, caplog):
    """A label that looks categorical (three whole numbers): the rule that applied is stated,
    with the setting that makes it a number."""
    caplog.set_level(logging.INFO, logger="retrainlab")
    def grades(n):
        return np.arange(n) % 3 + 1

    summary = prepare(tmp_path, numbers(60, 0, grades(60)), numbers(30, 1, grades(30)))
    rule = ("auto: the label holds 3 distinct whole numbers, 20 or fewer (set data.task: regression to predict it as a "
            "number)")
    assert summary["task"] == CLASSIFICATION and summary["task_rule"] == rule
    assert summary["classes"]["initial_train"] == [1, 2, 3]
    assert f"prepare: task: classification ({rule})" in caplog.messages
    summary = prepare(tmp_path, numbers(60, 0, grades(60)), numbers(30, 1, grades(30)), task=REGRESSION)
    assert (summary["task"], summary["task_rule"]) == (REGRESSION, "data.task: regression")


def test_rows_without_a_regression_label_are_dropped_and_counted(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="retrainlab")
    initial = numbers(60, 0)
    initial.loc[[3, 7], "y"] = np.nan
    summary = prepare(tmp_path, initial, numbers(30, 1))
    assert summary["task"] == REGRESSION
    assert summary["cleaning"]["initial"]["dropped_unlabelled"] == 2
    assert summary["rows"]["initial_train"] + summary["rows"]["initial_test"] == 58
    assert any(m.startswith("prepare: initial data: 60 rows read, 2 dropped without a label") for m in caplog.messages)


# --- bad input: one line, naming the file, the column and what to do; nothing written -------


def with_label(frame, rows_values):
    frame = frame.astype({"y": object})
    for row, value in rows_values.items():
        frame.loc[row, "y"] = value
    return frame


def fractions(n=40):
    return [round(0.37 * i + 1.1, 4) for i in range(n)]


BAD = {
    # An unlabelled row before the bad one: the row named is the file's, not the row after the drop.
    "inf": (lambda: with_label(numbers(), {1: np.nan, 4: np.inf}), AUTO,
           (r"^initial\.csv: label 'y' is inf in row 5, which is not finite; a regression label must be a finite "
            r"number float32 holds: fix or drop that row$")),
    "minus inf": (lambda: with_label(numbers(), {9: -np.inf}), REGRESSION,
                  r"^initial\.csv: label 'y' is -inf in row 10, which is not finite"),
    "beyond float32": (lambda: with_label(numbers(), {2: 1e39}), AUTO,
                      (r"^initial\.csv: label 'y' is 1e\+39 in row 3, which is beyond float32's range \(3\.4e38\); "
                       r"a regression label must be a finite number float32 holds: fix or drop that row$")),
    "constant fraction": (lambda: numbers(label=2.5), AUTO,
                         (r"^initial\.csv: label 'y' is 2\.5 in every row: nothing to predict, and R² is undefined "
                          r"on it; give rows whose labels vary$")),
    "constant integer": (lambda: numbers(label=7), REGRESSION,
                         r"^initial\.csv: label 'y' is 7 in every row: nothing to predict, and R² is undefined"),
    "text in a numeric label": (lambda: with_label(numbers(), {6: "12.5 kg"}), REGRESSION,
                               (r"^initial\.csv: label 'y' holds '12.5 kg' \(row 7\), text, not a number; data\.task: "
                                r"regression needs a number in every row: fix the value, or set data\.task: "
                                r"classification$")),
    "text labels": (lambda: numbers(label=np.where(np.arange(60) % 2, "yes", "no")), REGRESSION,
                    r"^initial\.csv: label 'y' holds 'no' \(row 1\), text, not a number; data\.task: regression"),
    "booleans": (lambda: numbers(label=np.arange(60) % 3 == 0), REGRESSION,
                (r"^initial\.csv: label 'y' holds 'True' \(row 1\), a boolean, not a number; data\.task: regression "
                 r"needs a number in every row")),
    # Before: prepared, then training failed with "training diverged ... lower model.learning_rate".
    "a label near 1e31": (lambda: numbers(label=np.linspace(1e31, 3e31, 60)), AUTO,
                          (r"^initial\.csv: label 'y' lies up to 1e\+31 from its mean; a squared error that large "
                           r"overflows float32, in which training computes the loss: divide the label by 1e\+19 \(or "
                           r"another power of ten\) and read predictions in those units$")),
    "fractions as classes": (lambda: numbers(40, label=fractions()), CLASSIFICATION,
                            (r"^initial\.csv: the label 'y' is read as classes \(data\.task: classification\) and "
                             r"class 1\.1 has a single row, but its 40 distinct values look like a number to predict: "
                             r"set data\.task: regression \(or auto\)$")),
}


@pytest.mark.parametrize("case", BAD)
def test_a_bad_label_is_one_line_and_writes_nothing(tmp_path, case):
    make, task, message = BAD[case]
    with pytest.raises(DataError, match=message) as info:
        prepare(tmp_path, make(), numbers(30, 1), task=task)
    assert "\n" not in str(info.value)
    assert not (tmp_path / layout.PREPARED_DIR).exists()


@pytest.mark.parametrize("case", ["inf", "constant fraction", "booleans", "fractions as classes"])
def test_a_bad_label_leaves_the_last_prepared_data_as_it_was(tmp_path, case):
    prepare(tmp_path, numbers(60, 0), numbers(30, 1))
    before = written(tmp_path)
    make, task, message = BAD[case]
    with pytest.raises(DataError, match=message):
        prepare(tmp_path, make(), numbers(30, 1), task=task)
    assert written(tmp_path) == before


def test_a_bad_label_in_the_new_file_names_that_file(tmp_path):
    with pytest.raises(DataError, match=r"^incremental\.csv: label 'y' is inf in row 3, which is not finite") as info:
        prepare(tmp_path, numbers(60, 0), with_label(numbers(30, 1), {2: np.inf}))
    assert "\n" not in str(info.value)
    with pytest.raises(DataError, match=r"^incremental\.csv: label 'y' is 4 in every row: nothing to predict"):
        prepare(tmp_path, numbers(60, 0), numbers(30, 1, label=4.0), task=REGRESSION)
    assert not (tmp_path / layout.PREPARED_DIR).exists()


def test_integer_classes_with_a_single_row_keep_the_classes_message(tmp_path):
    """A lone row of a few integer classes is a class problem, not a sign of a number to predict."""
    grades = np.r_[np.arange(59) % 3, 5]
    with pytest.raises(DataError, match=r"^initial\.csv: class 5 has a single row; every class needs at least two"):
        prepare(tmp_path, numbers(60, 0, grades), numbers(30, 1, np.arange(30) % 3))
