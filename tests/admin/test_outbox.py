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
