"""The upstream test world: a project, a head contract, several commitments and
billings in two periods, built with the shared world builder (tests/helpers.py)
and taken through the real workflow (portal.billing.billings)."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from portal.core.statuses import PeriodStatus
from portal.extensions import db
from portal.models import BillingPeriod, Commitment, User

from ..clock import pinned_today
from ..helpers import Contract, Period, Sub, World, bill, build_world

D = Decimal

#: Four subcontracts (each its own vendor, no contacts); a CO on electrical
#: fixtures: 30,000 + 5,000 (the period-1 claim needs it).
COMMITMENTS = (
    Sub(
        "concrete",
        "SC-001",
        "Acme Concrete",
        (("03-300", "60000.00"), ("03-300", "80000.00")),
    ),
    Sub(
        "electric",
        "SC-002",
        "Bright Electric",
        (("26-100", "50000.00"), ("26-100", "30000.00"), ("99-999", "10000.00")),
        change_orders=((2, "5000.00"),),
    ),
    Sub("plumbing", "SC-003", "Pipe Plumbing", (("22-100", "40000.00"),)),
    Sub("late", "SC-004", "Late Concrete Pumping", (("03-300", "5000.00"),)),
)


def build(markup: str = "10") -> World:
    """Period 1 of the upstream world (see test_generate for the figures).

    ``billings`` maps each commitment's key to its period-1 billing.
    """
    today = pinned_today()
    w = build_world(
        today,
        project={"name": "Harbour Tower", "currency": "USD"},
        commitments=COMMITMENTS,
        contract=Contract(
            (
                ("03-300", "200000.00"),  # L1 concrete
                ("26-100", "150000.00"),  # L2 electrical
                ("22-100", "100000.00"),  # L3 plumbing
                ("01-500", "50000.00"),  # L4 general conditions (self-performed)
            ),
            markup=markup,
            work_pct="10",
            materials_pct="5",
        ),
        periods=(
            Period(date(2025, 1, 1), date(2025, 2, 5), status=PeriodStatus.CLOSED),
            # Open, and due after the run's day: contacts may still bill it.
            Period(date(2025, 2, 1), today + timedelta(days=10)),
        ),
    )
    admin = db.session.get(User, w.admin_id)
    period1 = db.session.get(BillingPeriod, w.period1_id)

    def sub(key: str) -> Commitment:
        return db.session.get(Commitment, w.commitments[key])

    w.billings = {
        "concrete": bill(
            sub("concrete"),
            period1,
            admin,
            {1: ("20000.00", "0"), 2: ("0", "6000.00")},
        ).id,
        "electric": bill(
            sub("electric"),
            period1,
            admin,
            {1: ("15000.00", "0"), 2: ("31000.05", "2500.00"), 3: ("1234.56", "0")},
            approved={1: ("12345.65", "0")},
        ).id,
        "plumbing": bill(
            sub("plumbing"), period1, admin, {1: ("7777.77", "0")}, decide="hold"
        ).id,
        "late": bill(
            sub("late"), period1, admin, {1: ("1000.00", "0")}, decide="review"
        ).id,
    }
    db.session.commit()
    return w
