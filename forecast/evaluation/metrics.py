"""Forecast accuracy metrics, in pure NumPy.

Arrays follow the model's shapes: ``y_true`` is (windows, horizon, targets) and a point forecast
has the same shape; a quantile forecast is (windows, horizon, targets, quantiles). 2-D arrays
(windows, horizon) are read as one target. Every metric averages over all elements, or, with
``axis``, keeps that axis (``axis=1``: one value per horizon step).

Conventions:
    * MAPE and sMAPE are percentages. MAPE skips actuals that are exactly zero (it is undefined
      there); how many were skipped is logged and reported as ``mape_skipped``. sMAPE counts a
      point where actual and forecast are both zero as a 0 error.
    * MASE divides the MAE by the in-sample MAE of the seasonal naive forecast on the training
      series (per target channel): ``mean(|x[t] - x[t - season]|)``.
    * pinball is the mean over elements and quantiles of ``max(q e, (q - 1) e)``,
      ``e = y - y_q``; coverage is the share of actuals inside the outermost quantiles
      ``[q_lo, q_hi]`` (nominal ``q_hi - q_lo``).
    * Prediction intervals ``[lo, hi]`` (``forecast.evaluation.intervals``): ``interval_coverage``
      is the share of actuals inside, ``interval_width`` the mean ``hi - lo``, and
      ``winkler_score`` the mean interval score (width plus ``2 / (1 - level)`` times each miss).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from forecast.errors import DataError

logger = logging.getLogger(__name__)


def _as_3d(y, name: str) -> np.ndarray:
    array = np.asarray(y, dtype=np.float64)
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3:
        raise DataError(
            f"`{name}` must be (windows, horizon, targets) or (windows, horizon). "
            f"Received shape {array.shape}."
        )
    return array


def _pair(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    y_true = _as_3d(y_true, "y_true")
    y_pred = _as_3d(y_pred, "y_pred")
    if y_true.shape != y_pred.shape:
        raise DataError(
            f"`y_true` and `y_pred` must have the same shape. Received {y_true.shape} and "
            f"{y_pred.shape}."
        )
    return y_true, y_pred


def _reduce_axes(ndim: int, axis: int | None):
    if axis is None:
        return None
    return tuple(a for a in range(ndim) if a != axis % ndim)


def _mean(values: np.ndarray, axis: int | None, where=None):
    axes = _reduce_axes(values.ndim, axis)
    if where is None:
        out = np.mean(values, axis=axes)
    else:
        count = np.sum(where, axis=axes)
        total = np.sum(np.where(where, values, 0.0), axis=axes)
        with np.errstate(invalid="ignore", divide="ignore"):
            out = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    return float(out) if axis is None else np.asarray(out, dtype=np.float64)


def mae(y_true, y_pred, axis: int | None = None):
    """Mean absolute error ``mean(|y - ŷ|)``.

    Example:
        >>> mae([[1.0, 2.0]], [[2.0, 4.0]])
        1.5
    """
    y_true, y_pred = _pair(y_true, y_pred)
    return _mean(np.abs(y_true - y_pred), axis)


def rmse(y_true, y_pred, axis: int | None = None):
    """Root mean squared error ``sqrt(mean((y - ŷ)²))``."""
    y_true, y_pred = _pair(y_true, y_pred)
    return np.sqrt(_mean((y_true - y_pred) ** 2, axis))


def mape(y_true, y_pred, axis: int | None = None, *, return_skipped: bool = False):
    """Mean absolute percentage error, in percent, skipping zero actuals.

    Args:
        y_true, y_pred: actuals and point forecasts.
        axis: the axis to keep (None: one number).
        return_skipped: also return how many zero actuals were skipped.

    Returns:
        ``100 * mean(|y - ŷ| / |y|)`` over the non-zero actuals (NaN where all are zero), or
        ``(value, skipped)`` with ``return_skipped``.

    Example:
        >>> mape([[0.0, 2.0, 4.0]], [[1.0, 1.0, 5.0]], return_skipped=True)
        (37.5, 1)
    """
    y_true, y_pred = _pair(y_true, y_pred)
    keep = y_true != 0.0
    skipped = int(np.size(keep) - np.count_nonzero(keep))
    if skipped:
        logger.info("MAPE skipped %d zero actual value(s) of %d.", skipped, keep.size)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.abs(y_true - y_pred) / np.abs(y_true)
    value = _mean(100.0 * ratio, axis, where=keep)
    return (value, skipped) if return_skipped else value


def smape(y_true, y_pred, axis: int | None = None):
    """Symmetric MAPE in percent: ``100 * mean(2 |y - ŷ| / (|y| + |ŷ|))`` (0 where both are 0).

    Example:
        >>> smape([[1.0, 0.0]], [[3.0, 0.0]])
        50.0
    """
    y_true, y_pred = _pair(y_true, y_pred)
    denominator = np.abs(y_true) + np.abs(y_pred)
    with np.errstate(invalid="ignore", divide="ignore"):
        terms = np.where(denominator > 0, 2.0 * np.abs(y_true - y_pred) / denominator, 0.0)
    return _mean(100.0 * terms, axis)


def seasonal_naive_scale(insample, season: int, n_targets: int | None = None) -> np.ndarray:
    """The in-sample MAE of the seasonal naive forecast, per target channel.

    Args:
        insample: the training series, (rows,) or (rows, targets).
        season: the seasonal lag (1: the naive forecast).
        n_targets: the expected number of channels (checked when given).

    Returns:
        (targets,) array ``mean(|x[t] - x[t - season]|)`` over t.

    Raises:
        DataError: a series not longer than ``season``, or the wrong number of channels.
    """
    series = np.asarray(insample, dtype=np.float64)
    if series.ndim == 1:
        series = series[:, None]
    if series.ndim != 2:
        raise DataError(f"`insample` must be (rows,) or (rows, targets). Received {series.shape}.")
    if isinstance(season, bool) or not isinstance(season, int | np.integer) or season < 1:
        raise DataError(f"`season` must be a positive integer. Received: season={season!r}.")
    if len(series) <= season:
        raise DataError(
            f"MASE needs an in-sample series longer than the season ({season}); it has "
            f"{len(series)} rows."
        )
    if n_targets is not None and series.shape[1] != n_targets:
        raise DataError(
            f"`insample` has {series.shape[1]} channels but the forecasts have {n_targets} targets."
        )
    return np.mean(np.abs(series[season:] - series[:-season]), axis=0)


def mase(y_true, y_pred, insample=None, season: int = 1, axis: int | None = None, *,
         scale=None):
    """Mean absolute scaled error: errors divided by the in-sample seasonal naive MAE.

    Each target channel's absolute errors are divided by its own scale (see
    ``seasonal_naive_scale``), then averaged. A channel whose scale is 0 (a constant series at
    that lag) makes MASE undefined: NaN is returned for it and a warning logged.

    Args:
        y_true, y_pred: actuals and point forecasts (windows, horizon, targets).
        insample: the training series (rows, targets) the scale is computed from.
        season: the seasonal lag.
        axis: the axis to keep (None: one number).
        scale: instead of ``insample``, the scale itself: (targets,), or (windows, targets)
            when the windows come from several series, each scaled by its own series'
            in-sample error (``series_scales``); the windows are then pooled.

    Example:
        >>> mase([[2.0]], [[4.0]], insample=[1.0, 2.0, 4.0], season=1)   # scale 1.5
        1.3333333333333333
    """
    y_true, y_pred = _pair(y_true, y_pred)
    if scale is None:
        if insample is None:
            raise DataError("MASE needs `insample` (the training series) or `scale`.")
        scale = seasonal_naive_scale(insample, season, y_true.shape[-1])
    else:
        scale = np.asarray(scale, dtype=np.float64)
        if scale.ndim == 2:  # [N, T] -> [N, 1, T]: one scale per window and channel
            scale = scale[:, None, :]
    if np.any(scale == 0):
        logger.warning("MASE is undefined: the in-sample series does not change at lag %d.", season)
    with np.errstate(invalid="ignore", divide="ignore"):
        scaled = np.abs(y_true - y_pred) / np.where(scale == 0, np.nan, scale)
    return _mean(scaled, axis)


def _quantile_pair(y_true, q_pred, quantiles):
    y_true = _as_3d(y_true, "y_true")
    q_pred = np.asarray(q_pred, dtype=np.float64)
    if q_pred.ndim == 3 and y_true.shape[-1] == 1 and q_pred.shape[:2] == y_true.shape[:2]:
        q_pred = q_pred[:, :, None, :]
    levels = np.asarray(list(quantiles), dtype=np.float64)
    if q_pred.shape != (*y_true.shape, len(levels)):
        raise DataError(
            "quantile forecasts must be (windows, horizon, targets, quantiles) = "
            f"{(*y_true.shape, len(levels))}. Received {q_pred.shape}."
        )
    return y_true, q_pred, levels


def pinball(y_true, q_pred, quantiles: Sequence[float], axis: int | None = None):
    """Mean pinball loss of quantile forecasts.

    Args:
        y_true: (windows, horizon, targets).
        q_pred: (windows, horizon, targets, quantiles).
        quantiles: the levels along the last axis.

    Example:
        >>> pinball([[[1.0]]], [[[[0.0, 0.0]]]], quantiles=[0.1, 0.9])   # (0.1 + 0.9) / 2
        0.5
    """
    y_true, q_pred, levels = _quantile_pair(y_true, q_pred, quantiles)
    error = y_true[..., None] - q_pred  # [N, H, T, Q]
    loss = np.maximum(levels * error, (levels - 1.0) * error).mean(axis=-1)  # [N, H, T]
    return _mean(loss, axis)


def coverage(y_true, q_pred, quantiles: Sequence[float], axis: int | None = None,
             lower: float | None = None, upper: float | None = None):
    """Share of actuals inside the interval between two quantiles (both ends included).

    Args:
        lower, upper: the quantile levels of the interval (default: the lowest and highest).

    Example:
        >>> coverage([[[1.0], [5.0]]], [[[[0.0, 2.0]], [[0.0, 2.0]]]], [0.1, 0.9])
        0.5
    """
    y_true, q_pred, levels = _quantile_pair(y_true, q_pred, quantiles)
    lo = 0 if lower is None else _level_index(levels, lower)
    hi = len(levels) - 1 if upper is None else _level_index(levels, upper)
    inside = (y_true >= q_pred[..., lo]) & (y_true <= q_pred[..., hi])
    return _mean(inside.astype(np.float64), axis)


def _interval_triple(y_true, lo, hi):
    """Actuals and bounds as (windows, horizon, targets); 2-D ones are one target, and
    bounds of one window's shape (horizon, targets) apply to every window."""
    two_d = np.ndim(y_true) == 2
    y_true = _as_3d(y_true, "y_true")

    def bound(value):
        value = np.asarray(value, dtype=np.float64)
        if two_d and value.ndim == 2:
            value = value[..., None]
        return np.broadcast_to(value, y_true.shape)

    return y_true, bound(lo), bound(hi)


