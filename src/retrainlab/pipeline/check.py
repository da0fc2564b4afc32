"""`retrainlab check`: has enough changed since the model was chosen to be worth a comparison?

No training: the current model (the registry's champion, or what `baseline.from` names, or
`--model`) predicts the old test set and the new rows, and retrainlab.decision.check weighs
what it sees against params.yaml's `compare` section and the last comparison's cost. The new
rows are the configured incremental data (the files or arrays params.yaml names; for a
built-in source, the prepared incremental splits) or `--data PATH` (CSV, Parquet or .npz).
Rows with a label are measured; rows without are estimated (ATC, a classifier's only).

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
from retrainlab.base.errors import DataError, PipelineError
from retrainlab.base.files import write_text_atomically
from retrainlab.config import TRAIN, Params
from retrainlab.data import NUMERIC, TEXT, Prepared, load_prepared
from retrainlab.data.sources import array_columns, read_arrays, read_table
from retrainlab.decision import change, check, diagnostics
from retrainlab.decision.comparison import choose_cost_metric
from retrainlab.measure.record import StrategyRecord
from retrainlab.measure.task import measure_of

log = logging.getLogger(__name__)

CHECK_JSON = layout.REPORTS_DIR / "check.json"
CHECK_MD = layout.REPORTS_DIR / "check.md"
CHAMPION = "champion"
DIAGNOSTIC_ROWS = 5000  # as the compare step: the diagnostics' figures are stable long before


@dataclasses.dataclass(frozen=True)
class NewRows:
    """The new rows as the model reads them, their labels where given, and where they came from."""

    shown: str  # how the report names them
    features: pd.DataFrame
    labels: pd.Series  # the rows that have one, by the features' index
    dropped: int  # rows left out: a missing or non-finite feature value


def model_spec(params: Params, given: str | None) -> str:
    """What is checked: `--model`, else `baseline.from` where it names a model, else the champion."""
    if given:
        return given
    if params.baseline.from_ != TRAIN:
        return params.baseline.from_
    return f"models:/{params.tracking.registered_model}@{CHAMPION}"


def run_check(params: Params, root: Path = Path("."), data_path: str | None = None, model: str | None = None,
              use_labels: bool = True, width: float = check.DEFAULT_WIDTH) -> dict[str, Any]:
    """The check, its reports and its MLflow run; returns what check.json holds."""
    started = time.perf_counter()
    if not (0 < width < 1):
        raise DataError(f"--width is {width:g}; give the interval's width as a share in (0, 1), e.g. 0.05")
    data = load_prepared(root)
    new = read_new_rows(params, data, root, data_path, use_labels)
    spec = model_spec(params, model)
    bundle, version = _load_model(params, data, root, spec)
    records = _records(root)
    cost = check.comparison_cost(records, _cost_metric(params, records))
    result = assess(bundle, data, new, params, cost, width)
    result = {**result, "model": {"spec": spec, "version": version}, "seconds": time.perf_counter() - started}
    write_reports(root, result)
    _log_run(params, root, result)
    return result


def assess(bundle, data: Prepared, new: NewRows, params: Params, cost: check.Cost | None,
           width: float = check.DEFAULT_WIDTH) -> dict[str, Any]:
    """The model (a ModelBundle) on the old test set and on the new rows, what changed, and
    the verdict: what check.json holds but the model's name and the time. No file, no run."""
    m = measure_of(data.summary.task)
    old_frame = data.frame("initial_test")
    old_y = old_frame[data.label].to_numpy()
    labelled = new.labels.index
    rows = new.features.index.get_indexer(labelled)
    if m.higher_is_better:
        old_probs = bundle.predict_proba(old_frame[data.feature_names])
        new_probs = bundle.predict_proba(new.features)
        if not np.isfinite(new_probs).all() or not np.isfinite(old_probs).all():
            raise PipelineError("the model predicts values that are not finite; it must not be served (retrainlab "
                                "rollback, or promote another version)")
        names = np.asarray(bundle.labels, dtype=object)
        old_correct = _same(names[old_probs.argmax(axis=1)], old_y)
        reference = check.accuracy(old_correct)
        if len(labelled):
            current = check.accuracy(_same(names[new_probs[rows].argmax(axis=1)], new.labels.to_numpy()))
            how = check.MEASURED
        else:
            current = check.atc(check.confidence(old_probs), old_correct, check.confidence(new_probs))
            how = check.ESTIMATED
        unseen = check.unseen(list(new.labels), bundle.labels)
    else:
        reference = check.rmse(bundle.predict(old_frame[data.feature_names]), old_y.astype(float))
        if len(labelled):
            current = check.rmse(bundle.predict(new.features)[rows], new.labels.to_numpy(float))
            how = check.MEASURED
        else:
            current, how = None, check.NOT_ESTIMATED
        unseen = 0.0
    old_sample = pd.concat([data.sample(s, DIAGNOSTIC_ROWS) for s in ("initial_train", "initial_test")],
                           ignore_index=True)
    new_diag = new.features.copy()
    if len(labelled) == len(new.features):
        new_diag[data.label] = new.labels
    diagnosis = diagnostics.diagnose(old_sample, new_diag.head(DIAGNOSTIC_ROWS * 2), data.label, data.features,
                                     max_tokens=params.model.text_tokens, task=data.summary.task)
    # An estimate is not a measured fall: the kinds of change read only a measured one.
    changes = change.classify(diagnosis, reference.value, current.value if how == check.MEASURED else None, m)
    verdict = check.decide(m, reference.value, current, params.compare, diagnosis, unseen, cost,
                           params.compare.point_value)
    return {
        "verdict": verdict.verdict, "exit_status": verdict.exit_status, "reasons": verdict.reasons,
        "data": {"source": new.shown, "rows": len(new.features), "labelled_rows": len(labelled),
                 "dropped_rows": new.dropped},
        "task": m.task, "figure": m.primary,
        "old_test": {"rows": len(old_frame), **reference.to_json()},
        "new": {"how": how, **(current.to_json() if current else {})},
        "loss_on_traffic": verdict.loss.to_json() if verdict.loss else None,
        "tolerance": verdict.tolerance, "new_traffic_share": params.compare.new_traffic_share,
        "unseen_class_share": unseen,
        "comparison_cost": dataclasses.asdict(cost) if cost else None,
        "point_value": params.compare.point_value, "gain": verdict.gain,
        "labels_needed": {"rows": check.labels_needed(m, current.value if current else None, width), "width": width},
        "changes": check.changes_in_words(changes),
        "diagnostics": diagnosis.to_json(),
        "limits": LIMITS[m.task],
    }


