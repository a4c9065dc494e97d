"""The tests' clock: the real clock moved to a pinned day (time-machine).

Every test process runs on this clock (started in tests/conftest.py before
collection), and so does the browser tests' server process (tests/e2e/server.py):
the run starts at noon UTC on the pinned day and time then moves on at its real
pace, so rate limits, backoffs, timeouts and threads behave as they do in
production while every date the app reads (``portal.timeutil``) is the pinned one.

The pinned day is ``PB_TEST_TODAY=YYYY-MM-DD`` (``.ci/run`` runs the
calendar-sensitive tests at the 1st, the 15th and the last day of a month), or
:data:`DEFAULT_TODAY`. ``PB_TEST_CLOCK_OFFSET`` (seconds from the real clock) is
how a child process gets the very same clock as its parent: the server and the
tests then agree to the second (a link signed more than tokens.CLOCK_SKEW "in the
future" is refused; the browser tests take links the server signs).

Data is built from :func:`pinned_today` (a constant of the run), never from the
real date.
"""

from __future__ import annotations

import os
from datetime import UTC, date, datetime, time, timedelta

import time_machine

ENV_TODAY = "PB_TEST_TODAY"
ENV_OFFSET = "PB_TEST_CLOCK_OFFSET"
#: An ordinary mid-month weekday, when PB_TEST_TODAY is not set.
DEFAULT_TODAY = date(2026, 6, 10)
#: The run starts at noon, so a run of a few hours never crosses midnight.
START_TIME = time(12, 0)


def pinned_today() -> date:
    """The run's pinned day: ``PB_TEST_TODAY`` or :data:`DEFAULT_TODAY`."""
    raw = os.environ.get(ENV_TODAY, "").strip()
    if not raw:
        return DEFAULT_TODAY
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise ValueError(
            f"{ENV_TODAY}={raw!r}: expected a date as YYYY-MM-DD"
        ) from None


def real_now() -> datetime:
    """The machine's clock, even while the test clock is pinned."""
    if time_machine.escape_hatch.is_travelling():
        return time_machine.escape_hatch.datetime.datetime.now(UTC)
    return datetime.now(UTC)


def offset_seconds() -> float:
    """How far the test clock is from the real one (inherited by child processes)."""
    raw = os.environ.get(ENV_OFFSET, "").strip()
    if raw:
        return float(raw)
    start = datetime.combine(pinned_today(), START_TIME, tzinfo=UTC)
    return (start - real_now()).total_seconds()


def start() -> time_machine.travel:
    """Move this process's clock to the test clock; time keeps ticking.

    Sets ``PB_TEST_CLOCK_OFFSET`` in the environment, so processes started from
    here run on the same clock.
    """
    offset = offset_seconds()
    os.environ[ENV_OFFSET] = repr(offset)
    traveller = time_machine.travel(real_now() + timedelta(seconds=offset), tick=True)
    traveller.start()
    return traveller
