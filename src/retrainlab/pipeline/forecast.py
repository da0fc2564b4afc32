"""What each option would gain, forecast before the comparison (`retrainlab check`).

The labelled new rows are split as `prepare` would split them (stratified, data.test_fraction,
data.seed). Each option of `compare.forecast` is trained once, on the seed params.yaml lists
first, as its strategy step would train it: from the current model (an update) or from fresh
weights (full-retrain), on the old training rows it reads and the training part of the new
rows. It and the current model are then scored on the same rows, the old test set and the
test part of the new rows, and its gain in target over keeping the model is a paired
bootstrap over those rows (retrainlab.decision.check.paired_gain), widened by the option's
spread over the last comparison's seeds. The gain is in the chosen measure's target
(compare.metric: accuracy, F1, ROC AUC, MAE, ...), labels predicted as the pipeline predicts
them (a binary classifier's threshold); where the chosen measure is undefined on the current
model's rows (recall without a row of the positive class), it is in the task's default
figure's (accuracy, RMSE), and the forecast's line says so. The trainings happen in a scratch
folder, removed afterwards; nothing is logged or registered.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import logging
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from retrainlab.base import layout
from retrainlab.base.tasks import REGRESSION
from retrainlab.config import Params
from retrainlab.data import Prepared, load_prepared, plain, split_part
from retrainlab.data.splitting import Moments
from retrainlab.data.summary import write_summary
from retrainlab.decision import check
from retrainlab.measure import evaluation
from retrainlab.measure.task import Measure, Scoring, measure_of, measure_of_summary, rules_of
from retrainlab.training.distribute import NONE, Distribution
from retrainlab.training.seed import make_plan, measured_fit, workload

log = logging.getLogger(__name__)

MIN_ROWS = 20  # labelled new rows below which no option is trained: too few to split and score
OLD_SPLITS = ("initial_train", "initial_test")


def options(params: Params) -> list[str]:
    """The options to forecast: `compare.forecast`, less those params.yaml's strategies leave out."""
    return [name for name in params.compare.forecast if name in params.strategies]


def forecast(bundle, data: Prepared, rows: pd.DataFrame, params: Params, root: Path,
             records: Mapping[str, Mapping[str, Any]], names: Sequence[str]) -> tuple[list[check.Forecast], str]:
    """Each option of `names` trained once and scored against `bundle`, the current model;
    and a line saying what was trained on what. `rows` are the labelled new rows, typed as
    the prepared data (features and label)."""
    m, rules = measure_of_summary(data.summary), rules_of(data.summary)
    share = params.compare.new_traffic_share
    seed = params.seeds[0]
    work = root / layout.WORK_DIR
    work.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=work, prefix="forecast-") as scratch:
        probe = probe_data(data, rows, params, Path(scratch))
        old_test, new_test = probe.frame("initial_test"), probe.frame("incremental_test")
        kept = (per_row(bundle, old_test, data.label, m, rules), per_row(bundle, new_test, data.label, m, rules))
        undefined = _undefined(m, kept)
        if undefined:  # the task's default figure, which every labelled row has
            m = measure_of(m.task)
            kept = (per_row(bundle, old_test, data.label, m, rules), per_row(bundle, new_test, data.label, m, rules))
        kept_target = check.kept_target(m, share, *kept)
        found = []
        for name in names:
            plan = make_plan(name, probe, params, bundle, seed)
            log.info(f"forecast: {name}, trained once: {workload(probe, plan)}")
            with contextlib.redirect_stdout(io.StringIO()):
                cost, _ = measured_fit(plan, probe, params, seed, Distribution(NONE))
            trained = plan.bundle
            scores = (per_row(trained, old_test, data.label, m, rules),
                      per_row(trained, new_test, data.label, m, rules))
            gain = check.paired_gain(m, share, (kept[0], scores[0]), (kept[1], scores[1]),
                                     seed_spread(records.get(name), m, share), seed)
            found.append(check.Forecast(name, gain, kept_target, f"trained once (seed {seed})",
                                        {"cpu_seconds": cost.cpu_seconds, "wall_seconds": cost.wall_seconds},
                                        m.primary))
        said = (f"each option trained once on the old training rows it reads and {probe.rows('incremental_train')} of "
                f"the {len(rows)} labelled new rows, scored with the model on the old test set "
                f"({probe.rows('initial_test')} rows) and the other {probe.rows('incremental_test')} new rows")
        if undefined:
            said += f"; {undefined}: the gains are in the target of {m.short} instead"
        return found, said


