"""What the back office shows at a glance: the period dashboard and the home page.

Every function here runs a fixed number of aggregate queries, however many
commitments, contacts, invitations or billings there are (SPEC §11).
"""

from __future__ import annotations

import threading
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from cachetools import LRUCache
from flask import Flask, current_app
from sqlalchemy.orm import contains_eager, defer, joinedload, selectinload
from sqlalchemy.orm.attributes import set_committed_value

from portal import timeutil
from portal.billing import figures
from portal.billing.figures import _cents
from portal.core import money
from portal.core.billing_presentation import (
    BoardFigures,
    board_summary,
    board_totals,
    figures_side,
    period_past_due,
)
from portal.core.statuses import (
    BillingStatus,
    ClaimStatus,
    CommitmentStatus,
    InvitationStatus,
    OutboxStatus,
    PeriodStatus,
)
from portal.extensions import db
from portal.models import (
    Billing,
    BillingLine,
    BillingPeriod,
    ClientClaim,
    Commitment,
    Contact,
    Invitation,
    OutboxMessage,
    Project,
    commitment_contacts,
)

ZERO = Decimal("0.00")

#: Dashboard states before a billing exists, in SPEC §2's words.
NO_CONTACT = "no_billing_contact"
NOT_INVITED = "not_invited"
#: States in which a commitment still owes its billing for the period.
WAITING_STATES = {
    NOT_INVITED,
    InvitationStatus.INVITED.value,
    InvitationStatus.ACCEPTED.value,
    BillingStatus.DRAFT.value,
}


def billing_sums(billing_ids: list[int]) -> dict[int, tuple[Decimal, Decimal]]:
    """(claimed, approved) amount of each billing this period, in one query:
    work + materials newly stored − stored materials installed, i.e. what the
    billing adds to G (installed materials are part of the work, docs/money.md)."""
    if not billing_ids:
        return {}
    rows = db.session.execute(
        sa.select(
            BillingLine.billing_id,
            sa.func.sum(BillingLine.claimed_work),
            sa.func.sum(BillingLine.claimed_materials),
            sa.func.sum(BillingLine.approved_work),
            sa.func.sum(BillingLine.approved_materials),
            sa.func.sum(BillingLine.claimed_installed),
            sa.func.sum(BillingLine.approved_installed),
        )
        .where(BillingLine.billing_id.in_(billing_ids))
        .group_by(BillingLine.billing_id)
    ).all()
    return {
        row[0]: (
            _cents(row[1]) + _cents(row[2]) - _cents(row[5]),
            _cents(row[3]) + _cents(row[4]) - _cents(row[6]),
        )
        for row in rows
    }


@dataclass(frozen=True)
class Decline:
    """A contact's declined invitation: who, why and when."""

    invitation_id: int
    commitment_id: int
    contact_name: str
    reason: str
    answered_at: datetime | None


def declines_for(period_id: int) -> dict[int, list[Decline]]:
    """commitment id → the period's declined (not withdrawn) invitations, one query."""
    out: dict[int, list[Decline]] = defaultdict(list)
    for inv_id, cid, name, reason, at in db.session.execute(
        sa.select(
            Invitation.id,
            Invitation.commitment_id,
            Contact.name,
            Invitation.decline_reason,
            Invitation.answered_at,
        )
        .join(Contact, Contact.id == Invitation.contact_id)
        .where(
            Invitation.period_id == period_id,
            Invitation.status == InvitationStatus.DECLINED,
            Invitation.revoked_at.is_(None),
        )
        .order_by(Invitation.answered_at, Invitation.id)
    ):
        out[cid].append(Decline(inv_id, cid, name, reason, at))
    return dict(out)


