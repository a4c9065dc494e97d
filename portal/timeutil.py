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
