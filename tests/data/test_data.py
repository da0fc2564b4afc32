import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

from retrainlab import data
from retrainlab.base import layout
from retrainlab.base.errors import DataError
from retrainlab.config import ArraysParams, DataParams, FilesParams


def test_split_pool_sizes_follow_the_fraction():
    rng = np.random.default_rng(0)
    initial, incremental = data.split_pool(np.ones(1000, dtype=bool), 0.25, rng)
    assert len(initial) == 800 and len(incremental) == 200
    assert not set(initial) & set(incremental)


def test_stratified_split_keeps_class_shares_and_every_class_in_both():
    labels = np.array([0] * 80 + [1] * 20 + [2] * 2 + [3])
    train, test = data.stratified_split(labels, 0.25, np.random.default_rng(0))
    assert sorted(np.concatenate([train, test])) == list(range(len(labels)))
    assert (labels[test] == 0).sum() == 20 and (labels[test] == 1).sum() == 5
    assert (labels[test] == 2).sum() == 1 and (labels[train] == 2).sum() == 1
    assert 3 in labels[train] and 3 not in labels[test]  # a lone row stays in train


def whole(params, seed):
    """The built-in source's parts joined: the whole dataset, for small sources."""
    parts = list(data.builtin_parts(params, seed))
    join = lambda part: pd.concat([getattr(p, part) for p in parts], ignore_index=True)  # noqa: E731
    return dataclasses.replace(parts[0], initial=join("initial"), incremental=join("incremental"))


def digits(scenario, **changes):
    return whole(DataParams(scenario=scenario, **changes), seed=0)


def test_new_classes_appear_only_in_the_incremental_data():
    ds = digits("new_classes", affected_classes=3)
    assert set(ds.initial["digit"]) == set(range(7))
    assert {7, 8, 9} <= set(ds.incremental["digit"])
    assert len(ds.incremental) == pytest.approx(0.3 * len(ds.initial), abs=1)


def test_same_distribution_splits_the_pool_by_the_fraction():
    ds = digits("same_distribution", incremental_fraction=0.5)
    assert len(ds.initial) + len(ds.incremental) == 1797
    assert set(ds.initial["digit"]) == set(ds.incremental["digit"]) == set(range(10))


def test_covariate_shift_moves_the_inputs_not_the_labels():
    ds = digits("covariate_shift", shift_strength=2)
    first_columns = [c for c in ds.initial.columns if c.endswith(("_0", "_1"))]
    assert ds.initial[first_columns].to_numpy().sum() > 0
    assert ds.incremental[first_columns].to_numpy().sum() == 0  # shifted right by 2 pixels
    assert set(ds.incremental["digit"]) == set(range(10))


def test_concept_drift_rotates_the_affected_labels():
    same = digits("same_distribution")
    drift = digits("concept_drift", affected_classes=3)
    # Same rows (same seed), but classes 0, 1, 2 now carry labels 1, 2, 0.
    before, after = same.incremental["digit"].to_numpy(), drift.incremental["digit"].to_numpy()
    assert np.array_equal(after[before == 0], np.ones((before == 0).sum()))
    assert np.array_equal(after[before == 2], np.zeros((before == 2).sum()))
    assert np.array_equal(after[before > 2], before[before > 2])


def test_synthetic_is_seeded_and_has_a_categorical_column():
    params = DataParams(source="synthetic", scenario="covariate_shift")
    a, b = whole(params, 3), whole(params, 3)
    pd.testing.assert_frame_equal(a.initial, b.initial)
    kinds = {f.name: f.kind for f in a.features}
    assert kinds["segment"] == data.CATEGORICAL and kinds["x0"] == data.NUMERIC
    # Covariate shift moved the incremental inputs along one direction.
    assert abs(a.incremental["x0"].mean() - a.initial["x0"].mean()) > 0.05


def write_csvs(tmp_path, initial, incremental):
    raw = tmp_path / "raw"
    raw.mkdir()
    initial.to_csv(raw / "a.csv", index=False)
    incremental.to_csv(raw / "b.csv", index=False)
    return DataParams(source="files", files=FilesParams("raw/a.csv", "raw/b.csv", "churned"))


def frame(n, seed):
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "tenure": rng.integers(1, 60, n),
            "plan": rng.choice(["basic", "pro"], n),
            "churned": rng.choice(["yes", "no"], n),
        }
    )