LIMITS = {
    "classification": ("Without labels the accuracy is estimated from the model's confidences (ATC): a change in "
                       "what the labels mean (concept drift) leaves them unchanged, so the estimate cannot see it."),
    "regression": ("A regressor's error is not estimated without labels: without them only its inputs' drift is "
                   "reported."),
}


def _same(predicted: np.ndarray, actual: np.ndarray) -> np.ndarray:
    return np.array([str(p) == str(a) for p, a in zip(predicted, actual)], dtype=bool)


def _load_model(params: Params, data: Prepared, root: Path, spec: str):
    """The model `spec` names, adopted for the data as a baseline would be (a registry URI, a
    .keras file, or a pipeline's model folder models/STRATEGY/seed-N); and its version."""
    console.load_tensorflow()  # first, so that it loads without its start-up notices
    # start-up: TensorFlow and MLflow load only once the data has been read and checked
    from retrainlab.models.brought import check_bundle_task, check_columns
    from retrainlab.models.bundle import ModelBundle
    from retrainlab.pipeline import origin as origins
    from retrainlab.pipeline import user_model

    folder = root / spec
    if folder.is_dir() and (folder / "meta.json").is_file():  # a pipeline output: models/STRATEGY/seed-N
        bundle = ModelBundle.load(folder)
        check_columns(bundle, data, spec)
        check_bundle_task(bundle, data, spec)
        return bundle, None
    chosen = dataclasses.replace(params, baseline=dataclasses.replace(params.baseline, from_=spec))
    chosen.baseline.check()
    where = origins.resolve(chosen, root)
    return user_model.load(where, data, chosen, root), where.version


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
        frame, _ = read_table(path, given, "--data")
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
    features = frame[names].copy()
    for f in data.features:
        column = features[f.name]
        if f.kind == NUMERIC:
            numbers = pd.to_numeric(column, errors="coerce")
            bad = column[numbers.isna() & column.notna()]
            if len(bad):
                raise DataError(f"{shown}: column {f.name!r} holds {escape.one_line(str(bad.iloc[0]))[:40]!r} "
                                "where the model reads numbers; give numbers only")
            features[f.name] = numbers.astype(float).replace([np.inf, -np.inf], np.nan)
        elif f.kind == TEXT:
            features[f.name] = column.where(column.notna(), "").astype(str)
        else:
            features[f.name] = column.where(column.isna(), column.astype(str))
    keep = features.notna().all(axis=1)
    features = features[keep]
    if features.empty:
        raise DataError(f"{shown}: no row has every feature column filled with a finite value; give complete rows")
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
            known = {str(k): k for split in layout.SPLITS for k in data.summary.classes[split]}
            labels = raw.map(lambda value: known.get(str(_label(value)), _label(value)))
    return NewRows(shown, features, labels, int((~keep).sum()))


