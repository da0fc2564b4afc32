"""Loading a model runs one way through models/ (docs/ARCHITECTURE.md, "Loading a model"): the
file, its inputs, its outputs, the bundle, then the one entry; no step imports a later one,
nor what changes a model (vocabulary, surgery, build), counting imports inside functions.
A saved bundle opened through the entry is checked against the data's columns."""

import pytest

from retrainlab.base.errors import ModelSourceError
from retrainlab.base.tasks import CLASSIFICATION
from retrainlab.models.loading import open_bundle

from ..test_architecture import imports, modules
from .test_regression_models import classes, own_model, project

LOADING = ["files", "inputs", "outputs", "bundle", "loading"]  # each may import only those before it
CHANGING = ["vocabulary", "surgery", "build"]  # they take a loaded model: never imported by a step


def backward(order: list[str], known: dict) -> list[str]:
    """Each import of a loading step that reaches a later step or a module that changes models."""
    package = "retrainlab.models."
    later = {package + name: set(order[i + 1:]) | set(CHANGING) for i, name in enumerate(order)}
    found = []
    for name in order:
        module = package + name
        for target, node, _ in imports(module, known[module], known):
            if target.removeprefix(package) in later[module]:
                found.append(f"models/{name}.py:{node.lineno} imports {target}")
    return found


def test_the_steps_of_loading_import_only_the_steps_before_them():
    known = modules()
    assert {f"retrainlab.models.{name}" for name in LOADING + CHANGING} <= set(known)
    assert backward(LOADING, known) == []


def test_the_check_sees_a_step_that_reaches_forward():
    """Read in the other order, the same modules import later ones: the check can fail."""
    assert "models/loading.py" in " ".join(backward(list(reversed(LOADING)), modules()))


def test_a_saved_bundle_opens_for_data_with_its_columns_and_is_refused_in_one_line_for_other(tmp_path, tiny_params):
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    ours.mkdir(), theirs.mkdir()
    _, prepared = project(ours, tiny_params, classes(120, 0), classes(60, 1))
    own_model(ours, prepared.frame("initial_train"), CLASSIFICATION)  # saved in ours/bundle
    assert open_bundle(ours / "bundle", prepared, "m").labels == ["a", "b", "c"]

    old, new = (classes(n, seed).rename(columns={"f3": "g3"}) for n, seed in [(120, 0), (60, 1)])
    _, other = project(theirs, tiny_params, old, new)
    with pytest.raises(ModelSourceError, match=r"^models/baseline/seed-0: the model reads column 'f3' but the data has "
                                               r"no column; give the new data the columns the model was trained on$"):
        open_bundle(ours / "bundle", other, "models/baseline/seed-0")
