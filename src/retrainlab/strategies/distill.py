"""Distillation from the old model (Learning without Forgetting, Li & Hoiem 2016).

The baseline is trained on the new data with one more loss term per row: the
Kullback-Leibler divergence from the baseline's own softened predictions on the old classes
to the model's, times temperature squared (so the term's gradients keep their scale as the
temperature changes, as Hinton et al. 2015 advise), times `weight`. A regressor's term is
the squared distance from the baseline's predicted value, times `weight`, in the same
units as its squared error on the label (the temperature has nothing to soften there). It
reads no old rows, which matters where the old data may no longer be kept.
"""

import dataclasses

import numpy as np

from retrainlab.base.kinds import LABEL_SHIFT, MORE_OF_THE_SAME
from retrainlab.config import require
from retrainlab.strategies.declaration import NEW, Card, Context, Plan, Rows, Strategy, Training

PREDICT_ROWS = 4096
EPSILON = 1e-7


@dataclasses.dataclass(frozen=True)
class DistillSettings(Training):
    DOCS = {
        "epochs, learning_rate": "as incremental",
        "temperature, weight": ("softening of both models' outputs (classifiers); weight of the distillation term "
                                "against the cross-entropy (a regressor's: against the squared error)"),
    }

    epochs: int = 15
    learning_rate: float = 0.0005
    temperature: float = 2.0  # softens both models' outputs before they are compared
    weight: float = 1.0  # of the distillation term, against the new labels' cross-entropy

    def check(self, key: str) -> None:
        super().check(key)
        require(0 < self.temperature <= 100, f"{key}.temperature", "must be in (0, 100]")
        require(0 < self.weight <= 1000, f"{key}.weight", "must be in (0, 1000] (0 would be plain incremental)")


def as_class_probabilities(probabilities, ops=np):
    """One sigmoid unit's output as the two classes' probabilities."""
    if probabilities.shape[-1] == 1:
        return ops.concatenate([1 - probabilities, probabilities], axis=-1)
    return probabilities


def softened(probabilities: np.ndarray, temperature: float) -> np.ndarray:
    """softmax(log(p) / T): the distribution a softmax at temperature T would have given."""
    logits = np.log(np.clip(probabilities, EPSILON, 1.0)) / temperature
    logits -= logits.max(axis=-1, keepdims=True)
    weights = np.exp(logits)
    return weights / weights.sum(axis=-1, keepdims=True)


class Distillation:
    """The distillation loss term toward a fixed teacher's outputs on its own classes,
    which are the student's first output units (growing the output keeps them there)."""

    def __init__(self, teacher, temperature: float, weight: float) -> None:
        self.source = teacher  # a Keras model; never trained here
        self.temperature, self.weight = temperature, weight
        self.width = max(2, teacher.outputs[0].shape[-1])  # the teacher's classes
        self._teacher = None

    @property
    def teacher(self):
        """A private copy of the teacher, made where the targets are computed (the input
        pipeline's thread, outside any tf.distribute scope): predicting with a model built
        under a multi-worker strategy would be a collective step the other workers are not
        taking."""
        if self._teacher is None:
            # start-up: no TensorFlow until a plan is made (the CLI, prepare and compare import the catalogue)
            from retrainlab.models.files import copy_model

            self._teacher = copy_model(self.source)
        return self._teacher

    def predicted(self, inputs) -> np.ndarray:
        """The teacher's outputs for these rows, PREDICT_ROWS at a time, as float64."""
        n = len(inputs if not isinstance(inputs, dict) else next(iter(inputs.values())))
        chunks = []
        for start in range(0, n, PREDICT_ROWS):
            part = ({k: v[start:start + PREDICT_ROWS] for k, v in inputs.items()} if isinstance(inputs, dict)
                    else inputs[start:start + PREDICT_ROWS])
            chunks.append(np.asarray(self.teacher.predict_on_batch(part), dtype=np.float64))
        return np.concatenate(chunks) if chunks else np.zeros((0, self.source.outputs[0].shape[-1]))

    def targets(self, inputs) -> np.ndarray:
        """The teacher's softened class probabilities for these rows."""
        return softened(as_class_probabilities(self.predicted(inputs)), self.temperature).astype(np.float32)

    def __call__(self, targets, probabilities):
        # start-up: no TensorFlow until a plan is made (the CLI, prepare and compare import the catalogue)
        from keras import ops

        student = as_class_probabilities(probabilities, ops)[:, : self.width]
        logits = ops.log(ops.clip(student, EPSILON, 1.0)) / self.temperature
        log_student = logits - ops.logsumexp(logits, axis=-1, keepdims=True)
        log_teacher = ops.log(ops.clip(targets, EPSILON, 1.0))
        divergence = ops.sum(targets * (log_teacher - log_student), axis=-1)
        return self.weight * self.temperature**2 * divergence


class ValueDistillation(Distillation):
    """A regressor's distillation term: the squared distance of the student's number from the
    fixed teacher's, for each row, times `weight`."""

    def __init__(self, teacher, weight: float) -> None:
        super().__init__(teacher, 1.0, weight)
        self.width = 1

    def targets(self, inputs) -> np.ndarray:
        """The teacher's predicted values for these rows."""
        return self.predicted(inputs).reshape(-1, 1).astype(np.float32)

    def __call__(self, targets, predictions):
        # start-up: no TensorFlow until a plan is made (the CLI, prepare and compare import the catalogue)
        from keras import ops

        return self.weight * ops.square(predictions[:, 0] - ops.cast(targets[:, 0], predictions.dtype))


def distill(ctx: Context) -> Plan:
    """The baseline, its output grown for any new class, trained on the new rows with the
    distillation term toward the baseline of the same seed (a regressor: toward its values)."""
    s = ctx.settings
    term = (ValueDistillation(ctx.base.model, s.weight) if ctx.base.regression
            else Distillation(ctx.base.model, s.temperature, s.weight))
    return ctx.plan(ctx.grown(), (Rows(NEW),), loss_terms=(term,))


STRATEGY = Strategy(
    name="distill", rank=50, plan=distill, settings=DistillSettings,
    summary="keep training on the new data while matching the old model's outputs (no old rows needed)",
    action="Keep training it on the new data, distilling from the current model",
    suits=frozenset({LABEL_SHIFT, MORE_OF_THE_SAME}),
    card=Card(
        starts="the baseline",
        trains_on="new rows, plus a distillation term toward the baseline",
        needs_old="no",
        extra_cost="a forward pass of the baseline per row and epoch",
        on_your_model="as `incremental`, with the distillation term toward your model's own predictions",
        source="Li & Hoiem, *Learning without Forgetting*, 2016",
    ),
)
