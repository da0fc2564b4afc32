"""Replay (rehearsal): the baseline trained on the new data plus a uniform sample of old rows.

Prabhu et al. (CVPR 2023) found that, under a compute budget, plain uniform replay beat
every continual-learning method they tried; TiC-CLIP (ICLR 2024) matched retraining with a
warm start plus replay at about 2.5x less compute. The sample is drawn by the training
path in bounded memory (`retrainlab.training.loop`): it holds only the sample's row numbers.
"""

import dataclasses

from retrainlab.base.kinds import (
    COVARIATE_SHIFT,
    LABEL_SHIFT,
    MORE_OF_THE_SAME,
    NEW_CATEGORIES,
    NEW_CLASSES,
    NEW_VOCABULARY,
)
from retrainlab.config import require
from retrainlab.strategies.declaration import NEW, OLD, Card, Context, Plan, Rows, Strategy, Training


@dataclasses.dataclass(frozen=True)
class ReplaySettings(Training):
    DOCS = {
        "epochs, learning_rate": "as incremental",
        "old_fraction, old_rows": ("old rows replayed: a multiple of the new rows' count, or a number of rows "
                                   "(wins when set)"),
    }

    epochs: int = 15
    learning_rate: float = 0.0005
    old_fraction: float = 1.0  # old rows replayed, as a multiple of the new rows' count
    old_rows: int | None = None  # or this many old rows (overrides old_fraction)

    def check(self, key: str) -> None:
        super().check(key)
        require(0 < self.old_fraction <= 100, f"{key}.old_fraction", "must be in (0, 100]")
        require(self.old_rows is None or self.old_rows >= 1, f"{key}.old_rows", "must be 1 or more, or null")


def old_sample_size(settings: ReplaySettings, new_rows: int, old_rows: int) -> int:
    """How many old rows to replay: as asked, and no more than there are."""
    wanted = settings.old_rows if settings.old_rows is not None else round(settings.old_fraction * new_rows)
    return max(1, min(wanted, old_rows))


def replay(ctx: Context) -> Plan:
    """The baseline, its output grown for any new class, trained on every new row and a
    uniform sample of the old training rows, drawn afresh for each seed."""
    sample = old_sample_size(ctx.settings, ctx.rows(NEW), ctx.rows(OLD))
    return ctx.plan(ctx.grown(), (Rows(NEW), Rows(OLD, limit=sample)))


STRATEGY = Strategy(
    name="replay", rank=40, plan=replay, settings=ReplaySettings, reads_old_data=True,
    summary="keep training the model on the new data plus a uniform sample of old rows",
    action="Keep training it on the new data with replayed old rows",
    suits=frozenset({NEW_CLASSES, NEW_VOCABULARY, NEW_CATEGORIES, COVARIATE_SHIFT, LABEL_SHIFT, MORE_OF_THE_SAME}),
    card=Card(
        starts="the baseline",
        trains_on="new rows + a uniform sample of old rows",
        needs_old="a sample (`old_fraction` x the new rows, or `old_rows`)",
        extra_cost="the sampled rows' share of each epoch",
        on_your_model="as `incremental`, with a uniform sample of old rows added",
        source="Prabhu et al., CVPR 2023; TiC-CLIP, ICLR 2024",
    ),
)