def _label(value: Any) -> Any:
    """A label as the prepared data writes it: a whole float (from a CSV column with gaps) as an int."""
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    return value.item() if hasattr(value, "item") else value


# --- outputs --------------------------------------------------------------------------------


def write_reports(root: Path, result: dict[str, Any]) -> None:
    (root / layout.REPORTS_DIR).mkdir(parents=True, exist_ok=True)
    write_text_atomically(root / CHECK_JSON, json.dumps(result, indent=2, default=str) + "\n")
    write_text_atomically(root / CHECK_MD, markdown(result))


def markdown(result: dict[str, Any]) -> escape.Markdown:
    """check.md: the verdict, the figures it weighed and what changed; user text escaped."""
    figure, new, old = result["figure"], result["new"], result["old_test"]
    parts = [
        escape.md("# Check: {}\n", result["verdict"]),
        escape.md("Model {} (version {}); new rows: {} ({} rows, {} labelled, {} left out).\n\n",
                  result["model"]["spec"], result["model"]["version"] or "-", result["data"]["source"],
                  result["data"]["rows"], result["data"]["labelled_rows"], result["data"]["dropped_rows"]),
        escape.Markdown("| figure | value | 95% interval |\n| --- | --- | --- |\n"),
        escape.md("| {} on the old test set ({} rows) | {:.4g} | {:.4g} to {:.4g} |\n", figure, old["rows"],
                  old["value"], old["low"], old["high"]),
    ]
    if "value" in new:
        parts.append(escape.md("| {} on the new rows, {} | {:.4g} | {:.4g} to {:.4g} |\n", figure, new["how"],
                               new["value"], new["low"], new["high"]))
    loss = result["loss_on_traffic"]
    if loss:
        parts.append(escape.md("| loss on the traffic | {:.4g} | {:.4g} to {:.4g} |\n", loss["value"], loss["low"],
                               loss["high"]))
    parts.append(escape.Markdown("\n## Why\n\n"))
    parts += [escape.md("- {}\n", reason) for reason in result["reasons"]]
    parts.append(escape.Markdown("\n## What changed\n\n"))
    parts += [escape.md("- {}: {}\n", c["kind"], c["evidence"]) for c in result["changes"]]
    needed = result["labels_needed"]
    parts.append(escape.md("\nLabelled new rows needed to measure {} to within {:g} (a 95% interval that wide): "
                           "{:,}.\n\n", figure, needed["width"], needed["rows"]))
    parts.append(escape.md("Limits: {}\n", result["limits"]))
    return escape.Markdown("").join(parts)


def _log_run(params: Params, root: Path, result: dict[str, Any]) -> None:
    """An MLflow run tagged as a check, with the figures, the verdict and the two reports."""
    # start-up: MLflow only once the check's figures are known
    import mlflow

    from retrainlab.tracking import store

    experiment_id = store.configure(params.tracking.experiment, store.project_root(root))
    tags = {store.TAG_ROLE: "check", store.TAG_VERDICT: result["verdict"],
            store.TAG_PREFIX + "check.model": result["model"]["spec"],
            store.TAG_PREFIX + "check.new": result["new"]["how"],
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
        mlflow.log_metrics({k: float(v) for k, v in metrics.items() if v is not None and math.isfinite(v)})
        for path in (CHECK_JSON, CHECK_MD):
            mlflow.log_artifact(str(root / path), artifact_path="check")
