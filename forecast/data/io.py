"""Loading time series from CSV files: parse, validate, sort, de-duplicate, regularise, fill.

``load_csv`` reads a file and hands it to ``validate_frame``, which the served model also calls
on raw history DataFrames. Either a clean frame comes back (a regular ``DatetimeIndex``, float64
columns, no NaN or inf) or a :class:`~forecast.errors.DataError` /
:class:`~forecast.errors.ConfigError` that names the file, the column, the line and the remedy.

Conventions:

* Lines are counted as a text editor shows them: the header is line 1, the first data row is
  line 2. For DataFrames, "row 1" is the first data row.
* Time zones are kept: tz-aware timestamps stay tz-aware. Timestamps with different UTC offsets
  (e.g. either side of a daylight-saving change) are converted to UTC. Mixing timestamps with
  and without an offset is an error. With ``ReadOptions(tz=...)`` naive timestamps are local
  time in that zone and are converted to UTC; without it, a naive file that skips or repeats
  the hour of a daylight-saving change is refused with a hint to pass ``--tz``.
* How the text was read (separator, decimal mark, time column, day/month order, time zone) is
  a :class:`~forecast.data.reading.ReadOptions` on ``describe(frame).reading``; the served model
  reads history with the same settings.
* With ``freq`` given, data of another frequency (daily data for an hourly model) is an error,
  not something to interpolate; gaps on the ``freq`` grid are still filled.
* Values beyond float32's range (the model's precision) are an error.
* Gaps (missing timestamps on the regular grid, or empty cells) are filled by ``fill``, but only
  runs of at most ``max_gap`` consecutive steps (default :data:`DEFAULT_MAX_GAP` = 24).
"""

from __future__ import annotations

import codecs
import csv
import io
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from forecast.data.dataset import SeriesInfo, attach, describe
from forecast.data.frequency import (
    DEFAULT_MAX_GAP,
    FILL_CHOICES,
    _step_ns,
    check_fill,
    check_max_gap,
    fill_gaps,
    fillable,
    find_gaps,
    infer_offset,
    on_grid,
    resolve_offset,
    snap,
)
from forecast.data.reading import (
    ReadOptions,
    as_read_options,
    dst_hint,
    freq_words,
    require_regular_file,
    same_scale,
)
from forecast.data.validation import (
    Rows,
    as_names,
    coerce_numeric,
    decimal_comma_column,
    find_time_column,
    parse_times_info,
    pick_columns,
    quote_list,
    require_columns,
)
from forecast.errors import ConfigError, DataError, ForecastError
from forecast.options import DUPLICATES

__all__ = ["DEFAULT_MAX_GAP", "DUPLICATE_CHOICES", "FILL_CHOICES", "ReadOptions", "load_csv",
           "validate_frame"]

logger = logging.getLogger(__name__)

DUPLICATE_CHOICES = DUPLICATES  # the word list lives in forecast.options
_DELIMITERS = (",", ";", "\t", "|")
_MAGIC = {
    b"\x89PNG": "a PNG image",
    b"\xff\xd8\xff": "a JPEG image",
    b"GIF8": "a GIF image",
    b"%PDF": "a PDF document",
    b"PK\x03\x04": "a zip archive (an .xlsx workbook is one: save it from Excel as CSV)",
    b"\xd0\xcf\x11\xe0": "an old Excel .xls workbook (save it from Excel as CSV)",
    b"\x1f\x8b": "a gzip-compressed file (decompress it first)",
    b"PAR1": "a Parquet file (read it with pandas.read_parquet and pass the frame to "
    "validate_frame)",
    b"SQLite format 3": "an SQLite database",
}
_INTERNAL = "an unexpected internal error"


@dataclass(frozen=True)
class _Options:
    time_col: str | None = None
    targets: list | None = None
    covariates: list = field(default_factory=list)
    id_col: str | None = None
    offset: object = None
    fill: str = "interpolate"
    duplicates: str = "error"
    max_gap: int = DEFAULT_MAX_GAP
    min_rows: int | None = None
    min_rows_reason: str | None = None
    reading: ReadOptions = field(default_factory=ReadOptions)
    freq_owner: str | None = None  # "the model": who asks for freq, in the mismatch message
    future_rows: bool = False  # keep the rows after the history whose targets are empty


