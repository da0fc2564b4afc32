"""The user's measure: each figure by scikit-learn, the threshold and the costs applied as
declared (retrainlab.measure.evaluation), and the measure resolved against the data or
refused in one line (retrainlab.measure.choice)."""

import numpy as np
import pytest
from sklearn import metrics as sk

from retrainlab.base.errors import ConfigError
from retrainlab.base.tasks import CLASSIFICATION, REGRESSION
from retrainlab.config.sections import CompareParams
from retrainlab.measure import choice, evaluation
from retrainlab.measure.task import Scoring, measure_of

RNG = np.random.default_rng(7)
TRUTH = np.where(RNG.random(400) < 0.08, "yes", "no").astype(object)
P_YES = np.clip(np.where(TRUTH == "yes", 0.35, 0.1) + RNG.normal(0, 0.15, 400), 0, 1)
PROBS = np.stack([1 - P_YES, P_YES], axis=1)
LABELS = ["no", "yes"]


def figures(metric: str, threshold: float = 0.5, costs=None, chunks: int = 3) -> dict[str, float]:
    """A binary classifier's figures, its rows scored in `chunks` parts and pooled."""
    m = measure_of(CLASSIFICATION, metric)
    rules = Scoring(metric=metric, positive="yes", threshold=threshold, costs=costs)
    parts = np.array_split(np.arange(len(TRUTH)), chunks)
    score = sum((evaluation.Score(m, rules).add(PROBS[i], LABELS, TRUTH[i]) for i in parts),
                evaluation.Score(m, rules))
    return score.metrics()


@pytest.mark.parametrize("threshold", [0.5, 0.2])
def test_a_binary_classifiers_figures_are_scikit_learns_at_the_declared_threshold(threshold):
    predicted = np.where(P_YES >= threshold, "yes", "no")
    found = figures("f1", threshold)
    assert found["acc"] == pytest.approx(sk.accuracy_score(TRUTH, predicted))
    assert found["f1"] == pytest.approx(sk.f1_score(TRUTH, predicted, pos_label="yes"))
    assert found["precision"] == pytest.approx(sk.precision_score(TRUTH, predicted, pos_label="yes", zero_division=0))
    assert found["recall"] == pytest.approx(sk.recall_score(TRUTH, predicted, pos_label="yes"))
    assert found["bacc"] == pytest.approx(sk.balanced_accuracy_score(TRUTH, predicted))
    assert figures("roc_auc")["auc"] == pytest.approx(sk.roc_auc_score(TRUTH == "yes", P_YES))
    assert figures("average_precision")["ap"] == pytest.approx(sk.average_precision_score(TRUTH == "yes", P_YES))


def test_accuracy_and_f1_can_disagree_and_a_lower_threshold_buys_recall():
    assert figures("f1", 0.2)["recall"] > figures("f1", 0.5)["recall"]
    assert figures("f1", 0.2)["acc"] < figures("f1", 0.5)["acc"]


def test_the_cost_of_errors_is_the_mean_cost_of_each_rows_true_and_predicted_pair():
    costs = {"no": {"no": 0.0, "yes": 5.0}, "yes": {"no": 100.0, "yes": 0.0}}
    predicted = np.where(P_YES >= 0.5, "yes", "no")
    expected = np.mean([costs[t][p] for t, p in zip(TRUTH, predicted)])
    assert figures("cost", costs=costs)["cost"] == pytest.approx(expected)


def test_a_class_never_predicted_has_precision_zero_not_nan():
    m, rules = measure_of(CLASSIFICATION, "precision"), Scoring(metric="precision", positive="yes")
    found = evaluation.score(np.tile([0.9, 0.1], (len(TRUTH), 1)), LABELS, TRUTH, m, rules)
    assert found["precision"] == 0.0 and found["recall"] == 0.0 and found["f1"] == 0.0


def test_a_regressors_chosen_error_is_scikit_learns_pooled_over_chunks():
    y = RNG.uniform(1, 10, 300)
    guess = y + RNG.normal(0, 1, 300)
    for metric, expected in (("mape", sk.mean_absolute_percentage_error(y, guess)),
                             ("pinball", sk.mean_pinball_loss(y, guess, alpha=0.9))):
        m, rules = measure_of(REGRESSION, metric), Scoring(metric=metric, quantile=0.9)
        pooled = evaluation.Errors(m, rules).add(guess[:100], y[:100]) + evaluation.Errors(m, rules).add(guess[100:],
                                                                                                             y[100:])
        assert pooled.metrics()[m.primary] == pytest.approx(expected)
    cost = evaluation.Errors(measure_of(REGRESSION, "cost"), Scoring(metric="cost", costs=2.5)).add(guess, y)
    assert cost.metrics()["cost"] == pytest.approx(2.5 * sk.mean_absolute_error(y, guess))


