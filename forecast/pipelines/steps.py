"""A pipeline run as steps that can each run in a process of their own.

``validate → ingest → train (+ evaluate) → backtest → register → forecast``

Every step takes the *state* — a ``StepState`` (``forecast.pipelines.state``): what the earlier
steps returned (the pipeline file and overrides, the settings hash, the data's SHA-256, the
MLflow run id, the model URI, the registered version, ...), JSON-ready — and returns a copy with
its own part added (a dict such as ``StepState.to_dict()`` wrote is accepted too). A step
reloads what it needs: the pipeline file (checked unchanged against the settings hash
``validate`` recorded), the CSV (checked unchanged against its SHA-256) and the trained model
(from the MLflow run), unless the ``Cache`` it is given already holds them. ``run_pipeline``
passes one cache through all the steps (one process, nothing reloaded); the Airflow DAG
(``forecast.scheduling.airflow``) runs each step in a fresh process and passes the state through
XCom (``to_dict()`` there, ``StepState.from_dict`` here).

``train`` opens the pipeline's MLflow run (``train_tracked``); ``backtest``, ``register`` and
``forecast`` reopen the SAME run to add to it; each ends it FINISHED again, or FAILED with the
error as a tag. The data watermark tag ``watermark.sha256`` is set by the last step only, so a
run that did not get through every step never makes a later run skip.

Example:
    >>> state = validate("pipelines/quickstart.yaml", overrides=["train.epochs=1"])
    >>> if not state.skipped:
    ...     for step in (ingest, train, backtest, register, forecast):
    ...         state = step(state)                     # any step may run in a new process
    >>> state.run_id, state.forecast_path
"""

from __future__ import annotations

import contextlib
import copy
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from forecast.data.dataset import attach, describe
from forecast.errors import ConfigError, DataError, ForecastError
from forecast.pipelines.spec import PipelineSpec, load_pipeline
from forecast.pipelines.state import StepState
from forecast.pipelines.watermark import (
    TAG_FILE,
    TAG_LAST_TIMESTAMP,
    TAG_NAME,
    TAG_SHA256,
    TAG_SPEC,
    Watermark,
    file_sha256,
    last_finished_run,
    unchanged_since,
)

#: the steps in the order they run (``validate`` takes the path, the others the state).
STEPS = ("validate", "ingest", "train", "backtest", "register", "forecast")

Echo = Callable[[str], None]


@dataclass
class Cache:
    """What the calling process already holds, so a step need not reload it.

    Attributes:
        spec: the validated ``PipelineSpec``.
        frame: the ingested data frame.
        forecaster: the fitted ``Forecaster`` of the run.
        forecast: the forecast frame (set by ``forecast``).
    """

    spec: PipelineSpec | None = None
    frame: pd.DataFrame | None = None
    forecaster: Any = None
    forecast: pd.DataFrame | None = None


def _silent(line: str) -> None:
    pass


@contextlib.contextmanager
def _timed(state: StepState, name: str, echo: Echo):
    """Times the block as ``state.steps[name]`` and reports it through ``echo``."""
    echo(f"[{name}] ...")
    started = time.perf_counter()
    yield
    state.steps[name] = time.perf_counter() - started
    echo(f"[{name}] done in {state.steps[name]:.1f} s")


# -- reloading what an earlier step had ---------------------------------------------------------


def _spec(state: StepState, cache: Cache) -> PipelineSpec:
    """The pipeline's spec: cached, or the file read again and checked unchanged.

    Raises:
        ConfigError: the file (or what it resolves to) changed since ``validate``.
    """
    if cache.spec is None:
        spec = load_pipeline(state.path, overrides=state.overrides)
        if spec.digest() != state.digest:
            raise ConfigError(
                f"{state.path}: the pipeline file changed while the pipeline was running "
                f"(its settings no longer match those validated at the start of run "
                f"{state.run_id or '(not started)'}); run the pipeline again."
            )
        cache.spec = spec
    return cache.spec


def _config(spec: PipelineSpec):
    from forecast.options import parse_config

    return parse_config(spec.forecaster_config())


