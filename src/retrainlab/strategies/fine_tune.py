"""Fine-tune: the baseline's features frozen, new layers and the output trained on the new data."""

import dataclasses

from retrainlab.base.kinds import MORE_OF_THE_SAME
from retrainlab.base.labels import grown_labels
from retrainlab.config import require
from retrainlab.strategies.declaration import NEW, Card, Context, Plan, Rows, Strategy, Training


@dataclasses.dataclass(frozen=True)
class FineTuneSettings(Training):
    DOCS = {
        "epochs, learning_rate": "training the new head",
        "trainable_layers": ("layers with weights below the output left trainable when fine-tuning (0: only the "
                             "output and the new layers train)"),
        "new_layers": ("new layers on the frozen features; they start as the identity, so fine-tuning starts from "
                       "the baseline's predictions"),
    }

    epochs: int = 15
    learning_rate: float = 0.001
    new_layers: int = 1
    trainable_layers: int = 0  # layers with weights below the output left trainable (0: only the head trains)

    def check(self, key: str) -> None:
        super().check(key)
        require(0 <= self.new_layers <= 100, f"{key}.new_layers", "must be between 0 and 100")
        require(self.trainable_layers >= 0, f"{key}.trainable_layers", "must be 0 or more")


def fine_tune(ctx: Context) -> Plan:
    """The baseline frozen but its last `trainable_layers` layers; `new_layers` layers and
    the output on top, trained on the new data at the fine-tune learning rate."""
    # start-up: no TensorFlow until a plan is made (the CLI, prepare and compare import the catalogue)
    from retrainlab.models.surgery import attach_head

    s = ctx.settings
    labels = grown_labels(ctx.base.labels, ctx.data.classes(NEW))
    model = attach_head(ctx.base.model, s.new_layers, len(labels), ctx.seed, s.trainable_layers)  # 0: a regressor
    bundle = dataclasses.replace(ctx.base, model=model, labels=labels, compiled=None)
    return ctx.plan(bundle, (Rows(NEW),))


STRATEGY = Strategy(
    name="fine-tune", rank=30, plan=fine_tune, settings=FineTuneSettings,
    summary="freeze the model's features; train new layers and the output on the new data",
    action="Fine-tune it on the new data",
    suits=frozenset({MORE_OF_THE_SAME}),
    card=Card(
        starts="the baseline, features frozen",
        trains_on="new rows; new layers and the output",
        needs_old="no",
        extra_cost="less: the frozen layers get no gradient",
        on_your_model=("freezes every layer but the last `strategies.fine-tune.trainable_layers` layers with "
                       "weights (default 0: only the output trains), adds `new_layers` on top, trains at its "
                       "`learning_rate`; Sequential and functional models, CNNs included"),
    ),
)
