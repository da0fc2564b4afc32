"""Every option learns as much as the Keras script a user would write (benchmarks/parity.py).

The pipeline's own steps train every option on a small table of every input kind (numbers,
an ID with values only the new rows have, a short text, a class only the new rows have);
the bare twins train on the same prepared splits with the same seeds. The rule
(`parity.parity`): an option fails when the 99% Welch interval of its difference from its
twin lies wholly below minus a point of accuracy. So a change that makes an option learn
less than the bare recipe is caught the day it lands, while the seeds' noise is not.
"""

from __future__ import annotations

import dataclasses

import pytest

from . import scripts

SEEDS = [0, 1, 2]


def load_parity():
    return scripts.load("parity")


def small(params):
    """Settings under which every option trains in seconds on the small table."""
    strategies = {name: dataclasses.replace(s, epochs=8) if hasattr(s, "epochs") else s
                  for name, s in params.strategies.items()}
    return dataclasses.replace(
        params, strategies=strategies,
        model=dataclasses.replace(params.model, hidden_units=[32, 16], epochs=15, patience=None,
                                  learning_rate=0.003, text_tokens=200, text_length=8, embedding_dim=8))


def test_the_rule_weighs_the_seeds_noise_and_the_tolerance():
    parity = load_parity().parity
    assert parity([0.80, 0.81, 0.79], [0.85, 0.86, 0.84])["verdict"] == "below"
    assert parity([0.80, 0.90, 0.70], [0.85, 0.86, 0.84])["verdict"] == "within"  # noise hides 5 points
    assert parity([0.845, 0.846, 0.844], [0.85, 0.851, 0.849])["verdict"] == "within"  # within a point
    assert parity([0.90, 0.91, 0.89], [0.85, 0.86, 0.84])["verdict"] == "above"
    # an error: lower is better, and the tolerance is 2.5% of the twin's
    assert parity([1.30, 1.31, 1.29], [1.20, 1.21, 1.19], lower_is_better=True)["verdict"] == "below"
    assert parity([1.22, 1.23, 1.21], [1.20, 1.21, 1.19], lower_is_better=True)["verdict"] == "within"


@pytest.mark.integration
def test_every_option_learns_as_much_as_its_bare_keras_twin(tmp_path):
    parity = load_parity()
    kind = parity.Kind("mixed", {"source": "files"}, parity.user_files("mixed"))
    ours = parity.pipeline(kind, SEEDS, tmp_path / "project", small)
    bare = parity.twins(tmp_path / "project" / "data" / "prepared", parity.settings_of(ours["params"]), SEEDS)
    assert set(ours["targets"]) == set(bare) == set(parity.OPTIONS)
    rows = {option: parity.parity([ours["targets"][option][s] for s in SEEDS], [bare[option][s] for s in SEEDS])
            for option in parity.OPTIONS}
    below = {option: f"{row['pipeline']:.3f} against {row['bare']:.3f}, seeds {row['pipeline_seeds']} against "
                     f"{row['bare_seeds']}" for option, row in rows.items() if row["verdict"] == "below"}
    assert not below, f"options that learn less than their bare Keras twin: {below}"
    # The rule can fail on this table with these seeds: keeping the old model (no unit for
    # the new class) is below the twin's full retrain.
    kept = parity.parity([ours["targets"]["baseline"][s] for s in SEEDS], [bare["full-retrain"][s] for s in SEEDS])
    assert kept["verdict"] == "below", kept
