"""User management: create, change role, deactivate, reset password (SPEC §1, §6)."""

from __future__ import annotations

import re

import sqlalchemy as sa

from portal.accounts.passwords import verify_password
from portal.extensions import db
from portal.models import AuditEvent, User

from .conftest import audit_actions, count, get


def _new_user(client, **data):
    form = {
        "name": "Fran Finance",
        "email": "fran@example.com",
        "role": "finance",
        "active": "1",
        "password": "finance passphrase 1",
    } | data
    return client.post("/admin/users/new", data=form)


def test_admin_creates_a_user_who_can_sign_in(app, client, auth, users) -> None:
    auth.login_user(users["admin"])
    assert client.get("/admin/users").status_code == 200
    assert _new_user(client).status_code == 302
    duplicate = _new_user(client, email="FRAN@example.com")
    assert duplicate.status_code == 400
    assert "Another user already has this email address." in duplicate.get_data(
        as_text=True
    )
    weak = _new_user(client, email="weak@example.com", password="aaaaaaaaaaaaa")
    assert weak.status_code == 400
    assert "Use a less repetitive password." in weak.get_data(as_text=True)
    bad_role = _new_user(client, email="boss@example.com", role="superuser")
    assert bad_role.status_code == 400
    assert count(app, User, User.email.ilike("fran@example.com")) == 1
    with app.app_context():
        user = db.session.scalars(
            sa.select(User).where(User.email == "fran@example.com")
        ).one()
        assert user.role == "finance"
        assert user.password_hash.startswith("$argon2id$")
        event = db.session.scalars(
            sa.select(AuditEvent).where(AuditEvent.action == "user.create")
        ).one()
        assert event.after["role"] == "finance"
        assert "password" not in str(event.after)
    other = app.test_client()
    response = other.post(
        "/admin/login",
        data={"email": "fran@example.com", "password": "finance passphrase 1"},
    )
    assert response.status_code == 302


def test_role_change_and_deactivation_end_sessions(app, client, auth, users) -> None:
    viewer_id = users["viewer"]
    victim = app.test_client()
    with app.app_context():
        email = db.session.get(User, viewer_id).email
    from .. import factories as f

    assert (
        victim.post(
            "/admin/login", data={"email": email, "password": f.PASSWORD}
        ).status_code
        == 302
    )
    assert victim.get("/admin/").status_code == 200
    auth.login_user(users["admin"])
    page = client.get(f"/admin/users/{viewer_id}")
    assert page.status_code == 200
    response = client.post(
        f"/admin/users/{viewer_id}",
        data={"name": "Vic", "email": email, "role": "finance", "active": "1"},
    )
    assert response.status_code == 302
    assert get(app, User, viewer_id).role == "finance"
    assert victim.get("/admin/").status_code == 302  # signed out by the role change
    assert (
        victim.post(
            "/admin/login", data={"email": email, "password": f.PASSWORD}
        ).status_code
        == 302
    )
    client.post(
        f"/admin/users/{viewer_id}",
        data={"name": "Vic", "email": email, "role": "finance", "active": ""},
    )
    user = get(app, User, viewer_id)
    assert user.active is False
    assert victim.get("/admin/").status_code == 302
    assert (
        victim.post(
            "/admin/login", data={"email": email, "password": f.PASSWORD}
        ).status_code
        == 401
    )
    actions = audit_actions(app, object_type="user", object_id=viewer_id)
    assert actions.count("user.update") == 2


def test_admin_cannot_lock_themselves_out(app, client, auth, users) -> None:
    admin_id = users["admin"]
    auth.login_user(admin_id)
    email = get(app, User, admin_id).email
    response = client.post(
        f"/admin/users/{admin_id}",
        data={"name": "Me", "email": email, "role": "viewer", "active": "1"},
    )
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "You cannot deactivate yourself or change your own role" in page
    assert get(app, User, admin_id).role == "admin"


def test_reset_password_unlocks_and_ends_sessions(app, client, auth, users) -> None:
    finance_id = users["finance"]
    with app.app_context():
        user = db.session.get(User, finance_id)
        user.failed_logins = 3
        version = user.session_version
        db.session.commit()
    auth.login_user(users["admin"])
    short = client.post(
        f"/admin/users/{finance_id}/password", data={"password": "short"}
    )
    assert "Password not changed" in client.get(short.headers["Location"]).get_data(
        as_text=True
    )
    client.post(
        f"/admin/users/{finance_id}/password", data={"password": "a fresh passphrase 9"}
    )
    user = get(app, User, finance_id)
    assert verify_password(user.password_hash, "a fresh passphrase 9")
    assert user.failed_logins == 0 and user.session_version == version + 1
    assert "user.password_reset" in audit_actions(app, object_type="user")


def test_users_page_searches(app, client, auth, users) -> None:
    auth.login_user(users["admin"])
    page = client.get("/admin/users?q=viewer").get_data(as_text=True)
    assert re.search(r"viewer\d+@example\.com", page)
    assert not re.search(r"finance\d+@example\.com", page)
