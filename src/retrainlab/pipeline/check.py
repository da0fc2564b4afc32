"""`retrainlab check`: has enough changed since the model was chosen to be worth a comparison?

The current model (the registry's champion, or what `baseline.from` names, or `--model`)
predicts the old test set and the new rows, and retrainlab.decision.check weighs what it
sees against params.yaml's `compare` section and the last comparison's cost. The new rows
are the configured incremental data (the files or arrays params.yaml names; for a built-in
source, the prepared incremental splits) or `--data PATH` (CSV, Parquet or .npz).

- Rows that trained the model are not new: its lineage (retrainlab.pipeline.lineage) names
  the prepared splits that trained it, and each new row's digest is looked up in them. New
  rows that are mostly such rows are refused in one line; a few are left out and counted.
  Rows of the model's own held-out test splits are used, and the report says so.
- Labelled rows are measured, and, `compare.forecast`'s options trained once on them
  (retrainlab.pipeline.forecast), forecast what each option would gain; rows without a
  label are estimated (a classifier's only: accuracy by ATC, a chosen confusion-matrix
  measure such as F1 by CBPE).
- What is weighed is the chosen measure (params.yaml's `compare.metric`, as prepare resolved
  it into summary.json's `scoring`), computed as the pipeline computes it, with the task's
  default figure (accuracy; a regressor's relative error) read beside it; where the chosen
  one cannot be read (undefined on the rows, no label-free estimate, no forecast in it) the
  default one is weighed, and the reasons say so. check.json names the figure weighed
  (`figure`: acc, relative_error, f1, auc, mae, ...) and the one chosen (`measure`).
- The model's recorded training curve says whether it is underfitted.
- Each categorical column's new rows are read against every value the rows that trained the
  model hold (its lineage's splits; not known: the old data's): the share of new rows whose
  value those rows never had, and how many values are new.

It writes reports/check.json and reports/check.md (each by rename) and logs an MLflow run
tagged `retrainlab.role = check` with the figures and the verdict. The exit status says the
verdict (retrainlab.decision.check.EXIT_STATUS).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from retrainlab.base import console, escape, layout
from retrainlab.base.errors import DataError, ModelSourceError, PipelineError
from retrainlab.base.files import write_text_atomically
from retrainlab.config import TRAIN, Params, names_model
from retrainlab.data import NUMERIC, Prepared, load_prepared, values
from retrainlab.data.digests import file_digests, found_in, mostly_known, row_digests
from retrainlab.data.sources import array_columns, read_arrays, read_table
from retrainlab.decision import change, check, diagnostics
from retrainlab.decision.comparison import choose_cost_metric
from retrainlab.decision.diagnosis import Diagnosis
from retrainlab.measure import evaluation
from retrainlab.measure.record import StrategyRecord
from retrainlab.measure.task import Measure, Scoring, measure_of, measure_of_summary, rules_of
from retrainlab.pipeline import origin as origins
from retrainlab.strategies import CATALOGUE

log = logging.getLogger(__name__)

CHECK_JSON = layout.REPORTS_DIR / "check.json"
CHECK_MD = layout.REPORTS_DIR / "check.md"
CHAMPION = "champion"
DIAGNOSTIC_ROWS = 5000  # as the compare step: the diagnostics' figures are stable long before
OLD_DATA = ("initial_train", "initial_test")  # new values are read against these where no lineage is known


@dataclasses.dataclass(frozen=True)
class NewRows:
    """The new rows as the model reads them, their labels where given, and where they came from."""

    shown: str  # how the report names them
    features: pd.DataFrame
    labels: pd.Series  # the rows that have one, by the features' index
    dropped: int  # rows left out: a missing or non-finite feature value
    trained: int = 0  # rows left out: they trained the model
    held_out: int = 0  # rows kept that are the model's own held-out test rows


@dataclasses.dataclass(frozen=True)
class Located:
    """Where the model checked is, and what is known of it, before it is loaded."""

    spec: str
    folder: Path | None  # a pipeline's model folder, models/STRATEGY/seed-N
    origin: Any  # a retrainlab.measure.record.Origin: a registered version or a file (None: a folder)
    lineage: Any  # a retrainlab.pipeline.lineage.Lineage

    @property
    def version(self) -> str | None:
        return self.origin.version if self.origin is not None else None


@dataclasses.dataclass(frozen=True)
class Checked:
    """The model checked, loaded, and what is known of it."""

    bundle: Any  # a ModelBundle
    version: str | None
    lineage: Any  # a retrainlab.pipeline.lineage.Lineage
    curve: list[float] | None  # its held-out primary figure on the old test rows, per epoch


# What `--model` takes: every message about a bad --model value ends with it.
MODEL_FLAG = ("give --model a .keras file, models:/NAME@ALIAS, models:/NAME/VERSION or a pipeline's model folder "
              "(models/STRATEGY/seed-N)")


def model_source(params: Params, given: str | None) -> origins.Source:
    """What is checked, and where that was said, for every message about it: `--model`, else
    `baseline.from` where it names a model, else the champion (then a message says that no
    --model was given, not that baseline.from names the champion: it says train)."""
    if given:
        return origins.Source(given, f"--model is {given!r}", "give another --model", MODEL_FLAG)
    if params.baseline.from_ != TRAIN:
        return origins.of_params(params)
    champion = f"models:/{params.tracking.registered_model}@{CHAMPION}"
    return origins.Source(champion, "no --model given (baseline.from is train: the champion is checked)",
                          "give --model", MODEL_FLAG)


def pipeline_folder(folder: Path) -> bool:
    """Whether `folder` is given as a pipeline's model folder: named models/STRATEGY/seed-N as
    --help says, or holding a model's meta.json. Such a path that is not there is 'not found',
    not a value of the wrong form."""
    name = folder.name
    return (folder / "meta.json").is_file() or (name.startswith("seed-") and name[5:].isdigit())


def run_check(params: Params, root: Path = Path("."), data_path: str | None = None, model: str | None = None,
              use_labels: bool = True, width: float = check.DEFAULT_WIDTH) -> dict[str, Any]:
    """The check, its reports and its MLflow run; returns what check.json holds."""
    started = time.perf_counter()
    if not (0 < width < 1):
        raise DataError(f"--width is {width:g}; give the interval's width as a share in (0, 1), e.g. 0.05")
    data = load_prepared(root)
    new = read_new_rows(params, data, root, data_path, use_labels)
    located = _locate(params, root, model_source(params, model))
    new = known_rows(new, data, located.lineage)  # before the model loads: a refusal is quick
    checked = _load_model(located, params, data, root)
    records = _records(root)
    cost = check.comparison_cost(records, _cost_metric(params, records))
    forecasts, forecast_said = forecast_for(checked.bundle, data, new, params, root, records)
    result = assess(checked.bundle, data, new, params, cost, width, forecasts, forecast_said,
                    underfit_of(checked.curve, data, params), checked.lineage.trained)
    result = {**result, "model": {"spec": located.spec, "version": checked.version},
              "lineage": {"trained": list(checked.lineage.trained), "held_out": list(checked.lineage.held_out),
                          "said": checked.lineage.said},
              "seconds": time.perf_counter() - started}
    write_reports(root, result)
    _log_run(params, root, result)
    return result


def forecast_for(bundle, data: Prepared, new: NewRows, params: Params, root: Path,
                 records: dict[str, dict]) -> tuple[list[check.Forecast], str]:
    """The forecasts of `compare.forecast`'s options on the labelled new rows, or none and why."""
    # start-up: the trainings' modules once the model is loaded (with TensorFlow, quietly)
    from retrainlab.pipeline import forecast as forecasts

    names = forecasts.options(params)
    if not names:
        return [], "no option to forecast (compare.forecast is empty, or lists no option of strategies)"
    if len(new.labels) < forecasts.MIN_ROWS:
        return [], (f"{len(new.labels)} labelled new rows: too few to train and score a forecast (at least "
                    f"{forecasts.MIN_ROWS}); the loss alone is weighed")
    rows = new.features.loc[new.labels.index].assign(**{data.label: new.labels})
    return forecasts.forecast(bundle, data, rows, params, root, records, names)


