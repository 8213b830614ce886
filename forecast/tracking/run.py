"""A training run as an MLflow run: train → evaluate → log everything → register → promote."""

from __future__ import annotations

import contextlib
import logging
import math
from dataclasses import dataclass, field

import mlflow
import numpy as np
import pandas as pd
import yaml

from forecast.data.dataset import describe
from forecast.evaluation.metrics import compute_metrics, series_scales
from forecast.evaluation.plots import (
    ForecastPanel,
    plot_error_by_step,
    plot_forecast_panels,
    plot_training_curves,
    spread_windows,
)
from forecast.options import POINT_METRICS, ForecasterConfig, parse_config
from forecast.tracking import resume as resumes
from forecast.tracking.mlflow import (
    DEFAULT_EXPERIMENT,
    EpochLogger,
    configure,
    log_config,
    log_dataset,
    log_metric_tables,
    log_per_step,
    run_label,
    tracked_run,
)
from forecast.workflow import TrainReport, train_and_evaluate

logger = logging.getLogger("forecast.tracking")


@dataclass
class TrackedTraining:
    """A finished tracked training run.

    Attributes:
        report: the ``TrainReport`` (forecaster, metrics).
        run_id: the MLflow run id.
        model_uri: the logged model's URI (``models:/m-...``).
        version: the registered model version, when ``register`` was given.
        promotion: the registry's promotion decision as a dict, when registered.
        resumed: when training continued the backup in ``train.checkpoint_dir``: ``{"from_epoch",
            "run_id" (the run it continues), "checkpoint_dir", "message"}`` (``message``:
            "resumed from epoch 3 of run 5f0c..."); else None.
        stale_runs: one line per stale run of the experiment ended as KILLED before this run
            started (``forecast.tracking.stale``).
    """

    report: TrainReport
    run_id: str
    model_uri: str
    version: str | None = None
    promotion: dict | None = None
    resumed: dict | None = None
    stale_runs: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {**self.report.to_dict(), "resumed": self.resumed, "mlflow": {
            "run_id": self.run_id, "model_uri": self.model_uri, "version": self.version,
            "promotion": self.promotion, "stale_runs_ended": list(self.stale_runs),
        }}


#: the MLflow table (``mlflow.log_table``) of the model beside every baseline.
COMPARISON_TABLE = "comparison.json"
#: the run tag naming the baseline the model is compared with (the best one on the test MAE).
TAG_BEST_BASELINE = "forecast.best_baseline"
#: the run's description in MLflow's UI (markdown).
TAG_NOTE = "mlflow.note.content"
#: the pipeline tag of a pipeline's run (``forecast.pipelines.watermark.TAG_NAME``).
_TAG_PIPELINE = "pipeline.name"
#: forecast windows drawn in ``plots/forecast_vs_actual.png``, spread over the test part.
PLOT_WINDOWS = 4


def _sig(value, digits: int = 4):
    """``value`` rounded to ``digits`` significant digits (None for missing or non-finite)."""
    if value is None or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(f"{float(value):.{digits}g}")


def _rounded(values: dict) -> dict:
    """Headline metrics as the runs list shows them: 4 significant digits (the full precision
    stays in ``test.<who>.<metric>``)."""
    return {name: _sig(value) for name, value in values.items() if _sig(value) is not None}


def headline(metrics: dict) -> dict:
    """The numbers a runs list shows as columns, and the verdict of the run's description.

    The model is compared with its best baseline on the test MAE (the original units).

    Args:
        metrics: ``{"model": {...}, "baselines": {name: {...}}}`` (a ``TrainReport``'s, or a
            backtest's mean or one fold's).

    Returns:
        ``{"metrics": {"test_mae", "test_rmse", "test_mase", "best_baseline_mae",
        "best_baseline_mase", "skill_vs_best_baseline"} (those known), "best_baseline": name or
        None, "verdict": one line}``; ``skill_vs_best_baseline`` is ``1 - model MAE / baseline
        MAE`` (0.027: the model's error is 2.7 % lower; negative: the baseline is better).

    Example:
        >>> headline({"model": {"mae": 1.244}, "baselines": {"linear": {"mae": 1.279}}})["verdict"]
        'MAE 1.244 vs linear 1.279: 2.7 % better'
    """
    model = metrics.get("model") or {}
    values = {f"test_{name}": float(model[name]) for name in ("mae", "rmse", "mase")
              if _sig(model.get(name)) is not None}
    scores = {name: float(b["mae"]) for name, b in (metrics.get("baselines") or {}).items()
              if _sig(b.get("mae")) is not None}
    mae = values.get("test_mae")
    if not scores or mae is None:
        verdict = (f"MAE {mae:.4g}; no baseline to compare with" if mae is not None
                   else "no test metrics")
        return {"metrics": values, "best_baseline": None, "verdict": verdict}
    best = min(scores, key=scores.get)
    values["best_baseline_mae"] = scores[best]
    best_mase = (metrics["baselines"][best] or {}).get("mase")
    if _sig(best_mase) is not None:
        values["best_baseline_mase"] = float(best_mase)
    if scores[best] > 0:
        skill = 1.0 - mae / scores[best]
        values["skill_vs_best_baseline"] = skill
        word = "better" if skill > 0 else "worse" if skill < 0 else ""
        change = f"{abs(skill) * 100:.1f} % {word}" if word else "the same"
        verdict = f"MAE {mae:.4g} vs {best} {scores[best]:.4g}: {change}"
    else:
        verdict = f"MAE {mae:.4g} vs {best} {scores[best]:.4g}"
    return {"metrics": values, "best_baseline": best, "verdict": verdict}


