"""Chronological train/validation/test splits that never leak the future into the past.

Validation and test parts carry ``lookback`` rows of context from before their start, so that
their first window can predict their first row; they never contain rows from a later part.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from forecast.data.dataset import carry, describe
from forecast.errors import ConfigError, DataError


@dataclass(frozen=True)
class Split:
    """The three chronological parts of a series.

    Attributes:
        train: rows ``[0, b1)``.
        val: rows ``[b1 - lookback, b2)``: ``lookback`` rows of context, then the val rows.
        test: rows ``[b2 - lookback, b3)``.
        borders: the row borders ``(b1, b2, b3)`` of the first series (per series in long format
            the borders are computed per series with the same fractions).
        lookback: the context rows carried into val and test.
    """

    train: pd.DataFrame
    val: pd.DataFrame
    test: pd.DataFrame
    borders: tuple[int, int, int]
    lookback: int

    def __iter__(self):
        return iter((self.train, self.val, self.test))


def _fraction_borders(n_rows: int, val: float, test: float) -> tuple[int, int, int]:
    for name, value in (("val", val), ("test", test)):
        if not 0.0 <= value < 1.0:
            raise ConfigError(
                f"split `{name}` must be a fraction in [0, 1). Received: {name}={value!r}."
            )
    if val + test >= 1.0:
        raise ConfigError(
            f"split fractions leave nothing to train on: val={val} + test={test} >= 1. "
            "Lower `val` or `test`."
        )
    n_test = int(round(n_rows * test))
    n_val = int(round(n_rows * val))
    n_train = n_rows - n_val - n_test
    return n_train, n_train + n_val, n_rows


def _check_borders(borders, n_rows: int, source: str) -> tuple[int, int, int]:
    try:
        b1, b2, b3 = (int(b) for b in borders)
    except (TypeError, ValueError):
        raise ConfigError(
            "split `borders` must be three row numbers (train_end, val_end, test_end). "
            f"Received: borders={borders!r}."
        ) from None
    if not 0 < b1 <= b2 <= b3:
        raise ConfigError(
            "split `borders` must satisfy 0 < train_end <= val_end <= test_end. "
            f"Received: borders={borders!r}."
        )
    if b3 > n_rows:
        raise DataError(
            f"{source}: split borders {borders!r} reach row {b3} but the series has only "
            f"{n_rows} rows. Use smaller borders or fractions (val=, test=)."
        )
    return b1, b2, b3


def _split_one(frame: pd.DataFrame, borders, val, test, lookback, source):
    n_rows = len(frame)
    if borders is None:
        b1, b2, b3 = _fraction_borders(n_rows, val, test)
    else:
        b1, b2, b3 = _check_borders(borders, n_rows, source)
    if b1 <= 0:
        raise DataError(f"{source}: the training part is empty ({n_rows} rows in all).")
    if lookback > b1:
        raise DataError(
            f"{source}: lookback {lookback} is longer than the training part ({b1} rows); "
            "val and test cannot carry that much context. Use a shorter lookback or more data."
        )
    train = frame.iloc[:b1]
    val_part = frame.iloc[max(b1 - lookback, 0) : b2] if b2 > b1 else frame.iloc[0:0]
    test_part = frame.iloc[max(b2 - lookback, 0) : b3] if b3 > b2 else frame.iloc[0:0]
    return train, val_part, test_part, (b1, b2, b3)


def chronological_split(
    frame: pd.DataFrame,
    *,
    val: float = 0.1,
    test: float = 0.2,
    borders: tuple[int, int, int] | None = None,
    lookback: int = 0,
) -> Split:
    """Splits a time-indexed frame into train, validation and test parts in time order.

    Args:
        frame: a frame from ``load_csv`` (indexed by time, or by (id, time) in long format).
        val: fraction of rows for validation (ignored when ``borders`` is given).
        test: fraction of rows for test (ignored when ``borders`` is given).
        borders: explicit row borders ``(train_end, val_end, test_end)``; rows from
            ``test_end`` on are not used. The ETT protocol on ETTh1 is ``(8640, 11520, 14400)``.
        lookback: rows of context carried into val and test from before their start.

    Returns:
        A ``Split`` with ``train``, ``val`` and ``test`` frames (attrs copied from ``frame``).

    Raises:
        ConfigError: fractions or borders are invalid.
        DataError: the frame is too short for the borders or the lookback.

    Example:
        >>> parts = chronological_split(frame, borders=(8640, 11520, 14400), lookback=96)
        >>> len(parts.train), len(parts.val), len(parts.test)
        (8640, 2976, 2976)
    """
    if lookback < 0:
        raise ConfigError(f"`lookback` must be >= 0. Received: lookback={lookback}.")
    info = describe(frame)
    source, id_col = info.source, info.id_col
    if id_col and isinstance(frame.index, pd.MultiIndex):
        parts = {"train": [], "val": [], "test": []}
        first_borders = None
        for series_id, group in frame.groupby(level=0, sort=False):
            tr, va, te, bs = _split_one(
                group, borders, val, test, lookback, f"{source} (series {series_id!r})"
            )
            first_borders = first_borders or bs
            parts["train"].append(tr)
            parts["val"].append(va)
            parts["test"].append(te)
        train, val_part, test_part = (pd.concat(parts[k]) for k in ("train", "val", "test"))
        result_borders = first_borders
    else:
        train, val_part, test_part, result_borders = _split_one(
            frame, borders, val, test, lookback, source
        )
    for part in (train, val_part, test_part):
        carry(frame, part)
    return Split(train, val_part, test_part, result_borders, lookback)
