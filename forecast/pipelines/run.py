"""Running a pipeline file: validate → ingest → train → evaluate → backtest → register → forecast.

The whole run is ONE MLflow run (``forecast.tracking.run.train_tracked`` opens it and logs the
training and test evaluation; the later steps are added to the same run, which ends FINISHED, or
FAILED with the error as a tag). The run is tagged ``pipeline.name``, ``pipeline.file``,
``pipeline.spec_sha256`` and the data watermark (``watermark.sha256``,
``watermark.last_timestamp``); every step's wall time is the metric ``step.<name>.seconds``; the
forecast CSV is the artifact ``forecast/<file name>``.

``run_pipeline`` runs the step functions of ``forecast.pipelines.steps`` one after the other in
this process, sharing what they loaded; the Airflow DAG (``forecast.scheduling.airflow``) runs
the same functions as separate tasks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from forecast.pipelines import steps
from forecast.pipelines.state import StepState
from forecast.pipelines.watermark import Watermark
from forecast.progress import resolve as resolve_progress
from forecast.progress import using


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

    @classmethod
    def from_state(cls, state: StepState | dict,
                   forecast: pd.DataFrame | None = None) -> PipelineResult:
        """The result of a run from the state its steps returned (``forecast.pipelines.steps``).

        Args:
            state: the ``StepState`` after the last step that ran (``validate`` for a skipped
                run); a dict such as its ``to_dict()`` (e.g. the last Airflow XCom) is read with
                ``StepState.from_dict``.
            forecast: the forecast frame, when this process holds it.

        Returns:
            A ``PipelineResult``.

        Raises:
            ConfigError: ``state`` is a dict that ``StepState.from_dict`` refuses.
        """
        if not isinstance(state, StepState):
            state = StepState.from_dict(state)
        return cls(
            name=state.name, path=Path(state.path), skipped=state.skipped,
            message=state.message, run_id=state.run_id, metrics=dict(state.metrics or {}),
            backtest=state.backtest, model_uri=state.model_uri, version=state.version,
            promotion=state.promotion, forecast=forecast,
            forecast_path=Path(state.forecast_path) if state.forecast_path else None,
            steps={} if state.skipped else dict(state.steps),
            watermark=Watermark(state.sha256, state.last_timestamp),
        )


def run_pipeline(path, *, overrides=(), force: bool = False,
                 echo: Callable[[str], None] | None = None, progress=None) -> PipelineResult:
    """Runs a pipeline file end to end as one MLflow run.

    Steps (each timed as the metric ``step.<name>.seconds``): ``validate`` (the file and the
    overrides), ``ingest`` (``load_csv``), ``train`` and ``evaluate`` (test metrics beside the
    baselines, plots and the logged model: ``train_tracked``), ``backtest`` (when
    ``evaluate.backtest_folds`` is set), ``register`` (register + promotion backtest, when
    ``register`` is set), ``forecast`` (the champion — or the trained model — forecasts the
    horizon after the last row; written to ``forecast.path`` and logged as an artifact). They are
    the functions of ``forecast.pipelines.steps``, run here in one process.

    When the input file's bytes and the pipeline's settings are those of the last FINISHED run
    of the pipeline, nothing is trained: the result has ``skipped=True`` (``force=True``
    trains anyway).

    A run of the pipeline left RUNNING by a killed process of this host is first ended as KILLED
    (``validate``; ``forecast.tracking.stale``). With ``train.checkpoint_dir`` set, training
    resumes after the killed run's last finished epoch, and the new run is tagged
    ``forecast.resumes_run`` with the killed run's id (``forecast.tracking.resume``).

    Args:
        path: the pipeline YAML file.
        overrides: ``"dotted.key=value"`` settings applied before validation
            (``["window.horizon=48"]``); values are read as YAML.
        force: run even when the data has not changed.
        echo: called with one line per step (progress); default silent.
        progress: a ``forecast.progress`` display told of each finished step (``pipeline
            quickstart: step 3/6 train (40 s, ~25 s left)``; the epochs and folds inside the
            steps report to it too); None: the current one (``forecast.progress.current()``,
            silent unless set).

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
    cache = steps.Cache()
    display = resolve_progress(progress)
    with using(display), display.task("step", total=len(steps.STEPS),
                                      label=f"pipeline {Path(path).stem}") as task:
        state = steps.validate(path, overrides=overrides, force=force, echo=echo, cache=cache)
        task.relabel(f"pipeline {state.name}")
        task.advance(detail="validate" + (" (data unchanged: skipped)" if state.skipped else ""))
        if not state.skipped:
            for name in steps.STEPS[1:]:
                state = steps.run_step(name, state, echo=echo, cache=cache)
                task.advance(detail=name)
    return PipelineResult.from_state(state, cache.forecast)