def comparison_table(metrics: dict, per_step: dict | None = None) -> pd.DataFrame:
    """The model beside every baseline, overall and per horizon step, 4 significant digits.

    Args:
        metrics: ``{"model": {...}, "baselines": {name: {...}}}``.
        per_step: ``{forecaster name: {metric: [horizon values]}}`` (``"model"`` included);
            None for overall rows only.

    Returns:
        One row per forecaster and step: ``forecaster``, ``horizon_step`` (``"all"``, then
        ``"1"``, ``"2"``, ...) and the point metrics (``mae``, ``rmse``, ``mape``, ``smape``,
        ``mase``; missing ones None).
    """
    rows = []
    forecasters = {"model": metrics["model"], **metrics.get("baselines", {})}
    for name, values in forecasters.items():
        rows.append({"forecaster": name, "horizon_step": "all",
                     **{m: _sig(values.get(m)) for m in POINT_METRICS}})
    steps = {name: (per_step or {}).get(name) or {} for name in forecasters}
    horizon = max((len(v) for curves in steps.values() for v in curves.values()), default=0)
    for step in range(horizon):  # step by step, every forecaster beside the model
        for name, curves in steps.items():
            if curves:
                rows.append({"forecaster": name, "horizon_step": str(step + 1), **{
                    m: _sig(curves[m][step]) if step < len(curves.get(m, ())) else None
                    for m in POINT_METRICS}})
    return pd.DataFrame(rows, columns=["forecaster", "horizon_step", *POINT_METRICS])


def log_summary(metrics: dict, *, per_step: dict | None = None, details: str = "",
                table: str = COMPARISON_TABLE) -> dict:
    """The headline metrics, the comparison table and the description of the active run.

    Args:
        metrics: ``{"model": {...}, "baselines": {name: {...}}}``.
        per_step: as ``comparison_table``.
        details: markdown added to the description under the verdict.
        table: the table's artifact path.

    Returns:
        ``headline(metrics)``.
    """
    summary = headline(metrics)
    if summary["metrics"]:
        mlflow.log_metrics(_rounded(summary["metrics"]))
    mlflow.log_table(comparison_table(metrics, per_step), artifact_file=table)
    note = summary["verdict"] + (f"\n\n{details}" if details else "")
    mlflow.set_tags({TAG_NOTE: note,
                     **({TAG_BEST_BASELINE: summary["best_baseline"]}
                        if summary["best_baseline"] else {})})
    return summary


