"""Serving: a fitted Forecaster as an MLflow pyfunc model — raw history in, forecast frame out.

``log_forecaster`` logs it (a model from code, no pickle); ``load_model`` (also
``forecast.load``) loads it back from any MLflow model URI; ``mlflow models serve -m URI
--env-manager local`` serves it over HTTP.
"""

from forecast.serving.load import load_model
from forecast.serving.log import log_forecaster, pip_requirements
from forecast.serving.pyfunc import (
    ARTIFACT_KEY,
    SERVING_FILE,
    ForecastModel,
    ServingDataError,
    ServingInfo,
    forecast_history,
)

__all__ = [
    "ARTIFACT_KEY",
    "SERVING_FILE",
    "ForecastModel",
    "ServingDataError",
    "ServingInfo",
    "forecast_history",
    "load_model",
    "log_forecaster",
    "pip_requirements",
]
