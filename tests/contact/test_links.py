"""Magic links (SPEC §6): confirm page, exchange, every bad link, fresh links."""

from __future__ import annotations

import logging
import time
from datetime import timedelta

import pytest
import sqlalchemy as sa
from itsdangerous import TimestampSigner, URLSafeTimedSerializer

from portal.accounts import tokens
from portal.billing.drafts import expand_link_requests
from portal.extensions import db
from portal.models import AuditEvent, Contact, Invitation, LoginLink, OutboxMessage
from portal.timeutil import utcnow
from portal.web import redact

from .. import factories as f
from .conftest import count, text_of

#: Dates matter here: .ci/run also runs these at pinned days (tests/clock.py).
pytestmark = pytest.mark.calendar


def _link(token_id: int) -> LoginLink:
    return db.session.get(LoginLink, token_id)


def _only_link(contact_id: int) -> LoginLink:
    return db.session.scalars(
        sa.select(LoginLink)
        .where(LoginLink.contact_id == contact_id)
        .order_by(LoginLink.id.desc())
    ).first()


def _signed_in_as(client, name: str) -> bool:
    response = client.get("/portal/")
    return response.status_code == 200 and name in response.text


# ------------------------------------------------------------------ the good path


def test_get_and_head_show_who_and_change_nothing(app, client, w, issue, app_ctx):
    token = issue(w.contact_id)
    with app_ctx():
        events_before = count(AuditEvent)
        mails_before = count(OutboxMessage)
    for method in (client.get, client.head, client.get):
        response = method(f"/portal/link/{token}")
        assert response.status_code == 200
        assert response.headers["Referrer-Policy"] == "same-origin"
        assert "no-store" in response.headers["Cache-Control"]
    page = client.get(f"/portal/link/{token}").text
    assert "Casey Contact" in page and "Example Electric" in page
    assert ">Continue</button>" in page
    assert "casey@" not in page  # the address is masked
    with app_ctx():
        link = _only_link(w.contact_id)
        assert link.used_at is None
        assert count(AuditEvent) == events_before
        assert count(OutboxMessage) == mails_before
    # Prefetching signed nobody in.
    assert client.get("/portal/").status_code == 401


def test_post_exchanges_link_for_a_session(app, client, w, issue, app_ctx):
    token = issue(w.contact_id)
    client.get(f"/portal/link/{token}")
    client.head(f"/portal/link/{token}")
    response = client.post(f"/portal/link/{token}", data={"action": "continue"})
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/portal/")
    assert "no-store" in response.headers["Cache-Control"]
    home = client.get("/portal/")
    assert home.status_code == 200
    assert "Casey Contact" in home.text and "SC-100" in home.text
    with app_ctx():
        link = _only_link(w.contact_id)
        assert link.used_at is not None
        event = db.session.scalars(
            sa.select(AuditEvent).where(AuditEvent.action == "contact.sign_in")
        ).one()
        assert event.actor_contact_id == w.contact_id
        assert event.after == {"link_id": link.id}
        # The token never reaches audit events.
        for ev in db.session.scalars(sa.select(AuditEvent)):
            assert token not in str(ev.before) and token not in str(ev.after)


def test_invitation_link_leads_to_the_commitment_or_its_billing(
    app, client, w, issue, make_billing, app_ctx
):
    with app.app_context():
        invitation = Invitation(
            period_id=w.period1_id,
            commitment_id=w.commitment_id,
            contact_id=w.contact_id,
            invited_by_id=w.admin_id,
        )
        db.session.add(invitation)
        db.session.commit()
        inv_id = invitation.id
        db.session.remove()
    token = issue(w.contact_id, inv_id)
    page = client.get(f"/portal/link/{token}").text
    assert "SC-100" in page and "Worked Example" in page  # what the invite is for
    response = client.post(f"/portal/link/{token}")
    assert response.headers["Location"].endswith(
        f"/portal/#commitment-{w.commitment_id}"
    )
    billing_id = make_billing(w)
    token = issue(w.contact_id, inv_id)
    other = app.test_client()
    response = other.post(f"/portal/link/{token}")
    assert response.headers["Location"].endswith(f"/portal/billings/{billing_id}")


