"""What the contact portal's pages need: ownership checks, page data, small actions.

Ownership is decided in SQL: a row is the contact's only when its commitment has
the contact among its billing contacts. Anything else is a 404 (not 403), so
ids of other vendors' rows are never confirmed. Functions that change data
flush and never commit; the view commits once.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from flask import abort, current_app, url_for
from flask_login import current_user
from sqlalchemy.orm import joinedload, selectinload
from sqlalchemy.orm.attributes import set_committed_value

from portal import generations, timeutil
from portal.billing import billings, figures, invitations
from portal.core.billing_presentation import G703Totals, g703_totals
from portal.core.statuses import (
    COUNTED_STATUSES,
    EDITABLE_STATUSES,
    BillingStatus,
    CommitmentStatus,
    InvitationStatus,
    PeriodStatus,
)
from portal.extensions import db, rowcount
from portal.locks import lock_rows
from portal.models import (
    Attachment,
    AuditEvent,
    Billing,
    BillingLine,
    BillingPeriod,
    Comment,
    Commitment,
    Contact,
    Invitation,
    LinkRequest,
    LoginLink,
    Project,
    RevisionSnapshot,
    commitment_contacts,
)
from portal.timeutil import display, utcnow
from portal.web import prefetch

#: The contact's billing page (its key is prefetched with the contact).
BILLING_ENDPOINT = "contact.billing_view"

ZERO = Decimal("0.00")
S = BillingStatus

#: Statuses in which the contact sees the reviewer's amounts beside their own.
REVIEWED_STATUSES = (
    S.REVISE_AND_RESUBMIT,
    S.PENDING_OWNER_APPROVAL,
    S.APPROVED,
    S.APPROVED_AS_NOTED,
)


# ------------------------------------------------------------------ ownership


def _mine(commitment_id_column: Any, contact_id: Any) -> Any:
    """SQL: the commitment named by ``commitment_id_column`` has the contact."""
    return sa.exists().where(
        commitment_contacts.c.commitment_id == commitment_id_column,
        commitment_contacts.c.contact_id == contact_id,
    )


def _version_columns(contact_id: Any) -> sa.Select:
    """The columns of :func:`own_billing_version` for the bind parameter
    ``billing_id``: none when the billing is not ``contact_id``'s."""
    return (
        sa.select(
            Billing.id.label("billing_id"),
            Billing.version.label("billing_version"),
            Billing.status.label("billing_status"),
            Commitment.cache_gen.label("commitment_gen"),
            Project.cache_gen.label("project_gen"),
            generations.global_column().label("global_gen"),
            Project.late_submissions_allowed.label("late_allowed"),
            BillingPeriod.status.label("period_status"),
            BillingPeriod.due_date.label("period_due"),
        )
        .join(Commitment, Commitment.id == Billing.commitment_id)
        .join(Project, Project.id == Commitment.project_id)
        .join(BillingPeriod, BillingPeriod.id == Billing.period_id)
        .where(
            Billing.id == sa.bindparam("billing_id"),
            _mine(Billing.commitment_id, contact_id),
        )
    )


@functools.cache
def _version_statement() -> Any:
    """:func:`own_billing_version`'s statement, built once (a hit runs it on
    every view: building and keying it cost more than running it)."""
    return _version_columns(sa.bindparam("contact_id"))


@functools.cache
def version_subquery() -> sa.Subquery:
    """The same columns as a subquery of the contact's own statement
    (portal.web.prefetch: a cached view then runs one statement); its
    ``contact_id`` is that statement's, the contact it loads."""
    return _version_statement().subquery("own_billing")


def version_params(view_args: Mapping[str, Any]) -> dict[str, Any] | None:
    """The prefetch's parameters of a billing page request."""
    billing_id = view_args.get("billing_id")
    return {"billing_id": billing_id} if isinstance(billing_id, int) else None