def underfit_of(curve: list[float] | None, data: Prepared, params: Params) -> str | None:
    if not curve:
        return None
    m = measure_of_summary(data.summary)
    return check.underfitted(curve, m, params.compare.tolerance * m.scale(curve[-1]))


@dataclasses.dataclass(frozen=True)
class Figures:
    """One figure of the model on the old test set and on the new rows, as the check reads it."""

    measure: Measure  # in whose units
    name: str  # as check.json names it: acc, relative_error, f1, mae, ...
    old: check.Estimate
    new: check.Estimate | None
    how: str  # measured, estimated (ATC, CBPE), not estimated
    old_interval: str  # how each interval was found, in words
    new_interval: str | None = None

    @property
    def shown(self) -> str:
        return SHOWN.get(self.name) or self.measure.short

    def to_json(self) -> dict[str, Any]:
        return {"figure": self.name, "shown": self.shown,
                "old_test": {**self.old.to_json(), "interval": self.old_interval},
                "new": {"how": self.how, **({**self.new.to_json(), "interval": self.new_interval} if self.new else {})}}


EXACT = "exact (Clopper-Pearson)"
BOOTSTRAP = "bootstrap over the rows"
NO_INTERVAL = f"none (fewer than {check.MIN_BOOTSTRAP_ROWS} rows)"


def _bootstrap(rows: int) -> str:
    return BOOTSTRAP if rows >= check.MIN_BOOTSTRAP_ROWS else NO_INTERVAL


