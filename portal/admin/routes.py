"""Back-office views. Every view is guarded: the blueprint fails closed.

This module holds the guard, sign-in and sign-out, the home dashboard, the
account page, the audit log and the outbox. Set-up, periods, review and users
live in their own modules on the same blueprint.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from flask import (
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import current_user, login_user, logout_user
from sqlalchemy.orm import joinedload

from portal import audit
from portal.accounts import users
from portal.accounts.auth import (
    home_endpoint,
    mark_session_started,
    remote_addr,
    role_required,
    safe_next,
)
from portal.admin import bp
from portal.admin.common import (
    ADMINS,
    AUDITORS,
    READERS,
    arg_id,
    arg_text,
    me,
    page_arg,
    per_page,
)
from portal.admin.forms import AccountPasswordForm, AuditFilterForm, LoginForm
from portal.billing import dashboard
from portal.core.statuses import OutboxStatus, Role
from portal.extensions import db, limiter, login_manager
from portal.mail.outbox import redacted_body, retry_message, stale_backlog
from portal.models import AuditEvent, OutboxMessage, User
from portal.timeutil import utcnow
from portal.validation import MAX_ID, FieldErrors
from portal.web.sorting import SortSpec, paginate
from portal.web.templating import term

#: Endpoints reachable without a staff session.
PUBLIC_ENDPOINTS = {"admin.login"}


@bp.before_request
def require_staff():
    """Fail closed: only signed-in staff reach any admin view but the login page."""
    if request.endpoint in PUBLIC_ENDPOINTS:
        return None
    if not current_user.is_authenticated:
        return login_manager.unauthorized()
    if not current_user.is_staff:
        abort(403)
    return None


@bp.url_value_preprocessor
def ids_in_range(endpoint: str | None, values: dict | None) -> None:
    """An id too large for the database can't exist: 404, not a driver error."""
    for value in (values or {}).values():
        if isinstance(value, int) and not 0 < value <= MAX_ID:
            abort(404)


@bp.after_request
def no_store(response):
    """Back-office pages hold business data: never cache them in shared caches."""
    response.headers.setdefault("Cache-Control", "no-store")
    return response


AUDIT_LINKS = {
    "billing": ("admin.billing_review", "billing_id"),
    "project": ("admin.project_view", "project_id"),
    "vendor": ("admin.vendor_view", "vendor_id"),
    "contact": ("admin.contact_edit", "contact_id"),
    "commitment": ("admin.commitment_view", "commitment_id"),
    "billing_period": ("admin.period_dashboard", "period_id"),
    "user": ("admin.user_edit", "user_id"),
    "change_order": ("admin.change_order_view", "change_order_id"),
    "client_contract": ("admin.client_contract_view", "contract_id"),
}


@bp.app_template_global("audit_link")
def audit_link(event: AuditEvent) -> str | None:
    """The page of an audit event's object, when there is one."""
    target = AUDIT_LINKS.get(event.object_type)
    if target is None or event.object_id is None:
        return None
    endpoint, arg = target
    if endpoint not in current_app.view_functions:
        return None
    values: dict[str, Any] = {arg: event.object_id}
    return url_for(endpoint, **values)


#: How the UI names each kind of audited object (``obj`` loaded by
#: portal.audit.objects_of, with what its label needs).
AUDIT_LABELS: dict[str, Any] = {
    "billing": lambda o: (
        f"{term('Progress_billing', o.commitment.project)} #{o.application_number}"
        f" · {o.commitment.number}"
    ),
    "commitment": lambda o: f"{o.number} {o.title}",
    "project": lambda o: f"{o.number} {o.name}",
    "vendor": lambda o: o.name,
    "contact": lambda o: o.name,
    "user": lambda o: o.name,
    "billing_period": lambda o: f"Period #{o.sequence} · {o.project.number}",
    "invitation": lambda o: (
        f"Invitation · {o.commitment.number}, period #{o.period.sequence}"
    ),
    "sov_line": lambda o: f"SOV line {o.line_number} · {o.commitment.number}",
    "change_order": lambda o: f"Change order {o.number} · {o.commitment.number}",
    "client_contract": lambda o: f"{o.number} {o.title}",
    "client_sov_line": lambda o: f"Line {o.line_number} · {o.contract.number}",
    "client_claim": lambda o: (
        f"{term('Client_claim', o.contract.project)} #{o.claim_number}"
        f" · {o.contract.number}"
    ),
}


@bp.app_template_global("audit_label")
def audit_label(event: AuditEvent, objects: dict) -> str:
    """What an audit event is about, as the rest of the UI names it (its type
    and id when the object is gone or has no name)."""
    obj = objects.get((event.object_type, event.object_id))
    label = AUDIT_LABELS.get(event.object_type)
    if obj is None or label is None:
        return f"{event.object_type.replace('_', ' ')} {event.object_id or ''}".strip()
    return label(obj)