def interval_coverage(y_true, lo, hi, axis: int | None = None):
    """Share of actuals inside ``[lo, hi]`` (both ends included): the empirical coverage of a
    prediction interval (``forecast.evaluation.intervals``).

    Example:
        >>> interval_coverage([[1.0, 5.0]], [[0.0, 0.0]], [[2.0, 2.0]])
        0.5
    """
    y_true, lo, hi = _interval_triple(y_true, lo, hi)
    inside = (y_true >= lo) & (y_true <= hi)
    return _mean(inside.astype(np.float64), axis)


def interval_width(lo, hi, axis: int | None = None):
    """Mean width ``hi - lo`` of a prediction interval (original units).

    Example:
        >>> interval_width([[0.0, 1.0]], [[2.0, 4.0]])
        2.5
    """
    lo, hi = _pair(lo, hi)
    return _mean(hi - lo, axis)


def winkler_score(y_true, lo, hi, level: float, axis: int | None = None):
    """Mean Winkler (interval) score of the central ``level`` interval ``[lo, hi]``.

    ``(hi - lo) + (2 / a) (lo - y) [y < lo] + (2 / a) (y - hi) [y > hi]`` with
    ``a = 1 - level``: the width, plus a penalty for every miss that grows with the distance;
    lower is better, and it is minimised in expectation by the true quantiles.

    Example:
        >>> winkler_score([[1.0, 5.0]], [[0.0, 0.0]], [[2.0, 2.0]], 0.8)  # 2, then 2 + 10 * 3
        17.0
    """
    if not 0 < level < 1:
        raise DataError(f"`level` must lie strictly between 0 and 1. Received: {level!r}.")
    y_true, lo, hi = _interval_triple(y_true, lo, hi)
    alpha = 1.0 - float(level)
    score = (hi - lo) + (2.0 / alpha) * np.maximum(lo - y_true, 0.0) \
        + (2.0 / alpha) * np.maximum(y_true - hi, 0.0)
    return _mean(score, axis)


