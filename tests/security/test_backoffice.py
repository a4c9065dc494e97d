"""Attacks on the back office (SPEC §1, §3, §6): sign-in throttling, open
redirects, replayed sessions, stale decisions and mass assignment. Each case
checks the HTTP answer and the database after it."""

from __future__ import annotations

import re
from decimal import Decimal
from types import SimpleNamespace
from urllib.parse import urljoin, urlsplit

import pytest
import sqlalchemy as sa

from portal.accounts.users import MAX_FAILED_LOGINS
from portal.extensions import db
from portal.models import (
    ApiToken,
    AuditEvent,
    Billing,
    Comment,
    Commitment,
    OutboxMessage,
    Project,
    RevisionSnapshot,
    SignInFailure,
    User,
)

from .. import factories as f
from ..conftest import make_test_app
from . import fuzz

HOST = "localhost"


def _login(client, email: str, password: str = f.PASSWORD, **extra):
    return client.post(
        "/admin/login", data={"email": email, "password": password, **extra}
    )


def _user(app, user_id: int) -> User:
    with app.app_context():
        user = db.session.get(User, user_id)
        db.session.expunge(user)
        return user


def _email(app, user_id: int) -> str:
    return _user(app, user_id).email


# ------------------------------------------------------------------ sign-in


def _sign_in(app, email: str, password: str, address: str):
    client = app.test_client()
    response = client.post(
        "/admin/login",
        data={"email": email, "password": password},
        environ_base={"REMOTE_ADDR": address},
    )
    return client, response


def test_lockout_tells_nothing_and_never_locks_the_real_user_out(app, users) -> None:
    """Issue 17: five wrong passwords lock that email *from that address*; the
    answers are the same for a real account and a made-up one; the owner
    signing in from elsewhere gets in (and the lock is audited)."""
    email = _email(app, users["viewer"])
    answers = {}
    for target in (email, "made-up-person@example.com"):
        texts = []
        for n in range(MAX_FAILED_LOGINS + 1):
            _, response = _sign_in(app, target, f"guess {n} is wrong", "10.0.0.66")
            assert response.status_code == 401
            texts.append(re.sub(r"\d+ minute", "N minute", _flash_text(response)))
        answers[target] = texts
    assert answers[email] == answers["made-up-person@example.com"], answers
    assert "Too many failed sign-ins" in answers[email][-1]
    # The right password from the attacker's address is refused while locked...
    client, response = _sign_in(app, email, f.PASSWORD, "10.0.0.66")
    assert response.status_code == 401 and client.get("/admin/").status_code == 302
    # ...and works from the owner's address.
    client, response = _sign_in(app, email, f.PASSWORD, "10.9.9.9")
    assert response.status_code == 302 and client.get("/admin/").status_code == 200
    with app.app_context():
        actions = db.session.scalars(
            sa.select(AuditEvent.action).where(
                AuditEvent.object_type == "user",
                AuditEvent.object_id == users["viewer"],
            )
        ).all()
        assert "user.locked" in actions and "user.login" in actions


def _flash_text(response) -> str:
    match = re.search(
        r'class="alert[^"]*"[^>]*>(.*?)<', response.get_data(as_text=True), re.S
    )
    return match.group(1).strip() if match else ""


def test_login_throttled_per_address_counts_nothing_more(
    database_url, tmp_path, users
) -> None:
    """Per address: after the limit, 429s; throttled attempts never reach the
    account (no extra failure counted, no lockout by a flood)."""
    throttled = make_test_app(
        database_url, tmp_path, RATELIMIT_ENABLED=True, LOGIN_RATE_LIMIT="3 per minute"
    )
    email = _email(throttled, users["admin"])
    client = throttled.test_client()
    codes = [_login(client, email, f"wrong {n}").status_code for n in range(10)]
    assert codes == [401] * 3 + [429] * 7
    with throttled.app_context():
        rows = db.session.scalars(sa.select(SignInFailure)).all()
        assert [(r.failures, r.locked_until) for r in rows] == [(3, None)]
        db.session.remove()
    assert "Too many sign-in attempts" in _login(client, email).get_data(as_text=True)
    with throttled.app_context():
        db.engine.dispose()


