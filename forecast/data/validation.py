"""Column checks of the loader: find and parse the time column, pick and coerce numeric columns.

Used by :mod:`forecast.data.io`. Cells arrive as the strings of a CSV file or as the values of a
user's DataFrame; every failure is a :class:`~forecast.errors.DataError` that names the source,
the column and the line (file) or row (frame) and says what to do.
"""

from __future__ import annotations

import logging
import re
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from pandas.tseries.api import guess_datetime_format

from forecast.data.frequency import infer_offset, on_grid
from forecast.data.reading import freq_words, same_scale
from forecast.errors import ConfigError, DataError

logger = logging.getLogger("forecast.data.io")

MISSING_TOKENS = frozenset({"", "na", "n/a", "nan", "null", "none", "#n/a", "nat", "-nan"})
_TIME_NAMES = frozenset({"date", "time", "timestamp", "datetime", "ds"})
_TZ_SUFFIX = re.compile(
    r"\d:\d{2}(?::\d{2}(?:[.,]\d+)?)?\s*(?:z|utc|gmt|[+-]\d{2}(?::?\d{2})?)$", re.IGNORECASE
)
_DECIMAL_COMMA = re.compile(r"^[+-]?\d*,\d+$|^[+-]?\d+$")
_SAMPLE = 50  # cells looked at when guessing what a column holds
_LOW, _HIGH = pd.Timestamp.min.as_unit("ns"), pd.Timestamp.max.as_unit("ns")
#: The largest magnitude a value may have: the model computes in float32.
FLOAT32_MAX = float(np.finfo(np.float32).max)


@dataclass(frozen=True)
class Rows:
    """How messages point at a row: ``line 17`` of a file (the header is line 1) or ``row 17`` of
    a DataFrame (the first data row is row 1)."""

    source: str
    kind: str = "line"  # "line" (CSV file) or "row" (DataFrame)

    def at(self, number) -> str:
        return f"{self.kind} {int(number)}"

    @property
    def convention(self) -> str:
        if self.kind == "line":
            return "line 1 is the header"
        return "row 1 is the first data row"

    def error(self, message: str) -> DataError:
        return DataError(f"{self.source!r}: {message}")


