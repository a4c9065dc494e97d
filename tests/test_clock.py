"""The tests' clock (tests/clock.py): pinned, ticking, and the only one used."""

from __future__ import annotations

import re
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from portal import timeutil

from . import clock as test_clock

pytestmark = pytest.mark.calendar
TESTS = Path(__file__).resolve().parent


def test_the_app_reads_the_pinned_day(today: date) -> None:
    assert timeutil.today() == today == test_clock.pinned_today()
    assert date.today() == today  # noqa: DTZ011 - what a library would read
    now = timeutil.utcnow()
    assert now.tzinfo is UTC and now.date() == today


def test_the_pinned_clock_ticks() -> None:
    """Rate limits, backoffs and timeouts need time to move."""
    before = timeutil.utcnow()
    time.sleep(0.02)
    assert timeutil.utcnow() > before


def test_clock_fixture_moves_time_and_puts_it_back(clock, today: date) -> None:
    clock.shift(timedelta(days=40))
    assert timeutil.today() == today + timedelta(days=40)


def test_after_the_clock_fixture_the_run_clock_is_back(today: date) -> None:
    assert timeutil.today() == today


def test_pinned_today_reads_the_environment(monkeypatch) -> None:
    monkeypatch.setenv(test_clock.ENV_TODAY, "2028-02-29")
    assert test_clock.pinned_today() == date(2028, 2, 29)
    monkeypatch.setenv(test_clock.ENV_TODAY, "29/02/2028")
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        test_clock.pinned_today()
    monkeypatch.delenv(test_clock.ENV_TODAY)
    assert test_clock.pinned_today() == test_clock.DEFAULT_TODAY


def test_child_processes_get_the_same_clock() -> None:
    """The e2e server starts from PB_TEST_CLOCK_OFFSET: same offset, same second."""
    offset = test_clock.offset_seconds()
    expected = test_clock.real_now() + timedelta(seconds=offset)
    assert abs((datetime.now(UTC) - expected).total_seconds()) < 5


#: Reading the machine's date to build data makes a test depend on the day.
REAL_DATE = re.compile(
    r"date\.today\(|datetime\.now\(|datetime\.utcnow\(|utcnow\(\)\.date\(\)"
)


def test_no_test_builds_data_from_the_clock_date() -> None:
    """Dates in tests come from the pinned day (the ``today`` fixture or
    ``clock.pinned_today()``), never from a clock read."""
    offenders = [
        f"{path.relative_to(TESTS)}:{n}"
        for path in sorted(TESTS.rglob("*.py"))
        if path.name not in ("clock.py", "test_clock.py")
        for n, line in enumerate(path.read_text().splitlines(), start=1)
        if REAL_DATE.search(line)
    ]
    assert offenders == []