# ------------------------------------------------------------------ redirects

OPEN_REDIRECTS = [
    "https://evil.example/",
    "http://evil.example",
    "//evil.example",
    "///evil.example",
    "////evil.example",
    "/\\evil.example",
    "\\\\evil.example",
    "\\/evil.example",
    "https:evil.example",
    "http:/evil.example",
    "https:/\\evil.example",
    "%2F%2Fevil.example",
    "/%2F/evil.example",
    "%5C%5Cevil.example",
    "javascript:alert(1)",
    "JaVaScRiPt:alert(1)",
    "java\tscript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "\t//evil.example",
    "/\t/evil.example",
    "/\r\n/evil.example",
    " //evil.example",
    "\x00//evil.example",
    "/\x00/evil.example",
    "\u3000//evil.example",
    "／／evil.example",
    "//evil.example@localhost",
    "/admin/@evil.example",
    "http://localhost@evil.example/",
    "//localhost.evil.example",
    "/.//evil.example",
    "/..//evil.example",
    "\\x2F\\x2Fevil.example",
]


def _lands_home(location: str) -> bool:
    """Where a browser would go: lenient parsing (backslashes as slashes, tabs
    and newlines dropped) must still stay on our host."""
    lenient = re.sub(r"[\t\n\r]", "", location.replace("\\", "/")).lstrip(
        "".join(map(chr, range(0x21)))
    )
    target = urljoin(f"http://{HOST}/admin/login", lenient)
    return urlsplit(target).netloc == HOST and urlsplit(target).scheme == "http"


@pytest.mark.parametrize("target", OPEN_REDIRECTS)
def test_next_never_leaves_the_site(app, client, users, target: str) -> None:
    """Signing in with a hostile ?next=, and visiting the login page with it while
    signed in: the redirect stays on our host; the form never echoes it raw."""
    page = client.get("/admin/login", query_string={"next": target})
    assert page.status_code == 200
    assert 'value="' + target + '"' not in page.get_data(as_text=True) or target in (
        "/admin/@evil.example",
        "/.//evil.example",
        "/..//evil.example",
        "/%2F/evil.example",
    )
    response = _login(client, _email(app, users["admin"]), next=target)
    assert response.status_code == 302
    assert _lands_home(response.headers["Location"]), response.headers["Location"]
    # Already signed in: the login page redirects straight away, also safely.
    again = client.get("/admin/login", query_string={"next": target})
    assert again.status_code == 302
    assert _lands_home(again.headers["Location"])
    assert _user(app, users["admin"]).failed_logins == 0


@pytest.mark.parametrize("target", OPEN_REDIRECTS[:12])
def test_back_fields_never_leave_the_site(app, client, auth, lite, target: str) -> None:
    """The small POST forms that return to a ``back`` page."""
    from portal.models import Contact

    ids = lite
    auth.login_user(ids.admin_id)
    with app.app_context():
        before = db.session.get(User, ids.admin_id).session_version
        revoked = db.session.get(Contact, ids.other_contact_id).token_version + 1
    response = client.post(
        f"/admin/contacts/{ids.other_contact_id}/revoke-links", data={"back": target}
    )
    assert response.status_code == 302
    assert _lands_home(response.headers["Location"])
    with app.app_context():
        assert db.session.get(Contact, ids.other_contact_id).token_version == revoked
        assert db.session.get(User, ids.admin_id).session_version == before


# ------------------------------------------------------------------ sessions


