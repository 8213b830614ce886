"""How a CSV file is read: ``ReadOptions`` (separator, decimal mark, time column, date layout,
time zone), kept with the model so that training and serving read a file the same way.

``load_csv`` takes a ``ReadOptions`` (fields left ``None`` are detected) and reports the settings
it used on the frame's ``SeriesInfo`` (``describe(frame).reading``). ``log_forecaster`` saves
them in ``serving.json``; the served model and ``forecast predict --csv`` read history with them.

Also here: words for frequencies (``"hourly (h)"``), the check that a path is a regular file,
and the daylight-saving hints given when a naive local-time file skips or repeats an hour.

Example:
    >>> frame = load_csv("sales.csv", reading=ReadOptions(sep=";", decimal=",", dayfirst=True))
    >>> describe(frame).reading
    ReadOptions(sep=';', decimal=',', time_col='date', date_format=None, dayfirst=True, tz=None)
"""

from __future__ import annotations

import os
import stat
import warnings
from dataclasses import asdict, dataclass, fields, replace

import pandas as pd
from pandas.tseries.frequencies import to_offset

from forecast.errors import ConfigError, DataError

DECIMALS = (".", ",")

#: Zones whose daylight-saving changes the loader recognises in naive local-time files.
DST_ZONES = ("Europe/Berlin", "Europe/London", "Europe/Helsinki", "America/New_York",
             "America/Chicago", "America/Denver", "America/Los_Angeles", "Australia/Sydney",
             "Pacific/Auckland")


@dataclass(frozen=True)
class ReadOptions:
    """How a CSV file's text becomes timestamps and numbers.

    Every field left ``None`` is detected by ``load_csv``; the frame's ``describe(frame).reading``
    holds what was used, and the served model reads history with the same settings.

    Attributes:
        sep: the field separator (``,`` ``;`` tab ``|``). CLI ``--sep``.
        decimal: the decimal mark of the numbers, ``"."`` or ``","``. CLI ``--decimal``.
        time_col: the timestamp column. CLI ``--time-col``.
        date_format: a ``strftime`` layout of the timestamps, e.g. ``"%d/%m/%Y %H:%M"``.
            CLI ``--date-format``.
        dayfirst: ``True`` reads ``01/02/2024`` as 1 February, ``False`` as 2 January; ``None``
            decides from the data (and refuses when both readings fit). CLI
            ``--dayfirst/--monthfirst``.
        tz: the time zone of naive (offset-free) timestamps, e.g. ``"Europe/Berlin"``: they are
            read as local time there (daylight-saving changes included) and converted to UTC.
            CLI ``--tz``.
    """

    sep: str | None = None
    decimal: str | None = None
    time_col: str | None = None
    date_format: str | None = None
    dayfirst: bool | None = None
    tz: str | None = None

    def __post_init__(self):
        if self.sep is not None and (not isinstance(self.sep, str) or len(self.sep) != 1
                                     or self.sep in "\"\r\n" or self.sep in DECIMALS[:1]):
            raise ConfigError(f"`sep` (--sep) must be one character such as ',', ';', '|' or a "
                              f"tab. Received: sep={self.sep!r}")
        if self.decimal is not None and self.decimal not in DECIMALS:
            raise ConfigError(f"`decimal` (--decimal) must be '.' or ','. Received: "
                              f"decimal={self.decimal!r}")
        if self.sep is not None and self.sep == self.decimal:
            raise ConfigError(f"`sep` and `decimal` must differ. Received: sep={self.sep!r}, "
                              f"decimal={self.decimal!r}. A file with decimal commas is usually "
                              f"separated by ';'.")
        if self.time_col is not None and (not isinstance(self.time_col, str) or not self.time_col):
            raise ConfigError(f"`time_col` (--time-col) must be a column name. Received: "
                              f"time_col={self.time_col!r}")
        if self.date_format is not None and (not isinstance(self.date_format, str)
                                             or "%" not in self.date_format):
            raise ConfigError(f"`date_format` (--date-format) must be a strftime layout such as "
                              f"'%d/%m/%Y %H:%M'. Received: date_format={self.date_format!r}")
        if self.dayfirst is not None and not isinstance(self.dayfirst, bool):
            raise ConfigError(f"`dayfirst` must be True (--dayfirst), False (--monthfirst) or "
                              f"None (decide from the data). Received: dayfirst={self.dayfirst!r}")
        if self.tz is not None:
            check_tz(self.tz)

    def to_dict(self) -> dict:
        """Plain JSON-ready data."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict | None) -> ReadOptions:
        """Rebuilds from ``to_dict`` output; unknown keys (from newer versions) are ignored.

        Raises:
            ConfigError: a value is invalid.
        """
        if isinstance(data, ReadOptions):
            return data
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in (data or {}).items() if k in known})

    def with_(self, **changes) -> ReadOptions:
        """A copy with ``changes``."""
        return replace(self, **changes)

    def summary(self) -> str:
        """One line for people, e.g. ``sep ';', decimal ',', dates day-first, tz Europe/Berlin``."""
        sep = "tab" if self.sep == "\t" else repr(self.sep) if self.sep else "detected"
        parts = [f"sep {sep}", f"decimal {self.decimal or '.'!r}"]
        if self.date_format:
            parts.append(f"date format {self.date_format!r}")
        if self.dayfirst is not None:
            parts.append("dates day-first" if self.dayfirst else "dates month-first")
        parts.append(f"tz {self.tz} (converted to UTC)" if self.tz else "tz as written")
        return ", ".join(parts)


def as_read_options(reading) -> ReadOptions:
    """``None`` → defaults; a dict → ``ReadOptions``; a ``ReadOptions`` passes.

    Raises:
        ConfigError: anything else, or an invalid value.
    """
    if reading is None:
        return ReadOptions()
    if isinstance(reading, ReadOptions):
        return reading
    if isinstance(reading, dict):
        return ReadOptions.from_dict(reading)
    raise ConfigError(f"`reading` must be a ReadOptions (or a dict of its fields). Received: "
                      f"reading={reading!r}")


def check_tz(tz) -> str:
    """Validates a time zone name.

    Raises:
        ConfigError: ``tz`` is not a known zone.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pd.Timestamp("2000-01-01").tz_localize(tz)
    except Exception:  # noqa: BLE001 - pytz, zoneinfo and dateutil raise different errors
        raise ConfigError(f"`tz` (--tz) is not a known time zone. Received: tz={tz!r}. Use an "
                          f"IANA name such as 'Europe/Berlin', 'America/New_York' or 'UTC'.") \
            from None
    return tz


