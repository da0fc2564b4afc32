"""A strategy step's record carries what it did to its starting model: a text model's grown
vocabulary reaches records/<strategy>.json and the report, not only the seed run's tag.
Real data, real Keras, a real MLflow store."""

import dataclasses
import re
from pathlib import Path

import pandas as pd

from retrainlab.base import layout
from retrainlab.data import load_prepared
from retrainlab.decision import comparison
from retrainlab.decision.diagnostics import diagnose
from retrainlab.measure.record import load
from retrainlab.pipeline.prepare import prepare_step
from retrainlab.pipeline.strategy_step import run_strategy
from retrainlab.reporting import report

from ..conftest import tiny


def test_a_grown_vocabulary_is_in_the_record_and_the_report(tmp_path, monkeypatch, project_params, store):
    (tmp_path / ".dvc").mkdir()
    monkeypatch.chdir(tmp_path)
    params = dataclasses.replace(tiny(project_params, ("incremental",), source="text", scenario="covariate_shift"),
                                 seeds=[0])
    prepare_step(params, Path("."))
    for name in ("baseline", "incremental"):
        run_strategy(name, params)
    records = {name: load(tmp_path, name) for name in ("baseline", "incremental")}
    assert records["baseline"].notes == ()
    (grown,) = records["incremental"].notes
    assert re.fullmatch(r".+: \d+ new tokens appended \(\d+ in all\)", grown), grown
    verdict = comparison.recommend(records, params.compare)
    data = load_prepared(tmp_path)
    diagnosis = diagnose(*data.old_and_new(), data.label, data.features)
    curves = {name: pd.read_csv(layout.curves_path(name)) for name in records}
    report.write_report(tmp_path, records, verdict, diagnosis, params.compare, curves)
    text = (tmp_path / layout.REPORT_MD).read_text()
    assert f"(model.grow_vocabulary): {grown}, in incremental." in text