@bp.app_template_global("utc_now")
def utc_now():
    """The current time (UTC), for templates comparing lock and due times."""
    return utcnow()


# ------------------------------------------------------------------ sign-in


def _login_limit() -> str:
    return current_app.config.get("LOGIN_RATE_LIMIT", "10 per minute; 60 per hour")


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(
    _login_limit,
    methods=["POST"],
    error_message="Too many sign-in attempts from your address. Wait a minute, then try again.",
)
def login():
    """Sign in with email and password (throttled per address, locked per account)."""
    target = request.values.get("next")
    if current_user.is_authenticated and current_user.is_staff:
        return redirect(safe_next(target, home_endpoint(current_user.role)))
    form = LoginForm()
    status = 200
    if request.method == "POST":
        form.validate()
        email = form.email.data
        password = form.password.data
        if form.ok:
            try:
                user = users.authenticate(email, password, remote_addr())
            except users.LoginFailed as exc:
                db.session.commit()  # the failure counts even though sign-in fails
                flash(str(exc), "danger")
                status = 401
            else:
                session.clear()
                login_user(user)
                mark_session_started()
                db.session.commit()
                flash(f"Welcome back, {user.name}.", "success")
                return redirect(safe_next(target, home_endpoint(user.role)))
        else:
            status = 400
    return (
        render_template(
            "admin/login.html",
            email=form.email.raw[:254],
            errors=form.messages,
            next=target if target and safe_next(target) == target.strip() else "",
        ),
        status,
    )


@bp.route("/logout", methods=["POST"])
@role_required(*READERS)
def logout():
    """Sign out: every copy of this user's session ends (the version is bumped)."""
    users.logout(me())
    db.session.commit()
    logout_user()
    session.clear()
    flash("You are signed out.", "info")
    return redirect(url_for("admin.login"))


@bp.route("/account", methods=["GET", "POST"])
@role_required(*READERS)
def account():
    """Your account: change your password (other sessions end)."""
    errors: dict[str, str] = {}
    status = 200
    if request.method == "POST":
        form = AccountPasswordForm()
        form.validate()
        user = me()
        try:
            users.change_own_password(
                user,
                form.current_password.data,
                form.new_password.data,
                form.confirm_password.data,
            )
        except FieldErrors as exc:
            db.session.rollback()
            errors = exc.errors
            status = 400
            flash("Your password was not changed.", "danger")
        else:
            db.session.commit()
            # Keep this session alive under the new version; every other one ends.
            login_user(user)
            mark_session_started()
            flash(
                "Your password was changed. Other sessions were signed out.", "success"
            )
            return redirect(url_for("admin.account"))
    return render_template("admin/account.html", errors=errors), status


# ------------------------------------------------------------------ home


@bp.route("/")
@role_required(*READERS)
def index():
    """Home: what needs attention now, with counts and links."""
    backlog = stale_backlog() if current_user.role == Role.ADMIN else None
    return render_template("admin/index.html", a=dashboard.attention(), backlog=backlog)


# ------------------------------------------------------------------ audit


AUDIT_OBJECT_TYPES = [
    ("billing", "Billing"),
    ("invitation", "Invitation"),
    ("contact", "Contact"),
    ("commitment", "Commitment"),
    ("sov_line", "SOV line"),
    ("change_order", "Change order"),
    ("project", "Project"),
    ("vendor", "Vendor"),
    ("billing_period", "Billing period"),
    ("client_contract", "Client contract"),
    ("client_sov_line", "Client SOV line"),
    ("client_claim", "Client claim"),
    ("user", "User"),
    ("outbox_message", "Outbox message"),
    ("login_link", "Login link"),
]


def audit_query(
    *,
    action: str = "",
    object_type: str = "",
    object_id: int | None = None,
    actor_id: int | None = None,
    since: str = "",
    until: str = "",
) -> sa.Select:
    """Audit events matching the filters, newest first."""
    stmt = sa.select(AuditEvent).options(
        joinedload(AuditEvent.actor_user), joinedload(AuditEvent.actor_contact)
    )
    if action:
        stmt = stmt.where(AuditEvent.action.startswith(action, autoescape=True))
    if object_type:
        stmt = stmt.where(AuditEvent.object_type == object_type)
    if object_id:
        stmt = stmt.where(AuditEvent.object_id == object_id)
    if actor_id:
        stmt = stmt.where(AuditEvent.actor_user_id == actor_id)
    form = AuditFilterForm(formdata={"since": since, "until": until})
    form.validate()
    start, end = form.since.data, form.until.data
    if start:
        stmt = stmt.where(AuditEvent.created_at >= _day_start(start))
    if end:
        stmt = stmt.where(AuditEvent.created_at < _day_start(end) + timedelta(days=1))
    return stmt.order_by(AuditEvent.id.desc())


def _day_start(day):
    from datetime import UTC, datetime

    return datetime(day.year, day.month, day.day, tzinfo=UTC)