def assess(bundle, data: Prepared, new: NewRows, params: Params, cost: check.Cost | None,
           width: float = check.DEFAULT_WIDTH, found: list[check.Forecast] = (), forecast_said: str = "",
           underfit: str | None = None, trained: tuple[str, ...] = ()) -> dict[str, Any]:
    """The model (a ModelBundle) on the old test set and on the new rows, what changed, and
    the verdict: what check.json holds but the model's name, its lineage and the time. No
    file, no run. `found` are the forecasts (`forecast_for`), `underfit` why the model is
    underfitted, `trained` the prepared splits that trained it (none: not known).

    The task's default figure (accuracy; a regressor's relative error) is always read; a
    chosen measure (compare.metric) is read beside it and weighed in its place, unless it is
    undefined on the rows, has no label-free estimate (ROC AUC, average precision, log loss
    without labels: accuracy by ATC instead), or the forecast could not be made in it; the
    reasons then say which figure is weighed and why. check.json's `figure`, `old_test` and
    `new` are the weighed figure's; `measure` names the chosen one; `beside` holds the
    other figures read."""
    m, rules = measure_of_summary(data.summary), rules_of(data.summary)
    base = measure_of(m.task)  # the task's default figure
    old_frame = data.frame("initial_test")
    old_y = old_frame[data.label].to_numpy()
    labelled = new.labels.index
    rows = new.features.index.get_indexer(labelled)
    errors = {}  # a regressor's RMSE, in the label's units, beside its relative error
    said: list[str] = []  # how the weighed figure was read, where that is not the default's way
    if not m.regression:
        old_probs = bundle.predict_proba(old_frame[data.feature_names])
        new_probs = bundle.predict_proba(new.features)
        if not np.isfinite(new_probs).all() or not np.isfinite(old_probs).all():
            raise PipelineError("the model predicts values that are not finite; it must not be served (retrainlab "
                                "rollback, or promote another version)")
        old_correct = check.correct(evaluation.decide(old_probs, bundle.labels, rules), old_y)
        if len(labelled):
            current = check.accuracy(check.correct(evaluation.decide(new_probs[rows], bundle.labels, rules),
                                                   new.labels.to_numpy()))
            default = Figures(base, "acc", check.accuracy(old_correct), current, check.MEASURED, EXACT, EXACT)
        else:
            current = check.atc(check.confidence(old_probs), old_correct, check.confidence(new_probs))
            default = Figures(base, "acc", check.accuracy(old_correct), current, check.ESTIMATED, EXACT, BOOTSTRAP)
        unseen = check.unseen(list(new.labels), bundle.labels)
        chosen, instead = _chosen_classifier(m, rules, bundle.labels, old_probs, old_y,
                                             new_probs[rows] if len(labelled) else new_probs,
                                             new.labels.to_numpy() if len(labelled) else None)
    else:
        old_predicted = bundle.predict(old_frame[data.feature_names])
        reference = check.relative_error(old_predicted, old_y.astype(float))
        errors["old_test"] = check.rmse(old_predicted, old_y.astype(float)).to_json()
        if len(labelled):
            new_predicted = bundle.predict(new.features)[rows]
            current = check.relative_error(new_predicted, new.labels.to_numpy(float))
            errors["new"] = check.rmse(new_predicted, new.labels.to_numpy(float)).to_json()
            default = Figures(base, "relative_error", reference, current, check.MEASURED,
                              _bootstrap(len(old_y)), _bootstrap(len(labelled)))
        else:
            new_predicted = None
            default = Figures(base, "relative_error", reference, None, check.NOT_ESTIMATED, _bootstrap(len(old_y)))
        unseen = 0.0
        chosen, instead = _chosen_regressor(m, rules, old_predicted, old_y, new_predicted,
                                            new.labels.to_numpy(float) if len(labelled) else None)
    forecast_figure = found[0].figure if found else None
    if chosen is not None and chosen.measure is m and forecast_figure not in (None, m.primary):
        instead = (f"the forecast could not be made in {m.short} (its line says why): {default.shown} is weighed "
                   "instead, as the forecast is")
    weighed = chosen if chosen is not None and instead is None else default
    if instead:
        said.append(instead)
    elif weighed.how == check.CBPE:
        said.append(f"{m.short} on the new rows is estimated without labels by CBPE: the confusion matrix the model's "
                    "probabilities expect, once calibrated on the old test set")
    beside = [f.to_json() for f in (default, chosen) if f is not None and f is not weighed]
    old_sample = pd.concat([data.sample(s, DIAGNOSTIC_ROWS) for s in ("initial_train", "initial_test")],
                           ignore_index=True)
    new_diag = new.features.copy()
    if len(labelled) == len(new.features):
        new_diag[data.label] = new.labels
    against = trained or OLD_DATA
    categories = diagnostics.category_shifts(data.columns(against, data.categorical_names), new.features,
                                             data.features)
    diagnosis = diagnostics.diagnose(old_sample, new_diag.head(DIAGNOSTIC_ROWS * 2), data.label, data.features,
                                     max_tokens=params.model.text_tokens, task=data.summary.task,
                                     categories=categories)
    # An estimate is not a measured fall: the kinds of change read only a measured one, in the
    # task's default figure (their words speak of accuracy, or of the relative error).
    changes = change.classify(diagnosis, default.old.value,
                              default.new.value if default.how == check.MEASURED else None, base)
    verdict = check.decide(weighed.measure, weighed.old.value, weighed.new, params.compare, diagnosis, unseen, cost,
                           params.compare.point_value, found, underfit, measured=weighed.how == check.MEASURED)
    counted = len(labelled) if weighed.how == check.MEASURED else None
    return {
        "verdict": verdict.verdict, "exit_status": verdict.exit_status, "reasons": [*said, *verdict.reasons],
        "data": {"source": new.shown, "rows": len(new.features), "labelled_rows": len(labelled),
                 "dropped_rows": new.dropped, "trained_rows": new.trained, "held_out_rows": new.held_out},
        "task": m.task, "figure": weighed.name, "figure_shown": weighed.shown,
        "measure": {"metric": m.metric, "figure": m.primary, "shown": m.short, "weighed": weighed.measure is m,
                    "instead": instead},
        "old_test": {"rows": len(old_frame), **weighed.to_json()["old_test"]},
        "new": weighed.to_json()["new"],
        "beside": beside,
        "rmse": errors or None,
        "forecast": {"options": [f.to_json() for f in found], "said": forecast_said,
                     "best": verdict.best.option if verdict.best else None},
        "underfitted": underfit,
        "loss_on_traffic": verdict.loss.to_json() if verdict.loss else None,
        "tolerance": verdict.tolerance, "new_traffic_share": params.compare.new_traffic_share,
        "unseen_class_share": unseen,
        "comparison_cost": dataclasses.asdict(cost) if cost else None,
        "point_value": params.compare.point_value, "gain": verdict.gain,
        "labels_needed": {"rows": check.labels_needed(weighed.measure, weighed.new, width, counted), "width": width,
                          "figure": weighed.name,
                          "for": check.labels_needed_for(weighed.measure, weighed.new, counted)},
        "changes": check.changes_in_words(changes),
        "diagnostics": diagnosis.to_json(),
        "categories_against": {"splits": list(against), "trained": bool(trained)},
        "limits": limits_of(m),
    }


