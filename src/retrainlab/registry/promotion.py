"""The MLflow model registry: the challenger, gated promotion to champion, and rollback.

Aliases: `challenger` (set by compare on the recommended version), `champion` (what you
serve), `previous-champion` (what `rollback` restores). Every promotion and rollback is
recorded on the versions as tags: when, from which version, why, with which figures.

The registry is trusted, the artifact store is not: a version is loaded only from a copy of
its files whose digest matches the one recorded on it when it was registered.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import logging
import math
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from retrainlab.base import layout
from retrainlab.base.errors import ModelFileError, RetrainlabError, UnusableModel
from retrainlab.base.tasks import CLASSIFICATION
from retrainlab.config import CompareParams, Params
from retrainlab.data import Prepared, load_prepared
from retrainlab.decision import comparison
from retrainlab.decision.recommendation import RecommendationError, read_recommendation
from retrainlab.measure import evaluation
from retrainlab.measure.evaluation import CLASSIFIER
from retrainlab.measure.record import StrategyRecord, rounded
from retrainlab.measure.record import load as load_record
from retrainlab.measure.task import (COST, FIGURES, FORGETTING, Measure, measure_of_stem, measure_of_summary,
                                     rules_of)
from retrainlab.registry.events import PROMOTE, ROLLBACK, Event, Figures, Gate, Recorded
from retrainlab.tracking.pyfunc_model import MODEL_DIGEST_TAG, download_model
from retrainlab.tracking.store import project_root

CHALLENGER = "challenger"
CHAMPION = "champion"
PREVIOUS = "previous-champion"
CEILING_TAG = "comparison.forgetting_ceiling"  # the forgetting ceiling the comparison applied to the version
# The rest of what the comparison says of a version, as JSON: the means of its figure on all the
# test data and of its forgetting, its target's interval, its cost to adopt, the option recommended
# and the pipeline run that compared it.
DETAILS_TAG = "comparison.details"
# The losses a version's strategy run recorded: NaN or inf means training diverged.
def recorded_loss_names(measure: Measure) -> tuple[str, ...]:
    """The figures whose finiteness the gate checks: a classifier's losses, a regressor's RMSEs."""
    return tuple(measure.name(measure.loss, test_set) for test_set in evaluation.TEST_SETS)


RECORDED_LOSSES = recorded_loss_names(CLASSIFIER)
MEASURE_TAG = "measure"  # the measure a version's figure tags are in (compare.metric)

log = logging.getLogger(__name__)


class PromotionRefused(RetrainlabError):
    """A gate failed; nothing was changed."""


class ModelUnavailable(RetrainlabError):
    """A version's files are missing from the artifact store, or are not those registered."""


@dataclasses.dataclass(frozen=True)
class Measured:
    """A registered version evaluated now, on the current test sets: its primary figure
    (`metric`'s stem: `acc`, `f1`, a regressor's `rmse`) on the old and the new data, and its
    target; a regressor's MAE target too."""

    version: str
    old: float
    new: float
    target: float
    metric: str = "acc"
    mae_target: float | None = None
    task: str = CLASSIFICATION

    @property
    def measure(self) -> Measure:
        return measure_of_stem(self.metric, self.task)


@dataclasses.dataclass(frozen=True)
class Constant:
    """A constant prediction the candidate must beat: its target, and how the gate names it."""

    gate: str  # "better than the majority class"
    target: float
    what: str  # "always predicting the most frequent class of the training data"
    figure: str = "target"  # the candidate's figure compared: "target" or "mae_target"


