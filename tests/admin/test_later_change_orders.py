"""Issue 13 item 3: a change order approved later does not rewrite a decided
billing (SPEC §4), and what it does to one that is not decided yet
(docs/change-orders.md)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from portal import contracts
from portal.accounts import api_tokens
from portal.billing import billings as wf
from portal.billing import figures
from portal.core.statuses import LineStatus, PeriodStatus
from portal.extensions import db
from portal.finance import batches as export_batches
from portal.finance import builders
from portal.models import Billing, BillingPeriod, Commitment, User
from portal.timeutil import utcnow

from .. import factories as f
from ..helpers import bill, build_world

D = Decimal


def later_change_order(commitment_id: int, admin_id: int) -> None:
    """CO-2: +5,000.00 on line 2 (fixtures) and a new line 4, 8,000.00."""
    admin = db.session.get(User, admin_id)
    commitment = db.session.get(Commitment, commitment_id)
    co = contracts.create_change_order(admin, commitment, "CO-2", "Later change")
    line2 = next(ln for ln in commitment.sov_lines if ln.line_number == 2)
    contracts.add_change_order_item(admin, co, D("5000.00"), sov_line_id=line2.id)
    contracts.add_change_order_item(
        admin, co, D("8000.00"), new_line=("26-400", "Panel P4")
    )
    contracts.approve_change_order(admin, co)
    db.session.commit()


@pytest.fixture
def first(app, today):
    """SPEC §4's billing 1, approved as claimed; period 2 open."""
    with app.app_context():
        w = build_world(today)
        admin = db.session.get(User, w.admin_id)
        commitment = db.session.get(Commitment, w.commitment_id)
        period1 = db.session.get(BillingPeriod, w.period1_id)
        b1 = bill(
            commitment, period1, admin, {1: ("20000.00", "0"), 2: ("0", "6000.00")}
        )
        period1.status = PeriodStatus.CLOSED
        period2 = f.make_period(
            commitment.project,
            2,
            start=period1.end_date + timedelta(days=1),
            due=period1.end_date + timedelta(days=5),
        )
        _, token = api_tokens.create_token(admin, "freeze check")
        db.session.commit()
        w.billing1_id, w.period2_id, w.token = b1.id, period2.id, token
        return w


def surfaces(client, auth, w, billing_id: int) -> dict[str, bytes]:
    """The billing's pages, PDFs and API answer, and its export files."""
    exported: dict[str, bytes] = {}
    auth.login_user(w.admin_id)
    out = {
        "review": client.get(f"/admin/billings/{billing_id}"),
        "pdf": client.get(f"/admin/billings/{billing_id}/pdf"),
        "api": client.get(
            f"/exports/api/v1/billings/{billing_id}",
            headers={"Authorization": f"Bearer {w.token}"},
        ),
    }
    auth.login_contact(w.contact_id)
    out["contact"] = client.get(f"/portal/billings/{billing_id}")
    with client.application.app_context():
        billing = db.session.get(Billing, billing_id)
        if billing.approved_figures:
            rows = list(export_batches.export_rows([billing]).values())
            batch = builders.BatchInfo(1, datetime(2026, 1, 1, tzinfo=UTC))
            for fmt in ("csv", "sage300", "iif"):
                exported[fmt] = builders.build(fmt, rows, batch)
    out["contact_pdf"] = client.get(f"/portal/billings/{billing_id}/pdf")
    for name, response in out.items():
        assert response.status_code in (200, 404), (name, response.status_code)
    return {
        **{k: _session_free(r.data) for k, r in out.items() if r.status_code == 200},
        **exported,
    }


def _session_free(data: bytes) -> bytes:
    """The bytes with the per-session CSRF token and CSP nonce blanked (signing
    in again makes new ones); everything else is compared byte for byte."""
    data = re.sub(
        rb'name="csrf_token" value="[^"]*"', b'name="csrf_token" value=""', data
    )
    return re.sub(rb'nonce="[^"]*"', b'nonce=""', data)


def test_an_approved_billing_answers_the_same_after_a_later_change_order(
    app, client, auth, first, clock
) -> None:
    # The PDFs print when they were made: stop the clock, so only the billing
    # can make them differ (a minute could turn between the two halves).
    clock.move_to(utcnow(), tick=False)
    w = first
    before = surfaces(client, auth, w, w.billing1_id)
    assert {"review", "pdf", "api", "contact", "csv", "sage300", "iif"} <= set(before)
    with app.app_context():
        later_change_order(w.commitment_id, w.admin_id)
    after = surfaces(client, auth, w, w.billing1_id)
    assert after.keys() == before.keys()
    for name in before:
        assert after[name] == before[name], name
    with app.app_context():
        billing = db.session.get(Billing, w.billing1_id)
        for which in ("claimed", "approved"):
            sheet = figures.sheet(billing, which)
            assert [r.sov.line_number for r in sheet.rows] == [1, 2, 3]
            assert sheet.rows[1].figures.scheduled_value == D("35000.00")
            assert sheet.totals.contract_sum_to_date == D("105000.00")
            assert sheet.totals.current_payment_due == D("23700.00")
        # The commitment's own SOV did change: billing 2 sees it.
        infos = figures.billable_sov_lines(billing.commitment)
        assert [i.line.original_value + i.change_orders for i in infos] == [
            D("50000.00"),
            D("40000.00"),
            D("20000.00"),
            D("8000.00"),
        ]


