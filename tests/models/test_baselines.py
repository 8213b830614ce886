"""Baselines: exact naive outputs, linear on a trend and a sine, JSON round trips."""

import numpy as np
import pandas as pd
import pytest

from forecast.data.scaling import Scaler
from forecast.data.windows import WindowSpec, make_dataset
from forecast.errors import ConfigError, DataError, ModelError
from forecast.models.baselines import (
    BASELINES,
    LinearForecaster,
    NaiveForecaster,
    SeasonalNaiveForecaster,
    baseline_from_json,
    make_baseline,
    season_for_freq,
)

# 2 windows, lookback 6, 2 channels (1 target + 1 covariate)
X = np.array(
    [
        [[1, 10], [2, 10], [3, 10], [4, 10], [5, 10], [6, 10]],
        [[7, 10], [6, 10], [5, 10], [4, 10], [3, 10], [9, 10]],
    ],
    dtype=float,
)
SPEC = WindowSpec(lookback=6, horizon=5, targets=("y",), past_covariates=("c",))


def frame_of(values, freq="h", columns=("y",)):
    values = np.asarray(values, dtype=float)
    values = values[:, None] if values.ndim == 1 else values
    index = pd.date_range("2024-01-01", periods=len(values), freq=freq)
    frame = pd.DataFrame(values, index=index, columns=list(columns))
    frame.attrs["freq"] = freq
    return frame


def test_naive_repeats_last_value():
    model = NaiveForecaster().fit((X, np.zeros((2, 5, 1))), SPEC)
    out = model.predict(X)
    assert out.shape == (2, 5, 1)
    np.testing.assert_array_equal(out[0, :, 0], [6] * 5)
    np.testing.assert_array_equal(out[1, :, 0], [9] * 5)


def test_seasonal_naive_repeats_last_season():
    model = SeasonalNaiveForecaster(season=3).fit((X, np.zeros((2, 5, 1))), SPEC)
    out = model.predict(X)
    np.testing.assert_array_equal(out[0, :, 0], [4, 5, 6, 4, 5])
    np.testing.assert_array_equal(out[1, :, 0], [4, 3, 9, 4, 3])


def test_seasonal_naive_needs_lookback_of_a_season():
    with pytest.raises(ConfigError, match="lookback 6 is shorter than the season 24"):
        SeasonalNaiveForecaster(freq="h").fit((X, np.zeros((2, 5, 1))), SPEC)
    with pytest.raises(ConfigError, match="season"):
        SeasonalNaiveForecaster().fit((X, np.zeros((2, 5, 1))), SPEC)


def test_season_from_frequency():
    assert season_for_freq("h") == 24
    assert season_for_freq("D") == 7
    assert season_for_freq("W-SUN") == 52
    assert season_for_freq("MS") == 12
    assert season_for_freq("15min") == 96
    assert season_for_freq("QS") == 4
    with pytest.raises(ConfigError, match="season="):
        season_for_freq("7h")
    assert season_for_freq(None, default=1) == 1


def test_fit_and_predict_from_make_dataset_with_future_covariates():
    values = np.stack([np.arange(40.0), np.sin(np.arange(40.0))], axis=1)
    frame = frame_of(values, columns=("y", "f"))
    spec = WindowSpec(lookback=24, horizon=4, targets=("y",), future_covariates=("f",))
    ds = make_dataset(frame, spec, batch_size=5)
    model = SeasonalNaiveForecaster().fit(ds, spec, freq="h")
    assert model.season == 24
    out = model.predict(ds)  # the dataset itself
    assert out.shape == (spec.n_windows(frame), 4, 1)
    (past, future), _ = next(iter(ds))
    batch = model.predict((past.numpy(), future.numpy()))  # a (past, future) pair
    np.testing.assert_allclose(batch[:, :, 0], past.numpy()[:, :4, 0])


def test_linear_recovers_a_linear_trend():
    frame = frame_of(0.5 * np.arange(200.0) + 3.0)
    spec = WindowSpec(lookback=12, horizon=6, targets=("y",))
    scaler = Scaler("standard", ["y"]).fit(frame.iloc[:150])
    scaled = scaler.transform(frame)
    train = make_dataset(scaled.iloc[:150], spec, batch_size=32)
    test = make_dataset(scaled.iloc[150 - 12 :], spec, batch_size=32)
    model = LinearForecaster(alpha=1.0).fit(train, spec)
    pred = model.predict(test)
    actual = np.concatenate([y for _, y in test.as_numpy_iterator()])
    assert np.max(np.abs(pred - actual)) < 1e-3


def sine_frame(n=400, noise=0.05):
    rng = np.random.default_rng(0)
    t = np.arange(n)
    return frame_of(np.sin(2 * np.pi * t / 20) + noise * rng.standard_normal(n))


def test_linear_beats_naive_on_a_sine():
    frame = sine_frame()
    spec = WindowSpec(lookback=30, horizon=10, targets=("y",))
    train = make_dataset(frame.iloc[:300], spec)
    test = make_dataset(frame.iloc[300 - 30 :], spec)
    actual = np.concatenate([y for _, y in test.as_numpy_iterator()])
    linear = LinearForecaster(alpha=1.0).fit(train, spec).predict(test)
    naive = NaiveForecaster().fit(train, spec).predict(test)
    linear_mae = np.mean(np.abs(linear - actual))
    naive_mae = np.mean(np.abs(naive - actual))
    assert linear_mae < 0.1 < 0.5 < naive_mae


def test_linear_shared_and_per_channel():
    rng = np.random.default_rng(1)
    values = np.cumsum(rng.standard_normal((120, 2)), axis=0)
    frame = frame_of(values, columns=("a", "b"))
    spec = WindowSpec(lookback=8, horizon=3, targets=("a", "b"))
    ds = make_dataset(frame, spec)
    shared = LinearForecaster(per_channel=False).fit(ds, spec)
    per_channel = LinearForecaster(per_channel=True).fit(ds, spec)
    assert shared.coef.shape == (1, 3, 8) and per_channel.coef.shape == (2, 3, 8)
    x, _ = next(iter(ds))
    assert shared.predict(x.numpy()).shape == per_channel.predict(x.numpy()).shape == (32, 3, 2)
    # shared weights: channel b's forecast uses the same coefficients as channel a's
    xb = x.numpy()[:, :, ::-1].copy()
    np.testing.assert_allclose(shared.predict(xb)[..., 0], shared.predict(x.numpy())[..., 1])


@pytest.mark.parametrize("name", BASELINES)
def test_json_round_trip_gives_identical_predictions(name):
    frame = sine_frame(200)
    spec = WindowSpec(lookback=24, horizon=6, targets=("y",))
    ds = make_dataset(frame, spec)
    kwargs = {"season": 20} if name == "seasonal_naive" else {}
    model = make_baseline(name, **kwargs).fit(ds, spec)
    text = model.to_json()
    assert "pickle" not in text
    again = baseline_from_json(text)
    assert type(again) is type(model)
    np.testing.assert_array_equal(again.predict(ds), model.predict(ds))


def test_errors():
    with pytest.raises(ConfigError, match="unknown baseline"):
        make_baseline("prophet")
    with pytest.raises(ConfigError, match="alpha"):
        LinearForecaster(alpha=-1)
    with pytest.raises(ModelError, match="not fitted"):
        NaiveForecaster().predict(X)
    with pytest.raises(DataError, match="shape"):
        NaiveForecaster().fit((X, np.zeros((2, 5, 1))), SPEC).predict(X[0])
    with pytest.raises(ConfigError, match="not a saved baseline"):
        baseline_from_json('{"name": "naive"}')
