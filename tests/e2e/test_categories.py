"""New categorical values end to end: a click table whose new rows bring items the model never
saw, through the real `dvc repro`. The report and the compare run say how many new rows hold
an unseen item; an update that starts from the baseline grows its lookup and tells two unseen
items apart, where the baseline reads both as the one unknown value; the registered model,
loaded as serving loads it, reads an item no data held as unknown, without an error."""

import json

import mlflow
import numpy as np
import pandas as pd
import pytest
import yaml
from mlflow.tracking import MlflowClient

from retrainlab.base import layout
from retrainlab.base.kinds import NEW_CATEGORIES
from retrainlab.models.bundle import ModelBundle
from retrainlab.strategies import BASELINE

from .test_pipeline import make_project, run
from .test_text import seed_tags

pytestmark = pytest.mark.integration
OLD_ITEMS = {f"i{i}": effect for i, effect in enumerate(np.linspace(-2, 2, 8))}
NEW_ITEMS = {"n_click": 3.0, "n_skip": -3.0, "n_mild": 1.0, "n_cold": -1.0}


def clicks(rows: int, items: dict[str, float], seed: int) -> pd.DataFrame:
    """Rows of (user, item, price) and whether the user clicked: the item's own effect, a
    small user effect and a price effect, through a logistic."""
    rng = np.random.default_rng(seed)
    item = rng.choice(list(items), rows)
    user = rng.choice([f"u{i}" for i in range(20)], rows)
    price = rng.uniform(1, 10, rows)
    logit = np.array([items[i] for i in item]) + (np.char.str_len(user.astype(str)) - 2.5) * 0.3 - 0.1 * (price - 5)
    click = rng.random(rows) < 1 / (1 + np.exp(-logit))
    return pd.DataFrame({"user": user, "item": item, "price": price.round(2), "click": np.where(click, "yes", "no")})


def test_unseen_items_are_diagnosed_grown_told_apart_and_served_as_unknown(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    clicks(700, OLD_ITEMS, 0).to_csv(raw / "old.csv", index=False)
    new = pd.concat([clicks(180, NEW_ITEMS, 1), clicks(120, OLD_ITEMS, 2)], ignore_index=True)
    new.to_csv(raw / "new.csv", index=False)
    options = ("incremental",)  # the option that grows; full-retrain's own lookup is the project's model's
    root = make_project(tmp_path, options=options, seeds=(0,), source="files", files={
        "initial": str(raw / "old.csv"), "incremental": str(raw / "new.csv"), "label": "click", "features": [],
        "text": None})
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["strategies"]["incremental"].update(epochs=12, learning_rate=0.02)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run(root, "dvc", "repro")

    # What changed: 60% of the new rows hold an item the old rows never had, in words and figures.
    report = json.loads((root / layout.REPORT_JSON).read_text())
    item = next(c for c in report["diagnostics"]["categories"] if c["feature"] == "item")
    assert item["new_values"] == len(NEW_ITEMS) and item["unseen_rows"] == pytest.approx(0.6, abs=0.08)
    assert NEW_CATEGORIES in [change["kind"] for change in report["changes"]]
    client = MlflowClient(f"sqlite:///{root / 'mlflow.db'}")
    experiment = client.get_experiment_by_name(params["tracking"]["experiment"])
    compare = next(r for r in client.search_runs([experiment.experiment_id])
                   if "diagnostics.categories.item.unseen_rows" in r.data.metrics)
    assert compare.data.metrics["diagnostics.categories.item.new_values"] == len(NEW_ITEMS)

    # Incremental grew the item lookup, and the run says so; the user lookup had nothing to add.
    grown = seed_tags(root, "incremental")[0]["retrainlab.vocabulary"]
    assert "encode_in1_item: 4 new values appended (13 in all)" in grown and "user" not in grown

    # Pairs of rows that differ only in their item, both items unseen by the baseline: one per user.
    users = [f"u{i}" for i in range(20)]
    pairs = pd.DataFrame({"user": users * 2, "item": ["n_click"] * 20 + ["n_skip"] * 20, "price": [5.0] * 40})
    clicked = {s: ModelBundle.load(root / layout.model_dir(s) / "seed-0").predict_proba(pairs)[:, 1].reshape(2, 20)
               for s in (BASELINE, "incremental")}
    np.testing.assert_allclose(clicked[BASELINE][0], clicked[BASELINE][1], atol=1e-6)  # one unknown index
    gap = clicked["incremental"][0] - clicked["incremental"][1]
    assert gap.mean() > 0.2 and (gap > 0).mean() >= 0.8, gap

    # The registered model, loaded as `mlflow models serve` loads it: an item no data held is unknown, not an error.
    records = {s: json.loads((root / layout.record_path(s)).read_text()) for s in options}
    version = records["incremental"]["mlflow"]["model_version"]
    mlflow.set_tracking_uri(f"sqlite:///{root / 'mlflow.db'}")
    served = mlflow.pyfunc.load_model(f"models:/{params['tracking']['registered_model']}/{version}")
    rows = pd.DataFrame({"user": ["u3", "u3", "nobody"], "item": ["n_click", "never-seen", "never-seen"],
                         "price": [5.0, 5.0, 5.0]})
    answer = served.predict(rows)
    assert len(answer) == 3 and set(answer["click"]) <= {"yes", "no"}
