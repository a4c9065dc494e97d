"""A realistic demo: one project, a client contract, three commitments, two periods.

Loading twice changes nothing but the admin password and a fresh contact link.
"""

from __future__ import annotations

import secrets
from datetime import date
from decimal import Decimal
from typing import TypedDict

import sqlalchemy as sa

from portal import timeutil
from portal.accounts import tokens
from portal.accounts.passwords import hash_password
from portal.billing import billings, invitations
from portal.core.statuses import (
    ChangeOrderStatus,
    CommitmentStatus,
    ContractStatus,
    PeriodStatus,
)
from portal.extensions import db
from portal.models import (
    BillingPeriod,
    ChangeOrder,
    ChangeOrderItem,
    ClientContract,
    ClientSovLine,
    Commitment,
    Contact,
    ErpCostCode,
    ErpSettings,
    Project,
    SovLine,
    User,
    Vendor,
)
from portal.timeutil import utcnow

D = Decimal
PROJECT_NUMBER = "1024"

CLIENT_LINES = [
    ("03-300", "Cast-in-place concrete", "480000.00"),
    ("05-100", "Structural steel", "310000.00"),
    ("22-100", "Plumbing", "185000.00"),
    ("23-300", "HVAC ductwork and equipment", "265000.00"),
    ("26-100", "Electrical distribution", "240000.00"),
    ("26-500", "Lighting", "98000.00"),
]


class _CommitmentSpec(TypedDict):
    """One demo commitment: its vendor, contacts, SOV and period-1 figures."""

    vendor: tuple[str, str, str]  # name, code, address
    contacts: list[tuple[str, str]]  # name, email
    number: str
    title: str
    kind: str
    work_pct: str
    materials_pct: str
    lines: list[tuple[str, str, str]]  # cost code, description, value
    p1: dict[int, tuple[str, str]]  # line number -> (work, materials) billed
    p1_approve: dict[int, tuple[str, str]]  # line number -> (work, materials) approved


COMMITMENTS: list[_CommitmentSpec] = [
    {
        "vendor": ("Acme Concrete LLC", "ACME", "120 Quarry Rd, Springfield"),
        "contacts": [("Dana Whitfield", "dana@acme-concrete.example")],
        "number": "SC-001",
        "title": "Concrete foundations and slabs",
        "kind": "subcontract",
        "work_pct": "10",
        "materials_pct": "5",
        "lines": [
            ("03-300", "Mobilization", "12000.00"),
            ("03-300", "Footings", "64000.00"),
            ("03-300", "Foundation walls", "88000.00"),
            ("03-300", "Slab on grade", "96000.00"),
            ("03-300", "Elevated slabs level 2", "74000.00"),
            ("03-300", "Elevated slabs level 3", "74000.00"),
            ("03-300", "Stairs and landings", "18500.00"),
            ("03-300", "Curing and finishing", "9500.00"),
        ],
        "p1": {1: ("12000.00", "0"), 2: ("48000.00", "0"), 3: ("22000.00", "6500.00")},
        "p1_approve": {},
    },
    {
        "vendor": ("Bright Electric Inc", "BRIGHT", "45 Volta Ave, Springfield"),
        "contacts": [
            ("Sam Okafor", "sam@bright-electric.example"),
            ("Priya Raman", "priya@bright-electric.example"),
        ],
        "number": "SC-002",
        "title": "Electrical and lighting",
        "kind": "subcontract",
        "work_pct": "10",
        "materials_pct": "10",
        "lines": [
            ("26-100", "Mobilization and permits", "8000.00"),
            ("26-100", "Underground conduit", "26000.00"),
            ("26-100", "Service entrance and switchgear", "54000.00"),
            ("26-100", "Panelboards", "22000.00"),
            ("26-100", "Branch wiring level 1", "31000.00"),
            ("26-100", "Branch wiring level 2", "31000.00"),
            ("26-100", "Branch wiring level 3", "29000.00"),
            ("26-500", "Light fixtures supply", "42000.00"),
            ("26-500", "Light fixtures install", "23000.00"),
            ("26-100", "Fire alarm", "18500.00"),
            ("26-100", "Testing and commissioning", "6500.00"),
        ],
        "p1": {1: ("8000.00", "0"), 2: ("19500.00", "0"), 3: ("0", "21000.00")},
        "p1_approve": {2: ("18000.00", "0")},
    },
    {
        "vendor": ("Summit Mechanical Supply", "SUMMIT", "9 Harbor Way, Springfield"),
        "contacts": [("Lee Carver", "lee@summit-supply.example")],
        "number": "PO-003",
        "title": "Plumbing fixtures and HVAC equipment",
        "kind": "purchase_order",
        "work_pct": "5",
        "materials_pct": "5",
        "lines": [
            ("22-100", "Water closets and lavatories", "28000.00"),
            ("22-100", "Water heaters", "16500.00"),
            ("23-300", "Rooftop units", "88000.00"),
            ("23-300", "VAV boxes", "24000.00"),
            ("23-300", "Exhaust fans", "9800.00"),
            ("23-700", "Controls hardware", "14500.00"),
        ],
        "p1": {3: ("0", "44000.00"), 1: ("7200.00", "0")},
        "p1_approve": {},
    },
]


