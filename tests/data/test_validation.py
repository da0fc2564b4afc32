"""Bad input: every case gets the project's own one-line error, and nothing is written.

The property-based tests feed random malformed frames and files to the loader and the
validator: the result is valid data or a DataError, never a traceback.
"""

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from retrainlab import data
from retrainlab.base import layout
from retrainlab.base.errors import DataError
from retrainlab.config import DataParams, FilesParams


def good(n=40, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {"age": rng.integers(18, 80, n).astype(float), "city": rng.choice(["a", "b"], n), "y": rng.choice(["p", "q"], n)}
    )


def prepare(tmp_path, initial, incremental, missing="drop", features=(), write=None):
    names = {}
    for key, frame in (("initial", initial), ("incremental", incremental)):
        name = f"{key}.csv"
        if isinstance(frame, (bytes, str)):
            (tmp_path / name).write_bytes(frame if isinstance(frame, bytes) else frame.encode())
        else:
            frame.to_csv(tmp_path / name, index=False)
        names[key] = name
    params = DataParams(
        source="files", missing=missing, files=FilesParams(names["initial"], names["incremental"], "y", list(features))
    )
    return data.prepare(params, tmp_path).to_json()


CASES = {
    "empty file": (b"", good(), r"initial\.csv: the file is empty"),
    "header only": ("age,city,y\n", good(), r"initial\.csv: has a header but no data rows"),
    "not csv at all": (b"\x89PNG\r\n\x1a\n\x00\x00binary\x00", good(), r"initial\.csv: (cannot be read|no label|line 1 is not UTF-8)"),
    "missing label column": (good().drop(columns="y"), good(), r"initial\.csv: no label column 'y'"),
    "all labels missing": (good().assign(y=None), good(), r"initial\.csv: no rows left after dropping 40 without a label"),
    "extra column in new file": (good(), good().assign(extra=1), r"incremental\.csv: extra column 'extra'"),
    "missing column in new file": (good(), good().drop(columns="city"), r"incremental\.csv: missing feature column 'city'"),
    "retyped column": (good(), good().assign(age="old"), r"incremental\.csv: column 'age' is text but numeric in initial\.csv"),
    "single class": (good().assign(y="p"), good(), r"initial\.csv: only one class \('p'\)"),
    "class with one row": (pd.concat([good(), good(1).assign(y="r")]), good(), r"initial\.csv: class 'r' has a single row"),
    "one row in all": (good(1), good(), r"initial\.csv: only one class"),
    "a row key column": (good(60).assign(order=[f"o{i}" for i in range(60)]), good().assign(order="o1"),
                         r"initial\.csv: column 'order' looks like a row key: each of its 60 rows has its own value"),
    "every new city blank": (good(), good().assign(city="  "),
                             r"incremental\.csv: no rows left after dropping 0 without a label and 40 with missing.*: "
                             r"column 'city' is empty in 40 rows$"),
}


@pytest.mark.parametrize("case", CASES)
def test_bad_input_gets_one_clear_line_and_writes_nothing(tmp_path, case):
    initial, incremental, message = CASES[case]
    with pytest.raises(DataError, match=message) as info:
        prepare(tmp_path, initial, incremental)
    assert "\n" not in str(info.value)
    assert not (tmp_path / layout.PREPARED_DIR).exists()


def test_a_directory_or_a_missing_path_is_refused(tmp_path):
    params = DataParams(source="files", files=FilesParams("nowhere.csv", "also.csv", "y"))
    with pytest.raises(DataError, match=r"nowhere\.csv: file not found"):
        data.prepare(params, tmp_path)
    (tmp_path / "dir.csv").mkdir()
    params = DataParams(source="files", files=FilesParams("dir.csv", "also.csv", "y"))
    with pytest.raises(DataError, match=r"dir\.csv: is a directory"):
        data.prepare(params, tmp_path)


def with_holes(frame):
    frame = frame.copy()
    frame.loc[0, "age"] = np.nan
    frame.loc[1, "age"] = np.inf
    frame.loc[2, "city"] = None
    frame.loc[3, "y"] = None
    return frame


def test_missing_values_are_dropped_and_counted(tmp_path):
    summary = prepare(tmp_path, with_holes(good()), good(seed=1))
    assert summary["cleaning"]["initial"] == {
        "rows_read": 40, "dropped_unlabelled": 1, "dropped_incomplete": 3, "imputed_values": 0, "overflow_values": 0
    }
    assert sum(summary["rows"][s] for s in ("initial_train", "initial_test")) == 36


def test_missing_values_can_be_imputed_instead(tmp_path):
    summary = prepare(tmp_path, with_holes(good()), good(seed=1), missing="impute")
    assert summary["cleaning"]["initial"]["imputed_values"] == 3
    assert sum(summary["rows"][s] for s in ("initial_train", "initial_test")) == 39
    prepared = data.load_prepared(tmp_path)
    for split in layout.SPLITS:
        assert np.isfinite(prepared.x(split)["age"]).all()
        assert prepared.x(split)["city"].isin(["a", "b"]).all()


def test_the_label_cannot_also_be_a_feature(tmp_path):
    with pytest.raises(DataError, match="lists the label column 'y'"):
        prepare(tmp_path, good(), good(), features=["age", "y"])


cells = st.one_of(
    st.none(), st.integers(-5, 5), st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["a", "b", "", " ", "1e3", "nan", "∞", "x,y", '"q"']), st.booleans(),
)


@st.composite
def frames(draw):
    columns = draw(st.lists(st.sampled_from(["age", "city", "y", "z", "Unnamed: 0", ""]), min_size=0, max_size=4, unique=True))
    rows = draw(st.integers(0, 12))
    return pd.DataFrame({c: [draw(cells) for _ in range(rows)] for c in columns})


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(initial=frames(), incremental=frames(), missing=st.sampled_from(["drop", "impute"]))
def test_random_frames_give_valid_data_or_our_error(tmp_path, initial, incremental, missing):
    for f in tmp_path.iterdir():
        if f.is_file():
            f.unlink()
    try:
        dataset = data.tidy(initial, incremental, "y", None, ("a.csv", "b.csv"), missing)
    except DataError as exc:
        assert "\n" not in str(exc)
        return
    for frame in (dataset.initial, dataset.incremental):
        assert not frame.empty and frame["y"].notna().all()
        for feature in dataset.features:
            if feature.kind == data.NUMERIC:
                assert np.isfinite(frame[feature.name].to_numpy(float)).all()
            else:
                assert frame[feature.name].map(type).eq(str).all()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content=st.binary(max_size=300) | st.text(max_size=300))
def test_random_file_contents_give_valid_data_or_our_error(tmp_path, content):
    try:
        prepare(tmp_path, content, good())
    except DataError as exc:
        assert "\n" not in str(exc)
