"""What several workers and hosts must share (issue 16 item 7, docs/scaling.md).

benchmarks/two_hosts.py checks the real thing with two gunicorn hosts; these
keep the app saying so when a served app would count rate limits per process.
"""

from __future__ import annotations

import logging

import pytest

from portal import PER_PROCESS_LIMITS_MESSAGE, create_app

SERVED = {
    "SECRET_KEY": "a-long-random-key-for-the-shared-state-tests",
    "SQLALCHEMY_DATABASE_URI": "sqlite://",
    "TESTING": False,
}


@pytest.mark.parametrize(
    ("overrides", "warned"),
    [
        ({"RATELIMIT_STORAGE_URI": "memory://"}, True),
        ({"RATELIMIT_STORAGE_URI": "redis://127.0.0.1:6379/0"}, False),
        ({"RATELIMIT_STORAGE_URI": "memory://", "TESTING": True}, False),
        ({"RATELIMIT_STORAGE_URI": "memory://", "RATELIMIT_ENABLED": False}, False),
    ],
)
def test_a_served_app_warns_of_per_process_rate_limits(
    caplog, overrides, warned
) -> None:
    with caplog.at_level(logging.WARNING):
        app = create_app({**SERVED, **overrides})
    said = [r for r in caplog.records if r.getMessage() == PER_PROCESS_LIMITS_MESSAGE]
    assert bool(said) is warned
    assert app.config["RATELIMIT_STORAGE_URI"] == overrides["RATELIMIT_STORAGE_URI"]


def test_uploads_go_to_the_configured_folder_as_given(tmp_path) -> None:
    """A shared volume is used as it is named, never a per-host default."""
    shared = str(tmp_path / "nfs" / "uploads")
    app = create_app({**SERVED, "TESTING": True, "UPLOAD_FOLDER": shared})
    assert app.config["UPLOAD_FOLDER"] == shared
