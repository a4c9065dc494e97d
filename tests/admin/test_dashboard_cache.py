"""The period dashboard from the rendered-page cache (issue 16 item 2): any
change to any commitment of the project, its periods, or the date shows."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest
import sqlalchemy as sa

from portal.billing import billings, invitations
from portal.extensions import db
from portal.models import (
    BillingPeriod,
    Commitment,
    Contact,
    Invitation,
    Project,
    User,
)

from .. import factories as f
from ..helpers import cached_get, check_cached, committed

pytestmark = pytest.mark.calendar


def test_cached_board_is_the_fresh_board_after_every_change(
    app, client, auth, world, clock
) -> None:
    w = world
    url = f"/admin/periods/{w.period1_id}"
    auth.login_user(w.admin_id)
    check_cached(app, client, url)

    def invite():
        period = db.session.get(BillingPeriod, w.period1_id)
        commitments = db.session.scalars(
            sa.select(Commitment).where(Commitment.project_id == w.project_id)
        ).all()
        invitations.invite(period, commitments, db.session.get(User, w.admin_id))

    committed(app, invite)
    assert "invited" in check_cached(app, client, url)

    def decline_other():
        inv = db.session.scalars(
            sa.select(Invitation).where(
                Invitation.commitment_id == w.other_commitment_id
            )
        ).one()
        invitations.answer(inv, inv.contact, accept=False, reason="Nothing this month")

    committed(app, decline_other)
    assert "Nothing this month" in check_cached(app, client, url)

    def bill():
        contact = db.session.get(Contact, w.contact_id)
        commitment = db.session.get(Commitment, w.commitment_id)
        period = db.session.get(BillingPeriod, w.period1_id)
        billing = billings.create_billing(commitment, period, contact)
        billings.save_billing(
            billing,
            contact,
            billings.BillingInput(lines={w.line_ids[0]: ("12345.67", "0")}),
            billing.version,
        )
        billings.submit_billing(billing, contact, billing.version)

    committed(app, bill)
    assert "$12,345.67" in check_cached(app, client, url)
    assert "$12,345.67" in check_cached(app, client, f"{url}?state=under_review")

    def new_commitment():
        project = db.session.get(Project, w.project_id)
        vendor = f.make_vendor()
        made = f.make_commitment(
            project, vendor, number="SC-777", contacts=[f.make_contact(vendor)]
        )
        invitations.invite(
            db.session.get(BillingPeriod, w.period1_id),
            [made],
            db.session.get(User, w.admin_id),
        )

    committed(app, new_commitment)
    assert "SC-777" in check_cached(app, client, url)

    def rename_contact():
        db.session.get(Contact, w.contact_id).name = "Renamed Billing Contact"

    committed(app, rename_contact)
    check_cached(app, client, url)

    # The due date passes: the board flags those still owing a billing.
    due = committed(app, lambda: db.session.get(BillingPeriod, w.period1_id).due_date)
    assert "overdue-flag" not in check_cached(app, client, url)
    clock.move_to(
        datetime.combine(due + timedelta(days=1), time(12), tzinfo=UTC), tick=False
    )
    auth.login_user(w.admin_id)
    assert "overdue-flag" in check_cached(app, client, url)


def test_another_project_leaves_the_board_cached(app, client, auth, world) -> None:
    w = world
    url = f"/admin/periods/{w.period1_id}"
    auth.login_user(w.admin_id)
    cached_get(client, url)

    def elsewhere():
        from portal.models import Vendor

        other = f.make_project()
        vendor = db.session.get(Vendor, w.vendor_id)  # a new vendor: every page
        f.make_commitment(other, vendor, number="ELSEWHERE-1")

    committed(app, elsewhere)
    state, _ = cached_get(client, url)
    assert state == "hit"
