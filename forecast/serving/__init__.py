"""Serving: a fitted Forecaster as an MLflow pyfunc model — raw history in, forecast frame out.

``log_forecaster`` logs it (a model from code, no pickle); ``load_model`` (also
``forecast.load``) loads it back from any MLflow model URI after ``verify_model_folder`` has
checked that its code file is the ``model_code.py`` this version of forecast writes;
``forecast serve URI`` (``forecast.serving.server``) serves it over HTTP behind a request guard.
A global model over many series (``forecast train --id-col``) is the same pyfunc: long-format
history of any of its series in, long-format forecasts out.
"""

from forecast.serving.load import load_model, verify_model_folder
from forecast.serving.log import log_forecaster, pip_requirements
from forecast.serving.pyfunc import (
    ARTIFACT_KEY,
    SERVING_FILE,
    ForecastModel,
    NonFiniteForecastError,
    ServingDataError,
    ServingInfo,
    forecast_history,
    read_served_history,
    unseen_series_rule,
)

__all__ = [
    "ARTIFACT_KEY",
    "SERVING_FILE",
    "ForecastModel",
    "NonFiniteForecastError",
    "ServingDataError",
    "ServingInfo",
    "forecast_history",
    "load_model",
    "log_forecaster",
    "pip_requirements",
    "read_served_history",
    "unseen_series_rule",
    "verify_model_folder",
]
