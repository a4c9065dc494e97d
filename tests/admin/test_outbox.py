"""Mail goes through the outbox: a failing mail server loses nothing (SPEC §8)."""

from __future__ import annotations

import socket
import socketserver
import threading
from datetime import timedelta

import pytest
import sqlalchemy as sa

from portal.extensions import db
from portal.mail.outbox import queue_mail
from portal.models import OutboxMessage
from portal.timeutil import utcnow

from .conftest import audit_actions, get


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _SMTPHandler(socketserver.StreamRequestHandler):
    """Just enough SMTP to accept a message (a sink for the test)."""

    def handle(self) -> None:
        write = self.wfile.write
        write(b"220 sink ready\r\n")
        in_data = False
        lines: list[bytes] = []
        while True:
            line = self.rfile.readline()
            if not line:
                return
            if in_data:
                if line in (b".\r\n", b".\n"):
                    in_data = False
                    self.server.messages.append(b"".join(lines))  # type: ignore[attr-defined]
                    lines = []
                    write(b"250 queued\r\n")
                else:
                    lines.append(line)
                continue
            verb = line[:4].upper()
            if verb in (b"EHLO", b"HELO"):
                write(b"250 sink\r\n")
            elif verb == b"DATA":
                in_data = True
                write(b"354 go ahead\r\n")
            elif verb == b"QUIT":
                write(b"221 bye\r\n")
                return
            else:
                write(b"250 ok\r\n")


class _Sink(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


PORT = _free_port()


@pytest.fixture
def app_config() -> dict:
    """Really deliver over SMTP, to a port where nothing listens (yet)."""
    return {
        "MAIL_SUPPRESS_SEND": False,
        "MAIL_TRANSPORT": "smtp",
        "MAIL_SERVER": "127.0.0.1",
        "MAIL_PORT": PORT,
        "MAIL_TIMEOUT": 3,
    }


def _queue(app, n: int = 2) -> list[int]:
    with app.app_context(), app.test_request_context():
        ids = []
        for i in range(n):
            message = queue_mail(
                "new_link",
                f"contact{i}@vendor.example",
                "Your sign-in link",
                contact=type("C", (), {"name": f"Contact {i}"})(),
                link="http://portal.test/portal/link/x",
                expires=utcnow() + timedelta(days=14),
            )
            db.session.flush()
            ids.append(message.id)
        db.session.commit()
        return ids


def test_failing_mail_server_loses_nothing(app, runner, auth, users, client) -> None:
    ids = _queue(app)
    result = runner.invoke(args=["send-mail"])
    assert result.exit_code == 0, result.output
    assert "sent 0, failed 2" in result.output
    for message_id in ids:
        message = get(app, OutboxMessage, message_id)
        assert message.status == "pending"
        assert message.attempts == 1
        assert "ConnectionRefusedError" in message.last_error
        assert message.next_attempt_at > utcnow()
    # Not due yet: a second pass leaves them alone (backoff).
    assert "sent 0, failed 0" in runner.invoke(args=["send-mail"]).output
    # The admin sees them waiting, with the error.
    auth.login_user(users["admin"])
    page = client.get("/admin/outbox?status=pending").get_data(as_text=True)
    assert "ConnectionRefusedError" in page and "contact0@vendor.example" in page
    # The mail server comes back; "Retry now" makes them due and they all go out.
    sink = _Sink(("127.0.0.1", PORT), _SMTPHandler)
    sink.messages = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=sink.serve_forever, daemon=True)
    thread.start()
    try:
        for message_id in ids:
            assert client.post(f"/admin/outbox/{message_id}/retry").status_code == 302
        result = runner.invoke(args=["send-mail"])
        assert "sent 2, failed 0" in result.output
    finally:
        sink.shutdown()
        sink.server_close()
    assert len(sink.messages) == 2  # type: ignore[attr-defined]
    for message_id in ids:
        message = get(app, OutboxMessage, message_id)
        assert (message.status, message.attempts, message.last_error) == ("sent", 2, "")
        assert message.sent_at is not None
    assert audit_actions(app, action="outbox.retry") == ["outbox.retry"] * 2


