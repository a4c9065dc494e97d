"""The billing workflow of SPEC §3: statuses, transitions, validation.

Every transition is one function here. It checks the move against
:data:`TRANSITIONS`, changes the status with a compare-and-set
(``UPDATE … WHERE id = ? AND status = ? AND version = ?``), writes its audit
event and outbox mail, and flushes. It never commits: the view does, once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from flask import g, has_request_context
from sqlalchemy.exc import IntegrityError

from portal import audit, timeutil
from portal.billing import figures
from portal.concurrency import compare_and_set
from portal.core import money
from portal.core.amounts import MAX_AMOUNT, AmountError, parse_amount
from portal.core.statuses import (
    COUNTED_STATUSES,
    EDITABLE_STATUSES,
    BillingStatus,
    CommitmentStatus,
    LineStatus,
    PeriodStatus,
    Role,
)
from portal.core.statuses import TRANSITIONS as STATUS_TRANSITIONS
from portal.extensions import db
from portal.mail.outbox import queue_mail
from portal.models import (
    Billing,
    BillingLine,
    BillingPeriod,
    Comment,
    Commitment,
    Contact,
    RevisionSnapshot,
    User,
)
from portal.timeutil import utcnow
from portal.validation import clean_text
from portal.web.templating import term
from portal.web.urls import has_endpoint, public_url

ZERO = Decimal("0.00")
S = BillingStatus
Actor = User | Contact

#: (from status, action) → to status: the billing part of the one table in
#: :mod:`portal.core.statuses`.
TRANSITIONS = STATUS_TRANSITIONS["billing"]

#: Who may take each action: "contact", "admin" (role admin).
ACTORS: dict[str, frozenset[str]] = {
    "save": frozenset({"contact", "admin"}),
    "submit": frozenset({"contact", "admin"}),
    "resubmit": frozenset({"contact", "admin"}),
    "review": frozenset({"admin"}),
    "approve": frozenset({"admin"}),
    "hold_for_owner": frozenset({"admin"}),
    "send_back": frozenset({"admin"}),
    "void": frozenset({"admin"}),
}

TEXT_LIMITS = {
    "vendor_invoice_number": 60,
    "notes": 4000,
    "comment": 4000,
    "reason": 2000,
}


class BillingError(Exception):
    """A refused action, with a message fit for the user."""


class StaleBilling(BillingError):
    """The billing changed since the page was loaded."""


@dataclass
class ValidationFailed(BillingError):
    """Field errors: ``{"line-<sov_line_id>-work": "…", "notes": "…"}``."""

    errors: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return "Please correct the highlighted fields."


def actor_kind(actor: Actor) -> str:
    """'contact' or the user's role."""
    return "contact" if isinstance(actor, Contact) else actor.role


def allowed(billing: Billing, action: str, actor: Actor | None = None) -> bool:
    """Whether ``action`` is a legal move from the billing's status (and for the actor)."""
    if (S(billing.status), action) not in TRANSITIONS:
        return False
    return actor is None or actor_kind(actor) in ACTORS[action]


def _check(billing: Billing, action: str, actor: Actor) -> str:
    if actor_kind(actor) not in ACTORS[action]:
        raise BillingError("You are not allowed to do that.")
    key = (S(billing.status), action)
    if key not in TRANSITIONS:
        raise BillingError(
            f"A billing that is {billing.status.replace('_', ' ')} cannot be "
            f"{_ACTION_WORDS.get(action, action)}."
        )
    _lock_row(billing)
    return TRANSITIONS[key]


def _lock_row(billing: Billing) -> None:
    """Lock the billing's row before any of its lines (PostgreSQL; SQLite has no
    row locks and serialises writers anyway).

    Every transition then locks in one order, billing first, lines after. Without
    it, approving (lines, then the billing) and saving a review (billing, then
    lines) at the same moment deadlocked, and PostgreSQL aborted one of them with
    an error instead of the "changed meanwhile" message. ``FOR NO KEY UPDATE``
    does not wait on rows that merely reference the billing (comments, files).
    """
    db.session.execute(
        sa.select(Billing.id)
        .where(Billing.id == billing.id)
        .with_for_update(key_share=True)
    )


