"""Conformal prediction intervals: the quantile, coverage, JSON, and `forecast train --interval`."""

import json

import numpy as np
import pandas as pd
import pytest

from forecast.cli import main
from forecast.errors import ConfigError
from forecast.evaluation.intervals import (
    CQR,
    ConformalIntervals,
    calibrate,
    check_levels,
    conformal_quantile,
    interval_report,
    level_label,
    nonconformity,
)
from forecast.evaluation.metrics import interval_coverage, interval_width, winkler_score


def _run(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


# -- the conformal quantile -------------------------------------------------------------------

def test_conformal_quantile_uses_the_finite_sample_rank():
    scores = np.arange(1.0, 20.0)  # n = 19: 1, 2, ..., 19
    # k = ceil(20 * 0.9) = 18 (not the plain 0.9 quantile, 17.2)
    assert conformal_quantile(scores, 0.9) == (18.0, False)
    assert conformal_quantile(scores, 0.8)[0] == 16.0  # ceil(16.0) = 16, no float slip
    assert conformal_quantile(scores, 0.5)[0] == 10.0
    # n = 9, level 0.9: k = ceil(9) = 9, the largest, still guaranteed
    assert conformal_quantile(np.arange(1.0, 10.0), 0.9) == (9.0, False)
    # n = 5, level 0.9: k = ceil(5.4) = 6 > 5: capped at the largest
    assert conformal_quantile([5.0, 1.0, 4.0, 2.0, 3.0], 0.9) == (5.0, True)


def test_conformal_quantile_per_step_and_target():
    scores = np.zeros((4, 2, 2))  # n = 4, level 0.6: k = ceil(3.0) = 3
    scores[:, 0, 0] = [4, 1, 3, 2]
    scores[:, 1, 1] = [40, 10, 30, 20]
    width, capped = conformal_quantile(scores, 0.6)
    assert width.tolist() == [[3.0, 0.0], [0.0, 30.0]] and not capped


def test_levels_are_checked_and_named():
    assert check_levels([0.95, 0.8, 0.95]) == (0.8, 0.95)
    assert [level_label(x) for x in (0.8, 0.9, 0.95, 0.975)] == ["80", "90", "95", "97.5"]
    for bad in (1.5, 0.0, 1.0, -0.1, float("nan"), True):
        with pytest.raises(ConfigError, match="--interval"):
            check_levels([bad])


def test_interval_metrics_on_known_numbers():
    y = [[1.0, 5.0]]
    assert interval_coverage(y, [[0.0, 0.0]], [[2.0, 2.0]]) == 0.5
    assert interval_width([[0.0, 1.0]], [[2.0, 4.0]]) == 2.5
    # level 0.8: a = 0.2, penalty 2 / a = 10 per unit missed: (2 + 0) and (2 + 10 * 3)
    assert winkler_score(y, [[0.0, 0.0]], [[2.0, 2.0]], 0.8) == pytest.approx(17.0)


# -- coverage on exchangeable data -------------------------------------------------------------

def test_split_conformal_covers_iid_errors_at_the_nominal_level():
    rng = np.random.default_rng(7)
    n_cal, n_test, horizon = 500, 20000, 3
    scale = np.array([1.0, 2.0, 4.0])[None, :, None]  # wider errors further out
    forecast_cal = rng.normal(size=(n_cal, horizon, 1))
    y_cal = forecast_cal + scale * rng.standard_t(4, size=(n_cal, horizon, 1))
    intervals = calibrate(y_cal, forecast_cal, (0.8, 0.9), ["y"])
    assert intervals.n == n_cal and intervals.method == "split"
    widths = intervals.width(0.9)[:, 0]
    assert widths[0] < widths[1] < widths[2]  # per step
    forecast = rng.normal(size=(n_test, horizon, 1))
    y = forecast + scale * rng.standard_t(4, size=(n_test, horizon, 1))
    report = interval_report(y, forecast, intervals)
    assert report["90"]["coverage"] == pytest.approx(0.9, abs=0.02)
    assert report["80"]["coverage"] == pytest.approx(0.8, abs=0.02)
    assert report["90"]["width"] > report["80"]["width"]


def test_cqr_widens_a_too_narrow_quantile_band():
    rng = np.random.default_rng(3)
    quantiles = (0.1, 0.5, 0.9)

    def draw(n):
        point = rng.normal(size=(n, 2, 1))
        band = np.stack([point - 0.5, point, point + 0.5], axis=-1)  # far too narrow
        return point + rng.normal(size=(n, 2, 1)), band

    y_cal, band_cal = draw(1000)
    intervals = calibrate(y_cal, band_cal, (0.9,), ["y"], quantiles=quantiles)
    assert intervals.method == CQR and (intervals.width(0.9) > 0).all()
    y, band = draw(20000)
    raw = interval_coverage(y, band[..., 0], band[..., -1])
    fixed = interval_report(y, band, intervals, quantiles)["90"]["coverage"]
    assert raw < 0.5 and fixed == pytest.approx(0.9, abs=0.02)
    assert nonconformity(y_cal, band_cal, CQR).shape == y_cal.shape


def test_cqr_never_moves_a_bound_past_the_median():
    wide = np.stack([np.full((2, 1), -10.0), np.zeros((2, 1)), np.full((2, 1), 10.0)], -1)
    intervals = ConformalIntervals(levels=(0.9,), targets=("y",), widths={"90": [[-12.0]] * 2},
                                   n=50, method=CQR)
    lo, hi = intervals.bounds(wide, 0.9, (0.1, 0.5, 0.9))  # the band would cross itself
    assert (lo == 0).all() and (hi == 0).all()


def test_intervals_round_trip_through_json():
    scores = np.random.default_rng(0).exponential(size=(30, 4, 2))
    intervals = ConformalIntervals.fit(scores, (0.8, 0.975), ["a", "b"])
    text = intervals.to_json()
    assert set(json.loads(text)["widths"]) == {"80", "97.5"}
    again = ConformalIntervals.from_json(text)
    assert again == intervals
    np.testing.assert_array_equal(again.width(0.975), intervals.width(0.975))
    lo, hi = again.bounds(np.zeros((4, 2)), 0.8)
    assert (lo <= 0).all() and (hi >= 0).all() and lo.shape == (4, 2)


# -- through the CLI ---------------------------------------------------------------------------

def test_train_interval_reports_and_predict_writes_bounds(synthetic_csv, tmp_path, capsys):
    folder = tmp_path / "model"
    code, out, err = _run(
        ["train", str(synthetic_csv), "--target", "y", "--horizon", "6", "--lookback", "24",
         "--interval", "0.9", "--interval", "0.8", "--units", "4", "--epochs", "1", "--seed",
         "1", "--no-track", "--save", str(folder), "--json"], capsys)
    assert code == 0, err
    result = json.loads(out)
    intervals = result["intervals"]
    assert intervals["method"] == "split" and intervals["calibration"] == "validation"
    assert intervals["n_calibration"] > 0 and intervals["levels"] == ["80", "90"]
    assert set(intervals["baselines"]) == {"naive", "seasonal_naive", "linear"}
    for levels in [intervals["model"], *intervals["baselines"].values()]:
        scores = levels["90"]
        assert scores["nominal"] == 0.9 and 0 <= scores["coverage"] <= 1
        assert scores["width"] > 0 and scores["winkler"] >= scores["width"]
        assert levels["80"]["width"] <= scores["width"]
    state = json.loads(next(folder.rglob("forecaster.json")).read_text())
    assert set(state["intervals"]["model"]["widths"]) == {"80", "90"}

    history = pd.read_csv(synthetic_csv).tail(48)
    recent = tmp_path / "recent.csv"
    history.to_csv(recent, index=False)
    out_csv = tmp_path / "forecast.csv"
    code, _, err = _run(["predict", "--model", str(folder), "--csv", str(recent),
                         "--out", str(out_csv)], capsys)
    assert code == 0, err
    forecast = pd.read_csv(out_csv)
    assert len(forecast) == 6
    for label in ("80", "90"):
        assert (forecast[f"y_lo_{label}"] <= forecast["y"]).all()
        assert (forecast["y"] <= forecast[f"y_hi_{label}"]).all()
    assert (forecast["y_lo_90"] <= forecast["y_lo_80"]).all()


def test_train_interval_is_logged_to_mlflow(synthetic_csv, capsys):
    import mlflow

    code, out, err = _run(
        ["train", str(synthetic_csv), "--target", "y", "--horizon", "6", "--lookback", "24",
         "--interval", "0.9", "--units", "4", "--epochs", "1", "--json"], capsys)
    assert code == 0, err
    run = mlflow.get_run(json.loads(out)["mlflow"]["run_id"])
    for name in ("test.model.coverage_90", "test.model.width_90", "test.model.winkler_90",
                 "test.naive.coverage_90", "test.linear.winkler_90"):
        assert name in run.data.metrics, name


@pytest.mark.parametrize("argv, named", [
    (["--interval", "1.5"], "--interval"),
    (["--interval", "0"], "--interval"),
    (["--interval", "0.9", "--val", "0"], "--val"),
])
def test_train_refuses_bad_intervals_before_training(synthetic_csv, capsys, argv, named):
    code, out, err = _run(["train", str(synthetic_csv), "--target", "y", "--no-track",
                           "--epochs", "1", *argv], capsys)
    assert code == 2
    assert named in err and "--interval" in err


# -- in a backtest -----------------------------------------------------------------------------

def test_backtest_interval_calibrates_every_fold_on_its_validation_part(synthetic_csv, capsys):
    import mlflow

    code, out, err = _run(
        ["backtest", str(synthetic_csv), "--target", "y", "--horizon", "6", "--lookback", "24",
         "--units", "4", "--epochs", "1", "--seed", "1", "--folds", "3", "--interval", "0.9",
         "--interval", "0.8", "--json"], capsys)
    assert code == 0, err
    report = json.loads(out)
    for fold in report["folds"]:
        own = fold["intervals"]
        assert own["calibration"] == "validation" and own["levels"] == ["80", "90"]
        # each fold's validation part: the last tenth of its fit rows, minus horizon - 1
        assert own["n_calibration"] == round(fold["fit_rows"] * 0.1) - 5
        assert set(own["baselines"]) == {"naive", "seasonal_naive", "linear"}
        assert own["model"]["80"]["width"] < own["model"]["90"]["width"]
    mean = report["intervals"]
    assert mean["folds"] == 3 and mean["calibration"] == "fold validation"
    for label in ("80", "90"):
        coverage = [fold["intervals"]["model"][label]["coverage"] for fold in report["folds"]]
        assert mean["model"][label]["coverage"] == pytest.approx(np.mean(coverage))
        assert 0.5 < mean["model"][label]["coverage"] <= 1
    run = mlflow.get_run(report["mlflow"]["run_id"])
    assert run.data.metrics["backtest.model.coverage_90"] == pytest.approx(
        mean["model"]["90"]["coverage"])
    assert "backtest.seasonal_naive.winkler_80" in run.data.metrics


def test_backtest_interval_without_validation_windows_names_the_flags(synthetic_csv, capsys):
    # 15 folds of 30 rows leave the oldest fold 30 fit rows: a tenth of them is no validation
    code, out, err = _run(
        ["backtest", str(synthetic_csv), "--target", "y", "--horizon", "6", "--lookback", "24",
         "--units", "4", "--epochs", "1", "--folds", "15", "--fold-size", "30", "--interval",
         "0.9", "--no-track"], capsys)
    assert code == 2 and "--interval" in err and "--folds" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