def require_regular_file(path, source: str, flag: str = "the path of a CSV file") -> None:
    """Refuses a path that is missing or not a regular file (a FIFO, a device, a directory).

    Raises:
        DataError: naming the path and what it is.
    """
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise DataError(f"{source!r}: file not found. Check the path (relative paths start at "
                        f"the working directory {os.getcwd()!r}).") from None
    except OSError as exc:
        raise DataError(f"{source!r}: cannot be read ({exc.strerror or exc}). Check the path "
                        f"and its permissions.") from None
    if stat.S_ISREG(mode):
        return
    kind = ("a directory" if stat.S_ISDIR(mode) else "a FIFO (named pipe)" if stat.S_ISFIFO(mode)
            else "a character device" if stat.S_ISCHR(mode) else "a block device"
            if stat.S_ISBLK(mode) else "a socket" if stat.S_ISSOCK(mode) else "not a regular file")
    extra = " Pass the path of a .csv file inside it." if stat.S_ISDIR(mode) else (
        " Save the data to a regular .csv file first and pass that.")
    raise DataError(f"{source!r}: is {kind}, not a regular CSV file; pass {flag}.{extra}")


# -- frequencies in words --------------------------------------------------------------------

_UNIT_WORDS = {"D": ("daily", "day"), "h": ("hourly", "hour"), "min": ("minutely", "minute"),
               "s": ("secondly", "second"), "ms": ("millisecond", "millisecond"),
               "us": ("microsecond", "microsecond"), "ns": ("nanosecond", "nanosecond")}