def test_two_exchanges_of_one_link_only_one_wins(app, w, issue, app_ctx):
    token = issue(w.contact_id)
    first, second = app.test_client(), app.test_client()
    # Both opened the confirm page (two tabs / a forwarded mail).
    assert first.get(f"/portal/link/{token}").status_code == 200
    assert second.get(f"/portal/link/{token}").status_code == 200
    assert first.post(f"/portal/link/{token}").status_code == 302
    response = second.post(f"/portal/link/{token}")
    assert response.status_code == 410
    assert "already used" in response.text
    assert _signed_in_as(first, "Casey Contact")
    assert second.get("/portal/").status_code == 401
    with app_ctx():
        assert count(AuditEvent, AuditEvent.action == "contact.sign_in") == 1


def test_double_click_by_the_same_browser_lands_home(app, client, w, issue):
    token = issue(w.contact_id)
    assert client.post(f"/portal/link/{token}").status_code == 302
    again = client.post(f"/portal/link/{token}")
    assert again.status_code == 302
    assert again.headers["Location"].endswith("/portal/")


# ------------------------------------------------------------------ bad links


def test_tampered_token_gets_the_generic_request_form(app, client, w, issue, app_ctx):
    token = issue(w.contact_id)
    tampered = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    for bad in (tampered, "not-a-token", "x" * 1000):
        response = client.get(f"/portal/link/{bad}")
        assert response.status_code == 410
        assert "This link can't be used" in response.text
        assert "Email me a fresh link</button>" not in response.text
        assert 'action="/portal/new-link"' in response.text
        assert response.headers["Referrer-Policy"] == "same-origin"
        assert "no-store" in response.headers["Cache-Control"]
    # Neither exchanging nor asking for a fresh link does anything.
    assert client.post(f"/portal/link/{tampered}").status_code == 410
    response = client.post(
        f"/portal/link/{tampered}",
        data={"action": "fresh", "email": "casey@example-electric.example"},
    )
    assert response.status_code == 410
    with app_ctx():
        assert count(OutboxMessage) == 0
        assert _only_link(w.contact_id).used_at is None
    assert client.get("/portal/").status_code == 401


def test_token_with_another_purpose_is_refused(app, client, w, app_ctx):
    with app_ctx():
        contact = db.session.get(Contact, w.contact_id)
        link, _ = tokens.issue_link(contact)
        db.session.commit()
        forged = tokens.serializer(salt="password-reset").dumps({"l": link.id})
    response = client.post(f"/portal/link/{forged}")
    assert response.status_code == 410
    assert "Email me a fresh link</button>" not in response.text
    assert client.get("/portal/").status_code == 401


def _fresh_mails(contact_email: str) -> list[OutboxMessage]:
    return list(
        db.session.scalars(
            sa.select(OutboxMessage).where(
                OutboxMessage.kind == "new_link",
                OutboxMessage.recipient == contact_email,
            )
        )
    )


def test_expired_link_offers_a_fresh_one_to_the_address_on_file(
    app, client, w, issue, app_ctx
):
    token = issue(w.contact_id)
    with app_ctx():
        link = _only_link(w.contact_id)
        link.expires_at = utcnow() - timedelta(minutes=1)
        db.session.commit()
    response = client.get(f"/portal/link/{token}")
    assert response.status_code == 410
    assert "This link has expired" in response.text
    assert "Email me a fresh link</button>" in response.text
    assert client.post(f"/portal/link/{token}").status_code == 410
    assert client.get("/portal/").status_code == 401
    # The typed address is ignored: the mail goes to the address on file.
    response = client.post(
        f"/portal/link/{token}",
        data={"action": "fresh", "email": "attacker@evil.example"},
    )
    assert response.status_code == 200
    assert "Check your email" in response.text
    with app_ctx():
        mails = _fresh_mails("casey@example-electric.example")
        assert len(mails) == 1
        assert "http://portal.test/portal/link/" in mails[0].body_text
        assert count(OutboxMessage, OutboxMessage.recipient.like("%evil%")) == 0
        assert count(LoginLink, LoginLink.contact_id == w.contact_id) == 2
    # The fresh link works.
    new_token = mails[0].body_text.split("/portal/link/")[1].split()[0]
    assert client.post(f"/portal/link/{new_token}").status_code == 302
    assert _signed_in_as(client, "Casey Contact")


