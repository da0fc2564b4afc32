"""The user's measure (params.yaml's `compare.metric`, `positive_class`, `threshold`,
`quantile`, `costs`) resolved against the data, once, by prepare: a pure function of the
settings and of what prepare counted, that either returns the `Scoring` every later step
reads from summary.json or refuses in one line (a ConfigError) before anything is written.

It refuses a measure that does not fit the task, a positive class that is not a label, a
threshold or a positive class on data that is not binary, a cost matrix that names a class
the data does not have or misses a pair, `mape` on a label with zeros, and a measure that
no model could have on a test set (recall with no row of the positive class, ROC AUC with
one class only): those are said in words, never computed as NaN.
"""

from __future__ import annotations

from collections.abc import Mapping

from retrainlab.base.errors import ConfigError
from retrainlab.base.tasks import CLASSIFICATION, REGRESSION
from retrainlab.config import CompareParams
from retrainlab.measure.task import AUTO, COST, Scoring, choices, figure_of

TEST_SPLITS = {"initial_test": "old", "incremental_test": "new"}
# The compare keys resolved here: the prepare stage's params in dvc.yaml (test_project_files.py).
READS = ("metric", "positive_class", "threshold", "quantile", "costs")
# Measures that read one class against the others: undefined on a test set without both.
NEEDS_POSITIVES = ("recall", "f1", "roc_auc", "average_precision")


def resolve(compare: CompareParams, task: str, counts: Mapping[str, Mapping[str, int]],
            zeros: Mapping[str, int] | None = None) -> Scoring:
    """The scoring of this data. `counts` are a classifier's rows per class (as text) per
    split; `zeros` a regressor's rows whose label is 0, per split."""
    metric = compare.metric
    if metric != AUTO:
        try:
            figure_of(task, metric)
        except ValueError:
            other = REGRESSION if task == CLASSIFICATION else CLASSIFICATION
            fits = f"it measures a {other} model, " if metric in choices(other) else ""
            raise ConfigError(f"parameter 'compare.metric' is {metric!r}: {fits}but this data's task is {task}; "
                              f"choose one of: {', '.join(choices(task))}") from None
    chosen = figure_of(task, metric).metric
    if task == REGRESSION:
        return _regression(compare, chosen, zeros or {})
    return _classification(compare, chosen, counts)


def _regression(compare: CompareParams, metric: str, zeros: Mapping[str, int]) -> Scoring:
    for key, given in (("positive_class", compare.positive_class is not None), ("threshold", compare.threshold != 0.5)):
        if given:
            raise ConfigError(f"parameter 'compare.{key}' is set, but this data's task is regression: a regressor has "
                              "no classes; remove it")
    if compare.costs is not None and not isinstance(compare.costs, float):
        raise ConfigError("parameter 'compare.costs' must be one number for a regressor: the cost of one unit of "
                          "absolute error (e.g. 2.5), not a cost matrix")
    if metric == "mape":
        found = {split: n for split, n in zeros.items() if n}
        if found:
            split, n = next(iter(found.items()))
            raise ConfigError(f"parameter 'compare.metric' is 'mape', but {n} row(s) of the {split} split have a "
                              "label of 0, where a percentage error is undefined; choose mae or rmse")
    return Scoring(metric=metric, quantile=compare.quantile, costs=compare.costs)


def _classification(compare: CompareParams, metric: str, counts: Mapping[str, Mapping[str, int]]) -> Scoring:
    labels = sorted({label for split in counts.values() for label, n in split.items() if n})
    binary = len(labels) == 2
    shown = ", ".join(repr(label) for label in labels[:10]) + (", ..." if len(labels) > 10 else "")
    positive, rule = None, None
    if compare.positive_class is not None:
        positive = str(compare.positive_class)
        if positive not in labels:
            raise ConfigError(f"parameter 'compare.positive_class' is {positive!r}, which is not a label of the data "
                              f"(its labels: {shown}); name one of them, or null for the rarer one")
        if not binary:
            raise ConfigError(f"parameter 'compare.positive_class' is set, but the data has {len(labels)} classes, "
                              "not two: F1, precision and recall are then macro over the classes; set it to null")
        rule = "compare.positive_class"
    elif binary:
        old = counts.get("initial_train", {})
        # The rarer label of the old training rows; a tie goes to the later label in sorted order.
        positive = min(reversed(labels), key=lambda label: old.get(label, 0))
        rule = "the less frequent label of the old training rows"
    if compare.threshold != 0.5 and not binary:
        raise ConfigError(f"parameter 'compare.threshold' is {compare.threshold:g}, but the data has {len(labels)} "
                          "classes, not two: a threshold applies to a binary classifier; set it to 0.5")
    costs = compare.costs
    if costs is not None:
        if not isinstance(costs, dict):
            raise ConfigError("parameter 'compare.costs' must be a cost matrix for a classifier, {true: {predicted: "
                              f"cost}}, for every pair of its labels ({shown})")
        costs = _cost_matrix(costs, labels, shown)
    if metric in NEEDS_POSITIVES:
        _defined_everywhere(metric, counts, positive)
    return Scoring(metric=metric, positive=positive, threshold=compare.threshold, costs=costs, positive_rule=rule)