def _ensure_user(email: str, name: str, role: str, password: str) -> User:
    user = db.session.scalar(sa.select(User).where(sa.func.lower(User.email) == email))
    if user is None:
        user = User(
            email=email, name=name, role=role, password_hash=hash_password(password)
        )
        db.session.add(user)
    else:
        user.password_hash = hash_password(password)
        user.active = True
        user.failed_logins = 0
        user.locked_until = None
    db.session.flush()
    return user


def load_demo() -> dict[str, str]:
    """Load the demo (once) and return logins and a contact magic link."""
    password = "demo-" + secrets.token_urlsafe(9)
    admin = _ensure_user("admin@example.com", "Alex Admin", "admin", password)
    _ensure_user("finance@example.com", "Fran Finance", "finance", password)
    _ensure_user("viewer@example.com", "Vic Viewer", "viewer", password)
    project = db.session.scalar(
        sa.select(Project).where(Project.number == PROJECT_NUMBER)
    )
    if project is None:
        _build(admin)
    contact = db.session.scalar(
        sa.select(Contact).where(Contact.email == "dana@acme-concrete.example")
    )
    assert contact is not None  # noqa: S101 - created by _build
    _, token = tokens.issue_link(contact)
    return {
        "admin_email": admin.email,
        "admin_password": password,
        "finance_email": "finance@example.com",
        "contact_email": contact.email,
        "contact_link": tokens.link_url(token),
    }


