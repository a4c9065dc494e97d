"""The review queue (issue 15): billings waiting for a decision, across projects.

A billing waits for a decision while it is under review (submitted or
resubmitted) or held for the owner's approval: those are the statuses from
which :data:`billings.TRANSITIONS` allows ``approve``. The queue is sorted by the
period's due date, then the time the billing was (last) submitted, then id, so
its order is total and stable. Filters come from the URL (:meth:`QueueFilters.
from_args`) and go back into it (:meth:`QueueFilters.args`), so the review page
can carry the queue and land on the next billing after a decision.

Every function runs a fixed number of statements, however long the queue is.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode

import sqlalchemy as sa
from sqlalchemy.orm import joinedload

from portal.core.statuses import AttachmentKind, BillingStatus, LineStatus
from portal.extensions import db
from portal.models import Attachment, Billing, BillingLine, BillingPeriod, Commitment
from portal.validation import parse_id

#: The statuses waiting for a decision, in the order the status filter offers them.
QUEUE_STATUSES: tuple[str, ...] = (
    BillingStatus.UNDER_REVIEW.value,
    BillingStatus.PENDING_OWNER_APPROVAL.value,
)
#: The "attachments missing" filter: which kinds must be present.
MISSING_CHOICES: dict[str, tuple[str, ...]] = {
    "any": (AttachmentKind.INVOICE.value, AttachmentKind.LIEN_WAIVER.value),
    "invoice": (AttachmentKind.INVOICE.value,),
    "lien_waiver": (AttachmentKind.LIEN_WAIVER.value,),
}
#: The kinds a billing should carry (a missing one is flagged on the queue).
EXPECTED_KINDS: tuple[str, ...] = MISSING_CHOICES["any"]


@dataclass(frozen=True)
class QueueFilters:
    """The queue's filters, as the URL carries them."""

    project_id: int | None = None
    period_id: int | None = None
    vendor_id: int | None = None
    status: str = ""
    differences: bool = False
    missing: str = ""

    @classmethod
    def from_args(cls, args: Mapping[str, str]) -> QueueFilters:
        """Read the filters from query arguments; odd values are ignored."""
        status = (args.get("status") or "").strip()
        missing = (args.get("missing") or "").strip()
        return cls(
            project_id=parse_id(args.get("project_id") or ""),
            period_id=parse_id(args.get("period_id") or ""),
            vendor_id=parse_id(args.get("vendor_id") or ""),
            status=status if status in QUEUE_STATUSES else "",
            differences=(args.get("differences") or "") == "1",
            missing=missing if missing in MISSING_CHOICES else "",
        )

    @classmethod
    def from_query_string(cls, text: str) -> QueueFilters:
        """Read the filters from an urlencoded string (the review page's ``queue``)."""
        return cls.from_args(dict(parse_qsl(text or "", keep_blank_values=False)))

    def args(self) -> dict[str, str]:
        """The filters that are set, as query arguments."""
        out: dict[str, str] = {}
        for name in ("project_id", "period_id", "vendor_id"):
            value = getattr(self, name)
            if value:
                out[name] = str(value)
        if self.status:
            out["status"] = self.status
        if self.differences:
            out["differences"] = "1"
        if self.missing:
            out["missing"] = self.missing
        return out

    def query_string(self) -> str:
        """The filters urlencoded ("" when none is set)."""
        return urlencode(self.args())


def _has_difference() -> sa.ColumnElement[bool]:
    """A line of the billing whose approved amounts differ from its claim."""
    return sa.exists().where(
        BillingLine.billing_id == Billing.id,
        sa.or_(
            BillingLine.approved_work != BillingLine.claimed_work,
            BillingLine.approved_materials != BillingLine.claimed_materials,
            BillingLine.approved_installed != BillingLine.claimed_installed,
        ),
    )


def _has_kind(kind: str) -> sa.ColumnElement[bool]:
    return sa.exists().where(
        Attachment.billing_id == Billing.id, Attachment.kind == kind
    )


def _where(stmt: sa.Select, filters: QueueFilters) -> sa.Select:
    statuses = [filters.status] if filters.status else list(QUEUE_STATUSES)
    stmt = stmt.where(Billing.status.in_(statuses))
    if filters.project_id:
        stmt = stmt.where(Commitment.project_id == filters.project_id)
    if filters.period_id:
        stmt = stmt.where(Billing.period_id == filters.period_id)
    if filters.vendor_id:
        stmt = stmt.where(Commitment.vendor_id == filters.vendor_id)
    if filters.differences:
        stmt = stmt.where(_has_difference())
    if filters.missing:
        kinds = MISSING_CHOICES[filters.missing]
        stmt = stmt.where(sa.or_(*(~_has_kind(kind) for kind in kinds)))
    return stmt


