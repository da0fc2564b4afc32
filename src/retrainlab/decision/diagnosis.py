"""What the diagnostics found (retrainlab.decision.diagnostics) as one typed record: read by
the change check, the report and the compare step's run, and written into
reports/comparison.json's `diagnostics` in the shape it always had.

A classifier's label is read as classes (new ones, vanished ones, the total variation of
their mix); a regressor's, a number, as a distribution (`TargetShift`: the KS statistic,
the mean and the spread before and after), its class fields empty and `label_shift_tv`
None (`null`): between two sets of distinct numbers it would always be 1."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any

# The figures the compare step's MLflow run logs, as `diagnostics.NAME` (label_shift_tv: a
# classifier's only), a regression target's, as `diagnostics.target.NAME`, and a text column's,
# as `diagnostics.text.COLUMN.NAME`, and a categorical column's, as `diagnostics.categories.COLUMN.NAME` (NAME
# one of CATEGORY_LOGGED; the column's name as a metric's may hold it: `metric_names`).
LOGGED = ("size_ratio", "label_shift_tv", "psi_max", "psi_mean", "domain_auc")
CATEGORY_LOGGED = ("unseen_rows", "new_values")


@dataclasses.dataclass(frozen=True)
class ShiftedFeature:
    feature: str
    kind: str  # retrainlab.data.NUMERIC, CATEGORICAL or TEXT (its PSI: of the texts' lengths in tokens)
    psi: float
    ks: float | None = None  # numeric features only

    def to_json(self) -> dict[str, Any]:
        out = {"feature": self.feature, "kind": self.kind, "psi": self.psi}
        return out if self.ks is None else out | {"ks": self.ks}

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> ShiftedFeature:
        return cls(str(raw["feature"]), str(raw["kind"]), float(raw["psi"]),
                   None if raw.get("ks") is None else float(raw["ks"]))


@dataclasses.dataclass(frozen=True)
class TextShift:
    """How a text column's words moved: the new texts read with the old data's vocabulary."""

    feature: str
    oov_tokens: float  # share of the new texts' tokens the old vocabulary lacks
    oov_rows: float  # share of the new texts with more than half of their tokens unknown
    overlap: float  # tokens both vocabularies hold, over tokens either holds (Jaccard)
    length_old: float  # mean tokens per text
    length_new: float
    domain_auc: float  # a classifier on token counts telling new texts from old

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> TextShift:
        return cls(str(raw["feature"]), *(float(raw[f.name]) for f in dataclasses.fields(cls)[1:]))


@dataclasses.dataclass(frozen=True)
class CategoryShift:
    """How a categorical column's values moved: the new rows read against the old data's values."""

    feature: str
    unseen_rows: float  # share of the new rows whose value the old data lacks
    new_values: int  # distinct values only the new data has
    old_values: int  # distinct values in the old data

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> CategoryShift:
        return cls(str(raw["feature"]), float(raw["unseen_rows"]), int(raw["new_values"]), int(raw["old_values"]))


@dataclasses.dataclass(frozen=True)
class TargetShift:
    """How a regression label moved, in the label's units: the old labels against the new;
    and, where the current model's predictions on the old and the new test rows are known,
    how they and its errors moved (the same rule on moved inputs moves the predictions with
    the labels; a changed rule moves the errors). Each one's KS: 0 same distribution, 1 disjoint."""

    ks: float  # two-sample Kolmogorov-Smirnov statistic between the old and the new labels
    mean_old: float
    mean_new: float
    std_old: float  # standard deviation: the spread
    std_new: float
    predicted_ks: float | None = None  # between the current model's predictions on the old and the new test rows
    residual_ks: float | None = None  # between its errors (true - predicted) there

    def to_json(self) -> dict[str, float]:
        return {name: value for name, value in dataclasses.asdict(self).items() if value is not None}

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> TargetShift:
        return cls(**{f.name: float(raw[f.name]) for f in dataclasses.fields(cls) if raw.get(f.name) is not None})