def test_link_signed_long_ago_is_expired(app, client, w, app_ctx):
    class OldSigner(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) - 15 * 86400

    with app_ctx():
        contact = db.session.get(Contact, w.contact_id)
        link, _ = tokens.issue_link(contact)
        db.session.commit()
        token = URLSafeTimedSerializer(
            app.config["SECRET_KEY"], salt=tokens.LINK_SALT, signer=OldSigner
        ).dumps({"l": link.id})
    response = client.get(f"/portal/link/{token}")
    assert response.status_code == 410
    assert "This link has expired" in response.text
    assert client.post(f"/portal/link/{token}").status_code == 410
    assert client.get("/portal/").status_code == 401


def test_used_link_says_so_and_offers_a_fresh_one(app, client, w, issue, app_ctx):
    token = issue(w.contact_id)
    assert app.test_client().post(f"/portal/link/{token}").status_code == 302
    response = client.get(f"/portal/link/{token}")
    assert response.status_code == 410
    assert "This link was already used" in response.text
    assert "Email me a fresh link</button>" in response.text
    client.post(f"/portal/link/{token}", data={"action": "fresh"})
    with app_ctx():
        assert len(_fresh_mails("casey@example-electric.example")) == 1


def test_revoked_links_and_sessions_end_at_once(app, client, w, issue, app_ctx):
    used = issue(w.contact_id)
    unused = issue(w.contact_id)
    assert client.post(f"/portal/link/{used}").status_code == 302
    assert _signed_in_as(client, "Casey Contact")
    with app_ctx():
        tokens.revoke_contact_links(db.session.get(Contact, w.contact_id))
        db.session.commit()
    assert client.get("/portal/").status_code == 401  # the session ended
    other = app.test_client()
    response = other.get(f"/portal/link/{unused}")
    assert response.status_code == 410
    assert "no longer valid" in response.text
    assert "Email me a fresh link</button>" in response.text
    assert other.post(f"/portal/link/{unused}").status_code == 410
    assert other.get("/portal/").status_code == 401
    other.post(f"/portal/link/{unused}", data={"action": "fresh"})
    with app_ctx():
        assert len(_fresh_mails("casey@example-electric.example")) == 1


def test_deactivated_contact_gets_no_fresh_link(app, client, w, issue, app_ctx):
    token = issue(w.contact_id)
    with app_ctx():
        db.session.get(Contact, w.contact_id).active = False
        db.session.commit()
    response = client.get(f"/portal/link/{token}")
    assert response.status_code == 410
    assert "Email me a fresh link</button>" not in response.text
    client.post(f"/portal/link/{token}", data={"action": "fresh"})
    assert client.post(f"/portal/link/{token}").status_code == 410
    with app_ctx():
        assert count(OutboxMessage) == 0


def test_cross_contact_token_gives_only_that_contacts_session(
    app, client, w, issue, make_billing
):
    billing_id = make_billing(w)
    token = issue(w.other_contact_id)
    assert client.post(f"/portal/link/{token}").status_code == 302
    home = client.get("/portal/")
    assert "Olive Other" in home.text and "SC-200" in home.text
    assert "SC-100" not in home.text
    assert client.get(f"/portal/billings/{billing_id}").status_code == 404


def test_signing_in_with_another_contacts_link_replaces_the_session(
    app, client, w, issue
):
    assert client.post(f"/portal/link/{issue(w.contact_id)}").status_code == 302
    token = issue(w.other_contact_id)
    page = client.get(f"/portal/link/{token}").text
    assert "Continuing signs you in as Olive Other" in page
    client.post(f"/portal/link/{token}")
    home = client.get("/portal/").text
    assert "Olive Other" in home and "SC-100" not in home


