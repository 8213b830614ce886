"""Frequencies of time series: infer one, check timestamps against it, regularise and fill gaps.

Used by :mod:`forecast.data.io`. Everything here works on one series at a time, as NumPy arrays
beside a ``DatetimeIndex`` (timestamps in nanoseconds), so the caller keeps the file's line
numbers next to the values for its messages.
"""

from __future__ import annotations

import datetime as _dt
import warnings
from collections import Counter
from dataclasses import dataclass

import numpy as np
import pandas as pd
from pandas.tseries.frequencies import to_offset

from forecast.errors import ConfigError
from forecast.options import FILLS

#: The longest run of missing steps the fill policy may fill when ``max_gap`` is not given.
DEFAULT_MAX_GAP = 24

FILL_CHOICES = FILLS  # the word list lives in forecast.options

_WINDOW = 5  # timestamps per window when inferring a frequency from the regular parts
_MAX_WINDOWS = 200


def resolve_offset(freq):
    """Turns a user's ``freq`` (an alias such as ``"h"`` or an offset) into a pandas offset.

    Raises:
        ConfigError: ``freq`` is not a pandas frequency alias.
    """
    if freq is None:
        return None
    if isinstance(freq, pd.DateOffset):
        return freq
    if not isinstance(freq, str | pd.Timedelta | _dt.timedelta) or freq == "":
        raise ConfigError(
            f"`freq` (--freq, YAML `data.freq`) must be a pandas frequency alias such as 'h', "
            f"'D', '15min', 'W-SUN' or 'MS'. Received: freq={freq!r}"
        )
    try:
        return to_offset(freq)
    except (ValueError, TypeError) as exc:
        hint = f" Did you mean {freq.lower()!r}?" if isinstance(freq, str) else ""
        raise ConfigError(
            f"`freq` (--freq, YAML `data.freq`) is not a pandas frequency alias: received "
            f"freq={freq!r}.{hint} Use an alias such as 'h' (hourly), 'D' (daily), '15min', "
            f"'W-SUN' (weekly) or 'MS' (monthly)."
        ) from exc


def _step_ns(offset, tz) -> int | None:
    """Length of one step in ns when every step has the same length, else None."""
    if tz is not None and not isinstance(tz, _dt.timezone) and str(tz) != "UTC":
        return None  # a zone with daylight saving: calendar steps vary in length
    try:
        step = pd.Timedelta(offset)
    except (ValueError, TypeError):
        return None
    return int(step.value) if step.value > 0 else None


def _offset_from_step(step_ns: int):
    """The neatest alias for a fixed step: 7 days -> '7D', 90 minutes -> '90min'."""
    for unit, size in (("D", 86_400 * 10**9), ("h", 3600 * 10**9), ("min", 60 * 10**9),
                       ("s", 10**9), ("ms", 10**6), ("us", 10**3), ("ns", 1)):
        if step_ns % size == 0:
            count = step_ns // size
            return to_offset(unit if count == 1 else f"{count}{unit}")
    return None  # unreachable: every step is a multiple of 1 ns


def _infer(times: pd.DatetimeIndex):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            found = pd.infer_freq(times)
        except (ValueError, TypeError):
            return None
    if found is None:
        return None
    return found if isinstance(found, pd.DateOffset) else to_offset(found)


