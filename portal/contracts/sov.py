"""Set-up of SOV lines (SPEC §2): rules, audit events; flush, never commit."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from decimal import Decimal

import sqlalchemy as sa

from portal import audit
from portal.contracts.common import (
    SOV_FIELDS,
    ZERO,
    apply_values,
    record_change,
)
from portal.contracts.sov_import import ImportRow
from portal.core.statuses import (
    CommitmentStatus,
)
from portal.extensions import db
from portal.models import (
    BillingLine,
    ChangeOrderItem,
    Commitment,
    SovLine,
    User,
)
from portal.validation import FieldErrors, InputError, flush_unique


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
    apply_values(line, asdict(data))
    flush_unique({"line_number": "This line number is already used."})
    record_change(actor, "sov_line.update", line, before, SOV_FIELDS)
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