def open_declines(
    *,
    project_id: int | None = None,
    period_id: int | None = None,
    vendor_id: int | None = None,
    limit: int = 5,
) -> tuple[list[Invitation], int]:
    """The ``limit`` newest declined (not withdrawn) invitations of open
    periods, or of ``period_id`` whatever its state, and how many there are in
    all; one query (the billing list: its panel shows a few, flat however many
    declines a project has gathered, and links to all of them)."""
    stmt = (
        sa.select(Invitation, sa.func.count().over())
        .join(BillingPeriod, BillingPeriod.id == Invitation.period_id)
        .join(Commitment, Commitment.id == Invitation.commitment_id)
        # The period and commitment from the joins the filters need (a second
        # join of each only made the plan longer: ~4 ms of planning a view,
        # since every request's ROLLBACK drops psycopg's prepared statements).
        .options(
            joinedload(Invitation.contact),
            contains_eager(Invitation.period),
            contains_eager(Invitation.commitment).joinedload(Commitment.vendor),
            contains_eager(Invitation.commitment).joinedload(Commitment.project),
        )
        .where(
            Invitation.status == InvitationStatus.DECLINED,
            Invitation.revoked_at.is_(None),
        )
        .order_by(Invitation.answered_at.desc().nulls_last(), Invitation.id.desc())
        .limit(limit)
    )
    if period_id:
        stmt = stmt.where(Invitation.period_id == period_id)
    else:
        stmt = stmt.where(BillingPeriod.status == PeriodStatus.OPEN)
    if project_id:
        stmt = stmt.where(Commitment.project_id == project_id)
    if vendor_id:
        stmt = stmt.where(Commitment.vendor_id == vendor_id)
    rows = db.session.execute(stmt).all()
    return [row[0] for row in rows], (rows[0][1] if rows else 0)


#: (billing id, status, its commitment's counter, its project's) → the board's
#: four figures of that billing, kept per worker and app (``app.extensions``):
#: a board rendered again after one commitment changed sums only that
#: commitment's billing, not every billing of the period (issue 16 item 3).
#: Every write of a commitment's billings, lines, SOV, carries or change orders
#: gives its counter a new random value (portal.generations), so a key never
#: comes back with other figures. ~0.5 kB an entry.
MEMO_ENTRIES = 20_000
_MEMO = "board_summaries"
_MEMO_LOCK = threading.Lock()


def _memo(app: Flask) -> LRUCache[tuple[Any, ...], money.SummaryFigures]:
    with _MEMO_LOCK:
        memo = app.extensions.get(_MEMO)
        if memo is None:
            memo = app.extensions[_MEMO] = LRUCache(maxsize=MEMO_ENTRIES)
        return memo


def clear_memo(app: Flask) -> None:
    """Forget every kept board figure (tests compare with a cold worker)."""
    memo = _memo(app)
    with _MEMO_LOCK:
        memo.clear()


def board_summaries(
    billings: list[Billing], generations: dict[int, tuple[int, int]]
) -> dict[int, money.SummaryFigures]:
    """billing id → :func:`figures.summaries_for`'s figures on the side the
    board shows, those of unchanged billings from this worker's memo.

    ``generations``: commitment id → (its counter, its project's), read in this
    request's own statement (a billing of a commitment not in it is computed).
    Off with the page cache (``FRAGMENT_CACHE_BYTES`` 0: what a cold worker
    pays)."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    if int(app.config["FRAGMENT_CACHE_BYTES"]) <= 0:
        return _computed(billings)
    memo = _memo(app)
    out: dict[int, money.SummaryFigures] = {}
    todo: list[Billing] = []
    keys: dict[int, tuple[Any, ...] | None] = {}
    with _MEMO_LOCK:
        for b in billings:
            counters = generations.get(b.commitment_id)
            key = (b.id, b.status, *counters) if counters else None
            found = memo.get(key) if key else None
            if found is None:
                keys[b.id] = key
                todo.append(b)
            else:
                out[b.id] = found
    if todo:
        fresh = _computed(todo)
        with _MEMO_LOCK:
            for billing_id, summary in fresh.items():
                key = keys[billing_id]
                if key is not None:
                    memo[key] = summary
        out.update(fresh)
    return out


def _computed(billings: list[Billing]) -> dict[int, money.SummaryFigures]:
    """:func:`figures.summaries_for` on the board's side, the frozen figures of
    ``billings`` that were loaded without them read in one statement."""
    unloaded = [b for b in billings if "approved_figures" in sa.inspect(b).unloaded]
    if unloaded:
        frozen: dict[int, Any] = dict(
            db.session.execute(
                sa.select(Billing.id, Billing.approved_figures).where(
                    Billing.id.in_([b.id for b in unloaded])
                )
            ).all()
        )
        for b in unloaded:
            set_committed_value(b, "approved_figures", frozen.get(b.id))
    return figures.summaries_for(billings, lambda b: figures_side(b.status))


@dataclass
class DashboardRow:
    """One commitment's state for the period."""

    commitment: Commitment
    state: str
    contacts: int
    invited: int = 0
    accepted: int = 0
    declined: int = 0
    billing: Billing | None = None
    #: G702/G703 figures of the billing (none for a void one)
    money: BoardFigures | None = None
    last_sent: datetime | None = None
    last_reminded: datetime | None = None
    overdue: bool = False
    declines: list[Decline] = field(default_factory=list)

    @property
    def contacts_summary(self) -> str:
        """ "2 contacts · 1 invited · 1 declined": only the non-zero parts."""
        parts = [f"{self.contacts} contact{'' if self.contacts == 1 else 's'}"]
        for n, word in (
            (self.invited, "invited"),
            (self.accepted, "accepted"),
            (self.declined, "declined"),
        ):
            if n:
                parts.append(f"{n} {word}")
        return " · ".join(parts)

    @property
    def can_invite(self) -> bool:
        return self.contacts > self.invited + self.accepted + self.declined

    @property
    def can_remind(self) -> bool:
        return (self.invited + self.accepted) > 0 and self.state in WAITING_STATES


