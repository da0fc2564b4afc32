"""`retrainlab check` reads a categorical column's new values against the rows that trained
the model: the share of new rows whose value those rows never had and how many values are
new, in check.json, its "What changed" and check.md, against the old data where the rows
that trained it are not known."""

import numpy as np
import pandas as pd

from retrainlab.base.kinds import NEW_CATEGORIES
from retrainlab.pipeline.check import NewRows, assess, markdown

from .test_check_measure import Logistic, prepared_files, strict


def clicks(rows: int, items: list[str], seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 1.0, rows)
    return pd.DataFrame({"x": x, "item": rng.choice(items, rows),
                         "y": np.where(rng.random(rows) < 1 / (1 + np.exp(-2 * x)), "p", "q")})


def test_new_items_are_read_against_the_rows_that_trained_the_model_and_said_in_check_md(tmp_path, project_params):
    params, data = prepared_files(tmp_path, project_params, clicks(1200, ["a", "b", "c"], 0), clicks(400, ["a", "b"], 1))
    week = pd.concat([clicks(300, ["a", "b"], 2), clicks(300, ["d", "e", "f"], 3)], ignore_index=True)
    new = NewRows("week.csv", week[["x", "item"]], week["y"], 0)

    result = strict(assess(Logistic(), data, new, params, None, trained=("initial_train",)))
    item = next(c for c in result["diagnostics"]["categories"] if c["feature"] == "item")
    assert (item["unseen_rows"], item["new_values"], item["old_values"]) == (0.5, 3, 3)
    assert result["categories_against"] == {"splits": ["initial_train"], "trained": True}
    assert NEW_CATEGORIES in [c["kind"] for c in result["changes"]]
    page = markdown({**result, "model": {"spec": "m", "version": None}})
    assert "read against every value of the rows that trained the model (initial_train)" in page
    assert "- item: 50.0% of the new rows hold a value those rows never had; 3 new values, against 3 there." in page

    # Which rows trained it not known: read against the old data, and said so.
    unknown = strict(assess(Logistic(), data, new, params, None))
    assert unknown["categories_against"] == {"splits": ["initial_train", "initial_test"], "trained": False}
    assert "which rows trained the model is not known" in markdown({**unknown, "model": {"spec": "m", "version": None}})
