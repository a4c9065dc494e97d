"""What the contracts set-up modules share: audited fields and change records."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from portal import audit
from portal.models import (
    User,
)

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


def apply_values(obj: Any, values: dict[str, Any]) -> None:
    for key, value in values.items():
        setattr(obj, key, value)


def record_change(
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
