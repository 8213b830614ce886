"""The steps a user runs, composed from the modules: train → evaluate with baselines → backtest.

The CLI, the pipelines and MLflow tracking call these functions; they hold no logic of their
own beyond putting the stages of the data flow in order.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from forecast.data import WindowSpec, chronological_split, load_csv
from forecast.data.dataset import carry, describe
from forecast.errors import ConfigError, DataError
from forecast.evaluation import BaselineEstimator, backtest, compute_metrics
from forecast.evaluation.backtest import every_fold_validates
from forecast.forecaster import Forecaster, with_lookback
from forecast.options import BASELINES, POINT_METRICS, ForecasterConfig

logger = logging.getLogger(__name__)


@dataclass
class TrainReport:
    """What ``train_and_evaluate`` made and measured.

    Attributes:
        forecaster: the fitted ``Forecaster``.
        metrics: ``{"model": {...}, "baselines": {name: {...}}}``, test part, original units.
        per_step: the model's per-horizon-step metrics on the test part.
        scaled: the same comparison in scaled units.
        sizes: rows of each part and windows of the test part.
        seconds: wall time of training.
        test: the test frame (with its lookback context), original units.
        y_true, y_pred: actuals and forecasts of every test window, original units.
        intervals: with ``train_and_evaluate(intervals=...)``: coverage, mean width and Winkler
            score of the model's and each baseline's conformal intervals on the test part.
    """

    forecaster: Forecaster
    metrics: dict
    per_step: dict
    scaled: dict
    sizes: dict
    seconds: float
    test: pd.DataFrame | None = None
    y_true: np.ndarray | None = None
    y_pred: np.ndarray | None = None
    extra: dict = field(default_factory=dict)
    #: conformal prediction intervals on the test part (``interval_metrics``), or None
    intervals: dict | None = None

    def to_dict(self) -> dict:
        """The report as JSON-ready data (the shape `forecast train --json` prints)."""
        forecaster = self.forecaster
        fit_result = forecaster.fit_result
        return {
            **self.metrics,
            "scaled": self.scaled,
            "per_step": {"model": self.per_step},
            "settings": forecaster.resolved.flat(),
            "chosen": forecaster.resolved.summary(),
            "versus": versus_best_baseline(self.metrics),
            "sizes": self.sizes,
            "training": {
                "epochs_run": fit_result.epochs_run if fit_result else None,
                "best_epoch": fit_result.best_epoch if fit_result else None,
                "seconds": round(self.seconds, 2),
                "kernel": forecaster.kernel_used,
                "strategy": fit_result.strategy if fit_result else None,
                "replicas": fit_result.replicas if fit_result else None,
                "workers": fit_result.workers if fit_result else None,
                "blend": forecaster.blend.to_dict() if forecaster.blend else None,
                # train.ensemble: each network's epochs run and best epoch (None for one)
                "members": [{"epochs_run": result.epochs_run, "best_epoch": result.best_epoch}
                            for result in forecaster.member_results]
                if len(forecaster.member_results) > 1 else None,
            },
            **({"intervals": self.intervals} if self.intervals is not None else {}),
            **self.extra,
        }


def versus_best_baseline(metrics: dict, metric: str = "mase") -> str:
    """One line: the model's test metric beside the best baseline's, with the difference.

    Args:
        metrics: ``{"model": {...}, "baselines": {name: {...}}}``.
        metric: the metric compared (MASE, else MAE when MASE is missing).

    Example:
        >>> versus_best_baseline({"model": {"mase": 0.86}, "baselines": {"linear": {"mase": 0.8}}})
        'test MASE: model 0.86 vs best baseline linear 0.8 (model +7.5%: worse)'
    """
    if metric not in metrics["model"]:
        metric = "mae"
    model = metrics["model"].get(metric)
    scores = {name: values[metric] for name, values in metrics["baselines"].items()
              if values.get(metric) is not None and np.isfinite(values[metric])}
    if model is None or not scores:
        return f"test {metric.upper()}: model {model}; no baseline to compare with"
    from forecast.evaluation.promotion import TIE

    best = min(scores, key=scores.get)
    change = (model - scores[best]) / abs(scores[best]) if scores[best] else float("nan")
    # within float32 rounding (a network blended at share 0 is the linear baseline): tied, as
    # promotion counts it
    tied = abs(model - scores[best]) <= TIE * abs(scores[best])
    verdict = "tied" if tied else "better" if model < scores[best] else "worse"
    return (f"test {metric.upper()}: model {model:.4g} vs best baseline {best} "
            f"{scores[best]:.4g} (model {change:+.1%}: {verdict})")


def _point(metrics: dict) -> dict:
    return {k: float(metrics[k]) for k in POINT_METRICS if k in metrics}


def evaluate_forecaster(forecaster: Forecaster, frame: pd.DataFrame) -> dict:
    """Metrics of the model and of every fitted baseline on all windows of ``frame``.

    Args:
        forecaster: a fitted forecaster.
        frame: rows in original units, starting with ``lookback`` rows of context.

    Returns:
        ``{"model": {...}, "baselines": {...}, "per_step": {...}, "scaled": {...},
        "arrays": (y_true, y_pred)}``; MASE is
        scaled by the seasonal naive error of the forecaster's training rows. For a global
        model the windows of every series are pooled (each window's MASE scaled by its own
        series' training rows) and ``"per_series"`` is added (``per_series_table``).
    """
    baselines = forecaster.baseline_predictors()
    # one windowing of the frame for the network and every baseline (named naive, linear, ...)
    y_true, forecasts = forecaster.predict_windows_of(
        frame, {"model": forecaster.model, **baselines})
    y_pred = forecasts["model"]
    season = forecaster.season
    insample, scale, series = forecaster.insample, None, None
    if forecaster.is_global:  # windows of many series pooled, each scaled by its own series
        from forecast.evaluation.metrics import series_scales

        series = forecaster.window_series(frame)
        insample, scale = None, series_scales(forecaster.insample, series, season)
    model = compute_metrics(y_true, y_pred, insample=insample, season=season,
                            quantiles=forecaster.quantiles, scale=scale)
    result = {"model": _point(model), "baselines": {}}
    scaled = {"model": _scaled_mae_mse(forecaster, y_true, y_pred, series), "baselines": {}}
    for name in baselines:
        b_pred = forecasts[name]
        metrics = compute_metrics(y_true, b_pred, insample=insample, season=season, scale=scale)
        result["baselines"][name] = _point(metrics)
        scaled["baselines"][name] = _scaled_mae_mse(forecaster, y_true, b_pred, series)
    result["per_step"] = model["per_step"]
    if series is not None:
        result["per_series"] = per_series_table(y_true, forecasts, series, scale,
                                                forecaster.quantiles)
        if forecaster.intervals is not None:  # pooled coverage can hide uneven series
            _add_series_coverage(result["per_series"], forecaster, y_true, y_pred, series)
    result["scaled"] = scaled
    result["arrays"] = (y_true, y_pred)
    if forecaster.intervals is not None:
        result["intervals"] = interval_metrics(forecaster, y_true, forecasts, series)
    if forecaster.quantiles:
        result["model"].update(
            pinball=float(model["pinball"]), coverage=float(model["coverage"]),
            coverage_nominal=float(model["coverage_nominal"]),
        )
    return result


def per_series_table(y_true: np.ndarray, forecasts: dict, series: np.ndarray,
                     scale: np.ndarray, quantiles=None) -> list[dict]:
    """Each series' test MAE, MASE and sMAPE for the model, beside its best baseline there.

    Args:
        y_true: actuals of every window (windows, horizon, targets), original units.
        forecasts: ``{"model": ..., baseline name: ...}`` of the same windows.
        series: the series id of each window.
        scale: MASE's scale of each window (windows, targets).
        quantiles: the model's quantile levels (its forecasts then have a quantile axis).

    Returns:
        One dict per series, worst model MASE first: ``{"series", "windows", "model":
        {"mae", "mase", "smape"}, "best_baseline", "baseline": {"mae", "mase", "smape"}}``
        (the best baseline of that series by MASE).
    """
    rows = []
    for key in dict.fromkeys(np.asarray(series, dtype=object).tolist()):
        take = series == key
        scores = {}
        for name, pred in forecasts.items():
            levels = quantiles if name == "model" and pred.ndim == 4 else None
            metrics = compute_metrics(y_true[take], pred[take], scale=scale[take],
                                      quantiles=levels)
            scores[name] = {m: float(metrics[m]) for m in ("mae", "mase", "smape")}
        others = {name: v for name, v in scores.items()
                  if name != "model" and np.isfinite(v["mase"])}
        best = min(others, key=lambda n: others[n]["mase"]) if others else None
        rows.append({"series": str(key), "windows": int(take.sum()), "model": scores["model"],
                     "best_baseline": best, "baseline": others.get(best)})
    rows.sort(key=lambda r: -r["model"]["mase"] if np.isfinite(r["model"]["mase"]) else 0.0)
    return rows


def _add_series_coverage(rows: list[dict], forecaster: Forecaster, y_true: np.ndarray,
                         y_pred: np.ndarray, series: np.ndarray) -> None:
    """Adds each series' own coverage of the model's conformal intervals to its per-series row
    (``row["model"]["coverage_<pct>"]``, in place).

    Args:
        rows: ``per_series_table`` rows.
        forecaster: a global forecaster with ``intervals``.
        y_true: actuals of every window (windows, horizon, targets).
        y_pred: the model's forecasts of them.
        series: the series id of each window.
    """
    from forecast.evaluation.intervals import level_label

    own = forecaster.intervals
    quantiles = forecaster.quantiles if y_pred.ndim == 4 else None
    scale = forecaster.interval_scales(series)[:, None, :]
    by_series = {row["series"]: row for row in rows}
    for level in own.levels:
        lo, hi = own.bounds(y_pred, level, quantiles, scale)
        inside = ((y_true >= lo) & (y_true <= hi)).reshape(len(y_true), -1).mean(axis=1)
        for key in dict.fromkeys(series.tolist()):
            by_series[str(key)]["model"][f"coverage_{level_label(level)}"] = float(
                inside[series == key].mean())


def interval_metrics(forecaster: Forecaster, y_true: np.ndarray, forecasts: dict,
                     series: np.ndarray | None = None) -> dict:
    """Coverage, mean width and Winkler score of the conformal intervals on these windows.

    Args:
        forecaster: a forecaster with ``intervals`` (``Forecaster.calibrate``).
        y_true: actuals (windows, horizon, targets).
        forecasts: ``{"model": forecasts, baseline name: forecasts}`` of the same windows.
        series: for a global model, the series id of each window (its intervals scale with
            the series).

    Returns:
        ``{"method", "calibration", "n_calibration", "levels", "capped", "model": {label:
        {"nominal", "coverage", "width", "winkler"}}, "baselines": {name: {label: {...}}}}``
        (label: the level in percent, ``"90"``).
    """
    from forecast.evaluation.intervals import interval_report, level_label

    own = forecaster.intervals
    quantiles = forecaster.quantiles if forecasts["model"].ndim == 4 else None
    scale = forecaster.interval_scales(series) if series is not None else None
    result = {"method": own.method, "calibration": own.calibration, "n_calibration": own.n,
              "levels": [level_label(level) for level in own.levels],
              "capped": list(own.capped),
              "model": interval_report(y_true, forecasts["model"], own, quantiles, scale),
              "baselines": {}}
    for name, intervals in forecaster.baseline_intervals.items():
        if name in forecasts:
            result["baselines"][name] = interval_report(y_true, forecasts[name], intervals,
                                                        scale=scale)
    return result


def _scaled_mae_mse(forecaster: Forecaster, y_true: np.ndarray, y_pred: np.ndarray,
                    series: np.ndarray | None = None) -> dict:
    """MAE and MSE on the scaled values (the units of the published benchmark tables); with
    ``series`` (the id of each window) each window in its own series' scaled units."""
    columns = list(forecaster.spec.targets)
    if y_pred.ndim == 4:
        levels = forecaster.quantiles
        y_pred = y_pred[..., int(np.argmin([abs(q - 0.5) for q in levels]))]
    if series is None:
        true_z = forecaster.scaler.transform_array(y_true, columns)
        pred_z = forecaster.scaler.transform_array(y_pred, columns)
    else:
        true_z, pred_z = np.empty_like(y_true), np.empty_like(y_pred)
        for key in dict.fromkeys(series.tolist()):
            take = series == key
            true_z[take] = forecaster.scaler.transform_array(y_true[take], columns, key)
            pred_z[take] = forecaster.scaler.transform_array(y_pred[take], columns, key)
    return {"mae": float(np.mean(np.abs(true_z - pred_z))),
            "mse": float(np.mean((true_z - pred_z) ** 2))}


def check_experiment_name(name, *, flag: str = "--experiment") -> str:
    """The MLflow experiment name, refused when empty or blank (before anything trains).

    Args:
        name: the name given.
        flag: the command-line flag that gave it, named in the error.

    Returns:
        The name.

    Raises:
        ConfigError: ``name`` is not a non-blank string.
    """
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(
            f"{flag} must name an MLflow experiment (YAML `experiment`). Received: {name!r}. "
            f"Pass e.g. {flag} forecast, or leave it out for the default.")
    return name


def _series_rows(frame: pd.DataFrame) -> pd.Series:
    """Rows of each series of a long-format frame, by id (as text)."""
    sizes = frame.groupby(level=0, sort=False).size()
    sizes.index = [str(k) for k in sizes.index]
    return sizes


def _train_rows(frame: pd.DataFrame, val: float, test: float, borders) -> int:
    """Training rows the lookback is chosen from: of the whole frame for one series, of the
    median series in long format."""
    if not isinstance(frame.index, pd.MultiIndex):
        return int(len(frame) * (1 - val - test)) if borders is None else borders[0]
    rows = int(_series_rows(frame).median())
    if borders is not None:
        return min(int(borders[0]), rows)
    return int(rows * (1 - val - test))


def _train_part(n_rows: int, val: float, test: float, borders) -> int:
    """The training rows of a series of ``n_rows`` rows (as ``chronological_split``)."""
    if borders is not None:
        return min(int(borders[0]), n_rows)
    return n_rows - int(round(n_rows * val)) - int(round(n_rows * test))


def short_series(frame: pd.DataFrame, lookback: int, horizon: int, *, val: float = 0.1,
                 test: float = 0.2, borders=None) -> dict[str, int]:
    """The series of a long-format frame whose training part is too short for one window.

    Returns:
        ``{id: training rows}`` of the series with fewer than ``lookback + horizon`` training
        rows (empty for one series).
    """
    if not isinstance(frame.index, pd.MultiIndex):
        return {}
    parts = {key: _train_part(int(n), val, test, borders)
             for key, n in _series_rows(frame).items()}
    return {key: rows for key, rows in parts.items() if rows < lookback + horizon}


def check_split_sizes(
    frame: pd.DataFrame,
    config: dict | ForecasterConfig,
    *,
    val: float = 0.1,
    test: float = 0.2,
    borders: tuple[int, int, int] | None = None,
) -> dict:
    """Checks, right after loading and before training, that the split leaves windows to
    train on, to validate on (when ``val`` asks for it) and to test on.

    Args:
        frame: a ``load_csv`` frame.
        config: the forecaster's settings (its lookback is chosen as ``train_and_evaluate``
            chooses it when left out).
        val, test, borders: the chronological split (as ``train_and_evaluate``).

    Returns:
        ``{"train": rows, "val": rows, "test": rows, "lookback": L, "horizon": H,
        "windows": {"train": n, "val": n, "test": n}}``; in long format of the longest series
        kept, with ``"series"`` (the number of series) and ``"skipped"`` (``{id: training
        rows}`` of the series too short for a training window, which ``train_and_evaluate``
        leaves out with a warning).

    Raises:
        ConfigError: ``val``/``test`` outside their ranges.
        DataError: a part too short for one window (in long format: in every series); the
            message gives the row counts and the flag (and YAML key) to change.
    """
    if borders is None:
        for name, value, low in (("val", val, "0 <="), ("test", test, "0 <")):
            ok = 0 <= value < 1 if name == "val" else 0 < value < 1
            if not isinstance(value, (int, float)) or not ok:
                raise ConfigError(
                    f"--{name} must be a fraction with {low} {name} < 1 (YAML `split.{name}`). "
                    f"Received: --{name} {value!r}.")
        if val + test >= 1:
            raise ConfigError(
                f"--val {val} + --test {test} leave no rows to train on: lower --val or --test "
                "(YAML `split.val`, `split.test`) so that they sum to less than 1.")
    # the lookback train_and_evaluate chooses when none is given
    config, _ = with_lookback(config, describe(frame).freq,
                              _train_rows(frame, val, test, borders))
    lookback, horizon = config.lookback, config.horizon
    long = {}
    if isinstance(frame.index, pd.MultiIndex):
        sizes = _series_rows(frame)
        skipped = short_series(frame, lookback, horizon, val=val, test=test, borders=borders)
        kept = sizes[[key not in skipped for key in sizes.index]]
        n_rows = int(kept.max()) if len(kept) else int(sizes.max())
        long = {"series": int(len(sizes)), "skipped": skipped}
    else:
        n_rows = len(frame)
    if borders is None:
        n_test, n_val = int(round(n_rows * test)), int(round(n_rows * val))
        b1, b2, b3 = n_rows - n_val - n_test, n_rows - n_test, n_rows
    else:
        b1, b2, b3 = (int(b) for b in borders)
        b3 = min(b3, n_rows)
        b2, b1 = min(b2, b3), min(b1, b3)
    rows = {"train": b1, "val": b2 - b1, "test": b3 - b2}
    windows = {"train": b1 - lookback - horizon + 1,
               "val": rows["val"] - horizon + 1, "test": rows["test"] - horizon + 1}
    windows = {k: max(v, 0) for k, v in windows.items()}
    layout = (f"{n_rows} rows split into train {rows['train']}, val {rows['val']}, test "
              f"{rows['test']} (--val {val}, --test {test})" if borders is None else
              f"{n_rows} rows split at borders {tuple(borders)} into train {rows['train']}, val "
              f"{rows['val']}, test {rows['test']}")
    source = describe(frame).source
    where = f"{source}: " if source else ""
    if long:
        which = "every series is too short; the longest has" if len(long["skipped"]) == \
            long["series"] else "the longest series has"
        layout = f"{which} {layout}"
    if windows["train"] < 1:
        raise DataError(
            f"{where}{layout}: the training part needs at least lookback {lookback} + horizon "
            f"{horizon} = {lookback + horizon} rows for one window. Lower --val/--test (YAML "
            "`split.val`, `split.test`), --lookback (`window.lookback`) or --horizon "
            "(`window.horizon`), or use a longer series.")
    wanted_val = (val > 0) if borders is None else rows["val"] > 0
    if wanted_val and windows["val"] < 1:
        raise DataError(
            f"{where}{layout}: the validation part has {rows['val']} rows, fewer than horizon "
            f"{horizon}, so it holds no window. Raise --val (YAML `split.val`) to at least "
            f"{horizon / n_rows:.3g}, set --val 0 to train without validation, or lower "
            "--horizon (`window.horizon`).")
    if windows["test"] < 1:
        raise DataError(
            f"{where}{layout}: the test part has {rows['test']} rows, fewer than horizon "
            f"{horizon}, so it holds no window to evaluate on. Raise --test (YAML `split.test`) "
            f"to at least {horizon / n_rows:.3g}, or lower --horizon (`window.horizon`).")
    return {**rows, "lookback": lookback, "horizon": horizon, "windows": windows, **long}


def check_before_training(
    frame: pd.DataFrame,
    config: dict | ForecasterConfig,
    *,
    val: float = 0.1,
    test: float = 0.2,
    borders: tuple[int, int, int] | None = None,
) -> dict:
    """Everything that can be checked between loading and training: the split sizes
    (``check_split_sizes``) and the network's size (``forecast.models.builder.
    check_model_size``), so that bad settings fail in a second, not after training.

    Returns:
        ``check_split_sizes``'s sizes, with ``"parameters"``: the network's weight count.

    Raises:
        ConfigError, DataError: see ``check_split_sizes``; ModelError: too large a network.
    """
    from forecast.models.builder import check_model_size

    sizes = check_split_sizes(frame, config, val=val, test=test, borders=borders)
    config, _ = with_lookback(config, describe(frame).freq,
                              _train_rows(frame, val, test, borders))
    probe = Forecaster(config)
    probe._describe(frame)  # the columns and calendar features the network will read
    sizes["parameters"] = check_model_size(probe.config.setup, probe.spec, probe.config.model)
    return sizes


def train_and_evaluate(
    frame: pd.DataFrame,
    config: dict | ForecasterConfig,
    *,
    val: float = 0.1,
    test: float = 0.2,
    borders: tuple[int, int, int] | None = None,
    save_to: Path | None = None,
    callbacks: list | None = None,
    intervals=(),
) -> TrainReport:
    """Splits in time order, trains on train (early stopping on val), evaluates on test.

    With ``intervals`` (coverage levels such as ``(0.8, 0.95)``) the trained forecaster and
    its baselines are calibrated on the validation windows (split conformal,
    ``Forecaster.calibrate``: nothing is chosen on the test part), the intervals are saved
    with the forecaster, and the report gives their test coverage, width and Winkler score.

    Args:
        frame: a ``load_csv`` frame in original units.
        config: the forecaster's settings.
        val: validation fraction; test: test fraction; borders: explicit row borders instead.
        save_to: a folder to save the fitted forecaster into.
        callbacks: extra Keras callbacks for training (e.g. the MLflow epoch logger).
        intervals: conformal interval levels in (0, 1) (``--interval``); empty: none.

    Returns:
        A ``TrainReport`` with the model's and the baselines' test metrics.

    Raises:
        DataError, ConfigError, ModelError: see ``Forecaster.fit``.
    """
    from forecast.evaluation.intervals import check_levels

    levels = check_levels(intervals)
    sizes = check_split_sizes(frame, config, val=val, test=test, borders=borders)
    if levels and sizes["windows"]["val"] < 1:  # before training
        raise ConfigError(
            "--interval calibrates the intervals on the validation windows, and this split "
            "has none: set --val above 0 (YAML `split.val`) or drop --interval.")
    config, reason = with_lookback(config, describe(frame).freq,
                                   _train_rows(frame, val, test, borders))
    skipped = sizes.get("skipped") or {}
    if skipped:  # long format: series whose training part holds no window are left out
        logger.warning(
            "skipped %d of %d series: their training parts are too short for one window "
            "(lookback %d + horizon %d = %d rows): %s", len(skipped), sizes["series"],
            config.lookback, config.horizon, config.lookback + config.horizon,
            ", ".join(f"{key!r} ({rows} rows)" for key, rows in skipped.items()))
        keep = ~frame.index.get_level_values(0).astype(str).isin(list(skipped))
        frame = carry(frame, frame[keep])
    parts = chronological_split(frame, val=val, test=test, borders=borders,
                                lookback=config.lookback)
    started = time.perf_counter()
    forecaster = Forecaster(config, lookback_reason=reason).fit(parts.train, parts.val,
                                                                callbacks=callbacks)
    seconds = time.perf_counter() - started
    if levels:
        forecaster.calibrate(parts.val, levels)
    evaluation = evaluate_forecaster(forecaster, parts.test)
    y_true, y_pred = evaluation.pop("arrays")
    if save_to is not None:
        forecaster.save(save_to)
    n_series = _series_rows(parts.test).size if forecaster.is_global else 1
    extra = {}
    if forecaster.is_global:
        per_series = evaluation.pop("per_series")
        extra = {"per_series": per_series,
                 "worst_series": per_series[0]["series"] if per_series else None,
                 "skipped_series": {**skipped, **forecaster.skipped}}
    sizes = {"train": len(parts.train), "val": len(parts.val) - config.lookback * n_series,
             "test": len(parts.test) - config.lookback * n_series,
             "test_windows": forecaster.spec.n_windows(parts.test)}
    if forecaster.is_global:
        sizes.update(test_windows=len(y_true), series=n_series)
    return TrainReport(
        forecaster=forecaster,
        metrics={"model": evaluation["model"], "baselines": evaluation["baselines"]},
        per_step=evaluation["per_step"],
        scaled=evaluation["scaled"],
        sizes=sizes,
        seconds=seconds,
        test=parts.test,
        y_true=y_true,
        y_pred=y_pred,
        extra=extra,
        intervals=evaluation.get("intervals"),
    )


class ForecasterEstimator:
    """A ``Forecaster`` behind the backtest protocol (a fresh one per fold).

    Args:
        config: the forecaster's settings.
        levels: conformal interval levels: each fold's forecaster is calibrated on the fold's
            validation part (``Forecaster.calibrate``) right after it is fitted.
    """

    def __init__(self, config: ForecasterConfig, levels: tuple[float, ...] = ()):
        self.forecaster = Forecaster(config)
        self.quantiles = self.forecaster.quantiles
        self.levels = levels

    def fit(self, train_frame, val_frame=None):
        if self.levels and val_frame is None:  # before training this fold
            _no_calibration_windows()
        self.forecaster.fit(train_frame, val_frame)
        if self.levels:
            self.forecaster.calibrate(val_frame, self.levels)
        return self

    def predict_windows(self, frame):
        return self.forecaster.predict_windows(frame)


def _no_calibration_windows() -> None:
    raise ConfigError(
        "--interval calibrates each fold's intervals on the fold's validation part (the last "
        "tenth of its fit rows), and the oldest fold has none: that tenth is shorter than the "
        "horizon. Use fewer --folds, a smaller --fold-size or more data, or drop --interval.")


def _mean_intervals(folds: list[dict]) -> dict:
    """The mean over folds of each forecaster's interval coverage, width and Winkler score.

    Args:
        folds: the report's folds, each with ``"intervals"`` (``interval_metrics``).

    Returns:
        ``interval_metrics``' layout, each score the mean over the folds (``"n_calibration"``
        the mean calibration windows), with ``"folds"``.
    """
    first = folds[0]["intervals"]

    def scores(fold: dict, name: str) -> dict | None:
        own = fold["intervals"]
        return own["model"] if name == "model" else own["baselines"].get(name)

    means = {}
    for name in ("model", *first["baselines"]):
        per_fold = [scores(fold, name) for fold in folds]
        if not all(per_fold):  # not calibrated in every fold: not compared
            continue
        means[name] = {
            label: {"nominal": values["nominal"],
                    **{key: float(np.mean([fold[label][key] for fold in per_fold]))
                       for key in ("coverage", "width", "winkler")}}
            for label, values in per_fold[0].items()}
    return {"method": first["method"], "calibration": "fold validation",
            "n_calibration": int(round(np.mean([f["intervals"]["n_calibration"]
                                                for f in folds]))),
            "levels": first["levels"], "capped": first["capped"], "folds": len(folds),
            "model": means.pop("model"), "baselines": means}


def run_backtest(
    frame: pd.DataFrame,
    config: dict | ForecasterConfig,
    *,
    folds: int = 3,
    fold_size: int | None = None,
    mode: str = "expanding",
    baselines: tuple[str, ...] = BASELINES,
    intervals=(),
) -> dict:
    """Rolling-origin backtest of the forecaster and the baselines on the same folds.

    A long-format frame (many series, ``--id-col``) is backtested as one global model per fold
    (``run_global_backtest``).

    With ``intervals`` (levels such as ``(0.8, 0.95)``) each fold's forecaster and its
    baselines are calibrated on the fold's validation part (``Forecaster.calibrate``) and their
    conformal intervals scored on the fold's test windows: each fold gets ``"intervals"``
    (``interval_metrics``) and the report their mean over the folds.

    Returns:
        ``{"model": {mean metrics}, "baselines": {name: {...}}, "folds": [{"index",
        "fit_start", "fit_end", "origin", "test_end", "fit_rows", "test_rows", "n_windows",
        "model": {...}, <baseline>: {...}(, "intervals": {...})}], "settings": {"folds",
        "fold_size", "mode", "lookback", "horizon", ...}(, "intervals": {...})}`` (what the
        backtest used).

    Raises:
        ConfigError: invalid settings, or intervals and a fold without a validation part;
            DataError: too few rows for the folds.
    """
    from forecast.evaluation.intervals import check_levels

    levels = check_levels(intervals)
    if isinstance(frame.index, pd.MultiIndex):
        return run_global_backtest(frame, config, folds=folds, fold_size=fold_size, mode=mode,
                                   baselines=baselines, intervals=levels)
    config, _ = with_lookback(config, describe(frame).freq, len(frame) // 2)
    probe = Forecaster(config)
    probe._describe(frame)
    spec = probe.spec
    # the backtest lays out folds over the raw columns; the forecaster adds its calendar itself
    base_spec = WindowSpec(spec.lookback, spec.horizon, spec.targets, spec.past_covariates)
    if levels and not every_fold_validates(frame, base_spec, folds=folds, fold_size=fold_size,
                                           mode=mode):
        _no_calibration_windows()  # before any fold trains
    result = backtest(frame, base_spec, lambda: ForecasterEstimator(config, levels),
                      folds=folds, fold_size=fold_size, mode=mode)
    report = {"model": _point(result.mean), "baselines": {}, "folds": [],
              "settings": {k: v if v is None or isinstance(v, int | float | str) else str(v)
                           for k, v in result.settings.items()}}
    for fold in result.folds:
        fit, test = fold.rows.get("fit"), fold.rows.get("test")
        report["folds"].append({
            "index": int(fold.index),
            "fit_start": str(fold.fit_start), "fit_end": str(fold.fit_end),
            "origin": str(fold.origin), "test_end": str(fold.test_end),
            "fit_rows": int(fit[1] - fit[0]) if fit else None,
            "test_rows": int(test[1] - test[0]) if test else None,
            "n_windows": int(fold.n_windows),
            "model": _point(fold.metrics),
        })
        if levels:  # the fold's calibrated forecaster and baselines on its test windows
            forecaster = fold.estimator.forecaster
            y_true, forecasts = forecaster.predict_windows_of(
                frame.iloc[test[0] - spec.lookback:test[1]],
                {"model": forecaster.model, **{name: predictor for name, predictor in
                                               forecaster.baseline_predictors().items()
                                               if name in baselines}})
            report["folds"][-1]["intervals"] = interval_metrics(forecaster, y_true, forecasts)
    if levels:
        report["intervals"] = _mean_intervals(report["folds"])
    for name in baselines:
        try:
            base = backtest(frame, base_spec, lambda n=name: BaselineEstimator(n, base_spec),
                            folds=folds, fold_size=fold_size, mode=mode)
        except ConfigError:
            continue
        report["baselines"][name] = _point(base.mean)
        for entry, fold in zip(report["folds"], base.folds, strict=True):
            entry[name] = _point(fold.metrics)
    return report


def run_global_backtest(
    frame: pd.DataFrame,
    config: dict | ForecasterConfig,
    *,
    folds: int = 3,
    fold_size: int | None = None,
    mode: str = "expanding",
    baselines: tuple[str, ...] = BASELINES,
    intervals: tuple[float, ...] = (),
) -> dict:
    """Rolling-origin backtest of one global model over the series of a long-format frame.

    Every series is cut at the same origin counted from its own end
    (``forecast.evaluation.backtest.global_folds``); each fold fits ONE forecaster over the
    training parts of every series (scalers per series, on the fold's training rows only) and
    scores it, and the baselines fitted inside it on the same rows (naive and seasonal naive
    per series, linear as the global linear model), on the test windows of every series:
    pooled metrics (each window's MASE scaled by its own series' training rows, as
    ``evaluate_forecaster``) and per series.

    Args:
        frame: long format (indexed by (id, time)), original units.
        config: the forecaster's settings.
        folds, fold_size, mode: the layout (``fold_size`` defaults to a tenth of the median
            series, at least the horizon).
        baselines: the baselines reported (those the forecaster fits).
        intervals: conformal interval levels, as ``run_backtest`` (checked levels).

    Returns:
        ``run_backtest``'s report (``"model"``, ``"baselines"``, ``"folds"``, ``"settings"``),
        where each fold's ``fit_start``/``origin``/``test_end`` are the earliest fit start, the
        latest origin and the latest forecast timestamp over the series, plus
        ``"per_series"``: one row per series, worst model MASE first: ``{"series",
        "windows", "model": {"mae", "mase", "smape"} (mean over folds), "best_baseline"
        (the baseline with the lowest mean MASE there), "baseline": {...}, "baselines":
        {name: {"mae", "mase", "smape"}}}``, ``"worst_series"`` and ``"skipped_series"``
        (``{id: rows}`` of the series too short for the folds, left out with a warning).

    Raises:
        ConfigError: invalid settings; DataError: no series long enough for the folds.
    """
    from forecast.evaluation.backtest import global_folds
    from forecast.evaluation.metrics import series_scales
    from forecast.progress import current as current_progress

    config, _ = with_lookback(config, describe(frame).freq, _train_rows(frame, 0.0, 0.5, None))
    probe = Forecaster(config)
    probe._describe(frame)
    spec = probe.spec
    base_spec = WindowSpec(spec.lookback, spec.horizon, spec.targets, spec.past_covariates)
    layout, settings, skipped = global_folds(frame, base_spec, folds=folds,
                                             fold_size=fold_size, mode=mode)
    if skipped:
        logger.warning(
            "backtest: skipped %d of %d series too short for %d folds of %d rows: %s",
            len(skipped), len(skipped) + settings["series"], folds, settings["fold_size"],
            ", ".join(f"{key!r} ({rows} rows)" for key, rows in skipped.items()))
    if intervals and any(fold.val is None for fold in layout):
        _no_calibration_windows()  # before any fold trains
    report = {"model": {}, "baselines": {}, "folds": [], "settings": {
        k: v if v is None or isinstance(v, int | float | str) else str(v)
        for k, v in settings.items()}}
    scores: dict[str, dict[str, list]] = {}  # series -> forecaster -> per-fold metrics
    windows: dict[str, int] = {}
    display = current_progress()
    with display.task("fold", total=len(layout), label="backtest global model") as task:
        for fold in layout:
            forecaster = Forecaster(config).fit(fold.train, fold.val)
            if intervals:
                forecaster.calibrate(fold.val, intervals)
            y_true, forecasts = forecaster.predict_windows_of(
                fold.test, {"model": forecaster.model, **{
                    name: predictor for name, predictor in forecaster.baseline_predictors()
                    .items() if name in baselines}})
            series = forecaster.window_series(fold.test)
            scale = series_scales(forecaster.insample, series, forecaster.season)
            entry = {"index": fold.index, "fit_start": str(fold.fit_start),
                     "fit_end": str(fold.origin), "origin": str(fold.origin),
                     "test_end": str(fold.test_end),
                     "fit_rows": int(sum(r["fit_rows"] for r in fold.ranges.values())),
                     "test_rows": int(sum(r["test_rows"] for r in fold.ranges.values())),
                     "n_windows": int(len(y_true)), "series": len(fold.ranges)}
            for name, pred in forecasts.items():
                levels = forecaster.quantiles if name == "model" and pred.ndim == 4 else None
                entry[name] = _point(compute_metrics(y_true, pred, scale=scale,
                                                     quantiles=levels))
            for key in dict.fromkeys(series.tolist()):
                take = series == key
                windows[key] = windows.get(key, 0) + int(take.sum())
                for name, pred in forecasts.items():
                    levels = forecaster.quantiles if name == "model" and pred.ndim == 4 \
                        else None
                    metrics = compute_metrics(y_true[take], pred[take], scale=scale[take],
                                              quantiles=levels)
                    scores.setdefault(key, {}).setdefault(name, []).append(
                        {m: float(metrics[m]) for m in ("mae", "mase", "smape")})
            if intervals:
                entry["intervals"] = interval_metrics(forecaster, y_true, forecasts, series)
            report["folds"].append(entry)
            task.advance(mae=entry["model"]["mae"])
    if intervals:
        report["intervals"] = _mean_intervals(report["folds"])
    names = [name for name in ("model", *baselines)
             if all(name in fold for fold in report["folds"])]
    for name in names:
        mean = {m: float(np.mean([fold[name][m] for fold in report["folds"]]))
                for m in report["folds"][0][name]}
        if name == "model":
            report["model"] = mean
        else:
            report["baselines"][name] = mean
    for fold in report["folds"]:  # a baseline missing in some fold is not compared
        for name in [n for n in baselines if n in fold and n not in names]:
            fold.pop(name)
    rows = []
    for key, who in scores.items():
        means = {name: {m: float(np.mean([s[m] for s in values]))
                        for m in ("mae", "mase", "smape")}
                 for name, values in who.items() if name in names}
        others = {n: v for n, v in means.items() if n != "model" and np.isfinite(v["mase"])}
        best = min(others, key=lambda n: others[n]["mase"]) if others else None
        rows.append({"series": key, "windows": windows[key], "model": means["model"],
                     "best_baseline": best, "baseline": others.get(best),
                     "baselines": {n: v for n, v in means.items() if n != "model"}})
    rows.sort(key=lambda r: -r["model"]["mase"] if np.isfinite(r["model"]["mase"]) else 0.0)
    report["per_series"] = rows
    report["worst_series"] = rows[0]["series"] if rows else None
    report["skipped_series"] = skipped
    return report


def load_for_training(path, *, time_col=None, targets=None, covariates=None, freq=None,
                      fill="interpolate", max_gap=None, duplicates="error", id_col=None,
                      sep=None, decimal=None, dayfirst=None, date_format=None,
                      tz=None) -> pd.DataFrame:
    """``load_csv`` with the options the train/evaluate/backtest commands share.

    ``fill``, ``max_gap``, ``duplicates`` and ``id_col`` are the data policies (``--fill``,
    ``--max-gap``, ``--duplicates``, ``--id-col``; YAML ``data.*``). ``sep``, ``decimal``,
    ``dayfirst``, ``date_format`` and ``tz`` are the reading settings
    (``forecast.data.reading.ReadOptions``; None: detected). What was used travels with the
    frame (``describe(frame).reading``) and is saved with the logged model.
    """
    from forecast.data.reading import ReadOptions

    reading = ReadOptions(sep=sep, decimal=decimal, dayfirst=dayfirst, date_format=date_format,
                          tz=tz)
    return load_csv(path, time_col=time_col, targets=targets or None,
                    covariates=covariates or None, id_col=id_col, freq=freq, fill=fill,
                    duplicates=duplicates, max_gap=max_gap, reading=reading)
