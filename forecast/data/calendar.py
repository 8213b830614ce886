"""Known-future covariates computed from timestamps alone (so they exist for the horizon too)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from forecast.data.dataset import carry, describe
from forecast.errors import ConfigError

# (name, function of a DatetimeIndex giving a 0-based position, period)
_CYCLES = {
    "hour_of_day": (lambda ix: ix.hour + ix.minute / 60.0, 24.0),
    "day_of_week": (lambda ix: ix.dayofweek, 7.0),
    "day_of_month": (lambda ix: ix.day - 1, 31.0),
    "day_of_year": (lambda ix: ix.dayofyear - 1, 366.0),
    "month_of_year": (lambda ix: ix.month - 1, 12.0),
}


def calendar_cycles(freq: str) -> list[str]:
    """Which calendar cycles carry information at a sampling frequency.

    Args:
        freq: a pandas offset alias such as ``"h"``, ``"15min"``, ``"D"``, ``"W-SUN"``, ``"MS"``.

    Returns:
        Cycle names, e.g. ``["hour_of_day", "day_of_week", "day_of_month", "month_of_year"]``
        for hourly data; an empty list for yearly data.

    Raises:
        ConfigError: ``freq`` is not a pandas frequency.
    """
    try:
        offset = pd.tseries.frequencies.to_offset(freq)
    except (ValueError, TypeError):
        raise ConfigError(
            f"`freq` must be a pandas frequency alias such as 'h', 'D' or 'W'. Received: {freq!r}."
        ) from None
    if isinstance(offset, pd.offsets.Week):
        step = pd.Timedelta(weeks=offset.n)
    else:
        try:
            step = pd.Timedelta(offset)
        except ValueError:  # months, quarters, years have no fixed length
            step = None
    if step is not None and step < pd.Timedelta(days=1):
        return ["hour_of_day", "day_of_week", "day_of_month", "month_of_year"]
    if step is not None and step < pd.Timedelta(days=7):
        return ["day_of_week", "day_of_month", "month_of_year"]
    if step is not None:
        return ["day_of_year", "month_of_year"]
    name = offset.name.upper()
    if name.startswith(("Y", "A")):
        return []
    return ["month_of_year"]


def calendar_feature_names(freq: str) -> list[str]:
    """Column names ``calendar_features`` makes at ``freq`` (``<cycle>_sin``, ``<cycle>_cos``)."""
    return [f"{cycle}_{part}" for cycle in calendar_cycles(freq) for part in ("sin", "cos")]


def calendar_features(index, freq: str) -> pd.DataFrame:
    """Sin/cos encodings of the calendar position of each timestamp.

    Args:
        index: a DatetimeIndex, or a MultiIndex whose last level holds the timestamps.
        freq: the sampling frequency; it decides which cycles are informative.

    Returns:
        A float32 DataFrame on the same index with a ``_sin``/``_cos`` pair per cycle.

    Example:
        >>> calendar_features(pd.date_range("2024-01-01", periods=3, freq="h"), "h").shape
        (3, 8)
    """
    times = index.get_level_values(-1) if isinstance(index, pd.MultiIndex) else index
    times = pd.DatetimeIndex(times)
    columns = {}
    for cycle in calendar_cycles(freq):
        position, period = _CYCLES[cycle]
        angle = 2.0 * np.pi * np.asarray(position(times), dtype=np.float64) / period
        columns[f"{cycle}_sin"] = np.sin(angle).astype(np.float32)
        columns[f"{cycle}_cos"] = np.cos(angle).astype(np.float32)
    return pd.DataFrame(columns, index=index)


def add_calendar_features(frame: pd.DataFrame, freq: str | None = None) -> pd.DataFrame:
    """Returns ``frame`` with the calendar feature columns appended (attrs kept).

    Args:
        frame: a frame from ``load_csv``.
        freq: defaults to the frame's own (``describe(frame).freq``).

    Raises:
        ConfigError: no frequency is known.
    """
    freq = freq or describe(frame).freq
    if not freq:
        raise ConfigError("calendar features need a frequency: pass --freq (YAML `data.freq`), "
                          "e.g. --freq h.")
    features = calendar_features(frame.index, freq)
    out = pd.concat([frame, features], axis=1)
    return carry(frame, out)
