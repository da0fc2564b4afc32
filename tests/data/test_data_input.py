"""Input defects from real files: values float32 cannot hold, labels of two types, other
delimiters, duplicate and nested columns, a folder in place of a file. Each is refused with
one line naming the file and column, or accepted with the conversion stated in summary.json.
"""

import logging
import re

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from retrainlab import data
from retrainlab.base import layout
from retrainlab.base.errors import DataError
from retrainlab.config import DataParams, FilesParams

from .test_validation import good

FLOAT64_MAX = 1.7976931348623157e308  # finite in float64, infinite in float32


def prepare(tmp_path, initial, incremental, missing="drop", sep=","):
    """Write the two frames (CSV with `sep`, or Parquet for a pyarrow Table) and prepare them."""
    names = []
    for key, table in (("initial", initial), ("incremental", incremental)):
        if isinstance(table, pa.Table):
            names.append(f"{key}.parquet")
            pq.write_table(table, tmp_path / names[-1])
        else:
            names.append(f"{key}.csv")
            table.to_csv(tmp_path / names[-1], index=False, sep=sep if key == "initial" else ",")
    params = DataParams(source="files", missing=missing, files=FilesParams(*names, "y"))
    return data.prepare(params, tmp_path).to_json()


def refused(tmp_path, message, *inputs, params=None):
    """The one-line DataError matching `message`, and nothing written."""
    with pytest.raises(DataError, match=message) as info:
        data.prepare(params, tmp_path) if params else prepare(tmp_path, *inputs)
    assert "\n" not in str(info.value)
    assert not (tmp_path / layout.PREPARED_DIR).exists()


# --- values that overflow float32 -----------------------------------------------------


def with_huge(frame, rows):
    frame = frame.copy()
    frame.loc[: rows - 1, "age"] = [FLOAT64_MAX if i % 2 else -1e39 for i in range(rows)]
    return frame


def test_values_beyond_float32_are_dropped_and_counted(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="retrainlab")
    summary = prepare(tmp_path, with_huge(good(), 2), good(seed=1))
    cleaning = summary["cleaning"]["initial"]
    assert cleaning["overflow_values"] == 2 and cleaning["dropped_incomplete"] == 2
    assert summary["cleaning"]["incremental"]["overflow_values"] == 0
    assert sum(summary["rows"][s] for s in ("initial_train", "initial_test")) == 38
    assert "2 values beyond float32's range" in caplog.text


def test_imputing_ignores_values_beyond_float32(tmp_path):
    # Most of the column overflows: a median that took those values would be one of them.
    summary = prepare(tmp_path, with_huge(good(), 25), good(seed=1), missing="impute")
    assert summary["cleaning"]["initial"]["overflow_values"] == 25
    assert summary["cleaning"]["initial"]["imputed_values"] == 25
    prepared = data.load_prepared(tmp_path)
    for split in layout.SPLITS:
        assert prepared.x(split)["age"].between(18, 80).all()


# --- labels of two types --------------------------------------------------------------


def labelled(labels, seed=0):
    return good(len(labels), seed).assign(y=labels)


def test_number_and_text_labels_are_compared_as_text(tmp_path):
    # 1.0 in the initial file is written "1.0": the same class as the "1" of the new file.
    summary = prepare(tmp_path, labelled([1.0, 2.0, 3.0] * 10), labelled([1, 2, "cat"] * 10, seed=1))
    assert summary["label_type"] == "text"
    assert summary["label_conversion"] == "numbers compared as text because incremental.csv has text labels"
    assert summary["classes"]["initial_train"] == ["1", "2", "3"]
    assert summary["new_classes"] == ["cat"]
    assert data.load_prepared(tmp_path).classes(*layout.SPLITS) == ["1", "2", "3", "cat"]


