"""Text end to end: the seed article's tweets-then-reviews example through the real
`dvc repro`, every option, the registry, promotion and serving raw strings; and a text
model a user brings, with its own TextVectorization."""

import json
import runpy

import mlflow
import numpy as np
import pandas as pd
import pytest
import yaml
from mlflow.tracking import MlflowClient

from retrainlab.base import layout
from retrainlab.base.kinds import NEW_VOCABULARY
from retrainlab.data.text import DETECTION_RULE
from retrainlab.models.files import load_keras
from retrainlab.strategies import BASELINE, UPDATES

from ..conftest import PROJECT
from .between_rounds import check_a_text_model_between_rounds
from .test_pipeline import check_pipeline, make_project, ran, run, served_champion, stages

pytestmark = pytest.mark.integration
GROWN = ("incremental", "replay", "distill", "shrink-perturb")  # start from the baseline and train its body


def seed_tags(root, strategy: str) -> list[dict]:
    client = MlflowClient(f"sqlite:///{root / 'mlflow.db'}")
    name = yaml.safe_load((root / "params.yaml").read_text())["tracking"]["experiment"]
    experiment = client.get_experiment_by_name(name)
    return [r.data.tags for r in client.search_runs([experiment.experiment_id])
            if r.data.tags.get("retrainlab.strategy") == strategy and "retrainlab.seed" in r.data.tags]


def test_dvc_repro_on_tweets_then_reviews_with_every_option(tmp_path):
    options = tuple(UPDATES)
    root = make_project(tmp_path, options=options, seeds=(0,), source="text", scenario="covariate_shift")
    check_pipeline(root, "sentiment", ["text"], options)

    summary = json.loads((root / layout.SUMMARY).read_text())
    assert summary["features"] == [{"name": "text", "kind": "text"}]
    assert summary["feature_kinds"]["rule"] == DETECTION_RULE
    # The new data's words are mostly unknown to the baseline, the report says so, and the
    # options that start from the baseline and train its body read them through a grown vocabulary.
    report = json.loads((root / layout.REPORT_JSON).read_text())
    shift = report["diagnostics"]["text"][0]
    assert shift["feature"] == "text" and shift["oov_tokens"] >= 0.2 and shift["length_new"] > shift["length_old"]
    assert NEW_VOCABULARY in [change["kind"] for change in report["changes"]]
    assert "- Text column text: " in (root / layout.REPORT_MD).read_text()
    for strategy in options:
        tags = seed_tags(root, strategy)
        assert len(tags) == 1, strategy
        grown = tags[0].get("retrainlab.vocabulary", "")
        assert ("new tokens appended" in grown) == (strategy in GROWN), (strategy, grown)
    records = {s: json.loads((root / layout.record_path(s)).read_text()) for s in (BASELINE, *options)}
    assert records["incremental"]["acc_new"] > records[BASELINE]["acc_new"] + 0.1

    # Promote the challenger; the champion, served over HTTP, reads raw strings as logged.
    run(root, "retrainlab", "promote")
    answer, record, test = served_champion(root, records, ["text"])
    predicted = np.array([p["sentiment"] for p in answer])
    logged = record["per_seed"][str(record["mlflow"]["model_seed"])]["acc_new"]
    assert np.mean(predicted == test["sentiment"].to_numpy()) == pytest.approx(logged)
    check_a_text_model_between_rounds(root, yaml.safe_load((root / "params.yaml").read_text())["tracking"]["experiment"])


def test_a_text_model_the_user_brings_is_a_baseline_like_any_other(tmp_path):
    """A `.keras` model with a string input and its own TextVectorization (make examples'
    tweets-text): full-retrain adapts its vocabulary anew on old and new text, incremental
    grows it, keeping every old token's index."""
    options = ("full-retrain", "incremental")
    folder = tmp_path / "tweets-text"
    runpy.run_path(str(PROJECT / "examples" / "make_examples.py"), run_name="examples")["tweets_text"](folder)
    root = make_project(tmp_path, options=options, source="files", files={
        "initial": str(folder / "initial.csv"), "incremental": str(folder / "incremental.csv"), "label": "sentiment",
        "features": [], "text": None})
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["baseline"]["from"] = str(folder / "sentiment.keras")
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    done = run(root, "dvc", "repro", user_env=True)
    assert ran(done) == stages(options) and done.stderr.splitlines() == [], done.stderr[-3000:]

    brought = load_keras(folder / "sentiment.keras").get_layer("words").get_vocabulary()
    retrained = load_keras(root / layout.model_dir("full-retrain") / "seed-0" / "model.keras")
    assert {"excellent", "defective"} <= set(retrained.get_layer("words").get_vocabulary()) - set(brought)
    incremental = load_keras(root / layout.model_dir("incremental") / "seed-0" / "model.keras")
    grown = incremental.get_layer("words").get_vocabulary()
    assert grown[:len(brought)] == brought and len(grown) > len(brought)
    baseline = json.loads((root / layout.record_path(BASELINE)).read_text())
    assert baseline["origin"]["kind"] == "file" and baseline["cpu_seconds"] == 0
    # The registered models take raw strings, as the records measured them.
    mlflow.set_tracking_uri(f"sqlite:///{root / 'mlflow.db'}")
    test = pd.read_parquet(root / layout.split_path("incremental_test"))
    for strategy in (BASELINE, *options):
        record = json.loads((root / layout.record_path(strategy)).read_text())
        model = mlflow.pyfunc.load_model(f"models:/{params['tracking']['registered_model']}/"
                                         f"{record['mlflow']['model_version']}")
        predicted = model.predict(test[["text"]])["sentiment"].to_numpy()
        own = record["per_seed"][str(record["mlflow"]["model_seed"])]["acc_new"]
        assert np.mean(predicted == test["sentiment"].to_numpy()) == pytest.approx(own), strategy
