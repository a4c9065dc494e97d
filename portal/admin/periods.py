"""Billing periods: list, create one or a series, open, close, delete empty ones;
the period dashboard with bulk Invite to Bill and reminders."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import sqlalchemy as sa
from flask import (
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from sqlalchemy.orm import contains_eager, joinedload

from portal import generations, timeutil
from portal.accounts.auth import role_required
from portal.admin import bp
from portal.admin.common import (
    ADMINS,
    READERS,
    arg_id,
    arg_text,
    form_page,
    me,
    page_arg,
    per_page,
)
from portal.admin.forms import (
    SERIES_KINDS,
    BackForm,
    BulkForm,
    NewPeriodForm,
    PeriodDatesForm,
    PeriodSeriesForm,
)
from portal.billing import dashboard, invitations
from portal.billing import periods as domain
from portal.core.billing_presentation import BOARD_COLUMNS
from portal.core.statuses import PeriodStatus
from portal.extensions import db
from portal.models import Billing, BillingPeriod, Commitment, Invitation, Project
from portal.validation import FieldErrors, InputError
from portal.web import fragments
from portal.web.sorting import Inverted, ListPagination, SortSpec, paginate

#: The periods list's sortable columns; project (then newest period) by default.
PERIOD_SORTS = SortSpec(
    {
        "project": (Project.number, Inverted(BillingPeriod.sequence)),
        "sequence": BillingPeriod.sequence,
        "start": BillingPeriod.start_date,
        "end": BillingPeriod.end_date,
        "due": BillingPeriod.due_date,
        "billing_date": BillingPeriod.billing_date,
        "status": BillingPeriod.status,
    },
    default="project",
    tiebreak=BillingPeriod.id,
    desc_first=frozenset({"start", "end", "due", "billing_date"}),
)


@bp.route("/periods")
@role_required(*READERS)
def periods():
    """Every billing period, by project; paginated."""
    project_id = arg_id("project_id")
    where = []
    if project_id:
        where.append(BillingPeriod.project_id == project_id)
    status = arg_text("status", 10)
    if status in {s.value for s in PeriodStatus}:
        where.append(BillingPeriod.status == status)
    else:
        status = ""
    sort = PERIOD_SORTS.parse(request.args)
    stmt = sort.apply(
        sa.select(BillingPeriod)
        .join(Project, Project.id == BillingPeriod.project_id)
        .options(contains_eager(BillingPeriod.project))
        .where(*where)
    )
    pagination = paginate(
        stmt,
        BillingPeriod.id,
        page=page_arg(),
        per_page=per_page(),
        count=sa.select(sa.func.count()).select_from(BillingPeriod).where(*where),
    )
    args: dict[str, Any] = {
        k: v for k, v in {"project_id": project_id, "status": status}.items() if v
    }
    ids = [p.id for p in pagination.items]
    billing_counts = dict(
        db.session.execute(
            sa.select(Billing.period_id, sa.func.count(Billing.id))
            .where(Billing.period_id.in_(ids))
            .group_by(Billing.period_id)
        ).all()
    )
    invitation_counts = dict(
        db.session.execute(
            sa.select(Invitation.period_id, sa.func.count(Invitation.id))
            .where(Invitation.period_id.in_(ids))
            .group_by(Invitation.period_id)
        ).all()
    )
    return render_template(
        "admin/periods.html",
        pagination=pagination,
        projects=dashboard.project_options(),
        project_id=project_id,
        status=status,
        sort=sort,
        args=args,
        billing_counts=billing_counts,
        invitation_counts=invitation_counts,
        today=timeutil.today(),
    )


def _parse_dates(form: PeriodDatesForm) -> domain.PeriodDates | None:
    start = form.start_date.data
    end = form.end_date.data
    due = form.due_date.data
    billing_date = form.billing_date.data or end
    if not form.ok or not (start and end and due and billing_date):
        return None
    return domain.PeriodDates(start, end, due, billing_date)


def _project_from_form(form: NewPeriodForm | PeriodSeriesForm) -> Project | None:
    project_id = form.project_id.data
    project = db.session.get(Project, project_id) if project_id else None
    if project is None:
        form.fail("project_id", "Choose a project.")
    return project


#: The suggested due date: this many days before the period's end.
DUE_DAYS_BEFORE_END = 5


def _next_free_start(project: Project | None) -> date:
    """The day after the project's last period, or the 1st of this month."""
    start = timeutil.today().replace(day=1)
    if project is not None:
        last_end = db.session.scalar(
            sa.select(sa.func.max(BillingPeriod.end_date)).where(
                BillingPeriod.project_id == project.id
            )
        )
        if last_end is not None:
            start = last_end + timedelta(days=1)
    return start