def gates(
    candidate: Measured,
    champion: Measured | None,
    recorded_forgetting: float,
    policy: CompareParams,
    *,
    majority_target: float | None = None,
    losses: Mapping[str, float | None],
    constants: tuple[Constant, ...] = (),
    ceiling: float | None = None,
) -> list[Gate]:
    """The promotion gates, as pure arithmetic on what was measured, in the direction and the
    units of the candidate's figure (its measure).

    `constants` are the constant predictions it must beat (`majority_target`: a classifier's
    one, always predicting the training data's most frequent class; a regressor's: the
    training mean on RMSE and the median on MAE); `losses` are the losses recorded for the
    version (a regressor's: its RMSEs; None where missing). Forgetting is measured against
    the champion on the old test data when there is one, else it is the forgetting recorded
    for the version when it was trained. A regressor's tolerance and ceiling are shares of
    the champion's error; without a champion the ceiling is `ceiling`, the one the comparison
    applied to the version (its report's), or, for a version no comparison marked, a share of
    the error the candidate started from.
    """
    m = candidate.measure
    if majority_target is not None:
        constants = (Constant("better than the majority class", majority_target,
                              "always predicting the most frequent class of the training data"), *constants)
    result = [Gate("loads and predicts", True, f"version {candidate.version} predicted every test row")]
    result.append(_finite_loss_gate(losses))
    f = m.spec
    for constant in constants:
        mine = getattr(candidate, constant.figure)
        better = mine is not None and m.goodness(mine) > m.goodness(constant.target)
        name = "target" if constant.figure == "target" else "MAE target"
        result.append(Gate(constant.gate, better, f"{name} {mine:{f}} against {constant.target:{f}} for "
                           f"{constant.what}" + ("" if better else ": no better than that")))
    if champion is None:
        result.append(Gate("not worse than the champion", True, "there is no champion yet"))
        forgetting = recorded_forgetting
        if ceiling is None:
            ceiling = comparison.forgetting_ceiling(policy, m.scale(candidate.old - recorded_forgetting))
    else:
        gap = m.improvement(champion.target, candidate.target)  # how much worse the candidate is
        tolerance = policy.tolerance * m.scale(champion.target)
        result.append(
            Gate(
                "not worse than the champion",
                gap <= tolerance,
                f"target {candidate.target:{f}} against champion v{champion.version}'s {champion.target:{f}}: "
                + (f"worse by {gap:{f}}, more than the tolerance {tolerance:{f}}" if gap > tolerance
                   else f"difference {-gap:+{f}} within the tolerance {tolerance:{f}}"),
            )
        )
        forgetting = m.forgetting(champion.old, candidate.old)
        ceiling = comparison.forgetting_ceiling(policy, m.scale(champion.old))  # the report's rule, on the champion
    result.append(
        Gate(
            "forgetting under the ceiling",
            forgetting <= ceiling,
            f"forgetting {m.number(forgetting)} against the ceiling {comparison.ceiling_text(ceiling, m)}"
            + ("" if forgetting <= ceiling else f": over by {m.number(forgetting - ceiling)}"),
        )
    )
    return result


def _finite_loss_gate(losses: Mapping[str, float | None]) -> Gate:
    finite = bool(losses) and all(v is not None and math.isfinite(v) for v in losses.values())
    shown = ", ".join(f"{k} {'missing' if v is None else f'{v:.4f}'}" for k, v in losses.items()) or "no loss"
    why = "" if finite else ": training diverged or was not logged"
    return Gate("finite loss", finite, f"{shown} recorded{why}")


