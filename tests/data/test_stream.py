"""Reading the prepared files in bounded memory: pieces, shuffled windows over several files,
the preprocessing statistics in one pass, and labelled test chunks. Small windows and
pieces over small files, so that every bound is crossed many times."""

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from retrainlab.data import CATEGORICAL, NUMERIC, TEXT, Feature, stream

FEATURES = (Feature("x", NUMERIC), Feature("y", NUMERIC), Feature("colour", CATEGORICAL))


def frame(rows, start, seed):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "id": np.arange(start, start + rows),
        "x": rng.normal(1e6, 3.0, rows),  # a large mean: a naive sum of squares would lose the variance
        "y": rng.integers(-5, 5, rows).astype(float),
        "colour": rng.choice(["red", "green", "blue"], rows),
        "label": rng.choice(["a", "b"], rows),
    })


def write(path, data, row_group_rows):
    pq.write_table(pa.Table.from_pandas(data, preserve_index=False), path, row_group_size=row_group_rows)
    return path


@pytest.fixture
def two_files(tmp_path):
    """300 rows in row groups of 64, and 100 rows in row groups of 30."""
    first, second = frame(300, 0, 0), frame(100, 1000, 1)
    return (write(tmp_path / "first.parquet", first, 64), write(tmp_path / "second.parquet", second, 30)), (first, second)


def test_pieces_are_the_file_in_order_at_most_rows_at_a_time_within_row_groups(two_files):
    (path, _), (first, _) = two_files
    pieces = list(stream.pieces(path, ["id", "x"], rows=16))
    assert [len(p) for p in pieces] == [16, 16, 16, 16] * 4 + [16, 16, 12]  # row groups of 64, then 44
    assert all(list(p.columns) == ["id", "x"] for p in pieces)
    pd.testing.assert_frame_equal(pd.concat(pieces, ignore_index=True), first[["id", "x"]])
    assert stream.file_rows(path) == 300


def test_reading_a_file_holds_one_row_group_at_a_time(tmp_path):
    """Memory is bounded by a row group, not by the file: pyarrow's own allocations, counted.
    One row group is 160 KB; what pyarrow holds besides it varies with its decoding threads'
    timing (236 KB most often, up to 644 KB on a loaded machine, where a bound of 640 KB
    once failed). The bound is 8 row groups; reading the file whole holds 64."""
    rows = 640_000
    path = write(tmp_path / "long.parquet", pd.DataFrame({"x": np.arange(rows, dtype=float), "y": 1.0}), 10_000)
    whole = rows * 2 * 8  # bytes of the two float columns; a row group is a 64th of them
    start, most, seen = pa.total_allocated_bytes(), 0, 0
    for piece in stream.pieces(path, ["x", "y"], rows=1000):
        most, seen = max(most, pa.total_allocated_bytes() - start), seen + len(piece)
        del piece
    assert seen == rows and most < whole / 8


def test_windows_give_every_row_once_per_epoch_in_bounded_shuffled_windows(two_files):
    paths, (first, second) = two_files
    epochs = [list(stream.windows(paths, ["id", "x"], np.random.default_rng(seed), window_rows=50, piece_rows=16))
              for seed in (0, 0, 1)]
    for windows in epochs:
        ids = np.concatenate([w["id"].to_numpy() for w in windows])
        assert sorted(ids) == [*range(300), *range(1000, 1100)]  # every row, exactly once
        sizes = [len(w) for w in windows]
        # A window is closed by the piece that fills it: at most a piece short of 50 + 16.
        assert all(50 <= size < 50 + 16 for size in sizes[:-1]) and 0 < sizes[-1] < 50 + 16
        assert all(list(w.index) == list(range(len(w))) and list(w.columns) == ["id", "x"] for w in windows)
        by_id = pd.concat([first, second]).set_index("id")
        assert all(np.array_equal(w["x"].to_numpy(), by_id.loc[w["id"], "x"].to_numpy()) for w in windows)
    same, again, other = ([tuple(w["id"]) for w in windows] for windows in epochs)
    assert same == again and same != other  # seeded
    ids = np.concatenate([w["id"].to_numpy() for w in epochs[0]])
    assert not np.array_equal(ids, np.sort(ids))  # shuffled, not read out in order
    # Pieces are drawn in proportion to the rows each file has left: the second file's
    # rows are spread over the epoch, not read after the first file's.
    second_at = np.flatnonzero(ids >= 1000)
    assert second_at.mean() == pytest.approx(len(ids) / 2, rel=0.25)


