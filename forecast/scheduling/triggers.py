"""Schedules as APScheduler triggers: the checks live in ``forecast.cron`` (below both the
pipeline spec and the scheduler, so validating a pipeline never imports the scheduler)."""

from forecast.cron import check_timezone, cron_trigger, interval_trigger

__all__ = ["check_timezone", "cron_trigger", "interval_trigger"]