def own_billing_version(billing_id: int, contact: Contact) -> tuple[Any, ...] | None:
    """What the contact's billing page shows, as change counters (the page
    cache's key, portal.web.fragments), in one Core statement and no ORM
    object: the billing's version and status, its commitment's and project's
    counters, the global counter, and whether the period is closed to the
    contact today. None: not the contact's billing (get_own_billing 404s).
    Read with the contact when the request prefetched it (portal.web.prefetch)."""
    row = prefetch.taken(BILLING_ENDPOINT, contact.id, {"billing_id": billing_id})
    if row is None:
        row = db.session.execute(
            _version_statement(), {"billing_id": billing_id, "contact_id": contact.id}
        ).first()
    if row is None or row[0] is None:
        return None
    _, *counters, late_allowed, period_status, due = row
    closed = billings.closed_for_contacts(
        late_allowed, period_status, due, timeutil.today()
    )
    return (billing_id, *counters, closed)


def get_own_billing(billing_id: int) -> Billing:
    """The signed-in contact's billing.

    :raise 404: unknown id, or a billing of a commitment the contact is not on.
    """
    billing = db.session.scalar(
        sa.select(Billing)
        .where(Billing.id == billing_id, _mine(Billing.commitment_id, current_user.id))
        # What every billing page shows, in this one query (SPEC §11).
        .options(
            joinedload(Billing.commitment).joinedload(Commitment.project),
            joinedload(Billing.commitment).joinedload(Commitment.vendor),
            joinedload(Billing.period),
        )
    )
    if billing is None:
        abort(404)
    billings.proven_member(current_user.id, billing.commitment_id)
    return billing


def get_own_commitment(commitment_id: int) -> Commitment:
    """A commitment the signed-in contact is a billing contact on.

    :raise 404: otherwise.
    """
    commitment = db.session.scalar(
        sa.select(Commitment).where(
            Commitment.id == commitment_id, _mine(Commitment.id, current_user.id)
        )
    )
    if commitment is None:
        abort(404)
    return commitment


def get_own_attachment(attachment_id: int) -> Attachment:
    """An attachment of one of the signed-in contact's billings.

    :raise 404: otherwise.
    """
    attachment = db.session.scalar(
        sa.select(Attachment)
        .join(Billing, Billing.id == Attachment.billing_id)
        .where(
            Attachment.id == attachment_id,
            _mine(Billing.commitment_id, current_user.id),
        )
    )
    if attachment is None:
        abort(404)
    return attachment


def get_own_invitation(invitation_id: int) -> Invitation:
    """An invitation addressed to the signed-in contact.

    :raise 404: otherwise.
    """
    invitation = db.session.scalar(
        sa.select(Invitation).where(
            Invitation.id == invitation_id,
            Invitation.contact_id == current_user.id,
            _mine(Invitation.commitment_id, current_user.id),
        )
    )
    if invitation is None:
        abort(404)
    return invitation


# ------------------------------------------------------------------ links


def mask_email(email: str) -> str:
    """``c••••@example.com``: enough to recognise, not enough to harvest."""
    local, _, domain = email.partition("@")
    if not domain:
        return "•••"
    return f"{local[:1]}{'•' * max(len(local) - 1, 3)}@{domain}"


def contacts_for_email(email: str) -> list[Contact]:
    """Active contacts with this address (case-insensitive), at every vendor."""
    return list(
        db.session.scalars(
            sa.select(Contact)
            .where(
                sa.func.lower(Contact.email) == email.strip().lower(),
                Contact.active.is_(True),
            )
            .order_by(Contact.id)
        )
    )


def fresh_link_throttled(contact: Contact) -> bool:
    """Whether the contact already got the most fresh links allowed this hour."""
    limit = int(current_app.config.get("FRESH_LINKS_PER_HOUR", 3))
    since = utcnow() - timedelta(hours=1)
    # invitations.send_fresh_link records one "link.fresh" event per mail; the
    # count lives in the database, so every worker and machine sees it.
    count = db.session.scalar(
        sa.select(sa.func.count(AuditEvent.id)).where(
            AuditEvent.action == "link.fresh",
            AuditEvent.object_type == "contact",
            AuditEvent.object_id == contact.id,
            AuditEvent.created_at >= since,
        )
    )
    return (count or 0) >= limit