@pytest.mark.parametrize("rows, window_rows, sizes", [
    (96, 48, [48, 48]),  # closed by the piece that reaches the bound
    (96, 49, [64, 32]),  # or passes it
    (97, 49, [64, 33]),  # the last row, a piece of its own, is read too
    (160, 49, [64, 64, 32]),  # each window counted from nothing
    (40, 10, [16, 16, 8]),  # windows of one piece each
])
def test_windows_close_at_the_first_piece_that_reaches_their_size(tmp_path, rows, window_rows, sizes):
    path = write(tmp_path / "one.parquet", frame(rows, 0, 0), 32)
    windows = list(stream.windows([path], ["id"], np.random.default_rng(0), window_rows=window_rows, piece_rows=16))
    assert [len(w) for w in windows] == sizes
    assert sorted(np.concatenate([w["id"] for w in windows])) == list(range(rows))


def test_a_window_larger_than_the_data_holds_it_all_shuffled(two_files):
    paths, _ = two_files
    windows = list(stream.windows(paths, ["id"], np.random.default_rng(0)))
    assert len(windows) == 1 and sorted(windows[0]["id"]) == [*range(300), *range(1000, 1100)]
    assert list(windows[0]["id"]) != sorted(windows[0]["id"])


def test_feature_stats_over_many_pieces_equal_numpy_on_the_whole(two_files):
    paths, (first, second) = two_files
    whole = pd.concat([first, second], ignore_index=True)
    pieces = [whole.iloc[i:i + 7] for i in range(0, len(whole), 7)] + [whole.iloc[:0]]
    stats = stream.FeatureStats.of_pieces(pieces, FEATURES)
    values = whole[["x", "y"]].to_numpy()
    np.testing.assert_allclose(stats.mean, values.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(stats.variance, values.var(axis=0), rtol=1e-9)
    assert stats.vocabularies == {"colour": ["blue", "green", "red"]}
    for other in (stream.FeatureStats.of_frame(whole, FEATURES), stream.FeatureStats.of_files(paths, FEATURES)):
        np.testing.assert_allclose(other.mean, stats.mean, rtol=1e-12)
        np.testing.assert_allclose(other.variance, stats.variance, rtol=1e-9)
        assert other.vocabularies == stats.vocabularies


def test_feature_stats_of_categorical_columns_only_and_of_no_rows():
    colours = pd.DataFrame({"colour": ["red", 3, "red"], "shape": ["square", "round", "round"]})
    features = (Feature("colour", CATEGORICAL), Feature("shape", CATEGORICAL))
    stats = stream.FeatureStats.of_pieces([colours.iloc[:1], colours.iloc[1:]], features)
    assert stats.mean.shape == stats.variance.shape == (0,)
    assert stats.vocabularies == {"colour": ["3", "red"], "shape": ["round", "square"]}
    empty = stream.FeatureStats.of_frame(pd.DataFrame({"x": [], "y": [], "colour": []}), FEATURES)
    assert list(empty.mean) == list(empty.variance) == [0.0, 0.0] and empty.vocabularies == {"colour": []}


def test_labelled_chunks_split_features_from_labels(two_files):
    (path, _), (first, _) = two_files
    chunks = list(stream.labelled_chunks(path, FEATURES, "label", rows=50))
    assert [len(y) for _, y in chunks] == [50, 14] * 4 + [44]  # a chunk never spans row groups
    assert all(list(x.columns) == ["x", "y", "colour"] for x, _ in chunks)
    pd.testing.assert_frame_equal(pd.concat([x for x, _ in chunks], ignore_index=True), first[["x", "y", "colour"]])
    assert list(np.concatenate([y for _, y in chunks])) == list(first["label"])


def test_feature_stats_of_a_text_column_are_its_most_frequent_tokens_by_every_reader(tmp_path):
    texts = pd.DataFrame({"review": ["Good, good day!", "bad day", "good DAY"], "colour": ["red", "blue", "red"]})
    features = (Feature("review", TEXT), Feature("colour", CATEGORICAL))
    path = tmp_path / "texts.parquet"
    texts.to_parquet(path)
    readers = {
        "pieces": lambda **kw: stream.FeatureStats.of_pieces([texts.iloc[:1], texts.iloc[1:]], features, **kw),
        "frame": lambda **kw: stream.FeatureStats.of_frame(texts, features, **kw),
        "files": lambda **kw: stream.FeatureStats.of_files([path, path], features, **kw),
    }
    for name, read in readers.items():
        assert read(max_tokens=2).tokens == {"review": ["day", "good"]}, name  # 3 of each; ties in text order
        stats = read()
        assert stats.tokens == {"review": ["day", "good", "bad"]} and stats.vocabularies == {"colour": ["blue", "red"]}