# Mutation testing (make mutation, docs/TESTING.md) covers the gates above, pure arithmetic;
# what follows reads and moves the registry, and tests/registry/test_registry*.py run it for real.
# pragma: no mutate block
def mark_challenger(
    name: str, records: Mapping[str, StrategyRecord], verdict: comparison.Verdict, parent_run_id: str
) -> str:
    """Tag every version of this execution with its figures and verdict; alias the recommended one."""
    client = MlflowClient()
    for strategy, record in records.items():
        version = record.version
        a = verdict.assessments[strategy]
        m = verdict.measure
        figures = {m.all: record.mean(m.all), FORGETTING: a.forgetting.mean, "target_ci_low": a.target.low,
                   "target_ci_high": a.target.high}
        details = rounded({k: v for k, v in figures.items() if v is not None})
        details |= {"cost_to_adopt": float(f"{a.adoption_cost:.6g}"), "cost_metric": verdict.cost_metric,
                    "recommended": verdict.recommended, "parent_run_id": parent_run_id}
        # A few named tags, those code reads back and those a person filters the versions on.
        tags = {
            "comparison.verdict": verdict.status(strategy),
            CEILING_TAG: repr(verdict.ceiling),  # in full: the gate applies it, and prints it as the report does
            DETAILS_TAG: json.dumps(details),
        }
        # The report's means, over every seed it weighed (extra seeds included): one source
        # for "the report's mean" wherever a version's figures are shown. The strategy step
        # wrote its own seeds' means before the comparison added any.
        tags |= figure_tags(m, None, record.means, a.seeds, a.target.mean)
        for key, value in tags.items():
            client.set_model_version_tag(name, version, key, value)
    recommended = records[verdict.recommended].version
    client.set_registered_model_alias(name, CHALLENGER, recommended)
    return recommended


def figure_tags(measure: Measure, own: Mapping[str, float] | None, means: Mapping[str, float], seeds: int,
                target: float | None = None) -> dict[str, str]:
    """A version's figures as the tags `recorded_figures` and the forgetting gate read back, as
    the report writes them: its own seed's primary figure on the old and the new data and its
    forgetting (`own`, at registration), the means over `seeds` seeds (`mean_acc_old`, ...)
    and, once compared, the mean target. Its other figures are in its description and
    DETAILS_TAG."""
    shown = "{:.4f}" if not measure.relative else "{:.6g}"
    tags = {MEASURE_TAG: measure.metric}
    tags |= {} if own is None else {k: shown.format(own[k]) for k in (measure.old, measure.new, FORGETTING)}
    tags |= {f"mean_{k}": shown.format(means[k]) for k in (measure.old, measure.new) if k in means}
    return tags | ({} if target is None else {"mean_target": shown.format(target)}) | {"mean_over_seeds": str(seeds)}


def recorded_figures(tags: Mapping[str, str], policy: CompareParams) -> Recorded:
    """What the pipeline recorded for a version: its own seed's target and accuracies, and
    the means over the seeds that the report quotes (absent for versions without them)."""
    def figure(key: str) -> float | None:
        try:
            return float(tags[key])
        except (KeyError, ValueError):
            return None

    m = tagged_measure(tags)

    def figures(prefix: str) -> Figures:
        accs = {k: figure(prefix + k) for k in (m.old, m.new)}
        target = None if None in accs.values() else m.target(accs, policy.new_traffic_share)
        if prefix and figure(prefix + "target") is not None:  # the report's own mean, not one of rounded means
            target = figure(prefix + "target")
        return Figures(target, accs[m.old], accs[m.new], m.primary)

    return Recorded(tags.get("seed"), tags.get("mean_over_seeds"), figures(""), figures("mean_"))


def tagged_measure(tags: Mapping[str, str]) -> Measure:
    """The measure a version's figures were tagged in (MEASURE_TAG; a version tagged before
    measures were chosen: the one whose `STEM_old` tag it has)."""
    metric = tags.get(MEASURE_TAG)
    if metric in FIGURES or metric == COST:
        return measure_of_stem(FIGURES[metric].stem if metric in FIGURES else "cost")
    return measure_of_stem(next((k[:-4] for k in tags if k.endswith("_old") and not k.startswith("mean_")), "acc"))


def alias_version(name: str, alias: str) -> str | None:
    try:
        return str(MlflowClient().get_model_version_by_alias(name, alias).version)
    except MlflowException:
        return None