def test_fresh_links_are_throttled_per_contact(app, client, w, issue, app_ctx):
    token = issue(w.contact_id)
    app.test_client().post(f"/portal/link/{token}")
    pages = [
        client.post(f"/portal/link/{token}", data={"action": "fresh"}).text
        for _ in range(5)
    ]
    assert all("Check your email" in p for p in pages[:3])
    assert all("A link is already on its way" in p for p in pages[3:])
    with app_ctx():
        assert len(_fresh_mails("casey@example-electric.example")) == 3


# ------------------------------------------------------------------ new-link form


def test_new_link_answers_the_same_for_known_and_unknown(app, client, w, app_ctx):
    with app_ctx():
        # The same person is a contact at a second vendor, with different case.
        vendor = f.make_vendor(name="Second Vendor")
        f.make_contact(
            vendor, name="Casey Again", email="CASEY@Example-Electric.example"
        )
        inactive = f.make_vendor(name="Gone Vendor")
        f.make_contact(
            inactive,
            name="Casey Gone",
            email="casey@example-electric.example",
            active=False,
        )
        db.session.commit()
    assert client.get("/portal/new-link").status_code == 200
    known = client.post(
        "/portal/new-link", data={"email": "casey@example-electric.example"}
    )
    unknown = client.post(
        "/portal/new-link", data={"email": "nobody@example-electric.example"}
    )
    assert known.status_code == unknown.status_code == 200
    assert known.text.replace(
        "casey@example-electric.example", "EMAIL"
    ) == unknown.text.replace("nobody@example-electric.example", "EMAIL")
    assert "If <strong>casey@example-electric.example</strong> belongs" in known.text
    with app_ctx():
        expand_link_requests()  # the mail worker's first step
        mails = list(
            db.session.scalars(
                sa.select(OutboxMessage).where(OutboxMessage.kind == "new_link")
            )
        )
        assert sorted(m.recipient for m in mails) == [
            "CASEY@Example-Electric.example",
            "casey@example-electric.example",
        ]
        assert count(LoginLink) == 2


def test_new_link_form_checks_the_address(app, client, w, app_ctx):
    for bad in ("", "no-at-sign", "a@b", "x" * 250 + "@example.com"):
        response = client.post("/portal/new-link", data={"email": bad})
        assert response.status_code == 422
        assert 'id="email-error"' in response.text
    with app_ctx():
        assert count(OutboxMessage) == 0


# ------------------------------------------------------------------ sessions


def test_logout_ends_the_contact_session(app, client, w, issue):
    assert client.post(f"/portal/link/{issue(w.contact_id)}").status_code == 302
    assert client.get("/portal/").status_code == 200
    response = client.post("/portal/logout")
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/portal/new-link")
    assert client.get("/portal/").status_code == 401


def test_anonymous_visitors_are_told_to_use_their_link(app, client, w):
    response = client.get("/portal/")
    assert response.status_code == 401
    assert "Please sign in with your emailed link" in text_of(response.text)
    assert 'action="/portal/new-link"' in response.text


def test_staff_are_refused(app, client, auth, w):
    auth.login_user(w.admin_id)
    assert client.get("/portal/").status_code == 403


def test_expired_contact_session_needs_a_new_link(app, client, w, issue):
    assert client.post(f"/portal/link/{issue(w.contact_id)}").status_code == 302
    with client.session_transaction() as sess:
        sess["started"] = int(utcnow().timestamp()) - 13 * 3600
    assert client.get("/portal/").status_code == 401


# ------------------------------------------------------------------ logs


def test_tokens_are_redacted_from_request_logs(caplog):
    from flask import Flask

    redact.install(Flask("x"))
    token = "eyJsIjoxfQ.aBcD.eFgH-iJkL_mNoP"
    logger = logging.getLogger("werkzeug")
    was_disabled, logger.disabled = logger.disabled, False  # alembic's fileConfig
    try:
        with caplog.at_level(logging.INFO, logger="werkzeug"):
            logger.info(
                '%s - - "%s" %s -',
                "127.0.0.1",
                f"POST /portal/link/{token} HTTP/1.1",
                "302",
            )
    finally:
        logger.disabled = was_disabled
    assert token not in caplog.text
    assert "/portal/link/[redacted]" in caplog.text
    assert (
        redact.redact(f"GET /portal/link/{token}?x=1")
        == "GET /portal/link/[redacted]?x=1"
    )
