"""Bulk decisions on selected billings (issue 15 item 3).

Each selected billing comes with the version the page showed. Each one goes
through the same transition as a single decision (:func:`billings.
approve_billing`, :func:`billings.send_back`, with their compare-and-set on the
version), inside its own savepoint: a billing is decided entirely or not at
all, and one refused billing never undoes the others. Those left untouched are
returned with the reason. Like every transition this never commits: the view
commits once, so the whole action is one transaction of independent parts.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.orm import joinedload, selectinload

from portal.billing import billings, invitations
from portal.billing.queue import QUEUE_STATUSES
from portal.core.statuses import BillingStatus, LineStatus
from portal.extensions import db
from portal.models import Billing, BillingLine, Comment, Commitment, Invitation, User
from portal.validation import clean_text

#: At most this many billings in one action (a page never shows more).
MAX_SELECTED = 500
_PAIR = re.compile(r"([1-9][0-9]{0,11}):([1-9][0-9]{0,11})")


class BulkError(Exception):
    """A refused bulk action (nothing was done), with a message for the user."""


def parse_pairs(values: Iterable[str]) -> dict[int, int]:
    """``"<billing id>:<version>"`` checkbox values → {id: version}, in order.

    Raises BulkError on a malformed value or too many billings.
    """
    out: dict[int, int] = {}
    for raw in values:
        match = _PAIR.fullmatch((raw or "").strip())
        if match is None:
            raise BulkError("The selection is malformed: reload the page.")
        out.setdefault(int(match.group(1)), int(match.group(2)))
    if len(out) > MAX_SELECTED:
        raise BulkError(f"Select at most {MAX_SELECTED} billings at once.")
    return out


@dataclass(frozen=True)
class Outcome:
    """What happened to one selected billing."""

    billing_id: int
    label: str  # "SC-001 #3"
    reason: str = ""  # why it was skipped ("" when done)
    status: str = ""  # its status after the action


@dataclass
class BulkResult:
    """Exactly one outcome per selected billing: done or skipped (with the reason)."""

    done: list[Outcome] = field(default_factory=list)
    skipped: list[Outcome] = field(default_factory=list)


CHANGED = "it changed since the page was loaded (reload and check it)"


def _label(billing: Billing) -> str:
    return f"{billing.commitment.number} #{billing.application_number}"


def _load(ids: Iterable[int]) -> dict[int, Billing]:
    wanted = list(ids)
    if not wanted:
        return {}
    rows = db.session.scalars(
        sa.select(Billing)
        .options(
            joinedload(Billing.commitment).joinedload(Commitment.project),
            joinedload(Billing.commitment).joinedload(Commitment.vendor),
            joinedload(Billing.commitment).selectinload(Commitment.contacts),
            joinedload(Billing.period),
            selectinload(Billing.lines).joinedload(BillingLine.sov_line),
            selectinload(Billing.comments).joinedload(Comment.author_user),
        )
        .where(Billing.id.in_(wanted))
    ).all()
    return {b.id: b for b in rows}


def approval_blocker(billing: Billing) -> str:
    """Why a bulk approval must leave the billing to a single decision ("" if none)."""
    if billing.status not in QUEUE_STATUSES:
        return f"it is {billing.status.replace('_', ' ')}, not waiting for a decision"
    if any(bl.status == LineStatus.REVISE for bl in billing.lines):
        return "a line is marked revise: decide it on its review page"
    if any(
        (bl.approved_work, bl.approved_materials, bl.approved_installed)
        != (bl.claimed_work, bl.claimed_materials, bl.claimed_installed)
        for bl in billing.lines
    ):
        return "an approved amount differs from the claim: decide it on its review page"
    return ""


def _each(
    selected: Mapping[int, int], result: BulkResult
) -> Iterable[tuple[Billing, int]]:
    """The selected billings that still exist and show the posted version."""
    found = _load(selected)
    for billing_id, version in selected.items():
        billing = found.get(billing_id)
        if billing is None:
            result.skipped.append(
                Outcome(billing_id, f"billing {billing_id}", "it no longer exists")
            )
            continue
        if billing.version != version:
            result.skipped.append(Outcome(billing_id, _label(billing), CHANGED))
            continue
        yield billing, version


def _decide(billing: Billing, result: BulkResult, action) -> None:
    """Run ``action`` in a savepoint; record one outcome either way."""
    label = _label(billing)
    try:
        with db.session.begin_nested():
            status = action()
    except billings.StaleBilling:
        result.skipped.append(Outcome(billing.id, label, CHANGED))
    except billings.ValidationFailed as exc:
        reason = "; ".join(exc.errors.values()) or str(exc)
        result.skipped.append(Outcome(billing.id, label, reason))
    except billings.BillingError as exc:
        result.skipped.append(Outcome(billing.id, label, str(exc).rstrip(".")))
    else:
        result.done.append(Outcome(billing.id, label, status=status))


def approve(selected: Mapping[int, int], user: User) -> BulkResult:
    """Approve each selected billing whose lines are all pending or approved as
    claimed; the others are skipped with the reason."""
    result = BulkResult()
    for billing, version in _each(selected, result):
        blocker = approval_blocker(billing)
        if blocker:
            result.skipped.append(Outcome(billing.id, _label(billing), blocker))
            continue
        _decide(
            billing,
            result,
            lambda b=billing, v=version: billings.approve_billing(b, user, v),
        )
    db.session.flush()
    return result


def send_back(selected: Mapping[int, int], user: User, comment: str) -> BulkResult:
    """Send each selected billing back with the same comment (required)."""
    text = clean_text(comment, multiline=True)
    if not text:
        raise BulkError("Write the comment the contacts will read.")
    if len(text) > billings.TEXT_LIMITS["comment"]:
        raise BulkError(
            f"Use at most {billings.TEXT_LIMITS['comment']} characters in the comment."
        )
    result = BulkResult()
    for billing, version in _each(selected, result):
        if billing.status != BillingStatus.UNDER_REVIEW:
            result.skipped.append(
                Outcome(
                    billing.id,
                    _label(billing),
                    f"it is {billing.status.replace('_', ' ')}: only a billing under "
                    "review can be sent back",
                )
            )
            continue

        def act(b: Billing = billing, v: int = version) -> str:
            billings.send_back(b, user, v, text)
            return b.status

        _decide(billing, result, act)
    db.session.flush()
    return result


def remind(selected: Mapping[int, int], user: User) -> BulkResult:
    """Remind the contacts of each selected billing still to be (re)submitted,
    through :func:`invitations.remind` (its once-a-day rule included)."""
    result = BulkResult()
    found = _load(selected)
    for billing_id in selected:
        billing = found.get(billing_id)
        if billing is None:
            result.skipped.append(
                Outcome(billing_id, f"billing {billing_id}", "it no longer exists")
            )
            continue
        label = _label(billing)
        if billing.status != BillingStatus.DRAFT:
            result.skipped.append(
                Outcome(
                    billing.id,
                    label,
                    f"it is {billing.status.replace('_', ' ')}: nothing to remind "
                    "its contacts of",
                )
            )
            continue
        live = list(
            db.session.scalars(
                sa.select(Invitation).where(
                    Invitation.period_id == billing.period_id,
                    Invitation.commitment_id == billing.commitment_id,
                    Invitation.revoked_at.is_(None),
                )
            )
        )
        if not live:
            result.skipped.append(
                Outcome(billing.id, label, "its contacts were never invited")
            )
            continue
        sent = invitations.remind(live, user)
        if sent:
            result.done.append(Outcome(billing.id, label, status=billing.status))
        else:
            result.skipped.append(
                Outcome(
                    billing.id,
                    label,
                    "its contacts were invited or reminded within the last day, "
                    "declined, or are inactive",
                )
            )
    db.session.flush()
    return result
