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

#: The longest run of missing steps the fill policy may fill when ``max_gap`` is not given.
DEFAULT_MAX_GAP = 24

FILL_CHOICES = ("interpolate", "ffill", "zero", "error")

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
            f"`freq` must be a pandas frequency alias such as 'h', 'D', '15min', 'W-SUN' or "
            f"'MS'. Received: freq={freq!r}"
        )
    try:
        return to_offset(freq)
    except (ValueError, TypeError) as exc:
        hint = f" Did you mean {freq.lower()!r}?" if isinstance(freq, str) else ""
        raise ConfigError(
            f"`freq` is not a pandas frequency alias: received freq={freq!r}.{hint} Use an alias "
            f"such as 'h' (hourly), 'D' (daily), '15min', 'W-SUN' (weekly) or 'MS' (monthly)."
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
            f"`fill` must be one of {', '.join(repr(c) for c in FILL_CHOICES)}. Received: "
            f"fill={fill!r}. Use fill='error' to refuse any gap instead of keeping NaN."
        )
    return fill


def check_max_gap(max_gap) -> int:
    """Validates ``max_gap``: None (the default, 24 steps) or a whole number of steps >= 0."""
    if max_gap is None:
        return DEFAULT_MAX_GAP
    if isinstance(max_gap, bool) or not isinstance(max_gap, int | np.integer) or max_gap < 0:
        raise ConfigError(
            f"`max_gap` must be a whole number of steps >= 0 (or None for the default of "
            f"{DEFAULT_MAX_GAP}). Received: max_gap={max_gap!r}"
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
]