def test_boolean_labels_count_as_text(tmp_path):
    summary = prepare(tmp_path, labelled([True, False] * 15), labelled([0, 1] * 15, seed=1))
    assert summary["label_type"] == "text"
    assert data.load_prepared(tmp_path).classes(*layout.SPLITS) == ["0", "1", "False", "True"]


def test_number_labels_stay_numbers_of_one_type(tmp_path):
    # A missing label makes pandas read the new file's labels as floats 1.0, 2.0.
    summary = prepare(tmp_path, labelled([1, 2] * 15), labelled([1, 2, None] * 10, seed=1))
    assert summary["label_type"] == "number" and "label_conversion" not in summary
    for classes in summary["classes"].values():
        assert classes == [1, 2] and all(type(c) is int for c in classes)


def test_integer_labels_stay_exact_past_two_to_the_53(tmp_path):
    """Before: encoded through float64, 2**53 and 2**53 + 1 were one class to training."""
    big = 2**53
    summary = prepare(tmp_path, labelled([big, big + 1] * 15), labelled([big + 1, big] * 10, seed=1))
    assert summary["label_type"] == "number"
    assert summary["classes"]["initial_train"] == [big, big + 1]
    labels = data.load_prepared(tmp_path).y("initial_test")
    assert sorted(set(labels.tolist())) == [big, big + 1]
    assert data.encode_labels(labels, [big, big + 1]).tolist() == [int(v) - big for v in labels]


def test_integer_labels_past_int64_are_compared_as_text_each_digit_kept(tmp_path):
    """uint64 labels past int64's range: before, read as floats, 2**64 - 2 and 2**64 - 1 were one
    class, refused as 'only one class (1.8446744073709552e+19)'."""
    top = 2**64 - 1
    old = pa.table({"x": [0.1 * i for i in range(30)], "y": pa.array([top - 1, top] * 15, type=pa.uint64())})
    new = pa.table({"x": [0.2 * i for i in range(20)], "y": pa.array([top, top - 1] * 10, type=pa.uint64())})
    summary = prepare(tmp_path, old, new)
    assert summary["label_type"] == "text"
    assert summary["label_conversion"] == ("integers compared as text because initial.parquet and incremental.parquet "
                                           "have integer labels beyond int64's range")
    assert summary["classes"]["initial_train"] == [str(top - 1), str(top)]


# --- other delimiters, duplicate and nested columns, folders --------------------------


@pytest.mark.parametrize("sep", [";", "\t", "|"])
def test_the_delimiter_is_sniffed_and_stated(tmp_path, caplog, sep):
    caplog.set_level(logging.INFO, logger="retrainlab")
    summary = prepare(tmp_path, good(), good(seed=1), sep=sep)
    assert [f["name"] for f in summary["features"]] == ["age", "city"]
    assert summary["files"] == {
        "initial.csv": {"format": "csv", "delimiter": sep},
        "incremental.csv": {"format": "csv", "delimiter": ","},
    }
    assert f"initial.csv: columns separated by {sep!r}" in caplog.text


def test_a_duplicate_csv_column_is_refused(tmp_path):
    # Semicolons: the header is read with the delimiter the file uses.
    rows = [f"{age};{age};{city};{y}" for age, city, y in good().itertuples(index=False)]
    (tmp_path / "initial.csv").write_text("\n".join(["age;age;city;y", *rows]) + "\n")
    good(seed=1).to_csv(tmp_path / "incremental.csv", index=False)
    params = DataParams(source="files", files=FilesParams("initial.csv", "incremental.csv", "y"))
    refused(tmp_path, r"^initial\.csv: column 'age' appears 2 times; give each column a unique name$", params=params)


def test_a_duplicate_parquet_column_is_refused(tmp_path):
    table = pa.Table.from_pandas(good(), preserve_index=False)
    table = table.rename_columns(["age", "age", "y"])
    refused(tmp_path, r"^initial\.parquet: column 'age' appears 2 times", table, good(seed=1))