def _load_frame(spec: PipelineSpec) -> pd.DataFrame:
    from forecast.data import load_csv

    data = spec.data
    lookback = spec.window.lookback or 1
    frame = load_csv(
        data.path, time_col=data.time_col, targets=data.targets,
        covariates=data.input_covariates(), id_col=data.id_col, freq=data.freq, fill=data.fill,
        duplicates=data.duplicates, future_rows=bool(data.future_covariates),
        # many series: training leaves out (with a warning) those too short for a window
        max_gap=data.max_gap, min_rows=None if data.id_col else lookback + spec.window.horizon,
        min_rows_reason=f"lookback {lookback} + horizon {spec.window.horizon}",
        reading=data.reading(),
    )
    if data.static:  # each series' static values, kept with the frame
        from forecast.data.io import add_static

        frame = add_static(frame, data.path, data.static, sep=data.reading().sep)
    return frame


def _frame(state: StepState, spec: PipelineSpec, cache: Cache, *,
           future_rows: bool = False) -> pd.DataFrame:
    """The data: cached, or the CSV loaded again after checking its bytes are unchanged.

    With ``data.future_covariates`` the file may end (per series) in the rows that give the
    future covariates' values over the horizon, their target cells empty: the forecast step
    reads them (``future_rows=True``); every other step reads the history alone.

    Args:
        state, spec, cache: the run's state, pipeline and cache.
        future_rows: keep those rows.

    Returns:
        The frame (``load_csv`` output).

    Raises:
        DataError: the CSV changed since ``validate`` hashed it (or cannot be loaded).
    """
    if cache.frame is None:
        path = spec.data.path
        try:
            sha256 = file_sha256(path)
        except OSError as exc:
            raise DataError(f"{state.path}: data.path: {path} cannot be read: {exc}") from None
        if sha256 != state.sha256:
            raise DataError(
                f"{state.path}: data.path: {path} changed while the pipeline was running "
                f"(SHA-256 {sha256[:12]}, validated as {(state.sha256 or '')[:12]}); the next run "
                "trains on the new data."
            )
        cache.frame = _load_frame(spec)
    frame = cache.frame
    if future_rows or not spec.data.future_covariates:
        return frame
    targets = list(describe(frame).targets)
    return attach(frame[frame[targets].notna().any(axis=1)].copy(), describe(frame))


def _forecaster(state: StepState, cache: Cache):
    """The run's fitted forecaster: cached, or loaded from the model logged in the run."""
    if cache.forecaster is None:
        from forecast.serving.load import load_model

        cache.forecaster = load_model(state.model_uri).unwrap_python_model().forecaster
    return cache.forecaster


def _resumed_run(run_id: str):
    """Reopens the pipeline's run to add to it: ``tracked_run(run_id=...)``, which ends it
    FINISHED again (dropping an earlier attempt's error tags), or FAILED with the error."""
    from forecast.tracking.mlflow import tracked_run

    return tracked_run(run_id=run_id)


def _run_spec(state: StepState, cache: Cache) -> PipelineSpec:
    """``_spec`` for the steps after ``train``: a changed file also marks the run FAILED."""
    try:
        return _spec(state, cache)
    except ForecastError as exc:
        with contextlib.suppress(type(exc)), _resumed_run(state.run_id):
            raise exc
        raise


def _failed_run(spec: PipelineSpec, tags: dict, exc: BaseException) -> None:
    """Records a run that failed before training as a FAILED MLflow run carrying the error."""
    from forecast.tracking.mlflow import tracked_run

    with contextlib.suppress(type(exc)), tracked_run(spec.name, experiment=spec.experiment,
                                                     tags=tags):
        raise exc


def _start(state: StepState | dict, echo: Echo | None,
           cache: Cache | None) -> tuple[StepState, Echo, Cache]:
    """A step's own copy of the state (a dict is read with ``StepState.from_dict``, which
    raises ConfigError on an unknown key), the echo and the cache."""
    own = copy.deepcopy(state) if isinstance(state, StepState) else StepState.from_dict(state)
    return own, echo or _silent, cache if cache is not None else Cache()


def _run_tags(state: StepState) -> dict:
    return {TAG_NAME: state.name, TAG_FILE: str(Path(state.path).resolve()),
            TAG_SPEC: state.digest}


def _selected(metrics: dict, names) -> dict:
    return {k: v for k, v in metrics.items() if k in names}


