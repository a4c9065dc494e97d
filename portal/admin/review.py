"""Billings: the list, creating and editing one on a contact's behalf, the review
page (G702/G703 claimed vs approved), decisions, comments, attachments, history."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from flask import (
    abort,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from sqlalchemy.orm import contains_eager, joinedload, selectinload

from portal import generations
from portal.accounts.auth import role_required
from portal.admin import bp
from portal.admin.common import (
    ADMINS,
    READERS,
    arg_id,
    arg_text,
    like,
    me,
    page_arg,
    per_page,
    vendor_options,
)
from portal.admin.forms import (
    REVIEW_DECISIONS,
    BillingCommentBodyForm,
    BillingNewForm,
    BillingVoidForm,
    DecisionForm,
    VersionForm,
    billing_edit_form,
    review_lines_form,
)
from portal.admin.queue import after_decision, queue_filters, queue_nav, review_url
from portal.billing import billings, figures
from portal.billing.attachments import send_attachment
from portal.billing.dashboard import (
    billing_sums,
    open_declines,
    period_options,
    project_options,
)
from portal.billing.queue import position
from portal.core.statuses import (
    EDITABLE_STATUSES,
    BillingStatus,
    LineStatus,
    PeriodStatus,
)
from portal.extensions import db
from portal.models import (
    Attachment,
    AuditEvent,
    Billing,
    BillingLine,
    BillingPeriod,
    Comment,
    Commitment,
    Project,
    RevisionSnapshot,
    SovLine,
    Vendor,
)
from portal.web import fragments
from portal.web.sorting import SortSpec, paginate
from portal.web.templating import g702_lines, term

STALE_MESSAGE = (
    "This billing was changed by someone else meanwhile. "
    "Reload the page to see the latest version, then try again."
)
STATUS_CHOICES = [(s.value, s.value) for s in BillingStatus]
#: The billing list's sortable columns (the claimed/approved sums are computed
#: per page, so they don't sort).
BILLING_SORTS = SortSpec(
    {
        "project": Project.number,
        "commitment": Commitment.number,
        "vendor": Vendor.name,
        "period": BillingPeriod.start_date,
        "application": Billing.application_number,
        "invoice": Billing.vendor_invoice_number,
        "status": Billing.status,
        "submitted": Billing.submitted_at,
        "updated": Billing.updated_at,
    },
    default="-updated",
    tiebreak=Billing.id,
    nullable=frozenset({"submitted"}),
    desc_first=frozenset({"submitted", "updated"}),
)


# ------------------------------------------------------------------ list


#: Declined invitations shown above the billing list, and with "Show all".
DECLINES_SHOWN = 5
DECLINES_ALL = 500


@bp.route("/billings", endpoint="billings")
@role_required(*READERS)
def billings_list():
    """Every billing, filtered by project, period, status or vendor; sortable by
    column header, paginated; counted on the billings table alone."""
    filters = {
        "project_id": arg_id("project_id"),
        "period_id": arg_id("period_id"),
        "vendor_id": arg_id("vendor_id"),
        "status": arg_text("status", 32),
        "q": arg_text("q"),
    }
    where: list[Any] = []
    if filters["project_id"]:
        where.append(Commitment.project_id == filters["project_id"])
    if filters["period_id"]:
        where.append(Billing.period_id == filters["period_id"])
    if filters["vendor_id"]:
        where.append(Commitment.vendor_id == filters["vendor_id"])
    if filters["status"] in {s.value for s in BillingStatus}:
        where.append(Billing.status == filters["status"])
    else:
        filters["status"] = ""
    if filters["q"]:
        pattern = like(filters["q"])
        where.append(
            sa.or_(
                sa.func.lower(Commitment.number).like(pattern, escape="\\"),
                sa.func.lower(Commitment.title).like(pattern, escape="\\"),
                sa.func.lower(Vendor.name).like(pattern, escape="\\"),
                sa.func.lower(Billing.vendor_invoice_number).like(pattern, escape="\\"),
            )
        )
    # The count joins only what the filters read (the billings table alone
    # when unfiltered); the page joins what its rows show and sort on.
    count = sa.select(sa.func.count()).select_from(Billing)
    if filters["project_id"] or filters["vendor_id"] or filters["q"]:
        count = count.join(Commitment, Commitment.id == Billing.commitment_id)
    if filters["q"]:
        count = count.join(Vendor, Vendor.id == Commitment.vendor_id)
    sort = BILLING_SORTS.parse(request.args)
    stmt = sort.apply(
        sa.select(Billing)
        .join(Commitment, Commitment.id == Billing.commitment_id)
        .join(Vendor, Vendor.id == Commitment.vendor_id)
        .join(Project, Project.id == Commitment.project_id)
        .join(BillingPeriod, BillingPeriod.id == Billing.period_id)
        .options(
            contains_eager(Billing.commitment).contains_eager(Commitment.vendor),
            contains_eager(Billing.commitment).contains_eager(Commitment.project),
            contains_eager(Billing.period),
        )
        .where(*where)
    )
    pagination = paginate(
        stmt,
        Billing.id,
        page=page_arg(),
        per_page=per_page(),
        count=count.where(*where),
    )
    args = {k: v for k, v in filters.items() if v}
    # A few declines above the list; ?declines=all lists every one (to 500).
    all_declines = request.args.get("declines") == "all"
    declines, declines_total = open_declines(
        project_id=filters["project_id"],
        period_id=filters["period_id"],
        vendor_id=filters["vendor_id"],
        limit=DECLINES_ALL if all_declines else DECLINES_SHOWN,
    )
    return render_template(
        "admin/billings.html",
        pagination=pagination,
        filters=filters,
        args=args,
        sort=sort,
        sums=billing_sums([b.id for b in pagination.items]),
        declines=declines,
        declines_total=declines_total,
        all_declines=all_declines,
        declines_shown=DECLINES_SHOWN,
        projects=project_options(),
        periods=period_options(filters["project_id"]),
        vendor_options=vendor_options(filters["vendor_id"]),
        statuses=STATUS_CHOICES,
    )


# ---------------------------------------------------------- load helpers


def _load(billing_id: int) -> Billing:
    """The billing with everything the pages show, in a fixed number of queries."""
    billing = db.session.scalars(
        sa.select(Billing)
        .options(
            joinedload(Billing.commitment).joinedload(Commitment.project),
            joinedload(Billing.commitment).joinedload(Commitment.vendor),
            joinedload(Billing.commitment).selectinload(Commitment.contacts),
            joinedload(Billing.period),
            selectinload(Billing.lines).joinedload(BillingLine.sov_line),
            selectinload(Billing.comments).joinedload(Comment.author_user),
            selectinload(Billing.comments).joinedload(Comment.author_contact),
            selectinload(Billing.comments)
            .joinedload(Comment.billing_line)
            .joinedload(BillingLine.sov_line),
            selectinload(Billing.attachments),
            selectinload(Billing.snapshots),
            joinedload(Billing.created_by_user),
            joinedload(Billing.created_by_contact),
            joinedload(Billing.decided_by),
        )
        .where(Billing.id == billing_id)
    ).first()
    if billing is None:
        abort(404)
    return billing


def _version(form: VersionForm) -> int | None:
    form.validate()
    return None if form.version.errors else form.version.data


# -------------------------------------------------------- create and edit


@bp.route("/billings/new", methods=["POST"])
@role_required(*ADMINS)
def billing_new():
    """Start a billing on a contact's behalf (allowed after the due date)."""
    form = BillingNewForm()
    form.validate()
    commitment_id = form.commitment_id.data
    period_id = form.period_id.data
    commitment = db.session.get(Commitment, commitment_id) if commitment_id else None
    period = db.session.get(BillingPeriod, period_id) if period_id else None
    if commitment is None or period is None:
        flash("Choose a commitment and a period.", "danger")
        return redirect(url_for("admin.billings"))
    back = url_for("admin.period_dashboard", period_id=period.id)
    if period.status != PeriodStatus.OPEN:
        flash(
            f"Period #{period.sequence} is closed: open it before creating billings "
            "in it.",
            "danger",
        )
        return redirect(back)
    try:
        billing = billings.create_billing(commitment, period, me())
    except billings.BillingError as exc:
        db.session.rollback()
        flash(str(exc), "danger")
        return redirect(back)
    db.session.commit()
    flash(
        f"Draft billing #{billing.application_number} created for "
        f"{commitment.number}: enter the amounts on the contact's behalf.",
        "success",
    )
    return redirect(url_for("admin.billing_edit", billing_id=billing.id))


