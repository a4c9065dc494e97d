"""Set-up of projects, vendors, contacts, commitments, SOV lines, change orders and
client contracts (SPEC §2), with their rules and audit events.

Every function takes parsed values, checks the rules that need the database,
changes rows, writes audit events and flushes; the view commits once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from . import audit, tokens
from .extensions import db
from .models import (
    Billing,
    BillingLine,
    ChangeOrder,
    ChangeOrderItem,
    ClientClaim,
    ClientClaimLine,
    ClientContract,
    ClientSovLine,
    Commitment,
    Contact,
    Invitation,
    Project,
    SovLine,
    User,
    Vendor,
)
from .sov_import import ImportRow
from .statuses import (
    BillingStatus,
    ChangeOrderStatus,
    ClaimStatus,
    CommitmentStatus,
    ContractStatus,
)
from .timeutil import utcnow
from .validation import FieldErrors, InputError, flush_unique

ZERO = Decimal("0.00")

PROJECT_FIELDS = [
    "number",
    "name",
    "currency",
    "address",
    "time_zone",
    "overbilling_allowed",
    "late_submissions_allowed",
    "retainage_release_allowed",
    "default_work_retainage_pct",
    "default_materials_retainage_pct",
    "terminology",
    "erp_job_number",
    "qb_customer_job",
]
VENDOR_FIELDS = ["name", "address", "erp_vendor_code"]
CONTACT_FIELDS = ["name", "email", "phone", "active"]
COMMITMENT_FIELDS = [
    "vendor_id",
    "kind",
    "number",
    "title",
    "status",
    "work_retainage_pct",
    "materials_retainage_pct",
]
SOV_FIELDS = ["line_number", "cost_code", "description", "original_value"]
CONTRACT_FIELDS = [
    "number",
    "title",
    "client_name",
    "status",
    "work_retainage_pct",
    "materials_retainage_pct",
    "markup_pct",
]
CLIENT_LINE_FIELDS = ["line_number", "cost_code", "description", "scheduled_value"]


def _apply(obj: Any, values: dict[str, Any]) -> None:
    for key, value in values.items():
        setattr(obj, key, value)


def _record_change(
    actor: User, action: str, obj: Any, before: dict[str, Any], fields: list[str]
) -> None:
    after = audit.snapshot(obj, fields)
    changed = {k for k in fields if before.get(k) != after.get(k)}
    if changed:
        audit.record(
            actor,
            action,
            obj,
            before={k: before[k] for k in sorted(changed)},
            after={k: after[k] for k in sorted(changed)},
        )


# ------------------------------------------------------------------ projects


@dataclass
class ProjectInput:
    """A project form, parsed."""

    number: str
    name: str
    currency: str
    address: str
    time_zone: str
    overbilling_allowed: bool
    late_submissions_allowed: bool
    retainage_release_allowed: bool
    default_work_retainage_pct: Decimal
    default_materials_retainage_pct: Decimal
    terminology: str | None
    erp_job_number: str | None
    qb_customer_job: str | None


def save_project(actor: User, project: Project | None, data: ProjectInput) -> Project:
    """Create a project or change its settings (every change audited)."""
    taken = db.session.scalar(
        sa.select(Project.id).where(
            sa.func.lower(Project.number) == data.number.lower()
        )
    )
    if taken and (project is None or taken != project.id):
        raise FieldErrors({"number": "Another project already has this number."})
    if project is not None and data.currency != project.currency:
        has_billings = db.session.scalar(
            sa.select(sa.func.count(Billing.id))
            .join(Commitment, Commitment.id == Billing.commitment_id)
            .where(Commitment.project_id == project.id)
        )
        if has_billings:
            raise FieldErrors(
                {"currency": "The currency can't change once billings exist."}
            )
    creating = project is None
    if project is None:
        project = Project()
        db.session.add(project)
        before: dict[str, Any] = {}
    else:
        before = audit.snapshot(project, PROJECT_FIELDS)
    _apply(project, asdict(data))
    flush_unique({"number": "Another project already has this number."})
    if creating:
        audit.record(
            actor,
            "project.create",
            project,
            after=audit.snapshot(project, PROJECT_FIELDS),
        )
    else:
        _record_change(actor, "project.update", project, before, PROJECT_FIELDS)
    db.session.flush()
    return project


# ------------------------------------------------------------------- vendors


@dataclass
class VendorInput:
    """A vendor form, parsed."""

    name: str
    address: str
    erp_vendor_code: str | None


def save_vendor(actor: User, vendor: Vendor | None, data: VendorInput) -> Vendor:
    """Create or change a vendor (name and ERP code unique)."""
    errors: dict[str, str] = {}
    same_name = db.session.scalar(
        sa.select(Vendor.id).where(sa.func.lower(Vendor.name) == data.name.lower())
    )
    if same_name and (vendor is None or same_name != vendor.id):
        errors["name"] = "Another vendor already has this name."
    if data.erp_vendor_code:
        same_code = db.session.scalar(
            sa.select(Vendor.id).where(Vendor.erp_vendor_code == data.erp_vendor_code)
        )
        if same_code and (vendor is None or same_code != vendor.id):
            errors["erp_vendor_code"] = "Another vendor already has this ERP code."
    if errors:
        raise FieldErrors(errors)
    creating = vendor is None
    if vendor is None:
        vendor = Vendor()
        db.session.add(vendor)
        before: dict[str, Any] = {}
    else:
        before = audit.snapshot(vendor, VENDOR_FIELDS)
    _apply(vendor, asdict(data))
    flush_unique({"name": "Another vendor already has this name or ERP code."})
    if creating:
        audit.record(
            actor, "vendor.create", vendor, after=audit.snapshot(vendor, VENDOR_FIELDS)
        )
    else:
        _record_change(actor, "vendor.update", vendor, before, VENDOR_FIELDS)
    db.session.flush()
    return vendor


# ------------------------------------------------------------------ contacts


@dataclass
class ContactInput:
    """A contact form, parsed."""

    name: str
    email: str
    phone: str


DUPLICATE_CONTACT = "This vendor already has a contact with this email address."


def save_contact(
    actor: User, vendor: Vendor, contact: Contact | None, data: ContactInput
) -> Contact:
    """Create or change a contact; email unique per vendor, case-insensitively.

    A changed email address revokes the contact's links: mail sent to the old
    address must not keep working.
    """
    same = db.session.scalar(
        sa.select(Contact.id).where(
            Contact.vendor_id == vendor.id,
            sa.func.lower(Contact.email) == data.email.lower(),
        )
    )
    if same and (contact is None or same != contact.id):
        raise FieldErrors({"email": DUPLICATE_CONTACT})
    creating = contact is None
    if contact is None:
        contact = Contact(vendor_id=vendor.id, active=True)
        db.session.add(contact)
        before: dict[str, Any] = {}
    else:
        if contact.vendor_id != vendor.id:
            raise InputError("That contact belongs to another vendor.")
        before = audit.snapshot(contact, CONTACT_FIELDS)
    email_changed = not creating and contact.email.lower() != data.email.lower()
    _apply(contact, asdict(data))
    flush_unique({"email": DUPLICATE_CONTACT})
    if creating:
        audit.record(
            actor,
            "contact.create",
            contact,
            after=audit.snapshot(contact, CONTACT_FIELDS),
        )
    else:
        _record_change(actor, "contact.update", contact, before, CONTACT_FIELDS)
        if email_changed:
            revoke_links(actor, contact)
    db.session.flush()
    return contact


def revoke_links(actor: User, contact: Contact) -> None:
    """End every link and session of the contact at once (SPEC §6)."""
    before = contact.token_version
    tokens.revoke_contact_links(contact)
    audit.record(
        actor,
        "contact.revoke_links",
        contact,
        before={"token_version": before},
        after={"token_version": contact.token_version},
    )
    db.session.flush()


def set_contact_active(actor: User, contact: Contact, active: bool) -> None:
    """Deactivate (ending every link and session) or reactivate a contact."""
    if contact.active == active:
        return
    contact.active = active
    audit.record(
        actor,
        "contact.activate" if active else "contact.deactivate",
        contact,
        before={"active": not active},
        after={"active": active},
    )
    db.session.flush()
    if not active:
        revoke_links(actor, contact)


# --------------------------------------------------------------- commitments


@dataclass
class CommitmentInput:
    """A commitment form, parsed."""

    vendor_id: int
    kind: str
    number: str
    title: str
    work_retainage_pct: Decimal
    materials_retainage_pct: Decimal


def live_billing_count(commitment: Commitment) -> int:
    """How many non-void billings the commitment has."""
    return (
        db.session.scalar(
            sa.select(sa.func.count(Billing.id)).where(
                Billing.commitment_id == commitment.id,
                Billing.status != BillingStatus.VOID,
            )
        )
        or 0
    )


def save_commitment(
    actor: User, project: Project, commitment: Commitment | None, data: CommitmentInput
) -> Commitment:
    """Create a (draft) commitment or change its header."""
    errors: dict[str, str] = {}
    if db.session.get(Vendor, data.vendor_id) is None:
        errors["vendor_id"] = "Choose a vendor."
    taken = db.session.scalar(
        sa.select(Commitment.id).where(
            Commitment.project_id == project.id,
            sa.func.lower(Commitment.number) == data.number.lower(),
        )
    )
    if taken and (commitment is None or taken != commitment.id):
        errors["number"] = "This project already has a commitment with this number."
    if commitment is not None and live_billing_count(commitment):
        locked = "This can't change once the commitment has billings."
        if data.vendor_id != commitment.vendor_id:
            errors["vendor_id"] = locked
        if data.work_retainage_pct != commitment.work_retainage_pct:
            errors["work_retainage_pct"] = locked
        if data.materials_retainage_pct != commitment.materials_retainage_pct:
            errors["materials_retainage_pct"] = locked
    if errors:
        raise FieldErrors(errors)
    creating = commitment is None
    if commitment is None:
        commitment = Commitment(project_id=project.id, status=CommitmentStatus.DRAFT)
        db.session.add(commitment)
        before: dict[str, Any] = {}
    else:
        before = audit.snapshot(commitment, COMMITMENT_FIELDS)
        if data.vendor_id != commitment.vendor_id and commitment.contacts:
            raise FieldErrors(
                {"vendor_id": "Remove the billing contacts before changing the vendor."}
            )
    _apply(commitment, asdict(data))
    flush_unique({"number": "This project already has a commitment with this number."})
    if creating:
        audit.record(
            actor,
            "commitment.create",
            commitment,
            after=audit.snapshot(commitment, COMMITMENT_FIELDS),
        )
    else:
        _record_change(
            actor, "commitment.update", commitment, before, COMMITMENT_FIELDS
        )
    db.session.flush()
    return commitment


#: Commitment status moves: (from, to).
COMMITMENT_MOVES = {
    (CommitmentStatus.DRAFT, CommitmentStatus.APPROVED),
    (CommitmentStatus.DRAFT, CommitmentStatus.VOID),
    (CommitmentStatus.APPROVED, CommitmentStatus.DRAFT),
    (CommitmentStatus.APPROVED, CommitmentStatus.VOID),
}


def set_commitment_status(actor: User, commitment: Commitment, status: str) -> None:
    """Approve, return to draft or void a commitment."""
    current = commitment.status
    if (current, status) not in COMMITMENT_MOVES:
        raise InputError(
            f"A {current} commitment cannot become {status.replace('_', ' ')}."
        )
    if status == CommitmentStatus.APPROVED and not commitment.sov_lines:
        raise InputError("Add at least one SOV line before approving.")
    if current == CommitmentStatus.APPROVED and live_billing_count(commitment):
        raise InputError(
            "This commitment has billings: void them first, or keep it approved."
        )
    commitment.status = status
    audit.record(
        actor,
        "commitment.status",
        commitment,
        before={"status": current},
        after={"status": status},
    )
    db.session.flush()


def add_commitment_contact(
    actor: User, commitment: Commitment, contact: Contact
) -> None:
    """Make a contact of the commitment's vendor a billing contact on it."""
    if contact.vendor_id != commitment.vendor_id:
        raise InputError("Only contacts of the commitment's vendor can be added.")
    if not contact.active:
        raise InputError("That contact is inactive: reactivate it first.")
    if any(c.id == contact.id for c in commitment.contacts):
        raise InputError(f"{contact.name} is already a billing contact here.")
    commitment.contacts.append(contact)
    audit.record(
        actor,
        "commitment.contact_add",
        commitment,
        after={"contact_id": contact.id, "email": contact.email},
    )
    db.session.flush()