def probe_data(data: Prepared, rows: pd.DataFrame, params: Params, scratch: Path) -> Prepared:
    """A prepared dataset in `scratch`: the old splits as they are, and the labelled new rows
    split into training and test rows as prepare would split them."""
    regression = data.summary.task == REGRESSION
    rng = np.random.default_rng(params.data.seed)
    train, test = split_part(rows.reset_index(drop=True), data.label, regression, params.data.test_fraction, rng)
    (scratch / layout.PREPARED_DIR).mkdir(parents=True)
    for split in OLD_SPLITS:
        _link(data.path(split), scratch / layout.split_path(split))
    schema = pq.read_schema(data.path("initial_train"))
    for split, frame in (("incremental_train", train), ("incremental_test", test)):
        table = pa.Table.from_pandas(frame[schema.names], preserve_index=False)
        pq.write_table(table, scratch / layout.split_path(split))
    summary = data.summary
    rows_of = dict(summary.rows) | {"incremental_train": len(train), "incremental_test": len(test)}
    classes = dict(summary.classes)
    stats = dict(summary.label_stats or {})
    for split, frame in (("incremental_train", train), ("incremental_test", test)):
        if regression:
            stats[split] = Moments.of(frame[data.label].to_numpy(float)).stats()
        else:
            classes[split] = sorted(plain(v) for v in frame[data.label].unique())
    new_classes = [c for c in classes["incremental_train"] if c not in set(classes["initial_train"])]
    summary = dataclasses.replace(summary, rows=rows_of, classes=classes, new_classes=new_classes,
                                  label_stats=stats if regression else summary.label_stats)
    write_summary(scratch, summary)
    return load_prepared(scratch)


def per_row(bundle, frame: pd.DataFrame, label: str, m: Measure,
            rules: Scoring | None = None) -> np.ndarray | check.Outputs:
    """Each row's score for the task's default measure: whether it is predicted right (a
    classifier's accuracy; labels predicted as `rules` say, a binary classifier's threshold,
    else the most probable one), or its squared error (a regressor's RMSE). For a chosen
    measure, the model's outputs on the rows as that measure reads them (`check.Outputs`)."""
    if m.regression:
        predicted = bundle.predict(frame)
        if check.is_default(m):
            return (predicted - frame[label].to_numpy(float)) ** 2
        return check.Outputs.of_regressor(m, rules or Scoring(), predicted, frame[label].to_numpy(float))
    probs = bundle.predict_proba(frame)
    if check.is_default(m):
        return check.correct(evaluation.decide(probs, bundle.labels, rules), frame[label]).astype(float)
    return check.Outputs.of_classifier(m, rules or Scoring(), probs, bundle.labels, frame[label].to_numpy())


def _undefined(m: Measure, kept: tuple) -> str | None:
    """Why the chosen measure is undefined on the current model's rows, in words; None where it is defined."""
    if check.is_default(m):
        return None
    for outputs, where in zip(kept, ("the old test set", "the held-out new rows")):
        why = outputs.undefined()
        if why:
            return f"{m.short} is undefined on {where}: {why}"
    return None


def seed_spread(record: Mapping[str, Any] | None, m, share: float) -> float | None:
    """The standard deviation of an option's target over the seeds of its last record."""
    per_seed = (record or {}).get("per_seed", {})
    targets = [m.target(figures, share) for figures in per_seed.values()
               if m.old in figures and m.new in figures]
    return float(np.std(targets, ddof=1)) if len(targets) >= 2 else None


def _link(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:  # another file system, or links not allowed
        shutil.copyfile(source, target)