def _end_stale_runs(spec: PipelineSpec, echo: Echo) -> None:
    """Ends the pipeline's runs left RUNNING by a killed process of this host as KILLED
    (``forecast.tracking.stale``), saying so through ``echo``."""
    import mlflow

    from forecast.tracking.mlflow import store_errors, use_store
    from forecast.tracking.stale import end_stale_runs

    uri, _ = use_store()
    with store_errors(uri):
        experiment = mlflow.get_experiment_by_name(spec.experiment)
    if experiment is None:
        return
    report = end_stale_runs([experiment.experiment_id], tags={TAG_NAME: spec.name},
                            ended_by=f"the next run of pipeline {spec.name}")
    for line, run in zip(report.lines(), report.runs, strict=True):
        if run.ended:
            echo(f"[validate] {line}")


# -- the steps ----------------------------------------------------------------------------------


def validate(path, *, overrides=(), force: bool = False, echo: Echo | None = None,
             cache: Cache | None = None) -> StepState:
    """Validates the file and the overrides, hashes the data, and decides whether to skip.

    Args:
        path: the pipeline YAML file.
        overrides: ``"dotted.key=value"`` settings applied before validation.
        force: never skip.
        echo: called with one line per step (progress); default silent.
        cache: filled with the spec for the next steps of this process.

    Returns:
        A new ``StepState``: ``path``, ``overrides``, ``name``, ``experiment``, ``digest`` (the
        settings hash), ``sha256`` (the data file's), ``skipped`` — True when the data file's
        bytes and the settings are those of the last FINISHED run of the pipeline (``run_id`` is
        then that run's, ``last_timestamp`` its watermark, ``message`` says so) — and ``steps``
        (seconds per step).

    Before deciding, the pipeline's runs left RUNNING by a process of this host that is gone
    (killed) are ended as KILLED, tagged ``forecast.ended_by`` = "the next run of pipeline
    NAME" (``forecast.tracking.stale``).

    Raises:
        ConfigError: the file or an override is invalid (nothing is recorded).
        DataError: ``data.path`` does not exist.
    """
    echo = echo or _silent
    cache = cache if cache is not None else Cache()
    path = Path(path)
    state = StepState(path=str(path), overrides=[str(o) for o in overrides or ()])
    with _timed(state, "validate", echo):
        spec = load_pipeline(path, overrides=overrides)
        config = _config(spec)  # the model settings as the forecaster reads them (ConfigError)
        if config.train.strategy == "multi_worker":
            raise ConfigError(
                f"{path}: train.strategy: multi_worker trains across processes that must all run "
                "the same training, while a pipeline also registers, promotes and forecasts on "
                "one machine. Use `forecast train --strategy multi_worker` on every worker "
                "(the chief logs the model; register it afterwards), or train.strategy: mirrored "
                "for the devices of one machine."
            )
        if not spec.data.path.is_file():
            raise DataError(f"{path}: data.path: {spec.data.path} does not exist; the path is "
                            "relative to the pipeline file's folder (or absolute).")
        state.name, state.experiment = spec.name, spec.experiment
        state.digest, state.sha256 = spec.digest(), file_sha256(spec.data.path)
    cache.spec = spec
    _end_stale_runs(spec, echo)
    previous = last_finished_run(spec.name, spec.experiment)
    if not force and unchanged_since(previous, state.sha256, state.digest):
        last = previous.data.tags.get(TAG_LAST_TIMESTAMP)
        state.skipped, state.run_id, state.last_timestamp = True, previous.info.run_id, last
        state.message = (
            f"pipeline {spec.name}: skipped — {spec.data.path.name} (sha256 "
            f"{state.sha256[:12]}, last timestamp {last}) and the settings are unchanged "
            f"since run {previous.info.run_id}. Use --force to train anyway."
        )
        echo(state.message)
    return state


def ingest(state: StepState | dict, *, echo: Echo | None = None,
           cache: Cache | None = None) -> StepState:
    """Loads and checks the CSV (``load_csv``); adds ``last_timestamp`` and ``time_col``.

    Args:
        state: what ``validate`` returned.
        echo, cache: as for ``validate``.

    Returns:
        The state with ``last_timestamp`` (the watermark: the last timestamp in the data) and
        ``time_col`` (the time column's name in the raw data).

    Raises:
        DataError: the data cannot be used (or changed since ``validate``); a FAILED MLflow run
            records the error.
    """
    state, echo, cache = _start(state, echo, cache)
    spec = _spec(state, cache)
    try:
        with _timed(state, "ingest", echo):
            frame = _frame(state, spec, cache)
    except ForecastError as exc:
        _failed_run(spec, {**_run_tags(state), TAG_SHA256: state.sha256}, exc)
        raise
    times = frame.index.get_level_values(-1)
    state.last_timestamp = str(times.max()) if len(times) else None
    state.time_col = spec.data.time_col or describe(frame).time_col or "time"
    return state