def remove_commitment_contact(
    actor: User, commitment: Commitment, contact: Contact
) -> None:
    """Remove a billing contact: its links, sessions and invitations here end."""
    if not any(c.id == contact.id for c in commitment.contacts):
        raise InputError(f"{contact.name} is not a billing contact here.")
    commitment.contacts.remove(contact)
    now = utcnow()
    db.session.execute(
        sa.update(Invitation)
        .where(
            Invitation.commitment_id == commitment.id,
            Invitation.contact_id == contact.id,
            Invitation.revoked_at.is_(None),
        )
        .values(revoked_at=now)
        .execution_options(synchronize_session=False)
    )
    audit.record(
        actor,
        "commitment.contact_remove",
        commitment,
        before={"contact_id": contact.id, "email": contact.email},
    )
    db.session.flush()
    revoke_links(actor, contact)


# ------------------------------------------------------------------ SOV lines


@dataclass
class SovLineInput:
    """A SOV line form, parsed."""

    line_number: int
    cost_code: str
    description: str
    original_value: Decimal


def _require_draft(commitment: Commitment) -> None:
    if commitment.status != CommitmentStatus.DRAFT:
        raise InputError(
            "The schedule of values can only change while the commitment is a draft; "
            "use a change order on an approved commitment."
        )


