"""Retrain from scratch on everything: the reference every other option is measured against."""

from retrainlab.base.kinds import COVARIATE_SHIFT, NEW_CATEGORIES, NEW_CLASSES, NEW_VOCABULARY
from retrainlab.strategies.declaration import FROM_SCRATCH, NEW, OLD, Card, Context, Plan, Rows, Strategy


def full_retrain(ctx: Context) -> Plan:
    """Fresh weights (the project's MLP, or a brought model's architecture with its
    preprocessing adapted anew) trained on the initial and the incremental data, as the
    `model` section says."""
    return ctx.plan(ctx.fresh(OLD, NEW), (Rows(OLD), Rows(NEW)))


STRATEGY = Strategy(
    name="full-retrain", rank=10, plan=full_retrain, starts_from=FROM_SCRATCH, reads_old_data=True,
    summary="retrain from scratch on the old and the new data",
    action="Retrain from scratch",
    suits=frozenset({NEW_CLASSES, NEW_VOCABULARY, NEW_CATEGORIES, COVARIATE_SHIFT}),
    card=Card(
        starts="fresh weights",
        trains_on="old + new, `model` settings",
        needs_old="yes, all of it",
        extra_cost="trains on everything, from scratch",
        on_your_model=("the same architecture with fresh weights (a clone), trained from scratch on old + new data "
                       "at the `model` params, with its preprocessing layers (`Normalization`, `StringLookup`, "
                       "`IntegerLookup`) adapted again on those rows"),
        source="the reference",
    ),
)