def _chosen_classifier(m: Measure, rules: Scoring, labels, old_probs: np.ndarray, old_y: np.ndarray,
                       new_probs: np.ndarray, new_y: np.ndarray | None) -> tuple[Figures | None, str | None]:
    """A chosen classifier measure on the old test set and on the new rows (`new_y` None:
    without labels, by CBPE), and why accuracy is weighed in its place, if it is; (None,
    None) for accuracy itself."""
    if check.is_default(m):
        return None, None
    old = check.Outputs.of_classifier(m, rules, old_probs, labels, old_y)
    why = old.undefined()
    if why:
        return None, f"{m.short} is undefined on the old test set: {why}; accuracy is weighed instead"
    reference = check.interval(old)
    if new_y is not None:
        current = check.Outputs.of_classifier(m, rules, new_probs, labels, new_y)
        why = current.undefined()
        figures = Figures(m, m.primary, reference, None, check.UNDEFINED, _bootstrap(len(old_y)))
        if why:
            return figures, f"{m.short} is undefined on the labelled new rows: {why}; accuracy is weighed instead"
        return dataclasses.replace(figures, new=check.interval(current), how=check.MEASURED,
                                   new_interval=_bootstrap(len(new_y))), None
    figures = Figures(m, m.primary, reference, None, check.NOT_ESTIMATED, _bootstrap(len(old_y)))
    if m.primary in check.NO_LABEL_FREE:
        return figures, (f"{m.short} has no sound estimate without labels: accuracy is estimated instead (ATC) and "
                         "weighed")
    why = check.cbpe_undefined(m, rules, new_probs, labels)
    if why:
        return figures, (f"{m.short} cannot be estimated on the new rows: {why}; accuracy is estimated instead (ATC) "
                         "and weighed")
    estimate = check.cbpe(m, rules, new_probs, labels,
                          expected_probs=check.calibrated(old_probs, old_y, labels, new_probs))
    return dataclasses.replace(figures, new=estimate, how=check.CBPE, new_interval=_bootstrap(len(new_probs))), None


def _chosen_regressor(m: Measure, rules: Scoring, old_predicted: np.ndarray, old_y: np.ndarray,
                      new_predicted: np.ndarray | None, new_y: np.ndarray | None) -> tuple[Figures | None, str | None]:
    """A chosen regressor measure on the old test set and on the labelled new rows (none
    without labels: it is not estimated), and why the relative error is weighed in its
    place, if it is; (None, None) for the RMSE itself."""
    if check.is_default(m):
        return None, None
    old = check.Outputs.of_regressor(m, rules, old_predicted, old_y)
    why = old.undefined()
    if why:
        return None, f"{m.short} is undefined on the old test set: {why}; the relative error is weighed instead"
    figures = Figures(m, m.primary, check.interval(old), None, check.NOT_ESTIMATED, _bootstrap(len(old_y)))
    if new_y is None:
        return figures, None
    current = check.Outputs.of_regressor(m, rules, new_predicted, new_y)
    why = current.undefined()
    if why:
        return (dataclasses.replace(figures, how=check.UNDEFINED),
                f"{m.short} is undefined on the labelled new rows: {why}; the relative error is weighed instead")
    return dataclasses.replace(figures, new=check.interval(current), how=check.MEASURED,
                               new_interval=_bootstrap(len(new_y))), None


