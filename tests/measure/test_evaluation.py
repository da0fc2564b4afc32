import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sklearn.metrics import accuracy_score, f1_score

from retrainlab.measure import evaluation


def test_score_counts_labels_and_loss():
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    result = evaluation.score(probs, ["a", "b"], np.array(["a", "b", "b"]))
    assert result["acc"] == pytest.approx(2 / 3)
    assert result["loss"] == pytest.approx(-np.mean(np.log([0.9, 0.8, 0.4])))
    assert 0 < result["f1"] < 1


def test_a_label_the_model_never_saw_is_wrong_and_costs_the_floor():
    probs = np.array([[1.0, 0.0]])
    result = evaluation.score(probs, [0, 1], np.array([7]))
    assert result["acc"] == 0
    assert result["loss"] == pytest.approx(-np.log(evaluation.PROBABILITY_FLOOR))


def test_evaluate_names_every_metric_on_old_new_and_all_and_weighs_all_by_rows():
    def predict(x):
        return np.tile([0.25, 0.75], (len(x), 1))

    # Old and new test sets of different sizes: "all" pools their rows, it is not the mean of the two.
    tests = {
        "old": [(pd.DataFrame({"f": [1, 2, 5]}), np.array([1, 1, 1]))],
        "new": [(pd.DataFrame({"f": [3]}), np.array([0]))],
    }
    seen = []
    metrics = evaluation.evaluate(predict, [0, 1], tests, on_chunk=lambda *chunk: seen.append(chunk))
    assert set(metrics) == set(evaluation.CLASSIFIER.metric_names) - {evaluation.FORGETTING}
    assert (metrics["acc_old"], metrics["acc_new"], metrics["acc_all"]) == (1.0, 0.0, 0.75)
    assert metrics["loss_old"] == pytest.approx(-np.log(0.75)) and metrics["loss_new"] == pytest.approx(-np.log(0.25))
    assert metrics["loss_all"] == pytest.approx(-(3 * np.log(0.75) + np.log(0.25)) / 4)
    assert metrics["f1_old"] == 1.0 and metrics["f1_new"] == 0.0
    assert metrics["f1_all"] == pytest.approx(f1_score([1, 1, 1, 0], [1, 1, 1, 1], average="macro", zero_division=0))
    assert [(name, list(true), list(predicted)) for name, true, predicted in seen] == [
        ("old", [1, 1, 1], [1, 1, 1]), ("new", [0], [1])]


def test_evaluate_adds_up_a_test_set_chunk_by_chunk():
    def predict(x):
        return np.where(x[["f"]].to_numpy() > 2, [0.9, 0.1], [0.2, 0.8])

    chunks = [(pd.DataFrame({"f": [1, 2]}), np.array(["b", "b"])), (pd.DataFrame({"f": [3]}), np.array(["b"]))]
    whole = [(pd.DataFrame({"f": [1, 2, 3]}), np.array(["b", "b", "b"]))]
    one = {"old": whole, "new": whole}
    metrics = evaluation.evaluate(predict, ["a", "b"], {"old": chunks, "new": whole})
    assert metrics == evaluation.evaluate(predict, ["a", "b"], one)
    assert metrics["acc_old"] == pytest.approx(2 / 3)


def test_mean_interval_is_students_t_on_the_seeds():
    # t(0.975, 2 degrees of freedom) = 4.3027; a normal quantile (1.96) would give [0.3868, 0.6132].
    mean, low, high = evaluation.mean_interval([0.4, 0.5, 0.6])
    assert (round(mean, 4), round(low, 4), round(high, 4)) == (0.5, 0.2516, 0.7484)
    # 90%: t(0.95, 3) = 2.3534 times the standard deviation 0.0816 over sqrt(4).
    mean, low, high = evaluation.mean_interval([0.4, 0.5, 0.6, 0.5], confidence=0.9)
    assert (round(mean, 4), round(low, 4), round(high, 4)) == (0.5, 0.4039, 0.5961)
    assert evaluation.mean_interval([0.7]) == (0.7, 0.7, 0.7)
    # Two seeds already have a spread: t(0.975, 1) = 12.706 times the standard error 0.1.
    assert evaluation.mean_interval([0.4, 0.6]) == pytest.approx((0.5, -0.7706, 1.7706), abs=1e-4)


def test_mean_interval_is_clipped_to_the_figures_bounds():
    assert evaluation.mean_interval([0.0, 0.1, 0.0], bounds=(0.0, 1.0)) == pytest.approx((1 / 30, 0.0, 0.1768), abs=1e-4)
    assert evaluation.mean_interval([1.0, 0.9, 1.0], bounds=(0.0, 1.0)) == pytest.approx((29 / 30, 0.8232, 1.0), abs=1e-4)
    assert evaluation.mean_interval([1.0, 0.9, 1.0]) == pytest.approx((29 / 30, 0.8232, 1.1101), abs=1e-4)


