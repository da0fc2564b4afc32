"""The tasks a model may do, by name: the one fact every layer reads from summary.json's
`task` (retrainlab.data.task decides it; retrainlab.measure.task says how each is measured)."""

CLASSIFICATION, REGRESSION = "classification", "regression"
TASKS = (CLASSIFICATION, REGRESSION)
