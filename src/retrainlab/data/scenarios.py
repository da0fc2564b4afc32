"""The scenarios: how a labelled pool becomes initial and incremental data.

`apply_scenario` splits the pool (`split_pool`) and, as `data.scenario` says, holds classes
back for the incremental data (new_classes), moves its inputs (covariate_shift; for digits
`shift_digits`), or gives some classes each other's labels (concept_drift, `rotate_labels`).
The recommender source's new_categories gives a share of the incremental rows categories
the initial data never has (`new_categories`).
Pure functions of their arguments and the generator they are given.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from retrainlab.base.errors import DataError
from retrainlab.config import DataParams


def split_pool(
    initial_allowed: np.ndarray, fraction: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Row indices of the initial and incremental sets.

    The initial set takes 1/(1+fraction) of the rows it may hold; the incremental set,
    `fraction` times the initial set's size, is drawn from all the rows that are left.
    """
    allowed = np.flatnonzero(initial_allowed)
    n_initial = int(round(len(allowed) / (1 + fraction)))
    initial = rng.choice(allowed, size=n_initial, replace=False)
    rest = np.setdiff1d(np.arange(len(initial_allowed)), initial)
    n_incremental = min(len(rest), int(round(fraction * n_initial)))
    incremental = rng.choice(rest, size=n_incremental, replace=False)
    return np.sort(initial), np.sort(incremental)


def rotate_labels(labels: np.ndarray, affected: np.ndarray) -> np.ndarray:
    """Concept drift: each affected class takes the next affected class's label."""
    rotated = labels.copy()
    for i, cls in enumerate(affected):
        rotated[labels == cls] = affected[(i + 1) % len(affected)]
    return rotated


def apply_scenario(
    pool: pd.DataFrame,
    labels: np.ndarray,
    params: DataParams,
    rng: np.random.Generator,
    shift_inputs: Callable[[pd.DataFrame, float], pd.DataFrame],
    relabel: Callable[[pd.DataFrame], np.ndarray] | None = None,
    classes: np.ndarray | None = None,
) -> tuple[pd.DataFrame, np.ndarray, pd.DataFrame, np.ndarray]:
    """Split a labelled pool into initial and incremental data as the scenario says.

    `shift_inputs` moves the incremental inputs for covariate_shift; `relabel`, where the
    source has a labelling rule, labels the moved inputs by that same rule. `classes` are
    the source's classes when the pool is one chunk of a larger source (default: the pool's).
    """
    classes = np.unique(labels) if classes is None else classes
    allowed = np.ones(len(labels), dtype=bool)
    if params.scenario == "new_classes":
        if params.affected_classes >= len(classes):
            raise DataError(
                f"parameter 'data.affected_classes' is {params.affected_classes} but the source has "
                f"{len(classes)} classes; new_classes needs at least one class in the initial data"
            )
        allowed = ~np.isin(labels, classes[-params.affected_classes :])
    if params.scenario == "concept_drift" and params.affected_classes > len(classes):
        raise DataError(
            f"parameter 'data.affected_classes' is {params.affected_classes} but the source has "
            f"only {len(classes)} classes"
        )
    initial_idx, incremental_idx = split_pool(allowed, params.incremental_fraction, rng)
    initial = pool.iloc[initial_idx].reset_index(drop=True)
    incremental = pool.iloc[incremental_idx].reset_index(drop=True)
    y_initial, y_incremental = labels[initial_idx], labels[incremental_idx]
    if params.scenario == "covariate_shift":
        incremental = shift_inputs(incremental, params.shift_strength)
        if relabel is not None:
            y_incremental = relabel(incremental)
    elif params.scenario == "concept_drift":
        y_incremental = rotate_labels(y_incremental, classes[: params.affected_classes])
    return initial, y_initial, incremental, y_incremental


def new_categories(codes: np.ndarray, incremental: np.ndarray, share: float, new_codes: np.ndarray,
                   rng: np.random.Generator) -> np.ndarray:
    """new_categories: a copy of `codes` (a categorical column's, one a row) in which
    round(share x len(incremental)) of the `incremental` rows, drawn at random, take a code
    drawn uniformly from `new_codes`; every other row keeps its own, so where no code of
    `codes` is one of `new_codes`, the initial rows hold none of them."""
    moved = codes.copy()
    unseen = rng.choice(incremental, size=int(round(share * len(incremental))), replace=False)
    moved[unseen] = rng.choice(new_codes, size=len(unseen))
    return moved


def shift_digits(pixels: pd.DataFrame, strength: float) -> pd.DataFrame:
    """Move every image right by `round(strength)` pixels (at least one), as a moved camera would."""
    step = max(1, int(round(strength)))
    images = pixels.to_numpy().reshape(-1, 8, 8)
    shifted = np.zeros_like(images)
    shifted[:, :, step:] = images[:, :, : 8 - step]
    return pd.DataFrame(shifted.reshape(-1, 64), columns=pixels.columns, index=pixels.index)
