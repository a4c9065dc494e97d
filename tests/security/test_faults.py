"""Faults (SPEC §8, §11): a mail server that refuses or hangs, a database that
restarts between requests, a commit that fails after every change was made.

Requests never talk to the mail server (mail goes to the outbox in the same
transaction); the worker delivers later, with retries.
"""

from __future__ import annotations

import io
import os
import socket
import socketserver
import threading
import time
from datetime import timedelta

import pytest
import sqlalchemy as sa

from portal.billing import billings
from portal.extensions import db, mail
from portal.models import (
    Attachment,
    AuditEvent,
    Billing,
    BillingPeriod,
    Commitment,
    Contact,
    Invitation,
    LoginLink,
    OutboxMessage,
    Project,
    RevisionSnapshot,
)
from portal.timeutil import utcnow

from .. import factories as f
from ..admin.test_outbox import _Sink, _SMTPHandler
from ..conftest import Auth, make_test_app
from .test_platform import _hanging_smtp_server

CASEY = "casey@example-electric.example"


class _Refusing(socketserver.StreamRequestHandler):
    """An SMTP server that says no: at the greeting, or to the recipient."""

    def handle(self) -> None:
        mode = self.server.mode  # type: ignore[attr-defined]
        if mode == "greeting":
            self.wfile.write(b"554 5.3.2 not accepting mail\r\n")
            return
        self.wfile.write(b"220 picky ready\r\n")
        while line := self.rfile.readline():
            verb = line[:4].upper()
            if verb == b"RCPT":
                self.wfile.write(b"550 5.1.1 mailbox unavailable\r\n")
            elif verb == b"QUIT":
                self.wfile.write(b"221 bye\r\n")
                return
            else:
                self.wfile.write(b"250 ok\r\n")


def _server(handler, **attrs):
    server = _Sink(("127.0.0.1", 0), handler)
    for name, value in attrs.items():
        setattr(server, name, value)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _deliver_to(app, port: int) -> None:
    app.config.update(
        MAIL_SUPPRESS_SEND=False,
        MAIL_TRANSPORT="smtp",
        MAIL_SERVER="127.0.0.1",
        MAIL_PORT=port,
        MAIL_TIMEOUT=2,
    )
    mail.init_app(app)


@pytest.mark.parametrize("refusal", ["connection", "greeting", "recipient"])
def test_refusing_mail_server(app, client, runner, w, refusal: str) -> None:
    """A request that sends mail answers at once; the worker fails, keeps the
    message with the error, backs off, and delivers once the server is back."""
    refuser = None
    if refusal == "connection":
        port = _free_port()  # nothing listens there
    else:
        refuser = _server(_Refusing, mode=refusal)
        port = refuser.server_address[1]
    _deliver_to(app, port)
    try:
        started = time.monotonic()
        response = client.post("/portal/new-link", data={"email": CASEY})
        assert response.status_code == 200
        assert time.monotonic() - started < 1.5
        result = runner.invoke(args=["send-mail"])
        assert "sent 0, failed 1" in result.output, result.output
    finally:
        if refuser:
            refuser.shutdown()
            refuser.server_close()
    with app.app_context():
        message = db.session.scalars(sa.select(OutboxMessage)).one()
        assert (message.status, message.attempts) == ("pending", 1)
        expected = {
            "connection": "ConnectionRefusedError",
            "greeting": "SMTPConnectError",
            "recipient": "SMTPRecipientsRefused",
        }[refusal]
        assert expected in message.last_error
        assert message.next_attempt_at > utcnow()
        assert db.session.scalar(sa.select(sa.func.count(LoginLink.id))) == 1
        message.next_attempt_at = utcnow()  # the backoff has passed
        db.session.commit()
        db.session.remove()
    sink = _server(_SMTPHandler, messages=[])
    _deliver_to(app, sink.server_address[1])
    try:
        assert "sent 1, failed 0" in runner.invoke(args=["send-mail"]).output
    finally:
        sink.shutdown()
        sink.server_close()
    assert len(sink.messages) == 1
    delivered = sink.messages[0].decode()
    assert CASEY in delivered and "http://portal.test/portal/link/" in delivered
    with app.app_context():
        message = db.session.scalars(sa.select(OutboxMessage)).one()
        assert (message.status, message.attempts, message.last_error) == ("sent", 2, "")