COUNTS = {"initial_train": {"no": 960, "yes": 40}, "initial_test": {"no": 320, "yes": 13},
          "incremental_train": {"no": 280, "yes": 20}, "incremental_test": {"no": 95, "yes": 5}}


def resolve(counts=COUNTS, task=CLASSIFICATION, zeros=None, **settings) -> Scoring:
    compare = CompareParams(**settings)
    compare.check()
    return choice.resolve(compare, task, counts, zeros or {})


def test_the_positive_class_is_the_rarer_old_label_unless_named():
    assert resolve(metric="f1").positive == "yes"
    assert resolve(metric="f1").positive_rule == "the less frequent label of the old training rows"
    assert resolve(metric="f1", positive_class="no").positive == "no"
    assert resolve().metric == "accuracy" and resolve(counts={}, task=REGRESSION).metric == "rmse"
    three = {split: {**c, "maybe": 3} for split, c in COUNTS.items()}
    assert resolve(counts=three, metric="f1").positive is None  # macro over three classes


@pytest.mark.parametrize("settings, task, said", [
    ({"metric": "roc_auc"}, REGRESSION, "'roc_auc': it measures a classification model, but this data's task is "
                                        "regression; choose one of: rmse, mae, r2, mape, pinball, cost"),
    ({"metric": "mae"}, CLASSIFICATION, "choose one of: accuracy, log_loss, f1"),
    ({"positive_class": "maybe"}, CLASSIFICATION, "'maybe', which is not a label of the data (its labels: 'no', "
                                                  "'yes')"),
    ({"metric": "cost", "costs": {"no": {"no": 0, "yes": 1}, "yes": {"no": 5}}}, CLASSIFICATION,
     "no cost for true 'yes' predicted 'yes'"),
    ({"metric": "cost", "costs": {"no": {"no": 0, "yes": 1, "maybe": 2}, "yes": {"no": 5, "yes": 0}}},
     CLASSIFICATION, "names class 'maybe', which the data does not have"),
    ({"metric": "cost", "costs": 2.0}, CLASSIFICATION, "must be a cost matrix for a classifier"),
    ({"metric": "mape"}, REGRESSION, "label of 0, where a percentage error is undefined"),
    ({"positive_class": "yes"}, REGRESSION, "a regressor has no classes"),
])
def test_a_measure_that_cannot_be_computed_is_refused_in_one_line(settings, task, said):
    counts = COUNTS if task == CLASSIFICATION else {}
    with pytest.raises(ConfigError) as error:
        resolve(counts=counts, task=task, zeros={"incremental_test": 2}, **settings)
    assert said in str(error.value) and "\n" not in str(error.value)


def test_a_measure_undefined_on_a_test_set_is_said_in_words_before_anything_is_trained():
    none_new = {**COUNTS, "incremental_test": {"no": 100}}
    for metric in ("recall", "roc_auc"):
        with pytest.raises(ConfigError, match=f"'{metric}', which is undefined on the new test set"):
            resolve(counts=none_new, metric=metric)
    assert resolve(counts=none_new, metric="f1").metric == "f1"  # defined (0) where the model predicts a positive


@pytest.mark.parametrize("settings, said", [
    ({"metric": "f2"}, "choose one of: auto, accuracy"),
    ({"metric": "cost"}, "is null, but compare.metric is cost"),
    ({"costs": 1.0}, "costs are read when compare.metric is cost"),
    ({"metric": "cost", "costs": {"a": {"b": -1.0}}}, "costs of 0 or more"),
    ({"threshold": 1.0}, "between 0 and 1"),
    ({"cost_unit": ""}, "short printable unit"),
    ({"rows_per_week": 0.0}, "above 0"),
])
def test_bad_measure_settings_are_refused_by_the_config(settings, said):
    with pytest.raises(ConfigError, match=said):
        CompareParams(**settings).check()