def _line_number_taken(
    commitment: Commitment, number: int, line_id: int | None
) -> bool:
    taken = db.session.scalar(
        sa.select(SovLine.id).where(
            SovLine.commitment_id == commitment.id, SovLine.line_number == number
        )
    )
    return bool(taken) and taken != line_id


def next_line_number(commitment: Commitment) -> int:
    """The number after the commitment's highest SOV line."""
    top = db.session.scalar(
        sa.select(sa.func.max(SovLine.line_number)).where(
            SovLine.commitment_id == commitment.id
        )
    )
    return (top or 0) + 1


def add_sov_line(actor: User, commitment: Commitment, data: SovLineInput) -> SovLine:
    """Add a SOV line to a draft commitment."""
    _require_draft(commitment)
    if _line_number_taken(commitment, data.line_number, None):
        raise FieldErrors({"line_number": "This line number is already used."})
    line = SovLine(commitment_id=commitment.id, **asdict(data))
    db.session.add(line)
    flush_unique({"line_number": "This line number is already used."})
    audit.record(actor, "sov_line.create", line, after=audit.snapshot(line, SOV_FIELDS))
    db.session.flush()
    return line


def _line_in_use(line: SovLine) -> bool:
    used = db.session.scalar(
        sa.select(sa.func.count(BillingLine.id)).where(
            BillingLine.sov_line_id == line.id
        )
    )
    items = db.session.scalar(
        sa.select(sa.func.count(ChangeOrderItem.id)).where(
            ChangeOrderItem.sov_line_id == line.id
        )
    )
    return bool(used or items)