_ACTION_WORDS = {
    "save": "edited",
    "submit": "submitted",
    "resubmit": "resubmitted",
    "review": "reviewed",
    "approve": "approved",
    "hold_for_owner": "held for owner approval",
    "send_back": "sent back",
    "void": "voided",
}


def _cas(
    billing: Billing, expected_version: int, to_status: str, **values: Any
) -> None:
    """Compare-and-set the status and bump the version, or raise StaleBilling."""
    compare_and_set(
        Billing,
        billing,
        expected_version,
        to_status,
        stale=StaleBilling,
        message=(
            "This billing was changed by someone else meanwhile. "
            "Reload the page to see the latest version, then try again."
        ),
        updated_at=utcnow(),
        **values,
    )


def _actor_fields(actor: Actor) -> dict[str, int | None]:
    if isinstance(actor, Contact):
        return {"user": None, "contact": actor.id}
    return {"user": actor.id, "contact": None}


# ----------------------------------------------------------------- create


def contact_may_bill(contact: Contact, commitment: Commitment) -> bool:
    """Whether ``contact`` is (still) a billing contact on ``commitment``
    (without loading its contacts when this request's ownership check has
    just found the contact on it: :func:`proven_member`)."""
    if not contact.active:
        return False
    if has_request_context() and (contact.id, commitment.id) in g.get(
        "proven_members", ()
    ):
        return True
    return any(c.id == contact.id for c in commitment.contacts)


def proven_member(contact_id: int, commitment_id: int) -> None:
    """Record that a query of this request found the contact among the
    commitment's billing contacts (an ownership check), so that
    :func:`contact_may_bill` need not load them again in the same request."""
    if has_request_context():
        proven = g.setdefault("proven_members", set())
        proven.add((contact_id, commitment_id))


def period_closed_for_contacts(
    period: BillingPeriod, today: date | None = None
) -> bool:
    """After the due date or once closed, contacts can't create or submit (SPEC §2)."""
    return closed_for_contacts(
        period.project.late_submissions_allowed,
        period.status,
        period.due_date,
        today or timeutil.today(),
    )


def closed_for_contacts(
    late_allowed: bool, status: str, due_date: date, today: date
) -> bool:
    """:func:`period_closed_for_contacts` from the columns it reads."""
    if late_allowed:
        return False
    return status != PeriodStatus.OPEN or today > due_date


def create_billing(
    commitment: Commitment, period: BillingPeriod, actor: Actor
) -> Billing:
    """Start a draft billing for the commitment and period (SPEC §3 create)."""
    if commitment.status != CommitmentStatus.APPROVED:
        raise BillingError("Only approved commitments can be billed.")
    if period.project_id != commitment.project_id:
        raise BillingError("That period belongs to another project.")
    if isinstance(actor, Contact):
        if not contact_may_bill(actor, commitment):
            raise BillingError("You are not a billing contact on this commitment.")
        if period.status != PeriodStatus.OPEN:
            raise BillingError("This billing period is closed.")
        if period_closed_for_contacts(period):
            raise BillingError(
                "The due date of this billing period has passed. "
                "Please contact the billing administrator."
            )
    elif actor.role != Role.ADMIN:
        raise BillingError("You are not allowed to do that.")
    existing = db.session.scalar(
        sa.select(Billing.id).where(
            Billing.commitment_id == commitment.id,
            Billing.period_id == period.id,
            Billing.status != S.VOID,
        )
    )
    if existing:
        raise BillingError("A billing already exists for this commitment and period.")
    last_number = db.session.scalar(
        sa.select(sa.func.max(Billing.application_number)).where(
            Billing.commitment_id == commitment.id, Billing.status != S.VOID
        )
    )
    who = _actor_fields(actor)
    sov_lines = [info.line for info in figures.billable_sov_lines(commitment)]
    billing = Billing(
        commitment_id=commitment.id,
        period_id=period.id,
        application_number=(last_number or 0) + 1,
        status=S.DRAFT,
        created_by_user_id=who["user"],
        created_by_contact_id=who["contact"],
        lines=[BillingLine(sov_line_id=line.id) for line in sov_lines],
    )
    db.session.add(billing)
    try:
        with db.session.begin_nested():
            db.session.flush()
    except IntegrityError as exc:
        raise BillingError(
            "A billing already exists for this commitment and period."
        ) from exc
    db.session.refresh(billing)
    audit.record(actor, "billing.create", billing, after={"status": S.DRAFT})
    return billing


