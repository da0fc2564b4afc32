"""The training feed, streamed over data larger than its window and held in memory, its
memory at a million rows, and resuming a run from a checkpoint on both: real Parquet files
read in small windows, and real Keras training (tests/data/test_stream.py tests the windows
and statistics themselves, without Keras)."""

import tracemalloc

import keras
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from retrainlab.base import layout
from retrainlab.data import NUMERIC, ROW_GROUP_ROWS, Feature, Prepared, PreparedSummary
from retrainlab.data.stream import FeatureStats, pieces, windows
from retrainlab.models.build import build_model
from retrainlab.models.bundle import ModelBundle
from retrainlab.strategies import Plan, Rows
from retrainlab.training.checkpoint import STATE, EpochCheckpoint, resume
from retrainlab.training.loop import MEMORY, STREAM, feed_of, fit, seed_everything, training_dataset

from ..data.test_stream import write

# Two files of 1,000 and 700 rows, each row named by its id, in row groups of 128 rows.
SIZES = (1000, 700)
ROWS = sum(SIZES)
FEATURES = (Feature("id", NUMERIC), Feature("x", NUMERIC))


def id_frame(ids):
    rng = np.random.default_rng(len(ids))
    return pd.DataFrame({"id": ids.astype(np.float32), "x": rng.normal(size=len(ids)).astype(np.float32),
                         "y": ids % 3})


@pytest.fixture
def two_files(tmp_path):
    starts = np.cumsum((0, *SIZES))
    return [write(tmp_path / f"part{i}.parquet", id_frame(np.arange(starts[i], starts[i + 1])), 128)
            for i in range(len(SIZES))]


def id_bundle(seed=0):
    """A small MLP that reads the id column (and one more), three classes: the id modulo 3."""
    frame = id_frame(np.arange(ROWS))
    model = build_model(FEATURES, FeatureStats.of_frame(frame, FEATURES), 3, [4], 0.0, seed)
    return ModelBundle(model, FEATURES, [0, 1, 2], "y")


ID_INPUT = "in0_id"  # the model input the id column goes to (models.input_names)


def stream_epoch(batches):
    """One pass over a training dataset: its batches as (ids, targets) numpy arrays."""
    return [(np.asarray(x[ID_INPUT]).ravel().astype(int), np.asarray(y)) for x, y in batches]