@dataclass
class PeriodDashboard:
    """Every commitment of the project with its state for ``period``, and totals."""

    period: BillingPeriod
    rows: list[DashboardRow]
    totals: dict[str, Decimal] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    overdue: int = 0
    #: every billing of the period, void ones too (an ever-billed period was opened)
    billing_count: int = 0


def period_dashboard(
    period: BillingPeriod,
    today: date | None = None,
    state: str | None = None,
    *,
    frozen: bool = True,
) -> PeriodDashboard:
    """The period dashboard (SPEC §2's states), in a fixed number of queries.

    ``frozen=False`` leaves the billings' frozen figures unloaded (the board
    page, which shows only their board figures)."""
    today = today or timeutil.today()
    # The counters as columns, not the objects' attributes: those may predate
    # a bump earlier in this session (portal.generations bumps in Core).
    found = db.session.execute(
        sa.select(Commitment, Commitment.cache_gen, Project.cache_gen)
        .join(Project, Project.id == Commitment.project_id)
        .options(joinedload(Commitment.vendor))
        .where(
            Commitment.project_id == period.project_id,
            Commitment.status == CommitmentStatus.APPROVED,
        )
        .order_by(Commitment.number)
    ).all()
    commitments = [row[0] for row in found]
    generations = {row[0].id: (row[1], row[2]) for row in found}
    contact_counts: dict[int, int] = dict(
        db.session.execute(
            sa.select(commitment_contacts.c.commitment_id, sa.func.count())
            .join(Contact, Contact.id == commitment_contacts.c.contact_id)
            .join(Commitment, Commitment.id == commitment_contacts.c.commitment_id)
            .where(Contact.active.is_(True), Commitment.project_id == period.project_id)
            .group_by(commitment_contacts.c.commitment_id)
        ).all()
    )
    invitation_stats: dict[int, dict[str, Any]] = defaultdict(dict)
    for cid, status, n, sent, reminded in db.session.execute(
        sa.select(
            Invitation.commitment_id,
            Invitation.status,
            sa.func.count(),
            sa.func.max(Invitation.sent_at),
            sa.func.max(Invitation.last_reminded_at),
        )
        .where(Invitation.period_id == period.id, Invitation.revoked_at.is_(None))
        .group_by(Invitation.commitment_id, Invitation.status)
    ):
        stats = invitation_stats[cid]
        stats[status] = n
        stats["sent"] = max(filter(None, [stats.get("sent"), sent]), default=None)
        stats["reminded"] = max(
            filter(None, [stats.get("reminded"), reminded]), default=None
        )
    # The board page leaves out the frozen figures (large JSON, parsed for
    # nothing when the memo holds the billing's board figures): board_summaries
    # reads them for the billings it computes, in one statement. Callers that
    # go on to read the billings' figures (the close checklist) keep them.
    of_period = sa.select(Billing).where(Billing.period_id == period.id)
    if not frozen:
        of_period = of_period.options(defer(Billing.approved_figures))
    billings = db.session.scalars(of_period.order_by(Billing.id)).all()
    live: dict[int, Billing] = {}
    void: dict[int, Billing] = {}
    for b in billings:
        (void if b.status == BillingStatus.VOID else live)[b.commitment_id] = b
    # The four G702/G703 figures of figures_for (frozen once decided), summed
    # from Core rows: the full engine over every line of ~600 billings is what
    # made the page miss its target (issue 16).
    figs = board_summaries(
        [b for b in live.values() if b.status != BillingStatus.VOID], generations
    )
    declines = declines_for(period.id)
    past_due = period_past_due(period.status, period.due_date, today)
    rows: list[DashboardRow] = []
    counts: dict[str, int] = defaultdict(int)
    overdue = 0
    for c in commitments:
        stats = invitation_stats.get(c.id, {})
        row = DashboardRow(
            commitment=c,
            state=NOT_INVITED,
            contacts=contact_counts.get(c.id, 0),
            invited=stats.get(InvitationStatus.INVITED, 0),
            accepted=stats.get(InvitationStatus.ACCEPTED, 0),
            declined=stats.get(InvitationStatus.DECLINED, 0),
            last_sent=stats.get("sent"),
            last_reminded=stats.get("reminded"),
            declines=declines.get(c.id, []),
        )
        billing = live.get(c.id) or void.get(c.id)
        if billing is not None:
            row.billing = billing
            row.state = billing.status
            if billing.id in figs:
                side = figures_side(billing.status)
                row.money = board_summary(figs[billing.id], side)
        elif row.accepted:
            row.state = InvitationStatus.ACCEPTED
        elif row.invited:
            row.state = InvitationStatus.INVITED
        elif row.declined:
            row.state = InvitationStatus.DECLINED
        elif row.contacts == 0:
            row.state = NO_CONTACT
        row.overdue = past_due and row.state in WAITING_STATES
        overdue += row.overdue
        counts[row.state] += 1
        if state and row.state != state and not (state == "overdue" and row.overdue):
            continue
        rows.append(row)
    totals = board_totals(row.money for row in rows if row.money is not None)
    return PeriodDashboard(
        period, rows, totals, dict(counts), overdue, billing_count=len(billings)
    )


