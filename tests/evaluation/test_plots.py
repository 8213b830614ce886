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


def _boxes_apart(fig):
    """The figure drawn; every panel (with its titles and tick labels), the figure's title and
    the legend lie inside the figure and overlap nothing else."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    page = fig.bbox
    boxes = [ax.get_tightbbox(renderer) for ax in fig.axes if ax.get_visible()]
    boxes += [legend.get_window_extent(renderer) for legend in fig.legends]
    if fig._suptitle is not None:
        boxes.append(fig._suptitle.get_window_extent(renderer))
    for box in boxes:
        assert page.x0 - 1 <= box.x0 and box.x1 <= page.x1 + 1, (box, page)
        assert page.y0 - 1 <= box.y0 and box.y1 <= page.y1 + 1, (box, page)
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            overlap_x = min(a.x1, b.x1) - max(a.x0, b.x0)
            overlap_y = min(a.y1, b.y1) - max(a.y0, b.y0)
            assert overlap_x <= 1 or overlap_y <= 1, (a, b)
    return boxes


def _panels(n_targets=1, quantiles=False, windows=4):
    from forecast.evaluation.plots import ForecastPanel, spread_windows

    times = pd.date_range("2024-01-01", periods=400, freq="h")
    t = np.arange(400)
    y = np.stack([10 + 3 * np.sin(2 * np.pi * t / 24) + k for k in range(n_targets)], axis=1)
    panels = []
    for s in spread_windows(400 - 48 - 24 + 1, windows):
        actual = y[s + 48: s + 72]
        model = actual + 0.2
        if quantiles:
            model = np.stack([model - 1, model, model + 1], axis=-1)
        panels.append(ForecastPanel(
            times=times[s + 48: s + 72], actual=actual,
            forecasts={"model": model, "naive": np.repeat(y[s + 47: s + 48], 24, axis=0),
                       "linear": actual * 0.9},
            history=y[s: s + 48], history_times=times[s: s + 48]))
    return panels


def test_spread_windows_keeps_the_first_and_the_last():
    from forecast.evaluation.plots import spread_windows

    assert spread_windows(178, 4) == [0, 59, 118, 177]
    assert spread_windows(3, 4) == [0, 1, 2]
    assert spread_windows(0) == []


def test_several_test_windows_with_baselines_dashed_and_the_band(tmp_path):
    from forecast.evaluation.plots import plot_forecast_panels

    fig = plot_forecast_panels(_panels(quantiles=True), quantiles=[0.1, 0.5, 0.9],
                               target_names=["OT"], title="test part: 4 of 329 windows",
                               path=tmp_path / "w.png")
    assert_png(tmp_path / "w.png")
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert len(axes) == 4  # two by two
    assert [ax.get_title() for ax in axes] == [
        "from 2024-01-03 00:00", "from 2024-01-07 13:00", "from 2024-01-12 03:00",
        "from 2024-01-16 16:00"]  # windows 0, 109, 219, 328 of 329, after 48 rows of history
    lines = {line.get_label(): line for line in axes[0].get_lines()}
    assert {"history", "actual", "naive", "linear", "model"} <= set(lines)
    assert lines["naive"].get_linestyle() == "--" and lines["linear"].get_linestyle() == "--"
    assert lines["model"].get_linestyle() == "-"
    band = axes[0].collections[0].get_paths()[0].vertices[:, 1]  # q0.1 .. q0.9 of the model
    np.testing.assert_allclose([band.min(), band.max()],
                               [_panels()[0].actual.min() + 0.2 - 1,
                                _panels()[0].actual.max() + 0.2 + 1])
    labels = [text.get_text() for text in fig.legends[0].get_texts()]
    assert labels == ["model q0.1–q0.9", "history", "actual", "naive", "linear", "model"]
    _boxes_apart(fig)


def test_several_targets_get_a_column_each(tmp_path):
    from forecast.evaluation.plots import plot_forecast_panels

    fig = plot_forecast_panels(_panels(n_targets=2, windows=3), target_names=["a", "b"],
                               title="two targets", path=tmp_path / "t.png")
    assert len(fig.axes) == 6
    assert fig.axes[1].get_title().startswith("b, from ")
    _boxes_apart(fig)


def test_the_other_plots_keep_their_labels_inside(tmp_path):
    from forecast.evaluation.plots import plot_future

    figs = [
        plot_training_curves({"loss": [70.0, 3.0, 0.26], "val_loss": [21.0, 0.9, 0.18]},
                             title="training"),
        plot_error_by_step({"mae": [1.0, 1.2, 1.5]}, title="test MAE by horizon step",
                           baselines={"naive": {"mae": [1.4, 1.5, 1.6]}}),
        plot_forecast(np.arange(12.0), np.arange(12.0) + 1, title="one window",
                      target_names=["y"], baselines={"naive": np.full(12, 3.0)}),
    ]
    for fig in figs:
        _boxes_apart(fig)
    steps = figs[1].axes[0].get_lines()
    assert [line.get_label() for line in steps] == ["model", "naive"]
    assert steps[1].get_linestyle() == "--"
    times = pd.date_range("2024-03-01", periods=72, freq="h")
    future = pd.date_range(times[-1] + pd.Timedelta(hours=1), periods=24, freq="h")
    fig = plot_future(np.sin(np.arange(72.0)), np.cos(np.arange(24.0)), history_times=times,
                      times=future, bands={"y": (np.cos(np.arange(24.0)) - 1,
                                                 np.cos(np.arange(24.0)) + 1, "q0.1–q0.9")},
                      target_names=["y"], title="forecast", path=tmp_path / "future.png")
    assert_png(tmp_path / "future.png")
    forecast_line = fig.axes[0].get_lines()[1]
    assert len(forecast_line.get_xdata()) == 25  # joined to the last actual
    _boxes_apart(fig)


def test_future_panels_of_many_series_in_a_grid(tmp_path):
    from forecast.evaluation.plots import FuturePanel, plot_futures

    times = pd.date_range("2024-03-01", periods=48, freq="h")
    future = pd.date_range(times[-1] + pd.Timedelta(hours=1), periods=12, freq="h")
    panels = [FuturePanel(f"store {k}", np.sin(np.arange(48.0)) * 10 ** k, times,
                          np.cos(np.arange(12.0)) * 10 ** k, future,
                          (np.full(12, -10.0 ** k), np.full(12, 10.0 ** k), "90 % interval"))
              for k in range(5)]
    fig = plot_futures(panels, title="five series", n_cols=3, path=tmp_path / "grid.png")
    assert_png(tmp_path / "grid.png")
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert len(fig.axes) == 6 and len(visible) == 5  # 2 rows of 3, the last cell hidden
    assert [ax.get_title() for ax in visible] == [f"store {k}" for k in range(5)]
    # each panel on its own scale: history (36 of 48 rows: three horizons) and forecast
    assert len(visible[0].get_lines()[0].get_xdata()) == 36
    assert visible[4].get_ylim()[1] > 1000 > visible[0].get_ylim()[1]
    _boxes_apart(fig)
