"""An invite link lives until the billing's due date is over (issue 14 item 4)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import time_machine

from portal.accounts import tokens
from portal.billing import invitations
from portal.extensions import db
from portal.models import LoginLink
from portal.timeutil import aware

from .. import factories as f


def test_invite_link_outlives_the_due_date(app) -> None:
    with (
        time_machine.travel(datetime(2026, 12, 1, 14, 0, tzinfo=UTC), tick=False),
        app.app_context(),
    ):
        project = f.make_project()
        vendor = f.make_vendor()
        contact = f.make_contact(vendor)
        commitment = f.make_commitment(project, vendor, contacts=[contact])
        period = f.make_period(project, start=date(2026, 12, 1), due=date(2026, 12, 31))
        admin = f.make_user(role="admin")
        db.session.flush()
        invitations.invite(period, [commitment], admin)
        db.session.commit()
        link = db.session.query(LoginLink).one()
        # Not 15 Dec (14 days): past the end of 31 Dec in every time zone.
        assert aware(link.expires_at) >= datetime(2027, 1, 1, 12, tzinfo=UTC)
        assert aware(link.expires_at) <= datetime(2027, 1, 3, tzinfo=UTC)
        _, token = tokens.issue_link(contact, link.invitation)
        contact_id = contact.id
        db.session.commit()
    with time_machine.travel(datetime(2026, 12, 31, 23, 0, tzinfo=UTC), tick=False):
        with app.app_context():
            assert tokens.resolve_link(token).contact_id == contact_id
        with app.test_client() as client:
            assert client.get(f"/portal/link/{token}").status_code == 200
    with time_machine.travel(datetime(2027, 1, 5, tzinfo=UTC), tick=False):
        with app.test_client() as client:
            assert client.get(f"/portal/link/{token}").status_code == 410


def test_a_link_signed_by_a_clock_a_little_ahead_still_opens(app, clock) -> None:
    """The mail may be signed on a host whose clock runs ahead of the web
    server's: a link "from the future" by up to tokens.CLOCK_SKEW opens; one
    from further ahead is refused (as expired, with the fresh-link button)."""
    signed = datetime(2026, 12, 1, 14, 0, tzinfo=UTC)
    clock.move_to(signed, tick=False)
    with app.app_context():
        contact = f.make_contact(f.make_vendor())
        _, token = tokens.issue_link(contact)
        contact_id = contact.id
        db.session.commit()
    clock.move_to(signed - timedelta(seconds=90), tick=False)
    with app.app_context():
        assert tokens.resolve_link(token).contact_id == contact_id
    with app.test_client() as client:
        assert client.get(f"/portal/link/{token}").status_code == 200
    clock.move_to(signed - tokens.CLOCK_SKEW - timedelta(seconds=1), tick=False)
    with app.test_client() as client:
        page = client.get(f"/portal/link/{token}")
    assert page.status_code == 410
    assert b"Email me a fresh link" in page.data
