"""Rolling-origin backtests: refit and forecast over several folds, scalers refitted per fold.

Layout. Folds are laid out from the end of the series backwards: the last fold tests the last
``fold_size`` rows, the one before it the ``fold_size`` rows before those, and so on; test ranges
never overlap. Fold ``k`` (0 = oldest) forecasts rows ``[s_k, s_k + fold_size)``; its estimator
is fitted on rows before ``s_k`` only:

* ``mode="expanding"``: every row before ``s_k``;
* ``mode="sliding"``: the ``train_size`` rows before ``s_k`` (default: as many as the oldest fold
  has, so that every fold trains on the same number of rows).

The last ``val_fraction`` of those rows (at least ``spec.horizon``; else no validation part) are
passed as the validation frame, with ``lookback`` rows of context before them. The test frame
carries ``lookback`` rows of context before ``s_k`` and yields every window whose targets lie in
the fold's test range (``fold_size - horizon + 1`` windows at stride 1).

Metrics are ``compute_metrics`` per fold in original units; MASE is scaled by the seasonal naive
error on the fold's training rows (its validation part excluded).

``fold_size`` defaults to ``max(spec.horizon, rows // 10)``: about 10% of the series per fold,
at least one horizon.

The estimator protocol (duck-typed; ``BaselineEstimator`` implements it for the baselines):

* ``factory() -> estimator``: a fresh, unfitted estimator for each fold.
* ``estimator.fit(train_frame, val_frame) -> estimator``: frames in ORIGINAL units (a slice of
  the input frame, ``val_frame`` may be None). The estimator fits its own scaler (and any other
  statistic) on ``train_frame`` only.
* ``estimator.predict_windows(frame) -> (y_true, y_pred)``: over all windows of ``frame`` (which
  starts with ``lookback`` rows of context), actuals (windows, horizon, targets) and forecasts
  (windows, horizon, targets) or (windows, horizon, targets, quantiles), in original units.
* optional ``estimator.quantiles``: the quantile levels of a quantile forecast.

Example:
    >>> result = backtest(frame, spec, lambda: BaselineEstimator("naive", spec), folds=3)
    >>> result.mean["mae"], [f.test_start for f in result.folds]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from forecast.data.dataset import describe
from forecast.data.frequency import season_for_freq
from forecast.data.scaling import Scaler
from forecast.data.windows import WindowSpec, make_dataset, window_targets
from forecast.errors import ConfigError, DataError
from forecast.evaluation.metrics import compute_metrics
from forecast.models.baselines import make_baseline
from forecast.options import BACKTEST_MODES
from forecast.progress import resolve as resolve_progress


class BaselineEstimator:
    """A baseline behind the backtest protocol: scaler on train, windows, forecast, inverse.

    Args:
        name: ``"naive"``, ``"seasonal_naive"`` or ``"linear"``.
        spec: the window shape.
        scaler_kind: the ``Scaler`` kind fitted on each training frame.
        batch_size: windows per batch when windowing.
        **kwargs: the baseline's own arguments (``season``, ``alpha``, ...).

    Attributes (after fit):
        scaler: the fitted ``Scaler`` (over ``spec.input_columns``).
        model: the fitted baseline.
    """

    def __init__(self, name: str, spec: WindowSpec, scaler_kind: str = "standard",
                 batch_size: int = 256, **kwargs):
        self.name = name
        self.spec = spec
        self.scaler_kind = scaler_kind
        self.batch_size = batch_size
        self.kwargs = kwargs
        self.model = make_baseline(name, **kwargs)
        self.scaler: Scaler | None = None
        self.quantiles = None

    def fit(self, train_frame: pd.DataFrame, val_frame: pd.DataFrame | None = None):
        """Fits the scaler and the baseline on ``train_frame`` (``val_frame`` is not needed)."""
        self.scaler = Scaler(self.scaler_kind, columns=self.spec.input_columns).fit(train_frame)
        scaled = self.scaler.transform(train_frame)
        dataset = make_dataset(scaled, self.spec, batch_size=self.batch_size)
        extra = {}
        freq = describe(train_frame).freq
        if self.name == "seasonal_naive" and freq is not None:
            extra["freq"] = freq
        self.model.fit(dataset, self.spec, **extra)
        return self

    def predict_windows(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Actuals and forecasts, both (windows, horizon, targets) in original units."""
        if self.scaler is None:
            raise ConfigError("BaselineEstimator: call fit(train_frame, val_frame) first.")
        spec = self.spec
        dataset = make_dataset(self.scaler.transform(frame), spec, batch_size=self.batch_size)
        y_pred = self.scaler.inverse_transform(self.model.predict(dataset),
                                               columns=list(spec.targets))
        return window_targets(frame, spec), y_pred


