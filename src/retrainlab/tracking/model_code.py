"""The model's code as MLflow logs it ("models from code"): loading runs this file, so
no Python object is pickled into the model and none is unpickled when it is loaded."""

from mlflow.models import set_model

from retrainlab.tracking.pyfunc_model import RetrainlabModel

set_model(RetrainlabModel())
