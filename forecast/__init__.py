"""forecast: Keras/TensorFlow time-series forecasting with MLflow tracking."""

from forecast.errors import ConfigError, DataError, ForecastError, ModelError

__version__ = "0.1.0"

__all__ = ["ForecastError", "DataError", "ConfigError", "ModelError", "__version__"]
