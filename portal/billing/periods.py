"""Billing periods (SPEC §2): create one or a series, open, close, delete empty ones.

Periods of a project never overlap; one is open at a time (opening one closes
the open one); a period with billings is never deleted.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, timedelta

import sqlalchemy as sa

from portal import audit
from portal.core.statuses import PeriodStatus
from portal.extensions import db
from portal.locks import lock_rows
from portal.models import Billing, BillingPeriod, ClientClaim, Invitation, Project, User
from portal.validation import FieldErrors, InputError, flush_unique

PERIOD_FIELDS = [
    "sequence",
    "start_date",
    "end_date",
    "due_date",
    "billing_date",
    "status",
]
MAX_SERIES = 60


@dataclass(frozen=True)
class PeriodDates:
    """The dates of one period."""

    start_date: date
    end_date: date
    due_date: date
    billing_date: date


def check_dates(dates: PeriodDates) -> dict[str, str]:
    """Field errors for dates in the wrong order."""
    errors: dict[str, str] = {}
    if dates.end_date < dates.start_date:
        errors["end_date"] = "The end date must be on or after the start date."
    if dates.due_date < dates.start_date:
        errors["due_date"] = "The due date must be on or after the start date."
    if dates.billing_date < dates.start_date:
        errors["billing_date"] = "The billing date must be on or after the start date."
    return errors


def overlapping(
    project: Project, start: date, end: date, exclude_id: int | None = None
) -> BillingPeriod | None:
    """The first existing period of ``project`` that overlaps [start, end]."""
    stmt = (
        sa.select(BillingPeriod)
        .where(
            BillingPeriod.project_id == project.id,
            BillingPeriod.start_date <= end,
            BillingPeriod.end_date >= start,
        )
        .order_by(BillingPeriod.start_date)
        .limit(1)
    )
    if exclude_id is not None:
        stmt = stmt.where(BillingPeriod.id != exclude_id)
    return db.session.scalars(stmt).first()


def _overlap_message(other: BillingPeriod) -> str:
    return (
        f"This overlaps period #{other.sequence} "
        f"({other.start_date.isoformat()} to {other.end_date.isoformat()}). "
        "Periods of a project never overlap."
    )


def open_period_of(project: Project) -> BillingPeriod | None:
    """The project's open period, if any."""
    return db.session.scalars(
        sa.select(BillingPeriod).where(
            BillingPeriod.project_id == project.id,
            BillingPeriod.status == PeriodStatus.OPEN,
        )
    ).first()


def _next_sequence(project: Project) -> int:
    top = db.session.scalar(
        sa.select(sa.func.max(BillingPeriod.sequence)).where(
            BillingPeriod.project_id == project.id
        )
    )
    return (top or 0) + 1


def create_periods(
    actor: User, project: Project, series: list[PeriodDates], open_first: bool
) -> list[BillingPeriod]:
    """Add periods (one or a series) after checking order and overlaps.

    With ``open_first`` the first new period opens and the open one closes.
    """
    if not series:
        raise InputError("No periods to create.")
    for dates in series:
        errors = check_dates(dates)
        if errors:
            raise FieldErrors(errors)
    ordered = sorted(series, key=lambda d: d.start_date)
    for earlier, later in zip(ordered, ordered[1:], strict=False):
        if later.start_date <= earlier.end_date:
            raise FieldErrors({"start_date": "The new periods overlap each other."})
    for dates in ordered:
        other = overlapping(project, dates.start_date, dates.end_date)
        if other is not None:
            raise FieldErrors({"start_date": _overlap_message(other)})
    sequence = _next_sequence(project)
    created: list[BillingPeriod] = []
    for dates in ordered:
        period = BillingPeriod(
            project_id=project.id,
            sequence=sequence,
            start_date=dates.start_date,
            end_date=dates.end_date,
            due_date=dates.due_date,
            billing_date=dates.billing_date,
            status=PeriodStatus.CLOSED,
        )
        db.session.add(period)
        created.append(period)
        sequence += 1
    flush_unique({"start_date": "Someone added a period meanwhile. Try again."})
    for period in created:
        audit.record(
            actor,
            "period.create",
            period,
            after=audit.snapshot(period, PERIOD_FIELDS),
        )
    if open_first:
        open_period(actor, created[0])
    db.session.flush()
    return created