@pytest.mark.parametrize("how", ["logout", "password-change", "deactivation"])
def test_session_replay_is_refused(app, users, how: str) -> None:
    """Copy the cookie, end the session, replay it from another browser."""
    ids = SimpleNamespace(finance_id=users["finance"], admin_id=users["admin"])
    email = _email(app, ids.finance_id)
    browser = app.test_client()
    assert _login(browser, email).status_code == 302
    stolen = browser.get_cookie("session").value
    thief = app.test_client()
    thief.set_cookie("session", stolen)
    assert thief.get("/exports/").status_code == 200
    before = _user(app, ids.finance_id).session_version
    if how == "logout":
        assert browser.post("/admin/logout").status_code == 302
    elif how == "password-change":
        response = browser.post(
            "/admin/account",
            data={
                "current_password": f.PASSWORD,
                "new_password": "a new long passphrase 77",
                "confirm_password": "a new long passphrase 77",
            },
        )
        assert response.status_code == 302
    else:
        admin = app.test_client()
        assert _login(admin, _email(app, ids.admin_id)).status_code == 302
        response = admin.post(
            f"/admin/users/{ids.finance_id}",
            data={"name": "Finance", "email": email, "role": "finance"},
        )
        assert response.status_code == 302
    replay = thief.get("/exports/")
    assert replay.status_code == 302
    assert urlsplit(replay.headers["Location"]).path == "/admin/login"
    assert thief.post("/exports/tokens", data={"name": "stolen"}).status_code == 302
    after = _user(app, ids.finance_id)
    assert after.session_version == before + 1
    with app.app_context():
        assert (
            db.session.scalar(
                sa.select(sa.func.count(ApiToken.id)).where(ApiToken.name == "stolen")
            )
            == 0
        )


def test_contact_session_replay_after_logout_is_refused(app, lite) -> None:
    """A contact's copied cookie stops working once that session signs out,
    while the contact's other sessions and unused links keep working."""
    ids = lite
    with app.app_context():
        from portal.accounts import tokens
        from portal.models import Contact

        contact = db.session.get(Contact, ids.contact_id)
        first = tokens.issue_link(contact)[1]
        second = tokens.issue_link(contact)[1]
        unused = tokens.issue_link(contact)[1]
        db.session.commit()
    browser, other_device = app.test_client(), app.test_client()
    assert browser.post(f"/portal/link/{first}").status_code == 302
    assert other_device.post(f"/portal/link/{second}").status_code == 302
    thief = app.test_client()
    thief.set_cookie("session", browser.get_cookie("session").value)
    assert thief.get("/portal/").status_code == 200
    assert browser.post("/portal/logout").status_code == 302
    assert thief.get("/portal/").status_code == 401
    assert (
        thief.post(
            f"/portal/billings/{ids.draft_id}/comments", data={"body": "x"}
        ).status_code
        == 401
    )
    assert other_device.get("/portal/").status_code == 200
    assert app.test_client().post(f"/portal/link/{unused}").status_code == 302
    with app.app_context():
        assert (
            db.session.scalar(
                sa.select(sa.func.count(Comment.id)).where(Comment.body == "x")
            )
            == 0
        )


# ------------------------------------------------------------------ contacts


def test_contact_session_on_every_admin_and_exports_route(
    app, client, auth, ids, tally
) -> None:
    """A contact's session: 403 on every admin.* and exports.* page (GET and
    POST), 401 on the token API, and nothing written."""
    from . import crawl

    auth.login_contact(ids.contact_id)
    with app.app_context():
        before = fuzz.fingerprint()
    tried = 0
    for route in crawl.routes(app):
        if route.area not in ("admin", "exports", "api"):
            continue
        url = crawl.url_for_route(app, route, ids)
        for method in sorted(route.methods):
            response = client.open(url, method=method, data={"name": "x"})
            tried += 1
            if route.endpoint == "admin.login":
                assert response.status_code in (200, 400, 401), (route.endpoint, method)
            elif route.endpoint == "exports.api_openapi":
                assert response.status_code == 200
            elif route.area == "api":
                assert response.status_code == 401, (route.endpoint, method)
            else:
                assert response.status_code == 403, (route.endpoint, method)
    with app.app_context():
        ignore = ("n_audit_events", "v_users")  # the POST to /admin/login failed
        assert fuzz.changed(before, fuzz.fingerprint(), ignore) == []
    tally(tried)
    assert tried > 100


# ------------------------------------------------------------------ stale


