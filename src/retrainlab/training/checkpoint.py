"""Per-epoch training checkpoints that survive SIGKILL, and resuming from them.

After each epoch the weights go to a new file and then `state.json`, written by rename,
points at it with the epoch number and the per-epoch logs so far. The state therefore
always names a complete weights file, whenever the process dies. (Keras' own
BackupAndRestore overwrites its file in place, so a kill mid-write leaves it unreadable.)
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import keras

from retrainlab.base.files import write_text_atomically

STATE = "state.json"


class EpochCheckpoint(keras.callbacks.Callback):
    """Checkpoint at the end of an epoch once `every_s` seconds have passed since the last one
    (0: every epoch), so short trainings pay nothing and long ones lose at most that much."""

    def __init__(self, directory: Path, history: list[dict[str, float]] | None = None, every_s: float = 0.0) -> None:
        super().__init__()
        self.directory = directory
        self.history = list(history or [])
        self.every_s = every_s
        self._last = time.monotonic()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.history.append({k: float(v) for k, v in (logs or {}).items()})
        if time.monotonic() - self._last < self.every_s:
            return
        self._last = time.monotonic()
        self.directory.mkdir(parents=True, exist_ok=True)
        weights = f"epoch-{epoch + 1}.weights.h5"
        self.model.save_weights(self.directory / weights)
        state = {"epoch": epoch + 1, "weights": weights, "history": self.history}
        write_text_atomically(self.directory / STATE, json.dumps(state))
        for old in self.directory.glob("epoch-*.weights.h5"):
            if old.name != weights:
                old.unlink()


def resume(model: keras.Model, directory: Path) -> tuple[int, list[dict[str, float]]]:
    """Load the last checkpoint into `model`; return the epochs done and their logs (0, [] if none)."""
    path = directory / STATE
    if not path.is_file():
        return 0, []
    state = json.loads(path.read_text())
    model.load_weights(directory / state["weights"])
    return state["epoch"], state["history"]