# ------------------------------------------------------------------ home


@dataclass
class Attention:
    """The home page: what needs attention now."""

    under_review: list[Billing]
    under_review_count: int
    revise: list[Billing]
    revise_count: int
    owner: int
    overdue: list[tuple[BillingPeriod, Commitment]]
    overdue_count: int
    claim_drafts: list[ClientClaim]
    claim_draft_count: int
    open_periods: list[BillingPeriod]
    failed_mail: int
    sums: dict[int, tuple[Decimal, Decimal]]


def _billing_page(status: str, limit: int) -> tuple[list[Billing], int]:
    stmt = sa.select(Billing).where(Billing.status == status)
    count = db.session.scalar(sa.select(sa.func.count()).select_from(stmt.subquery()))
    rows = db.session.scalars(
        stmt.options(
            joinedload(Billing.commitment).joinedload(Commitment.vendor),
            joinedload(Billing.commitment).joinedload(Commitment.project),
            joinedload(Billing.period),
        )
        .order_by(Billing.submitted_at.asc().nulls_last(), Billing.id)
        .limit(limit)
    ).all()
    return list(rows), count or 0


def overdue_query(today: date) -> sa.Select:
    """(period, commitment) pairs past the due date of an open period with no
    submitted billing, for commitments that have an active billing contact."""
    submitted = (
        sa.select(Billing.id)
        .where(
            Billing.commitment_id == Commitment.id,
            Billing.period_id == BillingPeriod.id,
            Billing.status.notin_([BillingStatus.DRAFT, BillingStatus.VOID]),
        )
        .exists()
    )
    has_contact = (
        sa.select(commitment_contacts.c.contact_id)
        .join(Contact, Contact.id == commitment_contacts.c.contact_id)
        .where(
            commitment_contacts.c.commitment_id == Commitment.id,
            Contact.active.is_(True),
        )
        .exists()
    )

    def invitations_in(*statuses: str) -> sa.Exists:
        return (
            sa.select(Invitation.id)
            .where(
                Invitation.commitment_id == Commitment.id,
                Invitation.period_id == BillingPeriod.id,
                Invitation.revoked_at.is_(None),
                Invitation.status.in_(statuses),
            )
            .exists()
        )

    # Like the period dashboard: a commitment whose contacts all declined is
    # "declined", not overdue.
    all_declined = invitations_in(InvitationStatus.DECLINED) & ~invitations_in(
        InvitationStatus.INVITED, InvitationStatus.ACCEPTED
    )
    return (
        sa.select(BillingPeriod, Commitment)
        .join(Commitment, Commitment.project_id == BillingPeriod.project_id)
        .where(
            BillingPeriod.status == PeriodStatus.OPEN,
            BillingPeriod.due_date < today,
            Commitment.status == CommitmentStatus.APPROVED,
            has_contact,
            ~submitted,
            ~all_declined,
        )
    )


