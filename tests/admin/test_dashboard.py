"""The period dashboard, Invite to Bill, reminders and the home page."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import sqlalchemy as sa

from portal.billing import billings, invitations
from portal.extensions import db
from portal.models import (
    BillingPeriod,
    Commitment,
    Contact,
    Invitation,
    LoginLink,
    OutboxMessage,
    Project,
    User,
)
from portal.timeutil import utcnow

from .. import factories as f
from ..clock import pinned_today
from ..helpers import counting
from .conftest import audit_actions, count

#: Dates matter here: .ci/run also runs these at pinned days (tests/clock.py).
pytestmark = pytest.mark.calendar


def _states(html: str) -> dict[int, str]:
    return {
        int(cid): state
        for cid, state in re.findall(r'<tr id="row-(\d+)" data-state="([a-z_]+)"', html)
    }


def _add_second_contact(app, commitment_id: int) -> int:
    with app.app_context():
        commitment = db.session.get(Commitment, commitment_id)
        contact = f.make_contact(
            commitment.vendor, email="second@example-electric.example"
        )
        commitment.contacts.append(contact)
        db.session.commit()
        return contact.id


def bulk(client, period_id: int, action: str, ids: list[int]):
    return client.post(
        f"/admin/periods/{period_id}/bulk",
        data={"action": action, "commitment_ids": [str(i) for i in ids]},
    )


def test_bulk_invite_one_link_and_one_mail_per_contact(
    app, client, auth, world
) -> None:
    w = world
    _add_second_contact(app, w.commitment_id)
    auth.login_user(w.admin_id)
    response = bulk(
        client, w.period1_id, "invite", [w.commitment_id, w.other_commitment_id]
    )
    assert response.status_code == 302
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Invite to Bill sent to 3 contact(s)." in page
    assert count(app, Invitation) == 3
    assert count(app, LoginLink) == 3
    assert count(app, OutboxMessage, OutboxMessage.kind == "invite") == 3
    with app.app_context():
        recipients = sorted(
            db.session.scalars(
                sa.select(OutboxMessage.recipient).where(OutboxMessage.kind == "invite")
            )
        )
        assert recipients == [
            "casey@example-electric.example",
            "olive@other.example",
            "second@example-electric.example",
        ]
        body = db.session.scalars(
            sa.select(OutboxMessage.body_text).where(
                OutboxMessage.recipient == "casey@example-electric.example"
            )
        ).one()
        assert "SC-100" in body and "http://portal.test/portal/link/" in body
    assert audit_actions(app, action="invitation.send") == ["invitation.send"] * 3
    states = _states(page)
    assert states[w.commitment_id] == "invited"
    # A second bulk invite creates nothing: no link, no mail.
    again = bulk(
        client, w.period1_id, "invite", [w.commitment_id, w.other_commitment_id]
    )
    page = client.get(again.headers["Location"]).get_data(as_text=True)
    assert "was skipped: it was already invited" in page
    assert count(app, Invitation) == 3
    assert count(app, LoginLink) == 3
    assert count(app, OutboxMessage) == 3


def test_bulk_actions_need_a_selection_and_an_open_period(
    app, client, auth, world
) -> None:
    w = world
    auth.login_user(w.admin_id)
    response = bulk(client, w.period1_id, "invite", [])
    assert "Select at least one commitment first." in client.get(
        response.headers["Location"]
    ).get_data(as_text=True)
    client.post(f"/admin/periods/{w.period1_id}/close")
    response = bulk(client, w.period1_id, "invite", [w.commitment_id])
    assert "only be sent for the open period" in client.get(
        response.headers["Location"]
    ).get_data(as_text=True)
    assert count(app, Invitation) == 0


def test_reminders_are_idempotent_within_a_day(
    app, client, auth, runner, world
) -> None:
    w = world
    auth.login_user(w.admin_id)
    bulk(client, w.period1_id, "invite", [w.commitment_id, w.other_commitment_id])
    # Not within a day of the invite (issue 14 item 15): seconds later, none.
    early = bulk(
        client, w.period1_id, "remind", [w.commitment_id, w.other_commitment_id]
    )
    page = client.get(early.headers["Location"]).get_data(as_text=True)
    assert "reminder(s) sent." not in page
    assert "invited or reminded in the last 24 hours" in page
    assert count(app, OutboxMessage, OutboxMessage.kind == "reminder") == 0
    with app.app_context():
        db.session.execute(
            sa.update(Invitation).values(sent_at=utcnow() - timedelta(hours=25))
        )
        db.session.commit()
    first = bulk(
        client, w.period1_id, "remind", [w.commitment_id, w.other_commitment_id]
    )
    assert "2 reminder(s) sent." in client.get(first.headers["Location"]).get_data(
        as_text=True
    )
    assert count(app, OutboxMessage, OutboxMessage.kind == "reminder") == 2
    # Twice in a day: no second mail, from the page or from cron.
    bulk(client, w.period1_id, "remind", [w.commitment_id, w.other_commitment_id])
    result = runner.invoke(args=["remind", "--days", "30"])
    assert result.exit_code == 0, result.output
    assert "sent 0 reminder(s)" in result.output
    assert count(app, OutboxMessage, OutboxMessage.kind == "reminder") == 2
    # A day later, cron reminds again, once per invitation.
    with app.app_context():
        db.session.execute(
            sa.update(Invitation).values(
                last_reminded_at=utcnow() - timedelta(hours=25)
            )
        )
        db.session.commit()
    result = runner.invoke(args=["remind", "--days", "30"])
    assert "sent 2 reminder(s)" in result.output
    result = runner.invoke(args=["remind", "--days", "30"])
    assert "sent 0 reminder(s)" in result.output
    assert count(app, OutboxMessage, OutboxMessage.kind == "reminder") == 4


def test_dashboard_states_totals_and_overdue(app, client, auth, world) -> None:
    w = world
    with app.app_context():
        project = db.session.get(Project, w.project_id)
        lonely = f.make_commitment(project, number="SC-300")  # no billing contact
        declined = f.make_commitment(
            project,
            contacts=[f.make_contact(f.make_vendor())],
            number="SC-400",
        )
        draft_only = f.make_commitment(project, status="draft", number="SC-500")
        period = db.session.get(BillingPeriod, w.period1_id)
        admin = db.session.get(User, w.admin_id)
        invitations.invite(
            period,
            [db.session.get(Commitment, w.commitment_id), declined],
            admin,
        )
        inv = db.session.scalars(
            sa.select(Invitation).where(Invitation.commitment_id == declined.id)
        ).one()
        invitations.answer(inv, inv.contact, accept=False, reason="No work this month")
        billing = billings.create_billing(
            db.session.get(Commitment, w.commitment_id), period, admin
        )
        l1, l2, _ = w.line_ids
        billings.save_billing(
            billing,
            admin,
            billings.BillingInput(lines={l1: ("20000", "0"), l2: ("0", "6000")}),
            billing.version,
        )
        billings.submit_billing(billing, admin, billing.version)
        ids = (lonely.id, declined.id, draft_only.id, billing.id)
        db.session.commit()
    lonely_id, declined_id, draft_id, billing_id = ids
    auth.login_user(w.admin_id)
    html = client.get(f"/admin/periods/{w.period1_id}").get_data(as_text=True)
    states = _states(html)
    assert states == {
        w.commitment_id: "under_review",
        w.other_commitment_id: "not_invited",
        lonely_id: "no_billing_contact",
        declined_id: "declined",
    }
    assert draft_id not in states  # only approved commitments are billed
    # G703 E and F of the one billing (claimed: it is under review).
    assert re.search(r'id="total-work-this-period">\$20,000\.00<', html)
    assert re.search(r'id="total-materials-stored">\$6,000\.00<', html)
    assert "No work this month" in html  # the decline's reason
    assert f"/admin/billings/{billing_id}" in html
    assert "overdue-flag" not in html
    # After the due date, those still owing a billing are flagged overdue.
    with app.app_context():
        db.session.get(BillingPeriod, w.period1_id).due_date = (
            pinned_today() - timedelta(days=1)
        )
        db.session.commit()
    html = client.get(f"/admin/periods/{w.period1_id}").get_data(as_text=True)
    assert html.count('class="badge text-bg-danger overdue-flag"') == 1  # SC-200 only
    overdue = client.get(f"/admin/periods/{w.period1_id}?state=overdue").get_data(
        as_text=True
    )
    assert list(_states(overdue)) == [w.other_commitment_id]
    home = client.get("/admin/").get_data(as_text=True)
    assert 'id="attention-overdue-count">1<' in home
    assert 'id="attention-under-review-count">1<' in home
    assert "SC-200" in home
    # Odd filters are ignored.
    assert client.get(f"/admin/periods/{w.period1_id}?state=%27").status_code == 200


def _grow(app, project_id: int, period_id: int, admin_id: int, n: int) -> None:
    """Add ``n`` invited commitments, half with a draft billing."""
    with app.app_context():
        project = db.session.get(Project, project_id)
        period = db.session.get(BillingPeriod, period_id)
        admin = db.session.get(User, admin_id)
        made = []
        for i in range(n):
            vendor = f.make_vendor()
            contact = f.make_contact(vendor)
            made.append(
                f.make_commitment(
                    project, vendor, [("01-100", "1000"), ("01-200", "2000")], [contact]
                )
            )
            if i % 2:
                billings.create_billing(made[-1], period, admin)
        invitations.invite(period, made, admin)
        db.session.commit()


def test_pages_run_a_constant_number_of_queries(app, client, auth, world) -> None:
    w = world
    auth.login_user(w.admin_id)
    pages = [
        f"/admin/periods/{w.period1_id}",
        "/admin/",
        "/admin/billings",
        f"/admin/projects/{w.project_id}",
        "/admin/vendors",
    ]
    _grow(app, w.project_id, w.period1_id, w.admin_id, 2)
    before = {}
    for url in pages:
        with counting(app) as statements:
            assert client.get(url).status_code == 200
        before[url] = len(statements)
    _grow(app, w.project_id, w.period1_id, w.admin_id, 8)
    for url in pages:
        with counting(app) as statements:
            assert client.get(url).status_code == 200
        assert len(statements) == before[url], url


def test_contact_revoke_and_deactivate_end_links(app, client, auth, world) -> None:
    w = world
    auth.login_user(w.admin_id)
    with app.app_context():
        version = db.session.get(Contact, w.contact_id).token_version
    response = client.post(f"/admin/contacts/{w.contact_id}/revoke-links")
    assert response.status_code == 302
    with app.app_context():
        assert db.session.get(Contact, w.contact_id).token_version == version + 1
    client.post(f"/admin/contacts/{w.contact_id}/active", data={"active": "0"})
    with app.app_context():
        contact = db.session.get(Contact, w.contact_id)
        assert (contact.active, contact.token_version) == (False, version + 2)
    actions = audit_actions(app, object_type="contact", object_id=w.contact_id)
    assert actions == [
        "contact.revoke_links",
        "contact.deactivate",
        "contact.revoke_links",
    ]
    # A deactivated contact's session no longer reaches the portal.
    auth.login_contact(w.contact_id)
    assert client.get("/portal/").status_code in (302, 401, 403)