def _check_options(*, time_col, targets, covariates, id_col, freq, fill, duplicates, max_gap,
                   min_rows, min_rows_reason, reading=None, freq_owner=None,
                   future_rows=False) -> _Options:
    reading = as_read_options(reading)
    if time_col is not None and reading.time_col is not None and time_col != reading.time_col:
        raise ConfigError(f"`time_col` and `reading.time_col` name different columns. Received: "
                          f"time_col={time_col!r}, reading.time_col={reading.time_col!r}")
    time_col = time_col if time_col is not None else reading.time_col
    for setting, value in (("time_col", time_col), ("id_col", id_col)):
        if value is not None and (not isinstance(value, str) or not value):
            raise ConfigError(f"`{setting}` must be a column name (a non-empty string) or None. "
                              f"Received: {setting}={value!r}")
    if time_col is not None and time_col == id_col:
        raise ConfigError(f"`time_col` and `id_col` must be different columns. Received: "
                          f"time_col={time_col!r}, id_col={id_col!r}")
    if duplicates not in DUPLICATE_CHOICES:
        raise ConfigError(f"`duplicates` (--duplicates, YAML `data.duplicates`) must be one of "
                          f"{quote_list(DUPLICATE_CHOICES)}. "
                          f"Received: duplicates={duplicates!r}")
    if min_rows is not None and (isinstance(min_rows, bool) or not isinstance(
            min_rows, int | np.integer) or min_rows < 1):
        raise ConfigError(f"`min_rows` must be a whole number >= 1 or None. "
                          f"Received: min_rows={min_rows!r}")
    if min_rows_reason is not None and not isinstance(min_rows_reason, str):
        raise ConfigError(f"`min_rows_reason` must be a string such as 'lookback 96 + horizon "
                          f"24' or None. Received: min_rows_reason={min_rows_reason!r}")
    return _Options(
        time_col=time_col,
        targets=as_names(targets, "targets", allow_empty=False),
        covariates=as_names(covariates, "covariates", allow_empty=True) or [],
        id_col=id_col,
        offset=resolve_offset(freq),
        fill=check_fill(fill),
        duplicates=duplicates,
        max_gap=check_max_gap(max_gap),
        min_rows=None if min_rows is None else int(min_rows),
        min_rows_reason=min_rows_reason,
        reading=reading,
        freq_owner=freq_owner,
        future_rows=_check_future_rows(future_rows),
    )


def _check_future_rows(value) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"`future_rows` must be True or False. Received: future_rows={value!r}")
    return value


# --------------------------------------------------------------------------- public API


def load_csv(path, *, time_col=None, targets=None, covariates=None, id_col=None, freq=None,
             fill="interpolate", duplicates="error", max_gap=None, min_rows=None,
             min_rows_reason=None, encoding="utf-8", reading=None,
             future_rows=False) -> pd.DataFrame:
    """Reads a CSV time series and returns it validated and on a regular time grid.

    The delimiter (``,`` ``;`` tab or ``|``) is detected, a UTF-8 byte-order mark is skipped,
    the time column is found by name or by value when there is exactly one candidate, rows are
    sorted by time, duplicate timestamps are handled by ``duplicates``, the frequency is inferred
    (or taken from ``freq``), and gaps are filled by ``fill``.

    Args:
        path: path of the CSV file.
        time_col: the column of timestamps. Default: the one column named like
            date/time/timestamp/ds or holding timestamps.
        targets: column name or list of names to forecast. Default: every numeric column other
            than the time, id and covariate columns.
        covariates: extra numeric input columns, returned after the targets.
        id_col: column naming the series of a long-format file; each series is validated on
            its own and the result has a ``(id_col, time_col)`` MultiIndex.
        freq: pandas frequency alias (``"h"``, ``"D"``, ``"W-SAT"``, ``"MS"``...). Default:
            inferred. When given, timestamps off its grid are moved back onto it (anchored at the
            first timestamp) and rows that then share a slot count as duplicates.
        fill: how gaps are filled: ``"interpolate"`` (linear in time), ``"ffill"`` (last value),
            ``"zero"``, or ``"error"`` (any gap is an error).
        duplicates: rows with the same timestamp: ``"error"``, ``"first"``, ``"last"`` or
            ``"mean"`` (mean of the rows, ignoring empty cells).
        max_gap: longest run of missing steps that ``fill`` may fill; longer runs are an error.
            Default ``None`` means :data:`DEFAULT_MAX_GAP` (24 steps).
        min_rows: fewest rows (per series) needed after regularising, e.g. lookback + horizon.
        min_rows_reason: why, appended to the message, e.g. ``"lookback 96 + horizon 24"``.
        encoding: text encoding of the file (default UTF-8; a UTF-16 file with a byte-order mark
            is recognised).
        reading: a :class:`~forecast.data.reading.ReadOptions` (separator, decimal mark, time
            column, date layout, day/month order, time zone); fields left None are detected.
            What was used is ``describe(frame).reading``.
        future_rows: keep the rows after each series' history whose target cells are all
            empty (where a model's known-future covariates are given for the horizon, e.g.
            ``forecast predict --csv``): they are left out of gap filling and the row count,
            and come back after the regular history with empty (NaN) targets and their own
            covariate values, for ``Forecaster.predict`` to split off. Default False: such rows
            are missing values like any other.

    Returns:
        A DataFrame with the columns ``targets + covariates`` (float64), indexed by a
        ``DatetimeIndex`` named after the time column with its frequency set (a
        ``(id_col, time_col)`` MultiIndex in long format). Its roles travel with it as a
        ``forecast.data.dataset.SeriesInfo`` (``describe(frame)``: ``targets``,
        ``covariates``, ``freq`` alias, ``time_col``, ``id_col``, ``source`` path, ``reading``
        settings).

    Raises:
        DataError: the file is missing, unreadable, empty, not text or not valid in a way the
            message describes (with the line, the column and what to do).
        ConfigError: an argument is invalid (the message names it and the valid values).

    Example:

    >>> frame = load_csv("datasets/ETTh1.csv", targets="OT", covariates=["HUFL"])
    >>> frame.shape, describe(frame).freq, frame.index.name
    ((17420, 2), 'h', 'date')
    """
    options = _check_options(time_col=time_col, targets=targets, covariates=covariates,
                             id_col=id_col, freq=freq, fill=fill, duplicates=duplicates,
                             max_gap=max_gap, min_rows=min_rows, min_rows_reason=min_rows_reason,
                             reading=reading, future_rows=future_rows)
    if not isinstance(path, str | os.PathLike):
        raise ConfigError(f"`path` must be the path of a CSV file (a str or os.PathLike). "
                          f"Received: path={path!r}")
    source = str(path)
    with _no_raw_errors(source):
        frame, lines, delimiter = read_raw(path, source=source, encoding=encoding,
                                           sep=options.reading.sep)
        return _validate(frame, Rows(source, "line"), lines, delimiter, options)