def log_report(report: TrainReport, series_sizes: dict | None = None) -> None:
    """Final metrics (model and every baseline, overall and per horizon step), the headline
    metrics and the comparison table (``log_summary``) and the plots; for a global model also
    the per-series table and the worst series (``log_per_series``; ``series_sizes``: the rows
    of each series in the data) and a plot of its best, median and worst series."""
    metrics = report.to_dict()
    log_metric_tables("test.model", metrics["model"])
    for name, values in metrics["baselines"].items():
        log_metric_tables(f"test.{name}", values)
    log_metric_tables("test_scaled.model", metrics["scaled"]["model"])
    for name, values in metrics["scaled"]["baselines"].items():
        log_metric_tables(f"test_scaled.{name}", values)
    log_per_step("test.model", report.per_step)
    log_interval_metrics(report.intervals)
    training = metrics["training"]
    mlflow.log_metrics({"train.seconds": training["seconds"],
                        "train.epochs_run": training["epochs_run"] or 0})
    if training.get("blend"):  # train.blend_linear: the network's share, and why
        blend = training["blend"]
        mlflow.log_metrics({"blend.weight": blend["weight"], "blend.val_loss": blend["val_loss"],
                            "blend.val_loss_network": blend["val_loss_network"],
                            "blend.val_loss_linear": blend["val_loss_linear"]})
    baselines = _baseline_forecasts(report)
    per_step = {"model": report.per_step, **{name: steps for name, (_, steps) in
                                             baselines.items()}}
    sizes = report.sizes
    details = (f"{report.forecaster.resolved.summary()}\n\n"
               f"Test part: {sizes.get('test')} rows, {sizes.get('test_windows')} forecast "
               f"windows; trained {training['epochs_run']} epochs in {training['seconds']} s. "
               f"The table `{COMPARISON_TABLE}` has every baseline, overall and per horizon step.")
    if report.forecaster.is_global:
        worst = report.extra.get("worst_series")
        details += (f"\n\nOne global model over {sizes.get('series')} series; the table "
                    f"`{PER_SERIES_TABLE}` (and `per_series.csv`) has each series beside its "
                    f"best baseline; worst series: {worst}.")
        log_per_series(report.extra.get("per_series") or [], series_sizes)
    log_summary({"model": metrics["model"], "baselines": metrics["baselines"]},
                per_step=per_step, details=details)
    _log_plots(report, {name: pred for name, (pred, _) in baselines.items()}, per_step)


#: a global model's per-series test table (``per_series.csv`` beside it, same rows)
PER_SERIES_TABLE = "per_series.json"
#: the tag naming a global model's worst series (the model's highest test MASE)
TAG_WORST_SERIES = "forecast.worst_series"


def per_series_frame(rows: list[dict], sizes: dict | None = None) -> pd.DataFrame:
    """A global model's per-series table as a frame, worst model MASE first.

    Args:
        rows: ``per_series_table`` rows (``TrainReport.extra["per_series"]``) or a global
            backtest's ``per_series``.
        sizes: ``{id: rows of that series in the data}`` (None: the column is left out).

    Returns:
        Columns ``series``, ``rows`` (with ``sizes``), ``windows``, ``mae``, ``mase``,
        ``smape`` (the model's), ``best_baseline``, ``best_baseline_mae``,
        ``best_baseline_mase`` and ``beats_best_baseline`` (model MASE lower).
    """
    records = []
    for row in rows:
        base = row.get("baseline") or {}
        model = row["model"]
        record = {"series": row["series"]}
        if sizes is not None:
            record["rows"] = sizes.get(row["series"])
        record.update(
            windows=row["windows"], mae=_sig(model["mae"], 6), mase=_sig(model["mase"], 6),
            smape=_sig(model.get("smape"), 6), best_baseline=row.get("best_baseline"),
            best_baseline_mae=_sig(base.get("mae"), 6),
            best_baseline_mase=_sig(base.get("mase"), 6),
            beats_best_baseline=bool(base) and model["mase"] < base["mase"])
        # each series' own coverage of the model's conformal intervals (--interval)
        record.update({key: _sig(value, 6) for key, value in model.items()
                       if key.startswith("coverage_")})
        records.append(record)
    return pd.DataFrame(records)


def log_per_series(rows: list[dict], sizes: dict | None = None, prefix: str = "test") -> dict:
    """Logs a global model's per-series table and the metrics naming its worst series.

    Artifacts ``per_series.csv`` and ``per_series.json`` (an MLflow table); metrics
    ``<prefix>.series_count``, ``<prefix>.series_beating_best_baseline`` (series where the
    model's MASE is below that series' best baseline), ``<prefix>.worst_series.mase`` and
    ``<prefix>.worst_series.best_baseline_mase``, ``<prefix>.median_series.mase``; the tag
    ``forecast.worst_series`` names the worst series (its id; metric names cannot hold any id).

    Args:
        rows: per-series rows, worst model MASE first (``per_series_table``).
        sizes: ``{id: rows of that series in the data}``.
        prefix: ``test`` (training) or ``backtest``.

    Returns:
        The values logged: ``{"worst_series", "metrics"}``.
    """
    if not rows:
        return {"worst_series": None, "metrics": {}}
    table = per_series_frame(rows, sizes)
    mlflow.log_text(table.to_csv(index=False), "per_series.csv")
    mlflow.log_table(table, artifact_file=PER_SERIES_TABLE)
    worst = rows[0]
    mases = sorted(float(r["model"]["mase"]) for r in rows if _sig(r["model"]["mase"]))
    values = {f"{prefix}.series_count": len(rows),
              f"{prefix}.series_beating_best_baseline": int(table["beats_best_baseline"].sum()),
              f"{prefix}.worst_series.mase": worst["model"]["mase"],
              f"{prefix}.worst_series.best_baseline_mase": (worst.get("baseline") or {}).get(
                  "mase"),
              f"{prefix}.median_series.mase": float(np.median(mases)) if mases else None}
    values = {k: float(v) for k, v in values.items() if _sig(v) is not None or v == 0}
    mlflow.log_metrics(values)
    mlflow.set_tag(TAG_WORST_SERIES, str(worst["series"]))
    return {"worst_series": worst["series"], "metrics": values}


