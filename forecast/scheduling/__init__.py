"""Scheduling pipelines: the embedded cron scheduler (APScheduler 3.x, SQLite job store).

>>> from forecast.scheduling import PipelineScheduler
>>> scheduler = PipelineScheduler()                  # mlflow/schedules.db by default
>>> scheduler.add_pipeline("pipelines/nightly.yaml")
>>> scheduler.run_forever()
"""

from forecast.scheduling.jobs import PIPELINE_JOB, run_pipeline_job
from forecast.scheduling.scheduler import PipelineScheduler, ScheduledJob, default_store
from forecast.scheduling.triggers import cron_trigger, interval_trigger

__all__ = [
    "PIPELINE_JOB",
    "PipelineScheduler",
    "ScheduledJob",
    "cron_trigger",
    "default_store",
    "interval_trigger",
    "run_pipeline_job",
]