def read_raw(path, *, source: str | None = None, encoding: str = "utf-8",
             sep: str | None = None) -> tuple[pd.DataFrame, np.ndarray, str]:
    """Reads a CSV file's cells as text, the way ``load_csv`` does, without validating them.

    ``forecast predict --csv`` reads history with it, so that the served model gets the same
    cells training read (same separator detection, byte-order mark, encodings).

    Args:
        path: the file.
        source: how messages name it (default: the path).
        encoding: its text encoding.
        sep: the separator; None detects it.

    Returns:
        (frame of str cells, the file line of each row, the separator used).

    Raises:
        DataError: the file is missing, not a regular file, empty, binary or not valid CSV.
    """
    source = str(path) if source is None else source
    text = _read_text(Path(path), source, encoding)
    delimiter = sep or _sniff_delimiter(text)
    frame, lines = _parse_csv(text, delimiter, Rows(source, "line"))
    return frame, lines, delimiter


def validate_frame(frame, *, source="<frame>", time_col=None, targets=None, covariates=None,
                   id_col=None, freq=None, fill="interpolate", duplicates="error", max_gap=None,
                   min_rows=None, min_rows_reason=None, reading=None,
                   freq_owner=None, future_rows=False) -> pd.DataFrame:
    """Validates and regularises a DataFrame that holds a time column, like :func:`load_csv`.

    The timestamps may be a column (text or datetimes) or the frame's ``DatetimeIndex`` (or a
    ``(id, time)`` MultiIndex), so a frame returned by ``load_csv`` validates again unchanged.
    Messages point at rows counted from 1 (the first data row is row 1).

    Args:
        frame: the pandas DataFrame.
        source: how messages name the frame, e.g. ``"request body"``.
        time_col, targets, covariates, id_col, freq, fill, duplicates, max_gap, min_rows,
        min_rows_reason, reading: as for :func:`load_csv` (``reading.sep`` only tells how the
            text was split: decimal commas are detected in text not split at commas).
        freq_owner: who asks for ``freq``, for the message when the data has another
            frequency, e.g. ``"the model"`` ("history is daily (D) but the model forecasts
            hourly (h) steps").
        future_rows: as for :func:`load_csv` (the served model keeps the rows that carry a
            model's known-future covariates).

    Returns:
        The frame as :func:`load_csv` returns it, with ``attrs["source"] == source``.

    Raises:
        DataError: the frame is not usable as given (the message says why and what to do).
        ConfigError: an argument is invalid.

    Example:

    >>> raw = pd.DataFrame({"ds": ["2024-01-01", "2024-01-02", "2024-01-04"], "y": [1, 2, 4]})
    >>> validate_frame(raw)["y"].tolist()
    [1.0, 2.0, 3.0, 4.0]
    """
    options = _check_options(time_col=time_col, targets=targets, covariates=covariates,
                             id_col=id_col, freq=freq, fill=fill, duplicates=duplicates,
                             max_gap=max_gap, min_rows=min_rows, min_rows_reason=min_rows_reason,
                             reading=reading, freq_owner=freq_owner, future_rows=future_rows)
    source = str(source)
    rows = Rows(source, "row")
    if not isinstance(frame, pd.DataFrame):
        raise rows.error(f"expected a pandas DataFrame with a time column, received "
                         f"{type(frame).__name__}. Build one with pandas.DataFrame(...).")
    with _no_raw_errors(source):
        frame = _index_to_columns(frame)
        return _validate(frame, rows, np.arange(1, len(frame) + 1),
                         options.reading.sep or ",", options)


class _no_raw_errors:
    """Turns any exception that is not a ForecastError into a DataError (a bug safety net)."""

    def __init__(self, source: str):
        self.source = source

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb):
        if exc is None or isinstance(exc, ForecastError) or not isinstance(exc, Exception):
            return False
        raise DataError(
            f"{self.source!r}: could not be loaded because of {_INTERNAL} "
            f"({type(exc).__name__}: {exc}). Check the file against the expected layout (a "
            f"header, a time column, numeric columns) and report this as a bug in forecast."
        ) from exc


def _index_to_columns(frame: pd.DataFrame) -> pd.DataFrame:
    if isinstance(frame.index, pd.MultiIndex) or isinstance(frame.index, pd.DatetimeIndex):
        names = [n if n is not None else f"level_{i}" for i, n in enumerate(frame.index.names)]
        if isinstance(frame.index, pd.DatetimeIndex) and frame.index.name is None:
            names = ["time"]
        if not any(n in frame.columns for n in names):
            out = frame.copy()
            out.index = out.index.set_names(names)
            return out.reset_index()
    return frame


# --------------------------------------------------------------------------- reading the file


def _read_text(path: Path, source: str, encoding: str) -> str:
    try:
        codec = codecs.lookup(encoding).name
    except (LookupError, TypeError):
        raise ConfigError(f"`encoding` is not a known text encoding. Received: "
                          f"encoding={encoding!r}. Use e.g. 'utf-8' or 'latin-1'.") from None
    require_regular_file(path, source)  # a FIFO or /dev/zero would hang or never end
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{source!r}: cannot be read ({exc.strerror or exc}). Check the file's "
                        f"permissions.") from None
    if not raw:
        raise DataError(f"{source!r}: the file is empty (0 bytes). Expected a CSV file with a "
                        f"header line and data rows.")
    return _decode(raw, source, codec)