def train(state: StepState | dict, *, echo: Echo | None = None,
          cache: Cache | None = None) -> StepState:
    """Trains and evaluates in a new MLflow run (``train_tracked``): the pipeline's run.

    Args:
        state: what ``ingest`` returned.
        echo, cache: as for ``validate``.

    Returns:
        The state with ``run_id``, ``model_uri`` (the logged model), ``lookback`` (the fitted
        one), ``metrics`` (the test metrics named in ``evaluate.metrics``: ``{"model": {...},
        "baselines": {name: {...}}}``) and the ``train`` and ``evaluate`` seconds.

    Raises:
        ForecastError: training failed; the run is FAILED with the message.
    """
    from forecast.tracking.run import train_tracked
    from forecast.workflow import versus_best_baseline

    state, echo, cache = _start(state, echo, cache)
    spec = _spec(state, cache)
    frame = _frame(state, spec, cache)
    tags = _run_tags(state)
    if state.last_timestamp is not None:
        tags[TAG_LAST_TIMESTAMP] = state.last_timestamp
    started = time.perf_counter()
    echo("[train] ...")
    split = spec.split
    tracked = train_tracked(
        frame, _config(spec), source=str(spec.data.path), time_col=state.time_col,
        val=split.val, test=split.test, borders=split.borders, register=None,
        experiment=spec.experiment, run_name=spec.name, tags=tags, end_stale=False,
        fill=spec.data.fill, max_gap=spec.data.max_gap, intervals=spec.evaluate.intervals,
    )
    report = tracked.report
    if tracked.resumed:
        echo(f"[train] {tracked.resumed['message']}")
    total = time.perf_counter() - started
    state.steps["train"] = report.seconds
    state.steps["evaluate"] = max(total - report.seconds, 0.0)
    echo(f"[train] {report.forecaster.resolved.summary()}")
    if report.forecaster.blend is not None:  # train.blend_linear: the share chosen on val
        echo(f"[train] {report.forecaster.blend.describe()}")
    echo(f"[evaluate] {versus_best_baseline(report.metrics)}")
    if report.intervals:  # evaluate.intervals: test coverage beside each nominal level
        covered = ", ".join(f"{label} % covers {scores['coverage']:.3f}"
                            for label, scores in report.intervals["model"].items())
        echo(f"[evaluate] conformal intervals on the test part: {covered} (calibrated on "
             f"{report.intervals['n_calibration']} validation windows)")
    echo(f"[train] done in {report.seconds:.1f} s; [evaluate] done in "
         f"{state.steps['evaluate']:.1f} s")
    cache.forecaster = report.forecaster
    wanted = spec.evaluate.metrics
    state.run_id, state.model_uri = tracked.run_id, tracked.model_uri
    state.lookback = int(report.forecaster.spec.lookback)
    state.metrics = {"model": _selected(report.metrics["model"], wanted),
                     "baselines": {name: _selected(values, wanted)
                                   for name, values in report.metrics["baselines"].items()}}
    return state


