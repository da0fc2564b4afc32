"""benchmarks/categories.py measures what it says: on a tiny table the one-hot model reads the
item one-hot and the embedding model through an embedding (their trainable parameters are
each encoding's, counted from the vocabulary), every figure is there for both, and the
printed table has a line per number of values."""

from __future__ import annotations

import json

from . import scripts


def load_categories():
    return scripts.load("categories")


def test_a_tiny_run_measures_both_encodings_and_reports_them(tmp_path, capsys):
    categories = load_categories()
    out = tmp_path / "categories.json"
    # One number of values, one seed: each encoding's fit is a process of its own (seconds of start-up).
    report = categories.main(["--ks", "30", "--rows", "30=600", "--epochs", "1", "--epochs-at", "30=2",
                              "--seeds", "0", "--out", str(out)])

    assert json.loads(out.read_text()) == json.loads(json.dumps(report))
    (first,) = report["results"]
    assert (first["k"], first["rows"], first["epochs"], first["seeds"]) == (30, 600, 2, [0])
    numbers, (h1, h2) = categories.FACTORS, categories.HIDDEN
    dense = (h1 * h2 + h2) + (h2 + 1)  # the second hidden layer and the sigmoid unit
    for result in report["results"]:
        slots = result["vocabulary"] + 1  # StringLookup's index 0: the unknown value
        assert 0 < result["vocabulary"] <= result["k"]
        one_hot = (slots + numbers) * h1 + h1 + dense
        embedding = slots * categories.EMBEDDING_DIM + (categories.EMBEDDING_DIM + numbers) * h1 + h1 + dense
        for name, params, embedded in (("one-hot", one_hot, False), ("embedding", embedding, True)):
            runs = result["runs"][name]
            assert len(runs) == len(result["seeds"])
            for run in runs:
                assert run["embedded"] is embedded
                assert run["trainable_params"] == params
                assert 0.0 <= run["accuracy"] <= 1.0 and run["log_loss"] > 0
                assert run["fit_wall_s"] > 0 and run["fit_cpu_s"] > 0 and run["keras_file_mib"] > 0
        ratios = result["embedding_over_one_hot"]
        assert ratios["trainable_params"] == embedding / one_hot
        assert set(ratios) == set(categories.RATIOS)
        assert 0.5 < result["oracle"]["accuracy"] <= 1.0

    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ")]
    assert len(rows) == 2 + 1  # the header, its rule, a line per K
    assert rows[2].startswith("| 30 (")
    assert all(line.count("|") == rows[0].count("|") for line in rows)
