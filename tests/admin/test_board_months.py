"""The period dashboard's money columns (issue 16: summed from Core rows by
``figures.summaries_for``) equal the review page's engine for every billing,
month after month: a skipped month holding stored materials, change orders
between billings (one approved with a new line, one pending with a new line
that must not count), materials installed from the carry, a retainage
release, approvals as noted, a billing held for the owner and one sent back.

Each month the billings are first left undecided (the claimed side, the fast
path) and checked, then decided (the frozen approved side) and checked again.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
import sqlalchemy as sa

from portal import contracts
from portal.billing import billings as wf
from portal.billing import dashboard, figures
from portal.core import billing_presentation as bp
from portal.core.statuses import LineStatus, PeriodStatus
from portal.extensions import db
from portal.models import Billing, BillingPeriod, Commitment, Project, User

from ..helpers import Period, Sub, build_world

pytestmark = pytest.mark.calendar

D = Decimal

COMMITMENTS = (
    Sub("s", "SC-S", "Steel Co", (("05-100", "60000.00"),), (("S", "s@s.example"),)),
    Sub(
        "c",
        "SC-C",
        "Concrete Co",
        (("03-300", "40000.00"), ("03-400", "20000.00")),
        (("C", "c@c.example"),),
        work_pct="7.5",
        materials_pct="3.3333",
    ),
    Sub(
        "r",
        "SC-R",
        "Roofing Co",
        (("07-500", "30000.00"), ("07-600", "1234.57")),
        (("R", "r@r.example"),),
    ),
)


def _expected(billing: Billing, side: str) -> bp.BoardFigures:
    """The review page's figures (figures.sheet, the full engine), as the board shows."""
    return bp.board_figures(figures.sheet(billing, side).figures, side)


def _check_every_billing() -> int:
    """summaries_for == figures_for == the review page, for every billing on
    both sides, and the board of every period shows exactly those figures."""
    every = db.session.scalars(sa.select(Billing).order_by(Billing.id)).all()
    for side in ("claimed", "approved"):
        fast = figures.summaries_for(every, lambda b, s=side: s)
        full = figures.figures_for(every, lambda b, s=side: s)
        for b in every:
            want = _expected(b, side)
            assert bp.board_figures(full[b.id], side) == want, (b.id, side)
            assert bp.board_summary(fast[b.id], side) == want, (b.id, side)
    shown = 0
    for period in db.session.scalars(sa.select(BillingPeriod)).all():
        board = dashboard.period_dashboard(period, today=date(2025, 7, 1))
        for row in board.rows:
            if row.money is None:
                continue
            side = bp.figures_side(row.billing.status)
            assert row.money == _expected(row.billing, side), row.billing.id
            shown += 1
        want_totals = bp.board_totals(r.money for r in board.rows if r.money)
        assert board.totals == want_totals
    return shown


def _claim(commitment, period, admin, lines, released: str = "0") -> Billing:
    """A billing saved and submitted (under review): the claimed side."""
    billing = wf.create_billing(commitment, period, admin)
    by_number = {bl.sov_line.line_number: bl for bl in billing.lines}
    wf.save_billing(
        billing,
        admin,
        wf.BillingInput(
            lines={by_number[n].sov_line_id: v[:2] for n, v in lines.items()},
            installed={
                by_number[n].sov_line_id: v[2] for n, v in lines.items() if len(v) > 2
            },
            retainage_released=released,
            vendor_invoice_number=f"INV-{billing.id}",
        ),
        billing.version,
    )
    wf.submit_billing(billing, admin, billing.version)
    return billing


def _decide(billing: Billing, admin, noted=None, hold: bool = False) -> None:
    """Approve (as noted where ``noted`` maps line numbers to amounts), or hold."""
    noted = noted or {}
    reviews = {}
    for bl in billing.lines:
        n = bl.sov_line.line_number
        work, materials, *rest = noted.get(
            n,
            (
                str(bl.claimed_work),
                str(bl.claimed_materials),
                str(bl.claimed_installed),
            ),
        )
        reviews[bl.id] = wf.LineReview(
            work,
            materials,
            LineStatus.APPROVED,
            "measured on site" if n in noted else "",
            approved_installed=rest[0] if rest else None,
        )
    wf.review_lines(billing, admin, reviews, billing.version)
    if hold:
        wf.hold_for_owner(billing, admin, billing.version)
    else:
        wf.approve_billing(billing, admin, billing.version)


