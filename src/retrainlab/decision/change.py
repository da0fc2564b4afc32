"""What changed between the old and the new data, in words, and whether the measured
answer agrees with what that kind of change usually calls for. Pure functions of the
diagnostics (retrainlab.decision.diagnostics), the baseline's record and the verdict.

The kinds, and the evidence each is read from:
- new classes: labels only the new data has (a classifier's only);
- new vocabulary: a text column's new texts use many words the old ones did not (the share
  of their tokens the old vocabulary lacks);
- new categories: a categorical column's new rows hold many values the old data did not (the
  share of new rows whose value the old data lacks);
- concept drift: the inputs did not move (a classifier cannot tell new rows from old) and
  there is no new class, yet the current model is markedly less accurate on the new data
  than on the old (a regressor: its RMSE on the new data is more than ERROR_RISE above its
  RMSE on the old): the relationship between inputs and labels changed;
- covariate shift: the inputs moved (the classifier tells new rows from old, or a feature's
  PSI is large); for a regressor, also a target that moved with the current model's own
  predictions (`by_inputs`): the same rule, read on moved inputs;
- label shift: the classes' frequencies moved, without a new class; for a regressor, the
  target's distribution moved (KS between the old and new labels) and the current model's
  predictions do not account for it (its errors moved as far or further, or they are unknown);
- more of the same: none of these, the new data being some fraction of the old;
- nothing material: none of these, and the new data is small against the old.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping

from retrainlab.base.kinds import (
    CONCEPT_DRIFT,
    COVARIATE_SHIFT,
    LABEL_SHIFT,
    MORE_OF_THE_SAME,
    NEW_CATEGORIES,
    NEW_CLASSES,
    NEW_VOCABULARY,
    NOTHING,
)
from retrainlab.decision.diagnosis import Diagnosis, TargetShift
from retrainlab.measure.evaluation import CLASSIFIER
from retrainlab.measure.task import Measure, of_figures
from retrainlab.strategies import BASELINE, CATALOGUE, UPDATES

# Thresholds: a domain classifier's AUC above this tells new inputs from old; PSI above this
# is the customary "large shift"; total variation of the labels above this is a moved mix;
# the current model losing more accuracy than this on the new data is a fall, not noise;
# new data smaller than this share of the old is not material when nothing else moved.
AUC_MOVED, PSI_LARGE, TV_MOVED, ACCURACY_FALL, SMALL = 0.65, 0.25, 0.10, 0.05, 0.10
# A regressor's, which must read the same for a label in dollars or in days: its error
# (the primary figure, RMSE) on the new data more than ERROR_RISE above its error on the old
# is a rise, not noise (0.25: about two standard errors of the ratio of two RMSEs measured on
# test sets of 40 rows, the smallest the decision map builds); a KS statistic between the
# old and the new labels of KS_MOVED or more is a target that moved (a pure sampling
# difference stays under 0.10 from 150 new rows up).
ERROR_RISE, KS_MOVED = 0.25, 0.15
# A text column whose new texts' tokens are unknown to the old vocabulary at this share or more.
OOV_MUCH = 0.20
# A categorical column whose new rows hold a value the old data lacks at this share or more.
# Such a row's value reads as its lookup's one unknown index, as an unknown token reads in a
# text, so the bar is OOV_MUCH's: a fifth of the rows is a fifth of the traffic that the model
# reads without the column. A long-tailed column (user or item ids) passes it on steady data
# too where new ids keep arriving; its new rows are then read without the column all the same.
UNSEEN_MUCH = 0.20

# What each kind calls for, in words; the options that usually answer it are those whose
# declarations say they suit it (`Strategy.suits`): the updates named after these words, the
# baseline (leaving the model alone) apart, never as one of the updates.
LEAVE = "leaving the model alone"
CALLS_FOR = {
    NEW_CLASSES: "an option that grows the output and keeps the old classes",
    NEW_VOCABULARY: "reading the new words with the old: a vocabulary made anew, or grown (model.grow_vocabulary)",
    NEW_CATEGORIES: "reading the new values: lookups made anew, or grown (model.grow_vocabulary)",
    CONCEPT_DRIFT: "the options that learn the new rule fastest, as far as traffic follows the new rule",
    COVARIATE_SHIFT: "training on the new inputs with the old",
    LABEL_SHIFT: "a cheap update that sees the new class mix",
    MORE_OF_THE_SAME: "a cheap update if the new data is large",
    NOTHING: LEAVE,
}


# A regression target's label shift: its evidence starts so, and it calls for this instead of
# the class mix (the evidence is what comparison.json keeps of a change, with its kind).
TARGET_MOVED = "the target's distribution moved"
TARGET_CALLS_FOR = "a cheap update that sees the new targets"


def favours(kind: str) -> list[str]:
    """The options a kind of change usually favours, in the catalogue's order (none for
    concept drift, whose answer is measured)."""
    return [name for name, strategy in CATALOGUE.items() if kind in strategy.suits]


def updates_for(kind: str) -> list[str]:
    """The updates among the options a kind favours: all but the baseline, which leaves the model alone."""
    return [name for name in UPDATES if kind in CATALOGUE[name].suits]


def _either(names: list[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


@dataclasses.dataclass(frozen=True)
class Change:
    kind: str
    evidence: str

    @property
    def calls_for(self) -> str:
        """What the kind calls for in words, then the updates that suit it; the baseline, where
        it suits it too, apart, as leaving the model alone."""
        updates = updates_for(self.kind)
        words = TARGET_CALLS_FOR if self.kind == LABEL_SHIFT and self.evidence.startswith(TARGET_MOVED) else \
            CALLS_FOR[self.kind]
        said = f"{words}: {_either(updates)}" if updates else words
        if BASELINE not in favours(self.kind):
            return said
        return f"{said}; or {LEAVE}: {BASELINE}" if updates else f"{said}: {BASELINE}"


def fell(old: float | None, new: float | None, measure: Measure = CLASSIFIER) -> bool:
    """Whether the current model is markedly worse on the new data than on the old: more
    than ACCURACY_FALL of accuracy lost, or an error more than ERROR_RISE above the old."""
    if old is None or new is None:
        return False
    if measure.higher_is_better:
        return old - new > ACCURACY_FALL
    return new > old * (1 + ERROR_RISE)


def _error(old: float, new: float, measure: Measure) -> str:
    """A regressor's error on the old and on the new data, in the label's units."""
    rise = f" ({new / old - 1:+.0%})" if old > 0 else ""
    return f"{measure.primary.upper()} {new:.4g} on new rows against {old:.4g} on old ones{rise}, in the label's units"


NOT_COMPARED = "the domain AUC needs at least two rows of each set, and is left out"


def inputs_compared(diagnosis: Diagnosis) -> bool:
    """Whether the old and new inputs could be compared at all: a domain AUC was computed."""
    return math.isfinite(diagnosis.domain_auc)


def by_inputs(target: TargetShift | None) -> bool:
    """Whether a regression target that moved (KS_MOVED or more) moved with the current model's
    own predictions: they moved too (KS_MOVED or more between its old and new test rows), and
    further than its errors did. The old rule on moved inputs moves the predictions as the
    labels move; a changed rule leaves them where they were and moves the errors instead."""
    if target is None or target.ks < KS_MOVED or target.predicted_ks is None or target.residual_ks is None:
        return False
    return target.predicted_ks >= KS_MOVED and target.residual_ks < target.predicted_ks


def _target(target: TargetShift) -> str:
    """How a regression target moved, in the label's units."""
    return (f"KS {target.ks:.2f} between the old and the new labels; mean {target.mean_old:.4g} before, "
            f"{target.mean_new:.4g} now; standard deviation {target.std_old:.4g} before, {target.std_new:.4g} now")


