import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sklearn.metrics import accuracy_score, f1_score

from retrainlab import evaluation


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


def test_evaluate_names_every_metric_on_old_new_and_all():
    def predict(x):
        return np.tile([0.0, 1.0], (len(x), 1))

    tests = {
        "old": [(pd.DataFrame({"f": [1, 2]}), np.array([1, 1]))],
        "new": [(pd.DataFrame({"f": [3]}), np.array([0])), (pd.DataFrame({"f": [4]}), np.array([1]))],
    }
    metrics = evaluation.evaluate(predict, [0, 1], tests)
    assert set(metrics) == set(evaluation.METRIC_NAMES) - {evaluation.FORGETTING}
    assert (metrics["acc_old"], metrics["acc_new"], metrics["acc_all"]) == (1.0, 0.5, 0.75)


def test_forgetting_is_the_drop_on_old_data():
    assert evaluation.forgetting(0.9, 0.7) == pytest.approx(0.2)
    assert evaluation.forgetting(0.7, 0.9) == pytest.approx(-0.2)


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