def _cost_matrix(costs: Mapping[str, Mapping[str, float]], labels: list[str], shown: str) -> dict:
    for true, row in costs.items():
        for name in (true, *row):
            if name not in labels:
                raise ConfigError(f"parameter 'compare.costs' names class {name!r}, which the data does not have "
                                  f"(its labels: {shown})")
    for true in labels:
        for predicted in labels:
            if predicted not in costs.get(true, {}):
                raise ConfigError(f"parameter 'compare.costs' has no cost for true {true!r} predicted {predicted!r}: "
                                  "give every pair of labels a cost (0 for a right answer)")
    return {true: {predicted: float(costs[true][predicted]) for predicted in labels} for true in labels}


def _defined_everywhere(metric: str, counts: Mapping[str, Mapping[str, int]], positive: str | None) -> None:
    """Refuse a measure no model can have on a test set: a class-reading measure where the
    positive class (or, not binary, every class) has no row, ROC AUC with one class only."""
    for split, test_set in TEST_SPLITS.items():
        present = {label for label, n in counts.get(split, {}).items() if n}
        if positive is not None and positive not in present and metric in ("recall", "roc_auc", "average_precision"):
            raise ConfigError(f"parameter 'compare.metric' is {metric!r}, which is undefined on the {test_set} test set: "
                              f"it holds no row of the positive class {positive!r}; choose f1 or accuracy, or give "
                              "more rows")
        if metric == "roc_auc" and len(present) < 2:
            raise ConfigError(f"parameter 'compare.metric' is 'roc_auc', which is undefined on the {test_set} test set: "
                              "it holds one class only; choose accuracy, or give more rows")


def stale(compare: CompareParams, task: str, scoring: Mapping | None) -> str | None:
    """Why the data was scored otherwise than params.yaml now says (prepare resolved the
    measure into summary.json), in words; None when they agree. A step run by hand after a
    change of measure would weigh the old one."""
    rules = Scoring.from_json(scoring)
    now = figure_of(task, compare.metric).metric
    was = figure_of(task, rules.metric).metric
    if now != was:
        return f"compare.metric is {now!r} but the prepared data was scored with {was!r}"
    if compare.positive_class is not None and str(compare.positive_class) != rules.positive:
        return f"compare.positive_class is {str(compare.positive_class)!r} but the data was scored with {rules.positive!r}"
    if rules.positive is not None and compare.threshold != rules.threshold:
        return f"compare.threshold is {compare.threshold:g} but the data was scored at {rules.threshold:g}"
    if now == "pinball" and compare.quantile != rules.quantile:
        return f"compare.quantile is {compare.quantile:g} but the data was scored at {rules.quantile:g}"
    if now == COST and compare.costs != rules.costs and not (
            isinstance(compare.costs, dict) and _same_matrix(compare.costs, rules.costs)):
        return "compare.costs differ from those the data was scored with"
    return None


def _same_matrix(given: Mapping, resolved) -> bool:
    return isinstance(resolved, dict) and all(
        float(cost) == resolved.get(true, {}).get(predicted) for true, row in given.items()
        for predicted, cost in row.items())


def scorer(compare: CompareParams):
    """`resolve` as the prepare step takes it: task, counts, zeros -> summary.json's `scoring`."""
    return lambda task, counts, zeros: resolve(compare, task, counts, zeros).to_json()


__all__ = ["COST", "resolve", "scorer"]
