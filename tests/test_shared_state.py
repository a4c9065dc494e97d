"""What several workers and hosts must share (issue 16 item 7, docs/scaling.md).

benchmarks/two_hosts.py checks the real thing with two gunicorn hosts; these
keep the app saying so when a served app would count rate limits per process.
"""

from __future__ import annotations

import logging
import queue
import threading
from datetime import UTC, datetime

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
    caplog, monkeypatch, overrides, warned
) -> None:
    # Alembic's fileConfig (a migration earlier in the run) disables loggers
    # that exist by then, the app's among them.
    monkeypatch.setattr(logging.getLogger("portal"), "disabled", False)
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


#: Due whatever the clock: the send-mail worker runs in its own process, on the
#: real clock, while the suite's is pinned (tests/clock.py) to a day that may be
#: later than today (a message due "now" in the suite was not due yet for it).
LONG_AGO = datetime(2001, 1, 1, tzinfo=UTC)


def _queue(app, count: int) -> None:
    from portal.extensions import db
    from portal.mail.outbox import new_message_id
    from portal.models import OutboxMessage

    with app.app_context():
        for i in range(count):
            db.session.add(
                OutboxMessage(
                    kind="test",
                    recipient=f"r{i}@example.com",
                    subject=f"m{i}",
                    body_text="x",
                    body_html="<p>x</p>",
                    message_id=new_message_id(),
                    next_attempt_at=LONG_AGO,
                )
            )
        db.session.commit()


def test_a_worker_told_to_stop_claims_nothing_more(app) -> None:
    """The rest stay due now for the other hosts' workers (no claim's backoff)."""
    import sqlalchemy as sa

    from portal.extensions import db, mail
    from portal.mail.outbox import deliver_pending
    from portal.models import OutboxMessage

    _queue(app, 3)
    with app.app_context(), mail.record_messages() as sent:
        assert deliver_pending(stop=lambda: len(sent) >= 1) == (1, 0)
        rows = db.session.execute(
            sa.select(OutboxMessage.status, OutboxMessage.attempts).order_by(
                OutboxMessage.id
            )
        ).all()
    assert [tuple(r) for r in rows] == [("sent", 1), ("pending", 0), ("pending", 0)]


def test_send_mail_loop_stops_cleanly_on_sigterm(app, database_url, tmp_path) -> None:
    """A deploy's SIGTERM ends the worker between messages, exit status 0
    (it used to die mid-message: a retry after the backoff, or a repeat)."""
    import os
    import signal
    import subprocess
    import sys
    import time

    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "SECRET_KEY": SERVED["SECRET_KEY"],
        "PORTAL_MAIL_TRANSPORT": "console",
    }
    _queue(app, 1)
    portal = os.path.join(os.path.dirname(sys.executable), "portal")
    proc = subprocess.Popen(
        [portal, "send-mail", "--loop", "--interval", "30"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()

    def read() -> None:  # a blocking readline must not hang the suite
        for raw in proc.stdout:
            lines.put(raw)
        lines.put("")

    threading.Thread(target=read, daemon=True).start()
    try:
        # Running (its handlers set) once it has sent the queued message.
        deadline = time.monotonic() + 60
        line = ""
        while time.monotonic() < deadline:
            try:
                line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                break
            if not line or line.startswith("sent 1,"):
                break
        if not line.startswith("sent 1,"):
            proc.kill()
            pytest.fail("send-mail --loop never reported the queued message sent")
        proc.send_signal(signal.SIGTERM)  # while it waits out its interval
        proc.wait(timeout=10)
        err = proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err[-2000:]


def test_gunicorn_freezes_the_preloaded_app_and_serves(database_url) -> None:
    """gunicorn.conf.py: the app loaded once in the master, its objects frozen
    before the workers fork (issue 16 item 2), and the workers still serve."""
    import os
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "SECRET_KEY": SERVED["SECRET_KEY"],
        "PORTAL_RATELIMIT_ENABLED": "false",
    }
    env.pop("PORTAL_GC_TUNING", None)
    gunicorn = os.path.join(os.path.dirname(sys.executable), "gunicorn")
    proc = subprocess.Popen(
        [gunicorn, "-w", "2", "-b", f"127.0.0.1:{port}", "--log-level", "info"]
        + ["wsgi:app"],
        cwd=root,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    statuses = []
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(statuses) < 4:
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{port}/admin/login", timeout=5
                ) as answer:
                    statuses.append(answer.status)
            except OSError:
                time.sleep(0.2)
    finally:
        proc.terminate()
        _, log = proc.communicate(timeout=20)
    assert statuses == [200, 200, 200, 200], log[-2000:]
    frozen = [line for line in log.splitlines() if "start-up objects frozen" in line]
    assert len(frozen) == 1, log[-2000:]  # once, in the master
    assert "(app preloaded: True)" in frozen[0], frozen
    assert int(frozen[0].split("gc: ")[1].split()[0]) > 10_000