@pytest.mark.parametrize(
    "values, shown",
    [
        (pa.array([[1, 2]] * 40), "list<int64>"),
        (pa.array([{"a": 1, "b": [1.5]}] * 40), "struct<a: int64, b: list<double>>"),
        (pa.array([[("k", 1)]] * 40, pa.map_(pa.string(), pa.int64())), "map<string, int64>"),
    ],
    ids=["list", "struct", "map"],
)
def test_a_nested_parquet_column_is_refused(tmp_path, values, shown):
    table = pa.Table.from_pandas(good(), preserve_index=False).append_column("c", values)
    message = rf"^initial\.parquet: column 'c' holds nested values \({re.escape(shown)}\); flatten it"
    refused(tmp_path, message + " into plain columns$", table, good(seed=1))


@pytest.mark.parametrize("key", ["initial", "incremental"])
def test_a_directory_given_as_a_data_file_is_named(tmp_path, key):
    good().to_csv(tmp_path / "data.csv", index=False)
    (tmp_path / "data" / "raw").mkdir(parents=True)
    files = {"initial": "data.csv", "incremental": "data.csv", key: "data/raw"}
    params = DataParams(source="files", files=FilesParams(files["initial"], files["incremental"], "y"))
    message = rf"^data/raw: is a directory; set data\.files\.{key} to a \.csv or \.parquet file$"
    refused(tmp_path, message, params=params)


# --- one rule for a value read from a file (retrainlab.data.values) ----------------------


def test_labels_that_differ_only_by_surrounding_spaces_are_one_class_and_said_to_be(tmp_path, caplog):
    """Before: 'yes ' and ' no' were new classes, the output layer grew to 4 units, without a word."""
    caplog.set_level(logging.INFO, logger="retrainlab")
    summary = prepare(tmp_path, labelled(["yes", "no"] * 15), labelled(["yes ", " no"] * 10, seed=1))
    assert summary["new_classes"] == []
    assert data.load_prepared(tmp_path).classes(*layout.SPLITS) == ["no", "yes"]
    note = summary["label_cleaning"]
    assert note.startswith("2 labels differ from others only by surrounding spaces: merged")
    assert "' no' as 'no'" in note and note in caplog.text


def test_a_whole_number_written_with_decimals_is_that_number_among_text_labels(tmp_path):
    """Before: the new classes were ['0', '1.0', 'yes'], though the README says 1.0 and 1 are one class."""
    summary = prepare(tmp_path, labelled([0, 1] * 15), labelled(["1.0", "0", "yes"] * 10, seed=1))
    assert summary["new_classes"] == ["yes"]
    assert data.load_prepared(tmp_path).classes(*layout.SPLITS) == ["0", "1", "yes"]


def test_a_blank_label_is_a_missing_one(tmp_path):
    summary = prepare(tmp_path, labelled(["p", "q"] * 15), labelled(["p", "q", "   "] * 10, seed=1))
    assert summary["cleaning"]["incremental"]["dropped_unlabelled"] == 10


def test_numbers_written_with_a_decimal_comma_are_numbers_and_said_to_be(tmp_path, caplog):
    """Before: a ';' file written with decimal=',' had one category per number, without a warning."""
    caplog.set_level(logging.INFO, logger="retrainlab")
    initial = good().assign(age=lambda f: f["age"] + 0.25)
    (tmp_path / "initial.csv").write_text(initial.to_csv(index=False, sep=";", decimal=","))
    good(seed=1).to_csv(tmp_path / "incremental.csv", index=False)
    params = DataParams(source="files", files=FilesParams("initial.csv", "incremental.csv", "y"))
    summary = data.prepare(params, tmp_path).to_json()
    assert {f["name"]: f["kind"] for f in summary["features"]}["age"] == "numeric"
    assert summary["files"]["initial.csv"] == {"format": "csv", "delimiter": ";", "decimal_comma": ["age"]}
    assert sorted(data.load_prepared(tmp_path).x("initial_train")["age"] % 1) [0] == pytest.approx(0.25)
    assert "numbers written with a decimal comma read as numbers (columns 'age')" in caplog.text


