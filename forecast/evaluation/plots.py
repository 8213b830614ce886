"""PNG plots for runs: forecast vs actual (with a quantile band), loss curves, error by step.

Figures are ``matplotlib.figure.Figure`` objects rendered by the Agg canvas, never through
``pyplot``: no global figure state, no display needed, nothing to close. Each function returns
the figure and, given ``path``, also writes it as a PNG (``mlflow.log_figure`` takes the figure).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from forecast.errors import DataError

DPI = 100


def _figure(n_rows: int = 1, width: float = 8.0, height: float = 3.2):
    fig = Figure(figsize=(width, height * n_rows), dpi=DPI)
    FigureCanvasAgg(fig)
    axes = fig.subplots(n_rows, 1, squeeze=False)[:, 0]
    return fig, axes


def save_figure(fig: Figure, path) -> Path:
    """Writes ``fig`` as a PNG (folders created); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=DPI, bbox_inches="tight")
    return path


def _as_2d(values, name: str) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2:
        raise DataError(f"`{name}` must be (steps,) or (steps, targets). Received {array.shape}.")
    return array


def plot_forecast(actual, forecast, *, history=None, quantiles: Sequence[float] | None = None,
                  times=None, history_times=None, target_names: Sequence[str] | None = None,
                  title: str | None = None, path=None) -> Figure:
    """One forecast window against the actuals, one panel per target.

    Args:
        actual: the actual values over the horizon, (horizon,) or (horizon, targets).
        forecast: the forecast, (horizon,) / (horizon, targets) or, with ``quantiles``,
            (horizon, targets, quantiles) — or (horizon, quantiles) for one target. The median
            quantile is drawn as the line, the outermost quantiles as the band.
        history: the lookback values before the forecast, (lookback,) or (lookback, targets).
        quantiles: the quantile levels of the forecast's last axis.
        times: x values (timestamps) of the horizon; ``history_times`` those of the history.
            Default: step numbers, the history at negative steps.
        target_names: a title for each panel.
        title: the figure's title.
        path: also write the PNG there.

    Returns:
        The figure.
    """
    actual = _as_2d(actual, "actual")
    horizon, n_targets = actual.shape
    forecast = np.asarray(forecast, dtype=np.float64)
    band = None
    if quantiles is not None:
        levels = np.asarray(list(quantiles), dtype=np.float64)
        if forecast.ndim == 2:
            forecast = forecast[:, None, :]
        if forecast.shape != (horizon, n_targets, len(levels)):
            raise DataError(
                f"`forecast` must be (horizon, targets, quantiles) = "
                f"{(horizon, n_targets, len(levels))}. Received {forecast.shape}."
            )
        band = (forecast[..., 0], forecast[..., -1], levels[0], levels[-1])
        forecast = forecast[..., int(np.argmin(np.abs(levels - 0.5)))]
    forecast = _as_2d(forecast, "forecast")
    if forecast.shape != actual.shape:
        raise DataError(
            f"`forecast` {forecast.shape} and `actual` {actual.shape} must have the same shape."
        )
    x = np.arange(1, horizon + 1) if times is None else np.asarray(times)
    hist = _as_2d(history, "history") if history is not None else None
    if hist is not None:
        hx = np.arange(-len(hist) + 1, 1) if history_times is None else np.asarray(history_times)
        if len(hx) != len(hist):
            raise DataError(
                f"`history_times` has {len(hx)} values but `history` has {len(hist)} rows."
            )
    if len(x) != horizon:
        raise DataError(f"`times` has {len(x)} values but the horizon has {horizon} steps.")

    fig, axes = _figure(n_targets)
    for t, ax in enumerate(axes):
        if hist is not None:
            ax.plot(hx, hist[:, t], color="0.45", lw=1.2, label="history")
        ax.plot(x, actual[:, t], color="black", lw=1.6, marker=".", label="actual")
        ax.plot(x, forecast[:, t], color="tab:blue", lw=1.6, marker=".", label="forecast")
        if band is not None:
            lo, hi, q_lo, q_hi = band
            ax.fill_between(x, lo[:, t], hi[:, t], color="tab:blue", alpha=0.25,
                            label=f"q{q_lo:g}–q{q_hi:g}")
        if target_names is not None:
            ax.set_title(str(target_names[t]))
        ax.grid(alpha=0.3)
        ax.legend(loc="best", fontsize="small")
    if title:
        fig.suptitle(title)
    if times is not None:
        fig.autofmt_xdate()
    if path is not None:
        save_figure(fig, path)
    return fig


def _finish(fig: Figure, ax, xlabel: str, ylabel: str, title: str, path) -> Figure:
    """Labels, grid and legend of a one-panel figure; written to ``path`` when given."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(loc="best")
    ax.set_title(title)
    if path is not None:
        save_figure(fig, path)
    return fig


def plot_training_curves(history: Mapping[str, Sequence[float]], *, title: str | None = None,
                         path=None) -> Figure:
    """Loss curves (``loss``, ``val_loss`` and any other ``*loss`` key) per epoch.

    Args:
        history: ``FitResult.history`` or ``keras.callbacks.History.history``.
        path: also write the PNG there.

    Raises:
        DataError: no loss values in ``history``.
    """
    keys = [k for k in history if k.endswith("loss") and len(history[k])]
    if not keys:
        raise DataError(f"`history` holds no loss values; its keys are {sorted(history)}.")
    fig, (ax,) = _figure(1)
    positive = True
    for key in keys:
        values = np.asarray(history[key], dtype=np.float64)
        ax.plot(np.arange(1, len(values) + 1), values, marker=".", label=key)
        positive &= bool(np.all(values[np.isfinite(values)] > 0))
    if positive:
        ax.set_yscale("log")
    return _finish(fig, ax, "epoch", "loss", title or "training curves", path)


def plot_error_by_step(per_step, *, metrics: Sequence[str] = ("mae", "rmse"),
                       title: str | None = None, path=None) -> Figure:
    """Error per horizon step.

    Args:
        per_step: ``compute_metrics(...)`` output (its ``"per_step"`` part is used), a
            ``{metric: [horizon values]}`` dict, or one array of horizon values.
        metrics: which metrics of a dict to draw (those present).
        path: also write the PNG there.
    """
    if isinstance(per_step, Mapping):
        curves = per_step.get("per_step", per_step)
        curves = {k: curves[k] for k in metrics if k in curves}
    else:
        curves = {"error": per_step}
    if not curves:
        raise DataError(f"none of the metrics {list(metrics)} is in `per_step`.")
    fig, (ax,) = _figure(1)
    for name, values in curves.items():
        values = np.asarray(values, dtype=np.float64)
        ax.plot(np.arange(1, len(values) + 1), values, marker="o", label=name)
    return _finish(fig, ax, "horizon step", "error", title or "error by horizon step", path)
