"""What a strategy declaration says and the plan its context makes, without training anything
(no TensorFlow: the model surgery is tested in test_strategies.py and test_models.py)."""

import dataclasses

import numpy as np
import pytest

from retrainlab.base import kinds
from retrainlab.base.errors import ConfigError
from retrainlab.config import MAX_EPOCHS, Params
from retrainlab.data import grown_labels
from retrainlab.strategies import (
    CATALOGUE,
    FROM_BASELINE,
    FROM_SCRATCH,
    Card,
    Context,
    Plan,
    Rows,
    Settings,
    Strategy,
    Training,
)


class Data:
    """What a context asks of the prepared data here: rows per split."""

    def rows(self, split):
        return {"initial_train": 120, "incremental_train": 30}[split]


def plan_nothing(ctx):
    raise AssertionError("not called here")


# What every declaration says besides its name, rank, summary and plan.
DECLARED = {"action": "", "suits": frozenset(), "card": Card(starts="s", trains_on="t", needs_old="n",
                                                             extra_cost="c", on_your_model="o")}


def context(settings, section="strategies.x"):
    params = Params()
    params = dataclasses.replace(params, model=dataclasses.replace(params.model, epochs=7, learning_rate=0.003,
                                                                       batch_size=16))
    return Context(Data(), params, settings, section, base="the baseline", seed=3)


def test_a_plan_takes_the_strategys_own_epochs_and_learning_rate_and_the_models_batch_size():
    ctx = context(Training(epochs=4, learning_rate=0.02))
    plan = ctx.plan("bundle", [Rows("incremental_train"), Rows("initial_train", 50)], callbacks=("stop",))
    assert plan == Plan("bundle", (Rows("incremental_train"), Rows("initial_train", 50)), 4, 0.02, 16,
                        "strategies.x", callbacks=("stop",))
    assert plan.splits == ("incremental_train", "initial_train")
    assert plan.loss_terms == () and plan.transform is None and plan.compiled_with == ""
    assert ctx.rows("incremental_train") == 30
    # What the context did to the starting model (a grown vocabulary) goes with the plan, for the run.
    ctx.notes.append("vectorize_in0_text: 3 new tokens appended (15 in all)")
    assert ctx.plan("bundle", []).notes == ("vectorize_in0_text: 3 new tokens appended (15 in all)",)
    assert plan.notes == ()


def test_a_strategy_without_settings_of_its_own_trains_as_the_model_section_says():
    plan = context(Settings(), section="strategies.keep").plan("bundle", [Rows("initial_train")], transform=print)
    assert (plan.epochs, plan.learning_rate, plan.batch_size, plan.section) == (7, 0.003, 16, "model")
    assert plan.transform is print and plan.splits == ("initial_train",) and plan.rows[0].limit is None


def test_training_settings_are_checked_naming_the_key():
    assert (Training().epochs, Training().learning_rate) == (15, 0.0005)
    Training(epochs=1, learning_rate=1e-9).check("strategies.x")
    Training(epochs=MAX_EPOCHS).check("strategies.x")
    Settings().check("strategies.x")
    cases = [(Training(learning_rate=0.0), "parameter 'strategies.x.learning_rate' must be positive"),
             (Training(epochs=0), f"parameter 'strategies.x.epochs' must be between 1 and {MAX_EPOCHS}"),
             (Training(epochs=MAX_EPOCHS + 1), f"parameter 'strategies.x.epochs' must be between 1 and {MAX_EPOCHS}")]
    for settings, message in cases:
        with pytest.raises(ConfigError) as refused:
            settings.check("strategies.x")
        assert str(refused.value) == message


def test_a_declaration_says_where_it_starts_and_where_its_settings_are():
    plain = Strategy(name="plain", rank=1, summary="one line", plan=plan_nothing, **DECLARED)
    assert (plain.starts_from, plain.reads_old_data, plain.settings) == (FROM_BASELINE, False, Settings)
    assert plain.section == "model"
    own = Strategy(name="own", rank=2, summary="one line", plan=plan_nothing, settings=Training,
                   starts_from=FROM_SCRATCH, reads_old_data=True, **DECLARED)
    assert own.section == "strategies.own"
    with pytest.raises(ValueError) as refused:
        Strategy(name="odd", rank=3, summary="one line", plan=plan_nothing, starts_from="yesterday", **DECLARED)
    assert str(refused.value) == "odd: starts_from must be one of ('scratch', 'baseline')"
    assert CATALOGUE["fine-tune"].section == "strategies.fine-tune" and CATALOGUE["baseline"].section == "model"


def test_a_declaration_with_an_unknown_kind_or_undocumented_settings_is_refused():
    every = Strategy(name="y", rank=98, summary="s", plan=plan_nothing,
                     **DECLARED | {"suits": frozenset(kinds.DECLARED)})
    assert every.suits == set(kinds.DECLARED)  # a strategy may suit every kind
    with pytest.raises(ValueError, match=r"x: suits \['weather'\]"):
        Strategy(name="x", rank=99, summary="s", plan=plan_nothing, **DECLARED | {"suits": frozenset({"weather"})})

    class Undocumented(Training):
        DOCS = {"epochs": "e"}

    with pytest.raises(TypeError, match=r"Undocumented\.DOCS names \['epochs'\], but its fields are "
                                        r"\['epochs', 'learning_rate'\]"):
        Strategy(name="x", rank=99, summary="s", plan=plan_nothing, settings=Undocumented, **DECLARED)

    class Twice(Training):
        DOCS = {"epochs, learning_rate": "e", "epochs": "again"}

    with pytest.raises(TypeError, match="Twice.DOCS"):
        Twice.documented()
    assert Settings.documented() == []
    assert [names for names, _ in CATALOGUE["replay"].settings.documented()] == [
        ("epochs", "learning_rate"), ("old_fraction", "old_rows")]


def test_grown_labels_keep_the_known_order_and_append_only_new_labels_sorted():
    assert grown_labels([3, 1], np.array([5, 1, 4, 4, 3])) == [3, 1, 4, 5]
    grown = grown_labels(["b", "a"], np.array(["c", "a"], dtype=object))
    assert grown == ["b", "a", "c"] and all(type(label) is str for label in grown)
    assert all(type(label) is int for label in grown_labels([0], np.array([2, 1])))  # numpy scalars made plain
    assert grown_labels(["a"], []) == ["a"]
