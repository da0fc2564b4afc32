"""`reports/comparison.json` as one typed record: the compare step's recommendation, read and
written here only.

The compare step writes it (retrainlab.reporting.report); `retrainlab status` and promotion
read which option it recommends. On disk it keeps the shape it always had: the headline,
the recommended and the best option, the rule that chose, whether the evidence separated
them, the reasons, the kinds of change and their checks, the seeds, the policy, the
diagnosis and a row per strategy (the report's table).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from retrainlab.base import layout
from retrainlab.base.errors import RetrainlabError
from retrainlab.base.files import write_text_atomically
from retrainlab.decision.change import Change
from retrainlab.decision.diagnosis import Diagnosis


class RecommendationError(RetrainlabError):
    """reports/comparison.json is there but cannot be read as a recommendation."""


@dataclasses.dataclass(frozen=True)
class Recommendation:
    headline: str
    recommended: str
    best: str  # the best target; the recommended one may be a cheaper option within the tolerance
    rule: str  # why the recommended option, in a few words
    separated: bool  # whether the evidence told the best from every other option
    fallback: bool  # no option was under the forgetting ceiling
    forgetting_ceiling: float | None  # None: no old traffic, no ceiling
    cost_metric: str
    reasons: list[str]
    changes: tuple[Change, ...]
    checks: list[str]  # for each change, whether the recommendation agrees with what it calls for
    seeds: dict[str, Any]  # the extra seeds: added per option, and why they stopped
    policy: dict[str, Any]  # the compare section the recommendation was made under
    diagnostics: Diagnosis
    strategies: dict[str, dict[str, Any]]  # the report's row of each option

    def to_json(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        return out | {
            "changes": [{"kind": c.kind, "evidence": c.evidence, "calls_for": c.calls_for} for c in self.changes],
            "diagnostics": self.diagnostics.to_json(),
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Recommendation:
        ceiling = raw["forgetting_ceiling"]
        return cls(
            headline=str(raw["headline"]), recommended=str(raw["recommended"]), best=str(raw["best"]),
            rule=str(raw["rule"]), separated=bool(raw["separated"]), fallback=bool(raw["fallback"]),
            forgetting_ceiling=None if ceiling is None else float(ceiling), cost_metric=str(raw["cost_metric"]),
            reasons=[str(r) for r in raw["reasons"]],
            changes=tuple(Change(str(c["kind"]), str(c["evidence"])) for c in raw["changes"]),
            checks=[str(c) for c in raw["checks"]], seeds=dict(raw["seeds"]), policy=dict(raw["policy"]),
            diagnostics=Diagnosis.from_json(raw["diagnostics"]),
            strategies={str(name): dict(row) for name, row in raw["strategies"].items()},
        )


def write_recommendation(root: Path, recommendation: Recommendation) -> None:
    text = json.dumps(recommendation.to_json(), indent=2, default=str) + "\n"
    write_text_atomically(root / layout.REPORT_JSON, text)


def read_recommendation(root: Path) -> Recommendation | None:
    """The last compare step's recommendation; None where there is none yet. One that cannot
    be read is a `RecommendationError` naming the file and what is wrong, on one line."""
    path = root / layout.REPORT_JSON
    if not path.is_file():
        return None
    try:
        return Recommendation.from_json(json.loads(path.read_text()))
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        said = (str(exc).splitlines() or [""])[0]
        raise RecommendationError(f"{layout.REPORT_JSON}: cannot be read ({type(exc).__name__}: {said})") from None
