"""Retrain from scratch on everything: the reference every other option is measured against."""

from retrainlab.strategies.declaration import FROM_SCRATCH, NEW, OLD, Context, Plan, Rows, Strategy


def full_retrain(ctx: Context) -> Plan:
    """Fresh weights (the project's MLP, or a brought model's architecture with its
    preprocessing adapted anew) trained on the initial and the incremental data, as the
    `model` section says."""
    return ctx.plan(ctx.fresh(OLD, NEW), (Rows(OLD), Rows(NEW)))


STRATEGY = Strategy(
    "full-retrain", "retrain from scratch on the old and the new data", full_retrain,
    starts_from=FROM_SCRATCH, reads_old_data=True, action="Retrain from scratch",
)
