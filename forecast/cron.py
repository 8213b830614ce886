"""Cron lines and time zones, checked and made into APScheduler triggers (no scheduler needed)."""

from __future__ import annotations

from datetime import datetime, timedelta, tzinfo

from forecast.errors import cut, shown


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
    trigger = None
    try:
        if len(fields) == 5:
            trigger = CronTrigger.from_crontab(" ".join(fields), timezone=zone)
        elif len(fields) == 6:
            second, minute, hour, day, month, dow = fields
            trigger = CronTrigger(second=second, minute=minute, hour=hour, day=day, month=month,
                                  day_of_week=dow, timezone=zone)
    except ValueError as exc:
        raise ValueError(f"invalid cron {shown(cron)}: {cut(str(exc), 200)}") from None
    if trigger is None:
        raise ValueError(
            f"invalid cron {shown(cron)}: give 5 fields (minute hour day month weekday, e.g. "
            f"\"0 2 * * *\") or 6 with the second first; received {len(fields)}."
        )
    check_fires(trigger, cron)
    return trigger


#: how far ahead ``check_fires`` looks for a time a cron line matches.
FIRES_WITHIN = timedelta(days=5 * 366)


def check_fires(trigger, cron: str = "", now: datetime | None = None):
    """Refuses a trigger that never fires (``0 0 30 2 *``: 30 February) within ``FIRES_WITHIN``.

    Args:
        trigger: an APScheduler trigger.
        cron: the line it came from, for the message.
        now: the time to look from (default: now).

    Returns:
        The next fire time.

    Raises:
        ValueError: no fire time within five years, naming the line.
    """
    import copy

    now = now or datetime.now(trigger.timezone)
    horizon = now + FIRES_WITHIN
    probe = copy.copy(trigger)
    if getattr(probe, "end_date", None) is None or probe.end_date > horizon:
        probe.end_date = horizon  # stops the search there (it would walk to the year 9999)
    fire = probe.get_next_fire_time(None, now)
    if fire is None:
        raise ValueError(f"cron {shown(cron)} never fires: no time within the next five years "
                         "matches it (e.g. day 30 or 31 of February, or 31 of a 30-day month); "
                         "check its day and month fields.")
    return fire


def interval_trigger(seconds: float, timezone: str = "UTC"):
    """An ``IntervalTrigger`` firing every ``seconds``."""
    from apscheduler.triggers.interval import IntervalTrigger

    return IntervalTrigger(seconds=float(seconds), timezone=check_timezone(timezone))
