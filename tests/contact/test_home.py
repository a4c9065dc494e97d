"""The contact's home page: own commitments, invitations, billings, Start billing."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from portal.core.statuses import BillingStatus, InvitationStatus
from portal.extensions import db
from portal.models import AuditEvent, Billing, BillingPeriod, Invitation

from ..clock import pinned_today
from .conftest import count, form_for, text_of, version_of

#: Dates matter here: .ci/run also runs these at pinned days (tests/clock.py).
pytestmark = pytest.mark.calendar


def _invite(app, w, contact_id=None, commitment_id=None) -> int:
    with app.app_context():
        invitation = Invitation(
            period_id=w.period1_id,
            commitment_id=commitment_id or w.commitment_id,
            contact_id=contact_id or w.contact_id,
            invited_by_id=w.admin_id,
        )
        db.session.add(invitation)
        db.session.commit()
        inv_id = invitation.id
        db.session.remove()
    return inv_id


def test_home_lists_only_the_contacts_own_commitments(app, client, auth, w):
    auth.login_contact(w.contact_id)
    page = text_of(client.get("/portal/").text)
    assert "SC-100" in page and "Worked Example" in page
    assert "SC-200" not in page and "Other Vendor" not in page
    assert "Open period: #1" in page
    assert "Start progress billing" in page
    auth.login_contact(w.other_contact_id)
    page = text_of(client.get("/portal/").text)
    assert "SC-200" in page and "SC-100" not in page


def test_home_empty_state(app, client, auth, app_ctx):
    from .. import factories as f

    with app_ctx():
        contact = f.make_contact(f.make_vendor())
        db.session.commit()
        contact_id = contact.id
    auth.login_contact(contact_id)
    response = client.get("/portal/")
    assert response.status_code == 200
    assert "Nothing to bill yet" in response.text


def test_accept_and_decline_invitations(app, client, auth, w, app_ctx):
    inv_id = _invite(app, w)
    auth.login_contact(w.contact_id)
    page = client.get("/portal/").text
    assert "You have been invited to bill" in page
    assert f'action="/portal/invitations/{inv_id}/answer"' in page
    response = client.post(
        f"/portal/invitations/{inv_id}/answer",
        data={"decision": "decline", "reason": "  No work done this month  "},
    )
    assert response.status_code == 302
    with app_ctx():
        inv = db.session.get(Invitation, inv_id)
        assert inv.status == InvitationStatus.DECLINED
        assert inv.decline_reason == "No work done this month"
        assert count(AuditEvent, AuditEvent.action == "invitation.decline") == 1
    assert "You have been invited to bill" not in client.get("/portal/").text
    client.post(f"/portal/invitations/{inv_id}/answer", data={"decision": "accept"})
    with app_ctx():
        inv = db.session.get(Invitation, inv_id)
        assert inv.status == InvitationStatus.ACCEPTED
        assert inv.decline_reason == ""
    # Nonsense decisions change nothing.
    response = client.post(
        f"/portal/invitations/{inv_id}/answer", data={"decision": "maybe"}
    )
    assert response.status_code == 302
    with app_ctx():
        assert db.session.get(Invitation, inv_id).status == InvitationStatus.ACCEPTED


def test_another_contacts_invitation_is_404(app, client, auth, w, app_ctx):
    inv_id = _invite(app, w, w.other_contact_id, w.other_commitment_id)
    auth.login_contact(w.contact_id)
    response = client.post(
        f"/portal/invitations/{inv_id}/answer", data={"decision": "decline"}
    )
    assert response.status_code == 404
    with app_ctx():
        assert db.session.get(Invitation, inv_id).status == InvitationStatus.INVITED


def test_start_billing_creates_a_draft_and_accepts_the_invitation(
    app, client, auth, w, app_ctx
):
    inv_id = _invite(app, w)
    auth.login_contact(w.contact_id)
    response = client.post(f"/portal/commitments/{w.commitment_id}/billings")
    assert response.status_code == 302
    with app_ctx():
        billing = db.session.scalars(sa.select(Billing)).one()
        assert billing.status == BillingStatus.DRAFT
        assert billing.created_by_contact_id == w.contact_id
        assert billing.application_number == 1
        assert len(billing.lines) == 3
        assert db.session.get(Invitation, inv_id).status == InvitationStatus.ACCEPTED
        billing_id = billing.id
    assert response.headers["Location"].endswith(f"/portal/billings/{billing_id}")
    # Starting again opens the same draft.
    again = client.post(f"/portal/commitments/{w.commitment_id}/billings")
    assert again.headers["Location"].endswith(f"/portal/billings/{billing_id}")
    with app_ctx():
        assert count(Billing) == 1
    page = text_of(client.get("/portal/").text)
    assert "Continue billing #1" in page


def test_home_lists_billings_with_status_amounts_and_due_date(
    app, client, auth, w, make_billing
):
    billing_id = make_billing(w)
    auth.login_contact(w.contact_id)
    client.post(
        f"/portal/billings/{billing_id}",
        data=form_for(
            w, version_of(app, billing_id), "submit", l1w="20,000", l2m="6000"
        ),
    )
    response = client.get("/portal/")
    page = text_of(response.text)
    assert "Under review" in page
    assert "$26,000.00" in page  # claimed this period: 20,000 work + 6,000 stored
    with app.app_context():
        due = db.session.get(BillingPeriod, w.period1_id).due_date
    assert due.strftime("%b %d, %Y") in page


def test_start_billing_after_the_due_date_is_refused(app, client, auth, w, app_ctx):
    with app_ctx():
        period = db.session.get(BillingPeriod, w.period1_id)
        period.due_date = pinned_today() - timedelta(days=1)
        db.session.commit()
    auth.login_contact(w.contact_id)
    page = text_of(client.get("/portal/").text)
    assert "The due date of this period has passed" in page
    assert "Start progress billing" not in page
    response = client.post(f"/portal/commitments/{w.commitment_id}/billings")
    assert response.status_code == 302
    follow = client.get("/portal/")
    assert "due date of this billing period has passed" in follow.text
    with app_ctx():
        assert count(Billing) == 0


def test_start_billing_on_another_contacts_commitment_is_404(
    app, client, auth, w, app_ctx
):
    auth.login_contact(w.contact_id)
    assert (
        client.post(f"/portal/commitments/{w.other_commitment_id}/billings").status_code
        == 404
    )
    assert client.post("/portal/commitments/999999/billings").status_code == 404
    with app_ctx():
        assert count(Billing) == 0