def test_prepare_writes_the_splits_and_summary_for_users_files(tmp_path):
    params = write_csvs(tmp_path, frame(80, 0), frame(40, 1))
    summary = data.prepare(params, tmp_path).to_json()
    for split in layout.SPLITS:
        assert (tmp_path / layout.split_path(split)).is_file()
    assert summary["features"] == [
        {"name": "tenure", "kind": "numeric"},
        {"name": "plan", "kind": "categorical"},
    ]
    assert summary["rows"]["initial_train"] + summary["rows"]["initial_test"] == 80
    assert json.loads((tmp_path / layout.SUMMARY).read_text()) == summary
    prepared = data.load_prepared(tmp_path)
    assert prepared.x("initial_test").dtypes["tenure"] == np.float64


def test_a_missing_label_column_names_the_file_and_column(tmp_path):
    params = write_csvs(tmp_path, frame(20, 0).drop(columns="churned"), frame(20, 1))
    with pytest.raises(DataError, match=r"a\.csv: no label column 'churned'"):
        data.prepare(params, tmp_path)


def test_a_feature_missing_from_the_new_file_is_named(tmp_path):
    params = write_csvs(tmp_path, frame(20, 0), frame(20, 1).drop(columns="plan"))
    with pytest.raises(DataError, match=r"b\.csv: missing feature column 'plan'"):
        data.prepare(params, tmp_path)


def test_listed_features_limit_the_columns(tmp_path):
    params = write_csvs(tmp_path, frame(40, 0), frame(40, 1))
    params = dataclasses.replace(params, files=dataclasses.replace(params.files, features=["plan"]))
    assert [f.name for f in data.prepare(params, tmp_path).features] == ["plan"]


def test_an_unsupported_file_type_is_refused(tmp_path):
    params = DataParams(source="files", files=FilesParams("x.xlsx", "y.csv", "label"))
    with pytest.raises(DataError, match="unsupported file type"):
        data.prepare(params, tmp_path)
    assert not (tmp_path / layout.PREPARED_DIR).exists()


@pytest.mark.parametrize("rows, fraction, in_test", [(3, 0.1, 1), (2, 0.9, 1), (10, 0.25, 2), (10, 0.26, 3), (1, 0.9, 0)])
def test_stratified_split_rounds_a_class_but_keeps_one_row_on_each_side(rows, fraction, in_test):
    labels = np.array(["a"] * rows + ["b"] * 8)
    train, test = data.stratified_split(labels, fraction, np.random.default_rng(0))
    assert (labels[test] == "a").sum() == in_test and (labels[train] == "a").sum() == rows - in_test
    assert list(train) == sorted(train) and list(test) == sorted(test)


def two_parts():
    """A dataset in two parts, as the synthetic source yields it chunk by chunk."""
    def part(seed, classes, cleaning):
        rng = np.random.default_rng(seed)
        def rows(n, labels):
            return pd.DataFrame({"x": rng.normal(size=n), "y": rng.choice(labels, n)})
        return data.Dataset(rows(40, classes[0]), rows(20, classes[1]), "y", (data.Feature("x", data.NUMERIC),),
                            cleaning=cleaning, notes={"label_type": "text"})
    return [part(0, (["a", "b"], ["b", "c"]), {"a.csv": {"rows": 40, "dropped": 1}, "b.csv": {"rows": 20, "dropped": 2}}),
            part(1, (["a", "b", "d"], ["c"]), {"a.csv": {"rows": 40, "dropped": 3}, "b.csv": {"rows": 20, "dropped": 0}})]


def test_make_splits_keeps_the_columns_and_every_row_once_training_rows_shuffled():
    dataset = two_parts()[0]
    splits = data.make_splits(dataset, 0.25, np.random.default_rng(0))
    assert list(splits) == ["initial_train", "initial_test", "incremental_train", "incremental_test"]
    for part in ("initial", "incremental"):
        train, test = splits[f"{part}_train"], splits[f"{part}_test"]
        assert list(train.columns) == list(test.columns) == ["x", "y"]
        assert list(train.index) == list(range(len(train))) and list(test.index) == list(range(len(test)))
        whole = getattr(dataset, part)
        pd.testing.assert_frame_equal(pd.concat([train, test]).sort_values("x", ignore_index=True),
                                      whole.sort_values("x", ignore_index=True))
    train = list(splits["initial_train"]["x"])
    assert train != [x for x in dataset.initial["x"] if x in set(train)]  # not in the source's order