def _level_index(levels: np.ndarray, level: float) -> int:
    matches = np.flatnonzero(np.isclose(levels, level))
    if not len(matches):
        raise DataError(f"quantile level {level} is not among {levels.tolist()}.")
    return int(matches[0])


def median_index(quantiles: Sequence[float]) -> int:
    """Position of the quantile used as the point forecast: 0.5, else the one nearest to it."""
    levels = np.asarray(list(quantiles), dtype=np.float64)
    return int(np.argmin(np.abs(levels - 0.5)))


def series_scales(insamples: dict, series, season: int) -> np.ndarray:
    """MASE's scale of every window when the windows come from several series.

    Args:
        insamples: ``{id: training series (rows,) or (rows, targets)}``.
        series: the id of every window (windows,).
        season: the seasonal lag.

    Returns:
        (windows, targets) float64: the scale of each window's own series.

    Raises:
        DataError: a window of a series without an in-sample series.
    """
    series = np.asarray(series, dtype=object)
    own = {}
    for key in dict.fromkeys(series.tolist()):
        if key not in insamples:
            raise DataError(f"MASE: no training series for series {key!r}; it has "
                            f"{sorted(insamples)}.")
        own[key] = seasonal_naive_scale(insamples[key], season)
    if not len(series):
        width = len(next(iter(own.values()))) if own else 1
        return np.zeros((0, width))
    return np.stack([own[key] for key in series.tolist()])


