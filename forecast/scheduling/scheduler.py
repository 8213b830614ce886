"""The embedded scheduler: pipelines on their cron, persisted in SQLite, never overlapping.

``forecast schedule FILE...`` runs each pipeline file on its ``schedule`` with APScheduler 3.x:

* triggers: ``schedule.cron`` (5-field crontab, or 6 fields with the second first) in
  ``schedule.timezone``; ``schedule.interval_seconds`` or ``--every SECONDS`` for tests/debugging;
* a SQLAlchemy job store in SQLite (default ``schedules.db`` beside the MLflow SQLite store, see
  ``default_store``): schedules survive a restart — ``forecast schedule`` with no files runs what
  the store holds;
* one job per pipeline, id = the pipeline's name, added by text reference
  (``forecast.scheduling.jobs:run_pipeline_job``, args ``[absolute path]``) with
  ``replace_existing=True``;
* ``max_instances=1`` and ``coalesce=True``: a run that is still going when the next one is due
  makes the scheduler skip that one (no overlap), and runs missed while it was down are folded
  into one (no pile-up), if within ``misfire_grace_time``;
* every run is a subprocess (``jobs.run_pipeline_job``); a failure is logged and the scheduler
  carries on; SIGINT/SIGTERM stop it cleanly (running pipelines get SIGINT, their runs end
  KILLED).

Example:
    >>> scheduler = PipelineScheduler("mlflow/schedules.db")
    >>> scheduler.add_pipeline("pipelines/nightly.yaml")
    >>> scheduler.run_forever()            # until Ctrl-C / SIGTERM
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from forecast.errors import ConfigError
from forecast.paths import PROJECT_ROOT
from forecast.scheduling.jobs import PIPELINE_JOB, stop_running_jobs
from forecast.scheduling.triggers import check_timezone, cron_trigger, interval_trigger

logger = logging.getLogger("forecast.scheduling")

STORE_FILE = "schedules.db"
DEFAULT_MISFIRE_GRACE = 3600


def default_store() -> Path:
    """Where schedules are kept when ``--store`` is not given.

    Beside the MLflow store: the folder of ``MLFLOW_TRACKING_URI`` when it is a
    ``sqlite:///`` URI; else ``<project>/mlflow/schedules.db`` inside the project checkout;
    else ``./schedules.db``.
    """
    uri = os.environ.get("MLFLOW_TRACKING_URI", "")
    if uri.startswith("sqlite:///"):
        return Path(uri.removeprefix("sqlite:///")).parent / STORE_FILE
    if uri:
        return Path.cwd() / STORE_FILE
    from forecast.tracking.mlflow import _in_project_checkout

    if _in_project_checkout():
        return PROJECT_ROOT / "mlflow" / STORE_FILE
    return Path.cwd() / STORE_FILE


@dataclass(frozen=True)
class ScheduledJob:
    """One stored schedule, as ``forecast schedule --list`` shows it."""

    id: str
    func: str
    args: tuple
    trigger: str
    next_run_time: datetime | None

    def to_dict(self) -> dict:
        return {"id": self.id, "func": self.func, "args": list(self.args),
                "trigger": self.trigger,
                "next_run_time": self.next_run_time.isoformat() if self.next_run_time else None}


class PipelineScheduler:
    """A BackgroundScheduler over a SQLite job store, set up so runs never overlap.

    Args:
        store: the SQLite file of the job store (created when missing); default
            ``default_store()``.
        max_workers: threads running jobs at the same time (different pipelines).

    Raises:
        ConfigError: the store's folder cannot be created.
    """

    def __init__(self, store: str | Path | None = None, *, max_workers: int = 4):
        from apscheduler.executors.pool import ThreadPoolExecutor
        from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
        from apscheduler.schedulers.background import BackgroundScheduler

        self.store = Path(store) if store is not None else default_store()
        try:
            self.store.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"--store: cannot create the folder of {self.store}: {exc}") from None
        self.scheduler = BackgroundScheduler(
            jobstores={"default": SQLAlchemyJobStore(url=f"sqlite:///{self.store.resolve()}")},
            executors={"default": ThreadPoolExecutor(max_workers=max_workers)},
            job_defaults={"coalesce": True, "max_instances": 1,
                          "misfire_grace_time": DEFAULT_MISFIRE_GRACE},
            timezone=check_timezone("UTC"),
        )
        self._stop = threading.Event()

    # -- jobs ---------------------------------------------------------------------------------

    def add_job(self, job_id: str, func: str, args=(), *, trigger,
                misfire_grace_time: int = DEFAULT_MISFIRE_GRACE):
        """Adds (or replaces) a job given by text reference ``"package.module:function"``.

        Args:
            job_id: the job's id (a pipeline's name).
            func: the text reference of the function; it must be importable by the scheduler.
            args: plain positional arguments (stored in the job store).
            trigger: an APScheduler trigger (``triggers.cron_trigger``/``interval_trigger``).
            misfire_grace_time: seconds a late run may still start.

        Returns:
            The APScheduler ``Job``.
        """
        if not isinstance(func, str) or ":" not in func:
            raise ConfigError(f"a job is a text reference 'package.module:function'. "
                              f"Received: {func!r}.")
        return self.scheduler.add_job(
            func, trigger=trigger, args=list(args), id=job_id, name=job_id,
            replace_existing=True, max_instances=1, coalesce=True,
            misfire_grace_time=misfire_grace_time,
        )

    def add_pipeline(self, path, *, every: float | None = None):
        """Schedules a pipeline file on its ``schedule`` (or every ``every`` seconds).

        Args:
            path: the pipeline YAML (validated now; stored as an absolute path).
            every: seconds between runs, overriding the file's schedule (tests, debugging).

        Returns:
            The APScheduler ``Job`` (id = the pipeline's name).

        Raises:
            ConfigError: an invalid file, or one without a ``schedule`` section and no ``every``.
        """
        from forecast.pipelines.spec import load_pipeline

        path = Path(path).resolve()
        spec = load_pipeline(path)
        schedule = spec.schedule
        timezone = schedule.timezone if schedule else "UTC"
        grace = schedule.misfire_grace_seconds if schedule else DEFAULT_MISFIRE_GRACE
        if every is not None:
            if every <= 0:
                raise ConfigError(f"--every must be a positive number of seconds. "
                                  f"Received: {every}.")
            trigger = interval_trigger(every, timezone)
        elif schedule is None:
            raise ConfigError(
                f"{path}: pipeline {spec.name} has no schedule section; add one, e.g. "
                "schedule: {cron: \"0 2 * * *\", timezone: UTC}, or pass --every SECONDS."
            )
        elif schedule.interval_seconds is not None:
            trigger = interval_trigger(schedule.interval_seconds, timezone)
        else:
            trigger = cron_trigger(schedule.cron, timezone)
        job = self.add_job(spec.name, PIPELINE_JOB, [str(path)], trigger=trigger,
                           misfire_grace_time=grace)
        logger.info("scheduled pipeline %s (%s): %s", spec.name, path, trigger)
        return job

    def remove(self, job_id: str) -> None:
        """Removes a stored schedule.

        Raises:
            ConfigError: no job has that id (the message lists the ones stored).
        """
        from apscheduler.jobstores.base import JobLookupError

        self._open()
        try:
            self.scheduler.remove_job(job_id)
        except JobLookupError:
            known = ", ".join(j.id for j in self.jobs()) or "none"
            raise ConfigError(f"no schedule named {job_id!r} in {self.store}; stored: "
                              f"{known}.") from None

    def jobs(self) -> list[ScheduledJob]:
        """Every stored job with its next run time (opens the store if needed)."""
        self._open()
        return [
            ScheduledJob(job.id, job.func_ref, tuple(job.args), str(job.trigger),
                         getattr(job, "next_run_time", None))
            for job in self.scheduler.get_jobs()
        ]

    # -- lifecycle ----------------------------------------------------------------------------

    def _open(self) -> None:
        """Starts the scheduler paused, so stored jobs can be read and added without running."""
        from apscheduler.schedulers.base import STATE_STOPPED

        if self.scheduler.state == STATE_STOPPED:
            self.scheduler.start(paused=True)

    def start(self) -> None:
        """Starts running jobs in background threads (returns at once)."""
        from apscheduler.schedulers.base import STATE_PAUSED, STATE_STOPPED

        if self.scheduler.state == STATE_STOPPED:
            self.scheduler.start()
        elif self.scheduler.state == STATE_PAUSED:
            self.scheduler.resume()

    def shutdown(self, *, wait: bool = True, stop_jobs: bool = False) -> None:
        """Stops the scheduler; with ``stop_jobs`` running pipeline subprocesses get SIGINT."""
        from apscheduler.schedulers.base import STATE_STOPPED

        if stop_jobs:
            stop_running_jobs()
        if self.scheduler.state != STATE_STOPPED:
            self.scheduler.shutdown(wait=wait)

    def stop(self) -> None:
        """Asks ``run_forever`` to return (thread- and signal-safe)."""
        self._stop.set()

    def run_forever(self, on_ready=None) -> None:
        """Runs until SIGINT/SIGTERM (or ``stop()``), then shuts down cleanly.

        Args:
            on_ready: called once the signal handlers are installed and jobs run.

        Signal handlers are installed only when called from the main thread.
        """
        previous = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                previous[sig] = signal.signal(sig, lambda signum, frame: self._stop.set())
        try:
            self.start()
            for job in self.jobs():
                logger.info("job %s: next run at %s", job.id, job.next_run_time)
            if on_ready is not None:
                on_ready()
            while not self._stop.wait(1.0):
                pass
            logger.info("stopping the scheduler ...")
        finally:
            self.shutdown(wait=True, stop_jobs=True)
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            logger.info("scheduler stopped")