def update_period(actor: User, period: BillingPeriod, dates: PeriodDates) -> None:
    """Change a period's dates (never into an overlap)."""
    errors = check_dates(dates)
    if errors:
        raise FieldErrors(errors)
    other = overlapping(
        period.project, dates.start_date, dates.end_date, exclude_id=period.id
    )
    if other is not None:
        raise FieldErrors({"start_date": _overlap_message(other)})
    if _billing_count(period) and (
        dates.start_date != period.start_date or dates.end_date != period.end_date
    ):
        raise FieldErrors(
            {"start_date": "The dates of a period with billings can't move."}
        )
    before = audit.snapshot(period, PERIOD_FIELDS)
    period.start_date = dates.start_date
    period.end_date = dates.end_date
    period.due_date = dates.due_date
    period.billing_date = dates.billing_date
    db.session.flush()
    after = audit.snapshot(period, PERIOD_FIELDS)
    if before != after:
        audit.record(actor, "period.update", period, before=before, after=after)
    db.session.flush()


def open_period(actor: User, period: BillingPeriod) -> BillingPeriod | None:
    """Open ``period``; the project's open period closes. Returns the one closed.

    The project's row is locked first: two admins opening periods of one
    project at once are served one after the other, as two clicks in a row
    would be (issue 17; the unique "one open period" index never fires).
    """
    lock_rows(Project, Project.id == period.project_id)
    db.session.refresh(period)
    if period.status == PeriodStatus.OPEN:
        raise InputError(f"Period #{period.sequence} is already open.")
    current = open_period_of(period.project)
    if current is not None:
        close_period(actor, current)
    period.status = PeriodStatus.OPEN
    db.session.flush()
    audit.record(
        actor,
        "period.open",
        period,
        before={"status": PeriodStatus.CLOSED},
        after={"status": PeriodStatus.OPEN},
    )
    return current


def close_period(actor: User, period: BillingPeriod) -> None:
    """Close an open period: contacts can no longer create or submit in it."""
    if period.status != PeriodStatus.OPEN:
        raise InputError(f"Period #{period.sequence} is already closed.")
    period.status = PeriodStatus.CLOSED
    db.session.flush()
    audit.record(
        actor,
        "period.close",
        period,
        before={"status": PeriodStatus.OPEN},
        after={"status": PeriodStatus.CLOSED},
    )


def _billing_count(period: BillingPeriod) -> int:
    return (
        db.session.scalar(
            sa.select(sa.func.count(Billing.id)).where(Billing.period_id == period.id)
        )
        or 0
    )


def delete_period(actor: User, period: BillingPeriod) -> None:
    """Delete a period that has no billings, invitations or client claims."""
    if _billing_count(period):
        raise InputError(
            f"Period #{period.sequence} has billings and is never deleted; "
            "close it instead."
        )
    invited = db.session.scalar(
        sa.select(sa.func.count(Invitation.id)).where(Invitation.period_id == period.id)
    )
    claims = db.session.scalar(
        sa.select(sa.func.count(ClientClaim.id)).where(
            ClientClaim.period_id == period.id
        )
    )
    if invited or claims:
        raise InputError(
            f"Period #{period.sequence} has invitations or client claims; "
            "close it instead."
        )
    audit.record(
        actor,
        "period.delete",
        period,
        before=audit.snapshot(period, PERIOD_FIELDS),
    )
    db.session.delete(period)
    db.session.flush()


# ------------------------------------------------------------------ series


def _month_end(day: date) -> date:
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])


def series_dates(
    kind: str,
    start: date,
    count: int,
    *,
    length_days: int | None = None,
    due_days_before_end: int = 0,
) -> list[PeriodDates]:
    """Dates of ``count`` periods from ``start``: monthly (calendar months),
    weekly, or ``custom`` (``length_days`` each).

    The due date is ``due_days_before_end`` days before each end (never before
    the start); the billing date is the end date.
    """
    if not 1 <= count <= MAX_SERIES:
        raise FieldErrors({"count": f"Create from 1 to {MAX_SERIES} periods at once."})
    out: list[PeriodDates] = []
    begin = start
    for _ in range(count):
        if kind == "monthly":
            end = _month_end(begin)
        elif kind == "weekly":
            end = begin + timedelta(days=6)
        elif kind == "custom":
            if not length_days or length_days < 1:
                raise FieldErrors({"length_days": "Enter the length in days."})
            end = begin + timedelta(days=length_days - 1)
        else:
            raise FieldErrors({"kind": "Choose monthly, weekly or custom."})
        due = max(begin, end - timedelta(days=due_days_before_end))
        out.append(PeriodDates(begin, end, due, end))
        begin = end + timedelta(days=1)
    return out
