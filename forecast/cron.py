"""Cron lines and time zones, checked and made into APScheduler triggers (no scheduler needed)."""

from __future__ import annotations

from datetime import tzinfo


def check_timezone(name: str) -> tzinfo:
    """The ``zoneinfo`` time zone called ``name``.

    Raises:
        ValueError: an unknown name (e.g. ``Europe/Pariss``).
    """
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(str(name))
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {name!r}; use an IANA name such as UTC or Europe/Paris."
        ) from None


def cron_trigger(cron: str, timezone: str = "UTC"):
    """A ``CronTrigger`` from a crontab line.

    Args:
        cron: 5 fields ``minute hour day month day_of_week`` (``"0 2 * * *"``: 02:00 daily), or
            6 fields with the second first (``"*/5 * * * * *"``: every five seconds).
        timezone: an IANA time zone name.

    Returns:
        An ``apscheduler.triggers.cron.CronTrigger``.

    Raises:
        ValueError: a malformed line or time zone, naming what is wrong.
    """
    from apscheduler.triggers.cron import CronTrigger

    zone = check_timezone(timezone)
    fields = str(cron).split()
    try:
        if len(fields) == 5:
            return CronTrigger.from_crontab(" ".join(fields), timezone=zone)
        if len(fields) == 6:
            second, minute, hour, day, month, dow = fields
            return CronTrigger(second=second, minute=minute, hour=hour, day=day, month=month,
                               day_of_week=dow, timezone=zone)
    except ValueError as exc:
        raise ValueError(f"invalid cron {cron!r}: {exc}") from None
    raise ValueError(
        f"invalid cron {cron!r}: give 5 fields (minute hour day month weekday, e.g. "
        f"\"0 2 * * *\") or 6 with the second first; received {len(fields)}."
    )


def interval_trigger(seconds: float, timezone: str = "UTC"):
    """An ``IntervalTrigger`` firing every ``seconds``."""
    from apscheduler.triggers.interval import IntervalTrigger

    return IntervalTrigger(seconds=float(seconds), timezone=check_timezone(timezone))