def test_the_tally_adds_the_parts_up_and_checks_the_whole():
    tally, rng = data.Tally(), np.random.default_rng(0)
    parts = two_parts()
    for dataset in parts:
        tally.add(dataset, data.make_splits(dataset, 0.25, rng))
    assert tally.rows == {"initial_train": 60, "initial_test": 20, "incremental_train": 30, "incremental_test": 10}
    total = lambda name: int(tally.counts[name].sum())  # noqa: E731
    assert {name: total(name) for name in tally.rows} == tally.rows
    assert tally.cleaning == {"initial": {"rows": 80, "dropped": 4}, "incremental": {"rows": 40, "dropped": 2}}
    tally.check(("a.csv", "b.csv"))
    params = DataParams(source="files", files=FilesParams("a.csv", "b.csv", "y"))
    summary = tally.summary("y", parts[0].features, params)
    assert summary.to_json() == {
        "source": "files", "scenario": None, "label": "y", "features": [{"name": "x", "kind": "numeric"}],
        "rows": tally.rows,
        "classes": {"initial_train": ["a", "b", "d"], "initial_test": ["a", "b", "d"],
                    "incremental_train": ["b", "c"], "incremental_test": ["b", "c"]},
        "new_classes": ["c"], "cleaning": tally.cleaning, "label_type": "text", "task": "classification",
        "inputs": None,
    }
    assert data.PreparedSummary.from_json(summary.to_json()) == summary
    builtin = tally.summary("y", parts[0].features, DataParams(source="synthetic", scenario="covariate_shift"))
    assert builtin.source == "synthetic" and builtin.scenario == "covariate_shift"
    assert tally.summary("y", parts[0].features, DataParams(source="arrays")).scenario is None


def test_the_tally_refuses_a_class_of_one_row_one_class_or_an_empty_split():
    def tally_of(initial, incremental):
        splits = {name: pd.DataFrame({"y": labels}) for name, labels in zip(layout.SPLITS, (*initial, *incremental))}
        tally = data.Tally()
        tally.add(data.Dataset(splits["initial_train"], splits["incremental_train"], "y", ()), splits)
        return tally

    # Each class has two rows in all, one in each split: fine, though no split alone has two.
    tally_of((["a", "b"], ["a", "b"]), (["c"], ["c"])).check(("old", "new"))
    with pytest.raises(DataError, match=r"^old: class 'b' has a single row"):
        tally_of((["a", "b"], ["a"]), (["c"], ["c"])).check(("old", "new"))
    with pytest.raises(DataError, match=r"^old: only one class \('a'\)"):
        tally_of((["a"], ["a"]), (["c"], ["c"])).check(("old", "new"))
    tally_of((["a", "b"], ["a", "b"]), (["c"], ["c"])).check(("old", "new"))  # one new class is enough
    with pytest.raises(DataError, match=r"^new: class 'd' has a single row"):
        tally_of((["a", "b"], ["a", "b"]), (["c", "d"], ["c"])).check(("old", "new"))
    with pytest.raises(DataError, match=r"^split 'incremental_test' is empty: give more rows or change "
                                        r"data\.test_fraction$"):
        tally_of((["a", "b"], ["a", "b"]), (["c", "c"], [])).check(("old", "new"))


def test_the_split_writer_appends_parts_in_row_groups_and_replaces_the_files_only_on_commit(tmp_path):
    import pyarrow.parquet as pq

    path = tmp_path / layout.split_path("initial_train")
    first = pd.DataFrame({"x": np.arange(data.ROW_GROUP_ROWS + 1, dtype=float), "y": "a"})
    with data.SplitWriter(tmp_path) as writer:
        writer.append({"initial_train": first})
        writer.append({"initial_train": first.iloc[:3]})
        assert not path.exists()
        writer.commit()
    source = pq.ParquetFile(path)
    assert source.schema_arrow.names == ["x", "y"]  # no index column
    assert [source.metadata.row_group(i).num_rows for i in range(source.metadata.num_row_groups)] == [
        data.ROW_GROUP_ROWS, 1, 3]
    assert list(tmp_path.rglob(".*partial")) == []

    with pytest.raises(ValueError), data.SplitWriter(tmp_path) as writer:  # a failed prepare
        writer.append({"initial_train": first.iloc[:2]})
        raise ValueError("a check failed")
    assert pq.ParquetFile(path).metadata.num_rows == data.ROW_GROUP_ROWS + 4  # as it was
    assert list(tmp_path.rglob(".*partial")) == []


