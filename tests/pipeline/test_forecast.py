"""The check's forecast and the rows it may read, on the digits demo with a baseline trained
for real (tiny params): which rows trained a pipeline model, the new rows split as prepare
splits them, and each option trained once and scored against the model on the same rows."""

import contextlib
import io

import pandas as pd
import pytest
from sklearn.metrics import f1_score

from retrainlab import data
from retrainlab.base.errors import DataError
from retrainlab.pipeline import forecast, lineage
from retrainlab.pipeline.check import known_rows, read_new_rows
from retrainlab.training.seed import make_plan, measured_fit, train_seed
from retrainlab.training.distribute import NONE, Distribution

from ..conftest import tiny


@pytest.fixture(scope="module")
def digits(tmp_path_factory, request):
    """The digits demo (three classes only the new data has), prepared, and its baseline."""
    from retrainlab.pipeline.params import load_params

    from ..conftest import PROJECT

    params = tiny(load_params(PROJECT / "params.yaml"))
    root = tmp_path_factory.mktemp("digits")
    with contextlib.redirect_stdout(io.StringIO()):
        data.prepare(params.data, root)
    prepared = data.load_prepared(root)
    plan = make_plan("baseline", prepared, params, None, 0)
    measured_fit(plan, prepared, params, 0, Distribution(NONE))
    return params, prepared, root, plan.bundle


def test_rows_that_trained_a_pipeline_model_are_refused_left_out_or_said_to_be_held_out(digits):
    params, prepared, root, _ = digits
    trained_by = lineage.of_folder("full-retrain", "train")
    assert trained_by.trained == ("initial_train", "incremental_train")
    assert trained_by.held_out == ("initial_test", "incremental_test")
    # The default new rows of a built-in source are the prepared incremental rows: three quarters trained it.
    default = read_new_rows(params, prepared, root, None, True)
    with pytest.raises(DataError, match=r"incremental_\*\.parquet: \d+ of its \d+ rows trained the model "
                                        r"\(models/full-retrain was trained on this round's prepared data.*--data PATH"):
        known_rows(default, prepared, trained_by)
    # Its held-out rows are read, and said to be what they are.
    prepared.frame("incremental_test").to_csv(root / "held.csv", index=False)
    held = known_rows(read_new_rows(params, prepared, root, "held.csv", True), prepared, trained_by)
    assert held.trained == 0 and held.held_out == prepared.rows("incremental_test") == len(held.features)
    # A few training rows among new ones are left out and counted.
    mixed = pd.concat([prepared.frame("incremental_test"), prepared.frame("initial_train").head(10)])
    mixed.to_csv(root / "mixed.csv", index=False)
    some = known_rows(read_new_rows(params, prepared, root, "mixed.csv", True), prepared, trained_by)
    assert some.trained == 10 and len(some.features) == len(some.labels) == prepared.rows("incremental_test")
    # The baseline trained on the old rows only: the new ones are new to it.
    fresh = known_rows(default, prepared, lineage.of_folder("baseline", "train"))
    assert fresh.trained == 0 and len(fresh.features) == len(default.features)
    # A model brought from elsewhere: nothing known, nothing left out.
    assert known_rows(default, prepared, lineage.unknown("model.keras")) == default


def test_each_option_is_trained_once_on_the_new_rows_and_scored_with_the_model_on_the_same_rows(digits):
    params, prepared, root, baseline = digits
    new = read_new_rows(params, prepared, root, None, True)
    rows = new.features.loc[new.labels.index].assign(**{prepared.label: new.labels})
    records = {"incremental": {"per_seed": {"0": {"acc_old": 0.9, "acc_new": 0.88}, "1": {"acc_old": 0.9,
                                                                                         "acc_new": 0.9}}}}
    found, said = forecast.forecast(baseline, prepared, rows, params, root, records, ["incremental", "full-retrain"])
    assert [f.option for f in found] == ["incremental", "full-retrain"]
    for f in found:  # three classes the baseline has no output for: every option gains, beyond the noise
        assert f.gain.low > 0 and f.gain.value > 0.05 and f.gain.value < f.gain.high, f
        assert f.cost["cpu_seconds"] > 0 and 0 < f.kept < 1
    # The incremental's interval is widened by its spread over the last comparison's seeds (0.007 of target).
    assert found[0].gain.high - found[0].gain.low > found[1].gain.high - found[1].gain.low
    n = len(rows)
    assert f"{n - round(n * params.data.test_fraction)} of the {n} labelled new rows" in said
    assert not list((root / ".retrainlab").glob("forecast-*"))  # the scratch folder is gone


def test_a_model_stopped_while_its_held_out_curve_still_rose_is_named_underfitted_and_one_trained_well_is_not(digits):
    """The seed article's underfitted model, trained for real: the digits baseline stopped
    after 12 epochs at a tenth of the learning rate is still improving; trained until the
    rows set aside stop improving, it is not."""
    import dataclasses

    import keras

    from retrainlab.pipeline.check import underfit_of

    params, prepared, root, _ = digits

    def curve(model_params) -> list[float]:
        history = keras.callbacks.History()
        run = dataclasses.replace(params, model=model_params)
        plan = make_plan("baseline", prepared, run, None, 0)
        with contextlib.redirect_stdout(io.StringIO()):
            train_seed(plan, prepared, run, 0, None, callbacks=[history], held_out=True)
        return history.history["held_out_acc_old"]

    short = curve(dataclasses.replace(params.model, epochs=12, learning_rate=1e-4, patience=None))
    said = underfit_of(short, prepared, params)
    assert said and "still improving" in said and "epochs 9 to 12" in said, short
    trained = curve(dataclasses.replace(params.model, epochs=120, learning_rate=3e-3, patience=10))
    assert len(trained) < 120 and underfit_of(trained, prepared, params) is None, trained


def test_the_forecast_is_in_the_chosen_measures_target(digits):
    """compare.metric f1 (macro over the digits): the gains and the model's target are F1's,
    the model's target the pipeline's own F1 of its outputs on the same rows."""
    import dataclasses

    from retrainlab.decision import check
    from retrainlab.measure.task import Scoring, measure_of

    params, prepared, root, baseline = digits
    scored = dataclasses.replace(prepared, summary=dataclasses.replace(prepared.summary,
                                                                        scoring=Scoring(metric="f1").to_json()))
    new = read_new_rows(params, scored, root, None, True)
    rows = new.features.loc[new.labels.index].assign(**{prepared.label: new.labels})
    found, said = forecast.forecast(baseline, scored, rows, params, root, {}, ["full-retrain"])
    (f1,) = found
    assert f1.figure == "f1" and f1.gain.low > 0 and f1.gain.value < f1.gain.high and 0 < f1.kept < 1, f1
    assert "undefined" not in said
    old = prepared.frame("initial_test")
    kept_old = forecast.per_row(baseline, old, prepared.label, measure_of("classification", "f1"), Scoring())
    truth, predicted = old[prepared.label].astype(str), baseline.predict_labels(old).astype(str)
    assert isinstance(kept_old, check.Outputs)
    assert kept_old.value == pytest.approx(f1_score(truth, predicted, average="macro"))