def sync_lines(billing: Billing) -> None:
    """Add lines for SOV lines that became billable (an approved change order)."""
    if billing.status not in EDITABLE_STATUSES and billing.status != S.UNDER_REVIEW:
        return
    have = {bl.sov_line_id for bl in billing.lines}
    for info in figures.billable_sov_lines(billing.commitment):
        if info.line.id not in have:
            # Set the id too: validate_input keys lines by sov_line_id before a flush.
            billing.lines.append(
                BillingLine(
                    sov_line=info.line,
                    sov_line_id=info.line.id,
                    claimed_installed=ZERO,
                    approved_installed=ZERO,
                )
            )


# ----------------------------------------------------------------- edit


@dataclass
class BillingInput:
    """What the billing form carries, still as text (parsed here, strictly)."""

    lines: Mapping[
        int, tuple[str | None, str | None]
    ]  # sov_line_id → (work, materials)
    vendor_invoice_number: str = ""
    notes: str = ""
    retainage_released: str | None = None
    #: sov_line_id → stored materials installed this period (SPEC §4); a line
    #: not named keeps what it has.
    installed: Mapping[int, str | None] = field(default_factory=dict)


def _clean_text(value: str | None, name: str, errors: dict[str, str]) -> str:
    # NUL and control characters never reach the database; only the notes keep
    # their line breaks (SPEC §5, docs/security.md).
    text = clean_text(value, multiline=name != "vendor_invoice_number")
    limit = TEXT_LIMITS[name]
    if len(text) > limit:
        errors[name] = f"Use at most {limit} characters."
    return text


def validate_input(billing: Billing, data: BillingInput) -> dict[str, Any]:
    """Parse and check a billing form (SPEC §5); raise ValidationFailed with field errors."""
    errors: dict[str, str] = {}
    known = {bl.sov_line_id: bl for bl in billing.lines}
    values: dict[int, tuple[Decimal, Decimal, Decimal]] = {}
    if any(sov_id not in known for sov_id in data.installed):
        raise ValidationFailed({"lines": "Unknown line in the form. Reload the page."})
    installed_by_line = {sov_id: bl.claimed_installed for sov_id, bl in known.items()}
    for sov_id, raw in data.installed.items():
        try:
            installed_by_line[sov_id] = parse_amount(
                raw, allow_negative=False, field="materials"
            )
        except AmountError as exc:
            errors[f"line-{sov_id}-installed"] = str(exc)
    for sov_id, (raw_work, raw_materials) in data.lines.items():
        if sov_id not in known:
            raise ValidationFailed(
                {"lines": "Unknown line in the form. Reload the page."}
            )
        work = materials = ZERO
        installed = installed_by_line[sov_id]
        try:
            work = parse_amount(raw_work, field="work")
        except AmountError as exc:
            errors[f"line-{sov_id}-work"] = str(exc)
        try:
            materials = parse_amount(
                raw_materials, allow_negative=False, field="materials"
            )
        except AmountError as exc:
            errors[f"line-{sov_id}-materials"] = str(exc)
        values[sov_id] = (work, materials, installed)
    for sov_id, bl in known.items():
        values.setdefault(
            sov_id, (bl.claimed_work, bl.claimed_materials, installed_by_line[sov_id])
        )
    invoice = _clean_text(data.vendor_invoice_number, "vendor_invoice_number", errors)
    notes = _clean_text(data.notes, "notes", errors)
    released = billing.retainage_released
    project = billing.commitment.project
    if data.retainage_released is not None and data.retainage_released.strip() != "":
        try:
            released = parse_amount(data.retainage_released, allow_negative=False)
        except AmountError as exc:
            errors["retainage_released"] = str(exc)
        else:
            if released and not project.retainage_release_allowed:
                errors["retainage_released"] = (
                    f"This project does not allow {term('retainage', project)} "
                    "release requests."
                )
    if errors:
        raise ValidationFailed(errors)
    hist = figures.history(billing.commitment_id, billing.application_number)
    figs = figures.compute(billing, values, retainage_released=released, hist=hist)
    overbilled: list[int] = []
    infos = figures.billable_sov_lines(billing.commitment)
    for info, fig in zip(infos, figs.lines, strict=True):
        sid = info.line.id
        if fig.previous_work + fig.work_this_period < 0:
            errors[f"line-{sid}-work"] = (
                "Work to date cannot go below zero: at most "
                f"-{fig.previous_work:,.2f} can be taken back on this line."
            )
        elif fig.total_completed_and_stored > fig.scheduled_value:
            if project.overbilling_allowed:
                overbilled.append(sid)
            else:
                errors[f"line-{sid}-work"] = (
                    f"This would bill {fig.total_completed_and_stored:,.2f} against a "
                    f"scheduled value of {fig.scheduled_value:,.2f} (overbilling is "
                    "not allowed on this project)."
                )
        if abs(fig.total_completed_and_stored) > MAX_AMOUNT:
            errors[f"line-{sid}-work"] = "Amounts are limited to 999,999,999,999.99."
        _check_installed(fig, f"line-{sid}", errors)
    _check_release(figs, released, hist.released_before, project, errors)
    if errors:
        raise ValidationFailed(errors)
    return {
        "values": values,
        "vendor_invoice_number": invoice,
        "notes": notes,
        "retainage_released": released,
        "overbilled": overbilled,
        "figures": figs,
    }