def send_fresh_link(contact: Contact) -> bool:
    """Mail a new link to the address on file unless throttled; True if queued.

    The contact's row is locked before the count, so simultaneous requests
    queue up and exactly ``FRESH_LINKS_PER_HOUR`` get through.
    """
    lock_rows(Contact, Contact.id == contact.id)
    db.session.refresh(contact)
    if not contact.active or fresh_link_throttled(contact):
        return False
    invitations.send_fresh_link(contact)
    return True


def request_links(email: str) -> None:
    """The public form: note the address for the mail worker (no commit).

    The same single INSERT whether the address is a contact's or not, so the
    answer takes the same time; ``portal send-mail`` does the look-up
    (:func:`expand_link_requests`).
    """
    db.session.add(LinkRequest(email=email.strip().lower()[:254]))
    db.session.flush()


def expand_link_requests(limit: int = 200) -> int:
    """Turn noted "send me a link" requests into mails; how many links queued.

    Each request is claimed with a compare-and-set and handled in its own
    transaction (two workers never handle one twice).
    """
    queued = 0
    for _ in range(limit):
        request_id = db.session.scalar(
            sa.select(LinkRequest.id)
            .where(LinkRequest.done_at.is_(None))
            .order_by(LinkRequest.id)
            .limit(1)
        )
        if request_id is None:
            db.session.rollback()
            break
        claimed = db.session.execute(
            sa.update(LinkRequest)
            .where(LinkRequest.id == request_id, LinkRequest.done_at.is_(None))
            .values(done_at=utcnow())
            .execution_options(synchronize_session=False)
        )
        if rowcount(claimed) != 1:
            db.session.rollback()
            continue
        email = db.session.scalar(
            sa.select(LinkRequest.email).where(LinkRequest.id == request_id)
        )
        queued += sum(send_fresh_link(c) for c in contacts_for_email(email or ""))
        db.session.commit()
    return queued


def landing_url(link: LoginLink, billing_id: int | None = None) -> str:
    """Where a link leads: the billing it was mailed about, the invitation's
    billing or commitment, else home."""
    invitation = link.invitation
    home = url_for("contact.index")
    if billing_id is not None:
        billing = db.session.get(Billing, billing_id)
        if billing is not None and billing.commitment in link.contact.commitments:
            return url_for("contact.billing_view", billing_id=billing.id)
    if invitation is None or invitation.revoked_at is not None:
        return home
    commitment = invitation.commitment
    if not billings.contact_may_bill(link.contact, commitment):
        return home
    billing_id = db.session.scalar(
        sa.select(Billing.id).where(
            Billing.commitment_id == commitment.id,
            Billing.period_id == invitation.period_id,
            Billing.status != S.VOID,
        )
    )
    if billing_id is not None:
        return url_for("contact.billing_view", billing_id=billing_id)
    return f"{home}#commitment-{commitment.id}"


# ------------------------------------------------------------------ home page


@dataclass
class BillingRow:
    """A billing in the home page list, with its amounts."""

    billing: Billing
    claimed: Decimal
    approved: Decimal | None
    payment_due: Decimal | None


@dataclass
class CommitmentCard:
    """One commitment on the home page."""

    commitment: Commitment
    open_period: BillingPeriod | None
    current: Billing | None
    can_start: bool
    blocked: str | None
    invitation: Invitation | None
    rows: list[BillingRow] = field(default_factory=list)


@dataclass
class Home:
    """Everything the contact's home page shows."""

    cards: list[CommitmentCard]
    pending: list[Invitation]
    needs_action: list[Billing]


def _sum(raw: int | Decimal | None) -> Decimal:
    if raw is None:
        return ZERO
    if isinstance(raw, Decimal):
        return raw.quantize(Decimal("0.01"))
    return Decimal(int(raw)).scaleb(-2).quantize(Decimal("0.01"))


