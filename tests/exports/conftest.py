"""Fixtures for the finance exports: SPEC §4's worked example, approved, with ERP codes."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from types import SimpleNamespace

import pytest

from portal.billing import billings
from portal.core.statuses import PeriodStatus
from portal.extensions import db
from portal.models import (
    BillingPeriod,
    Commitment,
    ErpCostCode,
    ErpSettings,
    Project,
    User,
    Vendor,
)

D = Decimal


def approve_worked_example(world: SimpleNamespace) -> SimpleNamespace:
    """Create and approve SPEC §4's billing 1 and billing 2 (needs an app context)."""
    admin = db.session.get(User, world.admin_id)
    commitment = db.session.get(Commitment, world.commitment_id)
    period1 = db.session.get(BillingPeriod, world.period1_id)
    period1.start_date, period1.end_date = date(2025, 3, 1), date(2025, 3, 31)
    period1.billing_date, period1.due_date = date(2025, 3, 31), date(2025, 3, 25)
    l1, l2, l3 = world.line_ids

    b1 = billings.create_billing(commitment, period1, admin)
    billings.save_billing(
        b1,
        admin,
        billings.BillingInput(
            lines={l1: ("20000.00", "0"), l2: ("0", "6000.00")},
            vendor_invoice_number="EE-2001",
        ),
        b1.version,
    )
    billings.submit_billing(b1, admin, b1.version)
    assert billings.approve_billing(b1, admin, b1.version) == "approved"
    period1.status = PeriodStatus.CLOSED
    db.session.flush()

    period2 = BillingPeriod(
        project_id=world.project_id,
        sequence=2,
        start_date=date(2025, 4, 1),
        end_date=date(2025, 4, 30),
        due_date=date(2025, 4, 25),
        billing_date=date(2025, 4, 30),
        status=PeriodStatus.OPEN,
    )
    db.session.add(period2)
    db.session.flush()
    b2 = billings.create_billing(commitment, period2, admin)
    billings.save_billing(
        b2,
        admin,
        billings.BillingInput(
            lines={
                l1: ("15000.00", "0"),
                l2: ("4000.00", "0"),
                l3: ("12345.67", "0"),
            },
            vendor_invoice_number="EE-2002",
            # F carries (SPEC §4): 3,500.00 of L2's 6,000.00 installed, 2,500.00 left.
            installed={l2: "3500.00"},
        ),
        b2.version,
    )
    billings.submit_billing(b2, admin, b2.version)
    line3 = next(bl for bl in b2.lines if bl.sov_line_id == l3)
    billings.review_lines(
        b2,
        admin,
        {line3.id: billings.LineReview("10000.00", "0", "approved", "Per site walk")},
        b2.version,
    )
    assert billings.approve_billing(b2, admin, b2.version) == "approved_as_noted"
    db.session.commit()
    return SimpleNamespace(
        **vars(world), billing1_id=b1.id, billing2_id=b2.id, period2_id=period2.id
    )


def configure_erp(world: SimpleNamespace) -> None:
    """ERP codes for the worked example (the values the expected files carry)."""
    db.session.add(
        ErpSettings(
            id=1,
            ap_account="Accounts Payable",
            retainage_payable_account="Retainage Payable",
            default_expense_account="Job Costs:Subcontracts",
            default_sage_category="S",
            default_qb_class="Subcontract",
        )
    )
    db.session.add_all(
        [
            ErpCostCode(
                cost_code="26-100",
                expense_account="Job Costs:Electrical",
                sage_cost_code="26-100",
                sage_category="",
                qb_class="",
            ),
            ErpCostCode(
                cost_code="26-200",
                expense_account="",
                sage_cost_code="26-200",
                sage_category="",
                qb_class="",
            ),
            ErpCostCode(
                cost_code="26-300",
                expense_account="Job Costs:Switchgear",
                sage_cost_code="26-300",
                sage_category="M",
                qb_class="Equipment",
            ),
        ]
    )
    vendor = db.session.get(Vendor, world.vendor_id)
    vendor.erp_vendor_code = "EXEL"
    vendor.address = "45 Volta Ave\nSpringfield, IL 62702"
    project = db.session.get(Project, world.project_id)
    project.number = "1024"
    project.erp_job_number = "1024"
    project.qb_customer_job = "Riverside Health:Worked Example"
    db.session.commit()


@pytest.fixture
def example(ctx, world):
    """The worked example with billings 1 and 2 approved and ERP codes set."""
    out = approve_worked_example(world)
    configure_erp(world)
    return out


def make_finance_users() -> dict[str, int]:
    """One user per staff role (in the current app context)."""
    from tests import factories as f

    out = {role: f.make_user(role=role).id for role in ("admin", "finance", "viewer")}
    db.session.commit()
    return out


@pytest.fixture
def data(app):
    """The worked example approved with ERP codes, staff users and API tokens,
    committed without keeping an app context pushed (for client tests)."""
    from portal.accounts import api_tokens
    from tests import factories as f

    with app.app_context():
        world = f.build_world()
        out = approve_worked_example(world)
        configure_erp(world)
        for role in ("finance", "viewer"):
            user = f.make_user(role)
            setattr(out, f"{role}_id", user.id)
        contact_id = world.contact_id
        tokens = {}
        for role in ("finance", "viewer", "admin"):
            user = db.session.get(User, getattr(out, f"{role}_id"))
            _, tokens[role] = api_tokens.create_token(user, f"{role} tool")
        db.session.commit()
    out.tokens = tokens
    out.contact_id = contact_id
    return out