def _predictions(target: TargetShift) -> str:
    return (f"the current model's predictions on the new test rows moved by KS {target.predicted_ks:.2f} from the "
            f"old ones, its errors by KS {target.residual_ks:.2f}")


def inputs_moved(diagnosis: Diagnosis) -> bool:
    """Whether the inputs moved: a classifier tells new rows from old, or a feature's PSI is
    large; never on inputs that could not be compared (a PSI over one row is noise)."""
    return inputs_compared(diagnosis) and (diagnosis.domain_auc >= AUC_MOVED or diagnosis.psi_max >= PSI_LARGE)


def classify(diagnosis: Diagnosis, old: float | None, new: float | None,
             measure: Measure = CLASSIFIER) -> list[Change]:
    """The kinds of change the evidence shows, most consequential first. `old` and `new` are
    the current model's (the baseline's) mean primary figure on the old and the new test
    sets (`measure.old`, `measure.new`: accuracies, or a regressor's RMSEs)."""
    changes = []
    new_classes = list(diagnosis.new_classes)
    target = diagnosis.target
    compared = inputs_compared(diagnosis)
    explained = compared and by_inputs(target)  # a regressor's target that moved with its predictions
    shifted = inputs_moved(diagnosis)
    moved = shifted or explained
    worse = fell(old, new, measure)
    accuracy = measure.higher_is_better
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
    for shift in diagnosis.categories:
        if shift.unseen_rows >= UNSEEN_MUCH:
            changes.append(Change(NEW_CATEGORIES, (
                f"{shift.unseen_rows:.0%} of the new rows hold a value of column '{shift.feature}' the old data does "
                f"not: {shift.new_values:,} new values, against {shift.old_values:,} in the old data"
            )))
    if worse and compared and not moved and not new_classes:
        wrong = (f"is wrong on {1 - new:.0%} of new rows against {1 - old:.0%} of old ones" if accuracy
                 else f"has {_error(old, new, measure)}")
        changes.append(Change(CONCEPT_DRIFT, (
            f"the inputs did not move (domain AUC {diagnosis.domain_auc:.2f}), yet the current model {wrong}: "
            "the old rule no longer holds"
        )))
    if moved:
        evidence = (f"a classifier tells new inputs from old with AUC {diagnosis.domain_auc:.2f}; largest "
                    f"feature PSI {diagnosis.psi_max:.2f}") if shifted else (
            f"the inputs moved where the current model reads them, though a classifier tells new inputs from old "
            f"with AUC {diagnosis.domain_auc:.2f} only (largest feature PSI {diagnosis.psi_max:.2f})")
        if worse:
            evidence += (f"; the current model loses {old - new:.2f} of accuracy on the new data" if accuracy
                         else f"; the current model has {_error(old, new, measure)}")
        if explained:
            evidence += (f"; the target moved with them ({_target(target)}) and {_predictions(target)}: the same "
                         "rule, read on moved inputs, not a label shift")
        changes.append(Change(COVARIATE_SHIFT, evidence))
    if diagnosis.label_shift_tv is not None and diagnosis.label_shift_tv >= TV_MOVED and not new_classes:
        changes.append(Change(LABEL_SHIFT, f"the class mix moved by {diagnosis.label_shift_tv:.2f} (total variation)"))
    if target is not None and target.ks >= KS_MOVED and not explained:
        evidence = f"{TARGET_MOVED}: {_target(target)}"
        if target.predicted_ks is not None and target.residual_ks is not None:
            evidence += f"; {_predictions(target)}: the inputs do not account for it"
        changes.append(Change(LABEL_SHIFT, evidence))
    if not changes and not compared:
        changes.append(Change(NOTHING, f"too few new rows to tell whether the inputs moved: {NOT_COMPARED}"))
    if not changes:
        ratio = diagnosis.size_ratio
        kind = NOTHING if ratio < SMALL else MORE_OF_THE_SAME
        steady = "" if old is None or new is None else (
            f"; the current model scores {new:.3f} on it against {old:.3f}" if accuracy
            else f"; the current model's {measure.primary.upper()} is {new:.4g} on it against {old:.4g}")
        labels = "labels" if target is None else "targets"
        changes.append(Change(kind, f"the new data is {ratio:.2f}x the old, with the same inputs and {labels}{steady}"))
    return changes


