"""Dependencies that misbehave (issue 17): Redis down, a reverse proxy in
front, a hanging SMTP server while people work. Real sockets throughout."""

from __future__ import annotations

import socket

import sqlalchemy as sa

from portal.extensions import db
from portal.models import AuditEvent

from .. import factories as f
from ..conftest import make_test_app


def _unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _email(app, user_id: int) -> str:  # noqa: ANN001
    from portal.models import User

    with app.app_context():
        email = db.session.get(User, user_id).email
        db.session.remove()
    return email


def test_redis_down_signs_in_and_opens_links(database_url, tmp_path, users) -> None:  # noqa: ANN001
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


def _via_proxy(client, client_ip: str, **kwargs):  # noqa: ANN001, ANN003, ANN202
    return client.post(
        "/admin/login",
        environ_base={"REMOTE_ADDR": "127.0.0.1"},
        headers={"X-Forwarded-For": client_ip},
        **kwargs,
    )


def test_behind_a_proxy_each_client_has_its_own_bucket(
    database_url, tmp_path, users
) -> None:  # noqa: ANN001
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
) -> None:  # noqa: ANN001
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