def _build(admin: User) -> None:
    today = timeutil.today()
    this_month = date(today.year, today.month, 1)
    prev_month = date(
        this_month.year - (this_month.month == 1), (this_month.month - 2) % 12 + 1, 1
    )
    project = Project(
        number=PROJECT_NUMBER,
        name="Riverside Clinic",
        currency="USD",
        address="1024 Riverside Dr, Springfield",
        time_zone="America/New_York",
        retainage_release_allowed=True,
        erp_job_number="1024",
        qb_customer_job="Riverside Health:Riverside Clinic",
    )
    db.session.add(project)
    if db.session.get(ErpSettings, 1) is None:
        db.session.add(
            ErpSettings(
                id=1,
                ap_account="Accounts Payable",
                retainage_payable_account="Retainage Payable",
                default_expense_account="Job Costs:Subcontracts",
                default_sage_category="S",
            )
        )
    codes = {code for spec in COMMITMENTS for code, _, _ in spec["lines"]}
    known = set(db.session.scalars(sa.select(ErpCostCode.cost_code)))
    for code in sorted(codes - known):
        db.session.add(
            ErpCostCode(
                cost_code=code,
                expense_account="Job Costs:Subcontracts",
                sage_cost_code=code,
                sage_category="S",
            )
        )
    contract = ClientContract(
        project=project,
        number="HC-1024",
        title="Riverside Clinic head contract",
        client_name="Riverside Health",
        status=ContractStatus.APPROVED,
        work_retainage_pct=D("5"),
        materials_retainage_pct=D("5"),
        markup_pct=D("8"),
    )
    for i, (code, desc, value) in enumerate(CLIENT_LINES, start=1):
        contract.lines.append(
            ClientSovLine(
                line_number=i,
                cost_code=code,
                description=desc,
                scheduled_value=D(value),
            )
        )
    db.session.add(contract)
    p1 = BillingPeriod(
        project=project,
        sequence=1,
        start_date=prev_month,
        end_date=_month_end(prev_month),
        due_date=_month_end(prev_month),
        billing_date=_month_end(prev_month),
        status=PeriodStatus.OPEN,
    )
    db.session.add(p1)
    db.session.flush()
    commitments = []
    for spec in COMMITMENTS:
        vname, vcode, vaddr = spec["vendor"]
        vendor = Vendor(name=vname, erp_vendor_code=vcode, address=vaddr)
        db.session.add(vendor)
        commitment = Commitment(
            project=project,
            vendor=vendor,
            kind=spec["kind"],
            number=spec["number"],
            title=spec["title"],
            status=CommitmentStatus.APPROVED,
            work_retainage_pct=D(spec["work_pct"]),
            materials_retainage_pct=D(spec["materials_pct"]),
        )
        for i, (code, desc, value) in enumerate(spec["lines"], start=1):
            commitment.sov_lines.append(
                SovLine(
                    line_number=i,
                    cost_code=code,
                    description=desc,
                    original_value=D(value),
                )
            )
        for name, email in spec["contacts"]:
            contact = Contact(vendor=vendor, name=name, email=email)
            commitment.contacts.append(contact)
        db.session.add(commitment)
        db.session.flush()
        commitments.append((spec, commitment))
    # An approved change order on the electrical subcontract.
    electrical = commitments[1][1]
    co = ChangeOrder(
        commitment=electrical,
        number="CO-1",
        title="Additional EV charger circuits",
        status=ChangeOrderStatus.APPROVED,
        approved_at=utcnow(),
        approved_by_id=admin.id,
    )
    co.items.append(
        ChangeOrderItem(sov_line=electrical.sov_lines[3], amount=D("6500.00"))
    )
    db.session.add(co)
    db.session.flush()
    # Period 1: approved billings (one approved as noted).
    for spec, commitment in commitments:
        billing = billings.create_billing(commitment, p1, admin)
        values = {
            line.id: spec["p1"].get(line.line_number, ("0", "0"))
            for line in commitment.sov_lines
        }
        billings.save_billing(
            billing,
            admin,
            billings.BillingInput(
                lines=values, vendor_invoice_number=f"{spec['vendor'][1]}-1001"
            ),
            billing.version,
        )
        billings.submit_billing(billing, admin, billing.version)
        if spec["p1_approve"]:
            reviews = {}
            for bl in billing.lines:
                number = bl.sov_line.line_number
                if number in spec["p1_approve"]:
                    work, materials = spec["p1_approve"][number]
                    reviews[bl.id] = billings.LineReview(
                        work,
                        materials,
                        "approved",
                        "Per site walk: 60% of wiring, not 65%.",
                    )
            billings.review_lines(billing, admin, reviews, billing.version)
        billings.approve_billing(billing, admin, billing.version)
    # Period 2: open, with invitations to every commitment.
    p1.status = PeriodStatus.CLOSED
    db.session.flush()
    p2 = BillingPeriod(
        project=project,
        sequence=2,
        start_date=this_month,
        end_date=_month_end(this_month),
        due_date=_month_end(this_month),
        billing_date=_month_end(this_month),
        status=PeriodStatus.OPEN,
    )
    db.session.add(p2)
    db.session.flush()
    invitations.invite(p2, [c for _, c in commitments], admin)
    db.session.flush()


def _month_end(first: date) -> date:
    nxt = date(first.year + (first.month == 12), first.month % 12 + 1, 1)
    return date.fromordinal(nxt.toordinal() - 1)