def measure(name: str, version: str, policy: CompareParams, data: Prepared) -> Measured:
    """Load a registered version as MLflow serves it, from a verified copy of its files, have
    it predict every test row as serving would, and score it on the current test sets in the
    data's measure."""
    with tempfile.TemporaryDirectory() as scratch:
        try:
            model = mlflow.pyfunc.load_model(str(verified_copy(name, version, Path(scratch))))
        except UnusableModel as exc:  # named by its version, not by the copy's folder
            raise UnusableModel(f"version {version} of '{name}'", exc.detail,
                                "it must not be served: register a good model (dvc repro) and promote that") from None
        for split in evaluation.TEST_SETS.values():
            model.predict(data.x(split))  # as `mlflow models serve` answers: it must not fail
        bundle = model.unwrap_python_model().bundle
        return evaluated(version, bundle.predict, bundle.labels, data, policy)


def evaluated(version: str, predict, labels, data: Prepared, policy: CompareParams) -> Measured:
    """The figures of `predict` (probabilities over `labels`, or a regressor's numbers) on the
    test sets, in the data's measure, by the evaluation every strategy is scored with."""
    m = measure_of_summary(data.summary)
    tests = {t: [(data.x(split), data.y(split))] for t, split in evaluation.TEST_SETS.items()}
    figures = evaluation.evaluate(predict, labels, tests, measure=m, scoring=rules_of(data.summary))
    share = policy.new_traffic_share
    mae = (1 - share) * figures["mae_old"] + share * figures["mae_new"] if m.regression else None
    return Measured(version, figures[m.old], figures[m.new], m.target(figures, share), m.primary, mae, m.task)


def verified_copy(name: str, version: str, directory: Path) -> Path:
    """Download a version's files into `directory` and return where they are, refusing
    (ModelUnavailable) if they are missing or their digest is not the one registered:
    loading a model runs its code, so only files the registry vouches for are loaded."""
    client = MlflowClient()
    recorded = client.get_model_version(name, version).tags.get(MODEL_DIGEST_TAG)
    if recorded is None:
        raise ModelUnavailable(
            f"version {version} of '{name}' has no '{MODEL_DIGEST_TAG}' tag (it was registered before files were "
            "digested, or the tag was removed): its files cannot be checked; refusing to load it (re-run the pipeline)"
        )
    location = client.get_model_version_download_uri(name, version)
    try:
        local, digest = download_model(location, directory)
    except (MlflowException, OSError):
        raise ModelUnavailable(
            f"the files of version {version} of '{name}' are missing from the artifact store ({location}): "
            "restore them (e.g. from a backup) or re-run the pipeline (dvc repro)"
        ) from None
    if digest != recorded:
        raise ModelUnavailable(
            f"version {version} of '{name}' does not match the digest recorded when it was registered: "
            "its files were changed in the artifact store; refusing to load it"
        )
    return local


def constant_predictions(data: Prepared, policy: CompareParams) -> tuple[Constant, ...]:
    """The constant predictions a candidate must beat, in the data's measure: a classifier's
    most frequent class; a regressor's training mean (on its target) and training median (on
    MAE), the usual dummies."""
    if not measure_of_summary(data.summary).regression:
        return (Constant("better than the majority class", majority_class_target(data, policy),
                         "always predicting the most frequent class of the training data"),)
    train = np.concatenate([data.y(split) for split in ("initial_train", "incremental_train")]).astype(float)
    made = {name: evaluated(name, lambda x, value=value: np.full(len(x), value), [], data, policy)
            for name, value in (("mean", float(train.mean())), ("median", float(np.median(train))))}
    return (Constant("better than predicting the mean", made["mean"].target,
                     f"always predicting the training mean ({float(train.mean()):.4g})"),
            Constant("better than predicting the median", made["median"].mae_target,
                     f"always predicting the training median ({float(np.median(train)):.4g})", "mae_target"))


def majority_class_target(data: Prepared, policy: CompareParams) -> float:
    """The target of always predicting the most frequent class of the training data."""
    train = pd.concat([pd.Series(data.y(split)) for split in ("initial_train", "incremental_train")])
    majority = train.value_counts().index[0]
    return evaluated("majority", lambda x: np.ones((len(x), 1)), [majority], data, policy).target


