"""forecast: Keras/TensorFlow time-series forecasting with MLflow tracking."""

from forecast.errors import ConfigError, DataError, ForecastError, ModelError

__version__ = "0.1.0"


def load(uri: str):
    """Loads a logged forecaster as an MLflow pyfunc model (imports MLflow on first use).

    Args:
        uri: any model URI MLflow accepts: ``runs:/<run_id>/model``, ``models:/NAME@champion``,
            ``models:/NAME/3`` or a local model folder.

    Returns:
        The ``mlflow.pyfunc.PyFuncModel``; ``.predict(history)`` takes a DataFrame of raw recent
        history (the time column and the input columns, at least ``lookback`` rows) and returns
        the forecast frame (the time column with the future timestamps, then the targets).

    Raises:
        ModelError: nothing loadable is stored at ``uri`` (the message names it).

    Example:
        >>> model = forecast.load("models:/sales@champion")
        >>> model.predict(recent).columns.tolist()
        ['date', 'y']
    """
    from forecast.serving.load import load_model

    return load_model(uri)


__all__ = ["ForecastError", "DataError", "ConfigError", "ModelError", "load", "__version__"]
