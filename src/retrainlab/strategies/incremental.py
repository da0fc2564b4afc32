"""Keep training: the baseline trained further on the new data only."""

import dataclasses

from retrainlab.strategies.declaration import NEW, Context, Plan, Rows, Strategy, Training


@dataclasses.dataclass(frozen=True)
class IncrementalSettings(Training):
    epochs: int = 15
    learning_rate: float = 0.0005


def incremental(ctx: Context) -> Plan:
    """Every layer of the baseline trained on the incremental data (a brought model with its
    own compiled optimizer and loss, where it has them)."""
    return ctx.plan(ctx.grown(), (Rows(NEW),))


STRATEGY = Strategy(
    "incremental", "keep training the model, every layer, on the new data only", incremental,
    settings=IncrementalSettings, action="Keep training it on the new data",
)
