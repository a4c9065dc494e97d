"""ERP settings (SPEC §7): accounts, codes per cost code, vendor codes, job numbers.

Plain domain functions: they validate, change rows, write audit events and
flush; the view commits. Field errors come back as :class:`SettingsInvalid`
with the form's field names.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import cast

import sqlalchemy as sa

from portal import audit
from portal.extensions import db
from portal.finance import batches as export_batches
from portal.models import ErpCostCode, ErpSettings, Project, SovLine, User, Vendor
from portal.validation import clean_text


@dataclass
class SettingsInvalid(Exception):
    """Field errors: ``{"ap_account": "…", "vendor-3": "…"}``."""

    errors: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return "Please correct the highlighted fields."


class SettingsForbidden(Exception):
    """The user's role may not change ERP settings."""


#: ErpSettings field → (label, max length).
SETTINGS_FIELDS: dict[str, tuple[str, int]] = {
    "ap_account": ("AP account", 60),
    "retainage_payable_account": ("Retainage payable account", 60),
    "default_expense_account": ("Default expense account", 60),
    "default_sage_category": ("Default Sage category", 20),
    "default_qb_class": ("Default QuickBooks class", 60),
}
#: ErpCostCode field → (label, max length).
COST_CODE_FIELDS: dict[str, tuple[str, int]] = {
    "expense_account": ("Expense account", 60),
    "sage_cost_code": ("Sage cost code", 40),
    "sage_category": ("Sage category", 20),
    "qb_class": ("QuickBooks class", 60),
}
VENDOR_CODE_LIMIT = 40
JOB_NUMBER_LIMIT = 40
CUSTOMER_JOB_LIMIT = 200


def _check_role(user: User) -> None:
    if not user.is_staff or user.role not in export_batches.WRITE_ROLES:
        raise SettingsForbidden("Only finance and admin users can change ERP settings.")


def clean_code(value: str | None, name: str, limit: int, errors: dict[str, str]) -> str:
    """One code or account name: one line, trimmed, at most ``limit`` characters."""
    text = (value or "").strip()
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in text):
        errors[name] = "Use one line of text, without tabs or line breaks."
    elif len(text) > limit:
        errors[name] = f"Use at most {limit} characters."
    return text


def save_settings(user: User, data: Mapping[str, str]) -> bool:
    """Save the AP/retainage/default accounts; True when something changed."""
    _check_role(user)
    errors: dict[str, str] = {}
    values = {
        name: clean_code(data.get(name), name, limit, errors)
        for name, (_, limit) in SETTINGS_FIELDS.items()
    }
    if errors:
        raise SettingsInvalid(errors)
    row = db.session.get(ErpSettings, 1)
    if row is None:
        row = export_batches.erp_settings()
        db.session.add(row)
    before = {name: getattr(row, name) or "" for name in SETTINGS_FIELDS}
    if before == values:
        return False
    for name, value in values.items():
        setattr(row, name, value)
    db.session.flush()
    audit.record(
        user, "erp.settings", row, before=before, after=values, object_type="erp"
    )
    return True


def cost_codes_select() -> sa.Select:
    """Every cost code in use on a SOV line or mapped already, sorted."""
    codes = sa.union(
        sa.select(SovLine.cost_code.label("code")),
        sa.select(ErpCostCode.cost_code.label("code")),
    ).subquery()
    return sa.select(codes.c.code).order_by(codes.c.code)


def save_cost_codes(user: User, rows: Mapping[str, Mapping[str, str]]) -> int:
    """Save the ERP codes of some cost codes; return how many changed."""
    _check_role(user)
    errors: dict[str, str] = {}
    cleaned: dict[str, dict[str, str]] = {}
    for key, (cost_code, values) in enumerate(rows.items()):
        # The key is a hidden field naming an existing cost code: one with a
        # control character (NUL: a 500 on PostgreSQL) names none.
        if not cost_code or len(cost_code) > 40 or clean_text(cost_code) != cost_code:
            raise SettingsInvalid({"form": "Unknown cost code in the form. Reload."})
        cleaned[cost_code] = {
            name: clean_code(values.get(name), f"cc-{key}-{name}", limit, errors)
            for name, (_, limit) in COST_CODE_FIELDS.items()
        }
    if errors:
        raise SettingsInvalid(errors)
    existing = {
        row.cost_code: row
        for row in db.session.scalars(
            sa.select(ErpCostCode).where(ErpCostCode.cost_code.in_(list(cleaned)))
        )
    }
    changed = 0
    for cost_code, values in cleaned.items():
        row = existing.get(cost_code)
        before = {name: getattr(row, name) if row else "" for name in COST_CODE_FIELDS}
        if before == values:
            continue
        if row is None:
            row = ErpCostCode(cost_code=cost_code)
            db.session.add(row)
        for name, value in values.items():
            setattr(row, name, value)
        db.session.flush()
        audit.record(
            user,
            "erp.cost_code",
            row,
            before=before,
            after={"cost_code": cost_code, **values},
            object_type="erp_cost_code",
        )
        changed += 1
    return changed


