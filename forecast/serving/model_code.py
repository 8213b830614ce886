"""The MLflow "model from code" file of the served forecaster.

``log_forecaster`` passes this file's path as ``python_model``; MLflow copies it into the logged
model and runs it at load time, so the model object is never pickled. Loading needs the
``forecast`` package importable in the serving environment (``--env-manager local``).
"""

import mlflow.models

from forecast.serving.pyfunc import ForecastModel

mlflow.models.set_model(ForecastModel())