def _suggest(project: Project | None) -> dict[str, str]:
    """The next free month of the project (issue 14 item 11): it starts the day
    after its last period, so an untouched form never overlaps one. The
    billing date is left blank: it then follows the end date."""
    dates = domain.series_dates(
        "monthly",
        _next_free_start(project),
        1,
        due_days_before_end=DUE_DAYS_BEFORE_END,
    )[0]
    return {
        "project_id": str(project.id) if project else "",
        "start_date": dates.start_date.isoformat(),
        "end_date": dates.end_date.isoformat(),
        "due_date": dates.due_date.isoformat(),
        "billing_date": "",
        "open_now": "1",
        "kind": "monthly",
        "count": "12",
        "due_days_before_end": "5",
        "length_days": "14",
    }


def _suggestions(projects: list[Project]) -> dict[int, dict[str, str]]:
    """Each project's next free month, for the form to follow the project chosen."""
    return {project.id: _suggest(project) for project in projects}


@bp.route("/periods/new", methods=["GET", "POST"])
@role_required(*ADMINS)
def period_new():
    """Add one billing period (opening it closes the open one)."""
    projects = dashboard.project_options()
    context = {
        "projects": projects,
        "suggestions": _suggestions(projects),
        "due_days": DUE_DAYS_BEFORE_END,
    }
    if request.method == "GET":
        project_id = arg_id("project_id")
        project = db.session.get(Project, project_id) if project_id else None
        if project is None and len(projects) == 1:
            project = projects[0]  # the only one: its next free month
        return render_template(
            "admin/period_form.html", values=_suggest(project), errors={}, **context
        )
    form = NewPeriodForm()
    form.validate()
    project = _project_from_form(form)
    dates = _parse_dates(form)
    if form.ok and project is not None and dates is not None:
        try:
            created = domain.create_periods(
                me(), project, [dates], open_first=form.open_now.data
            )
        except FieldErrors as exc:
            form.add_errors(exc.errors)
        except InputError as exc:
            flash(str(exc), "danger")
        else:
            period = created[0]
            db.session.commit()
            flash(
                f"Period #{period.sequence} created"
                + (" and opened." if period.status == PeriodStatus.OPEN else "."),
                "success",
            )
            return redirect(url_for("admin.periods", project_id=project.id))
    return form_page("admin/period_form.html", form, **context)


@bp.route("/periods/generate", methods=["GET", "POST"])
@role_required(*ADMINS)
def period_generate():
    """Generate a monthly, weekly or custom-length series of periods."""
    context = {
        "projects": dashboard.project_options(),
        "kinds": SERIES_KINDS,
    }
    if request.method == "GET":
        project_id = arg_id("project_id")
        project = db.session.get(Project, project_id) if project_id else None
        values = _suggest(project)
        values["open_now"] = ""
        return render_template(
            "admin/period_generate.html", values=values, errors={}, **context
        )
    form = PeriodSeriesForm()
    form.validate()
    project = _project_from_form(form)
    kind = form.kind.data
    start = form.start_date.data
    count = form.count.data
    length = form.length_days.data if kind == "custom" else None
    due_before = form.due_days_before_end.data
    if form.ok and project is not None and start and count:
        try:
            series = domain.series_dates(
                kind,
                start,
                count,
                length_days=length,
                due_days_before_end=due_before or 0,
            )
            created = domain.create_periods(
                me(), project, series, open_first=form.open_now.data
            )
        except FieldErrors as exc:
            form.add_errors(exc.errors)
        except InputError as exc:
            flash(str(exc), "danger")
        else:
            db.session.commit()
            flash(
                f"{len(created)} periods created (#{created[0].sequence} to "
                f"#{created[-1].sequence}).",
                "success",
            )
            return redirect(url_for("admin.periods", project_id=project.id))
    return form_page("admin/period_generate.html", form, **context)


