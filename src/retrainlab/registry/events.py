"""A move of the `champion` alias as one typed record: what promotion and rollback return,
what the CLI shows, and what the versions' `history.<time>.<action>` tags keep, in the
shape those tags always had."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any

PROMOTE, ROLLBACK = "promote", "rollback"


@dataclasses.dataclass(frozen=True)
class Gate:
    name: str
    passed: bool
    detail: str


@dataclasses.dataclass(frozen=True)
class Figures:
    """A version's target and primary figure on the old and new test sets (accuracies, or a
    regressor's RMSE: `metric`), each None where it was not recorded."""

    target: float | None = None
    old: float | None = None
    new: float | None = None
    metric: str = "acc"

    def to_json(self) -> dict[str, Any]:
        """In the tags' shape: `acc_old`, `acc_new` (`rmse_old`, ...), and the target if there is one."""
        out = {f"{self.metric}_old": self.old, f"{self.metric}_new": self.new}
        return out if self.target is None else out | {"target": self.target}

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Figures:
        metric = next((k[:-4] for k in raw if k.endswith("_old")), "acc")
        return cls(raw.get("target"), raw.get(f"{metric}_old"), raw.get(f"{metric}_new"), metric)


@dataclasses.dataclass(frozen=True)
class Recorded:
    """What the pipeline recorded for a version: its own seed's figures, and the means over
    the seeds that the report quotes."""

    seed: str | None
    seeds: str | None  # how many seeds the means are over
    own: Figures
    means: Figures

    def to_json(self) -> dict[str, Any]:
        return {"seed": self.seed, "seeds": self.seeds, "own": self.own.to_json(), "means": self.means.to_json()}

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Recorded:
        return cls(raw["seed"], raw["seeds"], Figures.from_json(raw["own"]), Figures.from_json(raw["means"]))


@dataclasses.dataclass(frozen=True)
class Event:
    """A promotion (with its gates and the figures measured and recorded) or a rollback."""

    action: str  # PROMOTE or ROLLBACK
    at: str  # UTC, ISO 8601 to the millisecond
    version: str  # the version that is champion now
    from_version: str | None  # the one that was, if any
    reason: str
    forced: bool = False  # a promotion whose failed gates were overridden
    gates: tuple[Gate, ...] = ()
    measured: Figures | None = None  # a promotion's figures, measured now on the test sets
    recorded: Recorded | None = None  # a promotion's figures, as the pipeline recorded them

    def to_json(self) -> dict[str, Any]:
        out = {"action": self.action, "at": self.at, "version": self.version, "from_version": self.from_version}
        if self.action == ROLLBACK:
            return out | {"reason": self.reason}
        measured = self.measured or Figures()
        return out | {
            "forced": self.forced, "reason": self.reason, "gates": [dataclasses.asdict(g) for g in self.gates],
            **({"target": measured.target} | measured.to_json()),
            "recorded": None if self.recorded is None else self.recorded.to_json(),
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Event:
        if raw["action"] == ROLLBACK:
            return cls(ROLLBACK, raw["at"], raw["version"], raw["from_version"], raw["reason"])
        return cls(
            raw["action"], raw["at"], raw["version"], raw["from_version"], raw["reason"], bool(raw["forced"]),
            tuple(Gate(**g) for g in raw["gates"]), Figures.from_json(raw),
            None if raw["recorded"] is None else Recorded.from_json(raw["recorded"]),
        )

    @property
    def tag(self) -> tuple[str, str]:
        """The version tag that keeps it: `history.<time>.<action>` and its JSON."""
        stamp = self.at.replace(":", "").replace("-", "")
        return f"history.{stamp}.{self.action}", json.dumps(self.to_json())[:5000]

    def summary_tags(self) -> dict[str, str]:
        """`last_<action>.<key>`: the latest of its kind, at a glance in the UI."""
        return {f"last_{self.action}.{key}": str(getattr(self, key)) for key in ("action", "at", "from_version",
                                                                                   "reason")}
