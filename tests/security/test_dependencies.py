"""Dependencies that misbehave (issue 17): Redis down, a reverse proxy in
front, a hanging SMTP server while people work. Real sockets throughout."""

from __future__ import annotations

import socket
import threading
import time

import sqlalchemy as sa

from portal.extensions import db, mail
from portal.models import AuditEvent

from .. import factories as f
from ..conftest import make_test_app


def _unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _email(app, user_id: int) -> str:
    from portal.models import User

    with app.app_context():
        email = db.session.get(User, user_id).email
        db.session.remove()
    return email


def test_redis_down_signs_in_and_opens_links(database_url, tmp_path, users) -> None:
    """Rate-limit storage at a port where nothing listens: sign-in and the link
    pages still answer (limits counted in memory meanwhile), never 500."""
    app = make_test_app(
        database_url,
        tmp_path,
        RATELIMIT_ENABLED=True,
        RATELIMIT_STORAGE_URI=f"redis://127.0.0.1:{_unused_port()}/0",
        LOGIN_RATE_LIMIT="3 per minute",
    )
    email = _email(app, users["admin"])
    client = app.test_client()
    response = client.post(
        "/admin/login", data={"email": email, "password": f.PASSWORD}
    )
    assert response.status_code == 302, response.status_code
    assert client.get("/portal/link/not-a-token").status_code == 410
    # The in-memory fallback still throttles: the limits are not simply off.
    other = app.test_client()
    codes = [
        other.post(
            "/admin/login",
            data={"email": email, "password": "wrong"},
            environ_base={"REMOTE_ADDR": "10.1.1.1"},
        ).status_code
        for _ in range(4)
    ]
    assert codes == [401, 401, 401, 429]


def _via_proxy(client, client_ip: str, **kwargs):
    return client.post(
        "/admin/login",
        environ_base={"REMOTE_ADDR": "127.0.0.1"},
        headers={"X-Forwarded-For": client_ip},
        **kwargs,
    )


def test_behind_a_proxy_each_client_has_its_own_bucket(
    database_url, tmp_path, users, clock
) -> None:
    # The clock stands still: eleven sign-ins on a slow machine must not
    # straddle the limiter's minute (a CI run once saw the 11th pass).
    from portal.timeutil import utcnow

    clock.move_to(utcnow(), tick=False)
    app = make_test_app(
        database_url,
        tmp_path,
        RATELIMIT_ENABLED=True,
        LOGIN_RATE_LIMIT="10 per minute",
        PROXY_FIX_X_FOR=1,
    )
    email = _email(app, users["admin"])
    attacker, colleague = app.test_client(), app.test_client()
    for _ in range(10):
        _via_proxy(attacker, "203.0.113.7", data={"email": email, "password": "x"})
    assert (
        _via_proxy(
            attacker, "203.0.113.7", data={"email": email, "password": "x"}
        ).status_code
        == 429
    )
    response = _via_proxy(
        colleague, "198.51.100.2", data={"email": email, "password": f.PASSWORD}
    )
    assert response.status_code == 302, response.status_code
    with app.app_context():
        addresses = set(db.session.scalars(sa.select(AuditEvent.remote_addr)))
        db.session.remove()
    assert {"203.0.113.7", "198.51.100.2"} <= addresses
    assert "127.0.0.1" not in addresses


def test_spoofed_forwarding_headers_sent_directly_change_nothing(
    database_url, tmp_path, users
) -> None:
    """Without PROXY_FIX_X_FOR (the default) a new X-Forwarded-For per request
    does not buy a new bucket."""
    app = make_test_app(
        database_url, tmp_path, RATELIMIT_ENABLED=True, LOGIN_RATE_LIMIT="3 per minute"
    )
    email = _email(app, users["admin"])
    client = app.test_client()
    codes = [
        _via_proxy(
            client, f"192.0.2.{n}", data={"email": email, "password": "x"}
        ).status_code
        for n in range(4)
    ]
    assert codes == [401, 401, 401, 429]


# ------------------------------------------------------------------ SMTP


def _queue_one(app) -> int:
    from datetime import timedelta

    from portal.mail.outbox import queue_mail
    from portal.timeutil import utcnow

    with app.app_context(), app.test_request_context():
        message = queue_mail(
            "new_link",
            "casey@example-electric.example",
            "Your sign-in link",
            contact=type("C", (), {"name": "Casey"})(),
            link="http://portal.test/portal/link/x",
            expires=utcnow() + timedelta(days=14),
        )
        db.session.commit()
        message_id = message.id
        db.session.remove()
    return message_id


