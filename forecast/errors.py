"""Every user-facing failure of the toolkit is a ForecastError.

Messages name the file, column, row or setting involved and say what to do about it. The CLI
prints them as one line (exit code 2) instead of a traceback.
"""

from __future__ import annotations


class ForecastError(Exception):
    """Base class of every error the toolkit reports to its users."""


class DataError(ForecastError):
    """The input data (a CSV file or a DataFrame) cannot be used as given."""


class ConfigError(ForecastError):
    """A setting, argument or configuration file is invalid."""

    @classmethod
    def from_yaml(cls, path, exc: Exception) -> ConfigError:
        """The error for a YAML file PyYAML cannot parse, naming the file and the line.

        Args:
            path: the file.
            exc: the ``yaml.YAMLError`` raised while parsing it.

        Returns:
            A ConfigError to raise (``raise ConfigError.from_yaml(path, exc) from None``).
        """
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        where = f", line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        return cls(f"{path}{where}: not valid YAML: {problem}. Check the indentation and quoting "
                   "there.")


class ModelError(ForecastError):
    """A model cannot be built, trained, saved or loaded as asked."""


class TrackingStoreError(ForecastError):
    """The MLflow tracking store cannot take a write as asked.

    Raised, for instance, when several processes write to one SQLite store at once and the file
    stays locked: the message names the store and says to start ``mlflow server`` (on
    PostgreSQL) for concurrent runs.
    """


def cut(text: str, limit: int = 80) -> str:
    """``text`` cut to at most ``limit`` characters, ending in an ellipsis when cut.

    Example:
        >>> cut("x" * 100, 10)
        'xxxxxxxxx…'
    """
    text = str(text)
    return text if len(text) <= limit else text[: max(limit - 1, 0)] + "…"


def shown(value, limit: int = 80) -> str:
    """``repr(value)`` for a message, at most ``limit`` characters (an ellipsis when cut).

    Safe on anything a user's file can hold: a long string or list is not repr'd whole first,
    and an integer too long for ``repr`` is described by its digit count.

    Example:
        >>> shown("a" * 200, 12)
        "'aaaaaaaaaa…"
        >>> shown(True)
        'True'
    """
    import reprlib

    short = reprlib.Repr()
    short.maxstring = short.maxother = short.maxlong = max(limit, 8)
    short.maxlist = short.maxtuple = short.maxdict = short.maxset = max(limit // 4, 3)
    short.maxlevel = 3
    if isinstance(value, str):
        text = repr(value[: limit + 1])
    elif isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 10_000:
        text = f"<an integer of about {int(value.bit_length() * 0.30103) + 1} digits>"
    else:
        try:
            text = short.repr(value)
        except Exception:  # a value whose repr fails is still named by its type
            text = f"<{type(value).__name__}>"
    return cut(text, limit)