def recorded_losses(run_id: str | None, measure: Measure = CLASSIFIER) -> dict[str, float | None]:
    """The losses the version's strategy run recorded (a regressor's: its RMSEs); None for one
    missing, or a run not found."""
    try:
        metrics = MlflowClient().get_run(run_id).data.metrics if run_id else {}
    except MlflowException:
        metrics = {}
    return {name: metrics.get(name) for name in recorded_loss_names(measure)}


@contextlib.contextmanager
def registry_lock(root: Path) -> Iterator[None]:
    """Serialise promotions and rollbacks of this project, so two at once cannot interleave
    their read of the champion and their move of the aliases."""
    path = project_root(root) / layout.REGISTRY_LOCK
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def promote(
    params: Params, version: str | None = None, force: bool = False, reason: str | None = None, root: Path = Path(".")
) -> Event:
    """Move `champion` to the challenger (or `version`) if every gate passes, or if forced with a reason."""
    if force and not (reason and reason.strip()):
        raise RetrainlabError("--force needs --reason TEXT: say why the gates are overridden")
    with registry_lock(root):
        return _promote(params, version, force, reason, root)


def _promote(params: Params, version: str | None, force: bool, reason: str | None, root: Path) -> Event:
    name, policy = params.tracking.registered_model, params.compare
    client = MlflowClient()
    version = version or recommended_version(name, root)
    try:
        details = client.get_model_version(name, version)
    except MlflowException:
        raise RetrainlabError(f"model '{name}' has no version {version}") from None
    current = alias_version(name, CHAMPION)
    if current == version:
        raise RetrainlabError(f"version {version} of '{name}' is already the champion")
    data = load_prepared(root)
    refused = f"promotion of {name} v{version} refused, nothing changed: "
    candidate = _measure_or_refuse(name, version, policy, data, refused + "gate 'loads and predicts' failed")
    champion = (
        _measure_or_refuse(name, current, policy, data, refused + f"the champion v{current} cannot be measured")
        if current else None
    )
    recorded = float(details.tags.get("forgetting", 0.0))
    results = gates(
        candidate, champion, recorded, policy,
        constants=constant_predictions(data, policy),
        losses=recorded_losses(details.run_id, measure_of_summary(data.summary)),
        ceiling=float(details.tags[CEILING_TAG]) if CEILING_TAG in details.tags else None,
    )
    failed = [g for g in results if not g.passed]
    if failed and not force:
        raise PromotionRefused(
            refused + "; ".join(f"gate '{g.name}' failed ({g.detail})" for g in failed)
        )
    if current:
        client.set_registered_model_alias(name, PREVIOUS, current)
    client.set_registered_model_alias(name, CHAMPION, version)
    event = Event(
        PROMOTE, _now(), version, current, reason or "all gates passed", forced=bool(failed), gates=tuple(results),
        measured=Figures(candidate.target, candidate.old, candidate.new, candidate.metric),
        recorded=recorded_figures(details.tags, policy),
    )
    _record(name, version, event)
    return event


def promotion_lines(name: str, event: Event) -> list[str]:
    """What `retrainlab promote` says: the move, each gate, the figures measured now, and those
    the registry recorded for the version: its own seed's, and the report's means with the
    number of seeds the report weighed (the comparison's extra seeds included)."""
    forced = " (forced: gates overridden)" if event.forced else ""
    said = [f"{name} v{event.version} is now '{CHAMPION}'{forced}; previous champion: {event.from_version or 'none'}"]
    said += [f"  {'pass' if gate.passed else 'FAIL'}  {gate.name}: {gate.detail}" for gate in event.gates]
    recorded = event.recorded
    for label, figures in (("measured now on the test sets", event.measured),
                           (f"recorded for this model (seed {recorded.seed})", recorded.own),
                           (f"the report's mean over {recorded.seeds} seeds", recorded.means)):
        if figures.target is not None:
            f = measure_of_stem(figures.metric).spec
            said.append(f"  {label}: target {figures.target:{f}}, {figures.metric}_old {figures.old:{f}}, "
                        f"{figures.metric}_new {figures.new:{f}}")
    return said