def update_sov_line(actor: User, line: SovLine, data: SovLineInput) -> None:
    """Change a SOV line: everything while draft, only the description after."""
    commitment = line.commitment
    if commitment.status != CommitmentStatus.DRAFT:
        if (data.line_number, data.cost_code, data.original_value) != (
            line.line_number,
            line.cost_code,
            line.original_value,
        ):
            raise InputError(
                "Only the description can change on an approved commitment; "
                "use a change order for amounts."
            )
    if _line_number_taken(commitment, data.line_number, line.id):
        raise FieldErrors({"line_number": "This line number is already used."})
    before = audit.snapshot(line, SOV_FIELDS)
    _apply(line, asdict(data))
    flush_unique({"line_number": "This line number is already used."})
    _record_change(actor, "sov_line.update", line, before, SOV_FIELDS)
    db.session.flush()


def delete_sov_line(actor: User, line: SovLine) -> None:
    """Delete a SOV line of a draft commitment that nothing refers to."""
    _require_draft(line.commitment)
    if _line_in_use(line):
        raise InputError("This line is used by billings or change orders.")
    audit.record(
        actor, "sov_line.delete", line, before=audit.snapshot(line, SOV_FIELDS)
    )
    db.session.delete(line)
    db.session.flush()


def import_sov_lines(
    actor: User, commitment: Commitment, rows: Sequence[ImportRow]
) -> int:
    """Add parsed CSV rows as SOV lines of a draft commitment (all or nothing)."""
    _require_draft(commitment)
    for row in rows:
        db.session.add(
            SovLine(
                commitment_id=commitment.id,
                line_number=row.line_number,
                cost_code=row.cost_code,
                description=row.description,
                original_value=row.scheduled_value,
            )
        )
    flush_unique({"file": "Some line numbers are already used. Nothing was imported."})
    audit.record(
        actor,
        "sov_line.import",
        commitment,
        after={
            "lines": len(rows),
            "total": sum((r.scheduled_value for r in rows), ZERO),
        },
    )
    db.session.flush()
    return len(rows)