def backtest(state: StepState | dict, *, echo: Echo | None = None,
             cache: Cache | None = None) -> StepState:
    """The rolling-origin backtest of ``evaluate.backtest_folds``, logged to the run.

    Does nothing (returns the state as given) when ``evaluate.backtest_folds`` is not set.

    Args:
        state: what ``train`` returned.
        echo, cache: as for ``validate``.

    Returns:
        The state with ``backtest`` (the report: ``{"model", "baselines", "folds"}``, and
        ``"intervals"`` with ``evaluate.intervals``).

    Raises:
        ForecastError: the backtest failed; the run is FAILED with the message.
    """
    from forecast.tracking.mlflow import log_metric_tables
    from forecast.workflow import run_backtest

    state, echo, cache = _start(state, echo, cache)
    spec = _run_spec(state, cache)
    if not spec.evaluate.backtest_folds:
        return state
    config = _config(spec)
    train_update = {"verbose": 0}
    if spec.evaluate.backtest_epochs is not None:
        train_update["epochs"] = spec.evaluate.backtest_epochs
    config = config.model_copy(update={"lookback": state.lookback,
                                       "train": config.train.model_copy(update=train_update)})
    import mlflow

    with _resumed_run(state.run_id), _timed(state, "backtest", echo):
        frame = _frame(state, spec, cache)
        report = run_backtest(frame, config, folds=spec.evaluate.backtest_folds,
                              intervals=spec.evaluate.intervals)
        log_metric_tables("backtest.model", report["model"])
        for name, values in report["baselines"].items():
            log_metric_tables(f"backtest.{name}", values)
        if report.get("intervals"):  # evaluate.intervals, each fold calibrated on its own
            from forecast.tracking.run import log_interval_metrics

            log_interval_metrics(report["intervals"], prefix="backtest")
            covered = ", ".join(f"{label} % covers {scores['coverage']:.3f}" for label, scores
                                in report["intervals"]["model"].items())
            echo(f"[backtest] conformal intervals, mean over the folds' test parts: {covered}")
        if report.get("per_series"):  # a global model: each series over the folds
            from forecast.tracking.run import log_per_series

            log_per_series(report["per_series"], prefix="backtest")
        mlflow.log_dict(report, "backtest.json")
    state.backtest = report
    return state


