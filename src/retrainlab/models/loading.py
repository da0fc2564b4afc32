"""Opening a model for the data: the one entry, in one direction. Each step lives in its own
module and is taken once, in this order: the file (`files`: a Keras 3 file in safe mode, its
weights finite, how it was compiled), its inputs (`inputs`: how it reads the columns), its
outputs (`outputs`: the task, which label each unit is, probabilities), then the bundle the
rest of the code uses (`bundle`).

- `adopt`: a Keras file the user brings (`baseline.from`, or the Keras flavour's file of a
  registered version);
- `open_bundle`: a retrainlab bundle directory (a pipeline's model folder, a registered
  version's files), whose meta.json says its columns, labels and task: read as a bundle,
  then checked against the data.

Where the files come from (a path, the registry) is the pipeline's business
(retrainlab.pipeline.user_model)."""

from __future__ import annotations

from pathlib import Path

from retrainlab.config import Params
from retrainlab.data import Prepared
from retrainlab.models.bundle import ModelBundle
from retrainlab.models.files import compile_config, load_keras
from retrainlab.models.inputs import check_columns, detect_contract
from retrainlab.models.outputs import adopted_outputs, task_conflict, task_of

BROUGHT_REMEDY = ("restore a good copy or retrain it, or set baseline.from to another Keras 3 file "
                  "(saved with model.save('....keras'))")


def adopt(path: Path, data: Prepared, params: Params, where: str) -> ModelBundle:
    """A brought Keras file as a ModelBundle for the data: the file (weights finite, how it
    was compiled), how it reads the columns, its outputs (task, labels, probabilities), then
    the bundle (`where` names it in errors)."""
    model = load_keras(path, BROUGHT_REMEDY, shown=where)
    compiled = compile_config(path)
    contract = detect_contract(model, data.features, where)
    model, compiled, task, labels = adopted_outputs(model, compiled, data, params, where)
    return ModelBundle(model, data.features, labels, data.label, contract, compiled, task=task)


def open_bundle(directory: Path, data: Prepared, where: str) -> ModelBundle:
    """A retrainlab bundle directory, read (its file, its meta.json) and checked against the
    data: the columns it reads and the label it predicts, then its task (`where` names it)."""
    bundle = ModelBundle.load(directory)
    check_columns(bundle.features, bundle.label_column, data, where)
    check_bundle_task(bundle, data, where)
    return bundle


def check_bundle_task(bundle: ModelBundle, data: Prepared, where: str) -> None:
    """A retrainlab model (which says its task) given data of the other task is one line
    naming its head, the label, the task setting and why."""
    task, rule = task_of(data)
    if bundle.task != task:
        raise task_conflict(bundle.model, bundle.task, task, data.label, rule, where)