@dataclass
class Fold:
    """One fold of a backtest.

    Row positions are into the backtested frame; timestamps are its index values.

    Attributes:
        index: 0 for the oldest fold.
        fit_start, fit_end: first and last row the estimator was fitted on (val part included).
        val_start: first validation row (None without a validation part).
        origin: the last observed row before the first forecast (== fit_end).
        test_start, test_end: first and last forecast row.
        rows: the same as row positions, ``{"fit": (a, b), "val": (c, b) | None,
            "test": (d, e)}``, ends exclusive.
        n_windows: the forecast windows in the fold.
        metrics: ``compute_metrics`` of the fold.
        estimator: the fitted estimator (kept for inspection).
    """

    index: int
    fit_start: Any
    fit_end: Any
    val_start: Any
    origin: Any
    test_start: Any
    test_end: Any
    rows: dict
    n_windows: int
    metrics: dict
    estimator: Any = field(repr=False, default=None)


@dataclass
class BacktestResult:
    """The folds (oldest first), their mean metrics, and the settings used."""

    folds: list[Fold]
    mean: dict
    settings: dict

    def to_frame(self) -> pd.DataFrame:
        """One row per fold: ranges and the scalar metrics."""
        rows = []
        for fold in self.folds:
            row = {
                "fold": fold.index,
                "fit_start": fold.fit_start,
                "fit_end": fold.fit_end,
                "test_start": fold.test_start,
                "test_end": fold.test_end,
                "n_windows": fold.n_windows,
            }
            row.update({k: v for k, v in fold.metrics.items() if k != "per_step"})
            rows.append(row)
        return pd.DataFrame(rows).set_index("fold")


def _positive_int(value, name):
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ConfigError(f"`{name}` must be a positive integer. Received: {name}={value!r}.")
    return int(value)


def _checked_sizes(spec: WindowSpec, fold_size, train_size, mode: str,
                   val_fraction: float) -> tuple[int, int | None, int]:
    """The fold size and sliding train size of a backtest, checked, and the fewest rows a
    fold's fit part needs.

    Args:
        spec: the window layout.
        fold_size: test rows per fold (--fold-size).
        train_size: the fit rows of a sliding window, or None.
        mode: ``expanding`` or ``sliding``.
        val_fraction: the share of a fold's fit part kept for validation.

    Returns:
        ``(fold_size, train_size, min_fit)``.

    Raises:
        ConfigError: a size that is not a positive integer, a fold shorter than the horizon, a
            train size without the sliding mode or too small for one window.
    """
    fold_size = _positive_int(fold_size, "fold_size")
    if fold_size < spec.horizon:
        raise ConfigError(
            f"`fold_size` ({fold_size}) must be at least the horizon ({spec.horizon}) so that a "
            "fold holds one forecast window (--fold-size).")
    min_fit = _min_fit_rows(spec, val_fraction)
    if train_size is not None:
        train_size = _positive_int(train_size, "train_size")
        if mode != "sliding":
            raise ConfigError('`train_size` applies to mode="sliding" only.')
        if train_size < min_fit:
            raise ConfigError(
                f"`train_size` {train_size} is too small: a fold's fit part needs at least "
                f"{min_fit} rows (lookback {spec.lookback} + horizon {spec.horizon}, plus the "
                f"validation share {val_fraction}).")
    return fold_size, train_size, min_fit


def _min_fit_rows(spec: WindowSpec, val_fraction: float) -> int:
    """The fewest rows whose training part (after the val part) holds one window."""
    rows = spec.min_rows
    while rows - _val_rows(rows, val_fraction, spec) < spec.min_rows:
        rows += 1
    return rows


