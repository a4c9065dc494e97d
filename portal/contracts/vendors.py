"""Set-up of vendors (SPEC §2): rules, audit events; flush, never commit."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import sqlalchemy as sa

from portal import audit
from portal.contracts.common import (
    VENDOR_FIELDS,
    apply_values,
    record_change,
)
from portal.extensions import db
from portal.models import (
    User,
    Vendor,
)
from portal.validation import FieldErrors, flush_unique


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
    apply_values(vendor, asdict(data))
    flush_unique({"name": "Another vendor already has this name or ERP code."})
    if creating:
        audit.record(
            actor, "vendor.create", vendor, after=audit.snapshot(vendor, VENDOR_FIELDS)
        )
    else:
        record_change(actor, "vendor.update", vendor, before, VENDOR_FIELDS)
    db.session.flush()
    return vendor