def _billing_state(app, billing_id: int) -> tuple:
    with app.app_context():
        billing = db.session.get(Billing, billing_id)
        lines = tuple(
            (bl.claimed_work, bl.approved_work, bl.status, bl.reviewer_comment)
            for bl in sorted(billing.lines, key=lambda x: x.id)
        )
        counts = tuple(
            db.session.scalar(sa.select(sa.func.count()).select_from(model))
            for model in (AuditEvent, OutboxMessage, Comment, RevisionSnapshot)
        )
        out = (billing.status, billing.version, billing.notes, lines, counts)
        db.session.remove()
        return out


STALE_POSTS = {
    "review-save": ("admin", "/admin/billings/{review}/decide", {"decision": "save"}),
    "approve": ("admin", "/admin/billings/{review}/decide", {"decision": "approve"}),
    "hold": ("admin", "/admin/billings/{review}/decide", {"decision": "hold"}),
    "send-back": (
        "admin",
        "/admin/billings/{review}/decide",
        {"decision": "send_back", "comment": "Fix line 1"},
    ),
    "void": ("admin", "/admin/billings/{review}/void", {"reason": "Duplicate"}),
    "admin-edit": (
        "admin",
        "/admin/billings/{draft}/edit",
        {"action": "save", "notes": "admin edit"},
    ),
    "contact-save": (
        "contact",
        "/portal/billings/{draft}",
        {"action": "save", "notes": "contact edit"},
    ),
    "contact-submit": ("contact", "/portal/billings/{draft}", {"action": "submit"}),
}


@pytest.mark.parametrize("case", list(STALE_POSTS))
@pytest.mark.parametrize("version", ["old", "missing", "future", "garbage"])
def test_stale_decisions_are_refused(
    app, client, auth, lite, case: str, version: str
) -> None:
    """A decision made on a page loaded before the billing changed: refused with
    the "changed meanwhile" message and nothing written."""
    ids = lite
    role, path, data = STALE_POSTS[case]
    billing_id = ids.review_id if "{review}" in path else ids.draft_id
    url = path.format(review=ids.review_id, draft=ids.draft_id)
    with app.app_context():
        current = db.session.get(Billing, billing_id).version
    data = dict(data)
    if version != "missing":
        data["version"] = {
            "old": str(current - 1),
            "future": str(current + 5),
            "garbage": "1e309",
        }[version]
    if role == "admin":
        auth.login_user(ids.admin_id)
    else:
        auth.login_contact(ids.contact_id)
    before = _billing_state(app, billing_id)
    response = client.post(url, data=data)
    assert response.status_code in (302, 400, 409, 422)
    with client.session_transaction() as sess:
        flashes = sess.pop("_flashes", [])
    assert (
        any(category in ("danger", "warning") for category, _ in flashes)
        or response.status_code >= 400
    )
    assert _billing_state(app, billing_id) == before


# ------------------------------------------------------------------ mass assignment


def test_mass_assignment_on_the_admin_billing_form(app, client, auth, ids) -> None:
    auth.login_user(ids.admin_id)
    with app.app_context():
        billing = db.session.get(Billing, ids.draft_id)
        version, line = billing.version, billing.lines[0]
        line_id = line.id
        snapshot = (
            billing.status,
            billing.commitment_id,
            billing.period_id,
            billing.application_number,
            billing.revision,
            billing.created_by_contact_id,
            billing.decided_by_id,
            billing.export_batch_id if hasattr(billing, "export_batch_id") else None,
        )
    response = client.post(
        f"/admin/billings/{ids.draft_id}/edit",
        data={
            "version": str(version),
            "action": "save",
            "notes": "honest edit",
            f"line-{ids.third_line_ids[0]}-work": "1000.00",
            f"line-{ids.third_line_ids[0]}-materials": "0",
            "status": "approved",
            "commitment_id": str(ids.commitment_id),
            "period_id": str(ids.period1_id),
            "application_number": "99",
            "revision": "7",
            "created_by_contact_id": str(ids.other_contact_id),
            "decided_by_id": str(ids.admin_id),
            "export_batch_id": str(ids.batch_id),
            f"line-{line_id}-approved_work": "999999.00",
            f"line-{line_id}-status": "approved",
            "approved_figures": "{}",
        },
    )
    assert response.status_code == 302
    with app.app_context():
        billing = db.session.get(Billing, ids.draft_id)
        assert billing.notes == "honest edit" and billing.version == version + 1
        assert (
            billing.status,
            billing.commitment_id,
            billing.period_id,
            billing.application_number,
            billing.revision,
            billing.created_by_contact_id,
            billing.decided_by_id,
            billing.export_batch_id if hasattr(billing, "export_batch_id") else None,
        ) == snapshot
        line = next(bl for bl in billing.lines if bl.id == line_id)
        assert line.approved_work == line.claimed_work == Decimal("1000.00")
        assert line.status == "pending" and billing.approved_figures is None