def test_prepare_takes_wide_arrays_column_blocks_at_a_time_without_a_warning(tmp_path):
    """Images of a few thousand pixels: before, each column was inserted on its own, which
    took 25 s and 12,000 lines of pandas' PerformanceWarning at 3,072 values per row (and did
    not finish in ten minutes at 20,000). benchmarks/wide.py measures the time per value."""
    import warnings

    rng = np.random.default_rng(0)
    for name, n in (("old", 60), ("new", 30)):
        x = rng.random((n, 3, 32, 32)).astype("float32")
        x[0, 0, 0, 0] = np.nan  # one value to drop the row for
        np.savez(tmp_path / f"{name}.npz", x=x, y=rng.integers(0, 2, n))
    params = DataParams(source="arrays", arrays=ArraysParams("old.npz", "new.npz"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        summary = data.prepare(params, tmp_path).to_json()
    assert summary["input_shape"] == [3, 32, 32] and len(summary["features"]) == 3 * 32 * 32
    assert summary["cleaning"]["initial"]["dropped_incomplete"] == 1
    assert sum(summary["rows"].values()) == 60 + 30 - 2


def test_a_regression_label_is_split_within_bands_of_its_values():
    from retrainlab.data.splitting import LABEL_BANDS, label_bands

    values = np.array([5.0, 1.0, 3.0, 2.0, 4.0, 0.0, 9.0, 8.0, 7.0, 6.0])
    assert LABEL_BANDS == 10
    assert label_bands(values, 5).tolist() == [2, 0, 1, 1, 2, 0, 4, 4, 3, 3]
    assert label_bands(values).tolist() == [5, 1, 3, 2, 4, 0, 9, 8, 7, 6]
    assert label_bands(np.array([2.0, 2.0, 1.0]), 3).tolist() == [1, 2, 0]  # ties by position
    assert label_bands(np.array([]), 4).tolist() == []
    train, test = data.stratified_split(label_bands(np.arange(100.0), 10), 0.2, np.random.default_rng(0))
    assert len(test) == 20 and sorted(np.asarray(test) // 10) == sorted([b for b in range(10) for _ in range(2)])
    assert len(train) == 80


def test_a_regression_labels_moments_pool_as_the_whole_would_give_them():
    from retrainlab.data.splitting import Moments

    values = np.array([1.0, 2.0, 4.0, 8.0, 16.0])
    whole = Moments.of(values)
    pooled = Moments.of(values[:2]) + Moments.of(values[2:])
    assert (pooled.rows, pooled.low, pooled.high) == (5, 1.0, 16.0)
    assert pooled.mean == pytest.approx(6.2) and pooled.spread == pytest.approx(whole.spread)
    assert whole.spread == pytest.approx(((values - 6.2) ** 2).sum())
    assert Moments() + Moments() == Moments() and Moments.of(np.array([])) == Moments()
    assert Moments() + whole == whole
    assert whole.stats() == pytest.approx({"mean": 6.2, "std": float(np.std(values, ddof=1)), "min": 1.0, "max": 16.0})
    assert Moments.of(np.array([3.0])).stats() == {"mean": 3.0, "std": 0.0, "min": 3.0, "max": 3.0}


def test_the_tally_of_a_regressor_checks_that_each_part_and_test_split_varies():
    def part(initial, incremental, test_initial, test_incremental):
        frames = {name: pd.DataFrame({"x": np.arange(len(v), dtype=float), "y": np.asarray(v, dtype=float)})
                  for name, v in (("initial_train", initial), ("initial_test", test_initial),
                                  ("incremental_train", incremental), ("incremental_test", test_incremental))}
        dataset = data.Dataset(frames["initial_train"], frames["incremental_train"], "y",
                               (data.Feature("x", data.NUMERIC),), {"initial": {"rows": 1}, "incremental": {"rows": 1}},
                               {"task": "regression", "task_rule": "auto: the label holds fractions"})
        return dataset, frames

    tally = data.Tally()
    tally.add(*part([1.5, 2.5], [3.0, 4.0], [1.0, 2.0], [5.0, 6.0]))
    tally.check(("old.csv", "new.csv"))
    summary = tally.summary("y", (data.Feature("x", data.NUMERIC),), DataParams(source="files"))
    assert summary.task == "regression" and summary.classes["initial_train"] == [] and summary.new_classes == []
    assert summary.label_stats["incremental_test"] == pytest.approx({"mean": 5.5, "std": 0.70710678, "min": 5.0,
                                                                     "max": 6.0})
    flat = data.Tally()
    flat.add(*part([2.0, 2.0], [3.0, 4.0], [2.0, 2.0], [5.0, 6.0]))
    with pytest.raises(DataError, match=r"^old\.csv: label 'y' is 2 in every row: nothing to predict, and R² is "):
        flat.check(("old.csv", "new.csv"))
    test_only = data.Tally()
    test_only.add(*part([1.0, 2.0], [3.0, 4.0], [1.0, 2.0], [5.0, 5.0]))
    with pytest.raises(DataError, match=r"^new\.csv's test split: label 'y' is 5 in every row"):
        test_only.check(("old.csv", "new.csv"))
    empty = data.Tally()
    empty.add(*part([1.0, 2.0], [3.0, 4.0], [1.0, 2.0], []))
    with pytest.raises(DataError, match=r"split 'incremental_test' is empty"):
        empty.check(("old.csv", "new.csv"))