def attention(today: date | None = None, limit: int = 8) -> Attention:
    """Counts and the first few items of each pile, in a fixed number of queries."""
    today = today or timeutil.today()
    under_review, under_review_count = _billing_page(BillingStatus.UNDER_REVIEW, limit)
    revise, revise_count = _billing_page(BillingStatus.REVISE_AND_RESUBMIT, limit)
    owner = db.session.scalar(
        sa.select(sa.func.count(Billing.id)).where(
            Billing.status == BillingStatus.PENDING_OWNER_APPROVAL
        )
    )
    overdue_stmt = overdue_query(today)
    overdue_count = db.session.scalar(
        sa.select(sa.func.count()).select_from(overdue_stmt.subquery())
    )
    overdue_rows = db.session.execute(
        overdue_stmt.options(
            joinedload(BillingPeriod.project), joinedload(Commitment.vendor)
        )
        .order_by(BillingPeriod.due_date, Commitment.number)
        .limit(limit)
    ).all()
    claim_stmt = sa.select(ClientClaim).where(ClientClaim.status == ClaimStatus.DRAFT)
    claim_count = db.session.scalar(
        sa.select(sa.func.count()).select_from(claim_stmt.subquery())
    )
    claims = db.session.scalars(
        claim_stmt.options(
            joinedload(ClientClaim.contract), joinedload(ClientClaim.period)
        )
        .order_by(ClientClaim.created_at)
        .limit(limit)
    ).all()
    open_periods = db.session.scalars(
        sa.select(BillingPeriod)
        .options(joinedload(BillingPeriod.project))
        .where(BillingPeriod.status == PeriodStatus.OPEN)
        .order_by(BillingPeriod.due_date)
    ).all()
    failed = db.session.scalar(
        sa.select(sa.func.count(OutboxMessage.id)).where(
            OutboxMessage.status == OutboxStatus.FAILED
        )
    )
    sums = billing_sums([b.id for b in under_review + revise])
    return Attention(
        under_review=under_review,
        under_review_count=under_review_count,
        revise=revise,
        revise_count=revise_count,
        owner=owner or 0,
        overdue=[(p, c) for p, c in overdue_rows],
        overdue_count=overdue_count or 0,
        claim_drafts=list(claims),
        claim_draft_count=claim_count or 0,
        open_periods=list(open_periods),
        failed_mail=failed or 0,
        sums=sums,
    )


def project_options() -> list[Project]:
    """Every project, by number (filter drop-downs)."""
    return list(db.session.scalars(sa.select(Project).order_by(Project.number)))


def period_options(project_id: int | None = None) -> list[BillingPeriod]:
    """Periods for filter drop-downs (with their projects loaded)."""
    stmt = (
        sa.select(BillingPeriod)
        .options(selectinload(BillingPeriod.project))
        .order_by(BillingPeriod.project_id, BillingPeriod.sequence.desc())
    )
    if project_id:
        stmt = stmt.where(BillingPeriod.project_id == project_id)
    return list(db.session.scalars(stmt))
