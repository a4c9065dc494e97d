"""The upstream test world: a project, a head contract, several commitments and
billings in two periods, built through the real workflow (portal.billing.billings)."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from types import SimpleNamespace

from portal.billing import billings as wf
from portal.core.statuses import LineStatus, PeriodStatus
from portal.extensions import db
from portal.models import Billing, Commitment, User

from .. import factories as f
from ..clock import pinned_today

D = Decimal


def bill(
    commitment: Commitment,
    period,
    admin: User,
    claimed: dict[int, tuple[str, ...]],
    approved: dict[int, tuple[str, ...]] | None = None,
    decide: str = "approve",
) -> Billing:
    """A billing through the workflow: create, save, submit, review, decide.

    ``claimed`` / ``approved`` map SOV line numbers to (work, new materials
    stored[, stored materials installed]) text.
    ``decide``: "approve", "hold" (pending owner approval) or "review" (left
    under review).
    """
    billing = wf.create_billing(commitment, period, admin)
    by_number = {bl.sov_line.line_number: bl for bl in billing.lines}
    wf.save_billing(
        billing,
        admin,
        wf.BillingInput(
            lines={by_number[n].sov_line_id: (v[0], v[1]) for n, v in claimed.items()},
            vendor_invoice_number=f"INV-{billing.id}",
            installed={
                by_number[n].sov_line_id: v[2] for n, v in claimed.items() if len(v) > 2
            },
        ),
        billing.version,
    )
    wf.submit_billing(billing, admin, billing.version)
    if decide == "review":
        return billing
    reviews = {}
    for n, bl in by_number.items():
        work, materials, *rest = (approved or {}).get(
            n,
            (
                str(bl.claimed_work),
                str(bl.claimed_materials),
                str(bl.claimed_installed),
            ),
        )
        comment = (
            "Approved as noted: work on site measured" if n in (approved or {}) else ""
        )
        reviews[bl.id] = wf.LineReview(
            work,
            materials,
            LineStatus.APPROVED,
            comment,
            approved_installed=rest[0] if rest else None,
        )
    wf.review_lines(billing, admin, reviews, billing.version)
    if decide == "hold":
        wf.hold_for_owner(billing, admin, billing.version)
    else:
        wf.approve_billing(billing, admin, billing.version)
    return billing


def build(markup: str = "10") -> SimpleNamespace:
    """Period 1 of the upstream world (see test_generate for the figures)."""
    admin = f.make_user("admin")
    project = f.make_project(name="Harbour Tower", currency="USD")
    contract = f.make_client_contract(
        project,
        [
            ("03-300", "200000.00"),  # L1 concrete
            ("26-100", "150000.00"),  # L2 electrical
            ("22-100", "100000.00"),  # L3 plumbing
            ("01-500", "50000.00"),  # L4 general conditions (self-performed)
        ],
        markup=markup,
        work_pct="10",
        materials_pct="5",
    )
    concrete = f.make_commitment(
        project,
        f.make_vendor(name="Acme Concrete"),
        [("03-300", "60000.00"), ("03-300", "80000.00")],
        number="SC-001",
    )
    electric = f.make_commitment(
        project,
        f.make_vendor(name="Bright Electric"),
        [("26-100", "50000.00"), ("26-100", "30000.00"), ("99-999", "10000.00")],
        number="SC-002",
    )
    plumbing = f.make_commitment(
        project,
        f.make_vendor(name="Pipe Plumbing"),
        [("22-100", "40000.00")],
        number="SC-003",
    )
    late = f.make_commitment(
        project,
        f.make_vendor(name="Late Concrete Pumping"),
        [("03-300", "5000.00")],
        number="SC-004",
    )
    # CO on electrical fixtures: 30,000 + 5,000 (the period-1 claim needs it).
    f.approve_change_order(electric, electric.sov_lines[1], "5000.00", admin)
    period1 = f.make_period(
        project,
        1,
        start=date(2025, 1, 1),
        due=date(2025, 2, 5),
        status=PeriodStatus.CLOSED,
    )
    # Open, and due after the run's day: contacts may still bill it.
    period2 = f.make_period(
        project, 2, start=date(2025, 2, 1), due=pinned_today() + timedelta(days=10)
    )
    db.session.flush()
    b_concrete = bill(
        concrete, period1, admin, {1: ("20000.00", "0"), 2: ("0", "6000.00")}
    )
    b_electric = bill(
        electric,
        period1,
        admin,
        {1: ("15000.00", "0"), 2: ("31000.05", "2500.00"), 3: ("1234.56", "0")},
        approved={1: ("12345.65", "0")},
    )
    b_plumbing = bill(plumbing, period1, admin, {1: ("7777.77", "0")}, decide="hold")
    b_late = bill(late, period1, admin, {1: ("1000.00", "0")}, decide="review")
    db.session.commit()
    return SimpleNamespace(
        admin_id=admin.id,
        project_id=project.id,
        contract_id=contract.id,
        concrete_id=concrete.id,
        electric_id=electric.id,
        plumbing_id=plumbing.id,
        late_id=late.id,
        period1_id=period1.id,
        period2_id=period2.id,
        b_concrete=b_concrete.id,
        b_electric=b_electric.id,
        b_plumbing=b_plumbing.id,
        b_late=b_late.id,
        client_line_ids=[line.id for line in contract.lines],
    )