LIMITS = {
    "classification": ("Without labels the accuracy is estimated from the model's confidences (ATC): a change in "
                       "what the labels mean (concept drift) leaves them unchanged, so the estimate cannot see it."),
    "regression": ("A regressor's error is compared across sets as its relative error (RMSE over the RMSE of "
                   "predicting the rows' own mean, sqrt(1 - R²)), since labels that spread wider make any model's "
                   "RMSE larger. It is not estimated without labels: without them only its inputs' drift is "
                   "reported."),
}


def limits_of(m: Measure) -> str:
    """What the check cannot see, for the measure it reads."""
    if check.is_default(m):
        return LIMITS[m.task]
    short = m.short[:1].upper() + m.short[1:]
    bootstrap = f" The intervals of {m.short} are a bootstrap over the rows (of the old test set, of the new rows)."
    if not m.regression:
        if m.primary in check.NO_LABEL_FREE:
            without = (f" {short} has no sound estimate without labels: without them accuracy is estimated instead "
                       "(ATC), and weighed.")
        else:
            without = (f" Without labels {m.short} is estimated by CBPE (confidence-based performance estimation): "
                       "the confusion matrix the model's probabilities expect, once calibrated on the labelled old "
                       "test set (isotonic regression of each class: of the rows given 0.8, 8 in 10 right there). It "
                       "assumes that calibration carries over to the new rows; where it does not, the estimate is off "
                       "by as much, and its interval, a bootstrap over the new rows, does not show it; like ATC it "
                       "cannot see concept drift.")
        return LIMITS[m.task] + without + bootstrap
    beside = ("(the relative error, shown beside it, does not; the forecast compares the options on the same rows)")
    if m.primary == "mape":
        units = (f" {short} is compared across sets as it is: a percentage error moves with the labels' size, so new "
                 f"rows whose labels lie nearer 0 raise it for any model {beside}.")
    elif m.relative:
        units = (f" {short} is compared across sets as it is, in {m.unit}: an error in the label's units moves with "
                 f"the labels' spread, so new rows whose labels spread wider raise it for any model {beside}.")
    else:
        units = ""
    return (f"{short} is not estimated without labels: without them only the inputs' drift is reported." + units
            + bootstrap)


def _locate(params: Params, root: Path, source: origins.Source) -> Located:
    """Where the model `source` names is (a registry URI, a .keras file, or a pipeline's model
    folder models/STRATEGY/seed-N), and which rows trained it: no TensorFlow yet. The store
    the project's records name must be there whatever the model: the check's run would
    otherwise start an empty one in its place."""
    # start-up: MLflow only once the new rows have been read
    from retrainlab.pipeline import lineage as lineages
    from retrainlab.tracking import store

    store.check_store_kept(store.project_root(root))
    spec = source.spec
    folder = root / spec
    if pipeline_folder(folder):
        if not folder.is_dir():
            raise ModelSourceError(f"{spec}: not found; {source.remedy}")
        strategy = folder.parent.name
        lineage = (lineages.of_folder(strategy, params.baseline.from_) if strategy in CATALOGUE
                   else lineages.unknown(spec))
        return Located(spec, folder, None, lineage)
    if not names_model(spec):
        raise ModelSourceError(f"{source.given}; {source.remedy}")
    where = origins.resolve(params, root, source)
    if where.kind != "registry":
        return Located(spec, None, where, lineages.unknown(spec))
    # start-up: the registry's client only for a registered model
    from mlflow.tracking import MlflowClient

    return Located(spec, None, where, lineages.of_version(MlflowClient(), where.name, where.version, root))


def _load_model(located: Located, params: Params, data: Prepared, root: Path) -> Checked:
    """The model, adopted for the data as a baseline would be, and its held-out curve."""
    console.load_tensorflow()  # first, so that it loads without its start-up notices
    # start-up: TensorFlow loads only once the data has been read and checked
    from retrainlab.models.loading import open_bundle
    from retrainlab.pipeline import user_model

    if located.folder is not None:
        bundle = open_bundle(located.folder, data, located.spec)
        strategy = located.folder.parent.name
        curve = _folder_curve(root, strategy, data) if strategy in CATALOGUE else None
        return Checked(bundle, None, located.lineage, curve)
    chosen = dataclasses.replace(params, baseline=dataclasses.replace(params.baseline, from_=located.spec))
    bundle = user_model.load(located.origin, data, chosen, root)
    if located.origin.kind != "registry":
        return Checked(bundle, None, located.lineage, None)
    # start-up: the registry's client only for a registered model
    from mlflow.tracking import MlflowClient

    from retrainlab.tracking import store

    curve = _run_curve(MlflowClient(), located.origin.run_id, store.CURVE_PREFIX + _curve_name(data))
    return Checked(bundle, located.version, located.lineage, curve)


