"""Small factories for tests: plain functions that add one object and flush.

A whole world (project, commitments, periods, users...) is built by
``tests.helpers.build_world`` from these.
"""

from __future__ import annotations

import hashlib
import itertools
import os
from datetime import date, timedelta
from decimal import Decimal

from flask import current_app

from portal.accounts.passwords import hash_password
from portal.core.statuses import ChangeOrderStatus, CommitmentStatus, PeriodStatus
from portal.extensions import db
from portal.models import (
    Attachment,
    BillingPeriod,
    ChangeOrder,
    ChangeOrderItem,
    ClientContract,
    ClientSovLine,
    Commitment,
    Contact,
    OutboxMessage,
    Project,
    SovLine,
    User,
    Vendor,
)
from portal.timeutil import utcnow

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
    end: date | None = None,
    status: str = PeriodStatus.OPEN,
) -> BillingPeriod:
    """A period from ``start`` to ``end`` (28 days by default), billed on its
    last day; ``due`` is the contacts' due date."""
    end = end or start + timedelta(days=27)
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


def make_pending_change_order(
    commitment_id: int, sov_line_id: int, amount: str = "100.00"
) -> tuple[ChangeOrder, ChangeOrderItem]:
    """A change order still pending, with one item."""
    co = ChangeOrder(commitment_id=commitment_id, number="CO-P", title="Pending")
    db.session.add(co)
    db.session.flush()
    item = ChangeOrderItem(
        change_order_id=co.id, sov_line_id=sov_line_id, amount=D(amount)
    )
    db.session.add(item)
    db.session.flush()
    return co, item


def make_attachment(
    billing_id: int,
    data: bytes,
    stored_name: str,
    *,
    contact: Contact | None = None,
    user: User | None = None,
    original_name: str = "invoice.pdf",
) -> Attachment:
    """A PDF attachment of a billing, its file written to the upload folder."""
    folder = current_app.config["UPLOAD_FOLDER"]
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, stored_name), "wb") as fh:
        fh.write(data)
    attachment = Attachment(
        billing_id=billing_id,
        uploaded_by_contact_id=contact.id if contact else None,
        uploaded_by_user_id=user.id if user else None,
        original_name=original_name,
        stored_name=stored_name,
        content_type="application/pdf",
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        kind="invoice",
    )
    db.session.add(attachment)
    db.session.flush()
    return attachment


def make_failed_message() -> OutboxMessage:
    """An invitation mail that failed its last attempt."""
    message = OutboxMessage(
        kind="invite",
        recipient="x@example.com",
        subject="Hello",
        body_text="t",
        body_html="h",
        status="failed",
        attempts=8,
    )
    db.session.add(message)
    db.session.flush()
    return message
