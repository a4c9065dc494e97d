"""Isolation: another contact's ids are 404 everywhere; the portal fails closed."""

from __future__ import annotations

import io
import re

import pytest
import sqlalchemy as sa

from portal.billing import attachments, billings
from portal.core.statuses import Role
from portal.extensions import db
from portal.models import (
    Attachment,
    Billing,
    BillingPeriod,
    Comment,
    Commitment,
    Contact,
    Invitation,
)

from .conftest import count, form_for

PDF = b"%PDF-1.4\n%%EOF\n"


@pytest.fixture
def theirs(app, w):
    """The other contact's billing, attachment and invitation."""
    from werkzeug.datastructures import FileStorage

    with app.app_context():
        other = db.session.get(Contact, w.other_contact_id)
        commitment = db.session.get(Commitment, w.other_commitment_id)
        period = db.session.get(BillingPeriod, w.period1_id)
        billing = billings.create_billing(commitment, period, other)
        att = attachments.save_upload(
            billing, FileStorage(io.BytesIO(PDF), "theirs.pdf"), "invoice", other
        )
        billings.add_comment(billing, other, "Private note")
        invitation = Invitation(
            period_id=period.id,
            commitment_id=commitment.id,
            contact_id=other.id,
            invited_by_id=w.admin_id,
        )
        db.session.add(invitation)
        db.session.commit()
        ids = {
            "billing": billing.id,
            "attachment": att.id,
            "invitation": invitation.id,
            "line": billing.lines[0].id,
            "version": billing.version,
        }
        db.session.remove()
    return ids


def _no_csrf(html: str) -> str:
    """The page without its CSRF token (signed with a timestamp: changes each second)."""
    return re.sub(r'name="csrf_token" value="[^"]*"', "", html)


def _snapshot(app, billing_id: int) -> tuple:
    with app.app_context():
        b = db.session.get(Billing, billing_id)
        snap = (
            b.status,
            b.version,
            tuple((bl.claimed_work, bl.claimed_materials) for bl in b.lines),
            count(Comment),
            count(Attachment),
            db.session.scalar(sa.select(Invitation.status)),
        )
        db.session.remove()
    return snap


def test_another_contacts_ids_are_404_everywhere(app, client, auth, w, theirs):
    before = _snapshot(app, theirs["billing"])
    auth.login_contact(w.contact_id)
    b, a = theirs["billing"], theirs["attachment"]
    attempts = [
        ("get", f"/portal/billings/{b}", None),
        ("get", f"/portal/billings/{b}/pdf", None),
        (
            "post",
            f"/portal/billings/{b}",
            form_for(w, theirs["version"], "save", l1w="1"),
        ),
        (
            "post",
            f"/portal/billings/{b}",
            form_for(w, theirs["version"], "submit", l1w="1"),
        ),
        ("post", f"/portal/billings/{b}/comments", {"body": "hi"}),
        ("post", f"/portal/billings/{b}/attachments", {"kind": "invoice"}),
        ("get", f"/portal/attachments/{a}", None),
        ("post", f"/portal/attachments/{a}/delete", {}),
        ("post", f"/portal/commitments/{w.other_commitment_id}/billings", {}),
        (
            "post",
            f"/portal/invitations/{theirs['invitation']}/answer",
            {"decision": "decline"},
        ),
    ]
    bodies = set()
    for method, url, data in attempts:
        response = getattr(client, method)(url, data=data)
        assert response.status_code == 404, url
        bodies.add(_no_csrf(response.text))
    # Unknown ids answer exactly the same (ids are not confirmed).
    for url in ("/portal/billings/987654", "/portal/attachments/987654"):
        response = client.get(url)
        assert response.status_code == 404
        bodies.add(_no_csrf(response.text))
    assert len(bodies) == 1
    # Ids too large for the database are 404 too, never a 500.
    assert client.get("/portal/billings/99999999999999999999").status_code == 404
    assert client.get("/portal/billings/-1").status_code == 404
    assert _snapshot(app, theirs["billing"]) == before
    # Their billing, comment and file never show on this contact's pages.
    home = client.get("/portal/").text
    assert "SC-200" not in home and "Private note" not in home


@pytest.fixture
def staff(app):
    """One user per role, made without keeping a context pushed (unlike ``users``)."""
    from .. import factories as f

    with app.app_context():
        ids = {role.value: f.make_user(role=role.value).id for role in Role}
        db.session.commit()
        db.session.remove()
    return ids


def test_contact_pages_fail_closed_for_staff_and_anonymous(app, client, auth, w, staff):
    from portal.contact.routes import PUBLIC_ENDPOINTS

    rules = [
        r
        for r in app.url_map.iter_rules()
        if r.endpoint.startswith("contact.") and r.endpoint not in PUBLIC_ENDPOINTS
    ]
    assert {r.endpoint for r in rules} >= {
        "contact.index",
        "contact.billing_view",
        "contact.billing_start",
        "contact.invitation_answer",
        "contact.comment_add",
        "contact.attachment_upload",
        "contact.attachment_download",
        "contact.attachment_delete",
    }

    def hit(c, rule):
        url = rule.rule
        for arg in rule.arguments:
            url = url.replace(f"<int(max=2147483647):{arg}>", "1")
        method = "get" if "GET" in rule.methods else "post"
        return getattr(c, method)(url)

    anonymous = app.test_client()
    for rule in rules:
        assert hit(anonymous, rule).status_code == 401, rule.endpoint
    for role in Role:
        auth.login_user(staff[role.value])
        for rule in rules:
            assert hit(client, rule).status_code == 403, (role, rule.endpoint)


def test_admins_cannot_use_contact_logout_to_lose_their_session(
    app, client, auth, staff
):
    auth.login_user(staff["admin"])
    response = client.post("/portal/logout")
    assert response.status_code == 302
    assert client.get("/portal/").status_code == 403  # still signed in as staff