def _edit_page(billing: Billing, errors: dict[str, str], posted: Any, status: int):
    sheet = figures.sheet(billing, "claimed")
    return (
        render_template(
            "admin/billing_edit.html",
            billing=billing,
            commitment=billing.commitment,
            project=billing.commitment.project,
            sheet=sheet,
            errors=errors,
            posted=posted,
            late=billings.period_closed_for_contacts(billing.period),
        ),
        status,
    )


@bp.route("/billings/<int:billing_id>/edit", methods=["GET", "POST"])
@role_required(*ADMINS)
def billing_edit(billing_id: int):
    """The G703 entry form on a contact's behalf: save, or save and submit."""
    billing = _load(billing_id)
    if billing.status not in EDITABLE_STATUSES:
        flash(
            f"A billing that is {billing.status.replace('_', ' ')} can't be edited.",
            "warning",
        )
        return redirect(url_for("admin.billing_review", billing_id=billing.id))
    if request.method == "GET":
        return _edit_page(billing, {}, None, 200)
    project = billing.commitment.project
    form = billing_edit_form(
        (bl.sov_line_id for bl in billing.lines), project.retainage_release_allowed
    )
    version = _version(form)
    if version is None:
        flash("The form is missing its version: reload the page.", "danger")
        return redirect(url_for("admin.billing_edit", billing_id=billing.id))
    data = billings.BillingInput(
        lines=form.posted_amounts(),
        vendor_invoice_number=form.vendor_invoice_number.raw,
        notes=form.notes.raw,
        retainage_released=(
            form.retainage_released.raw if project.retainage_release_allowed else None
        ),
        installed=form.posted_installed(),
    )
    submit = form.action.raw == "submit"
    try:
        if not form.check():
            raise billings.ValidationFailed(dict(form.messages))
        overbilled = billings.save_billing(billing, me(), data, version)
        if submit:
            billings.submit_billing(billing, me(), billing.version)
    except billings.ValidationFailed as exc:
        db.session.rollback()
        form.add_errors(exc.errors)
        flash(str(exc), "danger")
        return _edit_page(_load(billing_id), form.messages, form.values, 400)
    except billings.StaleBilling:
        db.session.rollback()
        flash(STALE_MESSAGE, "warning")
        return redirect(url_for("admin.billing_edit", billing_id=billing_id))
    except billings.BillingError as exc:
        db.session.rollback()
        flash(str(exc), "danger")
        return _edit_page(_load(billing_id), {}, form.values, 400)
    db.session.commit()
    if overbilled:
        flash(
            f"{len(overbilled)} line(s) bill more than their scheduled value "
            "(allowed on this project, and flagged).",
            "warning",
        )
    if submit:
        flash(f"Billing #{billing.application_number} submitted for review.", "success")
        return redirect(url_for("admin.billing_review", billing_id=billing.id))
    flash("Draft saved.", "success")
    return redirect(url_for("admin.billing_edit", billing_id=billing.id))