def check(changes: list[Change], recommended: str, figures: Mapping[str, Mapping[str, float]],
          measure: Measure | None = None) -> list[str]:
    """For each change, whether the measured recommendation agrees with what that kind
    usually calls for. `figures` holds each option's mean figures (the measure's figure on
    the new data at least: acc_new, or rmse_new); `measure` is theirs (None: read from them).
    The option that learns a new rule best is the most accurate on the new data, or the one
    with the lowest error there; the recommended one agrees within ACCURACY_FALL of its
    accuracy, or ERROR_RISE of its error."""
    m = measure or of_figures(next(iter(figures.values()), {}))
    spec = ".3f" if m.higher_is_better else ".4g"
    lines = []
    for change in changes:
        if change.kind == CONCEPT_DRIFT:
            fastest = max(figures, key=lambda s: m.goodness(figures[s][m.new]))
            best, mine = figures[fastest][m.new], figures.get(recommended, {}).get(m.new)
            agrees = mine is not None and (mine >= best - ACCURACY_FALL if m.higher_is_better
                                           else mine <= best * (1 + ERROR_RISE))
            shown = "n/a" if mine is None else format(mine, spec)
            lines.append(
                f"the option that learns the new rule best is {fastest} ({m.new} {best:{spec}}); "
                f"{recommended} reaches {shown}: "
                + ("agrees" if agrees else "does not agree, as old traffic still weighs (compare.new_traffic_share)")
            )
            continue
        agrees = recommended in favours(change.kind)
        lines.append(f"{recommended} is recommended: " + ("agrees" if agrees else "does not agree"))
    return lines