def _val_rows(n_fit: int, val_fraction: float, spec: WindowSpec) -> int:
    n_val = int(round(n_fit * val_fraction))
    return n_val if n_val >= spec.horizon else 0


def _mean_metrics(metrics: Sequence[dict]) -> dict:
    mean: dict = {}
    for key, value in metrics[0].items():
        if key == "per_step":
            mean["per_step"] = {
                name: np.mean([m["per_step"][name] for m in metrics], axis=0).tolist()
                for name in value
            }
        elif isinstance(value, int | float):
            mean[key] = float(np.mean([m[key] for m in metrics]))
    return mean


def backtest(
    frame: pd.DataFrame,
    spec: WindowSpec,
    factory: Callable[[], Any],
    *,
    folds: int = 3,
    fold_size: int | None = None,
    mode: str = "expanding",
    train_size: int | None = None,
    val_fraction: float = 0.1,
    season: int | None = None,
    quantiles: Sequence[float] | None = None,
    metrics: Sequence[str] | None = None,
    progress=None,
    label: str | None = None,
) -> BacktestResult:
    """Rolling-origin evaluation of an estimator (see the module docstring for the layout).

    Args:
        frame: one series in ORIGINAL units, indexed by time (``load_csv`` output).
        spec: the window shape; test windows use ``spec.stride``.
        factory: returns a fresh estimator implementing the protocol.
        folds: the number of folds (>= 1).
        fold_size: test rows per fold (>= ``spec.horizon``); default
            ``max(spec.horizon, rows // 10)``.
        mode: ``"expanding"`` or ``"sliding"`` training window.
        train_size: rows per training window in sliding mode (val part included); default the
            rows the oldest fold has.
        val_fraction: the share of each fold's fit rows passed as validation (0 for none).
        season: MASE's seasonal lag; default from the frame's frequency (``season_for_freq``),
            1 when the frequency is unknown.
        quantiles: quantile levels, when the estimator returns quantile forecasts (default:
            the estimator's ``quantiles`` attribute).
        metrics: keep only these scalar metrics (default: all of ``compute_metrics``).
        progress: a ``forecast.progress`` display told of each finished fold
            (``backtest naive: fold 1/3 mae 0.52 (4 s, ~8 s left)``); None: the current one
            (``forecast.progress.current()``, silent unless set).
        label: what the display calls the estimator (default: a baseline's name, else
            ``model (<cell>)``).

    Returns:
        A ``BacktestResult``: ``folds`` (oldest first) with their ranges and metrics, and
        ``mean`` (the mean of each metric over folds, per-step arrays included).

    Raises:
        ConfigError: invalid settings (folds < 1, fold_size < horizon, unknown mode, ...).
        DataError: too few rows for the folds (says how many are needed), or a long-format frame
            (``global_folds`` lays out the folds of many series).
    """
    folds = _positive_int(folds, "folds")
    info = describe(frame)
    fold_size, train_size = _check_layout(frame, spec, info.source, folds, fold_size, mode,
                                          train_size, val_fraction)
    if season is None:
        season = season_for_freq(info.freq, default=1)
    spec.check_frame(frame)  # columns present and finite, before any fold runs
    first_test = len(frame) - folds * fold_size
    results: list[Fold] = []
    levels = quantiles
    display = resolve_progress(progress)
    fresh = [factory()]  # the first fold's estimator, created here to name it on the display

    def make():
        return fresh.pop() if fresh else factory()

    with display.task("fold", total=folds,
                      label=f"backtest {label or _label(fresh[0])}") as task:
        for k in range(folds):
            fold = _run_fold(frame, spec, make, k, first_test + k * fold_size, fold_size,
                             fit_start_rows=None if mode == "expanding" else train_size,
                             val_fraction=val_fraction, season=season, levels=levels,
                             metrics=metrics)
            levels = levels if levels is not None else getattr(fold.estimator, "quantiles", None)
            results.append(fold)
            task.advance(**{m: fold.metrics[m] for m in ("mae",) if m in fold.metrics})
    settings = {
        "folds": folds,
        "fold_size": fold_size,
        "mode": mode,
        "train_size": train_size,
        "val_fraction": val_fraction,
        "season": season,
        "lookback": spec.lookback,
        "horizon": spec.horizon,
    }
    return BacktestResult(results, _mean_metrics([f.metrics for f in results]), settings)