def log_interval_metrics(intervals: dict | None, prefix: str = "test") -> None:
    """The conformal intervals' test coverage, mean width and Winkler score of the model and
    every baseline: ``test.model.coverage_90``, ``test.model.width_90``,
    ``test.naive.winkler_90``, ... (nothing when the run has no intervals)."""
    if not intervals:
        return
    values = {}
    for who, levels in [("model", intervals.get("model") or {}),
                        *(intervals.get("baselines") or {}).items()]:
        for label, scores in levels.items():
            for name in ("coverage", "width", "winkler"):
                value = scores.get(name)
                if value is not None and math.isfinite(value):
                    values[f"{prefix}.{who}.{name}_{label}"] = float(value)
    if values:
        mlflow.log_metrics(values)


def _baseline_forecasts(report: TrainReport) -> dict:
    """``{baseline: (forecasts of every test window, per-step metrics)}``, original units.

    For a global model the windows of every series are pooled, each window's MASE scaled by
    its own series' training rows (as ``forecast.workflow.evaluate_forecaster``)."""
    forecaster = report.forecaster
    if report.test is None or report.y_true is None or not len(report.y_true):
        return {}
    try:
        y_true, forecasts = forecaster.predict_windows_of(report.test,
                                                          forecaster.baseline_predictors())
        insample, scale = forecaster.insample, None
        if forecaster.is_global:
            series = forecaster.window_series(report.test)
            insample, scale = None, series_scales(forecaster.insample, series,
                                                  forecaster.season)
    except Exception as exc:  # noqa: BLE001 - the plots and table go without the baselines
        logger.warning("baselines not drawn: %s", exc)
        return {}
    result = {}
    for name, pred in forecasts.items():
        steps = compute_metrics(y_true, pred, insample=insample, season=forecaster.season,
                                scale=scale)["per_step"]
        result[name] = (pred, steps)
    return result


