"""A Keras model with what it takes to read its inputs and name its outputs (`ModelBundle`):
the one object the rest of the code uses, and the last step of loading a model, after its
file (retrainlab.models.files), its inputs (retrainlab.models.inputs) and its outputs
(retrainlab.models.outputs). A bundle saves and loads itself as a directory: model.keras and
meta.json (its columns, labels, contract, compiled settings, task and decision).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pandas as pd

from retrainlab.base.errors import ModelFileError
from retrainlab.base.tasks import CLASSIFICATION, REGRESSION
from retrainlab.data import Feature, encode_labels
from retrainlab.models.files import MODEL_FILE, copy_model, load_keras
from retrainlab.models.inputs import InputContract

META_FILE = "meta.json"


@dataclasses.dataclass
class ModelBundle:
    """A Keras model with what it takes to read its inputs and name its outputs."""

    model: keras.Model
    features: tuple[Feature, ...]
    labels: list  # original label values, in the order of the model's output units (a regressor: none)
    label_column: str
    contract: InputContract | None = None  # None: the project's own MLP (InputContract.of_columns)
    # A brought model's own compiled optimizer and loss (serialised), used to train it further.
    compiled: dict[str, Any] | None = None
    task: str = CLASSIFICATION  # or REGRESSION: one output unit, the label's value in its own units
    # A binary classifier's decision: its positive class and the probability of it at which it
    # predicts it (compare.positive_class, compare.threshold); None: the most probable label.
    decision: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.contract is None:
            self.contract = InputContract.of_columns(self.features)

    def arrays(self, frame: pd.DataFrame) -> dict[str, np.ndarray] | np.ndarray:
        return self.contract.arrays(frame, self.features)

    def inputs(self, frame: pd.DataFrame):
        """The model's inputs for predict: `arrays`, with text as string tensors."""
        arrays = self.arrays(frame)
        texts = arrays.values() if isinstance(arrays, dict) else [arrays]
        if any(v.dtype == object for v in texts):
            # Keras' array adapters take no object arrays; a string tensor needs TensorFlow.
            import tensorflow as tf

            if not isinstance(arrays, dict):
                return tf.constant(arrays)
            arrays = {k: tf.constant(v) if v.dtype == object else v for k, v in arrays.items()}
        return arrays

    def predict_proba(self, frame: pd.DataFrame, batch_size: int = 4096) -> np.ndarray:
        probs = self._outputs(frame, batch_size)
        return np.hstack([1 - probs, probs]) if probs.shape[1] == 1 else probs

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        """What the task's measure scores: class probabilities, or a regressor's numbers (one per row)."""
        if self.regression:  # float64, as the logged signature's double says
            return self._outputs(frame).reshape(-1).astype(np.float64)
        return self.predict_proba(frame)

    def _outputs(self, frame: pd.DataFrame, batch_size: int = 4096) -> np.ndarray:
        inputs = self.inputs(frame)
        if 0 < len(frame) <= batch_size:
            # One batch: Keras' compiled predict step, without the half second `predict` spends
            # setting up its data adapter and step function for each new model.
            return np.asarray(self.model.predict_on_batch(inputs))
        return self.model.predict(inputs, batch_size=batch_size, verbose=0)

    def predict_labels(self, frame: pd.DataFrame) -> np.ndarray:
        """Each row's predicted label: a class, or a regressor's number."""
        if self.regression:
            return self.predict(frame)
        # start-up: the measure's rule, read only where labels are predicted
        from retrainlab.measure.evaluation import decide
        from retrainlab.measure.task import Scoring

        rule = Scoring(positive=self.decision["positive"], threshold=self.decision["threshold"]) if self.decision else None
        return decide(self.predict_proba(frame), self.labels, rule)

    def with_decision(self, rules) -> ModelBundle:
        """The bundle predicting labels as the measure does (`rules`: its Scoring): a binary
        classifier's positive class at its threshold; every saved model carries it, so that
        serving answers what was evaluated."""
        binary = not self.regression and len(self.labels) == 2 and rules.positive is not None
        decision = {"positive": rules.positive, "threshold": rules.threshold} if binary else None
        return dataclasses.replace(self, decision=decision)

    def encode(self, labels: Sequence) -> np.ndarray:
        """Output-unit index of each label, -1 for a label this model has never seen; a
        regressor's targets are the labels themselves, as float32."""
        if self.regression:
            return np.asarray(labels, dtype=np.float32)
        return encode_labels(labels, self.labels)

    @property
    def regression(self) -> bool:
        return self.task == REGRESSION

    @property
    def binary(self) -> bool:
        return self.task == CLASSIFICATION and self.model.outputs[0].shape[-1] == 1

    def detached(self) -> ModelBundle:
        """A copy built outside any tf.distribute scope, with the same weights: what is
        evaluated and saved after distributed training (predicting with the distributed
        model would be a collective step the other workers are not taking)."""
        return dataclasses.replace(self, model=copy_model(self.model))

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.model.save(directory / MODEL_FILE)
        meta = {
            "features": [dataclasses.asdict(f) for f in self.features],
            "labels": self.labels,
            "label_column": self.label_column,
            "contract": self.contract.to_json(),
            "compiled": self.compiled,
            "task": self.task,
        } | ({"decision": self.decision} if self.decision else {})
        (directory / META_FILE).write_text(json.dumps(meta, indent=2) + "\n")

    @classmethod
    def load(cls, directory: Path) -> ModelBundle:
        """Read a saved bundle; a missing or damaged file is a one-line ModelFileError."""
        try:
            meta = json.loads((directory / META_FILE).read_text())
            features = tuple(Feature(**f) for f in meta["features"])
            labels, label_column = meta["labels"], meta["label_column"]
            contract = InputContract.from_json(meta["contract"]) if "contract" in meta else None
        except Exception as exc:  # missing, unreadable, not JSON, or not our layout
            raise ModelFileError(directory / META_FILE, exc) from None
        model = load_keras(directory / MODEL_FILE)
        return cls(model, features, labels, label_column, contract, meta.get("compiled"),
                   meta.get("task", CLASSIFICATION), meta.get("decision"))