def _smtp_to(app, port: int, timeout: float) -> None:
    app.config.update(
        MAIL_SUPPRESS_SEND=False,
        MAIL_TRANSPORT="smtp",
        MAIL_SERVER="127.0.0.1",
        MAIL_PORT=port,
        MAIL_TIMEOUT=timeout,
    )
    mail.init_app(app)


def _silent_server() -> tuple[int, threading.Event, threading.Event]:
    """Accepts connections and never says a word; ``accepted`` once one came."""
    accepted, stop = threading.Event(), threading.Event()
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(5)
    server.settimeout(0.1)
    held = []

    def run() -> None:
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
                accepted.set()
            except OSError:
                continue
        for conn in held:
            conn.close()
        server.close()

    threading.Thread(target=run, daemon=True).start()
    return server.getsockname()[1], accepted, stop


def test_hanging_smtp_server_blocks_no_web_write(
    database_url, tmp_path, app, users
) -> None:
    """SPEC §8 on SQLite too: while ``send-mail`` waits on a server that never
    answers, a sign-in (a write: last login, audit event) answers at once."""
    from portal.mail.outbox import deliver_pending

    _queue_one(app)
    port, accepted, stop = _silent_server()
    worker = make_test_app(database_url, tmp_path / "worker")
    _smtp_to(worker, port, timeout=6)
    outcome = {}

    def run() -> None:
        with worker.app_context():
            outcome["result"] = deliver_pending()
            db.session.remove()
            db.engine.dispose()

    thread = threading.Thread(target=run)
    thread.start()
    try:
        assert accepted.wait(5), "the worker never connected"
        started = time.monotonic()
        response = app.test_client().post(
            "/admin/login",
            data={"email": _email(app, users["admin"]), "password": f.PASSWORD},
        )
        elapsed = time.monotonic() - started
        assert response.status_code == 302, response.status_code
        assert elapsed < 2, f"the write waited {elapsed:.1f} s for the worker"
    finally:
        thread.join(timeout=20)
        stop.set()
    assert outcome["result"] == (0, 1)


class _LateServer:
    """An SMTP server that takes every message but, the first time, says "250"
    only after the client has given up: the classic double delivery."""

    def __init__(self, delay: float) -> None:
        self.messages: list[bytes] = []
        self.delay = delay
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(5)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._talk, args=(conn,), daemon=True).start()

    def _talk(self, conn: socket.socket) -> None:
        reader = conn.makefile("rb")
        conn.sendall(b"220 late ready\r\n")
        try:
            while line := reader.readline():
                verb = line[:4].upper()
                if verb == b"DATA":
                    conn.sendall(b"354 go on\r\n")
                    body = b""
                    while (chunk := reader.readline()) not in (b".\r\n", b""):
                        body += chunk
                    self.messages.append(body)
                    if len(self.messages) == 1:
                        time.sleep(self.delay)
                    conn.sendall(b"250 queued\r\n")
                elif verb == b"QUIT":
                    conn.sendall(b"221 bye\r\n")
                    return
                elif verb in (b"EHLO", b"HELO"):
                    conn.sendall(b"250 late\r\n")
                else:
                    conn.sendall(b"250 ok\r\n")
        except OSError:
            return
        finally:
            conn.close()

    def close(self) -> None:
        self.sock.close()


def test_a_late_smtp_answer_gives_one_message_id_for_both_copies(app) -> None:
    """The server got the first attempt but answered after the timeout; the
    retry carries the same Message-ID, so the receiver can drop the repeat."""
    import re

    from portal.mail.outbox import deliver_pending
    from portal.models import OutboxMessage
    from portal.timeutil import utcnow

    server = _LateServer(delay=2.5)
    _smtp_to(app, server.port, timeout=1)
    message_id = _queue_one(app)
    try:
        with app.app_context():
            assert deliver_pending() == (0, 1)
            db.session.get(OutboxMessage, message_id).next_attempt_at = utcnow()
            db.session.commit()
            assert deliver_pending() == (1, 0)
            stored = db.session.get(OutboxMessage, message_id).message_id
            db.session.remove()
    finally:
        server.close()
    assert len(server.messages) == 2
    ids = [
        re.search(rb"^Message-ID: *(.+?)\r?$", m, re.M | re.I).group(1).decode()
        for m in server.messages
    ]
    assert ids[0] == ids[1] == stored, ids
