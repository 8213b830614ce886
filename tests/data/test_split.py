"""Tests of forecast/data/split.py: order, borders, context rows, no leakage."""

import numpy as np
import pandas as pd
import pytest

from forecast.data import chronological_split
from forecast.errors import ConfigError, DataError


def _frame(n=100):
    index = pd.date_range("2024-01-01", periods=n, freq="h", name="date")
    frame = pd.DataFrame({"y": np.arange(n, dtype=float)}, index=index)
    frame.attrs = {"freq": "h", "source": "s.csv"}
    return frame


def test_fractions_in_time_order_with_context():
    parts = chronological_split(_frame(100), val=0.1, test=0.2, lookback=5)
    assert parts.borders == (70, 80, 100)
    assert parts.train["y"].tolist() == list(range(70))
    assert parts.val["y"].tolist() == list(range(65, 80))  # 5 context rows, then 10 val rows
    assert parts.test["y"].tolist() == list(range(75, 100))
    assert parts.val.attrs["freq"] == "h"


def test_no_part_reads_rows_after_its_end():
    train, val, test = chronological_split(_frame(100), val=0.2, test=0.2, lookback=10)
    assert train.index.max() < val.index[10] and val.index.max() < test.index[10]
    assert val.index.max() == train.index.max() + pd.Timedelta(hours=20)


def test_explicit_borders_follow_the_ett_protocol():
    parts = chronological_split(_frame(200), borders=(100, 140, 180), lookback=24)
    assert (len(parts.train), len(parts.val), len(parts.test)) == (100, 64, 64)
    assert parts.val["y"].iloc[0] == 76 and parts.test["y"].iloc[-1] == 179


def test_long_format_splits_each_series():
    pieces = []
    for k, n in enumerate((50, 30)):
        index = pd.MultiIndex.from_arrays(
            [[f"s{k}"] * n, pd.date_range("2024-01-01", periods=n, freq="D")], names=["id", "t"]
        )
        pieces.append(pd.DataFrame({"y": np.arange(n, dtype=float)}, index=index))
    frame = pd.concat(pieces)
    frame.attrs = {"id_col": "id", "freq": "D"}
    parts = chronological_split(frame, val=0.2, test=0.2, lookback=2)
    assert parts.train.loc["s0"]["y"].tolist() == list(range(30))
    assert parts.train.loc["s1"]["y"].tolist() == list(range(18))
    assert parts.test.loc["s1"]["y"].tolist() == list(range(22, 30))


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        (dict(val=0.6, test=0.5), ConfigError, "leave nothing to train on"),
        (dict(val=-0.1), ConfigError, "`val` must be a fraction"),
        (dict(borders=(10, 5, 20)), ConfigError, "0 < train_end <= val_end <= test_end"),
        (dict(borders="abc"), ConfigError, "three row numbers"),
        (dict(borders=(50, 80, 500)), DataError, "reach row 500 but the series has only 100"),
        (dict(lookback=90, val=0.1, test=0.2), DataError, "lookback 90 is longer than the "),
        (dict(lookback=-1), ConfigError, "`lookback` must be >= 0"),
    ],
)
def test_bad_split_settings(kwargs, error, message):
    with pytest.raises(error, match=message):
        chronological_split(_frame(100), **kwargs)