def _decode(raw: bytes, source: str, codec: str) -> str:
    for magic, kind in _MAGIC.items():
        if raw.startswith(magic):
            raise DataError(f"{source!r}: is not a text CSV: it looks like {kind}.")
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")) and codec == "utf-8":
        codec = "utf-16"
    if codec == "utf-8":
        codec = "utf-8-sig"
        nul = raw.find(b"\x00")
        if nul >= 0:
            line = raw[:nul].count(b"\n") + 1
            raise DataError(
                f"{source!r}: is not a text CSV: it holds binary data (a NUL byte at byte "
                f"{nul}, line {line}). Pass the path of a CSV text file.")
    try:
        text = raw.decode(codec)
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise DataError(
            f"{source!r}: is not valid {codec.replace('-sig', '')} text: byte "
            f"0x{raw[exc.start]:02x} at position {exc.start} (line {line}) cannot be decoded. "
            f"Re-save the file as UTF-8, or pass its encoding, e.g. encoding='latin-1'.") from None
    text = text.lstrip("\ufeff")
    if "\x00" in text:
        raise DataError(f"{source!r}: is not a text CSV: it holds NUL characters. Pass the path "
                        f"of a CSV text file.")
    if not text.strip():
        raise DataError(f"{source!r}: the file holds only whitespace. Expected a CSV file with a "
                        f"header line and data rows.")
    return text


def _sniff_delimiter(text: str) -> str:
    """Picks the delimiter that splits the first lines into the same number (>1) of fields."""
    sample = [line for line in text.splitlines()[:200] if line.strip()][:30]
    best, best_score = ",", None
    for delimiter in _DELIMITERS:
        try:
            counts = [len(r) for r in csv.reader(sample, delimiter=delimiter)]
        except csv.Error:
            continue
        if not counts or counts[0] < 2:
            continue
        share = sum(c == counts[0] for c in counts) / len(counts)
        score = (share >= 0.9, share, counts[0])
        if best_score is None or score > best_score:
            best, best_score = delimiter, score
    return best