def on_grid(times: pd.DatetimeIndex, offset) -> np.ndarray:
    """Positions of sorted, unique ``times`` on the grid of ``offset`` starting at ``times[0]``.

    Returns:
        int64 array of grid positions, with -1 for timestamps that are not on the grid.
    """
    step = _step_ns(offset, times.tz)
    values = times.asi8
    if step is not None:
        delta = values - values[0]
        return np.where(delta % step == 0, delta // step, -1)
    if not offset.is_on_offset(times[0]):
        return np.full(len(times), -1, dtype=np.int64)
    grid = pd.date_range(start=times[0], end=times[-1], freq=offset).as_unit("ns")
    return grid.get_indexer(times).astype(np.int64)


def infer_offset(times: pd.DatetimeIndex):
    """Infers the frequency of sorted, unique timestamps that may have gaps.

    Tries ``pd.infer_freq`` on all timestamps, then on short windows of the series (the regular
    parts between gaps), then the most common difference; a candidate is kept only when every
    timestamp lies on its grid.

    Returns:
        A pandas offset, or None when no frequency fits every timestamp.
    """
    if len(times) < 2:
        return None
    whole = _infer(times) if len(times) >= 3 else None
    if whole is not None:
        return whole
    candidates: Counter = Counter()
    for window in (_WINDOW, 3):
        if len(times) <= window or candidates:
            continue
        starts = np.unique(np.linspace(0, len(times) - window, _MAX_WINDOWS).astype(int))
        for start in starts:
            found = _infer(times[start : start + window])
            if found is not None:
                candidates[found.freqstr] += 1
    diffs = np.diff(times.asi8)
    values, counts = np.unique(diffs[diffs > 0], return_counts=True)
    ordered = [to_offset(alias) for alias, _ in candidates.most_common()]
    if values.size:
        ordered.append(_offset_from_step(int(values[np.argmax(counts)])))
    for offset in ordered:
        if offset is not None and (on_grid(times, offset) >= 0).all():
            return offset
    return None


def snap(times: pd.DatetimeIndex, offset) -> pd.DatetimeIndex:
    """Moves sorted timestamps back onto the grid of ``offset`` anchored at the first one."""
    step = _step_ns(offset, times.tz)
    if step is not None:
        values = times.asi8
        snapped = pd.DatetimeIndex(values[0] + (values - values[0]) // step * step, dtype="M8[ns]")
        return snapped if times.tz is None else snapped.tz_localize("UTC").tz_convert(times.tz)
    moved = [t if offset.is_on_offset(t) else offset.rollback(t) for t in times]
    return pd.DatetimeIndex(moved).as_unit("ns")


@dataclass
class Gap:
    """A run of missing values in one column, as positions ``start..end`` on the grid."""

    column: int
    start: int
    end: int

    @property
    def steps(self) -> int:
        return self.end - self.start + 1


def find_gaps(values: np.ndarray) -> list[Gap]:
    """All runs of NaN in a 2-D array, column by column, in time order."""
    gaps = []
    for column in range(values.shape[1]):
        missing = np.isnan(values[:, column]).astype(np.int8)
        if not missing.any():
            continue
        edges = np.diff(np.concatenate(([0], missing, [0])))
        starts = np.flatnonzero(edges == 1)
        ends = np.flatnonzero(edges == -1) - 1
        gaps.extend(Gap(column, int(s), int(e)) for s, e in zip(starts, ends, strict=True))
    return gaps


def fill_gaps(values: np.ndarray, grid: pd.DatetimeIndex, fill: str) -> np.ndarray:
    """Fills every NaN of ``values`` (already checked to be fillable) by the ``fill`` policy."""
    if fill == "zero":
        return np.nan_to_num(values, nan=0.0, posinf=np.inf, neginf=-np.inf)
    if fill == "ffill":
        return pd.DataFrame(values).ffill().to_numpy(dtype=np.float64)
    x = grid.asi8.astype(np.float64)
    out = values.copy()
    for column in range(values.shape[1]):
        missing = np.isnan(out[:, column])
        if missing.any():
            out[missing, column] = np.interp(x[missing], x[~missing], out[~missing, column])
    return out


def fillable(gap: Gap, n_rows: int, fill: str) -> bool:
    """Whether ``fill`` can fill a gap at all (interpolation needs values on both sides)."""
    if fill == "zero":
        return True
    if fill == "ffill":
        return gap.start > 0
    if fill == "interpolate":
        return gap.start > 0 and gap.end < n_rows - 1
    return False


def check_fill(fill) -> str:
    """Validates the ``fill`` option."""
    if fill not in FILL_CHOICES:
        raise ConfigError(
            f"`fill` (--fill, YAML `data.fill`) must be one of "
            f"{', '.join(repr(c) for c in FILL_CHOICES)}. Received: fill={fill!r}. Use --fill "
            f"error (YAML `data.fill: error`) to refuse any gap instead of keeping NaN."
        )
    return fill


def check_max_gap(max_gap) -> int:
    """Validates ``max_gap``: None (the default, 24 steps) or a whole number of steps >= 0."""
    if max_gap is None:
        return DEFAULT_MAX_GAP
    if isinstance(max_gap, bool) or not isinstance(max_gap, int | np.integer) or max_gap < 0:
        raise ConfigError(
            f"`max_gap` (--max-gap, YAML `data.max_gap`) must be a whole number of steps >= 0 "
            f"(or None for the default of {DEFAULT_MAX_GAP}). Received: max_gap={max_gap!r}"
        )
    return int(max_gap)


__all__ = [
    "DEFAULT_MAX_GAP",
    "FILL_CHOICES",
    "Gap",
    "check_fill",
    "check_max_gap",
    "fill_gaps",
    "fillable",
    "find_gaps",
    "infer_offset",
    "on_grid",
    "resolve_offset",
    "snap",
    "season_for_freq",
    "default_lookback",
    "lookback_choice",
    "HOURLY_LOOKBACK",
]

# -- seasons and lookbacks: computed once, here, for everyone ----------------------------------

_DAY_NS = 86_400 * 10**9


def season_for_freq(freq, default: int | None = None) -> int:
    """The seasonal period of a frequency: the steps of one day, week or year cycle.

    Sub-daily steps give the steps of a day (hourly 24, 15 minutes 96), daily 7, business-daily 5,
    weekly 52, monthly 12, quarterly 4, yearly 1.

    Args:
        freq: a pandas alias (``"h"``, ``"D"``, ``"W-SUN"``, ``"MS"``) or offset.
        default: returned when no period is known for ``freq``; ``None`` raises instead.

    Returns:
        The season length in steps.

    Raises:
        ConfigError: ``freq`` is unknown or has no natural season (and no ``default``).

    Example:
        >>> season_for_freq("h"), season_for_freq("D"), season_for_freq("MS")
        (24, 7, 12)
    """
    try:
        offset = to_offset(freq) if freq is not None else None
    except (ValueError, TypeError):
        offset = None
    season = None
    if offset is not None:
        name = type(offset).__name__
        n = max(int(getattr(offset, "n", 1)), 1)
        if name == "Day" or name == "Hour" or name in ("Minute", "Second", "Milli", "Micro"):
            step = pd.Timedelta(offset).value
            if step < _DAY_NS and _DAY_NS % step == 0:
                season = _DAY_NS // step
            elif step == _DAY_NS:
                season = 7
        elif name == "BusinessDay":
            season = 5 if n == 1 else None
        elif name == "Week":
            season = 52 if n == 1 else None
        elif "Month" in name:
            season = 12 // n if 12 % n == 0 else None
        elif "Quarter" in name:
            season = 4 if n == 1 else None
        elif "Year" in name:
            season = 1
    if season is None:
        if default is not None:
            return int(default)
        raise ConfigError(
            f"no seasonal period is known for frequency {freq!r}; give `season=` explicitly "
            "(e.g. season=24 for hourly data)."
        )
    return int(season)


HOURLY_LOOKBACK = 336  # two weeks: chosen on the ETTh1 validation split (pipelines/etth1.yaml)

_SEASON_WORDS = {24: "a day of hourly data", 7: "a week of daily data", 5: "a business week",
                 52: "a year of weekly data", 12: "a year of monthly data",
                 4: "a year of quarterly data", 48: "a day of half-hourly data",
                 96: "a day of 15-minute data"}


def default_lookback(freq: str | None, horizon: int, train_rows: int | None = None) -> int:
    """A lookback from the frequency: two weeks of hourly data, else two seasons; at least two
    horizons, at most a quarter of the training rows.

    Example:
        >>> default_lookback("h", 24), default_lookback("D", 14)
        (336, 28)
    """
    return lookback_choice(freq, horizon, train_rows)[0]


def lookback_choice(freq: str | None, horizon: int,
                    train_rows: int | None = None) -> tuple[int, str]:
    """``default_lookback`` and why, in words.

    Returns:
        ``(lookback, reason)``, e.g. ``(336, "two weeks of hourly data")``.

    Example:
        >>> lookback_choice("D", 14)
        (28, 'two horizons of 14 steps')
    """
    season = season_for_freq(freq, default=1) if freq else 1
    candidates = [(2 * horizon, f"two horizons of {horizon} steps"), (8, "the minimum of 8 steps")]
    if season > 1:
        word = _SEASON_WORDS.get(season, f"a season of {season} steps")
        candidates.append((2 * season, f"two seasons ({word})"))
    if season == 24:  # hourly
        candidates.append((HOURLY_LOOKBACK, "two weeks of hourly data"))
    lookback, reason = max(candidates, key=lambda c: c[0])
    if train_rows and lookback > max(train_rows // 4, 1):
        lookback = max(train_rows // 4, 1)
        reason = f"a quarter of the {train_rows} training rows (the series is short)"
    return int(lookback), reason