# ------------------------------------------------------------------ review


#: A revision snapshot's per-line amounts (the claimed values as submitted):
#: work this period, materials newly stored, stored materials installed.
SNAPSHOT_AMOUNTS = ("work", "materials", "installed")


@dataclass(frozen=True)
class LineChange:
    """One line's claimed amounts in the revision before and in this one."""

    sov: SovLine | None  # None when the line is gone
    before: tuple[Decimal, Decimal, Decimal]  # work, new stored, installed
    after: tuple[Decimal, Decimal, Decimal]

    @property
    def changed(self) -> list[tuple[str, Decimal, Decimal]]:
        """(what, before, after) of each amount that changed, in column order."""
        names = ("work", "new stored", "installed")
        return [
            (name, old, new)
            for name, old, new in zip(names, self.before, self.after, strict=True)
            if old != new
        ]


@dataclass
class RevisionChange:
    """What changed in one revision compared with the one before."""

    revision: int
    submitted_at: Any
    first: bool
    lines: list[LineChange] = field(default_factory=list)
    other: list[tuple[str, str, str]] = field(default_factory=list)
    #: What the revision claims this period: work + new stored − installed
    #: (the installed materials' value is part of the work; docs/money.md).
    total: Decimal = Decimal("0.00")


def _dec(text: object) -> Decimal:
    """A snapshot amount (stored as text) as a Decimal; 0 when missing or odd."""
    try:
        return Decimal(str(text)) if text not in (None, "") else Decimal("0.00")
    except ArithmeticError:
        return Decimal("0.00")


