"""The check's new rows, read as the model reads them: from the prepared splits or a file,
their columns typed as the prepared data's, their labels where given; bad rows a one-line
error naming the file and the column."""

import contextlib
import dataclasses
import io

import numpy as np
import pandas as pd
import pytest

from retrainlab.base.errors import DataError
from retrainlab.data import load_prepared, prepare
from retrainlab.pipeline.check import read_new_rows


@pytest.fixture
def digits(tmp_path, project_params):
    with contextlib.redirect_stdout(io.StringIO()):
        prepare(project_params.data, tmp_path)
    return project_params, load_prepared(tmp_path), tmp_path


def test_a_builtin_sources_new_rows_are_its_prepared_incremental_splits(digits):
    params, data, root = digits
    new = read_new_rows(params, data, root, None, True)
    assert len(new.features) == data.rows("incremental_train") + data.rows("incremental_test")
    assert list(new.features.columns) == data.feature_names and len(new.labels) == len(new.features)
    assert read_new_rows(params, data, root, None, False).labels.empty  # --no-labels


def test_a_files_rows_are_typed_as_the_prepared_data_and_labelled_where_they_can_be(digits):
    params, data, root = digits
    frame = data.frame("initial_test").head(40)
    frame.index = [0] * len(frame)  # a Parquet file's own index, repeated
    frame[data.label] = frame[data.label].astype(str).astype(object)  # "3", as a CSV with text may hold it
    frame.loc[:, data.label] = [None] * 10 + list(frame[data.label].iloc[10:])  # 10 rows without a label
    frame.iloc[0, 0] = np.inf  # a row with a value the model cannot read
    frame.to_parquet(root / "week.parquet")
    new = read_new_rows(params, data, root, "week.parquet", True)
    assert len(new.features) == 39 and new.dropped == 1
    assert len(new.labels) == 30 and set(new.labels) <= set(data.classes("initial_test"))
    assert all(isinstance(label, int) for label in new.labels)  # the classes, not their text


@pytest.mark.parametrize("change, said", [
    (lambda f: f.drop(columns=["pixel_0_0"]), "week.csv: no column 'pixel_0_0', which the model reads"),
    (lambda f: f.assign(pixel_0_1="dark"), "week.csv: column 'pixel_0_1' holds 'dark' where the model reads numbers"),
    (lambda f: f.assign(pixel_0_2=np.nan), "week.csv: no row is usable as training reads rows: column 'pixel_0_2' "
                                           "is empty or NaN in 20 rows"),
    # Before: every row was scored, and the model's outputs blamed: "it must not be served (retrainlab rollback ...)".
    (lambda f: f.assign(pixel_0_2=1e39), r"week.csv: no row is usable as training reads rows: column 'pixel_0_2' "
                                         r"holds 1e\+39 \(beyond float32's range, 3.4e\+38\) in 20 rows"),
])
def test_bad_rows_are_one_line_naming_the_file_and_the_column(digits, change, said):
    params, data, root = digits
    change(data.frame("initial_test").head(20)).to_csv(root / "week.csv", index=False)
    with pytest.raises(DataError, match=said):
        read_new_rows(params, data, root, "week.csv", True)


def test_an_arrays_projects_new_rows_are_its_incremental_npz_or_another(tmp_path, project_params):
    rng = np.random.default_rng(0)
    for name, n in (("old", 90), ("new", 45), ("week", 12)):
        np.savez(tmp_path / f"{name}.npz", x=rng.random((n, 4, 4)).astype("float32"), y=rng.integers(0, 3, n))
    arrays = dataclasses.replace(project_params.data.arrays, initial="old.npz", incremental="new.npz")
    params = dataclasses.replace(project_params, data=dataclasses.replace(project_params.data, source="arrays",
                                                                          arrays=arrays))
    with contextlib.redirect_stdout(io.StringIO()):
        prepare(params.data, tmp_path)
    data = load_prepared(tmp_path)
    default = read_new_rows(params, data, tmp_path, None, True)  # the incremental file params.yaml names
    assert len(default.features) == 45 and list(default.features.columns) == data.feature_names
    week = read_new_rows(params, data, tmp_path, "week.npz", False)
    assert len(week.features) == 12 and week.labels.empty
    np.savez(tmp_path / "wide.npz", x=rng.random((5, 5, 5)), y=rng.integers(0, 3, 5))
    with pytest.raises(DataError, match=r"wide.npz: rows have shape \(5, 5\), but the model reads \(4, 4\)"):
        read_new_rows(params, data, tmp_path, "wide.npz", True)


def test_the_check_scores_the_rows_training_uses_and_reads_labels_as_prepare_does(tmp_path, project_params):
    """One rule for a usable row and a label (retrainlab.data.values): before, the check scored
    rows with an empty text (`dropped_rows: 0`) and took 'p ' for a class the model never saw."""
    rng = np.random.default_rng(0)
    def rows(n, seed):
        r = np.random.default_rng(seed)
        return pd.DataFrame({"x": r.normal(size=n), "note": r.choice(["good day", "bad day"], n),
                             "y": r.choice(["p", "q"], n)})
    rows(80, 0).to_csv(tmp_path / "old.csv", index=False)
    rows(40, 1).to_csv(tmp_path / "new.csv", index=False)
    files = dataclasses.replace(project_params.data.files, initial="old.csv", incremental="new.csv", label="y",
                                text=["note"])
    params = dataclasses.replace(project_params, data=dataclasses.replace(project_params.data, source="files",
                                                                          files=files))
    with contextlib.redirect_stdout(io.StringIO()):
        prepare(params.data, tmp_path)
    data = load_prepared(tmp_path)
    week = rows(30, 2)
    week.loc[:9, "note"] = ["", "  "] * 5
    week["y"] = week["y"] + rng.choice(["", " "], len(week)).astype(object)
    week.to_csv(tmp_path / "week.csv", index=False)
    new = read_new_rows(params, data, tmp_path, "week.csv", True)
    assert new.dropped == 10 and len(new.features) == 20
    assert set(new.labels) <= {"p", "q"} and len(new.labels) == 20
    week.assign(note="").to_csv(tmp_path / "week.csv", index=False)
    with pytest.raises(DataError, match="week.csv: no row is usable as training reads rows: column 'note' is empty "
                                        "in 30 rows"):
        read_new_rows(params, data, tmp_path, "week.csv", True)
