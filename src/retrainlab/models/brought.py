"""A model the user brings (`baseline.from`), adopted for the data: its weights finite, how it
reads the columns, that its head does the data's task, which label each output unit is, its
output read as class probabilities (a regressor's: one number), and the optimizer and loss it
was compiled with. Where it comes from (a file, the registry) is the pipeline's business
(retrainlab.pipeline.user_model)."""

from __future__ import annotations

import re
from pathlib import Path

from retrainlab.base.errors import ModelShapeError, ModelSourceError
from retrainlab.base.tasks import CLASSIFICATION, REGRESSION
from retrainlab.config import Params
from retrainlab.data import Prepared
from retrainlab.models.bundle import ModelBundle, check_output_width, detect_contract
from retrainlab.models.files import compile_config, load_keras
from retrainlab.models.outputs import check_task, probability_output, task_conflict

# What a summary.json written before tasks were decided (no `task`) was: a classifier's data.
NO_TASK_RULE = "summary.json notes no task: data prepared before data.task, read as classes"


def adopt(path: Path, data: Prepared, params: Params, where: str):
    """A brought Keras file as a ModelBundle: its weights finite, how it reads the columns,
    that its head does the data's task, which label each output unit is (data.labels in
    order, else the initial data's labels sorted), its output read as class probabilities (a
    regressor's: kept as it is), and the optimizer and loss it was compiled with (`where`
    names it in errors)."""
    model = load_keras(path, "restore a good copy or retrain it, or set baseline.from to another Keras 3 file "
                             "(saved with model.save('....keras'))", shown=where)
    contract = detect_contract(model, data.features, where)
    compiled = compile_config(path)
    task, rule = task_of(data)
    check_task(model, compiled, task, data.label, rule, where)
    if task == REGRESSION:
        if params.data.labels:
            raise ModelSourceError(f"parameter 'data.labels' lists {params.data.labels}, but the label "
                                   f"'{data.label}' is read as regression ({rule}): a regressor has no classes to "
                                   "order; remove data.labels")
        model, compiled = probability_output(model, compiled, where, task=REGRESSION)
        return ModelBundle(model, data.features, [], data.label, contract, compiled, task=REGRESSION)
    known = data.classes("initial_train", "initial_test")
    labels = typed_labels(params.data.labels, known) if params.data.labels else known
    check_output_width(model, labels, where)
    unknown = [label for label in known if label not in labels]
    if unknown:
        raise ModelShapeError(f"{where}: the initial data has label {unknown[0]!r}, which data.labels does not list; "
                              "list every label the model outputs, in output order")
    model, compiled = probability_output(model, compiled, where)
    return ModelBundle(model, data.features, labels, data.label, contract, compiled)


def task_of(data: Prepared) -> tuple[str, str]:
    """The data's task and why it applied, as summary.json says them."""
    if data.summary.task is None:
        return CLASSIFICATION, NO_TASK_RULE
    return data.summary.task, data.summary.task_rule or f"summary.json: task {data.summary.task}"


def check_bundle_task(bundle: ModelBundle, data: Prepared, where: str) -> None:
    """A retrainlab model (which says its task) given data of the other task is one line
    naming its head, the label, the task setting and why."""
    task, rule = task_of(data)
    if bundle.task != task:
        raise task_conflict(bundle.model, bundle.task, task, data.label, rule, where)


def typed_labels(listed: list, known: list) -> list:
    """data.labels typed as prepare typed the data's labels: numbers (whole ones as int) or text."""
    if not (known and all(isinstance(k, (int, float)) for k in known)):
        return [str(v) for v in listed]
    whole = all(isinstance(k, int) for k in known)

    def number(value):
        text = str(value).strip()
        if whole and re.fullmatch(r"[+-]?\d+", text):
            return int(text)  # exactly: through float, integers beyond 2**53 would merge
        as_float = float(text)
        return int(as_float) if whole and as_float.is_integer() else as_float

    try:
        return [number(v) for v in listed]
    except ValueError:
        raise ModelSourceError(f"parameter 'data.labels' lists {listed}, but the data's labels are numbers") from None

def label_order(params: Params) -> str:
    """What the run says of the output order."""
    return "data.labels" if params.data.labels else "the initial data's labels, sorted"


def check_columns(bundle: ModelBundle, data: Prepared, where: str) -> None:
    theirs = {f.name: f.kind for f in bundle.features}
    ours = {f.name: f.kind for f in data.features}
    for name, kind in theirs.items():
        if ours.get(name) != kind:
            problem = "has no column" if name not in ours else f"has it as {ours[name]}, not {kind}"
            raise ModelSourceError(f"{where}: the model reads column '{name}' but the data {problem}; "
                                   "give the new data the columns the model was trained on")
    if bundle.label_column != data.label:
        raise ModelSourceError(f"{where}: the model predicts '{bundle.label_column}' but the data's label column is "
                               f"'{data.label}'; set data.files.label")