# ------------------------------------------------------------- change orders


def create_change_order(
    actor: User, commitment: Commitment, number: str, title: str
) -> ChangeOrder:
    """Start a pending change order on the commitment."""
    if commitment.status == CommitmentStatus.VOID:
        raise InputError("This commitment is void.")
    taken = db.session.scalar(
        sa.select(ChangeOrder.id).where(
            ChangeOrder.commitment_id == commitment.id,
            sa.func.lower(ChangeOrder.number) == number.lower(),
        )
    )
    if taken:
        raise FieldErrors({"number": "This commitment already has this change order."})
    co = ChangeOrder(
        commitment_id=commitment.id,
        number=number,
        title=title,
        status=ChangeOrderStatus.PENDING,
    )
    db.session.add(co)
    flush_unique({"number": "This commitment already has this change order."})
    audit.record(
        actor, "change_order.create", co, after={"number": number, "title": title}
    )
    db.session.flush()
    return co


def _require_pending(co: ChangeOrder) -> None:
    if co.status != ChangeOrderStatus.PENDING:
        raise InputError(f"This change order is {co.status} and can no longer change.")


def add_change_order_item(
    actor: User,
    co: ChangeOrder,
    amount: Decimal,
    sov_line_id: int | None = None,
    new_line: tuple[str, str] | None = None,
) -> ChangeOrderItem:
    """Add an amount to an existing SOV line, or a new line ``(cost code, description)``."""
    _require_pending(co)
    if amount == 0:
        raise FieldErrors({"amount": "Enter an amount other than zero."})
    commitment = co.commitment
    if new_line is not None:
        if amount < 0:
            raise FieldErrors({"amount": "A new line needs a positive amount."})
        line = SovLine(
            commitment_id=commitment.id,
            line_number=next_line_number(commitment),
            cost_code=new_line[0],
            description=new_line[1],
            original_value=ZERO,
            change_order_id=co.id,
        )
        db.session.add(line)
        db.session.flush()
    else:
        line = db.session.get(SovLine, sov_line_id) if sov_line_id else None
        if line is None or line.commitment_id != commitment.id:
            raise FieldErrors({"sov_line_id": "Choose a line of this commitment."})
    item = ChangeOrderItem(change_order_id=co.id, sov_line_id=line.id, amount=amount)
    db.session.add(item)
    db.session.flush()
    audit.record(
        actor,
        "change_order.item_add",
        co,
        after={
            "item_id": item.id,
            "sov_line_id": line.id,
            "new_line": new_line is not None,
            "amount": amount,
        },
    )
    return item


def remove_change_order_item(actor: User, item: ChangeOrderItem) -> None:
    """Remove an item of a pending change order (and the line it added)."""
    co = item.change_order
    _require_pending(co)
    line = item.sov_line
    audit.record(
        actor,
        "change_order.item_remove",
        co,
        before={"item_id": item.id, "sov_line_id": line.id, "amount": item.amount},
    )
    db.session.delete(item)
    db.session.flush()
    if line.change_order_id == co.id:
        others = db.session.scalar(
            sa.select(sa.func.count(ChangeOrderItem.id)).where(
                ChangeOrderItem.sov_line_id == line.id
            )
        )
        in_billing = db.session.scalar(
            sa.select(sa.func.count(BillingLine.id)).where(
                BillingLine.sov_line_id == line.id
            )
        )
        if not others and not in_billing:
            db.session.delete(line)
    db.session.flush()