def home(contact: Contact) -> Home:
    """The contact's commitments, open periods, invitations and billings.

    A fixed number of queries however many commitments or billings there are.
    """
    commitments = list(
        db.session.scalars(
            sa.select(Commitment)
            .where(
                _mine(Commitment.id, contact.id),
                Commitment.status != CommitmentStatus.DRAFT,
            )
            .options(selectinload(Commitment.project), selectinload(Commitment.vendor))
            .join(Project, Project.id == Commitment.project_id)
            .order_by(Project.name, Commitment.number)
        )
    )
    ids = [c.id for c in commitments]
    project_ids = {c.project_id for c in commitments}
    open_periods = {
        p.project_id: p
        for p in db.session.scalars(
            sa.select(BillingPeriod).where(
                BillingPeriod.project_id.in_(project_ids),
                BillingPeriod.status == PeriodStatus.OPEN,
            )
        )
    }
    all_billings = list(
        db.session.scalars(
            sa.select(Billing)
            .where(Billing.commitment_id.in_(ids))
            .options(selectinload(Billing.period))
            .order_by(Billing.commitment_id, Billing.application_number.desc())
        )
    )
    sums = {
        row[0]: row[1:]
        for row in db.session.execute(
            sa.select(
                BillingLine.billing_id,
                sa.func.sum(BillingLine.claimed_work),
                sa.func.sum(BillingLine.claimed_materials),
                sa.func.sum(BillingLine.approved_work),
                sa.func.sum(BillingLine.approved_materials),
                sa.func.sum(BillingLine.claimed_installed),
                sa.func.sum(BillingLine.approved_installed),
            )
            .where(BillingLine.billing_id.in_([b.id for b in all_billings]))
            .group_by(BillingLine.billing_id)
        )
    }
    my_invitations = list(
        db.session.scalars(
            sa.select(Invitation)
            .where(
                Invitation.contact_id == contact.id,
                Invitation.commitment_id.in_(ids),
                Invitation.revoked_at.is_(None),
            )
            .order_by(Invitation.id)
        )
    )
    by_commitment: dict[int, list[Billing]] = {}
    for b in all_billings:
        by_commitment.setdefault(b.commitment_id, []).append(b)
    cards = []
    pending = []
    needs_action = []
    for commitment in commitments:
        period = open_periods.get(commitment.project_id)
        rows = []
        current = None
        for b in by_commitment.get(commitment.id, []):
            cw, cm, aw, am, ci, ai = sums.get(b.id, (None,) * 6)
            reviewed = b.status in REVIEWED_STATUSES
            frozen = (b.approved_figures or {}).get("figures", {}).get("totals", {})
            due = frozen.get("current_payment_due")
            rows.append(
                BillingRow(
                    billing=b,
                    # What the billing adds this period: work + new stored −
                    # installed (installed materials are part of the work).
                    claimed=_sum(cw) + _sum(cm) - _sum(ci),
                    approved=_sum(aw) + _sum(am) - _sum(ai) if reviewed else None,
                    payment_due=(
                        Decimal(due)
                        if due is not None and b.status in COUNTED_STATUSES
                        else None
                    ),
                )
            )
            if period is not None and b.period_id == period.id and b.status != S.VOID:
                current = b
            if b.status in EDITABLE_STATUSES:
                needs_action.append(b)
        invitation = None
        if period is not None:
            invitation = next(
                (
                    i
                    for i in my_invitations
                    if i.commitment_id == commitment.id and i.period_id == period.id
                ),
                None,
            )
            if invitation is not None and invitation.status == InvitationStatus.INVITED:
                pending.append(invitation)
        can_start, blocked = _start_state(commitment, period, current)
        cards.append(
            CommitmentCard(
                commitment=commitment,
                open_period=period,
                current=current,
                can_start=can_start,
                blocked=blocked,
                invitation=invitation,
                rows=rows,
            )
        )
    return Home(cards=cards, pending=pending, needs_action=needs_action)


