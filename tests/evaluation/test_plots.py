"""Plots are written as real PNG files."""

import numpy as np
import pandas as pd
import pytest

from forecast.errors import DataError
from forecast.evaluation.metrics import compute_metrics
from forecast.evaluation.plots import plot_error_by_step, plot_forecast, plot_training_curves

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def assert_png(path):
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC
    assert len(data) > 5 * 1024


def test_forecast_with_quantile_band(tmp_path):
    t = np.arange(24)
    actual = np.stack([np.sin(t / 4), np.cos(t / 4)], axis=1)  # (24, 2)
    median = actual + 0.1
    q = np.stack([median - 0.3, median, median + 0.3], axis=-1)  # (24, 2, 3)
    times = pd.date_range("2024-01-01", periods=24, freq="h")
    before = pd.date_range(end=times[0] - pd.Timedelta(hours=1), periods=48, freq="h")
    fig = plot_forecast(actual, q, quantiles=[0.1, 0.5, 0.9], history=np.zeros((48, 2)),
                        times=times, history_times=before,
                        target_names=["a", "b"], title="demo", path=tmp_path / "f.png")
    assert len(fig.axes) == 2
    assert_png(tmp_path / "f.png")
    # the band spans the outer quantiles
    band = fig.axes[0].collections[0].get_paths()[0].vertices[:, 1]
    assert band.min() == pytest.approx((median[:, 0] - 0.3).min())


def test_point_forecast_one_target(tmp_path):
    plot_forecast(np.arange(12.0), np.arange(12.0) + 1, path=tmp_path / "p.png")
    assert_png(tmp_path / "p.png")
    with pytest.raises(DataError, match="same shape"):
        plot_forecast(np.arange(12.0), np.arange(10.0))


def test_training_curves(tmp_path):
    history = {"loss": [1.0, 0.5, 0.3, 0.25], "val_loss": [1.2, 0.7, 0.5, 0.55],
               "learning_rate": [1e-3] * 4}
    fig = plot_training_curves(history, path=tmp_path / "loss.png")
    labels = [line.get_label() for line in fig.axes[0].get_lines()]
    assert labels == ["loss", "val_loss"]
    assert_png(tmp_path / "loss.png")
    with pytest.raises(DataError, match="no loss"):
        plot_training_curves({"mae": [1.0]})


def test_error_by_step(tmp_path):
    rng = np.random.default_rng(0)
    y = rng.standard_normal((20, 6, 1))
    metrics = compute_metrics(y, y + 0.1 * np.arange(6)[None, :, None])
    fig = plot_error_by_step(metrics, path=tmp_path / "steps.png")
    line = fig.axes[0].get_lines()[0]
    np.testing.assert_allclose(line.get_ydata(), metrics["per_step"]["mae"])
    assert_png(tmp_path / "steps.png")
    plot_error_by_step(np.arange(6.0), path=tmp_path / "arr.png")
    assert_png(tmp_path / "arr.png")
