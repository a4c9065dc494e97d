"""Sign-in, lockout, throttling, safe ?next=, and sessions that end everywhere (SPEC §6)."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from portal.accounts.users import MAX_FAILED_LOGINS
from portal.extensions import db
from portal.models import SignInFailure, User
from portal.timeutil import utcnow

from .. import factories as f
from ..conftest import make_test_app
from .conftest import audit_actions, get


@pytest.fixture
def user_id(app):
    with app.app_context():
        user = f.make_user("admin", email="Alex@Example.com")
        db.session.commit()
        return user.id


def login(client, email="alex@example.com", password=f.PASSWORD, next_url=None):
    data = {"email": email, "password": password}
    if next_url is not None:
        data["next"] = next_url
    return client.post("/admin/login", data=data)


def test_login_page_renders(client) -> None:
    page = client.get("/admin/login")
    assert page.status_code == 200
    assert 'name="password"' in page.get_data(as_text=True)


def test_sign_in_works_case_insensitively_and_records_it(app, client, user_id) -> None:
    response = login(client, email="ALEX@example.COM")
    assert response.status_code == 302
    assert response.headers["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200
    user = get(app, User, user_id)
    assert user.last_login_at is not None
    assert user.failed_logins == 0
    assert "user.login" in audit_actions(app, object_type="user", object_id=user_id)


def test_wrong_password_is_refused_and_counted(app, client, user_id) -> None:
    response = login(client, password="not the password at all")
    assert response.status_code == 401
    assert "Wrong email or password." in response.get_data(as_text=True)
    assert _failures(app, "alex@example.com") == 1
    assert client.get("/admin/").status_code == 302  # still signed out
    # An unknown address gets the very same answer.
    unknown = login(client, email="nobody@example.com")
    assert unknown.status_code == 401
    assert "Wrong email or password." in unknown.get_data(as_text=True)


def _failures(app, email: str) -> int:
    with app.app_context():
        rows = db.session.scalars(
            sa.select(SignInFailure).where(SignInFailure.email == email)
        ).all()
        db.session.remove()
    return sum(r.failures for r in rows)


def _locked(app, email: str) -> bool:
    with app.app_context():
        rows = db.session.scalars(
            sa.select(SignInFailure).where(SignInFailure.email == email)
        ).all()
        db.session.remove()
    return any(r.locked_until and r.locked_until > utcnow() for r in rows)


def test_blank_fields_get_field_errors(client) -> None:
    response = client.post("/admin/login", data={"email": "", "password": ""})
    assert response.status_code == 400
    text = response.get_data(as_text=True)
    assert "Enter your email address." in text
    assert "Enter your password." in text


def test_account_locks_after_repeated_failures(app, client, user_id) -> None:
    for _ in range(MAX_FAILED_LOGINS):
        assert login(client, password="wrong password 123").status_code == 401
    assert _locked(app, "alex@example.com")
    # Locked: even the right password is refused, with a clear message.
    response = login(client)
    assert response.status_code == 401
    assert "Too many failed sign-ins" in response.get_data(as_text=True)
    assert client.get("/admin/").status_code == 302
    assert "user.locked" in audit_actions(app, object_type="user", object_id=user_id)
    # Once the lock has passed, the right password works again.
    with app.app_context():
        db.session.execute(
            sa.update(SignInFailure).values(
                locked_until=utcnow() - timedelta(seconds=1)
            )
        )
        db.session.commit()
    assert login(client).status_code == 302
    assert _failures(app, "alex@example.com") == 0
    assert not _locked(app, "alex@example.com")


def test_inactive_user_cannot_sign_in(app, client, user_id) -> None:
    with app.app_context():
        db.session.get(User, user_id).active = False
        db.session.commit()
    assert login(client).status_code == 401
    assert client.get("/admin/").status_code == 302


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/admin/projects", "/admin/projects"),
        ("/admin/billings?status=under_review", "/admin/billings?status=under_review"),
        ("https://evil.example/phish", "/admin/"),
        ("//evil.example/phish", "/admin/"),
        ("/\\evil.example", "/admin/"),
        ("javascript:alert(1)", "/admin/"),
        ("admin/projects", "/admin/"),
    ],
)
def test_next_only_goes_to_local_paths(client, user_id, target, expected) -> None:
    response = login(client, next_url=target)
    assert response.status_code == 302
    assert response.headers["Location"] == expected


def test_anonymous_page_visit_comes_back_after_sign_in(client, user_id) -> None:
    first = client.get("/admin/periods")
    assert first.status_code == 302
    assert "next=%2Fadmin%2Fperiods" in first.headers["Location"]
    page = client.get(first.headers["Location"]).get_data(as_text=True)
    assert 'name="next" value="/admin/periods"' in page
    assert (
        login(client, next_url="/admin/periods").headers["Location"] == "/admin/periods"
    )


def test_logout_ends_every_copy_of_the_session(app, client, user_id) -> None:
    assert login(client).status_code == 302
    cookie = client.get_cookie("session")
    other = app.test_client()  # a second browser holding the same cookie
    other.set_cookie("session", cookie.value)
    assert other.get("/admin/").status_code == 200
    response = client.post("/admin/logout")
    assert response.status_code == 302
    assert response.headers["Location"] == "/admin/login"
    assert client.get("/admin/").status_code == 302
    # The copy of the old cookie no longer works either.
    assert other.get("/admin/").status_code == 302
    assert get(app, User, user_id).session_version == 2
    assert "user.logout" in audit_actions(app, object_type="user", object_id=user_id)


def test_password_change_ends_other_sessions_but_keeps_this_one(
    app, client, user_id
) -> None:
    assert login(client).status_code == 302
    other = app.test_client()
    assert login(other).status_code == 302
    bad = client.post(
        "/admin/account",
        data={
            "current_password": "wrong",
            "new_password": "a brand new passphrase",
            "confirm_password": "a brand new passphrase",
        },
    )
    assert bad.status_code == 400
    assert "That is not your current password." in bad.get_data(as_text=True)
    weak = client.post(
        "/admin/account",
        data={
            "current_password": f.PASSWORD,
            "new_password": "short",
            "confirm_password": "short",
        },
    )
    assert weak.status_code == 400
    assert "at least 12 characters" in weak.get_data(as_text=True)
    ok = client.post(
        "/admin/account",
        data={
            "current_password": f.PASSWORD,
            "new_password": "a brand new passphrase",
            "confirm_password": "a brand new passphrase",
        },
    )
    assert ok.status_code == 302
    assert client.get("/admin/").status_code == 200
    assert other.get("/admin/").status_code == 302
    client.post("/admin/logout")
    assert login(client, password="a brand new passphrase").status_code == 302


def test_login_is_throttled_per_address(database_url, tmp_path, user_id) -> None:
    throttled = make_test_app(
        database_url,
        tmp_path,
        RATELIMIT_ENABLED=True,
        LOGIN_RATE_LIMIT="3 per minute",
    )
    client = throttled.test_client()
    codes = [
        login(client, email="nobody@example.com", password="guess number 1").status_code
        for _ in range(4)
    ]
    assert codes == [401, 401, 401, 429]
    assert "Too many sign-in attempts" in login(client).get_data(as_text=True)
    # Another address is not affected.
    other = client.post(
        "/admin/login",
        data={"email": "alex@example.com", "password": f.PASSWORD},
        environ_base={"REMOTE_ADDR": "10.0.0.9"},
    )
    assert other.status_code == 302
    with throttled.app_context():
        db.engine.dispose()


def test_forms_carry_a_csrf_token(database_url, tmp_path, user_id) -> None:
    """With CSRF on (as in production), the pages' own tokens are what make posts work."""
    import re

    protected = make_test_app(database_url, tmp_path, WTF_CSRF_ENABLED=True)
    client = protected.test_client()
    data = {"email": "alex@example.com", "password": f.PASSWORD}
    assert client.post("/admin/login", data=data).status_code == 400
    page = client.get("/admin/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)[1]
    assert (
        client.post("/admin/login", data=data | {"csrf_token": token}).status_code
        == 302
    )
    home = client.get("/admin/").get_data(as_text=True)
    # The sign-out form carries its own token.
    token = re.search(r'name="csrf_token" value="([^"]+)"', home)[1]
    assert client.post("/admin/logout").status_code == 400
    assert client.post("/admin/logout", data={"csrf_token": token}).status_code == 302
    with protected.app_context():
        db.engine.dispose()


@pytest.mark.parametrize(
    ("role", "home", "queue"),
    [
        ("admin", "/admin/", "Waiting for your review"),
        ("finance", "/exports/", None),
        ("viewer", "/admin/", "Under review"),
    ],
)
def test_each_role_lands_on_what_it_does(app, client, role, home, queue) -> None:
    """Issue 14 item 12: finance lands on what is ready to export and the
    batches; only an admin is asked to review (a viewer reads the queue)."""
    with app.app_context():
        f.make_user(role, email=f"{role}@example.com")
        db.session.commit()
    response = login(client, email=f"{role}@example.com")
    assert response.headers["Location"] == home
    page = client.get(home).get_data(as_text=True)
    assert f'class="navbar-brand" href="{home}"' in page
    if queue is not None:
        assert f">{queue}</h2>" in page
    if role != "admin":
        assert "Waiting for your review" not in client.get("/admin/").get_data(
            as_text=True
        )
    # Signed in already, the sign-in page sends each role home too; ?next= wins.
    assert client.get("/admin/login").headers["Location"] == home
    assert (
        client.get("/admin/login?next=/admin/billings").headers["Location"]
        == "/admin/billings"
    )
