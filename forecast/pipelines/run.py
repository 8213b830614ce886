"""Running a pipeline file: validate → ingest → train → evaluate → backtest → register → forecast.

The whole run is ONE MLflow run (``forecast.tracking.run.train_tracked`` opens it and logs the
training and test evaluation; the later steps are added to the same run, which ends FINISHED, or
FAILED with the error as a tag). The run is tagged ``pipeline.name``, ``pipeline.file``,
``pipeline.spec_sha256`` and the data watermark (``watermark.sha256``,
``watermark.last_timestamp``); every step's wall time is the metric ``step.<name>.seconds``; the
forecast CSV is the artifact ``forecast/<file name>``.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from forecast.errors import ConfigError, DataError, ForecastError
from forecast.pipelines.spec import PipelineSpec, load_pipeline
from forecast.pipelines.watermark import (
    TAG_FILE,
    TAG_NAME,
    TAG_SPEC,
    Watermark,
    file_sha256,
    last_finished_run,
    unchanged_since,
)


@dataclass
class PipelineResult:
    """What ``run_pipeline`` did.

    Attributes:
        name: the pipeline's name.
        path: the pipeline file.
        skipped: True when the data had not changed since the last successful run.
        message: one line saying what happened.
        run_id: the MLflow run (for a skipped run: the earlier run it matched).
        metrics: the test metrics named in ``evaluate.metrics``: ``{"model": {...},
            "baselines": {name: {...}}}``.
        backtest: the backtest report (``evaluate.backtest_folds``), or None.
        version, promotion: the registered version and the promotion decision, or None.
        forecast: the forecast frame (the time column, then the forecasts), or None.
        forecast_path: where the forecast CSV was written, or None.
        steps: seconds per step.
        watermark: the data watermark.
    """

    name: str
    path: Path
    skipped: bool = False
    message: str = ""
    run_id: str | None = None
    metrics: dict = field(default_factory=dict)
    backtest: dict | None = None
    model_uri: str | None = None
    version: str | None = None
    promotion: dict | None = None
    forecast: pd.DataFrame | None = None
    forecast_path: Path | None = None
    steps: dict = field(default_factory=dict)
    watermark: Watermark | None = None

    def to_dict(self) -> dict:
        """JSON-ready (what ``forecast pipeline run --json`` prints)."""
        return {
            "name": self.name, "path": str(self.path), "skipped": self.skipped,
            "message": self.message, "run_id": self.run_id, "metrics": self.metrics,
            "backtest": self.backtest, "model_uri": self.model_uri, "version": self.version,
            "promotion": self.promotion,
            "forecast_path": str(self.forecast_path) if self.forecast_path else None,
            "forecast_rows": None if self.forecast is None else len(self.forecast),
            "steps": {k: round(v, 3) for k, v in self.steps.items()},
            "watermark": None if self.watermark is None else {
                "sha256": self.watermark.sha256,
                "last_timestamp": self.watermark.last_timestamp},
        }


class _Steps:
    """Times named steps and reports them through ``echo``."""

    def __init__(self, echo: Callable[[str], None]):
        self.seconds: dict[str, float] = {}
        self.echo = echo

    @contextlib.contextmanager
    def __call__(self, name: str):
        self.echo(f"[{name}] ...")
        started = time.perf_counter()
        yield
        self.seconds[name] = time.perf_counter() - started
        self.echo(f"[{name}] done in {self.seconds[name]:.1f} s")

    def add(self, name: str, seconds: float) -> None:
        self.seconds[name] = seconds


@contextlib.contextmanager
def _resumed_run(run_id: str):
    """Reopens a finished run to add to it; it ends FINISHED again, or FAILED with the error."""
    import mlflow

    from forecast.tracking.mlflow import error_message

    mlflow.start_run(run_id=run_id)
    try:
        yield
    except BaseException as exc:
        with contextlib.suppress(Exception):
            mlflow.set_tags({"error": error_message(exc)[:5000],
                             "error.type": type(exc).__name__})
        mlflow.end_run(status="KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED")
        raise
    else:
        mlflow.end_run(status="FINISHED")


def _failed_run(spec: PipelineSpec, tags: dict, exc: BaseException) -> None:
    """Records a run that failed before training as a FAILED MLflow run carrying the error."""
    from forecast.tracking.mlflow import tracked_run

    with contextlib.suppress(type(exc)), tracked_run(spec.name, experiment=spec.experiment,
                                                     tags=tags):
        raise exc


def _ingest(spec: PipelineSpec) -> pd.DataFrame:
    from forecast.data import load_csv

    data = spec.data
    lookback = spec.window.lookback or 1
    return load_csv(
        data.path, time_col=data.time_col, targets=data.targets, covariates=data.covariates,
        id_col=data.id_col, freq=data.freq, fill=data.fill, duplicates=data.duplicates,
        max_gap=data.max_gap, min_rows=lookback + spec.window.horizon,
        min_rows_reason=f"lookback {lookback} + horizon {spec.window.horizon}",
    )


def _selected(metrics: dict, names) -> dict:
    return {k: v for k, v in metrics.items() if k in names}


def _backtest(spec: PipelineSpec, frame: pd.DataFrame, config) -> dict:
    import mlflow

    from forecast.tracking.mlflow import log_metric_tables
    from forecast.workflow import run_backtest

    if spec.evaluate.backtest_epochs is not None:
        config = config.model_copy(update={"train": config.train.model_copy(
            update={"epochs": spec.evaluate.backtest_epochs})})
    config = config.model_copy(update={"train": config.train.model_copy(update={"verbose": 0})})
    report = run_backtest(frame, config, folds=spec.evaluate.backtest_folds)
    log_metric_tables("backtest.model", report["model"])
    for name, values in report["baselines"].items():
        log_metric_tables(f"backtest.{name}", values)
    mlflow.log_dict(report, "backtest.json")
    return report


def _register(spec: PipelineSpec, frame: pd.DataFrame, model_uri: str, run_id: str):
    import mlflow

    from forecast.tracking.registry import promote_if_better, register_version

    reg = spec.register
    version = register_version(model_uri, reg.name, run_id=run_id,
                               tags={TAG_NAME: spec.name})
    decision = promote_if_better(reg.name, version.version, frame,
                                 metric=reg.promotion_metric, folds=reg.promotion_folds,
                                 epochs=reg.promotion_epochs)
    promotion = decision.to_dict()
    mlflow.set_tags({"registry.name": reg.name, "registry.version": str(version.version),
                     "registry.promoted": str(promotion.get("promoted"))})
    return str(version.version), promotion


def _champion_version(name: str) -> str | None:
    from mlflow.tracking import MlflowClient

    return MlflowClient().get_registered_model(name).aliases.get("champion")


def _forecast(spec: PipelineSpec, frame: pd.DataFrame, forecaster, time_col: str,
              version: str | None) -> tuple[pd.DataFrame, str]:
    """The forecast after the last row: the registered champion's, or the trained model's."""
    if spec.register is not None:
        champion = _champion_version(spec.register.name)
        if champion is not None and str(champion) != str(version):
            from forecast.serving.load import load_model
            from forecast.serving.pyfunc import as_raw_history

            uri = f"models:/{spec.register.name}@champion"
            model = load_model(uri)
            forecast = model.predict(as_raw_history(frame, time_col))
            return pd.DataFrame(forecast), f"{uri} (version {champion})"
    forecast = forecaster.predict(frame)
    forecast.index = forecast.index.rename(time_col)
    source = (f"models:/{spec.register.name}/{version}" if version else "the trained model")
    return forecast.reset_index(), source


def _log_forecast(spec: PipelineSpec, forecast: pd.DataFrame) -> Path | None:
    import mlflow

    if spec.forecast is None:
        mlflow.log_text(forecast.to_csv(index=False), "forecast/forecast.csv")
        return None
    path = Path(spec.forecast.path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        forecast.to_csv(path, index=False)
    except OSError as exc:
        raise ConfigError(f"forecast.path: cannot write the forecast to {path}: {exc}") from None
    mlflow.log_artifact(str(path), artifact_path="forecast")
    return path


def run_pipeline(path, *, overrides=(), force: bool = False,
                 echo: Callable[[str], None] | None = None) -> PipelineResult:
    """Runs a pipeline file end to end as one MLflow run.

    Steps (each timed as the metric ``step.<name>.seconds``): ``validate`` (the file and the
    overrides), ``ingest`` (``load_csv``), ``train`` and ``evaluate`` (test metrics beside the
    baselines, plots and the logged model: ``train_tracked``), ``backtest`` (when
    ``evaluate.backtest_folds`` is set), ``register`` (register + promotion backtest, when
    ``register`` is set), ``forecast`` (the champion — or the trained model — forecasts the
    horizon after the last row; written to ``forecast.path`` and logged as an artifact).

    When the input file's bytes and the pipeline's settings are those of the last FINISHED run
    of the pipeline, nothing is trained: the result has ``skipped=True`` (``force=True``
    trains anyway).

    Args:
        path: the pipeline YAML file.
        overrides: ``"dotted.key=value"`` settings applied before validation
            (``["window.horizon=48"]``); values are read as YAML.
        force: run even when the data has not changed.
        echo: called with one line per step (progress); default silent.

    Returns:
        A ``PipelineResult``.

    Raises:
        ConfigError: the file or an override is invalid (nothing is recorded).
        DataError, ModelError: ingesting or training failed; the MLflow run is FAILED with the
            message.

    Example:
        >>> result = run_pipeline("pipelines/quickstart.yaml", overrides=["train.epochs=1"])
        >>> result.run_id, result.forecast_path, result.steps["train"]
    """
    echo = echo or (lambda line: None)
    steps = _Steps(echo)
    path = Path(path)
    with steps("validate"):
        spec = load_pipeline(path, overrides=overrides)
        config_dict = spec.forecaster_config()
        from forecast.forecaster import parse_config

        config = parse_config(config_dict)
        digest = spec.digest()
        if not spec.data.path.is_file():
            raise DataError(f"{path}: data.path: {spec.data.path} does not exist; the path is "
                            "relative to the pipeline file's folder (or absolute).")
        sha256 = file_sha256(spec.data.path)
    result = PipelineResult(spec.name, path)
    previous = last_finished_run(spec.name, spec.experiment)
    if not force and unchanged_since(previous, sha256, digest):
        tags = previous.data.tags
        result.skipped, result.run_id = True, previous.info.run_id
        result.watermark = Watermark(sha256, tags.get("watermark.last_timestamp"))
        result.message = (
            f"pipeline {spec.name}: skipped — {spec.data.path.name} (sha256 {sha256[:12]}, last "
            f"timestamp {result.watermark.last_timestamp}) and the settings are unchanged since "
            f"run {previous.info.run_id}. Use --force to train anyway."
        )
        echo(result.message)
        return result

    tags = {TAG_NAME: spec.name, TAG_FILE: str(path.resolve()), TAG_SPEC: digest}
    try:
        with steps("ingest"):
            frame = _ingest(spec)
    except ForecastError as exc:
        _failed_run(spec, {**tags, "watermark.sha256": sha256}, exc)
        raise
    times = frame.index.get_level_values(-1)
    result.watermark = Watermark(sha256, str(times.max()) if len(times) else None)
    tags.update(result.watermark.tags())
    time_col = spec.data.time_col or frame.attrs.get("time_col") or frame.index.names[-1] or "time"

    from forecast.tracking.run import train_tracked

    started = time.perf_counter()
    echo("[train] ...")
    split = spec.split
    tracked = train_tracked(
        frame, config, source=str(spec.data.path), time_col=time_col, val=split.val,
        test=split.test, borders=split.borders, register=None, experiment=spec.experiment,
        run_name=spec.name, tags=tags,
    )
    report = tracked.report
    total = time.perf_counter() - started
    steps.add("train", report.seconds)
    steps.add("evaluate", max(total - report.seconds, 0.0))
    echo(f"[train] done in {report.seconds:.1f} s; [evaluate] done in "
         f"{steps.seconds['evaluate']:.1f} s")
    result.run_id, result.model_uri = tracked.run_id, tracked.model_uri
    wanted = spec.evaluate.metrics
    result.metrics = {
        "model": _selected(report.metrics["model"], wanted),
        "baselines": {name: _selected(values, wanted)
                      for name, values in report.metrics["baselines"].items()},
    }

    import mlflow

    with _resumed_run(tracked.run_id):
        if spec.evaluate.backtest_folds:
            fitted = config.model_copy(update={"lookback": report.forecaster.spec.lookback})
            with steps("backtest"):
                result.backtest = _backtest(spec, frame, fitted)
        if spec.register is not None:
            with steps("register"):
                result.version, result.promotion = _register(
                    spec, frame, tracked.model_uri, tracked.run_id)
        with steps("forecast"):
            forecast, source = _forecast(spec, frame, report.forecaster, time_col,
                                         result.version)
            result.forecast = forecast
            result.forecast_path = _log_forecast(spec, forecast)
            mlflow.set_tag("forecast.source", source)
        mlflow.log_metrics({f"step.{name}.seconds": seconds
                            for name, seconds in steps.seconds.items()})
    where = f" → {result.forecast_path}" if result.forecast_path else ""
    registered = (f"; {spec.register.name} version {result.version}: "
                  f"{(result.promotion or {}).get('decision')}" if result.version else "")
    result.steps = dict(steps.seconds)
    result.message = (f"pipeline {spec.name}: run {result.run_id} finished; forecast of "
                      f"{len(forecast)} steps from {source}{where}{registered}")
    echo(result.message)
    return result