def _folder_curve(root: Path, strategy: str, data: Prepared) -> list[float] | None:
    """The strategy's held-out curve as its step wrote it (plots/STRATEGY.csv: the mean over its seeds)."""
    path = root / layout.curves_path(strategy)
    column = _curve_name(data)
    try:
        curves = pd.read_csv(path)
    except (OSError, ValueError):
        return None
    return curves[column].astype(float).tolist() if column in curves.columns else None


def _run_curve(client, run_id: str | None, metric: str) -> list[float] | None:
    """The held-out curve its step logged on the version's run (the mean over its seeds)."""
    if not run_id:
        return None
    history = client.get_metric_history(run_id, metric)
    return [h.value for h in sorted(history, key=lambda h: h.step)] or None


def _curve_name(data: Prepared) -> str:
    return f"held_out_{measure_of_summary(data.summary).old}"


def known_rows(new: NewRows, data: Prepared, lineage) -> NewRows:
    """The new rows less those that trained the model, and how many of the rest are its own
    held-out test rows. Rows that are mostly the model's training rows are refused: they are
    not what the check measures a model on."""
    if not lineage.known:
        return new
    digests = row_digests(new.features, data.features)
    trained = np.zeros(len(digests), dtype=bool)
    for split in lineage.trained:
        trained |= found_in(digests, file_digests(data.path(split), data.features))
    held = np.zeros(len(digests), dtype=bool)
    for split in lineage.held_out:
        held |= found_in(digests, file_digests(data.path(split), data.features))
    count = int(trained.sum())
    if mostly_known(count, len(digests)):
        splits = ", ".join(str(layout.split_path(s)) for s in lineage.trained)
        raise DataError(f"{new.shown}: {count} of its {len(digests)} rows trained the model ({lineage.said}: the rows "
                        f"of {splits}); a check measures a model on rows it has not seen: give the new rows with "
                        "--data PATH")
    keep = new.features.index[~trained]
    return dataclasses.replace(new, features=new.features.loc[keep], labels=new.labels[new.labels.index.isin(keep)],
                               trained=count, held_out=int((held & ~trained).sum()))


def _records(root: Path) -> dict[str, dict]:
    """The last comparison's records (records/*.json), as they are; none where there are none."""
    found = {}
    for path in sorted((root / layout.record_path("baseline")).parent.glob("*.json")):
        try:
            found[path.stem] = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
    return found


def _cost_metric(params: Params, records: dict[str, dict]) -> str:
    """The cost figure the comparison itself would weigh (`compare.cost_metric`, `auto` as it
    resolves it) for these records; a damaged record is left out of the choice."""
    readable = {}
    for name, raw in records.items():
        try:
            readable[name] = StrategyRecord.from_json(raw)
        except (KeyError, TypeError, AttributeError, ValueError):
            continue
    return choose_cost_metric(readable, params.compare.cost_metric)


# --- the new rows ---------------------------------------------------------------------------


def read_new_rows(params: Params, data: Prepared, root: Path, given: str | None, use_labels: bool) -> NewRows:
    """The new rows: `given`, else the incremental file params.yaml names, else the prepared
    incremental splits; their feature columns typed as the prepared data's."""
    if given is None and params.data.source not in ("files", "arrays"):
        frame = pd.concat([data.frame("incremental_train"), data.frame("incremental_test")], ignore_index=True)
        return _typed(frame, data, str(layout.PREPARED_DIR / "incremental_*.parquet"), use_labels)
    if given is None:
        given = params.data.files.incremental if params.data.source == "files" else params.data.arrays.incremental
    path = (root / given) if not Path(given).is_absolute() else Path(given)
    if path.suffix.lower() == ".npz":
        x, y = read_arrays(path, given, "--data")
        shape = data.summary.input_shape
        if shape is not None and tuple(x.shape[1:]) != tuple(shape):
            raise DataError(f"{given}: rows have shape {tuple(x.shape[1:])}, but the model reads {tuple(shape)}; "
                            "give arrays of the prepared data's shape")
        frame = pd.DataFrame(x.reshape(len(x), -1).astype(np.float64, copy=False), columns=array_columns(x.shape[1:]))
        frame[data.label] = y
    else:
        frame, _ = read_table(path, given, "--data", data.categorical_names)
    return _typed(frame, data, given, use_labels)


