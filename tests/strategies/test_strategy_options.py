"""The options beyond the naive ones, each checked where it would silently degenerate to
plain incremental training: replay's old rows, the distillation term's gradient,
shrink-and-perturb's starting weights. Real Keras on the digits demo's data."""

import dataclasses

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from retrainlab import data
from retrainlab.strategies import CATALOGUE, UPDATES, plan_for, settings_of
from retrainlab.strategies.distill import Distillation, softened
from retrainlab.strategies.replay import ReplaySettings, old_sample_size
from retrainlab.strategies.shrink_perturb import shrink_and_perturb
from retrainlab.training.loop import Objective, fit, rows_trained, sampled_rows, seed_everything, training_dataset

from ..conftest import tiny


@pytest.fixture(scope="module")
def demo(tmp_path_factory, request):
    """The digits demo (new classes in the new data), prepared, with a baseline trained on it."""
    from retrainlab.pipeline.params import load_params

    from ..conftest import PROJECT

    root = tmp_path_factory.mktemp("options")
    params = tiny(load_params(PROJECT / "params.yaml"), strategies=UPDATES)
    data.prepare(params.data, root)
    prepared = data.load_prepared(root)
    seed_everything(0)
    plan = plan_for("baseline", prepared, params, None, 0)
    fit(plan, prepared)
    return params, prepared, plan.bundle


def with_settings(params, name, **changes):
    settings = dataclasses.replace(settings_of(params, name), **changes)
    return dataclasses.replace(params, strategies=params.strategies | {name: settings})


def test_replay_trains_on_the_new_rows_and_the_stated_number_of_distinct_old_rows(demo):
    params, prepared, base = demo
    new, old = prepared.rows("incremental_train"), prepared.rows("initial_train")
    for changes, expected in (({"old_fraction": 0.5}, round(0.5 * new)), ({"old_rows": 40}, 40),
                              ({"old_fraction": 100.0}, old)):
        plan = plan_for("replay", prepared, with_settings(params, "replay", **changes), base, 0)
        assert plan.splits == ("incremental_train", "initial_train")
        assert rows_trained(prepared, plan) == new + expected, changes
        with sampled_rows(prepared, plan.rows, seed=0) as paths:
            sample = pd.read_parquet(paths[1])
            assert len(sample) == expected and len(pd.read_parquet(paths[0])) == new
            old_rows = prepared.frame("initial_train")
            assert len(sample.merge(old_rows.drop_duplicates())) == expected  # every row is an old row
            assert not sample.duplicated().any() or old_rows.duplicated().any()
            # and the rows the model is given each epoch are exactly those
            batches = training_dataset(plan.bundle, paths, 32, seed=0)
            labels = np.concatenate([y.numpy() for _, y in batches])
            assert len(labels) == new + expected
            old_classes = set(base.encode(base.labels))
            from_old = np.isin(labels, list(old_classes)).sum() - np.isin(
                plan.bundle.encode(prepared.y("incremental_train")), list(old_classes)).sum()
            assert from_old == expected
    with sampled_rows(prepared, plan.rows, seed=0) as first, sampled_rows(prepared, plan.rows, seed=1) as other:
        pass  # files are gone afterwards
    assert not any(p.exists() for p in (*first, *other) if "sample-" in str(p))


def test_replay_sample_size_is_bounded_by_the_old_rows():
    assert old_sample_size(ReplaySettings(old_fraction=2.0), 100, 1000) == 200
    assert old_sample_size(ReplaySettings(old_rows=50), 100, 1000) == 50
    assert old_sample_size(ReplaySettings(old_rows=5000), 100, 1000) == 1000
    assert old_sample_size(ReplaySettings(old_fraction=0.001), 100, 1000) == 1


def test_a_sample_is_drawn_piece_by_piece_the_same_for_the_same_seed(tmp_path):
    from retrainlab.training.loop import write_sample

    frame = pd.DataFrame({"x": np.arange(50_000, dtype=float), "label": np.arange(50_000) % 3})
    frame.to_parquet(tmp_path / "rows.parquet", row_group_size=4096)  # many pieces
    draws = []
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        write_sample(tmp_path / "rows.parquet", tmp_path / f"{name}.parquet", 1234, np.random.default_rng(seed))
        draws.append(pd.read_parquet(tmp_path / f"{name}.parquet")["x"].to_numpy())
    assert len(draws[0]) == 1234 and len(set(draws[0])) == 1234 and np.all(np.diff(draws[0]) > 0)
    assert np.array_equal(draws[0], draws[1]) and not np.array_equal(draws[0], draws[2])
    assert draws[0].min() < 5000 and draws[0].max() > 45_000  # drawn from the whole file


