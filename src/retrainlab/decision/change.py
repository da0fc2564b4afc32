"""What changed between the old and the new data, in words, and whether the measured
answer agrees with what that kind of change usually calls for. Pure functions of the
diagnostics (retrainlab.decision.diagnostics), the baseline's record and the verdict.

The kinds, and the evidence each is read from:
- new classes: labels only the new data has;
- new vocabulary: a text column's new texts use many words the old ones did not (the share
  of their tokens the old vocabulary lacks);
- concept drift: the inputs did not move (a classifier cannot tell new rows from old) and
  there is no new class, yet the current model is markedly less accurate on the new data
  than on the old: the relationship between inputs and labels changed;
- covariate shift: the inputs moved (the classifier tells new rows from old, or a feature's
  PSI is large);
- label shift: the classes' frequencies moved, without a new class;
- more of the same: none of these, the new data being some fraction of the old;
- nothing material: none of these, and the new data is small against the old.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from retrainlab.base.kinds import (
    CONCEPT_DRIFT,
    COVARIATE_SHIFT,
    LABEL_SHIFT,
    MORE_OF_THE_SAME,
    NEW_CLASSES,
    NEW_VOCABULARY,
    NOTHING,
)
from retrainlab.decision.diagnosis import Diagnosis
from retrainlab.measure.evaluation import CLASSIFIER
from retrainlab.measure.task import Measure
from retrainlab.strategies import CATALOGUE

# Thresholds: a domain classifier's AUC above this tells new inputs from old; PSI above this
# is the customary "large shift"; total variation of the labels above this is a moved mix;
# the current model losing more accuracy than this on the new data is a fall, not noise;
# new data smaller than this share of the old is not material when nothing else moved.
AUC_MOVED, PSI_LARGE, TV_MOVED, ACCURACY_FALL, SMALL = 0.65, 0.25, 0.10, 0.05, 0.10
# A text column whose new texts' tokens are unknown to the old vocabulary at this share or more.
OOV_MUCH = 0.20

# What each kind calls for, in words; the options that usually answer it are those whose
# declarations say they suit it (`Strategy.suits`), named after these words.
CALLS_FOR = {
    NEW_CLASSES: "an option that grows the output and keeps the old classes",
    NEW_VOCABULARY: "reading the new words with the old: a vocabulary made anew, or grown (model.grow_vocabulary)",
    CONCEPT_DRIFT: "the options that learn the new rule fastest, as far as traffic follows the new rule",
    COVARIATE_SHIFT: "training on the new inputs with the old",
    LABEL_SHIFT: "a cheap update that sees the new class mix",
    MORE_OF_THE_SAME: "keeping the model, or a cheap update if the new data is large",
    NOTHING: "leaving the model alone",
}


def favours(kind: str) -> list[str]:
    """The options a kind of change usually favours, in the catalogue's order (none for
    concept drift, whose answer is measured)."""
    return [name for name, strategy in CATALOGUE.items() if kind in strategy.suits]


@dataclasses.dataclass(frozen=True)
class Change:
    kind: str
    evidence: str

    @property
    def calls_for(self) -> str:
        names = favours(self.kind)
        if not names:
            return CALLS_FOR[self.kind]
        return f"{CALLS_FOR[self.kind]}: " + (names[0] if len(names) == 1 else
                                              f"{', '.join(names[:-1])} or {names[-1]}")


def classify(diagnosis: Diagnosis, acc_old: float | None, acc_new: float | None,
             measure: Measure = CLASSIFIER) -> list[Change]:
    """The kinds of change the evidence shows, most consequential first. `acc_old` and
    `acc_new` are the current model's (the baseline's) mean accuracies."""
    changes = []
    new_classes = list(diagnosis.new_classes)
    moved = diagnosis.domain_auc >= AUC_MOVED or diagnosis.psi_max >= PSI_LARGE
    fell = acc_old is not None and acc_new is not None and acc_old - acc_new > ACCURACY_FALL
    if new_classes:
        shown = ", ".join(map(str, new_classes[:10])) + (" ..." if len(new_classes) > 10 else "")
        changes.append(Change(NEW_CLASSES, f"classes only the new data has: {shown}"))
    for shift in diagnosis.text:
        if shift.oov_tokens >= OOV_MUCH:
            changes.append(Change(NEW_VOCABULARY, (
                f"{shift.oov_tokens:.0%} of the new texts' tokens in column '{shift.feature}' are unknown to the old "
                f"vocabulary, and {shift.oov_rows:.0%} of the new texts are mostly unknown words (vocabulary overlap "
                f"{shift.overlap:.2f}; {shift.length_old:.1f} tokens a text before, {shift.length_new:.1f} now)"
            )))
    if fell and not moved and not new_classes:
        changes.append(Change(CONCEPT_DRIFT, (
            f"the inputs did not move (domain AUC {diagnosis.domain_auc:.2f}), yet the current model is wrong on "
            f"{1 - acc_new:.0%} of new rows against {1 - acc_old:.0%} of old ones: the old rule no longer holds"
        )))
    if moved:
        evidence = (f"a classifier tells new inputs from old with AUC {diagnosis.domain_auc:.2f}; largest "
                    f"feature PSI {diagnosis.psi_max:.2f}")
        if fell:
            evidence += f"; the current model loses {acc_old - acc_new:.2f} of accuracy on the new data"
        changes.append(Change(COVARIATE_SHIFT, evidence))
    if diagnosis.label_shift_tv >= TV_MOVED and not new_classes:
        changes.append(Change(LABEL_SHIFT, f"the class mix moved by {diagnosis.label_shift_tv:.2f} (total variation)"))
    if not changes:
        ratio = diagnosis.size_ratio
        kind = NOTHING if ratio < SMALL else MORE_OF_THE_SAME
        steady = "" if acc_old is None else f"; the current model scores {acc_new:.3f} on it against {acc_old:.3f}"
        changes.append(Change(kind, f"the new data is {ratio:.2f}x the old, with the same inputs and labels{steady}"))
    return changes


def check(changes: list[Change], recommended: str, figures: Mapping[str, Mapping[str, float]]) -> list[str]:
    """For each change, whether the measured recommendation agrees with what that kind
    usually calls for. `figures` holds each option's mean figures (acc_new at least)."""
    lines = []
    for change in changes:
        if change.kind == CONCEPT_DRIFT:
            fastest = max(figures, key=lambda s: figures[s]["acc_new"])
            mine = figures.get(recommended, {}).get("acc_new")
            agrees = mine is not None and mine >= figures[fastest]["acc_new"] - ACCURACY_FALL
            shown = "n/a" if mine is None else f"{mine:.3f}"
            lines.append(
                f"the option that learns the new rule best is {fastest} (acc_new {figures[fastest]['acc_new']:.3f}); "
                f"{recommended} reaches {shown}: "
                + ("agrees" if agrees else "does not agree, as old traffic still weighs (compare.new_traffic_share)")
            )
            continue
        agrees = recommended in favours(change.kind)
        lines.append(f"{recommended} is recommended: " + ("agrees" if agrees else "does not agree"))
    return lines
