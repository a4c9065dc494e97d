"""Set-up of projects (SPEC §2): rules, audit events; flush, never commit."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from portal import audit
from portal.contracts.common import (
    PROJECT_FIELDS,
    apply_values,
    record_change,
)
from portal.extensions import db
from portal.models import (
    Billing,
    Commitment,
    Project,
    User,
)
from portal.validation import FieldErrors, flush_unique


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
    apply_values(project, asdict(data))
    flush_unique({"number": "Another project already has this number."})
    if creating:
        audit.record(
            actor,
            "project.create",
            project,
            after=audit.snapshot(project, PROJECT_FIELDS),
        )
    else:
        record_change(actor, "project.update", project, before, PROJECT_FIELDS)
    db.session.flush()
    return project
