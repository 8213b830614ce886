"""PNG plots for runs: forecasts against actuals (model, baselines, quantile bands), the future
forecast, loss curves, error by step.

Figures are ``matplotlib.figure.Figure`` objects rendered by the Agg canvas, never through
``pyplot``: no global figure state, no display needed, nothing to close. Each function returns
the figure and, given ``path``, also writes it as a PNG (``mlflow.log_figure`` takes the figure).
Every figure uses matplotlib's constrained layout, so titles, tick labels, axis labels and the
legend (below the panels, outside them) never overlap or fall off the edge, however the figure
is saved.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib import dates as mdates
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from forecast.errors import DataError

DPI = 100
#: how the baselines are drawn beside the model: dashed, one colour each.
_BASELINE_STYLES = {"naive": "tab:orange", "seasonal_naive": "tab:green", "linear": "tab:red"}
_OTHER_COLOURS = ("tab:purple", "tab:brown", "tab:pink", "tab:olive", "tab:cyan")
#: at most this many targets get a column of panels (the rest are left out, and the title says).
MAX_TARGET_PANELS = 3


def _figure(n_rows: int = 1, width: float = 8.0, height: float = 3.2, n_cols: int = 1):
    fig = Figure(figsize=(width, height * n_rows), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(n_rows, n_cols, squeeze=False)
    return fig, (axes[:, 0] if n_cols == 1 else axes)


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


def _x(values, default: np.ndarray) -> np.ndarray:
    """X values for matplotlib: timestamps as naive datetime64 (UTC for aware ones), else as
    given; ``default`` when None."""
    if values is None:
        return default
    if isinstance(values, pd.DatetimeIndex) or (
            isinstance(values, pd.Series) and isinstance(values.dtype, pd.DatetimeTZDtype)):
        index = pd.DatetimeIndex(values)
        return (index.tz_convert(None) if index.tz is not None else index).to_numpy()
    array = np.asarray(values)
    if array.dtype == object and len(array) and isinstance(array[0], pd.Timestamp):
        return _x(pd.DatetimeIndex(array), default)
    return array


def _is_time(x: np.ndarray) -> bool:
    return np.issubdtype(np.asarray(x).dtype, np.datetime64)


def _date_axis(ax, x: np.ndarray) -> None:
    """Compact date labels (no rotation needed, so nothing overlaps) on a time axis."""
    if _is_time(x):
        locator = mdates.AutoDateLocator(minticks=3, maxticks=6)
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))


def _colour(name: str, index: int) -> str:
    return _BASELINE_STYLES.get(name, _OTHER_COLOURS[index % len(_OTHER_COLOURS)])


def _split_quantiles(values, levels, shape: tuple[int, int], name: str):
    """``(median or point forecast (steps, targets), band (lo, hi, q_lo, q_hi) or None)``."""
    array = np.asarray(values, dtype=np.float64)
    if levels is None or len(levels) == 0:
        return _as_2d(array, name), None
    levels = np.asarray(list(levels), dtype=np.float64)
    if array.ndim == 2 and array.shape == shape:  # a point forecast beside a quantile model
        return array, None
    if array.ndim == 2:
        array = array[:, None, :]
    if array.shape != (*shape, len(levels)):
        raise DataError(f"`{name}` must be (horizon, targets, quantiles) = "
                        f"{(*shape, len(levels))}. Received {array.shape}.")
    band = (array[..., 0], array[..., -1], levels[0], levels[-1])
    return array[..., int(np.argmin(np.abs(levels - 0.5)))], band


def _legend(fig: Figure, axes) -> None:
    """One legend for the figure, below the panels (labels deduplicated, in drawing order)."""
    seen: dict[str, object] = {}
    for ax in np.ravel(axes):
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            seen.setdefault(label, handle)
    if seen:
        fig.legend(list(seen.values()), list(seen), loc="outside lower center",
                   ncols=min(len(seen), 6), fontsize="small", frameon=False)


def plot_forecast(actual, forecast, *, history=None, quantiles: Sequence[float] | None = None,
                  times=None, history_times=None, target_names: Sequence[str] | None = None,
                  title: str | None = None, path=None, baselines: Mapping | None = None) -> Figure:
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
        baselines: ``{name: point forecast like actual}`` drawn dashed beside the model.

    Returns:
        The figure.

    Raises:
        DataError: shapes that do not match.
    """
    actual = _as_2d(actual, "actual")
    horizon, n_targets = actual.shape
    median, band = _split_quantiles(forecast, quantiles, actual.shape, "forecast")
    if median.shape != actual.shape:
        raise DataError(
            f"`forecast` {median.shape} and `actual` {actual.shape} must have the same shape."
        )
    x = _x(times, np.arange(1, horizon + 1))
    if len(x) != horizon:
        raise DataError(f"`times` has {len(x)} values but the horizon has {horizon} steps.")
    hist = hx = None
    if history is not None:
        hist = _as_2d(history, "history")
        hx = _x(history_times, np.arange(-len(hist) + 1, 1))
        if len(hx) != len(hist):
            raise DataError(
                f"`history_times` has {len(hx)} values but `history` has {len(hist)} rows."
            )
    others = {name: _as_2d(values, f"baselines[{name!r}]")
              for name, values in (baselines or {}).items()}
    fig, axes = _figure(n_targets)
    for t, ax in enumerate(axes):
        _draw_window(ax, t, x=x, actual=actual, model=median, band=band, baselines=others,
                     history=hist, history_x=hx)
        if target_names is not None:
            ax.set_title(str(target_names[t]), fontsize="medium")
        ax.set_ylabel(str(target_names[t]) if target_names is not None else "value")
    _legend(fig, axes)
    if title:
        fig.suptitle(title)
    if path is not None:
        save_figure(fig, path)
    return fig


