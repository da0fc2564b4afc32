"""`data/prepared/summary.json` as one typed record, read and written here only.

The prepare step writes it; every later step reads it through `Prepared.summary`. On disk it
keeps the shape it always had: the source and scenario, the label, the features, the rows
and classes of each split, the classes only the new data has, what cleaning did to each
part, the notes a source adds (the label's type and any conversion, the files' delimiters,
an array's shape, which kind each non-numeric column got and why, each categorical column's
distinct values and whether it was flagged as a row key, the task and its rule, a
regression label's figures per split) where there are any, and what the data was made from.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from retrainlab.base import layout
from retrainlab.base.errors import PipelineError
from retrainlab.base.files import write_text_atomically
from retrainlab.data.schema import Feature


@dataclasses.dataclass(frozen=True)
class PreparedSummary:
    source: str
    scenario: str | None  # None for the user's files and arrays
    label: str
    features: tuple[Feature, ...]
    rows: dict[str, int]  # per split
    classes: dict[str, list]  # per split, sorted
    new_classes: list  # in the incremental training rows only
    cleaning: dict[str, dict[str, int]]  # per part: rows read, dropped, imputed, overflowed
    label_type: str | None = None  # "number" or "text"
    label_conversion: str | None = None  # why labels were compared as text
    label_cleaning: str | None = None  # labels that differed only by surrounding spaces, merged
    files: dict[str, dict[str, Any]] | None = None  # per file: how it was read (its delimiter)
    input_shape: tuple[int, ...] | None = None  # an array's shape, per row
    inputs: dict[str, Any] | None = None  # what the data is made from (retrainlab.data.inputs)
    # The rule that tells text from categorical columns, and which kind each such column got and why.
    feature_kinds: dict[str, Any] | None = None
    # Per categorical column: its distinct values in the old and the new data, and why it was
    # flagged (a row key kept because data.files.features lists it), if it was.
    categories: dict[str, dict[str, Any]] | None = None
    task: str | None = None  # classification or regression (None: a summary from before tasks, a classifier's)
    task_rule: str | None = None  # why (retrainlab.data.task)
    label_stats: dict[str, dict[str, float]] | None = None  # a regression label's mean, std, min, max per split
    # The user's measure resolved against this data (retrainlab.measure.choice): every later
    # step scores with it (None: a summary from before measures were chosen, the task's default).
    scoring: dict[str, Any] | None = None

    # What a source may note (retrainlab.data.schema, .sources): written only when noted.
    NOTES: ClassVar = ("label_type", "label_conversion", "label_cleaning", "files", "input_shape", "feature_kinds",
                       "categories", "task", "task_rule", "label_stats", "scoring")

    def to_json(self) -> dict[str, Any]:
        out = {
            "source": self.source,
            "scenario": self.scenario,
            "label": self.label,
            "features": [dataclasses.asdict(f) for f in self.features],
            "rows": dict(self.rows),
            "classes": {split: list(labels) for split, labels in self.classes.items()},
            "new_classes": list(self.new_classes),
            "cleaning": {part: dict(counts) for part, counts in self.cleaning.items()},
        }
        for note in self.NOTES:
            value = getattr(self, note)
            if value is not None:
                out[note] = list(value) if note == "input_shape" else value
        out["inputs"] = self.inputs
        return out

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> PreparedSummary:
        """The record from summary.json's mapping; a missing or mistyped entry is a `KeyError`
        or `TypeError`, which `read_summary` turns into one line."""
        shape = raw.get("input_shape")
        return cls(
            source=str(raw["source"]),
            scenario=raw["scenario"],
            label=raw["label"],
            features=tuple(Feature(**f) for f in raw["features"]),
            rows={split: int(n) for split, n in raw["rows"].items()},
            classes={split: list(labels) for split, labels in raw["classes"].items()},
            new_classes=list(raw["new_classes"]),
            cleaning={part: dict(counts) for part, counts in raw["cleaning"].items()},
            label_type=raw.get("label_type"),
            label_conversion=raw.get("label_conversion"),
            label_cleaning=raw.get("label_cleaning"),
            files=raw.get("files"),
            input_shape=None if shape is None else tuple(int(n) for n in shape),
            inputs=raw.get("inputs"),
            feature_kinds=raw.get("feature_kinds"),
            categories=raw.get("categories"),
            task=raw.get("task"),
            task_rule=raw.get("task_rule"),
            label_stats=raw.get("label_stats"),
            scoring=raw.get("scoring"),
        )


def write_summary(root: Path, summary: PreparedSummary) -> None:
    write_text_atomically(root / layout.SUMMARY, json.dumps(summary.to_json(), indent=2) + "\n")


def read_summary(root: Path) -> PreparedSummary:
    path = root / layout.SUMMARY
    if not path.is_file():
        raise PipelineError(f"{layout.SUMMARY}: not found; run the prepare step first (dvc repro prepare)")
    try:
        return PreparedSummary.from_json(json.loads(path.read_text()))
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        said = (str(exc).splitlines() or [""])[0]
        raise PipelineError(f"{layout.SUMMARY}: cannot be read ({type(exc).__name__}: {said}); "
                            "run the prepare step (dvc repro prepare)") from None
