"""Platform controls: secret key, cookies, headers, key rotation, and faults."""

from __future__ import annotations

import socket
import threading
import time

import pytest
import sqlalchemy as sa
from itsdangerous import URLSafeTimedSerializer

from portal import create_app
from portal.accounts import tokens
from portal.billing import billings
from portal.config import DEV_SECRET_KEY
from portal.extensions import db, mail
from portal.mail.outbox import deliver_pending, queue_mail
from portal.models import AuditEvent, Billing, Contact, OutboxMessage

from ..conftest import make_test_app


@pytest.mark.parametrize("key", [None, "", DEV_SECRET_KEY])
def test_refuses_to_start_with_default_secret_key(
    database_url, key, monkeypatch
) -> None:
    for name in ("SECRET_KEY", "PORTAL_SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(RuntimeError, match="SECRET_KEY"):
        create_app({"SECRET_KEY": key, "SQLALCHEMY_DATABASE_URI": database_url})


def test_starts_with_a_real_key_and_debug_default(database_url, monkeypatch) -> None:
    """A real key starts a production app (not in debug, not testing) that uses
    that key; only a test (or debug) app may run on the development default."""
    for name in ("SECRET_KEY", "PORTAL_SECRET_KEY", "PORTAL_DEBUG", "FLASK_DEBUG"):
        monkeypatch.delenv(name, raising=False)
    key = "x" * 40
    real = create_app({"SECRET_KEY": key, "SQLALCHEMY_DATABASE_URI": database_url})
    assert real.secret_key == key
    assert real.debug is False and real.testing is False
    answer = real.test_client().get("/admin/login")
    assert answer.status_code == 200  # it serves, signing its session with the key
    assert "session=" in answer.headers.get("Set-Cookie", "")
    dev = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": database_url})
    assert dev.secret_key == DEV_SECRET_KEY
    assert dev.testing is True and dev.debug is False


def test_secure_cookie_flags_outside_local_http(database_url, tmp_path) -> None:
    https = make_test_app(
        database_url,
        tmp_path,
        PUBLIC_BASE_URL="https://billing.example.com",
        SESSION_COOKIE_SECURE=None,
    )
    assert https.config["SESSION_COOKIE_SECURE"] is True
    assert https.config["SESSION_COOKIE_HTTPONLY"] is True
    assert https.config["SESSION_COOKIE_SAMESITE"] == "Lax"
    local = make_test_app(
        database_url,
        tmp_path,
        PUBLIC_BASE_URL="http://127.0.0.1:5000",
        SESSION_COOKIE_SECURE=None,
    )
    assert local.config["SESSION_COOKIE_SECURE"] is False


@pytest.mark.parametrize("path", ["/admin/", "/portal/", "/exports/", "/no-such-page"])
def test_security_headers_on_every_response(client, path: str) -> None:
    response = client.get(path)
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "'unsafe-inline'" not in csp
    assert "frame-ancestors 'none'" in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "same-origin"


def test_old_keys_still_verify_links_after_rotation(
    app, world, database_url, tmp_path
) -> None:
    with app.app_context():
        contact = db.session.get(Contact, world.contact_id)
        link, token = tokens.issue_link(contact)
        db.session.commit()
        link_id = link.id
    rotated = make_test_app(
        database_url,
        tmp_path,
        SECRET_KEY="a-brand-new-secret-key-after-rotation",
        SECRET_KEY_FALLBACKS=[app.config["SECRET_KEY"]],
    )
    with rotated.app_context():
        assert tokens.resolve_link(token).id == link_id
        _, new_token = tokens.issue_link(db.session.get(Contact, world.contact_id))
        # New links are signed with the new key only.
        URLSafeTimedSerializer(
            "a-brand-new-secret-key-after-rotation", salt=tokens.LINK_SALT
        ).loads(new_token)
        with pytest.raises(Exception):  # noqa: B017
            URLSafeTimedSerializer(
                app.config["SECRET_KEY"], salt=tokens.LINK_SALT
            ).loads(new_token)
        db.session.rollback()
    forgotten = make_test_app(
        database_url, tmp_path, SECRET_KEY="another-key-without-fallbacks"
    )
    with forgotten.app_context(), pytest.raises(tokens.InvalidLink):
        tokens.resolve_link(token)


def test_token_of_another_purpose_is_refused(app, world) -> None:
    with app.app_context():
        contact = db.session.get(Contact, world.contact_id)
        link, _ = tokens.issue_link(contact)
        db.session.commit()
        forged = tokens.serializer(salt="password-reset").dumps({"l": link.id})
        with pytest.raises(tokens.InvalidLink) as info:
            tokens.resolve_link(forged)
        assert info.value.reason == "invalid"


def _hanging_smtp_server() -> tuple[int, threading.Event]:
    """A server that accepts connections and never says a word."""
    stop = threading.Event()
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(5)
    server.settimeout(0.2)
    held = []

    def run() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
                held.append(conn)
            except OSError:
                continue
        for conn in held:
            conn.close()
        server.close()

    threading.Thread(target=run, daemon=True).start()
    return server.getsockname()[1], stop


def test_hanging_mail_server_times_out_and_keeps_the_message(app) -> None:
    port, stop = _hanging_smtp_server()
    try:
        app.config.update(
            MAIL_SUPPRESS_SEND=False,
            MAIL_SERVER="127.0.0.1",
            MAIL_PORT=port,
            MAIL_TIMEOUT=1,
        )
        mail.init_app(app)
        with app.app_context():
            queue_mail(
                "new_link",
                "pat@example.com",
                "Link",
                contact=type("C", (), {"name": "Pat"})(),
                link="http://x",
                expires=__import__("datetime").datetime(2030, 1, 1),
            )
            db.session.commit()
            started = time.monotonic()
            assert deliver_pending() == (0, 1)
            assert time.monotonic() - started < 5
            message = db.session.scalars(sa.select(OutboxMessage)).one()
            assert message.status == "pending" and message.attempts == 1
            assert (
                "timed out" in message.last_error.lower()
                or "timeout" in message.last_error.lower()
            )
    finally:
        stop.set()


def test_exception_before_commit_writes_nothing(app, world, client, auth) -> None:
    """A request that changes a billing and then fails leaves no trace."""

    @app.route("/__test/crash/<int:billing_id>", methods=["POST"])
    def crash(billing_id: int):
        billing = db.session.get(Billing, billing_id)
        contact = db.session.get(Contact, world.contact_id)
        billings.submit_billing(billing, contact, billing.version)
        raise RuntimeError("crash between the change and the commit")

    with app.app_context():
        from portal.models import BillingPeriod, Commitment

        commitment = db.session.get(Commitment, world.commitment_id)
        billing = billings.create_billing(
            commitment,
            db.session.get(BillingPeriod, world.period1_id),
            db.session.get(Contact, world.contact_id),
        )
        billings.save_billing(
            billing,
            billing.created_by_contact,
            billings.BillingInput(lines={world.line_ids[0]: ("100.00", "0")}),
            billing.version,
        )
        db.session.commit()
        billing_id, version = billing.id, billing.version
        events_before = db.session.scalar(sa.select(sa.func.count(AuditEvent.id)))
    app.config["PROPAGATE_EXCEPTIONS"] = False
    response = client.post(f"/__test/crash/{billing_id}")
    assert response.status_code == 500
    with app.app_context():
        billing = db.session.get(Billing, billing_id)
        assert (billing.status, billing.version) == ("draft", version)
        assert (
            db.session.scalar(sa.select(sa.func.count(AuditEvent.id))) == events_before
        )
        assert db.session.scalar(sa.select(sa.func.count(OutboxMessage.id))) == 0


def test_database_restart_between_requests(pg_url, tmp_path) -> None:
    """Connections killed under the pool are replaced (pool_pre_ping)."""
    app = make_test_app(pg_url, tmp_path)
    client = app.test_client()
    assert client.get("/admin/").status_code in (200, 302)
    with app.app_context():
        # Warm the pool, then kill every server connection to this database.
        db.session.execute(sa.text("SELECT 1"))
        db.session.remove()
        admin = sa.create_engine(pg_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            )
        admin.dispose()
        assert db.session.execute(sa.text("SELECT 1")).scalar_one() == 1
        db.session.remove()
        db.engine.dispose()
