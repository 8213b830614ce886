"""Tests of forecast/data/scaling.py: fitted on train only, JSON round trip, constant columns."""

import json

import numpy as np
import pandas as pd
import pytest

from forecast.data import Scaler, chronological_split
from forecast.errors import ConfigError, DataError


def _frame(n=100, seed=0):
    rng = np.random.default_rng(seed)
    index = pd.date_range("2024-01-01", periods=n, freq="h")
    frame = pd.DataFrame(
        {"a": rng.normal(5.0, 2.0, n), "b": rng.uniform(-1, 3, n), "flat": np.full(n, 7.0)},
        index=index,
    )
    frame.attrs = {"freq": "h"}
    return frame


def test_standard_scaler_uses_train_statistics_only():
    frame = _frame()
    parts = chronological_split(frame, val=0.1, test=0.2)
    scaler = Scaler("standard").fit(parts.train)
    z = scaler.transform(parts.train)
    np.testing.assert_allclose(z[["a", "b"]].mean(), 0.0, atol=1e-12)
    np.testing.assert_allclose(z[["a", "b"]].std(ddof=0), 1.0, atol=1e-12)
    leaked = frame.copy()
    leaked.iloc[70:, 0] += 1e6  # changing val/test must not change the fitted scaler
    assert Scaler("standard").fit(chronological_split(leaked).train).params == scaler.params


def test_constant_column_does_not_divide_by_zero():
    scaler = Scaler("standard").fit(_frame())
    z = scaler.transform(_frame())
    assert np.isfinite(z.to_numpy()).all()
    assert (z["flat"] == 0.0).all()
    for kind in ("minmax", "robust"):
        assert np.isfinite(Scaler(kind).fit(_frame()).transform(_frame()).to_numpy()).all()


def test_minmax_and_robust():
    frame = _frame()
    z = Scaler("minmax", columns=["a", "b"]).fit(frame).transform(frame)
    assert z["a"].min() == pytest.approx(0.0) and z["a"].max() == pytest.approx(1.0)
    assert (z["flat"] == 7.0).all()  # columns outside the scaler are left alone
    r = Scaler("robust").fit(frame).transform(frame)
    assert r["a"].median() == pytest.approx(0.0, abs=1e-12)
    q75, q25 = np.percentile(r["b"], [75, 25])
    assert q75 - q25 == pytest.approx(1.0)


def test_json_round_trip_and_inverse():
    frame = _frame()
    scaler = Scaler("standard").fit(frame)
    text = scaler.to_json()
    assert json.loads(text)["kind"] == "standard"
    again = Scaler.from_json(text)
    pd.testing.assert_frame_equal(again.transform(frame), scaler.transform(frame))
    pd.testing.assert_frame_equal(again.inverse_transform(scaler.transform(frame)), frame)
    z = scaler.transform_array(frame[["b"]].to_numpy(), ["b"])
    np.testing.assert_allclose(again.inverse_transform(z, columns=["b"])[:, 0], frame["b"])


def test_per_series_statistics_in_long_format():
    index = pd.MultiIndex.from_arrays(
        [["x"] * 3 + ["y"] * 3, pd.date_range("2024-01-01", periods=3, freq="D").tolist() * 2]
    )
    frame = pd.DataFrame({"v": [1.0, 2.0, 3.0, 100.0, 200.0, 300.0]}, index=index)
    scaler = Scaler("minmax").fit(frame)
    assert scaler.transform(frame)["v"].tolist() == [0.0, 0.5, 1.0, 0.0, 0.5, 1.0]
    np.testing.assert_allclose(scaler.inverse_transform(np.array([[0.5]]), series="y"), [[200.0]])
    with pytest.raises(DataError, match="no statistics for series 'z'"):
        scaler.inverse_transform(np.array([[0.5]]), series="z")


def test_bad_scaler_use():
    with pytest.raises(ConfigError, match="scaler `kind` must be one of"):
        Scaler("zscore")
    with pytest.raises(ConfigError, match="not fitted"):
        Scaler().transform(_frame())
    with pytest.raises(DataError, match=r"columns \['nope'\] are not in the frame"):
        Scaler(columns=["nope"]).fit(_frame())
    bad = _frame()
    bad.iloc[3, 0] = np.nan
    with pytest.raises(DataError, match="holds NaN or inf"):
        Scaler().fit(bad)
    with pytest.raises(ConfigError, match="not a saved Scaler"):
        Scaler.from_json('{"kind": "standard"}')