def _parse_csv(text: str, delimiter: str, rows: Rows) -> tuple[pd.DataFrame, np.ndarray]:
    """Splits CSV text into a frame of strings and the file line number of every row."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header, header_line, records, lines = None, 0, [], []
    previous = 0
    try:
        for record in reader:
            start, previous = previous + 1, reader.line_num
            if not "".join(record).strip():
                continue  # blank line
            if header is None:
                header, header_line = _header(record, start, rows), start
                continue
            records.append(_fit_record(record, len(header), start, header_line, delimiter, rows))
            lines.append(start)
    except csv.Error as exc:
        raise rows.error(f"is not valid CSV near line {previous + 1}: {exc}. Check the quoting "
                         f"of that line.") from None
    if header is None:
        raise rows.error(f"holds only delimiters ({delimiter!r}) and no header. Expected a "
                         f"header line naming the columns, then data rows.")
    if not records:
        raise rows.error(f"has a header (line {header_line}: {quote_list(header)}) but no data "
                         f"rows. Add rows below the header.")
    columns = list(zip(*records, strict=True))
    frame = pd.DataFrame({name: np.array(col, dtype=object)
                          for name, col in zip(header, columns, strict=True)}, dtype=object)
    return frame, np.asarray(lines, dtype=np.int64)


def _header(record: list[str], line: int, rows: Rows) -> list[str]:
    names = [cell.strip() or f"unnamed_{i + 1}" for i, cell in enumerate(record)]
    while len(names) > 1 and names[-1].startswith("unnamed_") and not record[-1].strip():
        names.pop()
        record = record[:-1]
    seen = {n for n in names if names.count(n) > 1}
    if seen:
        raise rows.error(f"the header (line {line}) names column(s) {quote_list(sorted(seen))} "
                         f"more than once. Give every column a distinct name.")
    return names


def _fit_record(record: list[str], width: int, line: int, header_line: int, delimiter: str,
                rows: Rows) -> list[str]:
    if len(record) > width and not any(cell.strip() for cell in record[width:]):
        record = record[:width]
    if len(record) != width:
        raise rows.error(
            f"line {line} has {len(record)} field(s) but the header (line {header_line}) has "
            f"{width}. Fix that line (the delimiter is {delimiter!r}; quote values that contain "
            f"it).")
    return record


# --------------------------------------------------------------------------- validating


@dataclass
class _Series:
    key: object  # the id value, or None for a wide file
    label: str  # "" or "series 'A' (id column 'store'): "
    times: pd.DatetimeIndex
    values: np.ndarray  # (n, k) float64
    lines: np.ndarray  # (n,) line (file) or row (frame) number of each row


def _validate(frame: pd.DataFrame, rows: Rows, lines: np.ndarray, delimiter: str,
              o: _Options) -> pd.DataFrame:
    if len(frame) == 0:
        raise rows.error(f"has no data rows (columns: {quote_list(frame.columns)}). Provide at "
                         f"least one row.")
    if frame.columns.duplicated().any():
        dup = frame.columns[frame.columns.duplicated()].unique()
        raise rows.error(f"names column(s) {quote_list(dup)} more than once. Give every column "
                         f"a distinct name.")
    if o.time_col is not None:
        require_columns(frame, [o.time_col], "time_col", rows)
    if o.id_col is not None:
        require_columns(frame, [o.id_col], "id_col", rows)
    time_col = o.time_col or find_time_column(frame.drop(columns=[o.id_col] if o.id_col else []),
                                              rows)
    r = o.reading
    times, dayfirst = parse_times_info(frame[time_col], time_col, rows, lines,
                                       date_format=r.date_format, dayfirst=r.dayfirst, tz=r.tz,
                                       offset=o.offset)
    targets, covariates = pick_columns(frame, time_col=time_col, id_col=o.id_col,
                                       targets=o.targets, covariates=o.covariates, rows=rows,
                                       delimiter=delimiter)
    names = targets + covariates
    dropped = [] if o.targets is not None else [
        c for c in frame.columns if c not in names and c not in (time_col, o.id_col)]
    if dropped:
        logger.warning(
            "%r: left out column(s) %s: they hold text, not numbers, so they are neither "
            "forecast nor read; the targets are %s. If one should hold numbers, name it with "
            "--target (YAML `data.targets`) to see which cells are not numbers.",
            rows.source, quote_list(dropped), quote_list(targets))
    values = np.column_stack([coerce_numeric(frame[c], c, rows, lines, delimiter, r.decimal)
                              for c in names])
    decimal = r.decimal or ("," if any(decimal_comma_column(frame[c], delimiter)
                                       for c in names) else ".")
    used = r.with_(sep=delimiter if rows.kind == "line" else r.sep, decimal=decimal,
                   time_col=time_col, dayfirst=dayfirst)
    series = _split_series(frame, times, values, lines, o.id_col, rows)
    unsorted = [s for s in series if _prepare(s, o, rows)]
    if unsorted:
        which = "" if o.id_col is None else f" in series {quote_list([s.key for s in unsorted])}"
        logger.warning("%r: rows were not in time order%s; sorted them by %r.", rows.source,
                       which, time_col)
    ahead = [_cut_future(s, len(targets)) if o.future_rows else None for s in series]
    offset = o.offset or _common_offset(series, o.id_col, rows)
    parts = [_with_future(_regularise(s, offset, names, time_col, o, rows), future)
             for s, future in zip(series, ahead, strict=True)]
    return _assemble(parts, series, offset, names, time_col, targets, covariates, o, rows,
                     used, dropped)


def static_values(frame: pd.DataFrame, *, id_col: str, columns, source: str = "<frame>",
                  lines=None, kind: str = "row") -> dict[str, dict[str, str]]:
    """Each series' value of its static columns (constant within a series), as text.

    Args:
        frame: the raw frame (``read_raw``'s text cells, or a frame the user built) with the id
            column and ``columns``.
        id_col: the series id column.
        columns: the static columns (``--static``, YAML ``data.static``).
        source: the file or frame named in messages.
        lines: the file line (or row number) of each row, for messages; default 1, 2, ...
        kind: ``"line"`` (a file) or ``"row"`` (a frame), how messages count.

    Returns:
        ``{column: {id: value}}``: values stripped of spaces; empty cells are ignored (a series
        may leave them empty on some rows, e.g. its future rows).

    Raises:
        ConfigError: no ``id_col``.
        DataError: a missing column, a series with no value, or with two different values in
            a static column (naming the series, the column, the values and their lines).

    Example:
        >>> static_values(raw, id_col="store", columns=["region"])
        {'region': {'A': 'north', 'B': 'south'}}
    """
    rows = Rows(source, kind)
    names = as_names(columns, "static", allow_empty=False)
    if not isinstance(id_col, str) or not id_col:
        raise ConfigError(f"--static {names[0]}: static covariates describe each series of a "
                          "long-format file; give its series id column (--id-col, YAML "
                          "`data.id_col`).")
    require_columns(frame, [id_col], "id_col", rows)
    require_columns(frame, names, "static", rows)
    lines = np.arange(1, len(frame) + 1) if lines is None else np.asarray(lines)
    ids = frame[id_col].astype(str).str.strip().to_numpy()
    out = {}
    for column in names:
        if column == id_col:
            raise ConfigError(f"--static {column}: is the id column itself; use --id-embedding "
                              "DIM (YAML `model.id_embedding`) to embed the series id.")
        cells = frame[column].astype(str).str.strip()
        cells = cells.where(frame[column].notna(), "").to_numpy()
        by_id = {}
        for key in dict.fromkeys(ids):
            mine = ids == key
            given = cells[mine]
            present = given[given != ""]
            distinct = list(dict.fromkeys(present.tolist()))
            if not distinct:
                raise rows.error(f"series {key!r} (id column {id_col!r}) has no value in the "
                                 f"static column {column!r} (--static, YAML `data.static`); "
                                 "fill it in on its rows.")
            if len(distinct) > 1:
                at = lines[mine][given != ""]
                first = [int(at[present == v][0]) for v in distinct[:2]]
                raise rows.error(
                    f"series {key!r} (id column {id_col!r}) has {len(distinct)} different values "
                    f"in the static column {column!r}: {distinct[0]!r} ({rows.at(first[0])}) and "
                    f"{distinct[1]!r} ({rows.at(first[1])}), {rows.convention}. A static "
                    "covariate (--static, YAML `data.static`) is constant within each series: "
                    "fix the data, or pass the column with --covariate if it changes in time.")
            by_id[str(key)] = distinct[0]
        out[column] = by_id
    return out


def add_static(frame: pd.DataFrame, path, columns, *, sep: str | None = None,
               encoding: str = "utf-8") -> pd.DataFrame:
    """``frame`` (from ``load_csv(path, id_col=...)``) with the static columns of ``path`` kept
    beside it (``describe(frame).extra["static"]``: ``{column: {id: value}}``).

    Args:
        frame: the long-format frame loaded from ``path``.
        path: the CSV it was loaded from.
        columns: the static columns (``--static``).
        sep: the field separator (detected when None).
        encoding: the file's text encoding.

    Returns:
        ``frame`` itself, labelled.

    Raises:
        ConfigError: ``frame`` is not long format.
        DataError: see ``static_values``.
    """
    info = describe(frame)
    if info.id_col is None:
        raise ConfigError(f"--static {list(columns)[0]}: static covariates describe each series "
                          "of a long-format file; pass its series id column with --id-col.")
    source = str(path)
    with _no_raw_errors(source):
        raw, lines, _ = read_raw(path, source=source, encoding=encoding, sep=sep)
        values = static_values(raw, id_col=info.id_col, columns=columns, source=source,
                               lines=lines, kind="line")
    return attach(frame, info.with_(extra={**info.extra, "static": values}))


def _cut_future(s: _Series, n_targets: int):
    """Takes the rows after the history whose target cells are all empty off a sorted series.

    Returns:
        ``(times, values)`` of those rows, or None when there are none (or when no row has a
        target value: the usual "no values at all" message then applies).
    """
    empty = np.isnan(s.values[:, :n_targets]).all(axis=1)
    kept = np.flatnonzero(~empty)
    if not len(kept) or kept[-1] == len(empty) - 1:
        return None
    end = int(kept[-1]) + 1
    future = (s.times[end:], s.values[end:])
    s.times, s.values, s.lines = s.times[:end], s.values[:end], s.lines[:end]
    return future


def _with_future(part, future):
    """A regularised ``(grid, values)`` with the future rows (``_cut_future``) after it."""
    if future is None:
        return part
    grid, values = part
    times, ahead = future
    return grid.append(pd.DatetimeIndex(times).rename(grid.name)), np.vstack([values, ahead])


def _split_series(frame, times, values, lines, id_col, rows: Rows) -> list[_Series]:
    if id_col is None:
        return [_Series(None, "", times, values, lines)]
    ids = frame[id_col]
    missing = ids.isna().to_numpy() | np.array([str(v).strip() == "" for v in ids], dtype=bool)
    if missing.any():
        first = np.flatnonzero(missing)[0]
        raise rows.error(f"the id column {id_col!r} is empty on {rows.at(lines[first])} "
                         f"({rows.convention}). Every row needs the id of its series.")
    codes, keys = pd.factorize(ids, sort=False)
    out = []
    for code, key in enumerate(keys):
        take = np.flatnonzero(codes == code)
        out.append(_Series(key, f"series {key!r} (id column {id_col!r}): ", times[take],
                           values[take], lines[take]))
    return out


def _prepare(s: _Series, o: _Options, rows: Rows) -> bool:
    """Sorts, snaps onto an explicit freq and de-duplicates one series; True if it was unsorted."""
    unsorted = not s.times.is_monotonic_increasing
    if unsorted:
        order = np.argsort(s.times.asi8, kind="stable")
        s.times, s.values, s.lines = s.times[order], s.values[order], s.lines[order]
    if o.offset is not None:
        _check_same_frequency(s, o, rows)
        snapped = snap(s.times, o.offset)
        moved = int((snapped.asi8 != s.times.asi8).sum())
        if moved:
            logger.warning("%r: %smoved %d timestamp(s) back onto the %r grid.", rows.source,
                           s.label, moved, o.offset.freqstr)
        s.times = snapped
    _deduplicate(s, o, rows)
    return unsorted


def _check_same_frequency(s: _Series, o: _Options, rows: Rows) -> None:
    """Refuses data whose own frequency is not ``freq``'s (daily history for an hourly model):
    snapping and filling would turn it into a made-up series. Gaps on the grid are fine."""
    unique = s.times.unique()
    if len(unique) < 3:
        return
    own = infer_offset(unique)
    if own is None or same_scale(own, o.offset, unique[0]):
        return
    want = freq_words(o.offset, alias=False)
    if o.freq_owner:
        raise rows.error(
            f"{s.label}history is {freq_words(own)} but {o.freq_owner} forecasts "
            f"{freq_words(o.offset)} steps; send {want} history (one row per "
            f"{o.offset.freqstr!r} step, gaps are filled up to its max_gap).")
    raise rows.error(
        f"{s.label}the timestamps are {freq_words(own)} but --freq {o.offset.freqstr} "
        f"(YAML `data.freq`) asks for {freq_words(o.offset)} steps. Pass --freq "
        f"{own.freqstr} (YAML `data.freq: {own.freqstr}`) or leave --freq out to use the "
        f"data's own frequency; to change the frequency, resample the data first.")


def _deduplicate(s: _Series, o: _Options, rows: Rows) -> None:
    repeated = s.times.duplicated(keep=False)
    if not repeated.any():
        return
    if o.duplicates == "error":
        first = s.times[repeated][0]
        at = s.lines[s.times == first]
        count = int(s.times[repeated].nunique())
        moved = " (after moving timestamps onto the freq grid)" if o.offset is not None else ""
        long_hint = "" if o.id_col else (", or pass --id-col COLUMN (YAML `data.id_col`) if the "
                                         "file holds several series in long format")
        dst = dst_hint(first, "ambiguous") if s.times.tz is None and count <= 12 else ""
        if dst:
            raise rows.error(
                f"{s.label}the timestamp {first} appears {len(at)} times, on {rows.kind}s "
                f"{', '.join(str(int(n)) for n in at)} ({rows.convention}): {dst}.")
        raise rows.error(
            f"{s.label}the timestamp {first} appears {len(at)} times{moved}, on "
            f"{rows.kind}s {', '.join(str(int(n)) for n in at)} ({rows.convention}); "
            f"{count} timestamp(s) appear more than once. Pass --duplicates first, last or "
            f"mean (YAML `data.duplicates`) to keep one row per timestamp{long_hint}.")
    if o.duplicates in ("first", "last"):
        keep = ~s.times.duplicated(keep=o.duplicates)
        s.times, s.values, s.lines = s.times[keep], s.values[keep], s.lines[keep]
        return
    codes, uniques = pd.factorize(s.times, sort=True)
    grouped = pd.DataFrame(s.values).groupby(codes, sort=True)
    s.values = grouped.mean().to_numpy(dtype=np.float64)
    s.lines = pd.Series(s.lines).groupby(codes, sort=True).min().to_numpy()
    s.times = pd.DatetimeIndex(uniques).as_unit("ns")


def _common_offset(series: list[_Series], id_col, rows: Rows):
    """Infers one frequency shared by every series."""
    found = {}
    for s in series:
        offset = infer_offset(s.times)
        if offset is None and len(s.times) >= 2:
            raise _irregular(s, rows)
        if offset is not None:
            found[s.key] = offset
    if not found:
        raise rows.error(f"{series[0].label}has a single timestamp, so no frequency can be "
                         f"inferred. Pass --freq (YAML `data.freq`), e.g. --freq h, or "
                         f"provide more rows.")
    sizes = {}
    for s in series:
        if s.key in found:
            sizes[found[s.key].freqstr] = sizes.get(found[s.key].freqstr, 0) + len(s.times)
    common = max(sizes, key=sizes.get)
    offset = next(o for o in found.values() if o.freqstr == common)
    listing = ", ".join(f"{k!r}: {v.freqstr!r}" for k, v in found.items())
    for s in series:
        own = found.get(s.key)
        if own is not None and ((len(s.times) >= 3 and own.freqstr != common)
                                or (on_grid(s.times, offset) < 0).any()):
            raise rows.error(
                f"all series must share one frequency, but series {s.key!r} has "
                f"{found[s.key].freqstr!r} while the others have {common!r} "
                f"(frequencies found: {listing}). Pass --freq (YAML `data.freq`) to move "
                f"every series onto one grid, or load them separately.")
    return offset


def _irregular(s: _Series, rows: Rows) -> DataError:
    diffs = np.diff(s.times.asi8)
    values, counts = np.unique(diffs, return_counts=True)
    step = pd.Timedelta(int(values[np.argmax(counts)]), unit="ns")
    offset_grid = (s.times.asi8 - s.times.asi8[0]) % step.value != 0
    where = ""
    if offset_grid.any():
        first = np.flatnonzero(offset_grid)[0]
        where = (f"; {rows.at(s.lines[first])} ({s.times[first]}) is off the grid of that step "
                 f"({rows.convention})")
    return rows.error(
        f"{s.label}the timestamps are irregular: no frequency fits all of them (the most common "
        f"step is {step}{where}). Pass --freq (YAML `data.freq`), e.g. --freq h or --freq D, "
        f"to move them onto a regular grid.")


def _regularise(s: _Series, offset, names, time_col, o: _Options, rows: Rows):
    """Puts one series on the full grid of ``offset`` and fills its gaps.

    Returns:
        (grid, values): the regular DatetimeIndex and the filled (n, k) float64 array.
    """
    positions = on_grid(s.times, offset) if len(s.times) > 1 else np.zeros(1, dtype=np.int64)
    if (positions < 0).any():
        first = np.flatnonzero(positions < 0)[0]
        raise rows.error(
            f"{s.label}{rows.at(s.lines[first])} ({s.times[first]}; {rows.convention}) is not "
            f"on the {offset.freqstr!r} grid that starts at {s.times[0]}. Pass a --freq (YAML "
            f"`data.freq`) that matches the timestamps, or fix them.")
    _check_row_gaps(s, positions, offset, o, rows)
    n = int(positions[-1]) + 1
    grid = pd.date_range(start=s.times[0], periods=n, freq=offset, name=time_col)
    values = np.full((n, len(names)), np.nan)
    values[positions] = s.values
    lines = np.full(n, -1, dtype=np.int64)
    lines[positions] = s.lines
    _check_cell_gaps(s, values, lines, grid, names, o, rows)
    values = fill_gaps(values, grid, o.fill) if np.isnan(values).any() else values
    if o.min_rows is not None and n < o.min_rows:
        reason = f" ({o.min_rows_reason})" if o.min_rows_reason else ""
        raise rows.error(
            f"{s.label}has {n} row(s) at frequency {offset.freqstr!r} (from {grid[0]} to "
            f"{grid[-1]}), but needs at least {o.min_rows} rows{reason}. Provide a longer "
            f"history or ask for a shorter window.")
    for j, name in enumerate(names):
        if n > 1 and np.ptp(values[:, j]) == 0:
            logger.warning("%r: %scolumn %r is constant (%g on every row).", rows.source,
                           s.label, name, values[0, j])
    return grid, values


def _gap_remedy(steps: int, o: _Options) -> str:
    if o.fill == "error":
        return ("--fill error (YAML `data.fill: error`) refuses gaps: pass --fill interpolate, "
                "ffill or zero to fill them" + ("" if steps <= o.max_gap else
                                                f" (with --max-gap {steps} or more)"))
    return (f"The longest gap --fill {o.fill} may fill is --max-gap {o.max_gap} steps (YAML "
            f"`data.max_gap`): pass --max-gap {steps} (or more) to fill it, or fix the data")


def _check_row_gaps(s: _Series, positions, offset, o: _Options, rows: Rows) -> None:
    missing = np.diff(positions) - 1
    _check_dst_gaps(s, missing, offset, rows)
    too_long = np.flatnonzero((missing > o.max_gap) | ((missing > 0) & (o.fill == "error")))
    if not too_long.size:
        return
    i = too_long[0]
    steps = int(missing[i])
    raise rows.error(
        f"{s.label}{steps} consecutive timestamp(s) are missing at frequency "
        f"{offset.freqstr!r}, from {s.times[i] + offset} to {s.times[i + 1] - offset} (between "
        f"{rows.at(s.lines[i])} and {rows.at(s.lines[i + 1])}; {rows.convention}). "
        f"{_gap_remedy(steps, o)}.")


def _check_dst_gaps(s: _Series, missing: np.ndarray, offset, rows: Rows) -> None:
    """A naive series missing exactly the hour clocks skip at a daylight-saving change is
    local time read without its zone: filling that hour would invent a time that never was."""
    step = _step_ns(offset, s.times.tz)
    hour = 3600 * 10**9
    if s.times.tz is not None or step is None or step > hour or hour % step:
        return
    for i in np.flatnonzero(missing == hour // step)[:100]:
        hint = dst_hint(s.times[i] + offset, "nonexistent")
        if hint:
            raise rows.error(
                f"{s.label}the hour from {s.times[i] + offset} is missing (between "
                f"{rows.at(s.lines[i])} and {rows.at(s.lines[i + 1])}; {rows.convention}): "
                f"{hint}.")


def _check_cell_gaps(s, values, lines, grid, names, o: _Options, rows: Rows) -> None:
    n = len(grid)
    for gap in find_gaps(values):
        name = names[gap.column]
        where = _where(lines, gap.start, gap.end, rows)
        if gap.steps == n:
            raise rows.error(f"{s.label}column {name!r} has no values at all. Fill it in or "
                             f"leave it out of --target and --covariate (YAML `data.targets`, "
                             f"`data.covariates`).")
        if not fillable(gap, n, o.fill) and o.fill != "error":
            side = "before" if gap.start == 0 else "after"
            raise rows.error(
                f"{s.label}column {name!r} has {gap.steps} missing value(s) at the "
                f"{'start' if gap.start == 0 else 'end'} ({grid[gap.start]} to {grid[gap.end]}, "
                f"{where}) that --fill {o.fill} cannot fill: there is no value {side} them. "
                f"Fill in those cells, remove those rows, or pass --fill zero (YAML "
                f"`data.fill: zero`).")
        if gap.steps > o.max_gap or o.fill == "error":
            raise rows.error(
                f"{s.label}column {name!r} is missing {gap.steps} consecutive value(s) from "
                f"{grid[gap.start]} to {grid[gap.end]} ({where}). {_gap_remedy(gap.steps, o)}.")


def _where(lines: np.ndarray, start: int, end: int, rows: Rows) -> str:
    inside = lines[start : end + 1]
    inside = inside[inside >= 0]
    parts = []
    if inside.size:
        lo, hi = int(inside.min()), int(inside.max())
        parts.append(f"empty on {rows.at(lo)}" if lo == hi else
                     f"empty on {rows.kind}s {lo} to {hi}")
    if inside.size < end - start + 1:
        before = lines[start - 1] if start > 0 else -1
        after = lines[end + 1] if end + 1 < len(lines) else -1
        parts.append(f"rows missing between {rows.at(before)} and {rows.at(after)}"
                     if before >= 0 and after >= 0 else "rows missing")
    return "; ".join(parts) + f"; {rows.convention}"


def _assemble(parts, series, offset, names, time_col, targets, covariates, o: _Options,
              rows: Rows, reading: ReadOptions | None = None,
              dropped: list | None = None) -> pd.DataFrame:
    if o.id_col is None:
        grid, values = parts[0]
        out = pd.DataFrame(values, index=grid, columns=names)
    else:
        keys = np.concatenate([np.repeat(np.array([s.key], dtype=object), len(g))
                               for s, (g, _) in zip(series, parts, strict=True)])
        grid = parts[0][0].append([g for g, _ in parts[1:]]) if len(parts) > 1 else parts[0][0]
        index = pd.MultiIndex.from_arrays([keys, grid], names=[o.id_col, time_col])
        out = pd.DataFrame(np.concatenate([v for _, v in parts]), index=index, columns=names)
    return attach(out, SeriesInfo(
        targets=tuple(targets), covariates=tuple(covariates), freq=offset.freqstr,
        time_col=time_col, id_col=o.id_col, source=rows.source, reading=reading,
        # the text columns left out of the inferred targets (``forecast inspect`` lists them)
        extra={"dropped_columns": [str(c) for c in dropped]} if dropped else {}))
