"""Small factories for tests: plain functions that add rows and flush."""

from __future__ import annotations

import itertools
from datetime import date, timedelta
from decimal import Decimal
from types import SimpleNamespace

from portal.accounts.passwords import hash_password
from portal.core.statuses import ChangeOrderStatus, CommitmentStatus, PeriodStatus
from portal.extensions import db
from portal.models import (
    BillingPeriod,
    ChangeOrder,
    ChangeOrderItem,
    ClientContract,
    ClientSovLine,
    Commitment,
    Contact,
    Project,
    SovLine,
    User,
    Vendor,
)
from portal.timeutil import utcnow

from .clock import pinned_today

D = Decimal
_seq = itertools.count(1)
PASSWORD = "correct horse battery staple"
_HASH: dict[str, str] = {}


def _n() -> int:
    return next(_seq)


def make_user(
    role: str = "admin", email: str | None = None, password: str = PASSWORD
) -> User:
    if password not in _HASH:
        _HASH[password] = hash_password(password)
    n = _n()
    user = User(
        email=email or f"{role}{n}@example.com",
        name=f"{role.title()} {n}",
        role=role,
        password_hash=_HASH[password],
    )
    db.session.add(user)
    db.session.flush()
    return user


def make_project(**kw) -> Project:
    n = _n()
    project = Project(
        number=kw.pop("number", f"P-{n}"), name=kw.pop("name", f"Project {n}"), **kw
    )
    db.session.add(project)
    db.session.flush()
    return project


def make_vendor(**kw) -> Vendor:
    n = _n()
    vendor = Vendor(
        name=kw.pop("name", f"Vendor {n}"),
        erp_vendor_code=kw.pop("erp_vendor_code", f"V{n}"),
        **kw,
    )
    db.session.add(vendor)
    db.session.flush()
    return vendor


def make_contact(vendor: Vendor, **kw) -> Contact:
    n = _n()
    contact = Contact(
        vendor=vendor,
        name=kw.pop("name", f"Contact {n}"),
        email=kw.pop("email", f"contact{n}@vendor.example"),
        **kw,
    )
    db.session.add(contact)
    db.session.flush()
    return contact


def make_commitment(
    project: Project,
    vendor: Vendor | None = None,
    lines: list[tuple[str, str]] | None = None,
    contacts: list[Contact] | None = None,
    work_pct: str = "10",
    materials_pct: str = "5",
    status: str = CommitmentStatus.APPROVED,
    **kw,
) -> Commitment:
    """A commitment with SOV lines given as (cost code, value)."""
    vendor = vendor or make_vendor()
    n = _n()
    commitment = Commitment(
        project=project,
        vendor=vendor,
        number=kw.pop("number", f"SC-{n:03d}"),
        title=kw.pop("title", f"Subcontract {n}"),
        status=status,
        work_retainage_pct=D(work_pct),
        materials_retainage_pct=D(materials_pct),
        **kw,
    )
    for i, (code, value) in enumerate(lines or [("01-100", "10000.00")], start=1):
        commitment.sov_lines.append(
            SovLine(
                line_number=i,
                cost_code=code,
                description=f"Line {i}",
                original_value=D(value),
            )
        )
    for contact in contacts or []:
        commitment.contacts.append(contact)
    db.session.add(commitment)
    db.session.flush()
    return commitment


def make_period(
    project: Project,
    sequence: int = 1,
    *,
    start: date,
    due: date,
    status: str = PeriodStatus.OPEN,
) -> BillingPeriod:
    """A 28-day period from ``start``; ``due`` is the contacts' due date."""
    end = start + timedelta(days=27)
    period = BillingPeriod(
        project=project,
        sequence=sequence,
        start_date=start,
        end_date=end,
        due_date=due,
        billing_date=end,
        status=status,
    )
    db.session.add(period)
    db.session.flush()
    return period


def approve_change_order(
    commitment: Commitment, line: SovLine, amount: str, user: User | None = None
) -> ChangeOrder:
    co = ChangeOrder(
        commitment=commitment,
        number=f"CO-{_n()}",
        title="Change",
        status=ChangeOrderStatus.APPROVED,
        approved_at=utcnow(),
        approved_by_id=user.id if user else None,
    )
    co.items.append(ChangeOrderItem(sov_line=line, amount=D(amount)))
    db.session.add(co)
    db.session.flush()
    return co


def make_client_contract(
    project: Project,
    lines: list[tuple[str, str]],
    markup: str = "0",
    work_pct: str = "10",
    materials_pct: str = "10",
) -> ClientContract:
    contract = ClientContract(
        project=project,
        number=f"HC-{_n()}",
        title="Head contract",
        client_name="Client Co",
        status="approved",
        markup_pct=D(markup),
        work_retainage_pct=D(work_pct),
        materials_retainage_pct=D(materials_pct),
    )
    for i, (code, value) in enumerate(lines, start=1):
        contract.lines.append(
            ClientSovLine(
                line_number=i,
                cost_code=code,
                description=f"Client line {i}",
                scheduled_value=D(value),
            )
        )
    db.session.add(contract)
    db.session.flush()
    return contract


def build_world(today: date | None = None) -> SimpleNamespace:
    """SPEC §4's worked example: L1 50,000; L2 30,000 (+CO-1 5,000); L3 20,000;
    10 % work / 5 % materials retainage; an admin, a contact, two periods
    (period 1 open; create period 2 after closing it).

    Period 1 starts on the 1st of ``today``'s month (the run's pinned day by
    default) and is due ten days after ``today``, so contacts may still bill.
    """
    today = today or pinned_today()
    admin = make_user("admin")
    project = make_project(name="Worked Example")
    vendor = make_vendor(name="Example Electric")
    contact = make_contact(
        vendor, name="Casey Contact", email="casey@example-electric.example"
    )
    other_vendor = make_vendor(name="Other Vendor")
    other_contact = make_contact(
        other_vendor, name="Olive Other", email="olive@other.example"
    )
    commitment = make_commitment(
        project,
        vendor,
        [("26-100", "50000.00"), ("26-200", "30000.00"), ("26-300", "20000.00")],
        [contact],
        work_pct="10",
        materials_pct="5",
        number="SC-100",
    )
    other = make_commitment(
        project,
        other_vendor,
        [("03-300", "40000.00")],
        [other_contact],
        number="SC-200",
    )
    approve_change_order(commitment, commitment.sov_lines[1], "5000.00", admin)
    period1 = make_period(
        project, 1, start=today.replace(day=1), due=today + timedelta(days=10)
    )
    db.session.commit()
    return SimpleNamespace(
        admin_id=admin.id,
        project_id=project.id,
        vendor_id=vendor.id,
        contact_id=contact.id,
        other_contact_id=other_contact.id,
        commitment_id=commitment.id,
        other_commitment_id=other.id,
        line_ids=[line.id for line in commitment.sov_lines],
        period1_id=period1.id,
    )