def test_a_comma_that_may_separate_thousands_is_refused_naming_the_column(tmp_path):
    initial = good().assign(age=["1,250", "12,500"] * 20)
    (tmp_path / "initial.csv").write_text(initial.to_csv(index=False, sep=";"))
    good(seed=1).to_csv(tmp_path / "incremental.csv", index=False)
    params = DataParams(source="files", files=FilesParams("initial.csv", "incremental.csv", "y"))
    refused(tmp_path, r"^initial.csv: column 'age' holds '1,250': a decimal comma or a thousands separator\? write "
            "numbers with a decimal point", params=params)


def test_an_empty_column_is_named_whether_listed_as_text_or_detected(tmp_path):
    """Before: listed in data.files.text it was 'holds numbers'; detected, 'no rows left' named no column."""
    empty = good().assign(note="")
    for text in (["note"], None):
        empty.to_csv(tmp_path / "initial.csv", index=False)
        good(seed=1).assign(note="fine words").to_csv(tmp_path / "incremental.csv", index=False)
        params = DataParams(source="files", files=FilesParams("initial.csv", "incremental.csv", "y", text=text))
        refused(tmp_path, r"^initial.csv: column 'note' is empty in every row; fill it", params=params)
    # Empty in the new file only: its rows are emptied, and the column is named.
    good().assign(note="old words").to_csv(tmp_path / "initial.csv", index=False)
    good(seed=1).assign(note=" ").to_csv(tmp_path / "incremental.csv", index=False)
    params = DataParams(source="files", files=FilesParams("initial.csv", "incremental.csv", "y", text=["note"]))
    refused(tmp_path, r"^incremental.csv: no rows left after dropping 0 without a label and 40 with missing, "
            r"infinite or too large values \(data.missing: drop\): column 'note' is empty in 40 rows$", params=params)


# --- categorical columns: row keys, missing values, numbers written as text ---------------


def files(tmp_path, initial, incremental, missing="drop", **spec):
    """Write the two frames (CSV, or Parquet for a pyarrow Table) and the files params naming them."""
    names = []
    for key, table in (("initial", initial), ("incremental", incremental)):
        names.append(f"{key}.parquet" if isinstance(table, pa.Table) else f"{key}.csv")
        if isinstance(table, pa.Table):
            pq.write_table(table, tmp_path / names[-1])
        else:
            table.to_csv(tmp_path / names[-1], index=False)
    return DataParams(source="files", missing=missing, files=FilesParams(*names, "y", **spec))


def with_ids(frame, prefix="o"):
    return frame.assign(order_id=[f"{prefix}{i:05d}" for i in range(len(frame))])


def test_a_column_whose_every_value_is_its_own_is_refused_as_a_row_key(tmp_path):
    params = files(tmp_path, with_ids(good(60)), with_ids(good(40, seed=1), "n"))
    refused(tmp_path, r"^initial\.csv: column 'order_id' looks like a row key: each of its 60 rows has its own value, "
            r"so a model learns nothing it can use on new rows; leave it out with data\.files\.features", params=params)
    # Numbers declared categorical are read as codes, and are row keys alike.
    numbered = good(60).assign(store=range(1000, 1060))
    params = files(tmp_path, numbered, good(40, seed=1).assign(store=1000), categorical=["store"])
    refused(tmp_path, r"^initial\.csv: column 'store' looks like a row key: each of its 60 rows", params=params)