def compute_metrics(y_true, y_pred, *, insample=None, season: int = 1,
                    quantiles: Sequence[float] | None = None, scale=None) -> dict:
    """All metrics, overall and per horizon step.

    Args:
        y_true: actuals (windows, horizon, targets).
        y_pred: point forecasts of the same shape, or quantile forecasts
            (windows, horizon, targets, quantiles) with ``quantiles`` given; the point metrics
            then use the median quantile (0.5, or the level nearest to it).
        insample: the training series (rows, targets) for MASE; None leaves MASE out.
        season: MASE's seasonal lag.
        quantiles: the quantile levels of ``y_pred``'s last axis.
        scale: MASE's scale given directly instead of ``insample`` (see ``mase``): per window,
            (windows, targets), when the windows pool several series.

    Returns:
        ``{"mae", "rmse", "mape", "smape", ["mase"], ["pinball", "coverage",
        "coverage_nominal"], "mape_skipped", "n_windows", "per_step": {name: [horizon floats]}}``.

    Raises:
        DataError: shapes that do not match.

    Example:
        >>> m = compute_metrics(y, yhat, insample=train_values, season=24)
        >>> m["mae"], len(m["per_step"]["mae"])
        (0.41, 24)
    """
    y_true = _as_3d(y_true, "y_true")
    y_pred = np.asarray(y_pred, dtype=np.float64)
    q_pred = None
    if quantiles is not None:
        y_true, q_pred, levels = _quantile_pair(y_true, y_pred, quantiles)
        point = q_pred[..., median_index(levels)]
    else:
        if y_pred.ndim == y_true.ndim + 1:
            raise DataError(
                "`y_pred` has a quantile axis: pass the quantile levels with quantiles=[...]."
            )
        point = y_pred
    y_true, point = _pair(y_true, point)

    result: dict = {}
    per_step: dict = {}
    for name, func in (("mae", mae), ("rmse", rmse), ("smape", smape)):
        result[name] = func(y_true, point)
        per_step[name] = func(y_true, point, axis=1).tolist()
    result["mape"], skipped = mape(y_true, point, return_skipped=True)
    per_step["mape"] = mape(y_true, point, axis=1).tolist()
    if insample is not None or scale is not None:
        result["mase"] = mase(y_true, point, insample, season, scale=scale)
        per_step["mase"] = mase(y_true, point, insample, season, axis=1, scale=scale).tolist()
    if q_pred is not None:
        result["pinball"] = pinball(y_true, q_pred, levels)
        per_step["pinball"] = pinball(y_true, q_pred, levels, axis=1).tolist()
        result["coverage"] = coverage(y_true, q_pred, levels)
        per_step["coverage"] = coverage(y_true, q_pred, levels, axis=1).tolist()
        result["coverage_nominal"] = float(levels[-1] - levels[0])
    result["mape_skipped"] = skipped
    result["n_windows"] = int(y_true.shape[0])
    result["per_step"] = per_step
    return result