@pytest.mark.parametrize("in_memory", [False, True], ids=["streamed", "in memory"])
def test_the_training_feed_gives_every_row_once_an_epoch_and_reshuffles(two_files, in_memory):
    batches = training_dataset(id_bundle(), two_files, batch_size=64, seed=0, window_rows=100, in_memory=in_memory)
    epochs = [stream_epoch(batches) for _ in range(2)]
    for epoch in epochs:
        ids = np.concatenate([i for i, _ in epoch])
        assert np.array_equal(np.sort(ids), np.arange(ROWS))
        assert all(len(i) <= 64 for i, _ in epoch) and len(epoch) == -(-ROWS // 64)
        assert all(np.array_equal(y, i % 3) for i, y in epoch)  # each row keeps its own target
    assert not np.array_equal(np.concatenate([i for i, _ in epochs[0]]), np.concatenate([i for i, _ in epochs[1]]))


def same_batches(a, b):
    return len(a) == len(b) and all(np.array_equal(x, u) and np.array_equal(y, v) for (x, y), (u, v) in zip(a, b))


def test_a_stream_started_at_epoch_k_gives_the_batches_an_uninterrupted_one_gives_at_epoch_k(two_files):
    bundle = id_bundle()
    uninterrupted = training_dataset(bundle, two_files, batch_size=64, seed=3, window_rows=100)
    epochs = [stream_epoch(uninterrupted) for _ in range(3)]
    assert not same_batches(epochs[1], epochs[2])  # so that the check below can fail
    for k in (1, 2):
        resumed = training_dataset(bundle, two_files, batch_size=64, seed=3, first_epoch=k, window_rows=100)
        assert same_batches(stream_epoch(resumed), epochs[k]), f"epoch {k}"


def test_rows_held_in_memory_come_in_the_batches_the_stream_gives(two_files):
    """Epoch by epoch, and from a resumed epoch on, over windows smaller than the data."""
    bundle = id_bundle()
    streamed = training_dataset(bundle, two_files, batch_size=64, seed=3, window_rows=100)
    held = training_dataset(bundle, two_files, batch_size=64, seed=3, window_rows=100, in_memory=True)
    epochs = [stream_epoch(streamed) for _ in range(3)]
    assert not same_batches(epochs[0], epochs[1])  # so that the checks below can fail
    assert all(same_batches(stream_epoch(held), epoch) for epoch in epochs)
    resumed = training_dataset(bundle, two_files, batch_size=64, seed=3, first_epoch=2, window_rows=100,
                               in_memory=True)
    assert same_batches(stream_epoch(resumed), epochs[2])


def test_the_feed_is_memory_while_three_times_the_decoded_rows_fit_the_budget(two_files):
    from retrainlab.data.stream import decoded_bytes

    need = 3 * sum(decoded_bytes(p) for p in two_files) / MIB
    assert feed_of(two_files, need) == MEMORY and feed_of(two_files, need * 0.99) == STREAM
    assert feed_of(two_files, 0) == STREAM and feed_of(two_files, None) == MEMORY  # a quarter of this machine's


MIB = 1 << 20


def test_a_million_rows_stream_in_memory_bounded_by_the_window_not_the_file(tmp_path):
    """About 1e6 rows of 8 float32 columns (30.5 MiB in memory), in row groups as prepare writes
    them (ROW_GROUP_ROWS rows, 2 MiB). Python's and Arrow's allocations together stay under
    12 MiB for the training windows (of 0.6 MiB) and under 24 MiB for the statistics (whose
    pieces are a row group, converted to float64), where holding the file once takes 30.5."""
    n, columns = 1_000_000, [f"f{i}" for i in range(8)]
    frame = pd.DataFrame(np.random.default_rng(0).normal(size=(n, 8)).astype(np.float32), columns=columns)
    in_memory = frame.memory_usage(index=False).sum()
    path = write(tmp_path / "big.parquet", frame, ROW_GROUP_ROWS)
    del frame
    windows_bound, stats_bound = 12 * MIB, 24 * MIB
    assert stats_bound < 0.8 * in_memory

    def held(source):
        """What Arrow holds beyond what it held before (other tests' frames may keep some),
        sampled at each piece or window the source gives."""
        before = pa.total_allocated_bytes()
        for item in source:
            arrow.append(pa.total_allocated_bytes() - before)
            yield item

    tracemalloc.start()
    try:
        arrow, rows, largest = [], 0, 0
        for window in held(windows([path], columns, np.random.default_rng(0), window_rows=1 << 14, piece_rows=1 << 12)):
            rows, largest = rows + len(window), max(largest, len(window))
        python = tracemalloc.get_traced_memory()[1]
        assert rows == n and largest < (1 << 14) + (1 << 12)
        assert python + max(arrow) < windows_bound, f"windows: {python / MIB:.1f} + {max(arrow) / MIB:.1f} MiB"

        tracemalloc.reset_peak()
        arrow = []
        features = [Feature(c, NUMERIC) for c in columns]
        stats = FeatureStats.of_pieces(held(pieces(path, columns, 1 << 16)), features)  # as FeatureStats.of_files
        python = tracemalloc.get_traced_memory()[1]
        assert stats.mean.shape == (8,) and np.all(np.abs(stats.variance - 1) < 0.01)
        assert python + max(arrow) < stats_bound, f"statistics: {python / MIB:.1f} + {max(arrow) / MIB:.1f} MiB"
    finally:
        tracemalloc.stop()


class RowsSeen:
    """A loss term of weight zero that notes the ids of the rows the training stream brings, in
    the order it brings them (its targets are computed from every window's rows)."""

    width = 1

    def __init__(self) -> None:
        self.ids = []

    def targets(self, inputs):
        ids = np.asarray(inputs[ID_INPUT]).ravel().astype(int)
        self.ids.append(ids)
        return np.zeros((len(ids), 1), dtype=np.float32)

    def __call__(self, targets, probabilities):
        return keras.ops.zeros_like(probabilities[:, 0])

    def epochs(self) -> list[np.ndarray]:
        ids = np.concatenate(self.ids)
        return np.split(ids, np.arange(ROWS, len(ids), ROWS))


@pytest.fixture
def id_data(tmp_path):
    """The ids as a prepared training split of a project of its own."""
    path = tmp_path / layout.split_path("initial_train")
    path.parent.mkdir(parents=True)
    write(path, id_frame(np.arange(ROWS)), 128)
    summary = PreparedSummary(source="files", scenario=None, label="y", features=FEATURES,
                              rows={"initial_train": ROWS}, classes={"initial_train": [0, 1, 2]}, new_classes=[],
                              cleaning={})
    return Prepared(tmp_path, summary)


BATCH = 128


def id_plan(seed, epochs):
    seed_everything(seed)
    return Plan(id_bundle(seed), (Rows("initial_train"),), epochs, 0.01, BATCH, "model", loss_terms=(RowsSeen(),))


@pytest.mark.parametrize("budget, feed", [(0, STREAM), (None, MEMORY)], ids=["streamed", "in memory"])
def test_resume_restores_the_checkpoint_weights_and_feeds_the_epoch_it_stopped_at(id_data, tmp_path, budget, feed):
    checkpoints = tmp_path / "checkpoints"
    stopped = id_plan(0, epochs=2)
    fit(stopped, id_data, callbacks=[EpochCheckpoint(checkpoints)], seed=5, memory_budget_mb=budget)
    assert stopped.feed == feed
    saved = stopped.bundle.model.get_weights()
    assert (checkpoints / STATE).is_file()

    resumed = id_plan(1, epochs=3)  # another seed: other starting weights
    start = resumed.bundle.model.get_weights()
    assert not all(np.array_equal(a, b) for a, b in zip(start, saved))
    done, history = resume(resumed.bundle.model, checkpoints)
    assert done == 2 and len(history) == 2 and all("loss" in epoch for epoch in history)
    assert all(np.array_equal(a, b) for a, b in zip(resumed.bundle.model.get_weights(), saved))

    fit(resumed, id_data, initial_epoch=done, seed=5, memory_budget_mb=budget)
    assert resumed.bundle.model.optimizer.iterations.numpy() == -(-ROWS // BATCH)  # one epoch trained
    # The rows, in order, of an uninterrupted run's three epochs: the stream of the same seed.
    stream = training_dataset(stopped.bundle, [id_data.path("initial_train")], BATCH, seed=5)
    expected = [np.concatenate([ids for ids, _ in stream_epoch(stream)]) for _ in range(3)]
    seen = stopped.loss_terms[0].epochs(), resumed.loss_terms[0].epochs()
    if feed == STREAM:  # the loss term sees each epoch's rows as they stream
        assert all(np.array_equal(a, b) for a, b in zip(seen[0], expected[:2], strict=True))
        assert np.array_equal(seen[1][0], expected[2]) and not np.array_equal(seen[1][0], expected[1])
    else:  # held in memory, the term's targets are made once, in file order; the batches are the stream's
        assert [np.array_equal(np.sort(ids), np.arange(ROWS)) for ids in (*seen[0], *seen[1])] == [True, True]
        held = training_dataset(stopped.bundle, [id_data.path("initial_train")], BATCH, seed=5, first_epoch=2,
                                in_memory=True)
        assert np.array_equal(np.concatenate([ids for ids, _ in stream_epoch(held)]), expected[2])


def test_resume_without_a_checkpoint_starts_at_epoch_zero_and_leaves_the_weights(tmp_path):
    bundle = id_bundle()
    before = bundle.model.get_weights()
    assert resume(bundle.model, tmp_path / "none") == (0, [])
    assert all(np.array_equal(a, b) for a, b in zip(bundle.model.get_weights(), before))


def test_a_model_adopted_as_it_is_is_scored_once_for_all_seeds(id_data, project_params, monkeypatch):
    """A brought baseline of no epochs is the same model for every seed: its first seed's
    outcome serves the others, without reading the test sets again."""
    from retrainlab.training import seed as seed_module

    scored = []
    def evaluate(bundle, *args, **kwargs):
        scored.append(bundle)
        return {"acc_old": 0.5}

    monkeypatch.setattr(seed_module, "evaluate", evaluate)
    adopted = Plan(id_bundle(0), (Rows("initial_train"),), 0, 0.01, BATCH, "model")
    first = seed_module.train_seed(adopted, id_data, project_params, 0, None)
    again = seed_module.train_seed(adopted, id_data, project_params, 1, None, adopted=first)
    assert len(scored) == 1 and again.figures == first.figures and again.bundle is adopted.bundle
    trained = Plan(id_bundle(0), (Rows("initial_train"),), 1, 0.01, BATCH, "model")
    seed_module.train_seed(trained, id_data, project_params, 1, None, adopted=first)  # a trained model is scored
    assert len(scored) == 2