@dataclasses.dataclass(frozen=True)
class Diagnosis:
    rows_old: int
    rows_new: int
    size_ratio: float  # new rows over old
    new_classes: list  # labels only the new data has, sorted (none for a regression label)
    vanished_classes: list  # labels only the old data has, sorted (none for a regression label)
    label_shift_tv: float | None  # total variation between the class distributions; None for regression
    psi_max: float  # the largest feature PSI
    psi_mean: float
    domain_auc: float  # how well a classifier tells new rows from old
    top_shifted_features: tuple[ShiftedFeature, ...]  # by PSI, largest first
    text: tuple[TextShift, ...] = ()  # per text column; written only where there is one
    target: TargetShift | None = None  # a regression label's shift; written only for regression
    categories: tuple[CategoryShift, ...] = ()  # per categorical column; written only where there is one

    def to_json(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
               if f.name not in ("text", "target", "categories")}
        out |= {"new_classes": list(self.new_classes), "vanished_classes": list(self.vanished_classes),
                "top_shifted_features": [f.to_json() for f in self.top_shifted_features]}
        out |= {"text": [t.to_json() for t in self.text]} if self.text else {}
        out |= {"categories": [c.to_json() for c in self.categories]} if self.categories else {}
        return out | ({"target": self.target.to_json()} if self.target is not None else {})

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Diagnosis:
        return cls(
            rows_old=int(raw["rows_old"]), rows_new=int(raw["rows_new"]), size_ratio=float(raw["size_ratio"]),
            new_classes=list(raw["new_classes"]), vanished_classes=list(raw["vanished_classes"]),
            label_shift_tv=None if raw["label_shift_tv"] is None else float(raw["label_shift_tv"]),
            psi_max=float(raw["psi_max"]),
            psi_mean=float(raw["psi_mean"]), domain_auc=float(raw["domain_auc"]),
            top_shifted_features=tuple(ShiftedFeature.from_json(f) for f in raw["top_shifted_features"]),
            text=tuple(TextShift.from_json(t) for t in raw.get("text", ())),
            target=None if raw.get("target") is None else TargetShift.from_json(raw["target"]),
            categories=tuple(CategoryShift.from_json(c) for c in raw.get("categories", ())),
        )

    @property
    def label_shift(self) -> str:
        """How far the label moved, in a few words (a plot's title): the classes' total
        variation, or a regression target's KS statistic."""
        if self.target is not None:
            return f"target KS {self.target.ks:.2f}"
        return f"label shift {self.label_shift_tv:.2f}"

    def metrics(self) -> dict[str, float]:
        """What the compare step's run logs: the figures, each text and categorical column's, and
        how many classes are new (a classifier's) or how the target moved (a regressor's)."""
        logged = {f"diagnostics.{name}": float(getattr(self, name)) for name in LOGGED
                  if getattr(self, name) is not None}
        for column, shift in zip(metric_names([t.feature for t in self.text]), self.text):
            logged |= {f"diagnostics.text.{column}.{name}": value for name, value in shift.to_json().items()
                       if name != "feature"}
        logged |= self.category_metrics()
        if self.target is not None:
            return logged | {f"diagnostics.target.{name}": value for name, value in self.target.to_json().items()}
        return logged | {"diagnostics.n_new_classes": float(len(self.new_classes))}

    def category_metrics(self) -> dict[str, float]:
        """Each categorical column's CATEGORY_LOGGED figures, as `diagnostics.categories.COLUMN.NAME`
        (the compare step's run and the check's log them alike)."""
        return {f"diagnostics.categories.{column}.{name}": float(getattr(shift, name))
                for column, shift in zip(metric_names([c.feature for c in self.categories]), self.categories)
                for name in CATEGORY_LOGGED}


def metric_names(columns: list[str]) -> list[str]:
    """Each column's name as a part of an MLflow metric's: letters, digits, _ and - (anything
    else, the dot that would nest it among them, becomes _), at most 60 characters; a column
    that comes out as an earlier one did gets _2 (_3, ...) after it."""
    names: list[str] = []
    for column in columns:
        base = re.sub(r"[^A-Za-z0-9_-]", "_", str(column))[:60] or "_"
        name, count = base, 1
        while name in names:
            count += 1
            name = f"{base}_{count}"
        names.append(name)
    return names