def _start_state(
    commitment: Commitment, period: BillingPeriod | None, current: Billing | None
) -> tuple[bool, str | None]:
    if current is not None:
        return False, None
    if commitment.status != CommitmentStatus.APPROVED:
        return False, "This commitment is not open for billing."
    if period is None:
        return False, "There is no open billing period on this project right now."
    if billings.period_closed_for_contacts(period):
        return False, (
            "The due date of this period has passed. Please contact the "
            "billing administrator if you still need to bill."
        )
    return True, None


def open_period(project_id: int) -> BillingPeriod | None:
    """The project's open billing period, if any."""
    return db.session.scalar(
        sa.select(BillingPeriod).where(
            BillingPeriod.project_id == project_id,
            BillingPeriod.status == PeriodStatus.OPEN,
        )
    )


def start_billing(contact: Contact, commitment: Commitment) -> tuple[Billing, bool]:
    """A draft for the open period (or the live one that exists); True if created.

    Starting to bill accepts the contact's invitation for that period.
    """
    period = open_period(commitment.project_id)
    if period is None:
        raise billings.BillingError(
            "There is no open billing period on this project right now."
        )
    existing = db.session.scalar(
        sa.select(Billing).where(
            Billing.commitment_id == commitment.id,
            Billing.period_id == period.id,
            Billing.status != S.VOID,
        )
    )
    if existing is not None:
        return existing, False
    billing = billings.create_billing(commitment, period, contact)
    invitation = db.session.scalar(
        sa.select(Invitation).where(
            Invitation.period_id == period.id,
            Invitation.commitment_id == commitment.id,
            Invitation.contact_id == contact.id,
            Invitation.status == InvitationStatus.INVITED,
            Invitation.revoked_at.is_(None),
        )
    )
    if invitation is not None:
        invitations.answer(invitation, contact, True)
    return billing, True


# ------------------------------------------------------------------ billing page


@dataclass
class LineView:
    """One G703 row: claimed figures, and the reviewer's where shown."""

    row: figures.Row
    approved: figures.Row | None

    @property
    def sov(self) -> Any:
        return self.row.sov

    @property
    def line(self) -> BillingLine | None:
        return self.row.line

    @property
    def changed(self) -> bool:
        """The reviewer approved a different amount than was claimed."""
        if self.approved is None:
            return False
        a, c = self.approved.figures, self.row.figures
        return (a.work_this_period, a.materials_stored) != (
            c.work_this_period,
            c.materials_stored,
        )


@dataclass
class RevisionEntry:
    """One submission of the billing and what changed since the one before."""

    revision: int
    submitted_at: datetime
    work: Decimal
    materials: Decimal
    changes: list[str]


@dataclass
class BillingPage:
    """Everything the billing page shows."""

    billing: Billing
    project: Project
    editable: bool
    reviewed: bool
    lines: list[LineView]
    claimed: figures.Sheet
    approved: figures.Sheet | None
    claimed_columns: G703Totals
    approved_columns: G703Totals | None
    released_before: Decimal
    late: bool
    revisions: list[RevisionEntry]
    revise_count: int


def editable(billing: Billing, contact: Contact) -> bool:
    """The contact may change the amounts now (draft or revise & resubmit)."""
    return billing.status in EDITABLE_STATUSES and billings.contact_may_bill(
        contact, billing.commitment
    )


def billing_page(billing: Billing, contact: Contact) -> BillingPage:
    """The G703 rows, G702 totals (claimed and approved), history of a billing."""
    reviewed = billing.status in REVIEWED_STATUSES
    if reviewed:
        claimed, approved = figures.sheets(billing, "claimed", "approved")
    else:
        (claimed,), approved = figures.sheets(billing, "claimed"), None
    # The comments with their authors, in one statement (not one per author).
    set_committed_value(
        billing,
        "comments",
        list(
            db.session.scalars(
                sa.select(Comment)
                .where(Comment.billing_id == billing.id)
                .options(
                    joinedload(Comment.author_user), joinedload(Comment.author_contact)
                )
                .order_by(Comment.id)
            )
        ),
    )
    approved_rows = {r.sov.id: r for r in approved.rows} if approved else {}
    lines = [LineView(row, approved_rows.get(row.sov.id)) for row in claimed.rows]
    totals = claimed.totals
    return BillingPage(
        billing=billing,
        project=billing.commitment.project,
        editable=editable(billing, contact),
        reviewed=reviewed,
        lines=lines,
        claimed=claimed,
        approved=approved,
        claimed_columns=g703_totals(r.figures for r in claimed.rows),
        approved_columns=(
            g703_totals(r.figures for r in approved.rows) if approved else None
        ),
        released_before=max(
            totals.retainage_released_to_date - billing.retainage_released, ZERO
        ),
        late=billings.period_closed_for_contacts(billing.period),
        revisions=revision_history(billing),
        revise_count=sum(
            1 for lv in lines if lv.line is not None and lv.line.status == "revise"
        ),
    )