def freq_words(freq, alias: bool = True) -> str:
    """A frequency for people: ``"hourly (h)"``, ``"15-minute (15min)"``, ``"monthly (MS)"``;
    without ``alias`` just the word (``"hourly"``)."""
    try:
        offset = to_offset(freq)
    except (ValueError, TypeError):
        return repr(freq)
    code = offset.freqstr
    name, n = type(offset).__name__, int(getattr(offset, "n", 1))
    base = code.lstrip("0123456789").split("-")[0]
    word = None
    if base in _UNIT_WORDS:
        single, unit = _UNIT_WORDS[base]
        word = single if n == 1 else f"{n}-{unit}"
    elif "Month" in name:
        word = "monthly" if n == 1 else f"{n}-month"
    elif "Quarter" in name:
        word = "quarterly"
    elif "Year" in name:
        word = "yearly"
    elif name == "Week":
        word = "weekly" if n == 1 else f"{n}-week"
    elif name == "BusinessDay":
        word = "business-daily"
    if not word:
        return repr(code) if alias else f"{code!r}-step"
    return f"{word} ({code})" if alias else word


def nominal_step(offset, start) -> pd.Timedelta | None:
    """The typical length of one step of ``offset`` near ``start`` (a month: about 30 days)."""
    try:
        grid = pd.date_range(start=offset.rollback(start) if not offset.is_on_offset(start)
                             else start, periods=9, freq=offset)
    except (ValueError, TypeError, OverflowError, pd.errors.OutOfBoundsDatetime):
        return None
    steps = grid[1:] - grid[:-1]
    return pd.Series(steps).median() if len(steps) else None


def same_scale(own, wanted, start) -> bool:
    """Whether two frequencies step at about the same pace (``W-SUN`` and ``W-MON``, ``D`` and
    ``24h``, ``MS`` and ``ME``): within a third of each other."""
    if own.freqstr == wanted.freqstr:
        return True
    a, b = nominal_step(own, start), nominal_step(wanted, start)
    if a is None or b is None or b.value <= 0:
        return True  # cannot tell: keep the old behaviour (snap onto the grid)
    ratio = a.value / b.value
    return 0.75 <= ratio <= 4 / 3


# -- daylight saving -------------------------------------------------------------------------


def _zones_where(stamp: pd.Timestamp, problem: str) -> list[str]:
    """The zones of ``DST_ZONES`` where a naive ``stamp`` does not exist (``"nonexistent"``)
    or exists twice (``"ambiguous"``)."""
    if stamp.tzinfo is not None or not 0 <= stamp.hour <= 4:
        return []
    found = []
    for zone in DST_ZONES:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                stamp.tz_localize(zone, ambiguous="raise", nonexistent="raise")
        except Exception as exc:  # noqa: BLE001 - pytz/zoneinfo name these errors differently
            kind = type(exc).__name__.lower()
            text = str(exc).lower()
            if problem == "nonexistent" and ("nonexistent" in kind or "nonexistent" in text):
                found.append(zone)
            elif problem == "ambiguous" and ("ambiguous" in kind or "cannot infer dst" in text
                                             or "ambiguous" in text):
                found.append(zone)
    return found


def dst_hint(stamp, problem: str) -> str:
    """The sentence explaining that a missing (``problem="nonexistent"``) or repeated
    (``"ambiguous"``) naive hour is a daylight-saving change, or ``""`` when it is not one."""
    stamp = pd.Timestamp(stamp)
    zones = _zones_where(stamp, problem)
    if not zones:
        return ""
    shown = ", ".join(zones[:3]) + (f" and {len(zones) - 3} more" if len(zones) > 3 else "")
    what = ("clocks jump forward there, so that hour does not exist in local time"
            if problem == "nonexistent" else
            "clocks go back there, so that hour happens twice in local time")
    return (f"{stamp} is a daylight-saving change in {shown} ({what}): the timestamps look like "
            f"local time without a UTC offset. Pass --tz {zones[0]} (reading key tz: "
            f"{zones[0]!r}) to read them as local time and convert them to UTC, or --tz UTC if "
            f"they are UTC")


__all__ = ["DECIMALS", "DST_ZONES", "ReadOptions", "as_read_options", "check_tz", "dst_hint",
           "freq_words", "nominal_step", "require_regular_file", "same_scale"]