def _check_installed(
    fig: money.LineFigures, prefix: str, errors: dict[str, str]
) -> None:
    """Installed materials come out of F and are part of E (docs/money.md)."""
    installed = fig.materials_installed
    if not installed or f"{prefix}-installed" in errors:
        return
    available = fig.materials_previous + fig.materials_new
    if installed > available:
        errors[f"{prefix}-installed"] = (
            f"Only {available:,.2f} of materials is stored on this line "
            f"({fig.materials_previous:,.2f} from previous billings + "
            f"{fig.materials_new:,.2f} new): you cannot install more."
        )
    elif installed > fig.work_this_period:
        errors[f"{prefix}-installed"] = (
            "Installed materials are part of the work completed this period: "
            f"enter at least {installed:,.2f} as work this period."
        )


def _check_release(
    figs: money.BillingFigures,
    released: Decimal,
    released_before: Decimal,
    project: Any,
    errors: dict[str, str],
) -> None:
    """A billing releases at most what is held before it (docs/money.md)."""
    if not released:
        return
    t = figs.totals
    available = money.retainage_available(
        t.retainage_on_work + t.retainage_on_materials, released_before
    )
    if released > available:
        errors["retainage_released"] = (
            f"You cannot release more {term('retainage', project)} than is held "
            f"({available:,.2f} available)."
        )


def save_billing(
    billing: Billing, actor: Actor, data: BillingInput, expected_version: int
) -> list[int]:
    """Save the form on a draft or revise-and-resubmit billing; return overbilled lines."""
    check_may_save(billing, actor)
    sync_lines(billing)
    clean = validate_input(billing, data)
    before = _amounts(billing)
    _cas(
        billing,
        expected_version,
        billing.status,
        vendor_invoice_number=clean["vendor_invoice_number"],
        notes=clean["notes"],
        retainage_released=clean["retainage_released"],
    )
    for bl in billing.lines:
        work, materials, installed = clean["values"][bl.sov_line_id]
        if (work, materials, installed) != (
            bl.claimed_work,
            bl.claimed_materials,
            bl.claimed_installed,
        ):
            bl.claimed_work, bl.claimed_materials = work, materials
            bl.claimed_installed = installed
            # The contact changed the claim: the approval follows it again and a
            # line the reviewer had approved needs a new look.
            bl.approved_work, bl.approved_materials = work, materials
            bl.approved_installed = installed
            if bl.status != LineStatus.PENDING:
                bl.status = LineStatus.PENDING
    after = _amounts(billing)
    if before != after:
        audit.record(actor, "billing.save", billing, *_changes(before, after))
    db.session.flush()
    return clean["overbilled"]


def check_may_save(billing: Billing, actor: Actor) -> None:
    """Raise :class:`BillingError` unless ``actor`` may save ``billing`` now.

    What :func:`save_billing` checks before it reads the form: a form the web
    layer refused reports this first too, as a saved one would.
    """
    _check(billing, "save", actor)
    _check_editor(billing, actor)


def _check_editor(billing: Billing, actor: Actor) -> None:
    if isinstance(actor, Contact) and not contact_may_bill(actor, billing.commitment):
        raise BillingError("You are not a billing contact on this commitment.")