def test_board_figures_equal_the_engine_month_after_month(app, today) -> None:
    with app.app_context():
        w = build_world(
            today,
            project={"name": "Board Months"},
            commitments=COMMITMENTS,
            periods=[
                Period(
                    date(2025, n, 1),
                    date(2025, n, 25),
                    status=PeriodStatus.OPEN if n == 5 else PeriodStatus.CLOSED,
                )
                for n in range(1, 6)
            ],
        )
        admin = db.session.get(User, w.admin_id)
        db.session.get(Project, w.project_id).retainage_release_allowed = True
        s, c, r = (db.session.get(Commitment, w.commitments[k]) for k in "scr")
        p = db.session.scalars(
            sa.select(BillingPeriod)
            .where(BillingPeriod.project_id == w.project_id)
            .order_by(BillingPeriod.sequence)
        ).all()
        shown = 0

        # P1: S stores, C works, R works and stores on both lines.
        s1 = _claim(s, p[0], admin, {1: ("0", "20000.00")})
        c1 = _claim(c, p[0], admin, {1: ("8000.00", "0")})
        r1 = _claim(r, p[0], admin, {1: ("12000.00", "3000.00"), 2: ("333.33", "1")})
        db.session.commit()
        shown += _check_every_billing()
        _decide(s1, admin)
        _decide(c1, admin, {1: ("7777.77", "0")})
        _decide(r1, admin)
        db.session.commit()
        shown += _check_every_billing()

        # P2: S installs part of its stored; C approved as noted; R held.
        s2 = _claim(s, p[1], admin, {1: ("10000.00", "0", "8000.00")})
        c2 = _claim(c, p[1], admin, {1: ("12000.00", "0"), 2: ("5000.00", "250")})
        r2 = _claim(r, p[1], admin, {1: ("9000.00", "0", "3000.00")})
        db.session.commit()
        shown += _check_every_billing()
        _decide(s2, admin)
        _decide(c2, admin, {1: ("10000.00", "0")})
        _decide(r2, admin, {1: ("8000.00", "0", "2500.00")}, hold=True)
        db.session.commit()
        shown += _check_every_billing()

        # Between P2 and P3: CO-1 on C (raises L2, adds L3) approved; CO-2
        # with a new line left pending (not billable).
        co = contracts.create_change_order(admin, c, "CO-1", "Pump pad")
        contracts.add_change_order_item(
            admin, co, D("10000.00"), sov_line_id=c.sov_lines[1].id
        )
        contracts.add_change_order_item(
            admin, co, D("5000.00"), new_line=("03-400", "Pump pad")
        )
        contracts.approve_change_order(admin, co)
        pending = contracts.create_change_order(admin, c, "CO-2", "Not yet")
        contracts.add_change_order_item(
            admin, pending, D("999.99"), new_line=("03-300", "Pending")
        )
        db.session.commit()
        shown += _check_every_billing()

        # P3: S skips (its stored materials carry); C on the new schedule; R
        # releases retainage and is sent back for revision.
        c3 = _claim(c, p[2], admin, {2: ("15000.00", "0"), 3: ("2000.00", "100")})
        r3 = _claim(r, p[2], admin, {1: ("1000.00", "0")}, released="900.00")
        db.session.commit()
        shown += _check_every_billing()
        wf.send_back(r3, admin, r3.version, "Show the release on the invoice")
        _decide(c3, admin)
        db.session.commit()
        shown += _check_every_billing()

        # P4: S back (installs the carry), R approved after revision, C a draft.
        s4 = _claim(s, p[3], admin, {1: ("12000.00", "6000.00", "12000.00")})
        c4 = wf.create_billing(c, p[3], admin)
        db.session.commit()
        shown += _check_every_billing()
        _decide(s4, admin, {1: ("12000.00", "5000.00", "12000.00")})
        db.session.commit()
        shown += _check_every_billing()

        # P5 (open): every commitment undecided on the board at once.
        _claim(s, p[4], admin, {1: ("8000.00", "0", "4000.00")})
        _claim(r, p[4], admin, {2: ("900.00", "0")}, released="100.00")
        wf.create_billing(c, p[4], admin)
        db.session.commit()
        shown += _check_every_billing()
        assert c4.id
        assert shown >= 30
