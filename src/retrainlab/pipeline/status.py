"""`retrainlab status`: where the project stands, read from its files and its MLflow store.

The last recommendation is the compare step's report; the registered model's aliases and
versions come from the store the steps log to (`tracking.tracking_uri`). It only reads: a
project without a store yet is told so, one whose records name runs in a store that is gone
is told that it is missing, and no empty store is made.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from retrainlab.base import layout
from retrainlab.base.errors import RetrainlabError
from retrainlab.config import Params
from retrainlab.decision.recommendation import Recommendation, RecommendationError, read_recommendation
from retrainlab.registry.promotion import CHALLENGER, CHAMPION
from retrainlab.tracking import store

# The newest versions listed; those an alias points at are listed whatever their age.
SHOWN_VERSIONS = 20


def lines(params: Params, root: Path | None = None) -> list[str]:
    """What `retrainlab status` prints: the recommendation, then the registered model."""
    root = root or store.project_root()
    name = params.tracking.registered_model
    return [*report_lines(read_report(root)), *registry_lines(name, read_registry(params, root))]


def read_report(root: Path) -> Recommendation | None:
    try:
        return read_recommendation(root)
    except RecommendationError as exc:
        raise RetrainlabError(f"{exc}; run dvc repro") from None


def report_lines(report: Recommendation | None) -> list[str]:
    if report is None:
        return [f"recommendation: none yet ({layout.REPORT_JSON} not found; run dvc repro)"]
    return [f"recommendation ({layout.REPORT_JSON}): {report.recommended}", f"  {report.headline}"]


def read_registry(params: Params, root: Path) -> dict[str, Any] | None:
    """The registered model's aliases and versions as {version, strategy, run_id, aliases}; None
    where it is not registered, or there is no store yet."""
    if not store.store_exists(root):
        return None
    uri = store.tracking_uri(root)
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    name = params.tracking.registered_model
    try:
        model = client.get_registered_model(name)
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            return None
        raise
    quote = next((q for q in "'\"" if q not in name), None)
    found = (client.search_model_versions(f"name = {quote}{name}{quote}") if quote
             else [v for v in client.search_model_versions() if v.name == name])
    aliases = {alias: str(version) for alias, version in (model.aliases or {}).items()}
    versions = [
        {"version": str(v.version), "strategy": v.tags.get("strategy", "?"), "run_id": v.run_id or "?",
         "aliases": sorted(alias for alias, version in aliases.items() if version == str(v.version))}
        for v in found
    ]
    return {"store": store.shown_tracking_uri(), "aliases": aliases, "versions": versions}


def registry_lines(name: str, registry: dict[str, Any] | None) -> list[str]:
    if registry is None:
        return [f"model '{name}': not registered yet (run dvc repro)"]
    aliases = registry["aliases"]
    named = ", ".join(f"{alias} v{aliases[alias]}" if alias in aliases else f"no {alias}"
                      for alias in (CHAMPION, CHALLENGER))
    others = ", ".join(f"{alias} v{v}" for alias, v in sorted(aliases.items()) if alias not in (CHAMPION, CHALLENGER))
    out = [f"model '{name}' in {registry['store']}: {named}" + (f", {others}" if others else "")]
    versions = sorted(registry["versions"], key=lambda v: int(v["version"]), reverse=True)
    shown = [v for i, v in enumerate(versions) if i < SHOWN_VERSIONS or v["aliases"]]
    width = max((len(v["strategy"]) for v in shown), default=0)
    for v in shown:
        out.append(f"  v{v['version']:<4} {v['strategy']:<{width}}  run {v['run_id']}"
                   + (f"  {', '.join(v['aliases'])}" if v["aliases"] else ""))
    if len(shown) < len(versions):
        out.append(f"  ({len(versions) - len(shown)} older versions not shown)")
    return out
