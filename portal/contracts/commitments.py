"""Set-up of commitments (SPEC §2): rules, audit events; flush, never commit."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from portal import audit
from portal.contracts.common import (
    COMMITMENT_FIELDS,
    apply_values,
    record_change,
)
from portal.contracts.contacts import revoke_links
from portal.core.statuses import (
    BillingStatus,
    CommitmentStatus,
)
from portal.extensions import db
from portal.models import (
    Billing,
    Commitment,
    Contact,
    Invitation,
    Project,
    User,
    Vendor,
)
from portal.timeutil import utcnow
from portal.validation import FieldErrors, InputError, flush_unique


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
    apply_values(commitment, asdict(data))
    flush_unique({"number": "This project already has a commitment with this number."})
    if creating:
        audit.record(
            actor,
            "commitment.create",
            commitment,
            after=audit.snapshot(commitment, COMMITMENT_FIELDS),
        )
    else:
        record_change(actor, "commitment.update", commitment, before, COMMITMENT_FIELDS)
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
