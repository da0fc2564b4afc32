"""The model as it is: trained here on the old data only, or the model the user brought."""

from retrainlab.base.kinds import LABEL_SHIFT, MORE_OF_THE_SAME, NOTHING
from retrainlab.strategies.declaration import FROM_SCRATCH, OLD, Card, Context, Plan, Rows, Strategy


def baseline(ctx: Context) -> Plan:
    """The model as first trained, on the initial data only: also "leave it alone". A model
    the user brought (`baseline.from`, given as the context's base) is taken as it is."""
    if ctx.base is not None:
        return Plan(ctx.copy_of_base(), (), 0, 0.0, ctx.params.model.batch_size, "model")
    return ctx.plan(ctx.fresh(OLD), (Rows(OLD),))


STRATEGY = Strategy(
    name="baseline", rank=0, plan=baseline, starts_from=FROM_SCRATCH, reads_old_data=True,
    summary="leave the model alone: the model as first trained on the old data, or your own model",
    action="Keep the model as it is",
    suits=frozenset({LABEL_SHIFT, MORE_OF_THE_SAME, NOTHING}),
    card=Card(
        starts="fresh weights, or your model as it is",
        trains_on="the old data (or nothing: your model)",
        needs_old="to train it here",
        extra_cost="none (0 to adopt)",
        on_your_model="measures it as it is on the old and the new test sets, at a training cost of 0",
    ),
)