def every_fold_validates(frame: pd.DataFrame, spec: WindowSpec, *, folds: int,
                         fold_size: int | None = None, mode: str = "expanding",
                         train_size: int | None = None, val_fraction: float = 0.1) -> bool:
    """Whether every fold of ``backtest`` with these settings gets a validation part (checked
    on the fold with the fewest fit rows: the oldest, when expanding).

    Raises:
        ConfigError, DataError: as ``backtest`` for an invalid layout.
    """
    fold_size, train_size = _check_layout(frame, spec, describe(frame).source,
                                          _positive_int(folds, "folds"), fold_size, mode,
                                          train_size, val_fraction)
    oldest = len(frame) - folds * fold_size
    fit_rows = oldest if train_size is None else train_size
    return _val_rows(fit_rows, val_fraction, spec) > 0


def _check_layout(frame: pd.DataFrame, spec: WindowSpec, source: str, folds: int,
                  fold_size: int | None, mode: str, train_size: int | None,
                  val_fraction: float) -> tuple[int, int | None]:
    """Checks the fold layout against the frame.

    Returns:
        ``(fold_size, train_size)`` with their defaults filled in (``train_size`` is None in
        expanding mode).

    Raises:
        ConfigError: an invalid setting. DataError: too few rows, or a long-format frame.
    """
    if mode not in BACKTEST_MODES:
        raise ConfigError(f'`mode` must be "expanding" or "sliding". Received: mode={mode!r}.')
    if not 0.0 <= val_fraction < 1.0:
        raise ConfigError(
            f"`val_fraction` must be in [0, 1). Received: val_fraction={val_fraction!r}."
        )
    if isinstance(frame.index, pd.MultiIndex):
        raise DataError(
            "backtest runs on one series at a time; select one series of the long-format frame "
            "(frame.xs(series_id, level=0))."
        )
    n = len(frame)
    if fold_size is None:
        fold_size = max(spec.horizon, n // 10)
    fold_size, train_size, min_fit = _checked_sizes(spec, fold_size, train_size, mode,
                                                    val_fraction)
    needed = folds * fold_size + (train_size if train_size is not None else min_fit)
    if n < needed:
        raise DataError(
            f"{source}: {n} rows are too few for {folds} folds of {fold_size} test rows: the "
            f"backtest needs at least {needed} rows ({folds} x {fold_size} + "
            f"{needed - folds * fold_size} to fit the oldest fold). Use fewer folds, a smaller "
            "fold_size or more data."
        )
    if mode == "sliding" and train_size is None:
        train_size = n - folds * fold_size
    return fold_size, train_size


def _run_fold(frame: pd.DataFrame, spec: WindowSpec, factory: Callable[[], Any], k: int,
              test_start: int, fold_size: int, *, fit_start_rows: int | None,
              val_fraction: float, season: int, levels, metrics) -> Fold:
    """Fits a fresh estimator on the fold's fit rows and scores its test rows.

    Args:
        fit_start_rows: the rows a sliding fold fits on (None: expanding, from row 0).
    """
    test_end = test_start + fold_size  # exclusive
    fit_start = 0 if fit_start_rows is None else test_start - fit_start_rows
    n_val = _val_rows(test_start - fit_start, val_fraction, spec)
    train_end = test_start - n_val
    train_frame = frame.iloc[fit_start:train_end]
    val_frame = frame.iloc[train_end - spec.lookback : test_start] if n_val else None
    test_frame = frame.iloc[test_start - spec.lookback : test_end]

    estimator = factory()
    estimator = estimator.fit(train_frame, val_frame) or estimator
    y_true, y_pred = estimator.predict_windows(test_frame)
    if levels is None:
        levels = getattr(estimator, "quantiles", None)
    fold_metrics = compute_metrics(
        y_true,
        y_pred,
        insample=train_frame[list(spec.targets)].to_numpy(dtype=np.float64),
        season=season,
        quantiles=levels if np.ndim(y_pred) == 4 else None,
    )
    if metrics is not None:
        fold_metrics = _select(fold_metrics, metrics)
    index = frame.index
    return Fold(
        index=k,
        fit_start=index[fit_start],
        fit_end=index[test_start - 1],
        val_start=index[train_end] if n_val else None,
        origin=index[test_start - 1],
        test_start=index[test_start],
        test_end=index[test_end - 1],
        rows={
            "fit": (fit_start, test_start),
            "val": (train_end, test_start) if n_val else None,
            "test": (test_start, test_end),
        },
        n_windows=int(len(y_true)),
        metrics=fold_metrics,
        estimator=estimator,
    )


@dataclass
class GlobalFold:
    """One fold of a backtest over many series (long format), laid out per series.

    Attributes:
        index: 0 for the oldest fold.
        train, val, test: long-format frames (indexed by (id, time)) of every series kept:
            the rows the model fits on, the validation rows with ``lookback`` rows of context
            before them (None when no series has a validation part), and the fold's test rows
            with ``lookback`` rows of context.
        ranges: per series ``{id: {"fit_start", "origin", "test_end", "fit_rows",
            "test_rows"}}`` (timestamps, row counts).
        fit_start, origin, test_end: the earliest fit start, the latest origin and the latest
            forecast timestamp over the series (what the fold's summary shows).
    """

    index: int
    train: pd.DataFrame
    val: pd.DataFrame | None
    test: pd.DataFrame
    ranges: dict
    fit_start: Any
    origin: Any
    test_end: Any


def default_fold_size(frame: pd.DataFrame, horizon: int) -> int:
    """``backtest``'s default test rows per fold: ``max(horizon, rows // 10)``, with ``rows``
    the frame's rows, or in long format the rows of its median series."""
    if isinstance(frame.index, pd.MultiIndex):
        rows = int(frame.groupby(level=0, sort=False).size().median())
    else:
        rows = len(frame)
    return max(int(horizon), rows // 10)


def global_folds(
    frame: pd.DataFrame,
    spec: WindowSpec,
    *,
    folds: int = 3,
    fold_size: int | None = None,
    mode: str = "expanding",
    train_size: int | None = None,
    val_fraction: float = 0.1,
) -> tuple[list[GlobalFold], dict, dict]:
    """The rolling-origin folds of a long-format frame: every series cut at the same origin
    counted from its own end.

    Layout: fold ``k`` (0 = oldest) of every series tests the ``fold_size`` rows that end
    ``(folds - 1 - k) * fold_size`` rows before that series' last row, as ``backtest`` does for
    one series; the fit part is every row before (``mode="expanding"``) or the ``train_size``
    rows before (``"sliding"``; default: the rows the oldest fold of the shortest series kept
    has, so every fold of every series fits on as many rows), its last ``val_fraction`` the
    validation part. Series that end at the same timestamp (one extract of a database) are
    therefore cut at the same timestamp; series that end earlier are cut as far from their own
    end. One model per fold is fitted over the training parts of every series.

    Args:
        frame: long format (indexed by (id, time)), ORIGINAL units (``load_csv(..., id_col=)``).
        spec: the window shape.
        folds, fold_size, mode, train_size, val_fraction: as ``backtest``; ``fold_size``
            defaults to ``default_fold_size`` (of the median series).

    Returns:
        ``(folds, settings, skipped)``: the ``GlobalFold`` list (oldest first), the settings
        used (as ``BacktestResult.settings``, plus ``"series"``: the series kept and
        ``"layout": "same origin from each series' end"``), and ``{id: rows}`` of the series
        too short for the folds (left out; the caller warns).

    Raises:
        ConfigError: invalid settings. DataError: not a long-format frame, or no series long
            enough for the folds (says how many rows are needed and the flags to change).
    """
    folds = _positive_int(folds, "folds")
    if not isinstance(frame.index, pd.MultiIndex):
        raise DataError("global_folds lays out a long-format frame indexed by (id, time); "
                        "backtest one series with backtest().")
    if mode not in BACKTEST_MODES:
        raise ConfigError(f'`mode` must be "expanding" or "sliding". Received: mode={mode!r}.')
    if not 0.0 <= val_fraction < 1.0:
        raise ConfigError(
            f"`val_fraction` must be in [0, 1). Received: val_fraction={val_fraction!r}.")
    if fold_size is None:
        fold_size = default_fold_size(frame, spec.horizon)
    fold_size, train_size, min_fit = _checked_sizes(spec, fold_size, train_size, mode,
                                                    val_fraction)
    spec.check_frame(frame)
    needed = folds * fold_size + (train_size if train_size is not None else min_fit)
    groups = {str(key): group for key, group in frame.groupby(level=0, sort=False)}
    skipped = {key: len(group) for key, group in groups.items() if len(group) < needed}
    kept = {key: group for key, group in groups.items() if key not in skipped}
    if not kept:
        longest = max(skipped.values())
        raise DataError(
            f"{describe(frame).source}: every series is too short for {folds} folds of "
            f"{fold_size} test rows: the longest has {longest} rows and the backtest needs "
            f"{needed} ({folds} x {fold_size} + {needed - folds * fold_size} to fit the oldest "
            "fold). Use fewer --folds, a smaller --fold-size, a shorter --lookback or "
            "--horizon, or longer series.")
    if mode == "sliding" and train_size is None:
        train_size = min(len(group) for group in kept.values()) - folds * fold_size
    result = []
    for k in range(folds):
        parts: dict[str, list] = {"train": [], "val": [], "test": []}
        ranges = {}
        for key, group in kept.items():
            n = len(group)
            test_start = n - (folds - k) * fold_size
            test_end = test_start + fold_size
            fit_start = 0 if mode == "expanding" else test_start - train_size
            n_val = _val_rows(test_start - fit_start, val_fraction, spec)
            train_end = test_start - n_val
            parts["train"].append(group.iloc[fit_start:train_end])
            if n_val:
                parts["val"].append(group.iloc[train_end - spec.lookback: test_start])
            parts["test"].append(group.iloc[test_start - spec.lookback: test_end])
            times = group.index.get_level_values(-1)
            ranges[key] = {"fit_start": times[fit_start], "origin": times[test_start - 1],
                           "test_end": times[test_end - 1],
                           "fit_rows": test_start - fit_start, "test_rows": fold_size}

        def joined(pieces):
            out = pd.concat(pieces)
            out.attrs = dict(frame.attrs)
            return out

        result.append(GlobalFold(
            index=k, train=joined(parts["train"]),
            val=joined(parts["val"]) if parts["val"] else None, test=joined(parts["test"]),
            ranges=ranges,
            fit_start=min(r["fit_start"] for r in ranges.values()),
            origin=max(r["origin"] for r in ranges.values()),
            test_end=max(r["test_end"] for r in ranges.values())))
    settings = {"folds": folds, "fold_size": fold_size, "mode": mode, "train_size": train_size,
                "val_fraction": val_fraction, "lookback": spec.lookback,
                "horizon": spec.horizon, "series": len(kept),
                "layout": "same origin from each series' end"}
    return result, settings, skipped


def _label(estimator) -> str:
    """``naive`` for a baseline, ``model (lstm)`` for a forecaster, else ``model``."""
    name = getattr(estimator, "name", None)
    if isinstance(name, str) and name:
        return name
    config = getattr(getattr(estimator, "forecaster", None), "config", None)
    cell = getattr(getattr(config, "model", None), "cell", None)
    return f"model ({cell})" if cell else "model"


def _select(fold_metrics: dict, names: Sequence[str]) -> dict:
    unknown = [m for m in names if m not in fold_metrics]
    if unknown:
        available = sorted(k for k in fold_metrics if k != "per_step")
        raise ConfigError(f"unknown metrics {unknown}; available: {available}.")
    kept = {k: fold_metrics[k] for k in names}
    kept["per_step"] = {k: v for k, v in fold_metrics["per_step"].items() if k in names}
    return kept


__all__ = ["backtest", "BacktestResult", "Fold", "BaselineEstimator", "window_targets",
           "GlobalFold", "global_folds", "default_fold_size"]