def _registered_version(name: str, run_id: str):
    """The version of ``name`` already registered from ``run_id`` (a retried step), or None."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    try:
        found = MlflowClient().search_model_versions(f"name = '{name}' and run_id = '{run_id}'")
    except MlflowException:
        return None
    from forecast.tracking.registry import KIND_NETWORK, TAG_KIND

    # the run's own model, not a baseline that promotion registered from the same run
    found = [v for v in found if v.tags.get(TAG_KIND, KIND_NETWORK) == KIND_NETWORK]
    return max(found, key=lambda v: int(v.version)) if found else None


def register(state: StepState | dict, *, echo: Echo | None = None,
             cache: Cache | None = None) -> StepState:
    """Registers the run's model; promotion decides the champion (``register_and_promote``:
    the model, the current champion or the best baseline on the same backtest folds).

    Does nothing when the pipeline has no ``register`` section. A retried step reuses the
    version it registered before.

    Args:
        state: what ``train`` (or ``backtest``) returned.
        echo, cache: as for ``validate``.

    Returns:
        The state with ``version`` and ``promotion`` (the promotion decision as a dict).

    Raises:
        ForecastError: registering or the promotion backtest failed; the run is FAILED.
    """
    from forecast.evaluation.promotion import promote_if_better, register_and_promote

    state, echo, cache = _start(state, echo, cache)
    spec = _run_spec(state, cache)
    reg = spec.register
    if reg is None:
        return state
    import mlflow

    with _resumed_run(state.run_id), _timed(state, "register", echo):
        frame = _frame(state, spec, cache)
        rule = {"metric": reg.promotion_metric, "folds": reg.promotion_folds,
                "epochs": reg.promotion_epochs,
                "allow_worse_than_baseline": reg.allow_worse_than_baseline}
        version = _registered_version(reg.name, state.run_id)
        if version is None:
            decision = register_and_promote(state.model_uri, reg.name, frame,
                                            run_id=state.run_id, tags={TAG_NAME: spec.name},
                                            **rule)
        else:  # a retried step: decide on the version it registered before
            decision = promote_if_better(reg.name, version.version, frame, **rule)
        promotion = decision.to_dict()
        echo(f"[register] {reg.name} version {decision.version}: {decision.reason}")
        mlflow.set_tags({"registry.name": reg.name, "registry.version": decision.version,
                         "registry.promoted": str(decision.promoted),
                         "registry.champion": str(decision.champion_version)})
    state.version, state.promotion = decision.version, promotion
    return state


def _predict(spec: PipelineSpec, frame: pd.DataFrame, state: StepState,
             cache: Cache) -> tuple[pd.DataFrame, str]:
    """The forecast after the last row: the registered champion's, or the trained model's."""
    time_col, version = state.time_col, state.version
    if spec.register is not None:
        from forecast.tracking.registry import champion_version

        champion = champion_version(spec.register.name)
        if champion is not None and str(champion) != str(version):
            from forecast.serving.load import load_model

            uri = f"models:/{spec.register.name}@champion"
            model = load_model(uri)
            forecast = model.predict(_raw_history(frame, time_col))
            return pd.DataFrame(forecast), f"{uri} (version {champion})"
    forecast = _forecaster(state, cache).predict(frame)
    source = (f"models:/{spec.register.name}/{version}" if version else "the trained model")
    if isinstance(frame.index, pd.MultiIndex):  # a global model: already long format
        return forecast.rename(columns={frame.index.names[-1]: time_col}), source
    forecast.index = forecast.index.rename(time_col)
    return forecast.reset_index(), source


def _raw_history(frame: pd.DataFrame, time_col: str) -> pd.DataFrame:
    """The frame as the served model takes it: the time column (and, for many series, the id
    column) back as columns."""
    from forecast.serving.pyfunc import as_raw_history

    return as_raw_history(frame, time_col)


def _write_forecast(spec: PipelineSpec, forecast: pd.DataFrame) -> Path | None:
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


def forecast(state: StepState | dict, *, echo: Echo | None = None,
             cache: Cache | None = None) -> StepState:
    """Forecasts the horizon after the last row; logs the step times and the watermark.

    The registered champion forecasts when there is one other than this run's version;
    otherwise the run's model (reloaded from MLflow when not cached). The forecast goes to
    ``forecast.path`` and into the run as the artifact ``forecast/<file name>``. Then the run
    gets ``step.<name>.seconds`` for every step and the watermark tags: the pipeline is done.

    Args:
        state: what the earlier steps returned.
        echo, cache: as for ``validate``; ``cache.forecast`` receives the forecast frame.

    Returns:
        The state with ``forecast_path`` (or None), ``forecast_rows``, ``forecast_source`` and
        ``message`` (one line saying what the run did).

    Raises:
        ForecastError: forecasting or writing the file failed; the run is FAILED.
    """
    import mlflow

    state, echo, cache = _start(state, echo, cache)
    spec = _run_spec(state, cache)
    with _resumed_run(state.run_id):
        with _timed(state, "forecast", echo):
            frame = _frame(state, spec, cache, future_rows=True)
            frame_out, source = _predict(spec, frame, state, cache)
            path = _write_forecast(spec, frame_out)
            mlflow.set_tag("forecast.source", source)
        mlflow.log_metrics({f"step.{name}.seconds": seconds
                            for name, seconds in state.steps.items()})
        mlflow.set_tags(Watermark(state.sha256, state.last_timestamp).tags())
    cache.forecast = frame_out
    where = f" → {path}" if path else ""
    registered = (f"; {spec.register.name} version {state.version}: "
                  f"{(state.promotion or {}).get('decision')}"
                  if state.version else "")
    state.forecast_path = str(path) if path else None
    state.forecast_rows, state.forecast_source = len(frame_out), source
    state.message = (f"pipeline {spec.name}: run {state.run_id} finished; forecast of "
                     f"{len(frame_out)} steps from {source}{where}{registered}")
    echo(state.message)
    return state


def run_step(name: str, state: StepState | dict, *, echo: Echo | None = None,
             cache: Cache | None = None) -> StepState:
    """Runs the step called ``name`` (one of ``STEPS`` after ``validate``) on ``state``.

    Args:
        name: the step.
        state: what the step before returned: a ``StepState``, or a dict such as its
            ``to_dict()`` (e.g. an Airflow XCom), read with ``StepState.from_dict``.
        echo, cache: as for ``validate``.

    Returns:
        The new ``StepState`` (``state`` itself is not changed).

    Raises:
        ConfigError: an unknown step name, or a dict ``StepState.from_dict`` refuses (it names
            the unknown key or the wrong value).
        ForecastError: the step failed (see the step).
    """
    steps = {"ingest": ingest, "train": train, "backtest": backtest, "register": register,
             "forecast": forecast}
    if name not in steps:
        raise ConfigError(f"unknown pipeline step {name!r}; the steps after validate are "
                          f"{', '.join(steps)}.")
    return steps[name](state, echo=echo, cache=cache)