def _typed(frame: pd.DataFrame, data: Prepared, shown: str, use_labels: bool) -> NewRows:
    """The model's columns, each as the prepared data holds it; rows with a missing or
    non-finite feature value left out and counted; the labels of the rows that have one."""
    frame = frame.reset_index(drop=True)  # a Parquet file's own index may repeat: rows are told apart by position
    names = data.feature_names
    missing = [name for name in names if name not in frame.columns]
    if missing:
        raise DataError(f"{shown}: no column {missing[0]!r}, which the model reads; give every feature column "
                        f"({len(names)}: {', '.join(map(repr, names[:5]))}{' ...' if len(names) > 5 else ''})")
    for f in data.features:
        if f.kind == NUMERIC:
            column = frame[f.name]
            bad = column[pd.to_numeric(column, errors="coerce").isna() & column.notna()]
            bad = bad[~bad.map(lambda v: isinstance(v, str) and not v.strip())]
            if len(bad):
                raise DataError(f"{shown}: column {f.name!r} holds {escape.one_line(str(bad.iloc[0]))[:40]!r} "
                                "where the model reads numbers; give numbers only")
    # The rows training would use (retrainlab.data.values): a row training drops is not scored.
    typed, _ = values.features(frame, data.features)
    keep = typed.notna().all(axis=1)
    features = typed[keep]
    if features.empty:
        why = values.unusable(frame[names], typed)
        raise DataError(f"{shown}: no row is usable as training reads rows: {'; '.join(why[:3])}; give rows with "
                        "every feature column filled with a number float32 holds, or a text")
    labels = pd.Series(dtype=object)
    if use_labels and data.label in frame.columns:
        raw = frame.loc[features.index, data.label]
        raw = raw[raw.notna()]
        if data.summary.task == "regression":
            numbers = pd.to_numeric(raw, errors="coerce")
            if numbers.isna().any() or not np.isfinite(numbers).all():
                raise DataError(f"{shown}: label column {data.label!r} holds a value that is not a finite number; "
                                "give numbers, or leave the cell empty for an unlabelled row")
            labels = numbers.astype(float)
        else:  # a known class read back as the prepared data holds it (a CSV's "3" is the class 3)
            raw, _ = values.labels(raw)
            raw = raw[raw.notna()]
            known = {values.label_text(k): k for split in layout.SPLITS for k in data.summary.classes[split]}
            labels = raw.map(values.label_text).map(lambda text: known.get(text, text))
    return NewRows(shown, features, labels, int((~keep).sum()))


# --- outputs --------------------------------------------------------------------------------


def write_reports(root: Path, result: dict[str, Any]) -> None:
    (root / layout.REPORTS_DIR).mkdir(parents=True, exist_ok=True)
    write_text_atomically(root / CHECK_JSON, json.dumps(_strict(result), indent=2, default=str, allow_nan=False) + "\n")
    write_text_atomically(root / CHECK_MD, markdown(result))


def _strict(value: Any) -> Any:
    """`value` with each float that is not finite as None: JSON has no Infinity (an error
    from fewer rows than a bootstrap needs has the interval 0 to inf)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _strict(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_strict(v) for v in value]
    return value


SHOWN = {"acc": "accuracy", "relative_error": "relative error (RMSE / the labels' spread)"}


def _shown(result: dict[str, Any]) -> str:
    """The weighed figure in words (a report written before measures were chosen has no `figure_shown`)."""
    return result.get("figure_shown") or SHOWN.get(result["figure"]) or result["figure"]


def _between(figure: dict[str, Any]) -> escape.Markdown:
    """An interval as check.md shows it: its ends, and how it was found where that is said."""
    kind = figure.get("interval")
    return escape.md("{:.4g} to {:.4g}" + (", {}" if kind else ""), figure["low"], figure["high"],
                     *([kind] if kind else []))


def markdown(result: dict[str, Any]) -> escape.Markdown:
    """check.md: the verdict, the forecast, the figures it weighed and what changed; user text escaped."""
    figure, new, old, data = _shown(result), result["new"], result["old_test"], result["data"]
    parts = [
        escape.md("# Check: {}\n", result["verdict"]),
        escape.md("Model {} (version {}); new rows: {} ({} rows, {} labelled, {} left out for a missing value).\n\n",
                  result["model"]["spec"], result["model"]["version"] or "-", data["source"],
                  data["rows"], data["labelled_rows"], data["dropped_rows"]),
    ]
    if data.get("trained_rows"):
        parts.append(escape.md("{} rows trained the model and were left out.\n\n", data["trained_rows"]))
    if data.get("held_out_rows"):
        parts.append(escape.md("{} of the rows are the model's own held-out test rows: the comparison measured it "
                               "on them, so they are not new data.\n\n", data["held_out_rows"]))
    forecast = result["forecast"]
    if forecast["options"]:
        parts.append(escape.Markdown("## Forecast\n\n| option | gain in target | 95% interval | CPU-seconds |\n"
                                     "| --- | --- | --- | --- |\n"))
        for f in forecast["options"]:
            g = f["gain"]
            parts.append(escape.md("| {} | {:+.4g} | {:+.4g} to {:+.4g} | {:.3g} |\n", f["option"], g["value"],
                                   g["low"], g["high"], f["cost"].get("cpu_seconds", float("nan"))))
        parts.append(escape.md("\n{}.\n\n", forecast["said"][:1].upper() + forecast["said"][1:]))
    elif forecast["said"]:
        parts.append(escape.md("No forecast: {}.\n\n", forecast["said"]))
    parts += [
        escape.Markdown("## Figures\n\n| figure | value | 95% interval |\n| --- | --- | --- |\n"),
        escape.md("| {} on the old test set ({} rows) | {:.4g} | {} |\n", figure, old["rows"], old["value"],
                  _between(old)),
    ]
    if "value" in new:
        parts.append(escape.md("| {} on the new rows, {} | {:.4g} | {} |\n", figure, new["how"], new["value"],
                               _between(new)))
    for other in result.get("beside") or ():
        parts.append(escape.md("| {} on the old test set, beside it | {:.4g} | {} |\n", other["shown"],
                               other["old_test"]["value"], _between(other["old_test"])))
        if "value" in other["new"]:
            parts.append(escape.md("| {} on the new rows, {}, beside it | {:.4g} | {} |\n", other["shown"],
                                   other["new"]["how"], other["new"]["value"], _between(other["new"])))
    for where, shown in (("old_test", "the old test set"), ("new", "the new rows")):
        error = (result.get("rmse") or {}).get(where)
        if error:
            parts.append(escape.md("| RMSE on {}, in the label's units | {:.4g} | {:.4g} to {:.4g} |\n", shown,
                                   error["value"], error["low"], error["high"]))
    loss = result["loss_on_traffic"]
    if loss:
        parts.append(escape.md("| loss on the traffic | {:.4g} | {:.4g} to {:.4g} |\n", loss["value"], loss["low"],
                               loss["high"]))
    parts.append(escape.Markdown("\n## Why\n\n"))
    parts += [escape.md("- {}\n", reason) for reason in result["reasons"]]
    parts.append(escape.Markdown("\n## What changed\n\n"))
    parts += [escape.md("- {}: {}\n", c["kind"], c["evidence"]) for c in result["changes"]]
    parts += _new_values(result)
    needed = result["labels_needed"]
    parts.append(escape.md("\nLabelled new rows needed to measure {} to within {:g} (a 95% interval that wide): "
                           "{:,}.\n\n", needed.get("for") or figure, needed["width"], needed["rows"]))
    lineage = result.get("lineage")
    if lineage:
        parts.append(escape.md("Lineage: {}.\n\n", lineage["said"]))
    parts.append(escape.md("Limits: {}\n", result["limits"]))
    return escape.Markdown("").join(parts)


def _new_values(result: dict[str, Any]) -> list[escape.Markdown]:
    """Each categorical column's new values, as check.md says them: none without a categorical column."""
    categories = result["diagnostics"].get("categories") or []
    if not categories:
        return []
    against = result["categories_against"]
    splits = ", ".join(against["splits"])
    where = (f"the rows that trained the model ({splits})" if against["trained"]
             else f"the old data ({splits}; which rows trained the model is not known)")
    parts = [escape.md("\nEach categorical column's new rows, read against every value of {}:\n\n", where)]
    parts += [escape.md("- {}: {:.1%} of the new rows hold a value those rows never had; {:,} new values, against "
                        "{:,} there.\n", c["feature"], c["unseen_rows"], c["new_values"], c["old_values"])
              for c in categories]
    return parts