#: The queue's order: due date, then submitted time, then id (total and stable).
ORDER = (BillingPeriod.due_date, Billing.submitted_at, Billing.id)


def _base(*columns: Any) -> sa.Select:
    return (
        sa.select(*columns)
        .join(Commitment, Commitment.id == Billing.commitment_id)
        .join(BillingPeriod, BillingPeriod.id == Billing.period_id)
    )


def statement(filters: QueueFilters) -> sa.Select:
    """The queue's billings (with what a row shows loaded), in queue order."""
    return _where(
        _base(Billing).options(
            joinedload(Billing.commitment).joinedload(Commitment.vendor),
            joinedload(Billing.commitment).joinedload(Commitment.project),
            joinedload(Billing.period),
        ),
        filters,
    ).order_by(*ORDER)


@dataclass(frozen=True)
class RowFlags:
    """What a queue row flags beside the billing."""

    differences: bool
    missing: tuple[str, ...]  # attachment kinds missing, of EXPECTED_KINDS
    revise_lines: int  # lines marked revise (bulk approval skips the billing)


def row_flags(billing_ids: list[int]) -> dict[int, RowFlags]:
    """Differences, missing attachments and revise lines per billing (two queries)."""
    if not billing_ids:
        return {}
    differs = sa.case(
        (
            sa.or_(
                BillingLine.approved_work != BillingLine.claimed_work,
                BillingLine.approved_materials != BillingLine.claimed_materials,
                BillingLine.approved_installed != BillingLine.claimed_installed,
            ),
            1,
        ),
        else_=0,
    )
    revise = sa.case((BillingLine.status == LineStatus.REVISE, 1), else_=0)
    lines = {
        bid: (int(d or 0), int(r or 0))
        for bid, d, r in db.session.execute(
            sa.select(BillingLine.billing_id, sa.func.sum(differs), sa.func.sum(revise))
            .where(BillingLine.billing_id.in_(billing_ids))
            .group_by(BillingLine.billing_id)
        )
    }
    kinds: dict[int, set[str]] = defaultdict(set)
    for bid, kind in db.session.execute(
        sa.select(Attachment.billing_id, Attachment.kind)
        .where(Attachment.billing_id.in_(billing_ids))
        .distinct()
    ):
        kinds[bid].add(kind)
    return {
        bid: RowFlags(
            differences=lines.get(bid, (0, 0))[0] > 0,
            missing=tuple(k for k in EXPECTED_KINDS if k not in kinds[bid]),
            revise_lines=lines.get(bid, (0, 0))[1],
        )
        for bid in billing_ids
    }


@dataclass(frozen=True)
class Position:
    """Where one billing stands in a queue: "3 of 17", with its neighbours."""

    index: int  # 1-based
    total: int
    previous_id: int | None
    next_id: int | None


def position(filters: QueueFilters, billing_id: int) -> Position | None:
    """The billing's place in the queue, or None when it is not in it (one query)."""
    order = [c.asc() for c in ORDER]
    inner = _where(
        _base(
            Billing.id.label("id"),
            sa.func.row_number().over(order_by=order).label("n"),
            sa.func.count().over().label("total"),
            sa.func.lag(Billing.id).over(order_by=order).label("prev"),
            sa.func.lead(Billing.id).over(order_by=order).label("next"),
        ),
        filters,
    ).subquery()
    row = db.session.execute(
        sa.select(inner.c.n, inner.c.total, inner.c.prev, inner.c.next).where(
            inner.c.id == billing_id
        )
    ).first()
    if row is None:
        return None
    return Position(int(row.n), int(row.total), row.prev, row.next)


def first_id(filters: QueueFilters, exclude: int | None = None) -> int | None:
    """The first billing of the queue (other than ``exclude``), or None."""
    stmt = _where(_base(Billing.id), filters).order_by(*ORDER).limit(1)
    if exclude is not None:
        stmt = stmt.where(Billing.id != exclude)
    return db.session.scalar(stmt)


def count(filters: QueueFilters) -> int:
    """How many billings the queue holds."""
    return int(
        db.session.scalar(
            _where(_base(sa.func.count(Billing.id)), filters).order_by(None)
        )
        or 0
    )