#: The audit log's sortable columns; newest first by default.
AUDIT_SORTS = SortSpec(
    {
        "when": AuditEvent.created_at,
        "action": AuditEvent.action,
        "object": (AuditEvent.object_type, AuditEvent.object_id),
    },
    default="-when",
    tiebreak=AuditEvent.id,
    desc_first=frozenset({"when"}),
)


@bp.route("/audit")
@role_required(*AUDITORS)
def audit_log():
    """The global audit trail, filterable and paginated."""
    filters = {
        "action": arg_text("action", 60),
        "object_type": arg_text("object_type", 40),
        "object_id": arg_id("object_id"),
        "actor_id": arg_id("actor_id"),
        "since": arg_text("since", 10),
        "until": arg_text("until", 10),
    }
    sort = AUDIT_SORTS.parse(request.args)
    stmt = audit_query(**filters)
    pagination = paginate(
        sort.apply(stmt),
        AuditEvent.id,
        page=page_arg(),
        per_page=per_page(),
        count=sa.select(sa.func.count())
        .select_from(AuditEvent)
        .where(*([stmt.whereclause] if stmt.whereclause is not None else [])),
    )
    actors = db.session.scalars(sa.select(User).order_by(User.name)).all()
    args = {k: v for k, v in filters.items() if v}
    return render_template(
        "admin/audit_log.html",
        pagination=pagination,
        objects=audit.objects_of(pagination.items),
        filters=filters,
        args=args,
        sort=sort,
        actors=actors,
        object_types=AUDIT_OBJECT_TYPES,
    )


# ------------------------------------------------------------------ outbox


@bp.route("/outbox")
@role_required(*ADMINS)
def outbox():
    """Mail waiting, sent and failed; failed ones can be retried."""
    status = arg_text("status", 16)
    stmt = sa.select(OutboxMessage).order_by(OutboxMessage.id.desc())
    if status in {s.value for s in OutboxStatus}:
        stmt = stmt.where(OutboxMessage.status == status)
    else:
        status = ""
    q = arg_text("q", 100)
    if q:
        from portal.admin.common import like

        stmt = stmt.where(
            sa.or_(
                sa.func.lower(OutboxMessage.recipient).like(like(q), escape="\\"),
                sa.func.lower(OutboxMessage.subject).like(like(q), escape="\\"),
            )
        )
    pagination = db.paginate(
        stmt, page=page_arg(), per_page=per_page(), error_out=False
    )
    counts = dict(
        db.session.execute(
            sa.select(OutboxMessage.status, sa.func.count()).group_by(
                OutboxMessage.status
            )
        ).all()
    )
    return render_template(
        "admin/outbox.html",
        pagination=pagination,
        status=status,
        q=q,
        counts=counts,
        now=utcnow(),
        backlog=stale_backlog(),
    )


@bp.route("/outbox/<int:message_id>")
@role_required(*ADMINS)
def outbox_message(message_id: int):
    """One message: where it stands, its attempts and last error, and its text
    (sign-in links hidden: reading the outbox must not sign anyone in)."""
    message = db.get_or_404(OutboxMessage, message_id)
    return render_template(
        "admin/outbox_message.html",
        m=message,
        body=redacted_body(message),
        now=utcnow(),
        max_attempts=current_app.config["OUTBOX_MAX_ATTEMPTS"],
    )


@bp.route("/outbox/<int:message_id>/retry", methods=["POST"])
@role_required(*ADMINS)
def outbox_retry(message_id: int):
    """Queue a failed (or waiting) message for delivery now."""
    message = db.get_or_404(OutboxMessage, message_id)
    if message.status == OutboxStatus.SENT:
        flash("That message was already sent.", "info")
        return redirect(url_for("admin.outbox"))
    before = {"status": message.status, "attempts": message.attempts}
    retry_message(message)
    audit.record(
        me(), "outbox.retry", message, before=before, after={"status": "pending"}
    )
    db.session.commit()
    flash(
        f"The message to {message.recipient} will be sent on the mail worker's next pass.",
        "success",
    )
    if request.args.get("back") == "message":
        return redirect(url_for("admin.outbox_message", message_id=message.id))
    return redirect(url_for("admin.outbox", status=request.args.get("status") or None))


@bp.route("/outbox/retry-failed", methods=["POST"])
@role_required(*ADMINS)
def outbox_retry_failed():
    """Queue every failed message again."""
    failed = db.session.scalars(
        sa.select(OutboxMessage).where(OutboxMessage.status == OutboxStatus.FAILED)
    ).all()
    for message in failed:
        retry_message(message)
        audit.record(
            me(),
            "outbox.retry",
            message,
            before={"status": OutboxStatus.FAILED, "attempts": message.attempts},
            after={"status": OutboxStatus.PENDING},
        )
    db.session.commit()
    if failed:
        flash(f"{len(failed)} failed message(s) queued again.", "success")
    else:
        flash("There are no failed messages.", "info")
    return redirect(url_for("admin.outbox"))