@bp.route("/periods/<int:period_id>/edit", methods=["GET", "POST"])
@role_required(*ADMINS)
def period_edit(period_id: int):
    """Change a period's dates (never into an overlap)."""
    period = db.get_or_404(BillingPeriod, period_id)
    context: dict[str, Any] = {
        "period": period,
        "projects": dashboard.project_options(),
    }
    if request.method == "GET":
        values = {
            "project_id": str(period.project_id),
            "start_date": period.start_date.isoformat(),
            "end_date": period.end_date.isoformat(),
            "due_date": period.due_date.isoformat(),
            "billing_date": period.billing_date.isoformat(),
        }
        return render_template(
            "admin/period_form.html", values=values, errors={}, **context
        )
    form = PeriodDatesForm()
    form.validate()
    dates = _parse_dates(form)
    if form.ok and dates is not None:
        try:
            domain.update_period(me(), period, dates)
        except FieldErrors as exc:
            form.add_errors(exc.errors)
        else:
            db.session.commit()
            flash(f"Period #{period.sequence} saved.", "success")
            return redirect(url_for("admin.periods", project_id=period.project_id))
    return form_page("admin/period_form.html", form, **context)


def _period_action(period_id: int, action: str):
    period = db.get_or_404(BillingPeriod, period_id)
    project_id = period.project_id
    sequence = period.sequence
    try:
        if action == "open":
            closed = domain.open_period(me(), period)
            message = f"Period #{sequence} is open." + (
                f" Period #{closed.sequence} was closed." if closed else ""
            )
        elif action == "close":
            domain.close_period(me(), period)
            message = f"Period #{sequence} is closed."
        else:
            domain.delete_period(me(), period)
            message = f"Period #{sequence} was deleted."
    except InputError as exc:
        db.session.rollback()
        flash(str(exc), "danger")
    else:
        db.session.commit()
        flash(message, "success")
    back = BackForm().target
    if back == "dashboard" and action != "delete":
        return redirect(url_for("admin.period_dashboard", period_id=period_id))
    return redirect(url_for("admin.periods", project_id=project_id))


@bp.route("/periods/<int:period_id>/open", methods=["POST"])
@role_required(*ADMINS)
def period_open(period_id: int):
    """Open a period; the project's open period closes."""
    return _period_action(period_id, "open")


@bp.route("/periods/<int:period_id>/close", methods=["POST"])
@role_required(*ADMINS)
def period_close(period_id: int):
    """Close a period."""
    return _period_action(period_id, "close")


@bp.route("/periods/<int:period_id>/delete", methods=["POST"])
@role_required(*ADMINS)
def period_delete(period_id: int):
    """Delete a period without billings, invitations or claims."""
    return _period_action(period_id, "delete")


# ---------------------------------------------------------------- dashboard

STATE_FILTERS = [
    ("", "All commitments"),
    ("overdue", "Overdue"),
    ("no_billing_contact", "No billing contact"),
    ("not_invited", "Not invited"),
    ("invited", "Invited"),
    ("accepted", "Accepted"),
    ("declined", "Declined"),
    ("draft", "Draft"),
    ("under_review", "Under review"),
    ("revise_and_resubmit", "Revise & resubmit"),
    ("pending_owner_approval", "Pending owner approval"),
    ("approved_as_noted", "Approved as noted"),
    ("approved", "Approved"),
    ("void", "Void"),
]


def _state(raw: str) -> str:
    """A dashboard filter's state: one of STATE_FILTERS, else "" (all)."""
    return raw if raw in {s for s, _ in STATE_FILTERS} else ""


