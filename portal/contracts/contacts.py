"""Set-up of contacts (SPEC §2): rules, audit events; flush, never commit."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import sqlalchemy as sa

from portal import audit
from portal.accounts import tokens
from portal.contracts.common import (
    CONTACT_FIELDS,
    apply_values,
    record_change,
)
from portal.extensions import db
from portal.models import (
    Contact,
    User,
    Vendor,
)
from portal.validation import FieldErrors, InputError, flush_unique


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
    apply_values(contact, asdict(data))
    flush_unique({"email": DUPLICATE_CONTACT})
    if creating:
        audit.record(
            actor,
            "contact.create",
            contact,
            after=audit.snapshot(contact, CONTACT_FIELDS),
        )
    else:
        record_change(actor, "contact.update", contact, before, CONTACT_FIELDS)
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
