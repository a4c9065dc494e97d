"""The latest counted billing of every commitment as of a period (SPEC §9: the
stored balance a commitment that skips a month keeps upstream), read one
billing per commitment however many months the project has billed (issue 16
item 3: loading every counted billing with its frozen figures made a claim's
generation grow with the project's age)."""

from __future__ import annotations

from datetime import date

import pytest
import sqlalchemy as sa

from portal.billing import billings as wf
from portal.core.statuses import PeriodStatus
from portal.extensions import db
from portal.models import Billing, BillingPeriod, Commitment, User
from portal.upstream.generate import latest_counted

from ..helpers import (
    Contract,
    Period,
    Sub,
    bill,
    build_world,
    counting,
    project_periods,
)

pytestmark = pytest.mark.calendar

SUBS = (
    Sub("a", "SC-A", "A", (("26-100", "50000.00"),)),
    Sub("b", "PO-B", "B", (("03-300", "44000.00"),)),
    Sub("c", "SC-C", "C", (("09-900", "5000.00"),)),
)


def test_one_billing_per_commitment_whatever_the_months(app, ctx, today) -> None:
    w = build_world(
        today,
        commitments=SUBS,
        contract=Contract((("26-100", "100000.00"), ("03-300", "100000.00"))),
        periods=[
            Period(
                date(2025, n, 1),
                date(2025, n, 25),
                status=PeriodStatus.OPEN if n == 5 else PeriodStatus.CLOSED,
            )
            for n in (1, 2, 3, 4, 5)
        ],
    )
    admin = db.session.get(User, w.admin_id)
    a, b, c = (db.session.get(Commitment, w.commitments[k]) for k in "abc")
    p1, p2, p3, p4, p5 = project_periods(w.project_id)
    # A bills every month to P4; B in P1 and P3 (skips P2); in P4 B's billing
    # is sent back (not counted) and C's is void; in P5 A is still a draft.
    a_bills = [bill(a, p, admin, {1: ("1000.00", "0")}) for p in (p1, p2, p3, p4)]
    b1 = bill(b, p1, admin, {1: ("0", "4000.00")})
    b3 = bill(b, p3, admin, {1: ("2000.00", "0")})
    b4 = bill(b, p4, admin, {1: ("500.00", "0")}, decide="review")
    wf.send_back(b4, admin, b4.version, "Please split the invoice")
    c4 = bill(c, p4, admin, {1: ("100.00", "0")}, decide="draft")
    wf.void_billing(c4, admin, c4.version, "Entered twice")
    bill(a, p5, admin, {1: ("1.00", "0")}, decide="draft")
    db.session.commit()

    expected = {
        p1.id: {a.id: a_bills[0].id, b.id: b1.id},
        p2.id: {a.id: a_bills[1].id, b.id: b1.id},  # B skipped P2: its P1 billing
        p3.id: {a.id: a_bills[2].id, b.id: b3.id},
        p4.id: {a.id: a_bills[3].id, b.id: b3.id},  # B's P4 sent back, C's void
        p5.id: {a.id: a_bills[3].id, b.id: b3.id},  # A's P5 only a draft
    }
    for period_id, want in expected.items():
        db.session.expunge_all()
        period = db.session.get(BillingPeriod, period_id)
        loaded: list[int] = []

        def count_load(
            target: Billing, _context: object, loaded: list[int] = loaded
        ) -> None:
            loaded.append(target.id)

        sa.event.listen(Billing, "load", count_load)
        try:
            with counting(app) as statements:
                got = latest_counted(w.project_id, period)
        finally:
            sa.event.remove(Billing, "load", count_load)
        assert {k: v.id for k, v in got.items()} == want, period.sequence
        assert sorted(loaded) == sorted(want.values()), "only the latest of each"
        # The billings, their commitments, the commitments' vendors.
        assert len(statements) == 3