def recommended_version(name: str, root: Path) -> str:
    """The version the workspace's report recommends, once the registry confirms it is the one
    that run registered (not a version of the same number in another store or execution)."""
    strategy, version, run_id = _workspace_recommendation(root)
    claim = f"{layout.REPORT_JSON} recommends {strategy} = v{version} from run {run_id}"
    challenger = alias_version(name, CHALLENGER)
    elsewhere = f"; '{CHALLENGER}' points at v{challenger}" if challenger not in (None, version) else ""
    try:
        registered = MlflowClient().get_model_version(name, version).run_id
    except MlflowException:
        registered = None
    if registered != run_id:
        found = f"comes from run {registered}" if registered else "does not exist"
        raise RetrainlabError(
            f"{claim}, but version {version} of '{name}' {found} (another store or execution){elsewhere}; "
            "run dvc repro, or give --version"
        )
    if elsewhere:
        log.warning("%s%s, which a later execution marked: promoting v%s as the workspace says", claim, elsewhere,
                    version)
    return version


def _workspace_recommendation(root: Path) -> tuple[str, str, str]:
    """The recommended strategy, its model version and run, as reports/ and records/ hold them."""
    try:
        report = read_recommendation(root)
    except RecommendationError as exc:
        raise RetrainlabError(f"{exc}; run dvc repro, or give --version") from None
    if report is None:
        raise RetrainlabError(
            f"{layout.REPORT_JSON}: not found, so nothing is recommended; run the compare step (dvc repro) "
            "or give --version"
        )
    try:
        record = load_record(root, report.recommended)
        return report.recommended, record.version, record.mlflow.run_id
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise RetrainlabError(
            f"{layout.REPORT_JSON}: its recommendation cannot be read ({_first_line(exc)}); "
            "run dvc repro, or give --version"
        ) from None


def rollback(params: Params, reason: str | None = None, root: Path = Path(".")) -> Event:
    """Give `champion` back to `previous-champion`; the version rolled back from becomes the previous one."""
    with registry_lock(root):
        return _rollback(params, reason)


def _rollback(params: Params, reason: str | None) -> Event:
    name = params.tracking.registered_model
    previous, current = alias_version(name, PREVIOUS), alias_version(name, CHAMPION)
    if previous is None:
        raise RetrainlabError(f"model '{name}' has no '{PREVIOUS}' alias: there is nothing to roll back to")
    client = MlflowClient()
    client.set_registered_model_alias(name, CHAMPION, previous)
    if current:
        client.set_registered_model_alias(name, PREVIOUS, current)
    event = Event(ROLLBACK, _now(), previous, current, reason or "rollback requested")
    _record(name, previous, event)
    if current:
        _record(name, current, event)
    return event


def _measure_or_refuse(name: str, version: str, policy: CompareParams, data: Prepared, refusal: str) -> Measured:
    """Measure a version; any failure to load or predict refuses the promotion with `refusal`
    and the first line of why (files missing or changed: the reason as it is)."""
    try:
        return measure(name, version, policy, data)
    except (ModelUnavailable, ModelFileError, UnusableModel) as exc:  # its files, as registered, are no model
        raise PromotionRefused(f"{refusal}: {exc}") from None
    except RetrainlabError:
        raise
    except Exception as exc:
        raise PromotionRefused(f"{refusal} ({_first_line(exc)})") from None


def _first_line(exc: Exception) -> str:
    return f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0]}"


def _record(name: str, version: str, event: Event) -> None:
    """The event as version tags: a summary of the latest, and a history entry of its own."""
    client = MlflowClient()
    client.set_model_version_tag(name, version, *event.tag)
    for key, value in event.summary_tags().items():
        client.set_model_version_tag(name, version, key, value)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + f".{int(time.time() * 1000) % 1000:03d}Z"