def _second(w, decide: str) -> Billing:
    admin = db.session.get(User, w.admin_id)
    commitment = db.session.get(Commitment, w.commitment_id)
    period2 = db.session.get(BillingPeriod, w.period2_id)
    if decide == "draft":
        billing = wf.create_billing(commitment, period2, admin)
        by_number = {bl.sov_line.line_number: bl for bl in billing.lines}
        wf.save_billing(
            billing,
            admin,
            wf.BillingInput(
                lines={by_number[1].sov_line_id: ("15000.00", "0")},
                vendor_invoice_number="INV-2",
            ),
            billing.version,
        )
    else:
        billing = bill(
            commitment, period2, admin, {1: ("15000.00", "0")}, decide="review"
        )
        if decide == "revise":
            line1 = next(bl for bl in billing.lines if bl.sov_line.line_number == 1)
            wf.review_lines(
                billing,
                admin,
                {
                    line1.id: wf.LineReview(
                        "15000.00", "0", LineStatus.REVISE, "Split it"
                    )
                },
                billing.version,
            )
            wf.send_back(billing, admin, billing.version)
    db.session.commit()
    return billing


@pytest.mark.parametrize("state", ["draft", "review", "revise"])
def test_a_change_order_applies_to_a_billing_not_yet_decided(
    app, client, auth, first, state
) -> None:
    """docs/change-orders.md: until it is decided, a billing is figured on the
    commitment's current SOV: C takes the change order, the new line appears
    with nothing claimed, and it can be billed (draft, revise) or decided."""
    w = first
    with app.app_context():
        billing_id = _second(w, state).id
        later_change_order(w.commitment_id, w.admin_id)
        billing = db.session.get(Billing, billing_id)
        sheet = figures.sheet(billing, "claimed")
        assert [r.sov.line_number for r in sheet.rows] == [1, 2, 3, 4]
        assert sheet.rows[1].figures.scheduled_value == D("40000.00")
        assert sheet.rows[3].figures.scheduled_value == D("8000.00")
        assert sheet.rows[3].figures.work_this_period == D("0.00")
        assert sheet.totals.contract_sum_to_date == D("118000.00")
    # Every page of it answers.
    pages = surfaces(client, auth, w, billing_id)
    assert b"Panel P4" in pages["review"] and b"Panel P4" in pages["contact"]
    with app.app_context():
        billing = db.session.get(Billing, billing_id)
        admin = db.session.get(User, w.admin_id)
        if state in ("draft", "revise"):
            # The new line can be billed now.
            line4 = next(
                ln for ln in billing.commitment.sov_lines if ln.line_number == 4
            )
            wf.save_billing(
                billing,
                admin,
                wf.BillingInput(
                    lines={line4.id: ("2000.00", "0")},
                    vendor_invoice_number="INV-2",
                ),
                billing.version,
            )
            wf.submit_billing(billing, admin, billing.version)
        reviews = {
            bl.id: wf.LineReview(
                str(bl.claimed_work), str(bl.claimed_materials), LineStatus.APPROVED, ""
            )
            for bl in billing.lines
        }
        wf.review_lines(billing, admin, reviews, billing.version)
        wf.approve_billing(billing, admin, billing.version)
        db.session.commit()
        sheet = figures.sheet(billing, "approved")
        assert [r.sov.line_number for r in sheet.rows] == [1, 2, 3, 4]
        assert sheet.rows[1].figures.scheduled_value == D("40000.00")
        billed = D("2000.00") if state != "review" else D("0.00")
        assert sheet.rows[3].figures.work_this_period == billed
        # Approved: frozen from now on, claimed side included.
        stored = billing.approved_figures
        assert len(stored["claimed_figures"]["lines"]) == 4
        assert [s["line_number"] for s in stored["sov"]] == [1, 2, 3, 4]


def test_a_billing_held_for_the_owner_keeps_its_snapshot_when_approved(
    app, first
) -> None:
    w = first
    with app.app_context():
        admin = db.session.get(User, w.admin_id)
        commitment = db.session.get(Commitment, w.commitment_id)
        period2 = db.session.get(BillingPeriod, w.period2_id)
        # Fixtures: 4,000.00 of billing 1's 6,000.00 stored installed (F 2,000.00).
        held = bill(
            commitment, period2, admin, {2: ("4000.00", "0", "4000.00")}, decide="hold"
        )
        db.session.commit()
        snapshot = held.approved_figures
        later_change_order(w.commitment_id, w.admin_id)
        held = db.session.get(Billing, held.id)
        wf.approve_billing(held, admin, held.version)
        db.session.commit()
        assert held.status == "approved"
        assert held.approved_figures == snapshot
        sheet = figures.sheet(held, "approved")
        assert [r.sov.line_number for r in sheet.rows] == [1, 2, 3]
        assert sheet.rows[1].figures.scheduled_value == D("35000.00")
        assert sheet.rows[1].figures.materials_installed == D("4000.00")
        assert sheet.rows[1].figures.materials_stored == D("2000.00")