def _draw_window(ax, t: int, *, x, actual, model, band, baselines: Mapping, history=None,
                 history_x=None, model_label: str = "model") -> None:
    """One target of one forecast window: history, actual, model (with its band), baselines."""
    if band is not None:  # first, so the lines are drawn over it
        lo, hi, q_lo, q_hi = band
        ax.fill_between(x, lo[:, t], hi[:, t], color="tab:blue", alpha=0.2, linewidth=0,
                        label=f"{model_label} q{q_lo:g}–q{q_hi:g}")
    if history is not None:
        ax.plot(history_x, history[:, t], color="0.55", lw=1.1, label="history")
    if actual is not None:
        ax.plot(x, actual[:, t], color="black", lw=1.6, label="actual")
    for k, (name, values) in enumerate(baselines.items()):
        ax.plot(x, values[:, t], color=_colour(name, k), lw=1.2, ls="--", label=name)
    ax.plot(x, model[:, t], color="tab:blue", lw=1.8, label=model_label)
    if history is not None and len(history_x):
        ax.axvline(history_x[-1], color="0.7", lw=0.8, ls=":")
    ax.grid(alpha=0.3)
    _date_axis(ax, x)


@dataclass
class ForecastPanel:
    """One forecast window of a test part, for ``plot_forecast_panels``.

    Attributes:
        times: the horizon's timestamps (or step numbers), (horizon,).
        actual: (horizon, targets), original units.
        forecasts: ``{name: values}`` — the model's (horizon, targets) or, for a quantile
            model, (horizon, targets, quantiles), and each baseline's (horizon, targets).
        history: the rows before the window, (rows, targets), or None.
        history_times: their timestamps, (rows,).
        label: the panel's title (default: "from <first forecast time>").
    """

    times: object
    actual: np.ndarray
    forecasts: Mapping[str, np.ndarray]
    history: np.ndarray | None = None
    history_times: object = None
    label: str | None = None


def spread_windows(n_windows: int, count: int = 4) -> list[int]:
    """``count`` window indices spread evenly over ``0 .. n_windows - 1``, first and last kept.

    Example:
        >>> spread_windows(178, 4)
        [0, 59, 118, 177]
    """
    if n_windows <= 0:
        return []
    return sorted({int(round(v)) for v in np.linspace(0, n_windows - 1, min(count, n_windows))})