def test_a_row_key_listed_in_the_features_is_kept_and_said_to_be_flagged(tmp_path):
    params = files(tmp_path, with_ids(good(60)), with_ids(good(40, seed=1), "n"), features=["age", "city", "order_id"])
    summary = data.prepare(params, tmp_path).to_json()
    assert "order_id" in [f["name"] for f in summary["features"]]
    flagged = summary["categories"]["order_id"]
    assert flagged["distinct"] == {"initial": 60, "incremental": 40}
    assert flagged["flagged"].startswith("looks like a row key: each of its 60 rows has its own value")
    assert flagged["flagged"].endswith("kept because data.files.features lists it")
    assert "flagged" not in summary["categories"]["city"]


@pytest.mark.parametrize("case", ["below the rows it takes", "one repeat", "numbers", "sentences"])
def test_what_is_not_a_row_key_is_left_alone(tmp_path, case):
    initial = {
        "below the rows it takes": with_ids(good(49)),
        "one repeat": with_ids(good(60)).assign(order_id=lambda f: f["order_id"].where(f.index != 59, "o00000")),
        "numbers": good(60).assign(order_id=range(60)),  # a number column is a quantity, all distinct or not
        "sentences": good(60).assign(order_id=[f"the order number {i} came late" for i in range(60)]),  # text
    }[case]
    new = good(40, seed=1).assign(order_id=range(40)) if case == "numbers" else with_ids(good(40, seed=1), "n")
    summary = data.prepare(files(tmp_path, initial, new), tmp_path).to_json()
    assert "order_id" in [f["name"] for f in summary["features"]]


def holes(frame, values):
    """The frame with its first len(values) cities replaced by `values`."""
    return frame.assign(city=list(values) + frame["city"].tolist()[len(values):])


NO_CITY = [None, "", "   ", None]  # null, empty and blank: each missing, never a category


@pytest.mark.parametrize("missing", ["drop", "impute"])
def test_a_missing_category_is_dropped_or_imputed_and_never_becomes_a_category(tmp_path, missing):
    city = pa.array(NO_CITY + ["a", "b"] * 18)  # Parquet keeps null, "" and "   " apart
    initial = pa.Table.from_pandas(good(40), preserve_index=False).set_column(1, "city", city)
    new = pa.Table.from_pandas(holes(good(40, seed=1), ["", None]), preserve_index=False)
    summary = data.prepare(files(tmp_path, initial, new, missing), tmp_path).to_json()
    cleaning = summary["cleaning"]
    if missing == "drop":
        assert (cleaning["initial"]["dropped_incomplete"], cleaning["incremental"]["dropped_incomplete"]) == (4, 2)
    else:
        assert (cleaning["initial"]["imputed_values"], cleaning["incremental"]["imputed_values"]) == (4, 2)
    prepared = data.load_prepared(tmp_path)
    cities = set().union(*(prepared.x(split)["city"] for split in layout.SPLITS))
    assert cities == {"a", "b"}
    assert summary["categories"]["city"]["distinct"] == {"initial": 2, "incremental": 2}


@pytest.mark.parametrize("dtype", [object, "string", "str", "category"])
def test_every_kind_of_null_is_missing_in_every_text_dtype(dtype):
    """None, NaN, pd.NA, "" and blanks, in each dtype pandas may hold categories in: astype(str)
    made 'nan' (or '<NA>') a category before pandas 3, and kept '' as one."""
    old = pd.DataFrame({"city": pd.Series(["a", "b"] * 30 + [None, np.nan, "", " "], dtype=object),
                        "y": ["p", "q"] * 32})
    old.loc[0, "city"] = pd.NA
    old["city"] = old["city"].astype(dtype)
    new = pd.DataFrame({"city": ["a", "b"] * 10, "y": ["p", "q"] * 10})
    for missing in ("drop", "impute"):
        dataset = data.tidy(old, new, "y", None, ("old", "new"), missing)
        assert set(dataset.initial["city"]) == {"a", "b"}
        assert dataset.cleaning["old"]["dropped_incomplete" if missing == "drop" else "imputed_values"] == 5