def _log_run(params: Params, root: Path, result: dict[str, Any]) -> None:
    """An MLflow run tagged as a check, with the figures, the verdict and the two reports."""
    # start-up: MLflow only once the check's figures are known
    import mlflow

    from retrainlab.tracking import store

    experiment_id = store.configure(params.tracking.experiment, store.project_root(root))
    tags = {store.TAG_ROLE: "check", store.TAG_VERDICT: result["verdict"],
            store.TAG_PREFIX + "check.model": result["model"]["spec"],
            store.TAG_PREFIX + "check.new": result["new"]["how"],
            store.TAG_PREFIX + "check.figure": result["figure"],  # what check.old and check.new are
            store.TAG_PREFIX + "check.measure": result["measure"]["metric"],  # compare.metric
            store.TAG_PREFIX + "check.forecast_best": result["forecast"]["best"] or "none",
            store.TAG_PREFIX + "check.underfitted": "yes" if result["underfitted"] else "no",
            store.NOTE_TAG: escape.require_markdown(markdown(result))}  # the run's description: check.md
    with store.step_run(experiment_id, "check", None, tags, system_metrics=False):
        metrics = {"check.old": result["old_test"]["value"], "check.exit_status": result["exit_status"],
                   "check.rows": result["data"]["rows"], "check.labelled_rows": result["data"]["labelled_rows"],
                   "check.labels_needed": result["labels_needed"]["rows"], "check.seconds": result["seconds"]}
        if "value" in result["new"]:
            metrics |= {"check.new": result["new"]["value"], "check.new_low": result["new"]["low"],
                        "check.new_high": result["new"]["high"]}
        if result["loss_on_traffic"]:
            metrics |= {f"check.loss{'' if k == 'value' else '_' + k}": v
                        for k, v in result["loss_on_traffic"].items()}
        for found in result["forecast"]["options"]:
            metrics |= {f"check.forecast.{found['option']}{'' if k == 'value' else '_' + k}": v
                        for k, v in found["gain"].items()}
        metrics["check.trained_rows"] = result["data"]["trained_rows"]
        metrics |= Diagnosis.from_json(result["diagnostics"]).category_metrics()  # named as the compare step's
        mlflow.log_metrics({k: float(v) for k, v in metrics.items() if v is not None and math.isfinite(v)})
        for path in (CHECK_JSON, CHECK_MD):
            mlflow.log_artifact(str(root / path), artifact_path="check")
