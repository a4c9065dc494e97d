"""Fixtures of the attack suite, and the hook that counts its cases per group.

The contact portal's fixtures (``w``, ``issue``, ``app_ctx``, ``make_billing``)
are reused from tests/contact; ``ids`` is the full world of ``world.py``.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable

import pytest

from ..contact.conftest import app_ctx, issue, make_billing, w  # noqa: F401
from ..helpers import built
from . import counts
from .world import build_full_world, build_light_world

_OUTCOMES: dict[str, str] = {}
_ATTEMPTS: Counter = Counter()


@pytest.fixture
def ids(app, today):
    """The full world (every object state a form needs), as ids; no context left."""
    return built(app, build_full_world, today)


@pytest.fixture
def lite(app, today):
    """The worked example with a draft (Casey) and a billing under review (Olive)."""
    return built(app, build_light_world, today)


@pytest.fixture
def tally(request) -> Callable[[int], None]:
    """``tally(n)``: n more hostile requests were made by this test's group."""
    group = counts.group_of(request.node.nodeid) or "Other"

    def add(n: int = 1) -> None:
        _ATTEMPTS[group] += n

    return add


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Remember each case's outcome (a failing setup or teardown is a failure)."""
    if counts.group_of(report.nodeid) is None:
        return
    if report.when == "call" or report.outcome != "passed":
        if _OUTCOMES.get(report.nodeid) != "failed":
            _OUTCOMES[report.nodeid] = report.outcome


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Write test-artifacts/security-counts.json for the cases that ran."""
    if not _OUTCOMES or getattr(session.config.option, "collectonly", False):
        return
    results: dict[str, Counter] = defaultdict(Counter)
    for nodeid, outcome in _OUTCOMES.items():
        results[counts.group_of(nodeid)][outcome] += 1
    counts.write_artifact(results, _ATTEMPTS)