def test_failed_messages_can_be_retried_from_the_page(app, client, auth, users) -> None:
    ids = _queue(app, 1)
    with app.app_context():
        db.session.execute(
            sa.update(OutboxMessage).values(
                status="failed", attempts=8, last_error="boom"
            )
        )
        db.session.commit()
    auth.login_user(users["admin"])
    page = client.get("/admin/outbox?status=failed").get_data(as_text=True)
    assert "boom" in page and "Retry all 1 failed" in page
    response = client.post("/admin/outbox/retry-failed")
    assert response.status_code == 302
    message = get(app, OutboxMessage, ids[0])
    assert message.status == "pending" and message.next_attempt_at <= utcnow()
    # Viewers and finance never see the outbox.
    auth.login_user(users["viewer"])
    assert client.get("/admin/outbox").status_code == 403


def test_a_message_opens_with_its_attempts_error_and_text(
    app, runner, auth, users, client
) -> None:
    """Issue 14 item 13: the outbox opens a message; the contact's sign-in
    link in its text is hidden (an admin must not sign in as the contact)."""
    with app.app_context(), app.test_request_context():
        message = queue_mail(
            "new_link",
            "dana@vendor.example",
            "Your sign-in link",
            contact=type("C", (), {"name": "Dana"})(),
            link="http://portal.test/portal/link/SECRET-token_1.abc",
            expires=utcnow() + timedelta(days=14),
        )
        db.session.commit()
        message_id = message.id
    assert "failed 1" in runner.invoke(args=["send-mail"]).output
    auth.login_user(users["admin"])
    listing = client.get("/admin/outbox").get_data(as_text=True)
    assert f'href="/admin/outbox/{message_id}"' in listing
    page = client.get(f"/admin/outbox/{message_id}")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "Your sign-in link" in text and "dana@vendor.example" in text
    assert 'id="attempts">1 of 8<' in text
    assert "ConnectionRefusedError" in text
    assert "Dana" in text  # the mail's text
    assert "SECRET-token_1.abc" not in text
    assert "/portal/link/[sign-in link hidden]" in text
    # "Retry now" on the message comes back to it.
    retried = client.post(f"/admin/outbox/{message_id}/retry?back=message")
    assert retried.headers["Location"] == f"/admin/outbox/{message_id}"
    for role in ("finance", "viewer"):
        auth.login_user(users[role])
        assert client.get(f"/admin/outbox/{message_id}").status_code == 403
    assert client.get("/admin/outbox/999999").status_code in (403, 404)


def test_the_dashboard_warns_when_the_mail_worker_looks_down(
    app, auth, users, client, clock
) -> None:
    """Mail due more than OUTBOX_STALE_MINUTES ago and still pending: no one
    is delivering. Admins see it on the dashboard and the outbox."""
    [first, _] = _queue(app)
    auth.login_user(users["admin"])
    warning = "The mail worker looks down."
    assert warning not in client.get("/admin/").get_data(as_text=True)
    clock.shift(timedelta(minutes=9))
    assert warning not in client.get("/admin/").get_data(as_text=True)
    clock.shift(timedelta(minutes=2))
    page = client.get("/admin/").get_data(as_text=True)
    assert warning in page and "2 mails should have gone out" in page
    assert warning in client.get("/admin/outbox").get_data(as_text=True)
    # Delivered (here: marked sent), the warning goes.
    with app.app_context():
        db.session.execute(
            sa.update(OutboxMessage).values(status="sent", sent_at=utcnow())
        )
        db.session.commit()
    assert warning not in client.get("/admin/").get_data(as_text=True)
    # Finance does not run the worker: no warning on its pages.
    with app.app_context():
        db.session.execute(
            sa.update(OutboxMessage)
            .where(OutboxMessage.id == first)
            .values(status="pending")
        )
        db.session.commit()
    assert warning in client.get("/admin/").get_data(as_text=True)
    auth.login_user(users["finance"])
    assert warning not in client.get("/admin/").get_data(as_text=True)