def _amounts(values: object) -> tuple[Decimal, Decimal, Decimal]:
    """A snapshot line's work, new stored and installed (0 where missing: a
    snapshot taken before installed amounts existed has none)."""
    raw = values if isinstance(values, dict) else {}
    work, new, installed = (_dec(raw.get(name)) for name in SNAPSHOT_AMOUNTS)
    return work, new, installed


def revision_history(billing: Billing) -> list[RevisionChange]:
    """Each submitted revision and what changed from the previous one."""
    sov = {bl.sov_line_id: bl.sov_line for bl in billing.lines}
    out: list[RevisionChange] = []
    previous: RevisionSnapshot | None = None
    for snap in sorted(billing.snapshots, key=lambda s: s.revision):
        lines = snap.data.get("lines", {}) if isinstance(snap.data, dict) else {}
        change = RevisionChange(snap.revision, snap.submitted_at, previous is None)
        for values in lines.values():
            work, new, installed = _amounts(values)
            change.total += work + new - installed
        if previous is not None:
            before = previous.data.get("lines", {})
            for key in sorted(set(lines) | set(before), key=lambda k: int(k)):
                line = LineChange(
                    sov.get(int(key)),
                    _amounts(before.get(key)),
                    _amounts(lines.get(key)),
                )
                if line.changed:
                    change.lines.append(line)
            for name, label in (
                ("vendor_invoice_number", "Vendor invoice number"),
                (
                    "retainage_released",
                    f"{term('Retainage', billing.commitment.project)} released",
                ),
                ("notes", "Notes"),
            ):
                if previous.data.get(name) != snap.data.get(name):
                    change.other.append(
                        (
                            label,
                            str(previous.data.get(name) or ""),
                            str(snap.data.get(name) or ""),
                        )
                    )
        out.append(change)
        previous = snap
    return list(reversed(out))


def changes_since_previous(
    billing: Billing, history: list[RevisionChange]
) -> RevisionChange | None:
    """What the revision under review changed from the revision submitted before
    it (the newest entry of ``history``), or None: a first submission, or a
    billing back with its contact (its lines are no longer that revision's)."""
    if not history or history[0].first or billing.status in EDITABLE_STATUSES:
        return None
    return history[0] if history[0].revision == billing.revision else None


def changed_lines(since: RevisionChange | None) -> dict[int, LineChange]:
    """SOV line id → its change, for the lines still on the billing."""
    if since is None:
        return {}
    return {line.sov.id: line for line in since.lines if line.sov is not None}


#: The G702 lines the review's sticky bar repeats (the figures a reviewer
#: watches while changing approved amounts; the full G702 is above the lines).
#: Key → short label ({Retainage}: the project's word for it).
BAR_LINES = {
    "total_completed_and_stored": "Completed and stored",
    "retainage": "{Retainage}",
    "current_payment_due": "Payment due",
    "balance_to_finish_including_retainage": "Balance to finish",
}


@dataclass(frozen=True)
class BarLine:
    """One G702 line as the sticky bar shows it: short label, both values."""

    number: str
    key: str
    label: str
    claimed: Decimal
    approved: Decimal | None
    strong: bool


def bar_lines(claimed: Any, approved: Any, project: Any) -> list[BarLine]:
    """The G702 lines the review's sticky bar repeats, with short labels."""
    word = term("Retainage", project)
    return [
        BarLine(
            line.number,
            line.key,
            BAR_LINES[line.key].format(Retainage=word),
            line.claimed,
            line.approved,
            line.strong,
        )
        for line in g702_lines(claimed, approved, project)
        if line.key in BAR_LINES
    ]


