"""The whole contact journey: link → session → draft → submit → revise → approved."""

from __future__ import annotations

from decimal import Decimal

import pytest
import sqlalchemy as sa

from portal.billing import invitations
from portal.core.statuses import BillingStatus, InvitationStatus, LineStatus
from portal.extensions import db
from portal.models import (
    AuditEvent,
    Billing,
    BillingPeriod,
    Commitment,
    Invitation,
    LoginLink,
    OutboxMessage,
    RevisionSnapshot,
    User,
)

from .conftest import approve, count, form_for, review, send_back, text_of, version_of

#: Dates matter here: .ci/run also runs these at pinned days (tests/clock.py).
pytestmark = pytest.mark.calendar

D = Decimal


def test_contact_journey(app, client, w, app_ctx):
    # The admin invites the contact; the mail carries a magic link.
    with app_ctx():
        result = invitations.invite(
            db.session.get(BillingPeriod, w.period1_id),
            [db.session.get(Commitment, w.commitment_id)],
            db.session.get(User, w.admin_id),
        )
        db.session.commit()
        assert len(result.invited) == 1
        mail = db.session.scalars(
            sa.select(OutboxMessage).where(OutboxMessage.kind == "invite")
        ).one()
        assert mail.recipient == "casey@example-electric.example"
        token = mail.body_text.split("http://portal.test/portal/link/")[1].split()[0]
        links_before = count(LoginLink, LoginLink.used_at.is_not(None))

    # A mail scanner prefetches it; nothing changes.
    assert client.head(f"/portal/link/{token}").status_code == 200
    confirm = client.get(f"/portal/link/{token}")
    assert confirm.status_code == 200 and "Continue as Casey Contact" in confirm.text
    with app_ctx():
        assert count(LoginLink, LoginLink.used_at.is_not(None)) == links_before
    assert client.get("/portal/").status_code == 401

    # Continue: a contact session, landing on the invited commitment.
    response = client.post(f"/portal/link/{token}", data={"action": "continue"})
    assert response.status_code == 302
    assert response.headers["Location"].endswith(
        f"/portal/#commitment-{w.commitment_id}"
    )
    home = text_of(client.get("/portal/").text)
    assert "You have been invited to bill" in home

    # Start the billing (accepts the invitation), save a draft, submit it.
    response = client.post(f"/portal/commitments/{w.commitment_id}/billings")
    billing_id = int(response.headers["Location"].rsplit("/", 1)[1])
    with app_ctx():
        assert (
            db.session.scalars(sa.select(Invitation)).one().status
            == InvitationStatus.ACCEPTED
        )
    l1, l2, l3 = w.line_ids
    client.post(
        f"/portal/billings/{billing_id}",
        data=form_for(
            w, version_of(app, billing_id), "save", l1w="20,000", l3w="5,000"
        ),
    )
    response = client.post(
        f"/portal/billings/{billing_id}",
        data=form_for(
            w,
            version_of(app, billing_id),
            "submit",
            l1w="20,000",
            l2m="6,000",
            l3w="5,000",
            vendor_invoice_number="INV-1001",
        ),
    )
    assert response.status_code == 302
    with app_ctx():
        b = db.session.get(Billing, billing_id)
        assert (b.status, b.revision, b.vendor_invoice_number) == (
            BillingStatus.UNDER_REVIEW,
            0,
            "INV-1001",
        )
        assert count(OutboxMessage, OutboxMessage.kind == "billing_submitted") == 1

    # The admin sends it back: line 3 revise with a reason, plus a comment.
    review(
        app,
        billing_id,
        w.admin_id,
        {
            l3: (
                "revise",
                "5000",
                "0",
                "Switchgear is not delivered yet: bill it next month.",
            ),
        },
    )
    send_back(app, billing_id, w.admin_id, "Please also attach the lien waiver.")
    with app_ctx():
        assert count(OutboxMessage, OutboxMessage.kind == "revise_and_resubmit") == 1

    # The contact sees the reasons, replies and revises.
    page = client.get(f"/portal/billings/{billing_id}")
    text = text_of(page.text)
    assert "Revise &amp; resubmit" in page.text or "Revise & resubmit" in text
    assert "Changes requested" in text
    assert "Switchgear is not delivered yet: bill it next month." in text
    assert "Please also attach the lien waiver." in text
    assert f'name="line-{l3}-work" value="5,000.00"' in page.text  # editable again
    client.post(
        f"/portal/billings/{billing_id}/comments",
        data={"body": "Removed line 3, waiver attached."},
    )
    response = client.post(
        f"/portal/billings/{billing_id}",
        data=form_for(
            w,
            version_of(app, billing_id),
            "submit",
            l1w="20,000",
            l2m="6,000",
            l3w="0",
            vendor_invoice_number="INV-1001",
        ),
    )
    assert response.status_code == 302
    with app_ctx():
        b = db.session.get(Billing, billing_id)
        assert (b.status, b.revision) == (BillingStatus.UNDER_REVIEW, 1)
        snaps = db.session.scalars(
            sa.select(RevisionSnapshot).order_by(RevisionSnapshot.revision)
        ).all()
        assert [s.revision for s in snaps] == [0, 1]
        assert snaps[1].data["lines"][str(l3)]["work"] == "0.00"
        lines = {bl.sov_line_id: bl for bl in b.lines}
        # Lines the reviewer approved and the contact left alone stay approved.
        assert lines[l1].status == LineStatus.APPROVED
        assert lines[l3].status == LineStatus.PENDING  # sent back: a fresh look
    history = text_of(client.get(f"/portal/billings/{billing_id}").text)
    assert "Revision 1" in history and "Revision 0" in history
    assert "Line 3 Line 3: work this period 5,000.00 → 0.00" in history
    comments = text_of(client.get(f"/portal/billings/{billing_id}").text)
    assert comments.index("Please also attach the lien waiver.") < comments.index(
        "Removed line 3, waiver attached."
    )

    # The admin approves; the contact sees it approved with the engine's figures.
    review(app, billing_id, w.admin_id, {})
    assert approve(app, billing_id, w.admin_id) == BillingStatus.APPROVED
    page = text_of(client.get(f"/portal/billings/{billing_id}").text)
    assert "Approved" in page
    assert "Current payment due: $23,700.00" in page
    assert "4 Total completed and stored to date $26,000.00 $26,000.00" in page
    home = text_of(client.get("/portal/").text)
    assert "Approved" in home and "$23,700.00" in home
    with app_ctx():
        assert count(OutboxMessage, OutboxMessage.kind == "billing_approved") == 1
        # No event anywhere carries the token.
        for ev in db.session.scalars(sa.select(AuditEvent)):
            assert token not in f"{ev.before}{ev.after}"
    # Signing out ends it.
    client.post("/portal/logout")
    assert client.get(f"/portal/billings/{billing_id}").status_code == 401
