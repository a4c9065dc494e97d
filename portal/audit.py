"""Audit events, written in the same transaction as the change they record."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from decimal import Decimal
from functools import cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import selectinload

from portal.accounts.auth import remote_addr
from portal.core.statuses import ActorType
from portal.extensions import db
from portal.models import (
    AuditEvent,
    Billing,
    BillingPeriod,
    ChangeOrder,
    ClientClaim,
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

Actor = User | Contact | None


def _jsonable(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def record(
    actor: Actor,
    action: str,
    obj: Any,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    *,
    object_type: str | None = None,
    object_id: int | None = None,
) -> AuditEvent:
    """Add an audit event for ``actor`` doing ``action`` to ``obj`` (no commit)."""
    if obj is not None:
        object_type = object_type or obj.__tablename__.rstrip("s")
        object_id = object_id if object_id is not None else obj.id
    event = AuditEvent(
        actor_type=(
            ActorType.USER
            if isinstance(actor, User)
            else ActorType.CONTACT
            if isinstance(actor, Contact)
            else ActorType.SYSTEM
        ),
        actor_user_id=actor.id if isinstance(actor, User) else None,
        actor_contact_id=actor.id if isinstance(actor, Contact) else None,
        action=action,
        object_type=object_type or "none",
        object_id=object_id,
        before=_jsonable(before) if before is not None else None,
        after=_jsonable(after) if after is not None else None,
        remote_addr=remote_addr(),
    )
    db.session.add(event)
    return event


def snapshot(obj: Any, fields: list[str]) -> dict[str, Any]:
    """The named attributes of ``obj``, for before/after values."""
    return {name: _jsonable(getattr(obj, name)) for name in fields}


@cache
def _loaders() -> dict[str, tuple[type, tuple]]:
    """How to load each kind of audited object with what its label needs
    (templates/admin/_audit_table.html names them as the UI does).

    Built on first use: loader options configure every mapper, which
    ``import portal`` (every CLI call, every worker's start) need not pay.
    """
    return {
        "billing": (
            Billing,
            (selectinload(Billing.commitment).selectinload(Commitment.project),),
        ),
        "commitment": (Commitment, ()),
        "project": (Project, ()),
        "vendor": (Vendor, ()),
        "contact": (Contact, ()),
        "user": (User, ()),
        "billing_period": (BillingPeriod, (selectinload(BillingPeriod.project),)),
        "invitation": (
            Invitation,
            (selectinload(Invitation.commitment), selectinload(Invitation.period)),
        ),
        "sov_line": (SovLine, (selectinload(SovLine.commitment),)),
        "change_order": (ChangeOrder, (selectinload(ChangeOrder.commitment),)),
        "client_contract": (ClientContract, ()),
        "client_sov_line": (ClientSovLine, (selectinload(ClientSovLine.contract),)),
        "client_claim": (
            ClientClaim,
            (selectinload(ClientClaim.contract).selectinload(ClientContract.project),),
        ),
    }


def objects_of(events: Iterable[AuditEvent]) -> dict[tuple[str, int], Any]:
    """The objects a page of events is about, keyed by (type, id): a fixed
    number of queries (one per kind present), whatever the page size."""
    loaders = _loaders()
    wanted: dict[str, set[int]] = defaultdict(set)
    for event in events:
        if event.object_type in loaders and event.object_id:
            wanted[event.object_type].add(event.object_id)
    found: dict[tuple[str, int], Any] = {}
    for kind, ids in wanted.items():
        model, options = loaders[kind]
        id_column: Any = getattr(model, "id")  # noqa: B009 - every model has one
        obj: Any
        for obj in db.session.scalars(
            sa.select(model).where(id_column.in_(ids)).options(*options)
        ):
            found[(kind, obj.id)] = obj
    return found