def test_distillation_is_zero_where_the_model_matches_its_teacher_and_pulls_back_where_it_strays(demo):
    params, prepared, base = demo
    plan = plan_for("distill", prepared, params, base, 0)
    (term,) = plan.loss_terms
    assert plan.splits == ("incremental_train",)  # no old rows
    x = plan.bundle.arrays(prepared.frame("incremental_train").head(64))
    targets = term.targets(plan.bundle.inputs(prepared.frame("incremental_train").head(64)))
    assert targets.shape == (64, len(base.labels)) and np.allclose(targets.sum(axis=1), 1, atol=1e-5)
    # The grown model starts where the baseline was: on the old classes, nothing to distil.
    start = plan.bundle.model(x, training=False)
    assert np.allclose(keras.ops.convert_to_numpy(term(targets, start)), 0, atol=1e-5)

    # After it has strayed, the term's gradient is not zero and changes the total gradient.
    strayed = plan.bundle.model
    for variable in strayed.trainable_variables:
        variable.assign(variable.numpy() + np.random.default_rng(0).normal(0, 0.05, variable.shape))
    labels = plan.bundle.encode(prepared.y("incremental_train")[:64]).astype("float32")
    packed = np.column_stack([labels, targets]).astype("float32")

    def gradient(objective, y):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(objective.per_row(y, strayed(x, training=False)))
        return [g.numpy() for g in tape.gradient(loss, strayed.trainable_variables)]

    plain = gradient(Objective(False), labels)
    with_term = gradient(Objective(False, plan.loss_terms), packed)
    assert any(not np.allclose(a, b) for a, b in zip(plain, with_term))
    heavier = dataclasses.replace(settings_of(params, "distill"), weight=3.0)
    term3 = Distillation(base.model, heavier.temperature, heavier.weight)
    probs = strayed(x, training=False)
    assert np.allclose(keras.ops.convert_to_numpy(term3(targets, probs)),
                       3 * keras.ops.convert_to_numpy(term(targets, probs)), rtol=1e-4)


def test_softening_is_a_softmax_at_the_temperature():
    logits = np.array([[2.0, 0.5, -1.0]])
    probs = np.exp(logits) / np.exp(logits).sum()
    hot = np.exp(logits / 4) / np.exp(logits / 4).sum()
    assert np.allclose(softened(probs, 4.0), hot) and np.allclose(softened(probs, 1.0), probs)


def test_distill_trains_and_its_model_loads_with_a_plain_loss(demo, tmp_path):
    params, prepared, base = demo
    plan = plan_for("distill", prepared, params, base, 0)
    history = keras.callbacks.History()
    fit(plan, prepared, callbacks=[history])
    assert "distillation" in plan.compiled_with and len(history.history["accuracy"]) == plan.epochs
    plan.bundle.save(tmp_path / "m")
    from retrainlab.models.bundle import ModelBundle

    loaded = ModelBundle.load(tmp_path / "m")
    x = prepared.frame("incremental_test")
    assert np.allclose(loaded.predict_proba(x), plan.bundle.predict_proba(x), atol=1e-6)


def test_shrink_perturb_starts_from_shrink_times_the_weights_plus_noise_times_fresh_ones(demo):
    params, prepared, base = demo
    plan = plan_for("shrink-perturb", prepared, params, base, 0)
    assert plan.splits == ("initial_train", "incremental_train")
    model = plan.bundle.model
    before = [v.numpy().copy() for v in model.trainable_variables]
    frozen = [v.numpy().copy() for v in model.non_trainable_variables]
    shrink_and_perturb(0.5, 0.0)(model, 0)
    assert all(np.allclose(v.numpy(), 0.5 * b) for v, b in zip(model.trainable_variables, before))
    for v, b in zip(model.trainable_variables, before):
        v.assign(b)
    shrink_and_perturb(0.4, 0.1)(model, 0)
    noise = [(v.numpy() - 0.4 * b) / 0.1 for v, b in zip(model.trainable_variables, before)]
    kernels = [(n, v) for n, v in zip(noise, model.trainable_variables) if len(v.shape) == 2]
    for n, v in kernels:  # fresh Glorot-uniform values: within the limit, spread, and not the old start
        limit = np.sqrt(6 / (v.shape[0] + v.shape[1]))
        assert np.abs(n).max() <= limit + 1e-5 and n.std() > limit / 4
    assert not np.allclose(kernels[0][0], before[0])
    assert all(np.array_equal(v.numpy(), f) for v, f in zip(model.non_trainable_variables, frozen))


def test_the_transform_runs_before_the_first_epoch_and_not_on_a_resume(demo):
    params, prepared, base = demo
    seen = []
    plan = plan_for("incremental", prepared, params, base, 0)
    plan = dataclasses.replace(plan, epochs=1, transform=lambda model, seed: seen.append(seed))
    fit(plan, prepared, seed=3)
    fit(dataclasses.replace(plan, epochs=2), prepared, initial_epoch=1, seed=3)
    assert seen == [3]


def test_every_option_is_declared_once_with_its_own_settings_and_starting_point(demo):
    params, prepared, base = demo
    for name in UPDATES:
        declared = CATALOGUE[name]
        plan = plan_for(name, prepared, params, base, 0)
        reads_old = any(r.split.startswith("initial") for r in plan.rows)
        assert reads_old == declared.reads_old_data, name
        assert sorted(plan.bundle.labels) == list(range(10)), name  # every option grows for the new classes
        if declared.section != "model":
            assert (plan.epochs, plan.learning_rate) == (settings_of(params, name).epochs,
                                                         settings_of(params, name).learning_rate), name