def _line_numbers(billing: Billing) -> dict[int, int]:
    """SOV line id → line number, from the commitment's lines (one query)."""
    return {sl.id: sl.line_number for sl in billing.commitment.sov_lines}


def _amounts(billing: Billing) -> dict[str, Any]:
    """The claim as the audit log shows it: fields, then each line by number."""
    state: dict[str, Any] = {
        "vendor_invoice_number": billing.vendor_invoice_number,
        "retainage_released": str(billing.retainage_released),
    }
    numbers = _line_numbers(billing)
    for bl in sorted(billing.lines, key=lambda x: numbers[x.sov_line_id]):
        state[f"line {numbers[bl.sov_line_id]}"] = {
            "work": str(bl.claimed_work),
            "stored": str(bl.claimed_materials),
            "installed": str(bl.claimed_installed),
        }
    return state


def _changes(
    before: dict[str, Any], after: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Only what changed, before and after (an audit entry says what was done,
    not the whole billing: "line 3: work 1,000.00 → 2,000.00")."""
    keys = [k for k in after if before.get(k) != after[k]]
    keys += [k for k in before if k not in after]
    return (
        {k: before[k] for k in keys if k in before},
        {k: after[k] for k in keys if k in after},
    )


# ----------------------------------------------------------------- submit


def submit_billing(
    billing: Billing,
    actor: Actor,
    expected_version: int,
    action: str | None = None,
) -> None:
    """Submit a draft, or resubmit after revise & resubmit (SPEC §3).

    ``action`` is the verb the user chose ("submit" or "resubmit"); a verb the
    billing's status does not allow is refused by the transition table. Without
    it the verb follows the status.
    """
    resubmit = billing.status == S.REVISE_AND_RESUBMIT
    if action is None:
        action = "resubmit" if resubmit else "submit"
    elif action not in ("submit", "resubmit"):
        raise ValueError(f"not a submit verb: {action!r}")
    to_status = _check(billing, action, actor)
    _check_editor(billing, actor)
    if isinstance(actor, Contact) and period_closed_for_contacts(billing.period):
        raise BillingError(
            "The due date of this billing period has passed, so it can no longer be "
            "submitted here. Please contact the billing administrator."
        )
    sync_lines(billing)
    clean = validate_input(
        billing,
        BillingInput(
            lines={},
            vendor_invoice_number=billing.vendor_invoice_number,
            notes=billing.notes,
            retainage_released=str(billing.retainage_released),
        ),
    )
    if (
        not any(
            bl.claimed_work or bl.claimed_materials or bl.claimed_installed
            for bl in billing.lines
        )
        and not clean["retainage_released"]
    ):
        raise BillingError("Enter at least one amount before submitting.")
    revision = billing.revision + 1 if resubmit else billing.revision
    if resubmit:
        # Lines sent back get a fresh look; approved lines stay approved.
        for bl in billing.lines:
            if bl.status == LineStatus.REVISE:
                bl.status = LineStatus.PENDING
    _cas(billing, expected_version, to_status, revision=revision, submitted_at=utcnow())
    db.session.add(
        RevisionSnapshot(
            billing_id=billing.id,
            revision=revision,
            data={
                "lines": {
                    str(bl.sov_line_id): {
                        "work": str(bl.claimed_work),
                        "materials": str(bl.claimed_materials),
                        "installed": str(bl.claimed_installed),
                    }
                    for bl in billing.lines
                },
                "vendor_invoice_number": billing.vendor_invoice_number,
                "retainage_released": str(billing.retainage_released),
                "notes": billing.notes,
            },
        )
    )
    audit.record(
        actor,
        f"billing.{action}",
        billing,
        before={"status": S.REVISE_AND_RESUBMIT if resubmit else S.DRAFT},
        after={"status": to_status, "revision": revision},
    )
    _notify_admins(billing)
    db.session.flush()


def _notify_admins(billing: Billing) -> None:
    admins = db.session.scalars(
        sa.select(User).where(User.role == Role.ADMIN, User.active.is_(True))
    ).all()
    sheet = figures.sheet(billing, which="claimed")
    for admin in admins:
        queue_mail(
            "billing_submitted",
            admin.email,
            f"{billing.commitment.project.name}: {billing.commitment.vendor.name} "
            f"submitted {term('progress_billing', billing.commitment.project)} "
            f"#{billing.application_number}",
            obj=billing,
            billing=billing,
            totals=sheet.totals,
            url=_admin_url(billing),
        )


def _admin_url(billing: Billing) -> str:
    if has_endpoint("admin.billing_review"):
        return public_url("admin.billing_review", billing_id=billing.id)
    return public_url("admin.index")


def _contact_url(billing: Billing) -> str:
    if has_endpoint("contact.billing_view"):
        return public_url("contact.billing_view", billing_id=billing.id)
    return public_url("contact.index")


def _notify_contacts(billing: Billing, name: str, subject: str, **context: Any) -> None:
    from portal.accounts import tokens

    for contact in billing.commitment.contacts:
        if contact.active:
            # Each mail carries its own single-use link landing on this billing:
            # the contact's session may be long gone when they open it (SPEC §6).
            link, token = tokens.issue_link(
                contact, billing_id=billing.id, valid_through=billing.period.due_date
            )
            queue_mail(
                name,
                contact.email,
                subject,
                obj=billing,
                billing=billing,
                contact=contact,
                url=tokens.link_url(token),
                expires=link.expires_at,
                **context,
            )


# ----------------------------------------------------------------- review


@dataclass
class LineReview:
    """The reviewer's decision on one line, as text from the form."""

    approved_work: str | None
    approved_materials: str | None
    status: str  # pending / approved / revise
    comment: str = ""
    #: stored materials installed this period, approved side (None: unchanged)
    approved_installed: str | None = None


def review_lines(
    billing: Billing,
    user: User,
    reviews: Mapping[int, LineReview],
    expected_version: int,
) -> None:
    """Record approved amounts, line statuses and reasons (billing stays under review)."""
    _check(billing, "review", user)
    errors: dict[str, str] = {}
    by_id = {bl.id: bl for bl in billing.lines}
    parsed: dict[int, tuple[Decimal, Decimal, Decimal, str, str]] = {}
    for line_id, review in reviews.items():
        bl = by_id.get(line_id)
        if bl is None:
            raise ValidationFailed(
                {"lines": "Unknown line in the form. Reload the page."}
            )
        try:
            work = parse_amount(review.approved_work, field="work")
        except AmountError as exc:
            errors[f"line-{line_id}-work"] = str(exc)
            continue
        try:
            materials = parse_amount(
                review.approved_materials, allow_negative=False, field="materials"
            )
        except AmountError as exc:
            errors[f"line-{line_id}-materials"] = str(exc)
            continue
        installed = bl.approved_installed
        if review.approved_installed is not None:
            try:
                installed = parse_amount(
                    review.approved_installed, allow_negative=False, field="materials"
                )
            except AmountError as exc:
                errors[f"line-{line_id}-installed"] = str(exc)
                continue
        if review.status not in {s.value for s in LineStatus}:
            errors[f"line-{line_id}-status"] = "Choose approve or revise."
            continue
        comment = clean_text(review.comment, multiline=True)
        if len(comment) > TEXT_LIMITS["comment"]:
            errors[f"line-{line_id}-comment"] = "Use at most 4000 characters."
            continue
        if review.status == LineStatus.REVISE and not comment:
            errors[f"line-{line_id}-comment"] = "Say what needs revising."
            continue
        as_claimed = (work, materials, installed) == (
            bl.claimed_work,
            bl.claimed_materials,
            bl.claimed_installed,
        )
        if not as_claimed and not comment:
            # The payment schedule prints why an approved amount differs.
            errors[f"line-{line_id}-comment"] = (
                "Say why the approved amount differs from the claim."
            )
            continue
        if as_claimed and review.status == LineStatus.APPROVED:
            comment = ""  # a reason for a difference that is no longer there
        parsed[line_id] = (work, materials, installed, review.status, comment)
    if errors:
        raise ValidationFailed(errors)
    values = {
        bl.sov_line_id: parsed[bl.id][:3]
        if bl.id in parsed
        else (bl.approved_work, bl.approved_materials, bl.approved_installed)
        for bl in billing.lines
    }
    figs = figures.compute(billing, values)
    infos = figures.billable_sov_lines(billing.commitment)
    line_for_sov = {bl.sov_line_id: bl for bl in billing.lines}
    for info, fig in zip(infos, figs.lines, strict=True):
        bl = line_for_sov.get(info.line.id)
        if bl is None:
            continue
        if fig.previous_work + fig.work_this_period < 0:
            errors[f"line-{bl.id}-work"] = "Work to date cannot go below zero."
        elif (
            fig.total_completed_and_stored > fig.scheduled_value
            and not billing.commitment.project.overbilling_allowed
        ):
            errors[f"line-{bl.id}-work"] = (
                "This would bill more than the scheduled value."
            )
        _check_installed(fig, f"line-{bl.id}", errors)
    if errors:
        raise ValidationFailed(errors)
    before = _review_state(billing)
    _cas(billing, expected_version, billing.status)
    for line_id, (work, materials, installed, status, comment) in parsed.items():
        bl = by_id[line_id]
        bl.approved_work, bl.approved_materials = work, materials
        bl.approved_installed = installed
        bl.status = status
        bl.reviewer_comment = comment
    after = _review_state(billing)
    if before != after:
        audit.record(user, "billing.review", billing, *_changes(before, after))
    db.session.flush()


def _review_state(billing: Billing) -> dict[str, Any]:
    """The review as the audit log shows it: each line by number."""
    numbers = _line_numbers(billing)
    return {
        f"line {numbers[bl.sov_line_id]}": {
            "approved work": str(bl.approved_work),
            "approved stored": str(bl.approved_materials),
            "approved installed": str(bl.approved_installed),
            "status": bl.status,
            "reason": bl.reviewer_comment,
        }
        for bl in sorted(billing.lines, key=lambda x: numbers[x.sov_line_id])
    }


def add_comment(
    billing: Billing, author: Actor, body: str, line: BillingLine | None = None
) -> Comment:
    """Add a comment to the billing or one of its lines (kept forever)."""
    text = clean_text(body, multiline=True)
    if not text:
        raise ValidationFailed({"body": "Write a comment first."})
    if len(text) > TEXT_LIMITS["comment"]:
        raise ValidationFailed({"body": "Use at most 4000 characters."})
    if isinstance(author, Contact):
        _check_editor(billing, author)
    if line is not None and line.billing_id != billing.id:
        raise BillingError("That line belongs to another billing.")
    who = _actor_fields(author)
    comment = Comment(
        billing_id=billing.id,
        billing_line_id=line.id if line else None,
        author_user_id=who["user"],
        author_contact_id=who["contact"],
        revision=billing.revision,
        body=text,
    )
    db.session.add(comment)
    db.session.flush()
    audit.record(author, "comment.add", billing, after={"comment_id": comment.id})
    return comment


def _earlier_undecided(billing: Billing) -> bool:
    return bool(
        db.session.scalar(
            sa.select(sa.func.count(Billing.id)).where(
                Billing.commitment_id == billing.commitment_id,
                Billing.application_number < billing.application_number,
                Billing.status.notin_(
                    [s.value for s in COUNTED_STATUSES] + [S.VOID.value]
                ),
            )
        )
    )


def _finalise_lines(billing: Billing) -> None:
    if any(bl.status == LineStatus.REVISE for bl in billing.lines):
        raise BillingError(
            "Some lines are marked revise: send the billing back, or approve those lines."
        )
    for bl in billing.lines:
        bl.status = LineStatus.APPROVED


def approve_billing(billing: Billing, user: User, expected_version: int) -> str:
    """Approve: ``approved``, or ``approved_as_noted`` when any amount changed."""
    _check(billing, "approve", user)
    if _earlier_undecided(billing):
        raise BillingError(
            "An earlier billing of this commitment is still undecided: decide it first."
        )
    _finalise_lines(billing)
    noted = any(
        bl.approved_work != bl.claimed_work
        or bl.approved_materials != bl.claimed_materials
        or bl.approved_installed != bl.claimed_installed
        for bl in billing.lines
    )
    to_status = S.APPROVED_AS_NOTED if noted else S.APPROVED
    before = billing.status
    db.session.flush()
    # Held for the owner, its figures were frozen then: a change order approved
    # since changes none of them (SPEC §4; docs/change-orders.md).
    frozen = (
        billing.approved_figures
        if before == S.PENDING_OWNER_APPROVAL and billing.approved_figures
        else figures.freeze(billing)
    )
    _cas(
        billing,
        expected_version,
        to_status,
        decided_at=utcnow(),
        decided_by_id=user.id,
        approved_figures=frozen,
    )
    # What it carries to the next billing, stored once (the next one's history).
    figures.store_carries(billing)
    audit.record(
        user,
        "billing.approve",
        billing,
        before={"status": before},
        after={
            "status": to_status,
            "current_payment_due": frozen["figures"]["totals"]["current_payment_due"],
        },
    )
    _notify_contacts(
        billing,
        "billing_approved",
        f"{billing.commitment.project.name}: "
        f"{term('progress_billing', billing.commitment.project)} "
        f"#{billing.application_number} {'approved as noted' if noted else 'approved'}",
        totals=figures.billing_figures(billing).totals,
    )
    db.session.flush()
    return to_status


def hold_for_owner(billing: Billing, user: User, expected_version: int) -> None:
    """Hold a reviewed billing until the client approves the upstream claim."""
    _check(billing, "hold_for_owner", user)
    if _earlier_undecided(billing):
        raise BillingError(
            "An earlier billing of this commitment is still undecided: decide it first."
        )
    _finalise_lines(billing)
    db.session.flush()
    frozen = figures.freeze(billing)
    _cas(
        billing,
        expected_version,
        S.PENDING_OWNER_APPROVAL,
        decided_by_id=user.id,
        approved_figures=frozen,
    )
    # What it carries to the next billing, stored once (the next one's history).
    figures.store_carries(billing)
    audit.record(
        user,
        "billing.hold_for_owner",
        billing,
        before={"status": S.UNDER_REVIEW},
        after={"status": S.PENDING_OWNER_APPROVAL},
    )
    db.session.flush()


def send_back(
    billing: Billing, user: User, expected_version: int, comment: str = ""
) -> None:
    """Revise & resubmit: needs a line marked revise or a billing comment."""
    _check(billing, "send_back", user)
    text = clean_text(comment, multiline=True)
    if text:
        add_comment(billing, user, text)
    revise_lines = [bl for bl in billing.lines if bl.status == LineStatus.REVISE]
    has_comment = text or any(c.revision == billing.revision for c in billing.comments)
    if not revise_lines and not has_comment:
        raise BillingError(
            "Mark at least one line revise with a reason, or write a comment, "
            "before sending the billing back."
        )
    _cas(billing, expected_version, S.REVISE_AND_RESUBMIT, decided_by_id=user.id)
    audit.record(
        user,
        "billing.send_back",
        billing,
        before={"status": S.UNDER_REVIEW},
        after={
            "status": S.REVISE_AND_RESUBMIT,
            "revise_lines": sorted(bl.sov_line.line_number for bl in revise_lines),
        },
    )
    comments = [c for c in billing.comments if c.revision == billing.revision]
    _notify_contacts(
        billing,
        "revise_and_resubmit",
        f"{billing.commitment.project.name}: please revise "
        f"{term('progress_billing', billing.commitment.project)} "
        f"#{billing.application_number}",
        revise_lines=sorted(revise_lines, key=lambda bl: bl.sov_line.line_number),
        comments=comments,
    )
    db.session.flush()


def void_billing(
    billing: Billing, user: User, expected_version: int, reason: str
) -> None:
    """Void with a reason comment (frees the commitment and period)."""
    _check(billing, "void", user)
    text = clean_text(reason, multiline=True)
    if not text:
        raise ValidationFailed({"reason": "Give a reason for voiding."})
    if len(text) > TEXT_LIMITS["reason"]:
        raise ValidationFailed({"reason": "Use at most 2000 characters."})
    before = billing.status
    add_comment(billing, user, f"Voided: {text}")
    _cas(
        billing,
        expected_version,
        S.VOID,
        void_reason=text,
        decided_by_id=user.id,
        decided_at=utcnow(),
    )
    if before in COUNTED_STATUSES:
        # Held for the owner, then voided: it no longer counts, so it carries
        # nothing and the later counted billings' D no longer holds its work.
        figures.store_carries(billing)
    audit.record(
        user,
        "billing.void",
        billing,
        before={"status": before},
        after={"status": S.VOID, "reason": text},
    )
    db.session.flush()
