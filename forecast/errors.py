"""Every user-facing failure of the toolkit is a ForecastError.

Messages name the file, column, row or setting involved and say what to do about it. The CLI
prints them as one line (exit code 2) instead of a traceback.
"""


class ForecastError(Exception):
    """Base class of every error the toolkit reports to its users."""


class DataError(ForecastError):
    """The input data (a CSV file or a DataFrame) cannot be used as given."""


class ConfigError(ForecastError):
    """A setting, argument or configuration file is invalid."""


class ModelError(ForecastError):
    """A model cannot be built, trained, saved or loaded as asked."""


class TrackingStoreError(ForecastError):
    """The MLflow tracking store cannot take a write as asked.

    Raised, for instance, when several processes write to one SQLite store at once and the file
    stays locked: the message names the store and says to start ``mlflow server`` (on
    PostgreSQL) for concurrent runs.
    """