def revision_history(billing: Billing) -> list[RevisionEntry]:
    """Each submission, newest first, with the changes from the one before."""
    figures.load_sov_lines(billing)
    labels = {
        bl.sov_line_id: f"Line {bl.sov_line.line_number} {bl.sov_line.description}"
        for bl in billing.lines
    }
    snapshots: list[RevisionSnapshot] = sorted(
        billing.snapshots, key=lambda s: s.revision
    )
    entries = []
    previous: dict[str, Any] | None = None
    for snap in snapshots:
        data = snap.data or {}
        lines = data.get("lines", {})
        work = sum((Decimal(v.get("work", "0")) for v in lines.values()), ZERO)
        materials = sum(
            (Decimal(v.get("materials", "0")) for v in lines.values()), ZERO
        )
        changes: list[str] = []
        if previous is None:
            changes.append("First submission.")
        else:
            changes = _diff(previous, data, labels)
        entries.append(
            RevisionEntry(snap.revision, snap.submitted_at, work, materials, changes)
        )
        previous = data
    return list(reversed(entries))


def _diff(
    old: dict[str, Any], new: dict[str, Any], labels: dict[int, str]
) -> list[str]:
    changes = []
    old_lines, new_lines = old.get("lines", {}), new.get("lines", {})

    def key(sov_id: str) -> tuple[int, str]:
        return (0, f"{int(sov_id):012d}") if sov_id.isdigit() else (1, sov_id)

    for sov_id in sorted(set(old_lines) | set(new_lines), key=key):
        a = old_lines.get(sov_id, {"work": "0.00", "materials": "0.00"})
        b = new_lines.get(sov_id, {"work": "0.00", "materials": "0.00"})
        label = (
            labels.get(int(sov_id), f"Line {sov_id}") if sov_id.isdigit() else sov_id
        )
        for name, text in (
            ("work", "work this period"),
            ("materials", "new materials stored"),
            ("installed", "stored materials installed"),
        ):
            before, after = Decimal(a.get(name, "0")), Decimal(b.get(name, "0"))
            if before != after:
                changes.append(f"{label}: {text} {before:,.2f} → {after:,.2f}")
    if old.get("vendor_invoice_number") != new.get("vendor_invoice_number"):
        changes.append(
            "Invoice number "
            f"{old.get('vendor_invoice_number') or '(none)'} → "
            f"{new.get('vendor_invoice_number') or '(none)'}"
        )
    if Decimal(old.get("retainage_released") or "0") != Decimal(
        new.get("retainage_released") or "0"
    ):
        changes.append(
            "Release requested "
            f"{Decimal(old.get('retainage_released') or '0'):,.2f} → "
            f"{Decimal(new.get('retainage_released') or '0'):,.2f}"
        )
    if old.get("notes") != new.get("notes"):
        changes.append("Notes changed.")
    return changes or ["Resubmitted without changes."]


# ------------------------------------------------------------------ display


def local_time(value: datetime | None, project: Project | None = None) -> str:
    """A timestamp in the project's time zone, e.g. ``Mar 04, 2026 14:05 EST``."""
    return display(value, project.time_zone if project is not None else None)


def term_for(billing: Billing, key: str) -> str:
    """A terminology label in the billing's project's dialect."""
    from portal.web.templating import term

    return term(key, billing.commitment.project)