def test_hanging_mail_server_never_blocks_a_request(app, client, runner, w) -> None:
    port, stop = _hanging_smtp_server()
    _deliver_to(app, port)
    try:
        auth = Auth(app, client)
        auth.login_user(w.admin_id)
        started = time.monotonic()
        response = client.post(
            f"/admin/periods/{w.period1_id}/bulk",
            data={"action": "invite", "commitment_ids": str(w.commitment_id)},
        )
        assert response.status_code == 302
        assert time.monotonic() - started < 1.5  # MAIL_TIMEOUT is 2 s
        started = time.monotonic()
        result = runner.invoke(args=["send-mail"])
        assert "sent 0, failed 1" in result.output
        assert time.monotonic() - started < 6
    finally:
        stop.set()
    with app.app_context():
        invitation = db.session.scalars(sa.select(Invitation)).one()
        assert invitation.status == "invited"
        message = db.session.scalars(sa.select(OutboxMessage)).one()
        assert message.kind == "invite" and message.status == "pending"
        assert "timed out" in message.last_error.lower()


def test_database_restart_between_real_requests(pg_url, tmp_path) -> None:
    """Every server connection is killed between two requests of a signed-in
    admin: the next page and the next write work (pool_pre_ping)."""
    from ..conftest import _empty_all_tables

    app = make_test_app(pg_url, tmp_path)
    try:
        with app.app_context():
            user = f.make_user("admin", email="restart@example.com")
            db.session.commit()
            del user
        client = app.test_client()
        login = client.post(
            "/admin/login",
            data={"email": "restart@example.com", "password": f.PASSWORD},
        )
        assert login.status_code == 302
        assert client.get("/admin/projects").status_code == 200
        killer = sa.create_engine(pg_url, isolation_level="AUTOCOMMIT")
        with killer.connect() as conn:
            killed = conn.execute(
                sa.text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            ).scalar_one()
        killer.dispose()
        assert killed >= 1
        assert client.get("/admin/projects").status_code == 200
        response = client.post(
            "/admin/projects/new",
            data={
                "number": "R-1",
                "name": "After the restart",
                "currency": "USD",
                "time_zone": "America/Chicago",
                "terminology": "us",
                "default_work_retainage_pct": "10",
                "default_materials_retainage_pct": "5",
            },
        )
        assert response.status_code == 302, response.get_data(as_text=True)[:300]
        with app.app_context():
            assert (
                db.session.scalars(
                    sa.select(Project.name).where(Project.number == "R-1")
                ).one()
                == "After the restart"
            )
    finally:
        with app.app_context():
            db.session.remove()
            _empty_all_tables()
            db.engine.dispose()


# ------------------------------------------------------------------ failed commits


class _FailNextCommit:
    """Make the next commit of any session fail after its flush (then disarm)."""

    def __init__(self) -> None:
        self.armed = False

    def __call__(self, session) -> None:
        if self.armed:
            self.armed = False
            raise RuntimeError("the database went away at commit time")


@pytest.fixture
def fail_next_commit(app):
    app.config["PROPAGATE_EXCEPTIONS"] = False
    hook = _FailNextCommit()
    sa.event.listen(sa.orm.Session, "before_commit", hook)
    yield hook
    sa.event.remove(sa.orm.Session, "before_commit", hook)


def _totals(app) -> dict:
    with app.app_context():
        out = {
            model.__name__: db.session.scalar(
                sa.select(sa.func.count()).select_from(model)
            )
            for model in (
                AuditEvent,
                OutboxMessage,
                RevisionSnapshot,
                Attachment,
                Invitation,
                LoginLink,
            )
        }
        out["versions"] = db.session.scalar(sa.select(sa.func.sum(Billing.version)))
        out["statuses"] = sorted(db.session.scalars(sa.select(Billing.status)))
        db.session.remove()
    return out


