"""Calibrated prediction intervals for any forecaster: split conformal, per horizon step.

Split conformal prediction (Vovk et al.; Lei et al. 2018) turns any point forecaster into one
with prediction intervals whose coverage holds in finite samples when the calibration windows
and the windows forecast later are exchangeable:

1. Forecast ``n`` calibration windows the model did NOT train on. ``train_and_evaluate`` uses
   the validation part's windows (``calibration="validation"``): nothing is chosen on the test
   part. (Validation also picks the early-stopping epoch, a mild selection that can make the
   residuals slightly optimistic.) ``ConformalIntervals.fit`` takes the scores of any other
   held-out windows as well, e.g. the pooled test windows of rolling-origin backtest folds.
2. Score every window: the absolute error ``|y - yhat|`` in original units, per target and per
   horizon step (``method="split"``). For a quantile model the score is the conformalized
   quantile regression one (Romano et al. 2019, ``method="cqr"``): ``max(lo - y, y - hi)`` with
   ``[lo, hi]`` the model's outermost quantile band, so the band adapts to the model's own
   uncertainty and is widened (or narrowed) by the conformal quantile.
3. For level ``a`` the half-width of each step is the finite-sample conformal quantile of that
   step's ``n`` scores: the ``k``-th smallest with ``k = ceil((n + 1) a)``, i.e. the
   ``ceil((n + 1) a) / n`` empirical quantile. When ``k > n`` (fewer than ``a / (1 - a)``
   windows) no finite width guarantees the level: the largest score is used and the level is
   listed in ``capped``.

A global model over many series (``--id-col``) pools the windows of every series, whose units
and difficulty differ (kilowatts beside megawatts, smooth beside erratic): each score is divided
by its series' scale for that target, the in-sample MAE of the seasonal naive forecast (MASE's
scale: how much the series moves from one season to the next), so the half-widths are in scaled
units and each series' interval is its half-width times its own scale (``bounds(...,
scale=...)``): normalized (locally weighted) split conformal (Lei et al. 2018), with coverage
over the pooled windows of every series. The scales are kept with the intervals
(``series_scales``). On M4 Hourly this scale, chosen on validation over the scaler's standard
deviation, shared the coverage more evenly among the series (``benchmarks/results/m4.md``).

The intervals are plain data (``to_dict``/``from_dict``, JSON, no pickle) saved in
``forecaster.json``; a forecast gets ``<target>_lo_<pct>`` / ``<target>_hi_<pct>`` columns
(``level_label``: 0.9 -> ``90``, 0.975 -> ``97.5``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from forecast.errors import ConfigError, DataError

#: absolute errors of the point forecast (any model, baselines included)
SPLIT = "split"
#: conformalized quantile regression: the model's outermost quantile band, widened
CQR = "cqr"
METHODS = (SPLIT, CQR)
#: where the calibration windows came from (``train_and_evaluate``)
VALIDATION = "validation"
BACKTEST = "backtest"


def level_label(level: float) -> str:
    """The percent name of a level in column and metric names.

    Example:
        >>> [level_label(x) for x in (0.8, 0.9, 0.95, 0.975)]
        ['80', '90', '95', '97.5']
    """
    return f"{round(float(level) * 100, 6):g}"


def check_levels(levels, *, flag: str = "--interval", key: str | None = None
                 ) -> tuple[float, ...]:
    """The interval levels, sorted and without repeats; each must lie strictly in (0, 1).

    Args:
        levels: the levels given (None or empty: no intervals).
        flag: the command-line flag that gave them, named in errors.
        key: the YAML key that gave them, named in errors when there is one.

    Raises:
        ConfigError: a level that is no number, or not strictly between 0 and 1.

    Example:
        >>> check_levels([0.95, 0.8])
        (0.8, 0.95)
    """
    yaml = f" (YAML `{key}`)" if key else ""
    values = []
    for level in levels or ():
        ok = (isinstance(level, int | float) and not isinstance(level, bool)
              and math.isfinite(level) and 0 < level < 1)
        if not ok:
            raise ConfigError(
                f"{flag} must be a coverage level strictly between 0 and 1{yaml}, e.g. "
                f"{flag} 0.9 for a 90 % prediction interval. Received: {flag} {level!r}.")
        values.append(float(level))
    return tuple(sorted(set(values)))


def conformal_quantile(scores, level: float, axis: int = 0) -> tuple[np.ndarray, bool]:
    """The finite-sample conformal quantile of ``scores`` along ``axis``.

    Args:
        scores: nonconformity scores, ``n`` of them along ``axis`` (NaN not allowed).
        level: the coverage level in (0, 1).
        axis: the axis of the calibration windows.

    Returns:
        ``(quantile, capped)``: the ``k``-th smallest score, ``k = ceil((n + 1) level)``
        (the other axes kept); ``capped`` is True when ``k > n`` and the largest score was
        used instead (too few windows for the level).

    Raises:
        DataError: no scores.

    Example:
        >>> conformal_quantile([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0], 0.8)
        (array(8.), False)
    """
    array = np.asarray(scores, dtype=np.float64)
    array = np.moveaxis(array, axis, 0)
    n = array.shape[0]
    if n == 0:
        raise DataError("conformal intervals need at least one calibration window; got none.")
    k = math.ceil((n + 1) * float(level) - 1e-9)  # the tolerance: 10 * 0.9 is 9.000...02
    capped = k > n
    k = min(max(k, 1), n)
    return np.sort(array, axis=0)[k - 1], capped


def nonconformity(y_true, forecast, method: str = SPLIT, quantiles=None) -> np.ndarray:
    """The score of every window, step and target: (windows, horizon, targets).

    Args:
        y_true: actuals (windows, horizon, targets).
        forecast: point forecasts of the same shape, or (windows, horizon, targets, quantiles).
        method: ``split`` (absolute error of the point forecast; the median of a quantile
            forecast) or ``cqr`` (``max(lo - y, y - hi)`` over the outermost quantiles).
        quantiles: the quantile levels of a quantile forecast.
    """
    y_true = np.asarray(y_true, dtype=np.float64)
    forecast = np.asarray(forecast, dtype=np.float64)
    if method == CQR:
        if forecast.ndim != y_true.ndim + 1:
            raise DataError("cqr scores need a quantile forecast (windows, horizon, targets, "
                            f"quantiles); got shape {forecast.shape}.")
        lo, hi = forecast[..., 0], forecast[..., -1]
        return np.maximum(lo - y_true, y_true - hi)
    return np.abs(y_true - point_of(forecast, quantiles, y_true.ndim))


def point_of(forecast: np.ndarray, quantiles, ndim: int) -> np.ndarray:
    """The point forecast: the forecast itself, or the quantile closest to the median."""
    forecast = np.asarray(forecast, dtype=np.float64)
    if forecast.ndim == ndim + 1:
        levels = list(quantiles or ())
        middle = int(np.argmin([abs(q - 0.5) for q in levels])) if levels else 0
        return forecast[..., middle]
    return forecast


@dataclass(frozen=True)
class ConformalIntervals:
    """Split-conformal half-widths per level, horizon step and target (JSON-ready).

    Attributes:
        levels: the coverage levels, increasing.
        targets: the target columns, in the forecaster's order.
        widths: ``{level_label: [[width per target] per horizon step]}``, original units.
            For ``cqr`` the amount each side of the model's outermost quantile band moves
            out (negative: in).
        n: the calibration windows.
        method: ``split`` or ``cqr``.
        calibration: where the calibration windows came from (``validation``, ``backtest``).
        capped: labels of the levels that ``n`` windows cannot guarantee (the largest score
            was used; see ``conformal_quantile``).
        scaled: the widths are in each series' scaled units (a global model): ``bounds``
            needs the series' ``scale``.
        series_scales: for ``scaled`` intervals, each calibrated series' scale per target
            (``{id: [scale per target]}``).
    """

    levels: tuple[float, ...]
    targets: tuple[str, ...]
    widths: dict
    n: int
    method: str = SPLIT
    calibration: str = VALIDATION
    capped: tuple[str, ...] = ()
    scaled: bool = False
    series_scales: dict = field(default_factory=dict)
    format: int = field(default=1)

    @classmethod
    def fit(cls, scores, levels: Sequence[float], targets: Sequence[str], *,
            method: str = SPLIT, calibration: str = VALIDATION,
            scaled: bool = False, series_scales: dict | None = None) -> ConformalIntervals:
        """The conformal half-widths of nonconformity ``scores`` (windows, horizon, targets).

        Args:
            scores: ``nonconformity`` scores (windows, horizon, targets).
            levels: coverage levels in (0, 1).
            targets: the target names.
            method: ``split`` or ``cqr``, recorded.
            calibration: where the windows came from, recorded.
            scaled: the scores were divided by each window's series scale (global models).
            series_scales: those scales per series, kept (``{id: [scale per target]}``).

        Returns:
            The intervals.

        Raises:
            ConfigError: bad levels or method; DataError: no windows or non-finite scores.
        """
        if method not in METHODS:
            raise ConfigError(f"interval method must be one of {METHODS}; got {method!r}.")
        levels = check_levels(levels, flag="levels")
        scores = np.asarray(scores, dtype=np.float64)
        if scores.ndim == 2:
            scores = scores[..., None]
        if scores.ndim != 3 or scores.shape[-1] != len(targets):
            raise DataError(f"scores must be (windows, horizon, {len(targets)} targets); got "
                            f"shape {scores.shape}.")
        scores = scores[np.isfinite(scores).all(axis=(1, 2))]  # a window with a gap: dropped
        widths, capped = {}, []
        for level in levels:
            width, was_capped = conformal_quantile(scores, level)
            widths[level_label(level)] = width.tolist()
            if was_capped:
                capped.append(level_label(level))
        return cls(levels=levels, targets=tuple(targets), widths=widths, n=int(len(scores)),
                   method=method, calibration=calibration, capped=tuple(capped),
                   scaled=bool(scaled), series_scales=dict(series_scales or {}))

    def width(self, level: float) -> np.ndarray:
        """The half-widths of ``level``: (horizon, targets)."""
        label = level_label(level)
        if label not in self.widths:
            raise ConfigError(f"no interval at level {level}; calibrated levels: "
                              f"{list(self.levels)}.")
        return np.asarray(self.widths[label], dtype=np.float64)

    def bounds(self, forecast, level: float, quantiles=None, scale=None
               ) -> tuple[np.ndarray, np.ndarray]:
        """The interval ``(lo, hi)`` around ``forecast`` (..., horizon, targets), or around a
        quantile forecast (..., horizon, targets, quantiles) with its ``quantiles``.

        Args:
            forecast: the point or quantile forecast, original units.
            level: one of the calibrated levels.
            quantiles: the quantile levels of a quantile forecast.
            scale: for ``scaled`` intervals, each forecast's series scale per target,
                broadcastable to (..., 1, targets) (a global model's ``series_scales``).

        Returns:
            ``(lo, hi)``, each shaped as the point forecast.

        Raises:
            ConfigError: a level that was not calibrated, or ``scaled`` intervals without
                ``scale``; DataError: ``cqr`` intervals around a point forecast.
        """
        forecast = np.asarray(forecast, dtype=np.float64)
        width = self.width(level)
        if self.scaled:
            if scale is None:
                raise ConfigError("these intervals are in each series' scaled units (a global "
                                  "model): bounds() needs the series' scale.")
            width = width * np.asarray(scale, dtype=np.float64)
        has_quantiles = quantiles is not None and forecast.shape[-1] == len(quantiles) and (
            forecast.ndim >= 3 and forecast.shape[-2] == len(self.targets))
        if self.method == CQR:
            if not has_quantiles:
                raise DataError("cqr intervals widen a quantile forecast; got a point forecast "
                                f"of shape {forecast.shape}.")
            # the band moved out by the conformal quantile (in, when it is negative), never
            # past the median: lo <= point <= hi holds for every forecast
            point = point_of(forecast, quantiles, forecast.ndim - 1)
            return (np.minimum(forecast[..., 0] - width, point),
                    np.maximum(forecast[..., -1] + width, point))
        point = point_of(forecast, quantiles, forecast.ndim - 1) if has_quantiles else forecast
        return point - width, point + width

    def to_dict(self) -> dict:
        return {"format": self.format, "method": self.method, "calibration": self.calibration,
                "n": self.n, "levels": list(self.levels), "targets": list(self.targets),
                "widths": self.widths, "capped": list(self.capped), "scaled": self.scaled,
                "series_scales": self.series_scales}

    @classmethod
    def from_dict(cls, data: dict) -> ConformalIntervals:
        return cls(levels=tuple(float(x) for x in data["levels"]),
                   targets=tuple(data["targets"]),
                   widths={str(k): [[float(x) for x in row] for row in v]
                           for k, v in data["widths"].items()},
                   n=int(data["n"]), method=data.get("method", SPLIT),
                   calibration=data.get("calibration", VALIDATION),
                   capped=tuple(data.get("capped", ())), scaled=bool(data.get("scaled", False)),
                   series_scales={str(k): [float(x) for x in v]
                                  for k, v in (data.get("series_scales") or {}).items()},
                   format=int(data.get("format", 1)))

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_json(cls, text: str) -> ConformalIntervals:
        return cls.from_dict(json.loads(text))


def calibrate(y_true, forecast, levels, targets, *, quantiles=None, method: str | None = None,
              calibration: str = VALIDATION, scale=None,
              series_scales: dict | None = None) -> ConformalIntervals:
    """``ConformalIntervals`` of a forecaster from its forecasts of calibration windows.

    Args:
        y_true: actuals of the calibration windows (windows, horizon, targets).
        forecast: the forecaster's forecasts of them (point or quantile).
        levels: coverage levels in (0, 1).
        targets: the target names.
        quantiles: the quantile levels of a quantile forecast.
        method: ``split`` or ``cqr``; default ``cqr`` for a quantile forecast of at least two
            levels, else ``split``.
        calibration: where the windows came from, recorded.
        scale: each window's series scale per target (windows, targets), for a global model:
            the scores are divided by it and the intervals are ``scaled``.
        series_scales: those scales per series, kept with the intervals.

    Returns:
        The intervals.
    """
    forecast = np.asarray(forecast)
    if method is None:
        method = CQR if (quantiles and len(quantiles) >= 2
                         and forecast.ndim == np.ndim(y_true) + 1) else SPLIT
    scores = nonconformity(y_true, forecast, method, quantiles)
    if scale is not None:
        scores = scores / np.asarray(scale, dtype=np.float64)[:, None, :]
    return ConformalIntervals.fit(scores, levels, targets, method=method,
                                  calibration=calibration, scaled=scale is not None,
                                  series_scales=series_scales)


def interval_report(y_true, forecast, intervals: ConformalIntervals, quantiles=None,
                    scale=None) -> dict:
    """Empirical coverage, mean width and Winkler score of every level on ``y_true``.

    Args:
        y_true: actuals (windows, horizon, targets).
        forecast: the forecasts of those windows.
        intervals: the calibrated intervals.
        quantiles: the quantile levels of a quantile forecast.
        scale: each window's series scale (windows, targets), for ``scaled`` intervals.

    Returns:
        ``{label: {"nominal", "coverage", "width", "winkler"}}``.
    """
    from forecast.evaluation.metrics import interval_coverage, interval_width, winkler_score

    report = {}
    for level in intervals.levels:
        lo, hi = intervals.bounds(forecast, level, quantiles,
                                  None if scale is None else np.asarray(scale)[:, None, :])
        report[level_label(level)] = {
            "nominal": float(level),
            "coverage": interval_coverage(y_true, lo, hi),
            "width": interval_width(lo, hi),
            "winkler": winkler_score(y_true, lo, hi, level),
        }
    return report
