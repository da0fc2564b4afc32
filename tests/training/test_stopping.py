"""Early stopping: the options trained to converge (the baseline and full-retrain, the
`model` section's) set a share of their training rows aside and stop once the loss on them
no longer improves, keeping the best epoch's weights; the updates train their epochs."""

import dataclasses

import keras
import numpy as np
import pyarrow.parquet as pq
import pytest

from retrainlab import data
from retrainlab.strategies import Stopping, plan_for
from retrainlab.data.digests import row_digests
from retrainlab.training.loop import VALIDATION_ROWS, fit, rows_trained, seed_everything, set_aside
from retrainlab.training.seed import make_plan, measured_fit, workload
from retrainlab.training.distribute import NONE, Distribution


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    from retrainlab.pipeline.params import load_params

    from ..conftest import PROJECT, tiny

    params = tiny(load_params(PROJECT / "params.yaml"))
    root = tmp_path_factory.mktemp("digits")
    data.prepare(params.data, root)
    return params, data.load_prepared(root)


def with_patience(params, patience, epochs=200):
    return dataclasses.replace(params, model=dataclasses.replace(params.model, patience=patience, epochs=epochs))


def test_the_model_sections_plans_stop_early_and_the_updates_train_their_epochs(digits):
    params, prepared = digits
    stopping = with_patience(params, 2)
    full = plan_for("full-retrain", prepared, stopping, None, 0)
    assert full.stopping == Stopping(2, 0.1) and plan_for("baseline", prepared, stopping, None, 0).stopping
    assert "up to 200 epochs" in workload(prepared, full) and "stopping after 2" in workload(prepared, full)
    assert plan_for("full-retrain", prepared, with_patience(params, None), None, 0).stopping is None
    base = make_plan("baseline", prepared, stopping, None, 0)
    assert plan_for("incremental", prepared, stopping, base.bundle, 0).stopping is None


def test_training_stops_once_the_rows_set_aside_no_longer_improve_and_keeps_the_best_epoch(digits):
    params, prepared = digits
    plan = make_plan("full-retrain", prepared, with_patience(params, 2), None, 0)
    history = keras.callbacks.History()

    class Weights(keras.callbacks.Callback):  # each epoch's weights, to find the best one's afterwards
        seen = []

        def on_epoch_end(self, epoch, logs=None):
            self.seen.append([w.copy() for w in self.model.get_weights()])

    cost, _ = measured_fit(plan, prepared, with_patience(params, 2), 0, Distribution(NONE), [history, Weights()])
    trained = plan.epochs_trained
    assert 3 <= trained < 200 and len(history.history["loss"]) == trained
    losses = history.history["val_loss"]
    best = int(np.argmin(losses))
    assert trained == best + 1 + 2  # two epochs without a better loss, then it stopped
    assert all(np.array_equal(a, b) for a, b in zip(plan.bundle.model.get_weights(), Weights.seen[best]))
    expected = round(rows_trained(prepared, plan) * 0.1)
    assert plan.rows_aside == expected
    assert cost.samples == (rows_trained(prepared, plan) - expected) * trained


def test_without_patience_every_epoch_is_trained_on_every_row(digits):
    params, prepared = digits
    plan = make_plan("full-retrain", prepared, params, None, 0)  # the tests' params: patience null
    seed_everything(0)
    fit(plan, prepared, seed=0)
    assert plan.epochs_trained == params.model.epochs and plan.rows_aside == 0


def test_the_rows_set_aside_are_a_seeded_share_of_each_file_and_are_not_trained_on(digits):
    params, prepared = digits
    paths = [prepared.path("initial_train"), prepared.path("incremental_train")]
    sizes = [pq.ParquetFile(p).metadata.num_rows for p in paths]
    with set_aside(prepared, paths, Stopping(5, 0.2), 3) as (kept, aside):
        kept_rows = [pq.read_table(p).to_pandas() for p in kept]
        assert [len(k) for k in kept_rows] == [n - round(round(sum(sizes) * 0.2) * n / sum(sizes)) for n in sizes]
        assert len(aside) + sum(len(k) for k in kept_rows) == sum(sizes)
        whole = np.concatenate([row_digests(pq.read_table(p).to_pandas(), prepared.features) for p in paths])
        kept_digests = np.concatenate([row_digests(k, prepared.features) for k in kept_rows])
        aside_digests = row_digests(aside, prepared.features)
        assert not np.isin(aside_digests, kept_digests).any()  # no row both trained on and set aside
        assert np.array_equal(np.sort(np.concatenate([kept_digests, aside_digests])), np.sort(whole))
        first = aside.copy()
    with set_aside(prepared, paths, Stopping(5, 0.2), 3) as (_, again):
        assert again.equals(first)
    with set_aside(prepared, paths, None, 3) as (same, none):
        assert same == paths and none is None
    assert VALIDATION_ROWS == 20_000
    assert not list((prepared.root / ".retrainlab").glob("training-*"))  # the scratch files are gone
