"""Shrink-and-perturb (Ash & Adams, NeurIPS 2020): a warm start that generalises like a fresh one.

Every trainable weight of the baseline is scaled by `shrink` and `noise` times a fresh
initial value of the same weight (its layer's own initializer, newly seeded) is added; the
model is then trained on the old and the new data. Preprocessing state (normalisation
statistics, vocabularies) is not a trainable weight and is kept.
"""

import dataclasses

from retrainlab.base.kinds import COVARIATE_SHIFT, NEW_CATEGORIES, NEW_CLASSES, NEW_VOCABULARY
from retrainlab.config import require
from retrainlab.strategies.declaration import NEW, OLD, Card, Context, Plan, Rows, Strategy, Training


@dataclasses.dataclass(frozen=True)
class ShrinkPerturbSettings(Training):
    DOCS = {
        "epochs, learning_rate": "training after the shrink, on old + new data",
        "shrink, noise": "`w <- shrink x w + noise x w_fresh` for every trainable weight",
    }

    epochs: int = 15
    learning_rate: float = 0.001
    shrink: float = 0.4  # lambda: the old weights' share
    noise: float = 0.1  # sigma: the fresh initial weights' share

    def check(self, key: str) -> None:
        super().check(key)
        require(0 <= self.shrink <= 1, f"{key}.shrink", "must be in [0, 1]")
        require(0 <= self.noise <= 10, f"{key}.noise", "must be in [0, 10]")


def shrink_and_perturb(shrink: float, noise: float):
    """The weight transform: w <- shrink * w + noise * w_fresh, for every trainable weight."""

    def transform(model, seed: int) -> None:
        # start-up: no TensorFlow until a plan is made (the CLI, prepare and compare import the catalogue)
        from retrainlab.models.surgery import fresh_weights

        for variable, fresh in zip(model.trainable_variables, fresh_weights(model, seed), strict=True):
            variable.assign(shrink * variable.numpy() + noise * fresh)

    return transform


def shrink_perturb(ctx: Context) -> Plan:
    s = ctx.settings
    return ctx.plan(ctx.grown(OLD, NEW), (Rows(OLD), Rows(NEW)), transform=shrink_and_perturb(s.shrink, s.noise))


STRATEGY = Strategy(
    name="shrink-perturb", rank=60, plan=shrink_perturb, settings=ShrinkPerturbSettings, reads_old_data=True,
    summary="shrink the model's weights, add fresh noise, then train on the old and the new data",
    action="Shrink and perturb its weights, then train on all the data",
    suits=frozenset({NEW_CLASSES, NEW_VOCABULARY, NEW_CATEGORIES, COVARIATE_SHIFT}),
    card=Card(
        starts="the baseline, shrunk and perturbed",
        trains_on="old + new",
        needs_old="yes, all of it",
        extra_cost="trains on everything (fewer epochs than a full retrain)",
        on_your_model=("shrinks its trainable weights and adds fresh noise from each layer's own initializer, "
                       "then trains on old + new data"),
        source="Ash & Adams, NeurIPS 2020",
    ),
)
