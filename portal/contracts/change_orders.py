"""Set-up of change orders (SPEC §2): rules, audit events; flush, never commit."""

from __future__ import annotations

import re
from collections.abc import Iterable
from decimal import Decimal

import sqlalchemy as sa

from portal import audit
from portal.contracts.common import (
    ZERO,
)
from portal.contracts.sov import next_line_number
from portal.core.statuses import (
    ChangeOrderStatus,
    CommitmentStatus,
)
from portal.extensions import db
from portal.models import (
    BillingLine,
    ChangeOrder,
    ChangeOrderItem,
    Commitment,
    SovLine,
    User,
)
from portal.timeutil import utcnow
from portal.validation import FieldErrors, InputError, flush_unique

_NUMBERED = re.compile(r"^(.*?)(\d+)$")


def next_change_order_number(taken: Iterable[str]) -> str:
    """The number a new change order should take: one past the highest of
    the commitment's own ("CO-2" → "CO-3", "PCO-009" → "PCO-010"), "CO-1"
    for its first; never one it already has."""
    taken = list(taken)
    used = {n.lower() for n in taken}
    best: tuple[int, str, int] | None = None  # (number, prefix, digits)
    for number in taken:
        match = _NUMBERED.match(number.strip())
        if match and (best is None or int(match.group(2)) > best[0]):
            best = (int(match.group(2)), match.group(1), len(match.group(2)))
    n, prefix, width = best if best is not None else (0, "CO-", 1)
    while True:
        n += 1
        candidate = f"{prefix}{n:0{width}d}"
        if candidate.lower() not in used:
            return candidate


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


def lines_open_to(co: ChangeOrder) -> list[SovLine]:
    """The SOV lines ``co`` may add to: original lines, lines an approved change
    order created, and its own new lines (not a pending or void one's)."""
    approved = sa.select(ChangeOrder.id).where(
        ChangeOrder.commitment_id == co.commitment_id,
        ChangeOrder.status == ChangeOrderStatus.APPROVED,
    )
    return list(
        db.session.scalars(
            sa.select(SovLine)
            .where(
                SovLine.commitment_id == co.commitment_id,
                sa.or_(
                    SovLine.change_order_id.is_(None),
                    SovLine.change_order_id == co.id,
                    SovLine.change_order_id.in_(approved),
                ),
            )
            .order_by(SovLine.line_number)
        ).all()
    )


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
        found = db.session.get(SovLine, sov_line_id) if sov_line_id else None
        if found is None or found.commitment_id != commitment.id:
            raise FieldErrors({"sov_line_id": "Choose a line of this commitment."})
        if found not in lines_open_to(co):
            raise FieldErrors(
                {
                    "sov_line_id": "This line belongs to a change order that is not "
                    "approved yet: add to it once that change order is approved."
                }
            )
        line = found
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
    from portal.billing.figures import _cents

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