def series_windows(report: TrainReport) -> list[tuple[int, str]]:
    """A global model's test windows to draw: the middle window of the best, the median and
    the worst series by the model's test MASE (``report.extra["per_series"]``).

    Returns:
        ``[(window index, label)]``, e.g. ``[(12, "best A (MASE 0.41)"), ...]``; fewer for
        fewer series, none for one series.
    """
    rows = [row for row in report.extra.get("per_series") or ()
            if math.isfinite(row["model"]["mase"])]
    if not rows or report.test is None:
        return []
    rows = sorted(rows, key=lambda row: row["model"]["mase"])
    chosen = {"best": rows[0], "median": rows[(len(rows) - 1) // 2], "worst": rows[-1]}
    series = report.forecaster.window_series(report.test)
    picked, seen = [], set()
    for word, row in chosen.items():
        if row["series"] in seen:
            continue
        seen.add(row["series"])
        where = np.flatnonzero(series == row["series"])
        if len(where):
            picked.append((int(where[len(where) // 2]),
                           f"{word}: {row['series']} (MASE {row['model']['mase']:.3g})"))
    return picked


def forecast_panels(report: TrainReport, baselines: dict, count: int = PLOT_WINDOWS,
                    windows: list[tuple[int, str]] | None = None
                    ) -> tuple[list[ForecastPanel], int]:
    """``count`` test windows spread over the test part, with the baselines' forecasts.

    Args:
        report: the training report (its test part, actuals and forecasts).
        baselines: ``{name: forecasts of every test window}``.
        count: the windows drawn when ``windows`` is None.
        windows: ``[(window index, label)]`` to draw instead (a global model: ``series_windows``).

    Returns:
        (the panels, the number of test windows).
    """
    spec = report.forecaster.spec
    test = report.test
    long = isinstance(test.index, pd.MultiIndex)
    if long:  # the windows of the series a global model forecasts (short ones hold none)
        test = report.forecaster._windowed(test)
    starts = spec.window_starts(test)
    n = min(len(starts), len(report.y_true))
    targets = list(spec.targets)
    times = test.index.get_level_values(-1) if long else test.index
    if windows is None:
        windows = [(i, None) for i in spread_windows(n, count)]
    panels = []
    for i, label in windows:
        start = int(starts[i])
        if long:
            first = f"from {pd.Timestamp(times[start + spec.lookback]):%Y-%m-%d %H:%M}"
            label = f"{label or test.index[start][0]}, {first}"
        panels.append(ForecastPanel(
            times=times[start + spec.lookback: start + spec.min_rows],
            actual=report.y_true[i],
            forecasts={"model": report.y_pred[i],
                       **{name: pred[i] for name, pred in baselines.items()}},
            history=test.iloc[start: start + spec.lookback][targets].to_numpy(),
            history_times=times[start: start + spec.lookback], label=label))
    return panels, n


def _log_plots(report: TrainReport, baselines: dict | None = None,
               per_step: dict | None = None) -> None:
    forecaster = report.forecaster
    spec = forecaster.spec
    figures = {}
    if forecaster.fit_result and forecaster.fit_result.history:
        figures["plots/training_curves.png"] = plot_training_curves(
            forecaster.fit_result.history, title="training")
    others = {name: steps for name, steps in (per_step or {}).items() if name != "model"}
    figures["plots/error_by_step.png"] = plot_error_by_step(
        report.per_step, baselines=others or None,
        title="test MAE by horizon step: model (solid) and baselines (dashed)")
    if report.test is not None and report.y_true is not None and len(report.y_true):
        panels, n = forecast_panels(report, baselines or {})
        figures["plots/forecast_vs_actual.png"] = plot_forecast_panels(
            panels, quantiles=forecaster.quantiles, target_names=list(spec.targets),
            title=f"test part: {len(panels)} of {n} forecast windows, model (solid) and "
                  "baselines (dashed)")
        chosen = series_windows(report) if forecaster.is_global else []
        if chosen:  # a global model: the best, the median and the worst series by MASE
            panels, _ = forecast_panels(report, baselines or {}, windows=chosen)
            figures["plots/series_best_median_worst.png"] = plot_forecast_panels(
                panels, quantiles=forecaster.quantiles, target_names=list(spec.targets),
                title="test part: the best, median and worst series by the model's MASE, "
                      "model (solid) and baselines (dashed)")
    for path, figure in figures.items():
        mlflow.log_figure(figure, path)


def what_ran(config: ForecasterConfig, frame: pd.DataFrame) -> list[str]:
    """The parts of a run name that say what was trained: cell, target(s), horizon (and for a
    global model the number of series: ``3series``).

    Example:
        >>> frame = load_csv("datasets/ETTh1.csv", targets=["OT"])
        >>> what_ran(parse_config({"horizon": 24}), frame)
        ['lstm', 'OT', 'h24']
    """
    targets = list(describe(frame).targets)
    target = targets[0] if len(targets) == 1 else (
        f"{targets[0]}+{len(targets) - 1}" if targets else None)
    many = []
    if isinstance(frame.index, pd.MultiIndex):  # a global model: how many series
        many = [f"{frame.index.get_level_values(0).nunique()}series"]
    return [config.model.cell, target, f"h{config.horizon}", *many]


def train_tracked(
    frame: pd.DataFrame,
    config: dict | ForecasterConfig,
    *,
    source: str | None = None,
    time_col: str | None = None,
    val: float = 0.1,
    test: float = 0.2,
    borders: tuple[int, int, int] | None = None,
    register: str | None = None,
    promote_metric: str = "mase",
    promote_folds: int = 3,
    allow_worse_than_baseline: bool = False,
    experiment: str = DEFAULT_EXPERIMENT,
    run_name: str | None = None,
    tags: dict | None = None,
    end_stale: bool = True,
    fill: str = "interpolate",
    max_gap: int | None = None,
    intervals=(),
) -> TrackedTraining:
    """Trains and evaluates inside an MLflow run that ends FINISHED or FAILED.

    Args:
        frame: a ``load_csv`` frame (original units).
        config: the forecaster's settings.
        source: where the data came from (the CSV path), for lineage.
        time_col: the time column's name in the raw data (the served model takes it).
        val, test, borders: the chronological split.
        register: a registered model name: the version gets the ``challenger`` alias and
            ``forecast.evaluation.promotion.register_and_promote`` decides the champion (the
            model, the current champion or the best baseline, on the same backtest folds).
        promote_metric, promote_folds, allow_worse_than_baseline: the promotion rule.
        experiment, run_name, tags: where the run goes and how it is labelled; the name
            defaults to what ran and when (``lstm-OT-h24-1130-0917``); a pipeline's run (tag
            ``pipeline.name`` equal to ``run_name``) is named ``pipeline-NAME-lstm-OT-h24-...``.
        end_stale: first end, as KILLED, the RUNNING runs of ``experiment`` whose owner
            process on this host is gone (``forecast.tracking.stale``); a pipeline does this
            for its own runs in ``validate`` and passes False.
        fill, max_gap: how the served model fills gaps in the history it is sent (as the
            training file was read: ``--fill``, ``--max-gap``).
        intervals: conformal interval levels (``--interval``), as ``train_and_evaluate``; the
            logged model then forecasts them, and their test scores are logged as
            ``test.<model|baseline>.<coverage|width|winkler>_<pct>``.

    With ``config.train.checkpoint_dir`` set, the run is recorded in
    ``<checkpoint_dir>/forecast-run.json``; when the folder holds the backup of a killed
    training, training resumes after its last finished epoch and the run is tagged
    ``forecast.resumes_run`` (the killed run's id) and ``forecast.resumed_from_epoch``
    (``forecast.tracking.resume``).

    Returns:
        A ``TrackedTraining``.

    Raises:
        ConfigError: the checkpoint folder is in use by a live process, or holds the backup of
            a model with other settings (no run is recorded).
        ForecastError: as ``train_and_evaluate``; the run is then FAILED with the message.
    """
    from forecast.serving import log_forecaster

    config = parse_config(config)
    time_col = time_col or describe(frame).time_col or "time"
    stale_lines = _end_stale(experiment) if end_stale else []
    checkpoint_dir = config.train.checkpoint_dir
    requested = config.model_dump(mode="json")
    settings = {k: v for k, v in requested.items() if k not in ("train", "batch_size")}
    resume = resumes.check(checkpoint_dir, settings) if checkpoint_dir is not None else None
    pipeline = (tags or {}).get(_TAG_PIPELINE)
    if run_name is None:
        run_name = run_label(*what_ran(config, frame))
    elif pipeline and run_name == pipeline:  # a pipeline's run: its name, then what ran
        run_name = run_label("pipeline", pipeline, *what_ran(config, frame))
    with tracked_run(run_name, experiment=experiment, tags=tags) as run:
        # what was asked, kept even when training fails; the params are what was used
        mlflow.log_text(yaml.safe_dump(requested, sort_keys=False), "config.requested.yaml")
        if checkpoint_dir is not None:
            resumes.record(checkpoint_dir, run.info.run_id, run.info.experiment_id, settings,
                           tracking_uri=mlflow.get_tracking_uri())
            if resume is not None:
                _link(run.info.run_id, resume)
        log_dataset(frame, source=source)
        try:
            report = train_and_evaluate(frame, config, val=val, test=test, borders=borders,
                                        callbacks=[EpochLogger()], intervals=intervals)
        except BaseException:
            if checkpoint_dir is not None:
                resumes.mark(checkpoint_dir, "failed")
            raise
        if checkpoint_dir is not None:
            resumes.mark(checkpoint_dir, "finished")
        resume = _resumed(report, resume, checkpoint_dir)
        id_col = describe(frame).id_col if isinstance(frame.index, pd.MultiIndex) else None
        log_config({"config": report.forecaster.resolved.flat(),
                    "data": {"source": source, "time_col": time_col, "val": val, "test": test,
                             "borders": borders,
                             **({"id_col": id_col} if id_col is not None else {})}})
        mlflow.set_tags({"forecast.kernel": report.forecaster.kernel_used,
                         "forecast.setup": config.setup,
                         **({"forecast.global": "true"} if id_col is not None else {})})
        log_report(report, _series_sizes(frame))
        history = report.test if report.test is not None else frame
        info = log_forecaster(report.forecaster, time_col=time_col, input_example=history,
                              fill=fill, max_gap=max_gap)
        result = TrackedTraining(report, run.info.run_id, info.model_uri,
                                 resumed=None if resume is None else resume.to_dict(),
                                 stale_runs=stale_lines)
        if register:
            from forecast.evaluation.promotion import register_and_promote

            decision = register_and_promote(
                info.model_uri, register, frame, run_id=run.info.run_id, metric=promote_metric,
                folds=promote_folds, allow_worse_than_baseline=allow_worse_than_baseline)
            result.version = decision.version
            result.promotion = decision.to_dict()
            mlflow.set_tags({"registry.name": register, "registry.version": result.version,
                             "registry.promoted": str(result.promotion.get("promoted"))})
    return result


def _series_sizes(frame: pd.DataFrame) -> dict | None:
    """``{id: rows}`` of a long-format frame's series (None for one series)."""
    if not isinstance(frame.index, pd.MultiIndex):
        return None
    sizes = frame.groupby(level=0, sort=False).size()
    return {str(key): int(n) for key, n in sizes.items()}


def _end_stale(experiment: str) -> list[str]:
    """Ends the experiment's stale runs as KILLED; one line per run ended."""
    from forecast.tracking.stale import end_stale_runs

    report = end_stale_runs([configure(experiment)],
                            ended_by=f"the next training run in experiment {experiment}")
    lines = [line for line, run in zip(report.lines(), report.runs, strict=True) if run.ended]
    for line in lines:
        logger.info("%s", line)
    return lines


def _link(run_id: str, resume: resumes.Resume) -> None:
    """Tags the active run as continuing ``resume.run_id`` (and that run as continued)."""
    mlflow.set_tags({resumes.TAG_RESUMED_FROM: str(resume.from_epoch),
                     **({resumes.TAG_RESUMES: resume.run_id} if resume.run_id else {})})
    if resume.run_id and resume.run_id != run_id:
        with contextlib.suppress(Exception):  # the earlier run may be in another store
            mlflow.MlflowClient().set_tag(resume.run_id, resumes.TAG_RESUMED_BY, run_id)


def _resumed(report: TrainReport, expected: resumes.Resume | None,
             checkpoint_dir) -> resumes.Resume | None:
    """The resume as training reported it (Keras may fall back to an earlier backup)."""
    fit_result = report.forecaster.fit_result
    initial = int(getattr(fit_result, "initial_epoch", 0) or 0)
    if expected is not None and fit_result is not None and not fit_result.epochs_run:
        return expected  # every epoch had run before the kill: nothing left to train
    if initial <= 0:
        if expected is not None:  # the backup could not be used: training started afresh
            mlflow.set_tag(resumes.TAG_RESUMED_FROM, "0")
        return None
    if expected is None:
        expected = resumes.Resume(initial, None, str(checkpoint_dir))
    elif initial != expected.from_epoch:
        expected.from_epoch = initial
    mlflow.set_tag(resumes.TAG_RESUMED_FROM, str(initial))
    return expected


def backtest_tracked(
    frame: pd.DataFrame,
    config: dict | ForecasterConfig,
    *,
    folds: int = 3,
    fold_size: int | None = None,
    mode: str = "expanding",
    source: str | None = None,
    experiment: str = DEFAULT_EXPERIMENT,
    run_name: str | None = None,
    tags: dict | None = None,
    intervals=(),
) -> dict:
    """``forecast.workflow.run_backtest`` recorded in MLflow: a parent run with one nested run
    per fold.

    The parent (``backtest-lstm-OT-h24-1130-0917``) holds the settings as params, the dataset,
    the mean metrics of the model and of every baseline (``backtest.<who>.<metric>``), the
    headline metrics (``test_mae``, ``best_baseline_mae``, ``skill_vs_best_baseline``, ...: the
    mean over the folds' test parts), a description with the verdict, the comparison table
    (one row per forecaster and fold, and the mean) and ``backtest.json``. Each fold's run
    (``fold-0``, ...) holds its ranges as params and its metrics: ``<who>.<metric>`` and the
    same headline metrics. A long-format frame (a global model) also gets the per-series
    table over the folds and its worst series (``log_per_series``, prefix ``backtest``).

    Args:
        frame: a ``load_csv`` frame (original units).
        config: the forecaster's settings.
        folds, fold_size, mode: the rolling-origin layout (``run_backtest``).
        source: where the data came from (the CSV path), for lineage.
        experiment, run_name, tags: where the run goes and how it is labelled.
        intervals: conformal interval levels (``run_backtest``); their mean coverage, width
            and Winkler score are logged as ``backtest.<who>.coverage_<pct>``, ...

    Returns:
        ``run_backtest``'s report with ``"mlflow": {"run_id", "experiment_id",
        "fold_run_ids"}``.

    Raises:
        ForecastError: as ``run_backtest``; the parent run is then FAILED with the message.
    """
    from forecast.workflow import run_backtest

    config = parse_config(config)
    run_name = run_name or run_label("backtest", *what_ran(config, frame))
    with tracked_run(run_name, experiment=experiment,
                     tags={"forecast.command": "backtest", **(tags or {})}) as run:
        log_dataset(frame, source=source, context="backtest")
        report = run_backtest(frame, config, folds=folds, fold_size=fold_size, mode=mode,
                              intervals=intervals)
        settings = report.get("settings", {})
        used = config.model_dump(mode="json")
        used["lookback"] = settings.get("lookback", used.get("lookback"))
        log_config({"config": used,
                    "backtest": {"folds": folds, "fold_size": settings.get("fold_size",
                                                                           fold_size),
                                 "mode": mode},
                    "data": {"source": source}})
        log_metric_tables("backtest.model", report["model"])
        for name, values in report["baselines"].items():
            log_metric_tables(f"backtest.{name}", values)
        log_interval_metrics(report.get("intervals"), prefix="backtest")
        fold_ids = [_log_fold(fold, run.info.experiment_id, config.model.cell)
                    for fold in report["folds"]]
        details = (f"Rolling-origin backtest ({mode}), {len(report['folds'])} folds of "
                   f"{settings.get('fold_size', fold_size)} test rows; the mean over the "
                   f"folds. One nested run per fold. The table `{COMPARISON_TABLE}` has every "
                   "forecaster per fold.")
        summary = headline(report)
        mlflow.log_metrics(_rounded(summary["metrics"]))
        mlflow.log_table(_fold_table(report), artifact_file=COMPARISON_TABLE)
        mlflow.set_tags({TAG_NOTE: f"{summary['verdict']} (mean of {len(report['folds'])} "
                                   f"folds)\n\n{details}",
                         **({TAG_BEST_BASELINE: summary["best_baseline"]}
                            if summary["best_baseline"] else {})})
        if report.get("per_series"):  # a global model: each series over the folds
            log_per_series(report["per_series"], _series_sizes(frame), prefix="backtest")
        mlflow.log_dict(report, "backtest.json")
    return {**report, "mlflow": {"run_id": run.info.run_id,
                                 "experiment_id": run.info.experiment_id,
                                 "fold_run_ids": fold_ids}}


def _log_fold(fold: dict, experiment_id: str, cell: str) -> str:
    """One fold as a nested run of the active run; returns its id."""
    from forecast.tracking.stale import owner_tags

    who = {name: values for name, values in fold.items()
           if isinstance(values, dict) and name != "model"}
    with mlflow.start_run(run_name=f"fold-{fold.get('index', 0)}", nested=True,
                          experiment_id=experiment_id,
                          tags={**owner_tags(), "forecast.command": "backtest",
                                "forecast.fold": str(fold.get("index", 0))}) as child:
        mlflow.log_params({key: fold[key] for key in ("index", "fit_start", "fit_end", "origin",
                                                      "test_end", "fit_rows", "test_rows",
                                                      "n_windows", "series") if key in fold})
        mlflow.log_param("cell", cell)
        log_metric_tables("model", fold["model"])
        for name, values in who.items():
            log_metric_tables(name, values)
        summary = headline({"model": fold["model"], "baselines": who})
        mlflow.log_metrics(_rounded(summary["metrics"]))
        mlflow.set_tag(TAG_NOTE, f"fold {fold.get('index', 0)}: forecast {fold['origin']} -> "
                                 f"{fold['test_end']}; {summary['verdict']}")
    return child.info.run_id


def _fold_table(report: dict) -> pd.DataFrame:
    """The comparison table of a backtest: each forecaster per fold, then the mean."""
    rows = []
    forecasters = ["model", *report["baselines"]]
    for name in forecasters:
        for fold in report["folds"]:
            values = fold.get(name) or {}
            rows.append({"forecaster": name, "fold": str(fold.get("index", "")),
                         **{m: _sig(values.get(m)) for m in POINT_METRICS}})
        mean = report["model"] if name == "model" else report["baselines"][name]
        rows.append({"forecaster": name, "fold": "mean",
                     **{m: _sig(mean.get(m)) for m in POINT_METRICS}})
    return pd.DataFrame(rows, columns=["forecaster", "fold", *POINT_METRICS])