def test_mass_assignment_on_the_contact_billing_form(app, client, auth, ids) -> None:
    auth.login_contact(ids.contact_id)
    with app.app_context():
        billing = db.session.get(Billing, ids.draft_id)
        version = billing.version
        line_id = billing.lines[0].id
    response = client.post(
        f"/portal/billings/{ids.draft_id}",
        data={
            "version": str(version),
            "action": "save",
            "status": "approved",
            "approved_figures": "{}",
            f"line-{line_id}-approved_work": "1",
            f"line-{ids.line_ids[0]}-work": "40000.00",  # another commitment's line
            f"line-{ids.third_line_ids[1]}-work": "10.00",
        },
    )
    assert response.status_code == 302
    with app.app_context():
        billing = db.session.get(Billing, ids.draft_id)
        assert billing.status == "draft" and billing.approved_figures is None
        line = next(bl for bl in billing.lines if bl.id == line_id)
        assert line.approved_work == line.claimed_work == Decimal("1000.00")
        other = db.session.get(Billing, ids.billing2_id)
        assert all(bl.sov_line_id not in ids.line_ids for bl in billing.lines)
        assert other.status == "approved_as_noted"


def test_mass_assignment_of_role_and_ownership(app, client, auth, ids) -> None:
    """A viewer's own account page and token page can't raise a role, move a
    token to another user or reactivate anything."""
    auth.login_user(ids.viewer_id)
    response = client.post(
        "/admin/account",
        data={
            "current_password": f.PASSWORD,
            "new_password": "viewer new passphrase 1",
            "confirm_password": "viewer new passphrase 1",
            "role": "admin",
            "email": "owned@evil.example",
            "active": "1",
            "session_version": "1",
        },
    )
    assert response.status_code == 302
    response = client.post(
        "/exports/tokens", data={"name": "mine", "user_id": str(ids.admin_id)}
    )
    assert response.status_code in (200, 302)
    with app.app_context():
        viewer = db.session.get(User, ids.viewer_id)
        assert viewer.role == "viewer" and viewer.email != "owned@evil.example"
        token = db.session.scalars(
            sa.select(ApiToken).where(ApiToken.name == "mine")
        ).one()
        assert token.user_id == ids.viewer_id


def test_mass_assignment_of_commitment_and_project_status(
    app, client, auth, ids
) -> None:
    """Edit forms ignore status/ids; status changes only through their own action."""
    auth.login_user(ids.admin_id)
    with app.app_context():
        commitment = db.session.get(Commitment, ids.draft_commitment_id)
        fields = {
            "vendor_id": str(commitment.vendor_id),
            "kind": commitment.kind,
            "number": commitment.number,
            "title": "Retitled",
            "work_retainage_pct": "10",
            "materials_retainage_pct": "5",
        }
        project_id = db.session.get(Project, ids.project_id).id
    response = client.post(
        f"/admin/commitments/{ids.draft_commitment_id}/edit",
        data=fields | {"status": "approved", "project_id": "999", "id": "1"},
    )
    assert response.status_code == 302
    with app.app_context():
        commitment = db.session.get(Commitment, ids.draft_commitment_id)
        assert commitment.title == "Retitled"
        assert commitment.status == "draft" and commitment.project_id == project_id