def approve_change_order(actor: User, co: ChangeOrder) -> None:
    """Approve a pending change order: its amounts now count (SPEC §2)."""
    _require_pending(co)
    if not co.items:
        raise InputError("Add at least one change before approving.")
    if co.commitment.status == CommitmentStatus.VOID:
        raise InputError("This commitment is void.")
    # The scheduled value of no line may go below zero.
    for item in co.items:
        if item.amount < 0:
            current = item.sov_line.original_value + _approved_changes(item.sov_line_id)
            if current + item.amount < 0:
                raise InputError(
                    f"Line {item.sov_line.line_number} would get a negative "
                    "scheduled value."
                )
    co.status = ChangeOrderStatus.APPROVED
    co.approved_at = utcnow()
    co.approved_by_id = actor.id
    total = sum((i.amount for i in co.items), ZERO)
    audit.record(
        actor,
        "change_order.approve",
        co,
        before={"status": ChangeOrderStatus.PENDING},
        after={"status": ChangeOrderStatus.APPROVED, "amount": total},
    )
    db.session.flush()


def _approved_changes(sov_line_id: int) -> Decimal:
    from .figures import _cents

    raw = db.session.scalar(
        sa.select(sa.func.sum(ChangeOrderItem.amount))
        .join(ChangeOrder, ChangeOrder.id == ChangeOrderItem.change_order_id)
        .where(
            ChangeOrderItem.sov_line_id == sov_line_id,
            ChangeOrder.status == ChangeOrderStatus.APPROVED,
        )
    )
    return _cents(raw)


def void_change_order(actor: User, co: ChangeOrder) -> None:
    """Void a pending change order (approved ones are history and stay)."""
    _require_pending(co)
    co.status = ChangeOrderStatus.VOID
    audit.record(
        actor,
        "change_order.void",
        co,
        before={"status": ChangeOrderStatus.PENDING},
        after={"status": ChangeOrderStatus.VOID},
    )
    db.session.flush()


# ---------------------------------------------------------- client contracts


@dataclass
class ClientContractInput:
    """A client (head) contract form, parsed."""

    number: str
    title: str
    client_name: str
    work_retainage_pct: Decimal
    materials_retainage_pct: Decimal
    markup_pct: Decimal


def _claims_of(contract: ClientContract) -> int:
    return (
        db.session.scalar(
            sa.select(sa.func.count(ClientClaim.id)).where(
                ClientClaim.client_contract_id == contract.id,
                ClientClaim.status != ClaimStatus.VOID,
            )
        )
        or 0
    )


def save_client_contract(
    actor: User,
    project: Project,
    contract: ClientContract | None,
    data: ClientContractInput,
) -> ClientContract:
    """Create a (draft) client contract or change its header."""
    taken = db.session.scalar(
        sa.select(ClientContract.id).where(
            ClientContract.project_id == project.id,
            sa.func.lower(ClientContract.number) == data.number.lower(),
        )
    )
    if taken and (contract is None or taken != contract.id):
        raise FieldErrors(
            {"number": "This project already has a contract with this number."}
        )
    creating = contract is None
    if contract is None:
        contract = ClientContract(project_id=project.id, status=ContractStatus.DRAFT)
        db.session.add(contract)
        before: dict[str, Any] = {}
    else:
        if _claims_of(contract) and (
            data.work_retainage_pct != contract.work_retainage_pct
            or data.materials_retainage_pct != contract.materials_retainage_pct
            or data.markup_pct != contract.markup_pct
        ):
            raise InputError(
                "Retainage and markup can't change once claims exist on this contract."
            )
        before = audit.snapshot(contract, CONTRACT_FIELDS)
    _apply(contract, asdict(data))
    flush_unique({"number": "This project already has a contract with this number."})
    if creating:
        audit.record(
            actor,
            "client_contract.create",
            contract,
            after=audit.snapshot(contract, CONTRACT_FIELDS),
        )
    else:
        _record_change(
            actor, "client_contract.update", contract, before, CONTRACT_FIELDS
        )
    db.session.flush()
    return contract