@bp.route("/periods/<int:period_id>")
@role_required(*READERS)
def period_dashboard(period_id: int):
    """Every commitment's state for the period, with bulk invite and remind.

    From the page cache (portal.web.fragments): the key is what the board
    shows, as change counters (the project's, all its commitments', the global
    one), the viewer and today's date (past due, days late)."""
    state = _state(arg_text("state", 30))
    page = page_arg()
    # ?commitment=<id>: the page holding that commitment's row (a link to it).
    find = arg_id("commitment")
    today = timeutil.today()
    key = None
    if fragments.enabled():
        # The key's counters in one statement, before the board's rows.
        counters = generations.period_counters(period_id)
        if counters is None:
            abort(404)
        key = (
            "admin.period_dashboard",
            period_id,
            state,
            page,
            find,
            *counters,
            today,
            *fragments.viewer(),
        )
    return fragments.page(
        key, lambda: _dashboard_page(period_id, state, page, find, today)
    )


def _dashboard_page(
    period_id: int, state: str, page: int, find: int | None, today: date
) -> str:
    period = db.session.scalars(
        sa.select(BillingPeriod)
        .options(joinedload(BillingPeriod.project))
        .where(BillingPeriod.id == period_id)
    ).first()
    if period is None:
        abort(404)
    board = dashboard.period_dashboard(
        period, today=today, state=state or None, frozen=False
    )
    # The rows of one page (or of the one holding ``find``'s row); the counts
    # and totals are of every page.
    pagination = ListPagination(
        board.rows,
        page,
        int(current_app.config["BOARD_PAGE_SIZE"]),
        holding=(lambda row: row.commitment.id == find) if find else None,
    )
    siblings = db.session.scalars(
        sa.select(BillingPeriod)
        .where(BillingPeriod.project_id == period.project_id)
        .order_by(BillingPeriod.sequence)
    ).all()
    return render_template(
        "admin/period_dashboard.html",
        period=period,
        project=period.project,
        board=board,
        pagination=pagination,
        state=state,
        states=STATE_FILTERS,
        siblings=siblings,
        board_columns=BOARD_COLUMNS,
        today=today,
    )


@bp.route("/periods/<int:period_id>/bulk", methods=["POST"])
@role_required(*ADMINS)
def period_bulk(period_id: int):
    """Send Invite to Bill or a reminder for the selected commitments."""
    period = db.get_or_404(BillingPeriod, period_id)
    form = BulkForm()
    form.validate()
    action = form.action.data
    ids = form.commitment_ids.data
    # Back to the page and view the admin acted on.
    page = page_arg(request.form)
    back = redirect(
        url_for(
            "admin.period_dashboard",
            period_id=period.id,
            state=_state(request.form.get("state", "")) or None,
            page=page if page > 1 else None,
        )
    )
    if not form.ok or not action:
        flash("Choose an action.", "danger")
        return back
    if not ids:
        flash("Select at least one commitment first.", "warning")
        return back
    commitments = db.session.scalars(
        sa.select(Commitment).where(
            Commitment.id.in_(ids), Commitment.project_id == period.project_id
        )
    ).all()
    if action == "invite":
        try:
            result = invitations.invite(period, list(commitments), me())
        except invitations.InvitationError as exc:
            db.session.rollback()
            flash(str(exc), "danger")
            return back
        db.session.commit()
        if result.invited:
            flash(
                f"Invite to Bill sent to {len(result.invited)} contact(s).", "success"
            )
        for commitment, reason in result.skipped:
            flash(f"{commitment.number} was skipped: it {reason}.", "warning")
        return back
    live = db.session.scalars(
        sa.select(Invitation).where(
            Invitation.period_id == period.id,
            Invitation.commitment_id.in_([c.id for c in commitments]),
            Invitation.revoked_at.is_(None),
        )
    ).all()
    sent = invitations.remind(list(live), me())
    db.session.commit()
    if sent:
        flash(f"{sent} reminder(s) sent.", "success")
    if sent < len(live) or not live:
        flash(
            "Some selected commitments got no reminder: not invited yet, declined, "
            "already submitted, or invited or reminded in the last 24 hours.",
            "info",
        )
    return back