def _inverse(scaler, array: np.ndarray, columns, series=None, quantile_axis: bool = False):
    if quantile_axis:  # [N, H, T, Q] -> [N, H, Q, T] so the columns are last
        moved = np.moveaxis(array, -1, -2)
        return np.moveaxis(scaler.inverse_transform(moved, columns=columns, series=series), -1, -2)
    return scaler.inverse_transform(array, columns=columns, series=series)


def evaluate_predictions(y_true, y_pred, *, scaler, columns: Sequence[str], insample=None,
                         season: int = 1, quantiles: Sequence[float] | None = None,
                         series=None) -> dict:
    """Metrics in original units and in scaled units, from scaled model outputs.

    Args:
        y_true: actuals in scaled units (what ``make_dataset`` yields as targets).
        y_pred: the model's forecasts in scaled units (point or quantile).
        scaler: the fitted ``forecast.data.Scaler``.
        columns: the target columns, in the order of the last target axis.
        insample: the training series of the targets in ORIGINAL units (rows, targets), for MASE.
        season: MASE's seasonal lag.
        quantiles: the quantile levels, for quantile forecasts.
        series: in long format, the series whose scaler statistics apply.

    Returns:
        ``{"original": compute_metrics(...), "scaled": compute_metrics(...)}``.

    Example:
        >>> m = evaluate_predictions(y, model.predict(x), scaler=scaler, columns=["OT"])
        >>> m["original"]["mae"], m["scaled"]["mae"]
    """
    y_true = _as_3d(y_true, "y_true")
    y_pred = np.asarray(y_pred, dtype=np.float64)
    columns = list(columns)
    has_q = quantiles is not None
    original_true = _inverse(scaler, y_true, columns, series)
    original_pred = _inverse(scaler, y_pred, columns, series, quantile_axis=has_q)
    scaled_insample = None
    if insample is not None:
        values = np.asarray(insample, dtype=np.float64)
        values = values[:, None] if values.ndim == 1 else values
        scaled_insample = scaler.transform_array(values, columns, series=series)
    return {
        "original": compute_metrics(original_true, original_pred, insample=insample,
                                    season=season, quantiles=quantiles),
        "scaled": compute_metrics(y_true, y_pred, insample=scaled_insample, season=season,
                                  quantiles=quantiles),
    }
