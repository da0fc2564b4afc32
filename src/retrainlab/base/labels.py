"""Label rules every layer shares: a label's plain Python value, and the output units' labels
once new data brings classes. No pandas or numpy needed to import it."""

from __future__ import annotations

from typing import Any


def grown_labels(known: list, new_labels) -> list:
    """The known labels in their order, then labels only the new data has, sorted.

    Keeping the old order keeps each old class on its old output unit.
    """
    seen = set(known)
    return list(known) + sorted({plain(v) for v in new_labels} - seen)


def plain(value: Any) -> Any:
    """numpy scalars to Python ones, so labels compare equal to those read back from JSON."""
    return value.item() if hasattr(value, "item") else value