def _review_page(billing: Billing, errors: dict[str, str], posted: Any, status: int):
    claimed, approved = figures.sheets(billing, "claimed", "approved")
    history = revision_history(billing)
    since = changes_since_previous(billing, history)
    line_changes = changed_lines(since)
    # ?changed=1: only the changed lines are shown (the others stay in the
    # form, hidden, so the totals and a save still cover every line).
    only_changed = bool(line_changes) and request.args.get("changed") == "1"
    # Paired by SOV line: a decided billing's two sides are one frozen SOV; a
    # snapshot older than the frozen claimed side may list other lines.
    claimed_by_sov = {r.sov.id: r for r in claimed.rows}
    rows = [(claimed_by_sov.get(a.sov.id, a), a) for a in approved.rows]
    commitment = billing.commitment
    earlier_open = bool(
        db.session.scalar(
            sa.select(sa.func.count(Billing.id)).where(
                Billing.commitment_id == commitment.id,
                Billing.application_number < billing.application_number,
                Billing.status.in_(
                    [
                        BillingStatus.DRAFT,
                        BillingStatus.UNDER_REVIEW,
                        BillingStatus.REVISE_AND_RESUBMIT,
                    ]
                ),
            )
        )
    )
    return (
        render_template(
            "admin/billing_review.html",
            billing=billing,
            commitment=commitment,
            project=commitment.project,
            claimed=claimed,
            approved=approved,
            rows=rows,
            history=history,
            since=since,
            line_changes=line_changes,
            only_changed=only_changed,
            bar_lines=bar_lines(claimed.totals, approved.totals, commitment.project),
            errors=errors,
            posted=posted,
            can_review=billing.status == BillingStatus.UNDER_REVIEW,
            earlier_open=earlier_open,
            line_statuses=[s.value for s in LineStatus],
            queue_nav=queue_nav(billing.id),
        ),
        status,
    )


@bp.route("/billings/<int:billing_id>")
@role_required(*READERS)
def billing_review(billing_id: int):
    """Review a billing: G702/G703 claimed vs approved, lines, comments, history.

    From the page cache (portal.web.fragments) unless opened from the review
    queue (its nav shows the queue's state, which spans commitments)."""
    if "queue" in request.values or not fragments.enabled():
        return _review_page(_load(billing_id), {}, None, 200)
    # The key's counters in one Core statement, before the page's rows.
    counters = generations.billing_counters(billing_id)
    if counters is None:
        abort(404)
    key = (
        "admin.billing_review",
        billing_id,
        *counters,
        *fragments.viewer(),
        request.args.get("changed") == "1",
    )
    return fragments.page(
        key, lambda: _review_page(_load(billing_id), {}, None, 200)[0]
    )


DECISIONS = REVIEW_DECISIONS


@bp.route("/billings/<int:billing_id>/decide", methods=["POST"])
@role_required(*ADMINS)
def billing_decide(billing_id: int):
    """Save the line review, then approve, hold for the owner or send back."""
    billing = _load(billing_id)
    form = DecisionForm()
    version = _version(form)
    decision = form.decision.data
    comment = form.comment.data
    # Opened from the review queue: errors come back with it, a decision goes on
    # to the next billing of the queue (docs/review-queue.md).
    from_queue = queue_filters()
    back = redirect(review_url(billing_id, from_queue))
    if version is None:
        flash("The form is missing its version: reload the page.", "danger")
        return back
    if "comment" in form.messages:
        flash(f"Comment: {form.messages['comment']}", "danger")
        return _review_page(
            billing, {"comment": form.messages["comment"]}, form.values, 400
        )
    if version != billing.version:
        flash(STALE_MESSAGE, "warning")
        return back
    user = me()
    place = position(from_queue, billing_id) if from_queue is not None else None
    try:
        if billing.status == BillingStatus.UNDER_REVIEW:
            grid = review_lines_form(bl.id for bl in billing.lines)
            if not grid.check():
                raise billings.ValidationFailed(dict(grid.messages))
            reviews = grid.reviews()
            if reviews:
                billings.review_lines(billing, user, reviews, version)
                version = billing.version
        if decision == "send_back":
            billings.send_back(billing, user, version, comment)
            message = (
                f"Billing #{billing.application_number} was sent back for revision; "
                "the contact was told every reason."
            )
        else:
            if comment:
                billings.add_comment(billing, user, comment)
            if decision == "approve":
                status = billings.approve_billing(billing, user, version)
                message = f"Billing #{billing.application_number} is {status.replace('_', ' ')}."
            elif decision == "hold":
                billings.hold_for_owner(billing, user, version)
                message = (
                    f"Billing #{billing.application_number} is held for the owner's "
                    "approval."
                )
            else:
                message = "Review saved."
    except billings.ValidationFailed as exc:
        db.session.rollback()
        flash(str(exc), "danger")
        return _review_page(_load(billing_id), exc.errors, form.values, 400)
    except billings.StaleBilling:
        db.session.rollback()
        flash(STALE_MESSAGE, "warning")
        return back
    except billings.BillingError as exc:
        db.session.rollback()
        flash(str(exc), "danger")
        return back
    db.session.commit()
    flash(message, "success")
    if from_queue is not None and decision != "save":
        next_id = place.next_id if place is not None else None
        return redirect(after_decision(billing_id, from_queue, next_id))
    return back