def quote_list(names, limit: int = 20) -> str:
    names = [str(n) for n in names]
    shown = ", ".join(repr(n) for n in names[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")


def _strings(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Stripped cell strings and a mask of missing cells (empty, NA tokens, None, NaN)."""
    raw = values.to_numpy(dtype=object)
    missing = np.asarray(pd.isna(raw), dtype=bool)
    text = np.char.strip(np.where(missing, "", raw).astype(str))
    missing = missing | np.isin(np.char.lower(text), list(MISSING_TOKENS))
    return text.astype(object), missing


def _is_text(values: pd.Series) -> bool:
    return not (pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values)
                or isinstance(values.dtype, pd.DatetimeTZDtype)
                or pd.api.types.is_datetime64_any_dtype(values))


def _parse_numbers(text: np.ndarray, decimal_comma: bool) -> np.ndarray:
    if decimal_comma:
        text = np.array([t.replace(",", ".") for t in text], dtype=object)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parsed = pd.to_numeric(pd.Series(text, dtype=object), errors="coerce")
    return parsed.to_numpy(dtype=np.float64, na_value=np.nan)


def _all_numbers(values: pd.Series) -> np.ndarray | None:
    """Fast path: the column as float64 when every cell parses as a number, else None."""
    numbers = _parse_numbers(values.to_numpy(dtype=object), False)
    return None if np.isnan(numbers).any() else numbers


def _uses_decimal_comma(text: np.ndarray, missing: np.ndarray, delimiter: str) -> bool:
    present = text[~missing]
    return (delimiter != "," and present.size > 0 and any("," in t for t in present)
            and all(_DECIMAL_COMMA.match(t) for t in present))


def looks_numeric(values: pd.Series, delimiter: str = ",") -> bool:
    """Whether a column holds numbers: a numeric dtype, or text that mostly parses as numbers."""
    if pd.api.types.is_bool_dtype(values):
        return False
    if pd.api.types.is_numeric_dtype(values):
        return True
    if not _is_text(values):
        return False
    if _all_numbers(values) is not None:
        return True
    text, missing = _strings(values)
    present = ~missing
    if not present.any():
        return False
    numbers = _parse_numbers(text[present], _uses_decimal_comma(text, missing, delimiter))
    return np.isfinite(numbers).sum() + np.isinf(numbers).sum() >= 0.5 * present.sum()


def decimal_comma_column(values: pd.Series, delimiter: str = ",") -> bool:
    """Whether a text column is written with decimal commas (detected as ``coerce_numeric``
    does when no decimal mark is given: only in files not separated by commas)."""
    if not _is_text(values) or _all_numbers(values) is not None:
        return False
    text, missing = _strings(values)
    return _uses_decimal_comma(text, missing, delimiter)


def coerce_numeric(values: pd.Series, name, rows: Rows, labels: np.ndarray,
                   delimiter: str = ",", decimal: str | None = None) -> np.ndarray:
    """Converts a column to float64; missing cells become NaN.

    Args:
        decimal: the decimal mark of text cells, ``"."`` or ``","``; None detects it (decimal
            commas only in files not separated by commas).

    Raises:
        DataError: a cell holds text that is not a number (names the line and the value), a
            cell is infinite, or its magnitude exceeds float32's range (the model's precision).
    """
    if pd.api.types.is_bool_dtype(values) or pd.api.types.is_numeric_dtype(values):
        numbers = values.to_numpy(dtype=np.float64, na_value=np.nan)
    elif not _is_text(values):
        raise rows.error(
            f"column {name!r} holds {values.dtype} values, not numbers. Pass it as --time-col "
            f"(YAML `data.time_col`) or leave it out of --target and --covariate (YAML "
            f"`data.targets`, `data.covariates`)."
        )
    elif (fast := _all_numbers(values)) is not None:
        numbers = fast
    else:
        text, missing = _strings(values)
        numbers = np.full(len(text), np.nan)
        comma = (decimal == "," if decimal is not None
                 else _uses_decimal_comma(text, missing, delimiter))
        numbers[~missing] = _parse_numbers(text[~missing], comma)
        bad = np.flatnonzero(~missing & np.isnan(numbers))
        if bad.size:
            first = bad[0]
            hint = ""
            if not comma and _DECIMAL_COMMA.match(text[first]):
                hint = (" It looks like a decimal comma: pass --decimal ',' (reading key "
                        "decimal: ',') to read it as a number.")
            raise rows.error(
                f"column {name!r} must hold numbers, but {rows.at(labels[first])} "
                f"({rows.convention}) holds {text[first]!r}"
                + (f", and {bad.size - 1} more cell(s) are not numbers" if bad.size > 1 else "")
                + ". Fix or remove those cells (empty cells count as missing values), or leave "
                "the column out of --target and --covariate (YAML `data.targets`, "
                "`data.covariates`)." + hint
            )
    infinite = np.flatnonzero(np.isinf(numbers))
    if infinite.size:
        first = infinite[0]
        raise rows.error(
            f"column {name!r} holds an infinite value ({numbers[first]}) on "
            f"{rows.at(labels[first])} ({rows.convention})"
            + (f" and {infinite.size - 1} more" if infinite.size > 1 else "")
            + ". Replace it with a finite number or leave the cell empty to have it filled."
        )
    huge = np.flatnonzero(np.abs(numbers) > FLOAT32_MAX)
    if huge.size:
        first = huge[0]
        raise rows.error(
            f"column {name!r} holds {numbers[first]:.6g} on {rows.at(labels[first])} "
            f"({rows.convention})" + (f" and {huge.size - 1} more such value(s)"
                                      if huge.size > 1 else "")
            + f", beyond the float32 range (magnitude at most {FLOAT32_MAX:.3g}) the model "
            "computes in. Rescale the column (e.g. divide it by a power of ten) or fix the value."
        )
    return numbers


# --------------------------------------------------------------------------- time column


def _name_is_time(name) -> bool:
    tokens = re.split(r"[^a-z0-9]+", str(name).lower())
    return bool(_TIME_NAMES.intersection(tokens))


def _values_are_times(values: pd.Series) -> bool:
    if isinstance(values.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_any_dtype(
        values
    ):
        return True
    if not _is_text(values):
        return False
    text, missing = _strings(values.iloc[: _SAMPLE * 4])
    sample = text[~missing][:_SAMPLE]
    if sample.size == 0 or np.isfinite(_parse_numbers(sample, False)).any():
        return False
    if all(_DECIMAL_COMMA.match(t) for t in sample):  # numbers written with decimal commas
        return False
    sample = pd.Series(sample, dtype=object)
    if _to_datetime(sample, utc=True).notna().mean() >= 0.8:
        return True
    return _to_datetime(sample, utc=True, fmt="mixed").notna().mean() >= 0.8


def time_candidates(frame: pd.DataFrame) -> list:
    """Columns that look like timestamps, by name (date, time, timestamp, ds) or by value."""
    return [c for c in frame.columns if _name_is_time(c) or _values_are_times(frame[c])]


def find_time_column(frame: pd.DataFrame, rows: Rows):
    """The one column that holds the timestamps.

    Raises:
        DataError: no column or more than one column looks like timestamps.
    """
    found = time_candidates(frame)
    if len(found) == 1:
        return found[0]
    if not found:
        raise rows.error(
            f"found no time column among the columns {quote_list(frame.columns)}: none is named "
            f"like date/time/timestamp/ds or holds timestamps. Pass --time-col COLUMN (YAML "
            f"`data.time_col`)."
        )
    raise rows.error(
        f"found {len(found)} columns that could hold the timestamps: {quote_list(found)}. "
        f"Pass --time-col to choose one, e.g. --time-col {str(found[0])} (YAML "
        f"`data.time_col: {str(found[0])}`)."
    )


def _to_datetime(text: pd.Series, *, utc: bool, fmt: str = "ISO8601") -> pd.Series:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return pd.to_datetime(text, format=fmt, errors="coerce", utc=utc)
        except (ValueError, TypeError, OverflowError):
            if utc:
                return pd.Series(pd.NaT, index=text.index, dtype="datetime64[ns, UTC]")
            raise


def _check_same_awareness(text: np.ndarray, name, rows: Rows, labels: np.ndarray) -> None:
    aware = np.array([bool(_TZ_SUFFIX.search(t)) for t in text], dtype=bool)
    if aware.any() and not aware.all():
        naive_at, aware_at = np.flatnonzero(~aware)[0], np.flatnonzero(aware)[0]
        raise rows.error(
            f"column {name!r} mixes timestamps with a time zone ({rows.at(labels[aware_at])}: "
            f"{text[aware_at]!r}) and without one ({rows.at(labels[naive_at])}: "
            f"{text[naive_at]!r}) ({rows.convention}). Write every timestamp with its UTC offset, "
            f"or none."
        )


def _parse_with(series: pd.Series, fmt: str) -> pd.Series:
    try:
        return _to_datetime(series, utc=False, fmt=fmt)
    except (ValueError, TypeError, OverflowError):
        return _to_datetime(series, utc=True, fmt=fmt)  # mixed UTC offsets: converted to UTC


def _both_fields(fmt: str) -> bool:
    return "%d" in fmt and "%m" in fmt


def _regular(parsed: pd.Series, offset) -> bool:
    """Whether parsed timestamps form a regular series (of ``offset``'s pace when given)."""
    times = pd.DatetimeIndex(parsed).unique().sort_values()
    if len(times) < 3:
        return False
    own = infer_offset(times)
    if own is None:
        return False
    positions = on_grid(times, own)
    if positions[-1] + 1 > 1.5 * len(times):  # "regular" with most of the grid missing
        return False
    return offset is None or same_scale(own, offset, times[0])


def _reading_word(parsed: pd.Series) -> str:
    times = pd.DatetimeIndex(parsed).unique().sort_values()
    own = infer_offset(times) if len(times) >= 3 else None
    if own is None:
        return "irregular"
    word = freq_words(own, alias=False)
    return f"{'an' if word[0] in 'aeiouh' else 'a'} {word} series"


def _parse_other_layouts(series: pd.Series, dayfirst, offset, name, rows: Rows,
                         labels) -> tuple[pd.Series, bool | None]:
    """Non-ISO timestamps: one layout guessed from the first cell, day first or month first.

    When ``dayfirst`` is None and both readings parse every cell, the one that gives a regular
    series (at the pace of ``offset`` when given) is used, with a warning; when both or neither
    do, the reading is ambiguous: a DataError asks for ``--dayfirst``/``--monthfirst``.

    Returns:
        (parsed, dayfirst used: True/False when the layout has a day and a month, else None).
    """
    first = series.iloc[0]
    orders = (False, True) if dayfirst is None else (dayfirst,)
    found = {}
    for order in orders:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fmt = guess_datetime_format(first, dayfirst=order)
        if fmt:
            parsed = _parse_with(series, fmt)
            if parsed.notna().all():
                found[order] = (fmt, parsed)
    if len(found) == 2 and found[False][0] != found[True][0] and not (
            found[False][1].to_numpy() == found[True][1].to_numpy()).all():
        regular = {order: _regular(parsed, offset) for order, (_, parsed) in found.items()}
        if regular[True] != regular[False]:
            order = regular[True]
            fmt, parsed = found[order]
            logger.warning(
                "%r: the time column %r reads both day-first and month-first; read it %s "
                "(%r is %s), the reading that gives %s. Pass --%s (reading key dayfirst: %s) "
                "to say so, or --date-format.", rows.source, name,
                "day-first" if order else "month-first", first, parsed.iloc[0].date(),
                _reading_word(parsed), "dayfirst" if order else "monthfirst",
                str(order).lower())
            return parsed, order
        day, month = found[True][1], found[False][1]
        raise rows.error(
            f"the time column {name!r} is ambiguous: {first!r} ({rows.at(labels[0])}) reads "
            f"day-first as {day.iloc[0].date()} ({_reading_word(day)}) and month-first as "
            f"{month.iloc[0].date()} ({_reading_word(month)}), and both readings fit every row"
            f"{'' if regular[True] else ' (neither is regular)'}. Pass --dayfirst or --monthfirst "
            f"(reading key dayfirst: true/false), or --date-format (e.g. "
            f"--date-format '{found[True][0]}')."
        )
    for order in orders:
        if order in found:
            fmt, parsed = found[order]
            return parsed, (order if _both_fields(fmt) else dayfirst)
    if dayfirst is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                parsed = pd.to_datetime(series, format="mixed", dayfirst=dayfirst,
                                        errors="coerce")
            except (ValueError, TypeError, OverflowError):
                parsed = pd.to_datetime(series, format="mixed", dayfirst=dayfirst,
                                        errors="coerce", utc=True)
        return parsed, dayfirst
    return _parse_with(series, "mixed"), None


def _parse_text_times(text: np.ndarray, name, rows: Rows, labels: np.ndarray, *,
                      date_format=None, dayfirst=None, offset=None):
    series = pd.Series(text, dtype=object)
    if date_format:
        parsed = _parse_with(series, date_format)
        failed = parsed.isna().to_numpy()
        if failed.any():  # ISO 8601 text (e.g. from a JSON client) is unambiguous: take it too
            iso = _parse_with(series[failed], "ISO8601")
            if iso.notna().all() and getattr(iso.dt, "tz", None) == parsed.dt.tz:
                parsed = parsed.dt.as_unit("ns").copy()
                parsed[failed] = iso.dt.as_unit("ns").to_numpy()
            else:
                bad = np.flatnonzero(failed)[0]
                raise rows.error(
                    f"the time column {name!r} holds {text[bad]!r} on {rows.at(labels[bad])} "
                    f"({rows.convention}), which does not match --date-format {date_format!r} "
                    f"(reading key date_format). Fix the cell or pass the layout the file uses.")
        return parsed, dayfirst
    try:
        parsed = _to_datetime(series, utc=False)
    except (ValueError, TypeError, OverflowError):
        _check_same_awareness(text, name, rows, labels)
        parsed = _to_datetime(series, utc=True)  # mixed UTC offsets: converted to UTC
    failed = parsed.isna().to_numpy()
    used = dayfirst
    if failed.any() and not np.isfinite(_parse_numbers(text[failed], False)).any():
        retry, used = _parse_other_layouts(series[failed].reset_index(drop=True), dayfirst,
                                           offset, name, rows, labels[failed])
        retry.index = series.index[failed]
        if failed.all():
            parsed = retry
        elif retry.notna().all() and getattr(retry.dt, "tz", None) == parsed.dt.tz:
            parsed = parsed.dt.as_unit("ns").copy()
            parsed[failed] = retry.dt.as_unit("ns").to_numpy()
    return parsed, used


def _localize(index: pd.DatetimeIndex, tz: str, text, name, rows: Rows,
              labels) -> pd.DatetimeIndex:
    """Naive local times in ``tz`` → UTC (daylight-saving changes inferred from the order)."""
    if index.tz is not None:
        return index.tz_convert("UTC")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            local = index.tz_localize(tz, ambiguous="infer", nonexistent="NaT")
    except Exception as exc:  # noqa: BLE001 - AmbiguousTimeError and kin vary by version
        raise rows.error(
            f"the time column {name!r} cannot be read as local time in {tz} (--tz): "
            f"{' '.join(str(exc).split())}. At the autumn change the repeated hour must appear "
            f"twice, in file order (summer time first); sort the file or write UTC offsets."
        ) from None
    gone = np.flatnonzero(local.isna())
    if gone.size:
        first = gone[0]
        raise rows.error(
            f"the time column {name!r} holds {text[first]!r} on {rows.at(labels[first])} "
            f"({rows.convention}), a time that does not exist in {tz} (--tz; clocks jump "
            f"forward then). Fix or remove the row, or pass the zone the data was recorded in."
        )
    return local.tz_convert("UTC")


def parse_times(values: pd.Series, name, rows: Rows, labels: np.ndarray, *, date_format=None,
                dayfirst=None, tz=None, offset=None) -> pd.DatetimeIndex:
    """Parses the time column into a nanosecond DatetimeIndex (see ``parse_times_info``)."""
    return parse_times_info(values, name, rows, labels, date_format=date_format,
                            dayfirst=dayfirst, tz=tz, offset=offset)[0]


def parse_times_info(values: pd.Series, name, rows: Rows, labels: np.ndarray, *,
                     date_format=None, dayfirst=None, tz=None,
                     offset=None) -> tuple[pd.DatetimeIndex, bool | None]:
    """Parses the time column into a nanosecond DatetimeIndex, keeping its time zone.

    ISO 8601 text is parsed strictly; other layouts with one format guessed from the first
    cell, day first or month first (``dayfirst``; when None and both fit every cell, the one
    that gives a regular series, else a DataError), else cell by cell. ``date_format`` fixes
    the layout. Mixed UTC offsets (e.g. across daylight saving) are converted to UTC; with
    ``tz``, naive timestamps are local time there and are converted to UTC.

    Returns:
        (timestamps, dayfirst used: True/False when it mattered, else the given value).

    Raises:
        DataError: a cell is empty, is a number, does not parse as a timestamp, the day/month
            order is ambiguous, or a local time does not exist in ``tz``.
    """
    used = dayfirst
    if isinstance(values.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_any_dtype(
        values
    ):
        parsed, text = values, values.astype(str).to_numpy(dtype=object)
        missing = parsed.isna().to_numpy()
    else:
        text, missing = _strings(values)
        parsed = None
    if missing.any():
        first = np.flatnonzero(missing)[0]
        raise rows.error(
            f"the time column {name!r} is empty on {rows.at(labels[first])} "
            f"({rows.convention})" + (f" and {missing.sum() - 1} more" if missing.sum() > 1
                                      else "")
            + ". Every row needs a timestamp: fill it in or remove the row."
        )
    if parsed is None:
        parsed, used = _parse_text_times(text, name, rows, labels, date_format=date_format,
                                         dayfirst=dayfirst, offset=offset)
    bad = np.flatnonzero(parsed.isna().to_numpy() | missing)
    if bad.size:
        first = bad[0]
        what = "is a number, not a timestamp" if np.isfinite(
            _parse_numbers(text[bad[:1]], False)).any() else "does not parse as a timestamp"
        raise rows.error(
            f"the time column {name!r} holds {text[first]!r} on {rows.at(labels[first])} "
            f"({rows.convention}), which {what}"
            + (f"; {bad.size - 1} more cell(s) do not parse either" if bad.size > 1 else "")
            + ". Write timestamps like '2016-07-01 00:00:00' (ISO 8601), pass --date-format "
            "(e.g. '%d.%m.%Y %H:%M'), or pass --time-col (YAML `data.time_col`) to choose "
            "another column."
        )
    index = _as_ns(pd.DatetimeIndex(parsed), text, name, rows, labels)
    if tz is not None:
        index = _localize(index, tz, text, name, rows, labels)
    return index, used


def _as_ns(index: pd.DatetimeIndex, text, name, rows: Rows, labels) -> pd.DatetimeIndex:
    try:
        return index.as_unit("ns")
    except (ValueError, OverflowError, pd.errors.OutOfBoundsDatetime):
        naive = index.tz_localize(None) if index.tz is not None else index
        out = np.flatnonzero((naive < _LOW.tz_localize(None)) | (naive > _HIGH))
        first = out[0] if out.size else 0
        raise rows.error(
            f"the time column {name!r} holds {text[first]!r} on {rows.at(labels[first])} "
            f"({rows.convention}), outside the supported range {_LOW.date()} to {_HIGH.date()}. "
            f"Fix the timestamp or remove the row."
        ) from None


# --------------------------------------------------------------------------- column choice


def as_names(value, setting: str, *, allow_empty: bool) -> list | None:
    """Normalises ``targets``/``covariates`` (a name or a list of names) to a list."""
    if value is None:
        return None
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(
            f"`{setting}` must be a column name or a list of column names. "
            f"Received: {setting}={value!r}"
        )
    if not value and not allow_empty:
        raise ConfigError(f"`{setting}` must name at least one column. Received: {setting}=[]")
    if len(set(value)) != len(value):
        raise ConfigError(f"`{setting}` names a column twice. Received: {setting}={value!r}")
    return list(value)


#: the command-line flag and YAML key of each column setting, named in messages
SETTING_FLAGS = {
    "time_col": ("--time-col", "data.time_col"),
    "id_col": ("--id-col", "data.id_col"),
    "targets": ("--target", "data.targets"),
    "covariates": ("--covariate", "data.covariates"),
    "future_covariates": ("--future-covariate", "data.future_covariates"),
    "static": ("--static", "data.static"),
}


def setting_words(setting: str) -> str:
    """How a message names a column setting: its flag and YAML key, e.g.
    ``"--id-col (YAML `data.id_col`)"``."""
    flag, key = SETTING_FLAGS.get(setting, (f"`{setting}`", f"data.{setting}"))
    return f"{flag} (YAML `{key}`)"


def require_columns(frame: pd.DataFrame, names, setting: str, rows: Rows) -> None:
    """Raises a DataError naming the columns that exist when a requested one is missing."""
    absent = [n for n in names if n not in frame.columns]
    if absent:
        lower = {str(c).lower(): c for c in frame.columns}
        close = [lower[a.lower()] for a in absent if a.lower() in lower]
        hint = f" (did you mean {quote_list(close)}? names are case-sensitive)" if close else ""
        flag = SETTING_FLAGS.get(setting, (setting,))[0]
        raise rows.error(
            f"{setting_words(setting)} names column(s) {quote_list(absent)} that do not "
            f"exist{hint}. The columns are: {quote_list(frame.columns)}. Pass {flag} with "
            f"names from this list."
        )


def pick_columns(frame: pd.DataFrame, *, time_col, id_col, targets, covariates,
                 rows: Rows, delimiter: str) -> tuple[list, list]:
    """Resolves the target and covariate columns (targets default to every numeric column)."""
    covariates = covariates or []
    require_columns(frame, covariates, "covariates", rows)
    reserved = {time_col, id_col}
    for setting, names in (("targets", targets or []), ("covariates", covariates)):
        clash = [n for n in names if n in reserved]
        if clash:
            raise ConfigError(
                f"`{setting}` must not include the time or id column. Received: "
                f"{setting}={names!r} with time_col={time_col!r}, id_col={id_col!r}"
            )
    if targets is None:
        targets = [c for c in frame.columns if c not in reserved and c not in covariates
                   and looks_numeric(frame[c], delimiter)]
        if not targets:
            raise rows.error(
                f"has no numeric column to forecast besides the time column {time_col!r}; the "
                f"columns are {quote_list(frame.columns)}. Pass --target (YAML "
                f"`data.targets`) to name the columns that hold numbers."
            )
    else:
        require_columns(frame, targets, "targets", rows)
    both = [n for n in targets if n in covariates]
    if both:
        raise ConfigError(
            f"A column cannot be both a target and a covariate. Received: targets={targets!r}, "
            f"covariates={covariates!r}"
        )
    return list(targets), list(covariates)
