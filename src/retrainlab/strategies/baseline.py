"""The model as it is: trained here on the old data only, or the model the user brought."""

from retrainlab.strategies.declaration import FROM_SCRATCH, OLD, Context, Plan, Rows, Strategy


def baseline(ctx: Context) -> Plan:
    """The model as first trained, on the initial data only: also "leave it alone". A model
    the user brought (`baseline.from`, given as the context's base) is taken as it is."""
    if ctx.base is not None:
        return Plan(ctx.copy_of_base(), (), 0, 0.0, ctx.params.model.batch_size, "model")
    return ctx.plan(ctx.fresh(OLD), (Rows(OLD),))


STRATEGY = Strategy(
    "baseline", "leave the model alone: the model as first trained on the old data, or your own model",
    baseline, starts_from=FROM_SCRATCH, reads_old_data=True, action="Keep the model as it is",
)
