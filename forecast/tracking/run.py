"""A training run as an MLflow run: train → evaluate → log everything → register → promote."""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field

import mlflow
import pandas as pd
import yaml

from forecast.data.dataset import describe
from forecast.evaluation import plot_error_by_step, plot_forecast, plot_training_curves
from forecast.options import ForecasterConfig, parse_config
from forecast.tracking import resume as resumes
from forecast.tracking.mlflow import (
    DEFAULT_EXPERIMENT,
    EpochLogger,
    configure,
    log_config,
    log_dataset,
    log_metric_tables,
    log_per_step,
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


def log_report(report: TrainReport) -> None:
    """Final metrics (model and every baseline, overall and per horizon step) and the plots."""
    metrics = report.to_dict()
    log_metric_tables("test.model", metrics["model"])
    for name, values in metrics["baselines"].items():
        log_metric_tables(f"test.{name}", values)
    log_metric_tables("test_scaled.model", metrics["scaled"]["model"])
    for name, values in metrics["scaled"]["baselines"].items():
        log_metric_tables(f"test_scaled.{name}", values)
    log_per_step("test.model", report.per_step)
    training = metrics["training"]
    mlflow.log_metrics({"train.seconds": training["seconds"],
                        "train.epochs_run": training["epochs_run"] or 0})
    _log_plots(report)


def _log_plots(report: TrainReport) -> None:
    forecaster = report.forecaster
    spec = forecaster.spec
    figures = {}
    if forecaster.fit_result and forecaster.fit_result.history:
        figures["plots/training_curves.png"] = plot_training_curves(
            forecaster.fit_result.history, title="training")
    figures["plots/error_by_step.png"] = plot_error_by_step(
        report.per_step, title="test error by horizon step")
    if report.test is not None and report.y_true is not None and len(report.y_true):
        start = spec.window_starts(report.test)[-1]
        times = report.test.index[start + spec.lookback: start + spec.min_rows]
        history_rows = report.test.iloc[start: start + spec.lookback]
        figures["plots/forecast_vs_actual.png"] = plot_forecast(
            report.y_true[-1], report.y_pred[-1],
            history=history_rows[list(spec.targets)].to_numpy(),
            quantiles=forecaster.quantiles, times=times, history_times=history_rows.index,
            target_names=list(spec.targets), title="last test window",
        )
    for path, figure in figures.items():
        mlflow.log_figure(figure, path)


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
        experiment, run_name, tags: where the run goes and how it is labelled.
        end_stale: first end, as KILLED, the RUNNING runs of ``experiment`` whose owner
            process on this host is gone (``forecast.tracking.stale``); a pipeline does this
            for its own runs in ``validate`` and passes False.

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
                                        callbacks=[EpochLogger()])
        except BaseException:
            if checkpoint_dir is not None:
                resumes.mark(checkpoint_dir, "failed")
            raise
        if checkpoint_dir is not None:
            resumes.mark(checkpoint_dir, "finished")
        resume = _resumed(report, resume, checkpoint_dir)
        log_config({"config": report.forecaster.resolved.flat(),
                    "data": {"source": source, "time_col": time_col, "val": val, "test": test,
                             "borders": borders}})
        mlflow.set_tags({"forecast.kernel": report.forecaster.kernel_used,
                         "forecast.setup": config.setup})
        log_report(report)
        history = report.test if report.test is not None else frame
        info = log_forecaster(report.forecaster, time_col=time_col, input_example=history)
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
