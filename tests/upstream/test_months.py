"""Money from one month to the next (issue 13 items 1, 2, 5; docs/money.md).

Head contract: markup 0 %, lines 26-100, 03-300, 09-900 (100,000.00 each).
Downstream, figures worked by hand:

SC-A, 0 % on work, 10 % on materials, one line 26-100 of 50,000.00:
  P1 stores 10,000.00: F 10,000, I 1,000, line 5 1,000, line 6 9,000, due 9,000.
  P2 releases 1,000.00: F 10,000 (carried), line 5 0, line 6 10,000, due 1,000.
  P3 installs them, work 10,000.00: F 0, G 10,000, Σ I 0, line 5 0 (the release
     is not clawed back), line 6 10,000, line 7 10,000, due 0.00.
  P4 work 5,000.00 and 5,000.00 new stored: G 20,000, F 5,000, I 500, line 5
     500 (held again), line 6 19,500, due 9,500.
PO-B, 10 % / 5 %, one line 03-300 of 44,000.00:
  P1 stores 44,000.00: I 2,200, line 6 41,800, due 41,800.
  P2 does not bill: its 44,000.00 stays stored, downstream and upstream.
  P3 installs 20,000.00 (work 20,000): F 24,000, G 44,000, I 2,000 + 1,200,
     line 6 40,800, line 7 41,800, due −1,000.00.
  P4 an untouched draft: F 24,000 carried, due 0.00.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
import sqlalchemy as sa

from portal import upstream
from portal.billing import billings as wf
from portal.billing import figures
from portal.core import money
from portal.core.statuses import PeriodStatus
from portal.extensions import db
from portal.models import BillingPeriod, ClientContract, Commitment, Project, User

from ..helpers import Contract, Period, Sub, bill, build_world

D = Decimal


def _figures(billing):
    return figures.sheet(billing).totals, figures.sheet(billing).rows[0].figures


def _claim(contract, period, admin):
    claim = upstream.generate_claim(contract, period, admin)
    db.session.flush()
    return claim


def _submit(claim, admin):
    upstream.submit_claim(claim, admin, claim.version, accept_unmapped=True)
    db.session.flush()


def _line(claim, code):
    sheet = upstream.claim_sheet(claim)
    for sov, fig in zip(claim.contract.lines, sheet.figures.lines, strict=True):
        if sov.cost_code == code:
            return fig
    raise AssertionError(code)


#: The three commitments of the docstring (SC-C: a third vendor, billed in P3).
MONTHS = (
    Sub(
        "a",
        "SC-A",
        "A",
        (("26-100", "50000.00"),),
        work_pct="0",
        materials_pct="10",
    ),
    Sub("b", "PO-B", "B", (("03-300", "44000.00"),)),
    Sub("c", "SC-C", "C", (("09-900", "5000.00"),)),
)


@pytest.mark.postgres
def test_six_months_of_stored_materials_releases_and_the_owner_invoice(ctx, today):
    w = build_world(
        today,
        project={"name": "Months"},
        commitments=MONTHS,
        contract=Contract(
            (
                ("26-100", "100000.00"),
                ("03-300", "100000.00"),
                ("09-900", "100000.00"),
            ),
            markup="0",
            work_pct="10",
            materials_pct="5",
        ),
        periods=[
            Period(
                date(2025, n, 1),
                date(2025, n, 25),
                status=PeriodStatus.OPEN if n == 4 else PeriodStatus.CLOSED,
            )
            for n in (1, 2, 3, 4)
        ],
    )
    admin = db.session.get(User, w.admin_id)
    project = db.session.get(Project, w.project_id)
    project.retainage_release_allowed = True
    contract = db.session.get(ClientContract, w.contract_id)
    a, b, c = (db.session.get(Commitment, w.commitments[k]) for k in "abc")
    p1, p2, p3, p4 = db.session.scalars(
        sa.select(BillingPeriod)
        .where(BillingPeriod.project_id == project.id)
        .order_by(BillingPeriod.sequence)
    ).all()

    # ---- period 1
    a1 = bill(a, p1, admin, {1: ("0", "10000.00")})
    b1 = bill(b, p1, admin, {1: ("0", "44,000.00")})
    t, line = _figures(a1)
    assert (line.materials_previous, line.materials_new, line.materials_stored) == (
        D("0.00"),
        D("10000.00"),
        D("10000.00"),
    )
    assert (t.retainage, t.total_earned_less_retainage, t.current_payment_due) == (
        D("1000.00"),
        D("9000.00"),
        D("9000.00"),
    )
    assert _figures(b1)[0].current_payment_due == D("41800.00")
    a1_frozen = money.figures_to_dict(figures.sheet(a1).figures)
    claim1 = _claim(contract, p1, admin)
    assert _line(claim1, "26-100").materials_stored == D("10000.00")
    assert _line(claim1, "03-300").materials_stored == D("44000.00")
    recon = upstream.reconcile(claim1)
    assert (recon.downstream_to_date, recon.upstream_to_date) == (
        D("54000.00"),
        D("54000.00"),
    )
    assert recon.ties
    _submit(claim1, admin)

    # ---- period 2: A only releases; B skips the month
    a2 = wf.create_billing(a, p2, admin)
    wf.save_billing(
        a2, admin, wf.BillingInput(lines={}, retainage_released="1,000.00"), a2.version
    )
    wf.submit_billing(a2, admin, a2.version)
    wf.review_lines(
        a2,
        admin,
        {bl.id: wf.LineReview("0", "0", "approved") for bl in a2.lines},
        a2.version,
    )
    wf.approve_billing(a2, admin, a2.version)
    t, line = _figures(a2)
    assert line.materials_previous == line.materials_stored == D("10000.00")
    assert (t.retainage, t.total_earned_less_retainage, t.current_payment_due) == (
        D("0.00"),
        D("10000.00"),
        D("1000.00"),
    )
    claim2 = _claim(contract, p2, admin)
    # B did not bill in period 2: its stored balance stays upstream.
    assert _line(claim2, "03-300").materials_stored == D("44000.00")
    assert _line(claim2, "26-100").materials_stored == D("10000.00")
    assert upstream.claim_sheet(claim2).totals.total_completed_and_stored == D(
        "54000.00"
    )
    assert upstream.reconcile(claim2).ties
    _submit(claim2, admin)

    # ---- period 3: A installs what was released (item 5), B installs part
    a3 = bill(a, p3, admin, {1: ("10,000.00", "0", "10,000.00")})  # not refused
    b3 = bill(b, p3, admin, {1: ("20000.00", "0", "20000.00")})
    t, line = _figures(a3)
    assert (line.materials_stored, line.total_completed_and_stored) == (
        D("0.00"),
        D("10000.00"),
    )
    assert (t.retainage, t.retainage_released_to_date) == (D("0.00"), D("0.00"))
    assert (t.total_earned_less_retainage, t.current_payment_due) == (
        D("10000.00"),
        D("0.00"),
    )
    t, line = _figures(b3)
    assert (line.materials_previous, line.materials_installed) == (
        D("44000.00"),
        D("20000.00"),
    )
    assert (line.materials_stored, line.total_completed_and_stored) == (
        D("24000.00"),
        D("44000.00"),
    )
    assert (t.retainage, t.total_earned_less_retainage) == (D("3200.00"), D("40800.00"))
    assert t.current_payment_due == D("-1000.00")
    claim3 = _claim(contract, p3, admin)
    assert _line(claim3, "26-100").work_this_period == D("10000.00")
    assert _line(claim3, "03-300").work_this_period == D("20000.00")
    assert _line(claim3, "03-300").materials_stored == D("24000.00")
    assert upstream.claim_sheet(claim3).totals.total_completed_and_stored == D(
        "54000.00"
    )
    assert upstream.reconcile(claim3).ties
    _submit(claim3, admin)
    # Planted: C's period-3 billing approved after claim 3 went to the client.
    bill(c, p3, admin, {1: ("1000.00", "0")})

    # ---- period 4: A bills again, B's draft is untouched
    a4 = bill(a, p4, admin, {1: ("5000.00", "5000.00")})
    t, line = _figures(a4)
    assert (line.materials_stored, line.total_completed_and_stored) == (
        D("5000.00"),
        D("20000.00"),
    )
    assert (t.retainage, t.total_earned_less_retainage, t.current_payment_due) == (
        D("500.00"),
        D("19500.00"),
        D("9500.00"),
    )
    b4 = wf.create_billing(b, p4, admin)
    draft = figures.sheet(b4, "claimed")
    assert draft.rows[0].figures.materials_stored == D("24000.00")
    assert draft.totals.current_payment_due == D("0.00")
    # Line 8 summed over the months = line 6 of the last billing (SC-A).
    dues = [_figures(x)[0].current_payment_due for x in (a1, a2, a3, a4)]
    assert sum(dues, D("0.00")) == D("19500.00")
    # An approved billing's figures are unchanged by the later months.
    assert money.figures_to_dict(figures.sheet(a1).figures) == a1_frozen

    claim4 = _claim(contract, p4, admin)
    assert _line(claim4, "03-300").materials_stored == D("24000.00")  # B's draft
    recon = upstream.reconcile(claim4)
    # Downstream to date: A 20,000 + B 44,000 + C 1,000; upstream lacks C's.
    assert recon.downstream_to_date == D("65000.00")
    assert recon.upstream_to_date == D("64000.00")
    assert recon.to_date_difference == D("-1000.00")
    assert not recon.ties


def test_installing_more_than_is_stored_is_refused_beside_the_field(ctx, today):
    w = build_world(
        today,
        project={"name": "Refusals"},
        commitments=MONTHS[:1],
        periods=[Period(date(2025, 1, 1), date(2025, 1, 25))],
    )
    admin = db.session.get(User, w.admin_id)
    a = db.session.get(Commitment, w.commitments["a"])
    p1 = db.session.get(BillingPeriod, w.period1_id)
    billing = wf.create_billing(a, p1, admin)
    sov = a.sov_lines[0].id
    with pytest.raises(wf.ValidationFailed) as exc:
        wf.save_billing(
            billing,
            admin,
            wf.BillingInput(lines={sov: ("5000", "1000")}, installed={sov: "2000"}),
            billing.version,
        )
    assert "Only 1,000.00" in exc.value.errors[f"line-{sov}-installed"]
    with pytest.raises(wf.ValidationFailed) as exc:
        wf.save_billing(
            billing,
            admin,
            wf.BillingInput(lines={sov: ("500", "1000")}, installed={sov: "1000"}),
            billing.version,
        )
    assert "part of the work" in exc.value.errors[f"line-{sov}-installed"]
