"""The app's one clock: timezone-aware UTC everywhere.

Nothing else in ``portal`` reads the time: timestamps come from :func:`utcnow`
and calendar dates (periods, due dates, reminders) from :func:`today`, so the
tests can pin both with one frozen clock (tests/clock.py).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import overload


def utcnow() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


def today() -> date:
    """Today's date on the app's calendar (UTC), for due dates and periods."""
    return utcnow().date()


@overload
def aware(value: datetime) -> datetime: ...
@overload
def aware(value: None) -> None: ...


def aware(value: datetime | None) -> datetime | None:
    """Treat a naive datetime (SQLite gives those back) as UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def display(value: datetime | None, zone_name: str | None = None) -> str:
    """A timestamp as every page shows it: in ``zone_name`` (the project's, else
    the contractor's ``TIME_ZONE``), labelled, one format: ``Mar 04, 2026 14:05 EST``."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    value = aware(value)
    if value is None:
        return ""
    zone = None
    if zone_name:
        try:
            zone = ZoneInfo(zone_name)
        except (ZoneInfoNotFoundError, ValueError):
            zone = None
    local = value.astimezone(zone or UTC)
    return local.strftime("%b %d, %Y %H:%M ") + (local.tzname() or "UTC")
