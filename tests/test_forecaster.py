"""Tests of forecast/forecaster.py: fit, predict with timestamps, save/load, no leakage."""

import numpy as np
import pandas as pd
import pytest

from forecast.data import chronological_split, load_csv, make_dataset
from forecast.errors import DataError, ModelError
from forecast.forecaster import Forecaster

CONFIG = {"horizon": 6, "lookback": 24, "model": {"units": 8}, "batch_size": 32,
          "train": {"epochs": 2, "verbose": 0, "seed": 7}}


@pytest.fixture(scope="module")
def frame(tmp_path_factory):
    from tests.conftest import synthetic_frame

    path = tmp_path_factory.mktemp("data") / "s.csv"
    synthetic_frame(360).to_csv(path, index=False)
    return load_csv(path, targets=["y"])


@pytest.fixture(scope="module")
def fitted(frame):
    parts = chronological_split(frame, val=0.15, test=0.15, lookback=24)
    return Forecaster(CONFIG).fit(parts.train, parts.val), parts


def test_predict_returns_future_timestamps_in_original_units(fitted, frame):
    forecaster, parts = fitted
    forecast = forecaster.predict(parts.test)
    last = parts.test.index[-1]
    assert list(forecast.index) == list(pd.date_range(last, periods=7, freq="h")[1:])
    assert list(forecast.columns) == ["y"]
    # original units: the series lives around 10 ± 3, scaled values live around 0 ± 1
    assert 4 < forecast["y"].mean() < 16
    assert forecaster.spec.future_covariates[0] == "hour_of_day_sin"


def test_predict_windows_shapes_and_baselines(fitted):
    forecaster, parts = fitted
    y_true, y_pred = forecaster.predict_windows(parts.test)
    assert y_true.shape == y_pred.shape == (len(parts.test) - 30 + 1, 6, 1)
    np.testing.assert_allclose(y_true[0, :, 0], parts.test["y"].iloc[24:30])
    assert set(forecaster.baselines) == {"naive", "seasonal_naive", "linear"}
    naive = forecaster.baseline_predictors()["naive"]
    _, y_naive = forecaster.predict_windows(parts.test, model=naive)
    np.testing.assert_allclose(y_naive[0, :, 0], parts.test["y"].iloc[23], rtol=1e-6)


def test_save_load_round_trip_without_pickle(fitted, tmp_path):
    forecaster, parts = fitted
    folder = forecaster.save(tmp_path / "fc")
    for path in folder.rglob("*"):
        assert path.suffix not in {".pkl", ".pickle"}
    again = Forecaster.load(folder)
    pd.testing.assert_frame_equal(again.predict(parts.test), forecaster.predict(parts.test))
    with pytest.raises(ModelError, match="does not hold a saved forecaster"):
        Forecaster.load(tmp_path / "nothing")


def test_predict_rejects_bad_history(fitted):
    forecaster, parts = fitted
    with pytest.raises(DataError, match="needs at least 24"):
        forecaster.predict(parts.test.iloc[:10])
    with pytest.raises(DataError, match=r"columns \['y'\] are missing"):
        forecaster.predict(parts.test.rename(columns={"y": "z"}))


def test_no_leakage_from_the_test_part(frame):
    """Perturbing the test rows leaves the scaler, the training windows and the weights equal."""
    perturbed = frame.copy()
    cut = chronological_split(frame, val=0.15, test=0.15).borders[1]  # first test row
    perturbed.iloc[cut:, 0] = perturbed.iloc[cut:, 0] * 50 + 1000
    fits = []
    for data in (frame, perturbed):
        parts = chronological_split(data, val=0.15, test=0.15, lookback=24)
        assert parts.borders[1] == cut
        fits.append((Forecaster(CONFIG).fit(parts.train, parts.val), parts))
    (a, parts_a), (b, parts_b) = fits
    assert a.scaler.params == b.scaler.params
    windows = [
        np.concatenate([y.numpy() for _, y in make_dataset(
            f.scaler.transform(f._with_features(p.train)), f.spec)])
        for f, p in fits
    ]
    np.testing.assert_array_equal(windows[0], windows[1])
    for wa, wb in zip(a.model.get_weights(), b.model.get_weights(), strict=True):
        np.testing.assert_array_equal(wa, wb)
    assert not np.array_equal(parts_a.test.to_numpy(), parts_b.test.to_numpy())


def test_quantile_forecaster_names_its_columns(frame):
    parts = chronological_split(frame, val=0.15, test=0.15, lookback=24)
    config = {**CONFIG, "model": {"units": 8, "quantiles": [0.1, 0.5, 0.9]},
              "train": {"epochs": 1, "verbose": 0}}
    forecaster = Forecaster(config).fit(parts.train, parts.val)
    forecast = forecaster.predict(parts.test)
    assert list(forecast.columns) == ["y", "y_q0.1", "y_q0.5", "y_q0.9"]
    assert (forecast["y_q0.1"] <= forecast["y_q0.5"]).all()
    assert (forecast["y_q0.5"] <= forecast["y_q0.9"]).all()
    np.testing.assert_array_equal(forecast["y"], forecast["y_q0.5"])


def test_the_verdict_beside_the_best_baseline_ties_within_rounding():
    from forecast.workflow import versus_best_baseline

    def verdict(model):
        return versus_best_baseline({"model": {"mase": model},
                                     "baselines": {"linear": {"mase": 0.7127}}})

    # a network blended at share 0 is the linear baseline up to float32 rounding: tied
    assert verdict(0.7127 * (1 + 3e-7)).endswith("(model +0.0%: tied)")
    assert verdict(0.70).endswith("(model -1.8%: better)")
    assert verdict(0.72).endswith("(model +1.0%: worse)")