@given(
    truth=st.lists(st.sampled_from(["a", "b", "c", 7]), min_size=1, max_size=40),
    seed=st.integers(0, 100),
    cut=st.integers(0, 40),
)
def test_scores_added_chunk_by_chunk_equal_scikit_learns_on_the_whole(truth, seed, cut):
    labels = ["a", "b", 7]
    probs = np.random.default_rng(seed).dirichlet(np.ones(3), size=len(truth))
    y = np.array(truth, dtype=object)
    cut = min(cut, len(y))
    chunked = evaluation.Score().add(probs[:cut], labels, y[:cut]) + evaluation.Score().add(probs[cut:], labels, y[cut:])
    predicted = [str(labels[i]) for i in probs.argmax(axis=1)]
    truth_text = [str(v) for v in truth]
    metrics = chunked.metrics()
    assert metrics["acc"] == pytest.approx(accuracy_score(truth_text, predicted))
    assert metrics["f1"] == pytest.approx(f1_score(truth_text, predicted, average="macro", zero_division=0))
    assert metrics == pytest.approx(evaluation.score(probs, labels, y))


def test_accuracy_compares_labels_as_text_each_as_it_is():
    assert evaluation.accuracy([1, 2, "3", 4], np.array(["1", 2, 3, 5], dtype=object)) == 0.75
    assert evaluation.accuracy(np.array([7, 8]), np.array([7.0, 8.0])) == 0.0  # "7.0" is not "7"
    # A list of labels is not made one numpy type first: 1 stays "1" beside 2.5, on either side.
    assert evaluation.accuracy([1, 2.5], [1, 2.5]) == 1.0
    assert evaluation.accuracy([1, 2.5], np.array([1, 2.5], dtype=object)) == 1.0
    assert evaluation.accuracy(np.array([1, 2.5], dtype=object), [1, 2.5]) == 1.0
    assert isinstance(evaluation.accuracy([1], [1]), float)


def test_labels_of_a_model_are_taken_each_as_it_is():
    probs = np.array([[0.9, 0.1], [0.2, 0.8]])
    assert evaluation.score(probs, [1, 2.5], np.array([1, 2.5], dtype=object))["acc"] == 1.0
    kept = evaluation.Predictions()
    truth = np.array([1, 2.5], dtype=object)
    evaluation.evaluate(lambda x: probs, [1, 2.5], {"old": [(None, truth)], "new": [(None, truth)]}, on_chunk=kept)
    kept("new", [1, 2.5], [2.5, 1])
    assert kept.frame().values.tolist() == [["old", "1", "1"], ["old", "2.5", "2.5"], ["new", "1", "1"],
                                            ["new", "2.5", "2.5"], ["new", "1", "2.5"], ["new", "2.5", "1"]]


def test_predictions_keep_up_to_the_limit_per_test_set_and_give_each_class_its_recall():
    kept = evaluation.Predictions(limit=4)
    assert list(kept.frame().columns) == ["test_set", "actual", "predicted"] and kept.frame().empty
    kept("old", np.array([1, 1, 2]), np.array([1, 2, 2]))
    kept("new", np.array([3, 3]), np.array([3, 1]))
    kept("old", np.array([2, 1, 9]), np.array([2, 1, 9]))  # one of these fits under the limit
    kept("old", np.array([9]), np.array([9]))  # none of these
    frame = kept.frame()
    assert frame.to_dict("list") == {
        "test_set": ["old"] * 4 + ["new"] * 2,
        "actual": ["1", "1", "2", "2", "3", "3"],
        "predicted": ["1", "2", "2", "2", "3", "1"],
    }
    assert list(frame.index) == list(range(6))
    # The counts behind the per-class recall cover every row, past the limit of the frame.
    assert kept.confusion() == {"new": [["3", "1", 1], ["3", "3", 1]],
                                "old": [["1", "1", 2], ["1", "2", 1], ["2", "2", 2], ["9", "9", 2]]}
    recall = evaluation.per_class_recall(kept.confusion())
    assert list(recall.columns) == ["new", "old"] and list(recall.index) == ["1", "2", "3", "9"]
    assert recall.loc["1", "old"] == pytest.approx(2 / 3) and recall.loc["2", "old"] == 1.0
    assert recall.loc["3", "new"] == 0.5 and np.isnan(recall.loc["3", "old"]) and np.isnan(recall.loc["1", "new"])


def test_predictions_keep_20000_rows_per_test_set_by_default():
    kept = evaluation.Predictions()
    kept("new", np.zeros(20_001, dtype=int), np.zeros(20_001, dtype=int))
    assert len(kept.frame()) == 20_000


def test_evaluate_feeds_each_chunk_to_the_predictions():
    def predict(x):
        return np.tile([0.6, 0.4], (len(x), 1))

    kept = evaluation.Predictions()
    tests = {"old": [(pd.DataFrame({"f": [1, 2]}), np.array(["a", "b"]))], "new": [(pd.DataFrame({"f": [3]}), np.array(["b"]))]}
    evaluation.evaluate(predict, ["a", "b"], tests, on_chunk=kept)
    assert kept.frame().values.tolist() == [["old", "a", "a"], ["old", "b", "a"], ["new", "b", "a"]]
