"""Issue 14 items 8 and 9: declines reach the back office; the period dashboard
reads right (one period state, past due only when open, contacts in words,
G702/G703 money from the engine)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import sqlalchemy as sa

from portal.billing import figures, invitations
from portal.core import billing_presentation as bp
from portal.core.statuses import Role
from portal.extensions import db
from portal.models import (
    Billing,
    BillingPeriod,
    Commitment,
    Invitation,
    OutboxMessage,
    Project,
    User,
)
from portal.web.templating import money

from .. import factories as f
from ..clock import pinned_today
from ..helpers import build_world, built, counting

pytestmark = pytest.mark.calendar


def _row(html: str, commitment_id: int) -> str:
    match = re.search(rf'<tr id="row-{commitment_id}".*?</tr>', html, re.S)
    assert match, commitment_id
    return match.group(0)


# ------------------------------------------------------------------ item 8


def test_a_declined_invitations_reason_reaches_the_board_the_list_and_admins(
    app, client, auth, world
) -> None:
    w = world
    with app.app_context():
        period = db.session.get(BillingPeriod, w.period1_id)
        admin = db.session.get(User, w.admin_id)
        f.make_user(role=Role.ADMIN, email="second-admin@example.com")
        f.make_user(role=Role.FINANCE, email="clerk@example.com")
        invitations.invite(period, [db.session.get(Commitment, w.commitment_id)], admin)
        inv_id = db.session.scalars(
            sa.select(Invitation.id).where(Invitation.commitment_id == w.commitment_id)
        ).one()
        db.session.commit()
    auth.login_contact(w.contact_id)
    response = client.post(
        f"/portal/invitations/{inv_id}/answer",
        data={"decision": "decline", "reason": "No deliveries this month"},
    )
    assert response.status_code == 302
    with app.app_context():
        mails = db.session.scalars(
            sa.select(OutboxMessage).where(OutboxMessage.kind == "invitation_declined")
        ).all()
        admins = set(
            db.session.scalars(
                sa.select(User.email).where(User.role == Role.ADMIN, User.active)
            )
        )
    assert {m.recipient for m in mails} == admins and len(mails) == len(admins) == 2
    for mail in mails:
        assert "No deliveries this month" in mail.body_text
        assert "No deliveries this month" in mail.body_html
        assert f"/admin/periods/{w.period1_id}" in mail.body_text
        assert "declined" in mail.subject
        assert "you are a user" in mail.body_html  # not "a billing contact"
    # Declining again (already declined) mails nobody twice.
    client.post(
        f"/portal/invitations/{inv_id}/answer",
        data={"decision": "decline", "reason": "Still nothing"},
    )
    with app.app_context():
        n = db.session.scalar(
            sa.select(sa.func.count(OutboxMessage.id)).where(
                OutboxMessage.kind == "invitation_declined"
            )
        )
    assert n == 2

    auth.login_user(w.admin_id)
    board = client.get(f"/admin/periods/{w.period1_id}").get_data(as_text=True)
    row = _row(board, w.commitment_id)
    assert 'data-state="declined"' in row
    assert '<q class="decline-reason">Still nothing</q>' in row
    listing = client.get("/admin/billings").get_data(as_text=True)
    assert 'id="declines"' in listing
    assert '<q class="decline-reason">Still nothing</q>' in listing
    # The list's filters apply: another vendor's list shows no decline.
    other = client.get(
        f"/admin/billings?vendor_id={_vendor_of(app, w.other_commitment_id)}"
    ).get_data(as_text=True)
    assert 'id="declines"' not in other


def _vendor_of(app, commitment_id: int) -> int:
    with app.app_context():
        return db.session.get(Commitment, commitment_id).vendor_id


# ------------------------------------------------------------------ item 9


def test_a_never_opened_period_is_upcoming_on_both_pages_and_says_why_not(
    app, client, auth, world
) -> None:
    w = world
    with app.app_context():
        project = db.session.get(Project, w.project_id)
        later = f.make_period(
            project,
            9,
            start=pinned_today() + timedelta(days=40),
            due=pinned_today() + timedelta(days=75),
            status="closed",
        )
        later_id = later.id
        db.session.commit()
    auth.login_user(w.admin_id)
    listing = client.get(f"/admin/periods?project_id={w.project_id}").text
    board = client.get(f"/admin/periods/{later_id}").text
    for html in (listing, board):
        assert "status-upcoming" in html
    assert "status-closed" not in re.search(r"<h1.*?</h1>", board, re.S).group(0)
    why = re.search(r'<span[^>]*id="bulk-why"[^>]*>(.*?)</span>', board, re.S)
    assert why and why.group(1).startswith("Open the period to invite")
    buttons = re.findall(r'<button[^>]*name="action"[^>]*>', board)
    assert len(buttons) == 2
    for button in buttons:
        assert "disabled" in button and 'aria-describedby="bulk-why"' in button


def test_the_one_period_rule() -> None:
    today = pinned_today()
    soon, past = today + timedelta(days=1), today - timedelta(days=1)
    assert bp.period_phase("closed", soon, False, today) == "upcoming"
    assert bp.period_phase("closed", soon, True, today) == "closed"
    assert bp.period_phase("closed", past, False, today) == "closed"
    assert bp.period_phase("open", soon, False, today) == "open"
    assert bp.period_past_due("open", past, today)
    assert not bp.period_past_due("closed", past, today)
    assert not bp.period_past_due("open", today, today)


@pytest.fixture
def approved_world(app, today):
    return built(app, build_world, today, approved=True)


def test_a_closed_period_is_never_past_due(app, client, auth, approved_world) -> None:
    w = approved_world
    auth.login_user(w.admin_id)
    closed = client.get(f"/admin/periods/{w.period1_id}").text  # closed, approved
    assert pinned_today() > _due(app, w.period1_id)
    assert 'id="past-due"' not in closed and "overdue-flag" not in closed
    assert 'class="text-danger" id="due-date"' not in closed
    # The open period 2 (due April 2025) still is.
    assert 'id="past-due"' in client.get(f"/admin/periods/{w.period2_id}").text


def _due(app, period_id: int):
    with app.app_context():
        return db.session.get(BillingPeriod, period_id).due_date


def test_contacts_are_written_out(app, client, auth, world) -> None:
    w = world
    with app.app_context():
        period = db.session.get(BillingPeriod, w.period1_id)
        admin = db.session.get(User, w.admin_id)
        invitations.invite(period, [db.session.get(Commitment, w.commitment_id)], admin)
        inv = db.session.scalars(
            sa.select(Invitation).where(Invitation.commitment_id == w.commitment_id)
        ).one()
        invitations.answer(inv, inv.contact, accept=False)
        db.session.commit()
    auth.login_user(w.admin_id)
    board = client.get(f"/admin/periods/{w.period1_id}").text
    cell = re.search(
        r'<td class="small contacts-summary">(.*?)</td>',
        _row(board, w.commitment_id),
        re.S,
    )
    assert cell and cell.group(1) == "1 contact · 1 declined"
    assert "0/0/1" not in board
    assert "no reason given" in _row(board, w.commitment_id)


def _cells(row: str) -> list[str]:
    return re.findall(r'<td class="num">([^<]*)</td>', row)


def test_money_columns_are_g702_g703_figures_from_the_engine(
    app, client, auth, approved_world
) -> None:
    w = approved_world
    auth.login_user(w.admin_id)
    with app.app_context():
        cur = db.session.get(Project, w.project_id).currency
        expected = {}
        for billing_id in (w.billing1_id, w.billing2_id):
            billing = db.session.get(Billing, billing_id)
            sheet = figures.sheet(billing, "approved")  # the review page's engine
            cols = bp.g703_totals(sheet.figures.lines)
            expected[billing_id] = [
                money(v, cur)
                for v in (
                    cols.work_this_period,
                    cols.materials_stored,
                    sheet.totals.retainage,
                    sheet.totals.current_payment_due,
                )
            ]
    # SPEC §4's billing 1: 20,000.00 work, 6,000.00 stored.
    assert expected[w.billing1_id][:2] == ["$20,000.00", "$6,000.00"]
    for period_id, billing_id in (
        (w.period1_id, w.billing1_id),
        (w.period2_id, w.billing2_id),
    ):
        html = client.get(f"/admin/periods/{period_id}").text
        row = _row(html, w.commitment_id)
        assert _cells(row) == expected[billing_id]
        assert (
            '<span class="small text-body-secondary figures-side">approved</span>'
            in row
        )
        assert f'id="total-current-payment-due">{expected[billing_id][3]}<' in html
        assert 'id="money-legend"' in html
    # Billing 2 was approved as noted: the approved side, not the claim.
    with app.app_context():
        claimed = figures.sheet(db.session.get(Billing, w.billing2_id), "claimed")
        assert (
            money(claimed.totals.current_payment_due, cur) != expected[w.billing2_id][3]
        )


def test_a_draft_shows_its_claim(app, client, auth, world) -> None:
    from portal.billing import billings

    w = world
    with app.app_context():
        period = db.session.get(BillingPeriod, w.period1_id)
        admin = db.session.get(User, w.admin_id)
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
        db.session.commit()
        sheet = figures.sheet(billing, "claimed")
        cur = billing.commitment.project.currency
        due = money(sheet.totals.current_payment_due, cur)
        retainage = money(sheet.totals.retainage, cur)
    auth.login_user(w.admin_id)
    row = _row(client.get(f"/admin/periods/{w.period1_id}").text, w.commitment_id)
    assert _cells(row) == ["$20,000.00", "$6,000.00", retainage, due]
    assert 'figures-side">claimed<' in row


def test_batched_figures_match_one_by_one(app, approved_world) -> None:
    w = approved_world
    with app.app_context():
        period = db.session.get(BillingPeriod, w.period2_id)
        admin = db.session.get(User, w.admin_id)
        from portal.billing import billings

        draft = billings.create_billing(
            db.session.get(Commitment, w.other_commitment_id), period, admin
        )
        db.session.flush()
        every = db.session.scalars(sa.select(Billing)).all()
        for side in ("claimed", "approved"):
            batched = figures.figures_for(every, lambda b, s=side: s)
            for b in every:
                assert batched[b.id] == figures.billing_figures(b, side), (b.id, side)
        hist = figures.histories_for(every)
        for b in every:
            assert hist[b.id] == figures.history(b.commitment_id, b.application_number)
        assert draft.id in hist


def test_board_queries_do_not_grow_with_billings(app, client, auth, world) -> None:
    from portal.billing import billings

    w = world
    auth.login_user(w.admin_id)
    url = f"/admin/periods/{w.period1_id}"

    def grow(n: int) -> None:
        with app.app_context():
            project = db.session.get(Project, w.project_id)
            period = db.session.get(BillingPeriod, w.period1_id)
            admin = db.session.get(User, w.admin_id)
            for _ in range(n):
                c = f.make_commitment(
                    project, contacts=[f.make_contact(f.make_vendor())]
                )
                b = billings.create_billing(c, period, admin)
                billings.save_billing(
                    b,
                    admin,
                    billings.BillingInput(lines={c.sov_lines[0].id: ("100", "50")}),
                    b.version,
                )
            db.session.commit()

    grow(1)
    with counting(app) as first:
        assert client.get(url).status_code == 200
    grow(6)
    with counting(app) as second:
        assert client.get(url).status_code == 200
    assert len(second) == len(first)
