"""The review queue and bulk decisions on billings (issue 15 items 1 and 3)."""

from __future__ import annotations

from dataclasses import dataclass

from flask import flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from portal.accounts.auth import role_required, safe_next
from portal.admin import bp
from portal.admin.common import (
    ADMINS,
    READERS,
    me,
    page_arg,
    per_page,
    vendor_options,
)
from portal.billing import bulk
from portal.billing import queue as review_queue
from portal.billing.attachments import KIND_LABELS
from portal.billing.billings import TEXT_LIMITS
from portal.billing.dashboard import billing_sums, period_options, project_options
from portal.extensions import db
from portal.web.forms import CleanTextField, StrictChoiceField, StrictForm

#: How many skip reasons one flash lists before "and N more".
MAX_REASONS = 20
MISSING_LABELS = {
    "any": "Invoice or lien waiver missing",
    "invoice": "Invoice missing",
    "lien_waiver": "Lien waiver missing",
}


class BillingsBulkForm(StrictForm):
    """Approve, send back or remind the selected billings (``billing`` = id:version)."""

    action = StrictChoiceField(choices=["approve", "send_back", "remind"], default="")
    comment = CleanTextField(
        max_len=TEXT_LIMITS["comment"], required=False, multiline=True
    )
    back = CleanTextField(max_len=2000, required=False)


@bp.route("/queue", endpoint="review_queue")
@role_required(*READERS)
def queue_page():
    """Billings waiting for a decision, across projects, by due date."""
    filters = review_queue.QueueFilters.from_args(request.args)
    pagination = db.paginate(
        review_queue.statement(filters),
        page=page_arg(),
        per_page=per_page(),
        error_out=False,
        count=True,
    )
    ids = [b.id for b in pagination.items]
    args = filters.args()
    return render_template(
        "admin/review_queue.html",
        pagination=pagination,
        filters=filters,
        args=args,
        queue_qs=filters.query_string(),
        flags=review_queue.row_flags(ids),
        sums=billing_sums(ids),
        projects=project_options(),
        periods=period_options(filters.project_id),
        vendor_options=vendor_options(filters.vendor_id),
        statuses=review_queue.QUEUE_STATUSES,
        missing_labels=MISSING_LABELS,
        kind_labels=KIND_LABELS,
        back=request.full_path.rstrip("?"),
    )


def _back(form: BillingsBulkForm) -> str:
    target = form.back.data or ""
    if target and safe_next(target) == target:
        return target
    return url_for("admin.review_queue")


def _report(result: bulk.BulkResult, verb: str) -> None:
    level = "success" if result.done else "warning"
    flash(f"{len(result.done)} {verb}, {len(result.skipped)} skipped.", level)
    for outcome in result.skipped[:MAX_REASONS]:
        flash(f"{outcome.label} was skipped: {outcome.reason}.", "warning")
    if len(result.skipped) > MAX_REASONS:
        flash(f"… and {len(result.skipped) - MAX_REASONS} more skipped.", "warning")


@bp.route("/billings/bulk", methods=["POST"], endpoint="billings_bulk")
@role_required(*ADMINS)
def billings_bulk() -> Response:
    """One action on the selected billings, each decided on its own."""
    form = BillingsBulkForm()
    form.validate()
    back = redirect(_back(form))
    if "action" in form.messages or not form.action.data:
        flash("Choose an action.", "danger")
        return back
    if "comment" in form.messages:
        flash(f"Comment: {form.messages['comment']}", "danger")
        return back
    try:
        selected = bulk.parse_pairs(request.form.getlist("billing"))
        if not selected:
            raise bulk.BulkError("Select at least one billing first.")
        user = me()
        if form.action.data == "approve":
            result, verb = bulk.approve(selected, user), "approved"
        elif form.action.data == "send_back":
            result = bulk.send_back(selected, user, form.comment.data or "")
            verb = "sent back"
        else:
            result, verb = bulk.remind(selected, user), "reminded"
    except bulk.BulkError as exc:
        db.session.rollback()
        flash(str(exc), "danger")
        return back
    db.session.commit()
    _report(result, verb)
    return back


# ------------------------------------------------ the review page's queue nav


@dataclass(frozen=True)
class QueueNav:
    """The review page's "3 of 17" when it was opened from the queue."""

    filters: review_queue.QueueFilters
    qs: str
    position: review_queue.Position | None
    total: int = 0
    first_id: int | None = None


def queue_filters() -> review_queue.QueueFilters | None:
    """The queue the review page was opened from (``queue`` argument or field)."""
    if "queue" not in request.values:
        return None
    return review_queue.QueueFilters.from_query_string(
        (request.values.get("queue") or "")[:2000]
    )


def queue_nav(billing_id: int) -> QueueNav | None:
    """The queue nav for the review page of ``billing_id`` (None: not from the queue)."""
    filters = queue_filters()
    if filters is None:
        return None
    pos = review_queue.position(filters, billing_id)
    if pos is not None:
        return QueueNav(filters, filters.query_string(), pos)
    return QueueNav(
        filters,
        filters.query_string(),
        None,
        total=review_queue.count(filters),
        first_id=review_queue.first_id(filters, exclude=billing_id),
    )


def review_url(billing_id: int, filters: review_queue.QueueFilters | None) -> str:
    """The review page of a billing, carrying the queue when there is one."""
    if filters is None:
        return url_for("admin.billing_review", billing_id=billing_id)
    return url_for(
        "admin.billing_review", billing_id=billing_id, queue=filters.query_string()
    )


def after_decision(
    billing_id: int, filters: review_queue.QueueFilters, next_id: int | None
) -> str:
    """Where a decision made from the queue lands: the next billing of the queue.

    ``next_id`` is the billing that followed this one before the decision; if it
    has left the queue meanwhile, the first billing still waiting is taken.
    """
    if next_id is not None and review_queue.position(filters, next_id) is None:
        next_id = None
    if next_id is None:
        next_id = review_queue.first_id(filters, exclude=billing_id)
    if next_id is None or next_id == billing_id:
        flash("The review queue is empty: nothing else is waiting.", "info")
        query = filters.query_string()
        return url_for("admin.review_queue") + (f"?{query}" if query else "")
    return review_url(next_id, filters)
