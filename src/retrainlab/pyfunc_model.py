"""The logged model as MLflow sees it: raw feature columns in, original labels out.

`mlflow.pyfunc.load_model("models:/NAME/VERSION").predict(frame)` and
`mlflow models serve` both come through here. The Keras model is read in its native
format with safe mode on; this class holds no data, only how to read the bundle.
"""

from __future__ import annotations

from pathlib import Path

import mlflow.pyfunc
import pandas as pd

BUNDLE_ARTIFACT = "bundle"


class RetrainlabModel(mlflow.pyfunc.PythonModel):
    def load_context(self, context) -> None:
        from retrainlab.models import ModelBundle

        self.bundle = ModelBundle.load(Path(context.artifacts[BUNDLE_ARTIFACT]))

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        labels = self.bundle.predict_labels(model_input)
        return pd.DataFrame({self.bundle.label_column: list(labels)})
