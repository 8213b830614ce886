"""Tests of forecast/data/calendar.py."""

import numpy as np
import pandas as pd
import pytest

from forecast.data import add_calendar_features, calendar_feature_names, calendar_features
from forecast.errors import ConfigError


def test_hourly_features_have_exact_values():
    index = pd.date_range("2024-03-04 06:00", periods=2, freq="h")  # a Monday
    features = calendar_features(index, "h")
    assert list(features.columns) == calendar_feature_names("h")
    assert features["hour_of_day_sin"].iloc[0] == pytest.approx(1.0)
    assert features["hour_of_day_cos"].iloc[0] == pytest.approx(0.0, abs=1e-6)
    assert features["day_of_week_sin"].iloc[0] == pytest.approx(0.0)
    assert features["month_of_year_sin"].iloc[0] == pytest.approx(np.sin(2 * np.pi * 2 / 12))


@pytest.mark.parametrize(
    "freq, n", [("h", 8), ("15min", 8), ("D", 6), ("W-SUN", 4), ("MS", 2), ("YS", 0)]
)
def test_cycles_follow_the_frequency(freq, n):
    assert len(calendar_feature_names(freq)) == n


def test_add_calendar_features_keeps_attrs_and_rejects_bad_freq():
    frame = pd.DataFrame({"y": [1.0, 2.0]}, index=pd.date_range("2024-01-01", periods=2, freq="D"))
    frame.attrs = {"freq": "D"}
    out = add_calendar_features(frame)
    assert out.shape == (2, 7) and out.attrs["freq"] == "D"
    with pytest.raises(ConfigError, match="pandas frequency alias"):
        calendar_features(frame.index, "fortnightly")
