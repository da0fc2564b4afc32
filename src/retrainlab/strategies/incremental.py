"""Keep training: the baseline trained further on the new data only."""

import dataclasses

from retrainlab.base.kinds import LABEL_SHIFT, MORE_OF_THE_SAME, NEW_CATEGORIES, NEW_CLASSES
from retrainlab.strategies.declaration import NEW, Card, Context, Plan, Rows, Strategy, Training


@dataclasses.dataclass(frozen=True)
class IncrementalSettings(Training):
    DOCS = {"epochs, learning_rate": "training the baseline further"}

    epochs: int = 15
    learning_rate: float = 0.0005


def incremental(ctx: Context) -> Plan:
    """Every layer of the baseline trained on the incremental data (a brought model with its
    own compiled optimizer and loss, where it has them)."""
    return ctx.plan(ctx.grown(), (Rows(NEW),))


STRATEGY = Strategy(
    name="incremental", rank=20, plan=incremental, settings=IncrementalSettings,
    summary="keep training the model, every layer, on the new data only",
    action="Keep training it on the new data",
    suits=frozenset({NEW_CLASSES, NEW_CATEGORIES, LABEL_SHIFT, MORE_OF_THE_SAME}),
    card=Card(
        starts="the baseline",
        trains_on="new rows only",
        needs_old="no",
        extra_cost="none",
        on_your_model=("trains it further on the new data, with its own compiled optimizer (fresh state, same "
                       "settings) and loss where it was saved compiled, else the `incremental` params"),
        source="the naive warm start",
    ),
)
