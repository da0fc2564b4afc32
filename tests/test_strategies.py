import dataclasses

import keras
import numpy as np
import pytest

from retrainlab import data, evaluation
from retrainlab.errors import DataError
from retrainlab.strategies import grown_labels, plan_for
from retrainlab.training import fit, seed_everything


@pytest.fixture
def prepared(tmp_path, tiny_params):
    data.prepare(tiny_params.data, tmp_path)
    return data.load_prepared(tmp_path)


def train(name, prepared, params, base=None, seed=0):
    seed_everything(seed)
    plan = plan_for(name, prepared, params, base, seed)
    history = keras.callbacks.History()
    fit(plan, prepared, callbacks=[history], seed=seed)
    tests = {k: [(prepared.x(s), prepared.y(s))] for k, s in evaluation.TEST_SETS.items()}
    return plan, history, evaluation.evaluate(plan.bundle.predict_proba, plan.bundle.labels, tests)


def test_the_baseline_is_not_told_the_future_labels(prepared, tiny_params):
    plan, history, metrics = train("baseline", prepared, tiny_params)
    assert plan.bundle.labels == list(range(7))
    assert plan.splits == ("initial_train",)
    assert len(history.history["loss"]) == tiny_params.model.epochs
    assert metrics["acc_old"] > 0.5 and metrics["acc_new"] < metrics["acc_old"]


def test_every_update_knows_every_class_and_starts_where_it_should(prepared, tiny_params):
    base, _, _ = train("baseline", prepared, tiny_params)
    for name in ("full-retrain", "incremental", "fine-tune"):
        plan, history, metrics = train(name, prepared, tiny_params, base.bundle)
        assert sorted(plan.bundle.labels) == list(range(10)), name
        assert metrics["acc_new"] > 0.3, name
    assert plan_for("incremental", prepared, tiny_params, base.bundle, 0).splits == ("incremental_train",)
    assert plan_for("full-retrain", prepared, tiny_params, None, 0).splits == (
        "initial_train",
        "incremental_train",
    )


def test_updates_keep_the_old_classes_on_their_old_units():
    assert grown_labels([3, 1, 2], np.array([2, 9, 5, 9])) == [3, 1, 2, 5, 9]


def test_same_seed_same_metrics_and_other_seed_other_metrics(prepared, tiny_params):
    first = train("baseline", prepared, tiny_params)[2]
    again = train("baseline", prepared, tiny_params)[2]
    other = train("baseline", prepared, tiny_params, seed=1)[2]
    assert first == again
    assert first != other


def test_a_single_class_cannot_train_a_classifier(tmp_path, tiny_params):
    data.prepare(tiny_params.data, tmp_path)
    prepared = data.load_prepared(tmp_path)
    only_zeros = {split: [0] for split in prepared.summary["classes"]}
    single = dataclasses.replace(prepared, summary=prepared.summary | {"classes": only_zeros})
    with pytest.raises(DataError, match="only one class"):
        plan_for("baseline", single, tiny_params, None, 0)