def _draft(app, w) -> int:
    with app.app_context():
        contact = db.session.get(Contact, w.contact_id)
        billing = billings.create_billing(
            db.session.get(Commitment, w.commitment_id),
            db.session.get(BillingPeriod, w.period1_id),
            contact,
        )
        billings.save_billing(
            billing,
            contact,
            billings.BillingInput(lines={w.line_ids[0]: ("20000.00", "0")}),
            billing.version,
        )
        db.session.commit()
        out = billing.id
        db.session.remove()
    return out


@pytest.mark.parametrize("action", ["submit", "approve", "invite", "upload"])
def test_failed_commit_leaves_no_trace(
    app, client, w, fail_next_commit, action: str
) -> None:
    """The request made its change, its audit event and its mail (or file),
    then the commit failed: a 500 page, and nothing of it anywhere."""
    from ..contact.test_attachments import PDF

    billing_id = _draft(app, w)
    auth = Auth(app, client)
    if action == "approve":
        with app.app_context():
            billing = db.session.get(Billing, billing_id)
            billings.submit_billing(
                billing, billing.created_by_contact, billing.version
            )
            db.session.commit()
            db.session.remove()
    before = _totals(app)
    folder = app.config["UPLOAD_FOLDER"]
    os.makedirs(folder, exist_ok=True)
    files = sorted(os.listdir(folder))
    with app.app_context():
        version = db.session.get(Billing, billing_id).version
        db.session.remove()
    if action in ("submit", "upload"):
        auth.login_contact(w.contact_id)
    else:
        auth.login_user(w.admin_id)
    fail_next_commit.armed = True
    if action == "submit":
        response = client.post(
            f"/portal/billings/{billing_id}",
            data={"version": str(version), "action": "submit"},
        )
    elif action == "approve":
        response = client.post(
            f"/admin/billings/{billing_id}/decide",
            data={"version": str(version), "decision": "approve"},
        )
    elif action == "invite":
        response = client.post(
            f"/admin/periods/{w.period1_id}/bulk",
            data={"action": "invite", "commitment_ids": str(w.commitment_id)},
        )
    else:
        response = client.post(
            f"/portal/billings/{billing_id}/attachments",
            data={"kind": "invoice", "file": (io.BytesIO(PDF), "invoice.pdf")},
            content_type="multipart/form-data",
        )
    assert response.status_code == 500
    assert "Traceback" not in response.get_data(as_text=True)
    assert not fail_next_commit.armed  # the commit was reached, and failed
    assert _totals(app) == before
    assert sorted(os.listdir(folder)) == files  # the stored file was removed
    # The same request works once the database is back.
    if action == "upload":
        assert (
            client.post(
                f"/portal/billings/{billing_id}/attachments",
                data={"kind": "invoice", "file": (io.BytesIO(PDF), "invoice.pdf")},
                content_type="multipart/form-data",
            ).status_code
            == 302
        )
        assert _totals(app)["Attachment"] == before["Attachment"] + 1


def test_outbox_message_is_not_sent_twice_after_a_crash_mid_send(
    app, runner, w
) -> None:
    """A worker that dies after claiming a message leaves it claimed-but-pending:
    the next pass retries it later (attempts counted), it is never lost."""
    sink = _server(_SMTPHandler, messages=[])
    _deliver_to(app, sink.server_address[1])
    try:
        with app.app_context():
            from portal.mail.outbox import queue_mail

            queue_mail(
                "new_link",
                CASEY,
                "Your link",
                contact=db.session.get(Contact, w.contact_id),
                link="http://portal.test/portal/link/x",
                expires=utcnow() + timedelta(days=1),
            )
            db.session.commit()
            message = db.session.scalars(sa.select(OutboxMessage)).one()
            # Simulate the crash: claimed (attempts + 1) but neither sent nor failed.
            message.attempts = 1
            message.next_attempt_at = utcnow()
            db.session.commit()
            db.session.remove()
        assert "sent 1, failed 0" in runner.invoke(args=["send-mail"]).output
        assert "sent 0, failed 0" in runner.invoke(args=["send-mail"]).output
    finally:
        sink.shutdown()
        sink.server_close()
    assert len(sink.messages) == 1