@bp.route("/billings/<int:billing_id>/void", methods=["POST"])
@role_required(*ADMINS)
def billing_void(billing_id: int):
    """Void a billing with a reason."""
    billing = _load(billing_id)
    form = BillingVoidForm()
    version = _version(form)
    back = redirect(url_for("admin.billing_review", billing_id=billing_id))
    if version is None or version != billing.version:
        flash(STALE_MESSAGE, "warning")
        return back
    try:
        if "reason" in form.messages:
            raise billings.ValidationFailed({"reason": form.messages["reason"]})
        billings.void_billing(billing, me(), version, form.reason.raw)
    except billings.ValidationFailed as exc:
        db.session.rollback()
        flash(f"Not voided: {exc.errors.get('reason', exc)}", "danger")
        return back
    except billings.StaleBilling:
        db.session.rollback()
        flash(STALE_MESSAGE, "warning")
        return back
    except billings.BillingError as exc:
        db.session.rollback()
        flash(str(exc), "danger")
        return back
    db.session.commit()
    flash(f"Billing #{billing.application_number} was voided.", "success")
    return back


@bp.route("/billings/<int:billing_id>/comments", methods=["POST"])
@role_required(*ADMINS)
def billing_comment(billing_id: int):
    """Add a billing-level (or line) comment; comments are kept forever."""
    billing = _load(billing_id)
    form = BillingCommentBodyForm()
    form.validate()
    line_id = form.line_id.data
    line = next((bl for bl in billing.lines if bl.id == line_id), None)
    if line_id and line is None:
        flash("That line is not on this billing.", "danger")
        return redirect(url_for("admin.billing_review", billing_id=billing_id))
    try:
        if "body" in form.messages:
            raise billings.ValidationFailed({"body": form.messages["body"]})
        billings.add_comment(billing, me(), form.body.raw, line)
    except billings.ValidationFailed as exc:
        db.session.rollback()
        flash(f"Comment not added: {exc.errors.get('body', exc)}", "danger")
    except billings.BillingError as exc:
        db.session.rollback()
        flash(str(exc), "danger")
    else:
        db.session.commit()
        flash("Comment added.", "success")
    return redirect(
        url_for("admin.billing_review", billing_id=billing_id) + "#comments"
    )


@bp.route("/billings/<int:billing_id>/audit")
@role_required(*READERS)
def billing_audit(billing_id: int):
    """Every audit event of one billing, newest first."""
    billing = _load(billing_id)
    stmt = (
        sa.select(AuditEvent)
        .options(
            joinedload(AuditEvent.actor_user), joinedload(AuditEvent.actor_contact)
        )
        .where(AuditEvent.object_type == "billing", AuditEvent.object_id == billing.id)
        .order_by(AuditEvent.id.desc())
    )
    pagination = db.paginate(
        stmt, page=page_arg(), per_page=per_page(), error_out=False
    )
    return render_template(
        "admin/billing_audit.html",
        billing=billing,
        commitment=billing.commitment,
        project=billing.commitment.project,
        pagination=pagination,
    )


# ------------------------------------------------------------- attachments


@bp.route("/attachments/<int:attachment_id>")
@role_required(*READERS)
def attachment_download(attachment_id: int):
    """Download a billing's attachment (always as a download, never inline)."""
    attachment = db.get_or_404(Attachment, attachment_id)
    return send_attachment(attachment)