def set_client_contract_status(
    actor: User, contract: ClientContract, status: str
) -> None:
    """Approve a draft client contract, or return it to draft (no claims yet)."""
    current = contract.status
    if current == status or status not in {s.value for s in ContractStatus}:
        raise InputError(f"The contract is already {current}.")
    if status == ContractStatus.APPROVED and not contract.lines:
        raise InputError("Add at least one SOV line before approving.")
    if status == ContractStatus.DRAFT and _claims_of(contract):
        raise InputError("This contract has claims and stays approved.")
    contract.status = status
    audit.record(
        actor,
        "client_contract.status",
        contract,
        before={"status": current},
        after={"status": status},
    )
    db.session.flush()


@dataclass
class ClientLineInput:
    """A client-contract SOV line form, parsed."""

    line_number: int
    cost_code: str
    description: str
    scheduled_value: Decimal


def _client_line_conflicts(
    contract: ClientContract, data: ClientLineInput, line_id: int | None
) -> dict[str, str]:
    errors: dict[str, str] = {}
    for other in contract.lines:
        if other.id == line_id:
            continue
        if other.line_number == data.line_number:
            errors["line_number"] = "This line number is already used."
        if other.cost_code.lower() == data.cost_code.lower():
            errors["cost_code"] = "Another line already has this cost code."
    return errors


def _require_contract_draft(contract: ClientContract) -> None:
    if contract.status != ContractStatus.DRAFT:
        raise InputError(
            "The contract's SOV can only change while it is a draft: return it to "
            "draft first."
        )


def add_client_line(
    actor: User, contract: ClientContract, data: ClientLineInput
) -> ClientSovLine:
    """Add a SOV line to a draft client contract."""
    _require_contract_draft(contract)
    errors = _client_line_conflicts(contract, data, None)
    if errors:
        raise FieldErrors(errors)
    line = ClientSovLine(client_contract_id=contract.id, **asdict(data))
    db.session.add(line)
    flush_unique({"line_number": "This line number or cost code is already used."})
    audit.record(
        actor,
        "client_sov_line.create",
        line,
        after=audit.snapshot(line, CLIENT_LINE_FIELDS),
    )
    db.session.flush()
    return line


def update_client_line(actor: User, line: ClientSovLine, data: ClientLineInput) -> None:
    """Change a client-contract SOV line (amounts only while draft)."""
    contract = line.contract
    if contract.status != ContractStatus.DRAFT and (
        data.line_number,
        data.cost_code,
        data.scheduled_value,
    ) != (line.line_number, line.cost_code, line.scheduled_value):
        raise InputError("Only the description can change on an approved contract.")
    errors = _client_line_conflicts(contract, data, line.id)
    if errors:
        raise FieldErrors(errors)
    before = audit.snapshot(line, CLIENT_LINE_FIELDS)
    _apply(line, asdict(data))
    flush_unique({"line_number": "This line number or cost code is already used."})
    _record_change(actor, "client_sov_line.update", line, before, CLIENT_LINE_FIELDS)
    db.session.flush()


def delete_client_line(actor: User, line: ClientSovLine) -> None:
    """Delete a line of a draft client contract that no claim uses."""
    _require_contract_draft(line.contract)
    used = db.session.scalar(
        sa.select(sa.func.count(ClientClaimLine.id)).where(
            ClientClaimLine.client_sov_line_id == line.id
        )
    )
    if used:
        raise InputError("This line is used by client claims.")
    audit.record(
        actor,
        "client_sov_line.delete",
        line,
        before=audit.snapshot(line, CLIENT_LINE_FIELDS),
    )
    db.session.delete(line)
    db.session.flush()


def import_client_lines(
    actor: User, contract: ClientContract, rows: Sequence[ImportRow]
) -> int:
    """Add parsed CSV rows as lines of a draft client contract (all or nothing)."""
    _require_contract_draft(contract)
    for row in rows:
        db.session.add(
            ClientSovLine(
                client_contract_id=contract.id,
                line_number=row.line_number,
                cost_code=row.cost_code,
                description=row.description,
                scheduled_value=row.scheduled_value,
            )
        )
    flush_unique(
        {
            "file": "Some line numbers or cost codes are already used. Nothing was imported."
        }
    )
    audit.record(
        actor,
        "client_sov_line.import",
        contract,
        after={
            "lines": len(rows),
            "total": sum((r.scheduled_value for r in rows), ZERO),
        },
    )
    db.session.flush()
    return len(rows)