def plot_forecast_panels(panels: Sequence[ForecastPanel], *, model: str = "model",
                         quantiles: Sequence[float] | None = None,
                         target_names: Sequence[str] | None = None, title: str | None = None,
                         history_rows: int | None = None, path=None) -> Figure:
    """Several forecast windows (e.g. spread over the test part), each against its actuals, the
    model solid (with its quantile band) and the baselines dashed beside it.

    One target: the panels in a grid of two columns. Several targets: one row per window and one
    column per target (the first ``MAX_TARGET_PANELS``). One legend below the panels.

    Args:
        panels: the windows, oldest first.
        model: which key of each panel's ``forecasts`` is the model; the others are baselines.
        quantiles: the model's quantile levels (its last axis), when it has them.
        target_names: the targets' names.
        title: the figure's title.
        history_rows: draw at most this many history rows before each window (default: three
            horizons), so the forecast is not squeezed by a long lookback.
        path: also write the PNG there.

    Returns:
        The figure.

    Raises:
        DataError: no panels, no ``model`` forecast, or shapes that do not match.
    """
    if not panels:
        raise DataError("`panels` is empty: pass at least one forecast window.")
    first = _as_2d(panels[0].actual, "actual")
    horizon, n_targets = first.shape
    shown = min(n_targets, MAX_TARGET_PANELS)
    names = list(target_names) if target_names is not None else [f"target {t}" for t in
                                                                   range(n_targets)]
    keep = history_rows if history_rows is not None else 3 * horizon
    if shown == 1:
        n_cols = 1 if len(panels) == 1 else 2
        n_rows = -(-len(panels) // n_cols)
        fig, grid = _figure(n_rows, width=7.0 * n_cols, height=3.3, n_cols=n_cols)
        grid = np.asarray(grid).reshape(n_rows, n_cols)
        cells = [(grid[k // n_cols, k % n_cols], k, 0) for k in range(len(panels))]
        for ax in grid.ravel()[len(panels):]:
            ax.set_visible(False)
    else:
        fig, grid = _figure(len(panels), width=5.2 * shown, height=3.0, n_cols=shown)
        grid = np.asarray(grid).reshape(len(panels), shown)
        cells = [(grid[k, t], k, t) for k in range(len(panels)) for t in range(shown)]
    for ax, k, t in cells:
        panel = panels[k]
        actual = _as_2d(panel.actual, f"panels[{k}].actual")
        if model not in panel.forecasts:
            raise DataError(f"panels[{k}].forecasts has no {model!r} entry; its keys are "
                            f"{sorted(panel.forecasts)}.")
        median, band = _split_quantiles(panel.forecasts[model], quantiles, actual.shape,
                                        f"panels[{k}].forecasts[{model!r}]")
        baselines = {name: _as_2d(values, f"panels[{k}].forecasts[{name!r}]")
                     for name, values in panel.forecasts.items() if name != model}
        for name, values in {model: median, **baselines}.items():
            if values.shape != actual.shape:
                raise DataError(f"panels[{k}].forecasts[{name!r}] {values.shape} and its "
                                f"actual {actual.shape} must have the same shape.")
        x = _x(panel.times, np.arange(1, len(actual) + 1))
        hist = hx = None
        if panel.history is not None and keep > 0:
            hist = _as_2d(panel.history, f"panels[{k}].history")[-keep:]
            hx = _x(panel.history_times, np.arange(-len(panel.history) + 1, 1))[-keep:]
        _draw_window(ax, t, x=x, actual=actual, model=median, band=band, baselines=baselines,
                     history=hist, history_x=hx, model_label=model)
        label = panel.label or (f"from {pd.Timestamp(x[0]):%Y-%m-%d %H:%M}" if _is_time(x)
                                else f"from step {x[0]}")
        ax.set_title(label if shown == 1 else f"{names[t]}, {label}", fontsize="medium")
        if shown == 1 or t == 0:
            ax.set_ylabel(names[t] if shown == 1 else "value")
    _legend(fig, [ax for ax, _, _ in cells])
    if title or shown < n_targets:
        more = f" ({shown} of {n_targets} targets shown)" if shown < n_targets else ""
        fig.suptitle(f"{title or ''}{more}".strip())
    if path is not None:
        save_figure(fig, path)
    return fig


@dataclass(frozen=True)
class FuturePanel:
    """One series' (and target's) forecast past the end of its data, for ``plot_futures``.

    Attributes:
        label: the panel's title (the series and target).
        history: the recent actuals, (rows,).
        history_times: their timestamps, (rows,).
        forecast: the forecast, (horizon,).
        times: its timestamps, (horizon,).
        band: ``(lo, hi, label)``: a quantile band or conformal interval, or None.
    """

    label: str
    history: np.ndarray
    history_times: object
    forecast: np.ndarray
    times: object
    band: tuple | None = None


def plot_future(history, forecast, *, history_times, times,
                bands: Mapping[str, tuple] | None = None,
                target_names: Sequence[str] | None = None, title: str | None = None,
                history_rows: int | None = None, path=None) -> Figure:
    """The forecast past the end of the data, after the recent history; one panel per target.

    Args:
        history: the recent actuals, (rows, targets) or (rows,).
        forecast: the forecast, (horizon, targets) or (horizon,).
        history_times, times: their timestamps.
        bands: ``{target: (lo, hi, label)}``: a quantile band per target name.
        target_names: the targets' names (default ``target 0``, ...).
        title: the figure's title.
        history_rows: draw at most this many history rows (default: three horizons).
        path: also write the PNG there.

    Returns:
        The figure.

    Raises:
        DataError: ``history`` and ``forecast`` hold different numbers of targets.
    """
    forecast = _as_2d(forecast, "forecast")
    n_targets = forecast.shape[1]
    history = _as_2d(history, "history")
    if history.shape[1] != n_targets:
        raise DataError(f"`history` has {history.shape[1]} targets but `forecast` has "
                        f"{n_targets}.")
    names = list(target_names) if target_names is not None else [f"target {t}" for t in
                                                                   range(n_targets)]
    panels = [FuturePanel(names[t], history[:, t], history_times, forecast[:, t], times,
                          (bands or {}).get(names[t])) for t in range(n_targets)]
    return plot_futures(panels, title=title, history_rows=history_rows, n_cols=1, path=path)


def plot_futures(panels: Sequence[FuturePanel], *, title: str | None = None,
                 history_rows: int | None = None, n_cols: int = 1, path=None) -> Figure:
    """Forecasts past the end of the data, one panel each (targets of one series, or the
    series of a global model), ``n_cols`` panels a row.

    Args:
        panels: what each panel draws.
        title: the figure's title.
        history_rows: draw at most this many history rows (default: three horizons).
        n_cols: panels per row.
        path: also write the PNG there.

    Returns:
        The figure.

    Raises:
        DataError: no panel.
    """
    if not panels:
        raise DataError("nothing to draw: no forecast panel.")
    n_cols = max(1, min(n_cols, len(panels)))
    n_rows = -(-len(panels) // n_cols)
    fig, grid = _figure(n_rows, width=9.0 if n_cols == 1 else 5.0 * n_cols, n_cols=n_cols)
    axes = list(np.asarray(grid).reshape(-1))
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    for panel, ax in zip(panels, axes, strict=False):
        forecast = np.asarray(panel.forecast, dtype=np.float64).reshape(-1)
        keep = history_rows if history_rows is not None else 3 * len(forecast)
        history = np.asarray(panel.history, dtype=np.float64).reshape(-1)
        hx = _x(panel.history_times, np.arange(-len(history) + 1, 1))[-keep:]
        history = history[-keep:]
        x = _x(panel.times, np.arange(1, len(forecast) + 1))
        if panel.band is not None:
            ax.fill_between(x, np.asarray(panel.band[0], float), np.asarray(panel.band[1], float),
                            color="tab:blue", alpha=0.2, linewidth=0, label=panel.band[2])
        ax.plot(hx, history, color="black", lw=1.4, label="history")
        # joined to the last actual, so the forecast reads as its continuation
        ax.plot(np.concatenate([hx[-1:], x]) if len(hx) else x,
                np.concatenate([history[-1:], forecast]) if len(hx) else forecast,
                color="tab:blue", lw=1.8, marker=".", label="forecast")
        if len(hx):
            ax.axvline(hx[-1], color="0.6", lw=0.8, ls=":")
        if n_cols == 1:  # one column (the targets of one series): named on the side
            ax.set_ylabel(panel.label)
        else:
            ax.set_title(panel.label, fontsize="medium")
        ax.grid(alpha=0.3)
        _date_axis(ax, x)
    _legend(fig, axes[:len(panels)])
    if title:
        fig.suptitle(title)
    if path is not None:
        save_figure(fig, path)
    return fig


def _finish(fig: Figure, ax, xlabel: str, ylabel: str, title: str, path) -> Figure:
    """Labels, grid and legend of a one-panel figure; written to ``path`` when given."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize="small")
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
    finite = []
    for key in keys:
        values = np.asarray(history[key], dtype=np.float64)
        ax.plot(np.arange(1, len(values) + 1), values, marker=".", label=key)
        finite.extend(values[np.isfinite(values)])
    finite = np.asarray(finite)
    if len(finite) and finite.min() > 0 and finite.max() / finite.min() > 20:
        ax.set_yscale("log")  # losses over decades; plain numbers on the ticks
        ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
        ax.yaxis.set_minor_formatter(NullFormatter())
    ax.xaxis.get_major_locator().set_params(integer=True)
    return _finish(fig, ax, "epoch", "loss", title or "training curves", path)


def plot_error_by_step(per_step, *, metrics: Sequence[str] = ("mae", "rmse"),
                       baselines: Mapping[str, Mapping] | None = None,
                       title: str | None = None, path=None) -> Figure:
    """Error per horizon step: the model's curves, or the model's first metric beside each
    baseline's (dashed) when ``baselines`` are given.

    Args:
        per_step: ``compute_metrics(...)`` output (its ``"per_step"`` part is used), a
            ``{metric: [horizon values]}`` dict, or one array of horizon values.
        metrics: which metrics of a dict to draw (those present; with ``baselines`` the first
            one present).
        baselines: ``{name: per_step of that baseline}`` (same forms as ``per_step``).
        path: also write the PNG there.

    Raises:
        DataError: none of ``metrics`` is in ``per_step``.
    """
    if isinstance(per_step, Mapping):
        curves = per_step.get("per_step", per_step)
        curves = {k: curves[k] for k in metrics if k in curves}
    else:
        curves = {"error": per_step}
    if not curves:
        raise DataError(f"none of the metrics {list(metrics)} is in `per_step`.")
    fig, (ax,) = _figure(1)
    if baselines:
        name = next(iter(curves))
        values = np.asarray(curves[name], dtype=np.float64)
        steps = np.arange(1, len(values) + 1)
        ax.plot(steps, values, marker="o", color="tab:blue", lw=1.8, label="model")
        for k, (base, base_steps) in enumerate(baselines.items()):
            series = base_steps.get("per_step", base_steps).get(name)
            if series is not None:
                series = np.asarray(series, dtype=np.float64)
                ax.plot(np.arange(1, len(series) + 1), series, marker=".", ls="--", lw=1.2,
                        color=_colour(base, k), label=base)
        ylabel = f"{name.upper()} (original units)"
    else:
        for name, values in curves.items():
            values = np.asarray(values, dtype=np.float64)
            ax.plot(np.arange(1, len(values) + 1), values, marker="o", label=name)
        ylabel = "error"
    ax.xaxis.get_major_locator().set_params(integer=True)
    if baselines:
        ax.set_xlabel("horizon step")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.set_title(title or "error by horizon step")
        _legend(fig, [ax])
        if path is not None:
            save_figure(fig, path)
        return fig
    return _finish(fig, ax, "horizon step", ylabel, title or "error by horizon step", path)