def test_listed_columns_are_categories_as_written_in_the_file(tmp_path):
    """Before: zip codes were numbers (02139 read as 2139, then normalised), and so were store ids."""
    initial = good(60).assign(zip=["02139", "10001", "00501"] * 20, store=[101, 205, 307] * 20,
                              price=["1,5", "2,5", "3,5"] * 20)
    new = good(40, seed=1).assign(zip=["02139", "94105"] * 20, store=[101, 999] * 20, price="1,5")
    params = files(tmp_path, initial, new, categorical=["zip", "store", "price"])
    summary = data.prepare(params, tmp_path).to_json()
    kinds = {f["name"]: f["kind"] for f in summary["features"]}
    assert kinds == {"age": "numeric", "city": "categorical", "zip": "categorical", "store": "categorical",
                     "price": "categorical"}
    assert summary["feature_kinds"]["columns"]["zip"] == "categorical: listed in data.files.categorical"
    assert "decimal_comma" not in summary["files"]["initial.csv"]  # a code, not a number written with a comma
    prepared = data.load_prepared(tmp_path)
    old = prepared.x("initial_train")
    assert set(old["zip"]) == {"02139", "10001", "00501"} and set(old["store"]) == {"101", "205", "307"}
    assert set(prepared.x("incremental_train")["zip"]) == {"02139", "94105"}
    assert summary["categories"]["store"]["distinct"] == {"initial": 3, "incremental": 2}
    # Unlisted, the same columns are numbers.
    summary = data.prepare(files(tmp_path, initial.drop(columns="price"), new.drop(columns="price")), tmp_path).to_json()
    assert {f["name"]: f["kind"] for f in summary["features"]}["zip"] == "numeric"


def test_listed_numbers_from_parquet_are_their_plain_text(tmp_path):
    """Integers as their digits; floats that are whole numbers (an id column with a gap reads
    as float) without '.0', so 101 from one file and 101.0 from the other are one category."""
    initial = pa.table({"store": pa.array([101, 205, None] * 20, pa.float64()), "x": [0.5] * 60,
                        "y": ["p", "q"] * 30})
    new = pa.table({"store": pa.array([101, 2**53 + 1] * 10, pa.int64()), "x": [0.5] * 20, "y": ["p", "q"] * 10})
    data.prepare(files(tmp_path, initial, new, "impute", categorical=["store"]), tmp_path)
    prepared = data.load_prepared(tmp_path)
    assert set(prepared.x("initial_train")["store"]) | set(prepared.x("initial_test")["store"]) == {"101", "205"}
    assert set(prepared.x("incremental_train")["store"]) == {"101", str(2**53 + 1)}


def test_a_number_as_a_category_is_written_plainly():
    """One rule wherever a number meets a categorical column: prepare, check, the served model."""
    read = data.values.categories
    floats = read(pd.Series([101.0, 2.5, float("inf"), None, 1e20]))
    assert floats[[0, 1, 4]].tolist() == ["101", "2.5", "100000000000000000000"] and floats[[2, 3]].isna().all()
    mixed = read(pd.Series([7, 7.0, np.float32(0.1), True, " ", "07"], dtype=object))
    assert mixed[[0, 1, 2, 3, 5]].tolist() == ["7", "7", "0.1", "True", "07"] and pd.isna(mixed[4])


@pytest.mark.parametrize("spec, message", [
    ({"categorical": ["zip"]}, r"^initial\.csv: no column 'zip', which data\.files\.categorical lists"),
    ({"categorical": ["city"], "features": ["age"]},
     r"^parameter 'data\.files\.categorical' lists 'city', which is not a feature column; list categorical columns "
     r"among the features$"),
    ({"categorical": ["y"]}, r"^parameter 'data\.files\.categorical' lists the label column 'y'$"),
])
def test_a_listed_categorical_column_that_is_no_feature_is_one_line(tmp_path, spec, message):
    refused(tmp_path, message, params=files(tmp_path, good(), good(seed=1), **spec))
