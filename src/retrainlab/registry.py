"""The MLflow model registry: the challenger, gated promotion to champion, and rollback.

Aliases: `challenger` (set by compare on the recommended version), `champion` (what you
serve), `previous-champion` (what `rollback` restores). Every promotion and rollback is
recorded on the versions as tags: when, from which version, why, with which figures.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from retrainlab import comparison, evaluation, layout
from retrainlab.config import CompareParams, Params
from retrainlab.data import Prepared, load_prepared
from retrainlab.errors import RetrainlabError
from retrainlab.tracking import project_root

CHALLENGER = "challenger"
CHAMPION = "champion"
PREVIOUS = "previous-champion"


class PromotionRefused(RetrainlabError):
    """A gate failed; nothing was changed."""


@dataclasses.dataclass(frozen=True)
class Gate:
    name: str
    passed: bool
    detail: str


@dataclasses.dataclass(frozen=True)
class Measured:
    """A registered version evaluated now, on the current test sets."""

    version: str
    acc_old: float
    acc_new: float
    target: float


def gates(candidate: Measured, champion: Measured | None, recorded_forgetting: float, policy: CompareParams) -> list[Gate]:
    """The promotion gates, as pure arithmetic on what was measured.

    Forgetting is measured against the champion on the old test data when there is one,
    else it is the forgetting recorded for the version when it was trained.
    """
    result = [Gate("loads and predicts", True, f"version {candidate.version} predicted every test row")]
    if champion is None:
        result.append(Gate("not worse than the champion", True, "there is no champion yet"))
        forgetting = recorded_forgetting
    else:
        gap = champion.target - candidate.target
        result.append(
            Gate(
                "not worse than the champion",
                gap <= policy.tolerance,
                f"target {candidate.target:.4f} against champion v{champion.version}'s {champion.target:.4f}: "
                + (f"worse by {gap:.4f}, more than the tolerance {policy.tolerance:.4f}" if gap > policy.tolerance
                   else f"difference {-gap:+.4f} within the tolerance {policy.tolerance:.4f}"),
            )
        )
        forgetting = champion.acc_old - candidate.acc_old
    result.append(
        Gate(
            "forgetting under the ceiling",
            forgetting <= policy.max_forgetting,
            f"forgetting {forgetting:.4f} against the ceiling {policy.max_forgetting:.4f}"
            + ("" if forgetting <= policy.max_forgetting else f": over by {forgetting - policy.max_forgetting:.4f}"),
        )
    )
    return result


def mark_challenger(
    name: str, records: Mapping[str, Mapping[str, Any]], verdict: comparison.Verdict, parent_run_id: str
) -> str:
    """Tag every version of this execution with its figures and verdict; alias the recommended one."""
    client = MlflowClient()
    for strategy, record in records.items():
        version = str(record["mlflow"]["model_version"])
        a = verdict.assessments[strategy]
        tags = {
            "comparison.verdict": verdict.status(strategy),
            "comparison.target": f"{a.target.mean:.4f}",
            "comparison.target_ci95": f"[{a.target.low:.4f}, {a.target.high:.4f}]",
            "comparison.forgetting": f"{a.forgetting.mean:.4f}",
            "comparison.cost": f"{a.adoption_cost:.6g} {verdict.cost_metric}",
            "comparison.recommended": verdict.recommended,
            "comparison.parent_run_id": parent_run_id,
        }
        for key, value in tags.items():
            client.set_model_version_tag(name, version, key, value)
    recommended = str(records[verdict.recommended]["mlflow"]["model_version"])
    client.set_registered_model_alias(name, CHALLENGER, recommended)
    return recommended


def alias_version(name: str, alias: str) -> str | None:
    try:
        return str(MlflowClient().get_model_version_by_alias(name, alias).version)
    except MlflowException:
        return None


def measure(name: str, version: str, policy: CompareParams, data: Prepared) -> Measured:
    """Load a registered version as MLflow serves it and score it on the current test sets."""
    model = mlflow.pyfunc.load_model(f"models:/{name}/{version}")
    accs = {}
    for test_set, split in evaluation.TEST_SETS.items():
        predicted = model.predict(data.x(split))[data.label]
        accs[test_set] = evaluation.accuracy(data.y(split), predicted.to_numpy())
    target = (1 - policy.new_traffic_share) * accs["old"] + policy.new_traffic_share * accs["new"]
    return Measured(version, accs["old"], accs["new"], target)


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
) -> dict[str, Any]:
    """Move `champion` to the challenger (or `version`) if every gate passes, or if forced with a reason."""
    if force and not (reason and reason.strip()):
        raise RetrainlabError("--force needs --reason TEXT: say why the gates are overridden")
    with registry_lock(root):
        return _promote(params, version, force, reason, root)


def _promote(params: Params, version: str | None, force: bool, reason: str | None, root: Path) -> dict[str, Any]:
    name, policy = params.tracking.registered_model, params.compare
    client = MlflowClient()
    version = version or alias_version(name, CHALLENGER)
    if version is None:
        raise RetrainlabError(f"model '{name}' has no '{CHALLENGER}' alias: run the compare step or give --version")
    try:
        details = client.get_model_version(name, version)
    except MlflowException:
        raise RetrainlabError(f"model '{name}' has no version {version}") from None
    current = alias_version(name, CHAMPION)
    if current == version:
        raise RetrainlabError(f"version {version} of '{name}' is already the champion")
    data = load_prepared(root)
    candidate = _measure_or_refuse(name, version, policy, data)
    champion = measure(name, current, policy, data) if current else None
    recorded = float(details.tags.get("forgetting", 0.0))
    results = gates(candidate, champion, recorded, policy)
    failed = [g for g in results if not g.passed]
    if failed and not force:
        raise PromotionRefused(
            f"promotion of {name} v{version} refused, nothing changed: "
            + "; ".join(f"gate '{g.name}' failed ({g.detail})" for g in failed)
        )
    if current:
        client.set_registered_model_alias(name, PREVIOUS, current)
    client.set_registered_model_alias(name, CHAMPION, version)
    event = {
        "action": "promote",
        "at": _now(),
        "version": version,
        "from_version": current,
        "forced": bool(failed),
        "reason": reason or "all gates passed",
        "gates": [dataclasses.asdict(g) for g in results],
        "target": candidate.target,
        "acc_old": candidate.acc_old,
        "acc_new": candidate.acc_new,
    }
    _record(name, version, event)
    return event


def rollback(params: Params, reason: str | None = None, root: Path = Path(".")) -> dict[str, Any]:
    """Give `champion` back to `previous-champion`; the version rolled back from becomes the previous one."""
    with registry_lock(root):
        return _rollback(params, reason)


def _rollback(params: Params, reason: str | None) -> dict[str, Any]:
    name = params.tracking.registered_model
    previous, current = alias_version(name, PREVIOUS), alias_version(name, CHAMPION)
    if previous is None:
        raise RetrainlabError(f"model '{name}' has no '{PREVIOUS}' alias: there is nothing to roll back to")
    client = MlflowClient()
    client.set_registered_model_alias(name, CHAMPION, previous)
    if current:
        client.set_registered_model_alias(name, PREVIOUS, current)
    event = {"action": "rollback", "at": _now(), "version": previous, "from_version": current,
             "reason": reason or "rollback requested"}
    _record(name, previous, event)
    if current:
        _record(name, current, event)
    return event


def _measure_or_refuse(name: str, version: str, policy: CompareParams, data: Prepared) -> Measured:
    try:
        return measure(name, version, policy, data)
    except RetrainlabError:
        raise
    except Exception as exc:  # any failure to load or predict is the first gate failing
        raise PromotionRefused(
            f"promotion of {name} v{version} refused, nothing changed: gate 'loads and predicts' failed "
            f"({type(exc).__name__}: {exc})".splitlines()[0]
        ) from None


def _record(name: str, version: str, event: dict[str, Any]) -> None:
    """The event as version tags: a summary of the latest, and a history entry of its own."""
    client = MlflowClient()
    stamp = event["at"].replace(":", "").replace("-", "")
    client.set_model_version_tag(name, version, f"history.{stamp}.{event['action']}", json.dumps(event)[:5000])
    for key in ("action", "at", "from_version", "reason"):
        client.set_model_version_tag(name, version, f"last_{event['action']}.{key}", str(event.get(key)))


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + f".{int(time.time() * 1000) % 1000:03d}Z"