def fill_sage_cost_codes(user: User) -> int:
    """Use the portal's cost code as the Sage cost code wherever that is blank."""
    _check_role(user)
    codes = [
        code
        for code in db.session.scalars(cost_codes_select())
        if code and len(code) <= 40
    ]
    existing = {
        row.cost_code: row for row in db.session.scalars(sa.select(ErpCostCode))
    }
    changed = 0
    for code in codes:
        row = existing.get(code)
        if row is not None and row.sage_cost_code:
            continue
        if row is None:
            row = ErpCostCode(
                cost_code=code,
                expense_account="",
                sage_category="",
                qb_class="",
            )
            db.session.add(row)
        row.sage_cost_code = code
        changed += 1
    if changed:
        db.session.flush()
        audit.record(
            user,
            "erp.fill_sage_cost_codes",
            None,
            after={"count": changed},
            object_type="erp",
        )
    return changed


def save_vendor_codes(user: User, codes: Mapping[int, str]) -> int:
    """Save vendors' ERP vendor codes (unique); return how many changed."""
    _check_role(user)
    errors: dict[str, str] = {}
    cleaned = {
        vendor_id: clean_code(value, f"vendor-{vendor_id}", VENDOR_CODE_LIMIT, errors)
        for vendor_id, value in codes.items()
    }
    vendors = {
        v.id: v
        for v in db.session.scalars(
            sa.select(Vendor).where(Vendor.id.in_(list(cleaned)))
        )
    }
    if set(cleaned) - set(vendors):
        raise SettingsInvalid({"form": "Unknown vendor in the form. Reload the page."})
    seen: dict[str, int] = {}
    for vendor_id, code in cleaned.items():
        # A refused code (control characters: a NUL is a 500 on PostgreSQL)
        # never reaches the duplicate query.
        if not code or f"vendor-{vendor_id}" in errors:
            continue
        key = code.lower()
        if key in seen:
            errors[f"vendor-{vendor_id}"] = "Two vendors cannot share a vendor code."
        seen[key] = vendor_id
    if seen:
        taken = db.session.execute(
            sa.select(Vendor.id, Vendor.name, Vendor.erp_vendor_code).where(
                sa.func.lower(Vendor.erp_vendor_code).in_(list(seen)),
                Vendor.id.notin_(list(cleaned)),
            )
        ).all()
        # The IN over lower(code) only matches vendors that have a code.
        for _, name, taken_code in taken:
            taken_code = cast(str, taken_code)
            errors[f"vendor-{seen[taken_code.lower()]}"] = (
                f"{name} already has code {taken_code}."
            )
    if errors:
        raise SettingsInvalid(errors)
    changed = 0
    # Clear the codes that move first, so swapping two codes passes the unique key.
    moving = [
        vendors[i]
        for i, code in cleaned.items()
        if (vendors[i].erp_vendor_code or "") != code
    ]
    befores = {v.id: v.erp_vendor_code or "" for v in moving}
    for vendor in moving:
        vendor.erp_vendor_code = None
    db.session.flush()
    for vendor in moving:
        vendor.erp_vendor_code = cleaned[vendor.id] or None
        audit.record(
            user,
            "erp.vendor_code",
            vendor,
            before={"erp_vendor_code": befores[vendor.id]},
            after={"erp_vendor_code": cleaned[vendor.id]},
            object_type="vendor",
        )
        changed += 1
    db.session.flush()
    return changed


def save_project_codes(user: User, rows: Mapping[int, Mapping[str, str]]) -> int:
    """Save projects' ERP job numbers and QuickBooks Customer:Job names."""
    _check_role(user)
    errors: dict[str, str] = {}
    cleaned = {
        project_id: {
            "erp_job_number": clean_code(
                values.get("erp_job_number"),
                f"project-{project_id}-job",
                JOB_NUMBER_LIMIT,
                errors,
            ),
            "qb_customer_job": clean_code(
                values.get("qb_customer_job"),
                f"project-{project_id}-qb",
                CUSTOMER_JOB_LIMIT,
                errors,
            ),
        }
        for project_id, values in rows.items()
    }
    if errors:
        raise SettingsInvalid(errors)
    projects = {
        p.id: p
        for p in db.session.scalars(
            sa.select(Project).where(Project.id.in_(list(cleaned)))
        )
    }
    if set(cleaned) - set(projects):
        raise SettingsInvalid({"form": "Unknown project in the form. Reload the page."})
    changed = 0
    for project_id, values in cleaned.items():
        project = projects[project_id]
        before = {
            "erp_job_number": project.erp_job_number or "",
            "qb_customer_job": project.qb_customer_job or "",
        }
        if before == values:
            continue
        project.erp_job_number = values["erp_job_number"] or None
        project.qb_customer_job = values["qb_customer_job"] or None
        audit.record(
            user,
            "erp.project_codes",
            project,
            before=before,
            after=values,
            object_type="project",
        )
        changed += 1
    db.session.flush()
    return changed
