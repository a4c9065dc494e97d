"""Finance pages (``/exports/``): ready-to-export billings, batches, ERP settings,
API tokens. Views are thin: parse → domain function → commit once → flash.

The blueprint guard fails closed: every page needs a signed-in staff user
(contacts get 403), and ``/exports/api/`` goes to token authentication instead.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from flask import (
    abort,
    current_app,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user
from sqlalchemy.orm import defer, joinedload, selectinload

from portal.accounts import api_tokens
from portal.accounts.auth import role_required
from portal.core.statuses import EXPORTERS, READERS
from portal.exports import api, bp
from portal.exports.forms import (
    BATCH_STATES,
    BatchCreateForm,
    ReverseForm,
    TokenForm,
    cost_code_form,
    project_code_form,
    query_page,
    read_batch_filters,
    read_filters,
    settings_form,
    vendor_code_form,
)
from portal.extensions import db, login_manager
from portal.finance import batches as export_batches
from portal.finance import erp
from portal.finance.builders import FORMATS, NO_DIRECT_EXPORT
from portal.models import ApiToken, BillingPeriod, ExportBatch, Project, Vendor
from portal.web.sorting import SortSpec, paginate

STAFF = READERS
WRITERS = EXPORTERS
READY_PAGE_SIZE = 50
BATCH_PAGE_SIZE = 25
SETTINGS_PAGE_SIZE = 25


@bp.before_request
def require_staff():
    """Fail closed: the API authenticates by token, every page needs staff."""
    if request.path.startswith(api.API_PREFIX):
        return api.guard()
    if not current_user.is_authenticated:
        if login_manager.login_view in current_app.view_functions:
            return login_manager.unauthorized()
        abort(401)
    if not current_user.is_staff:
        abort(403)
    return None


@bp.after_request
def no_store(response):
    """Finance pages hold amounts and bank-bound data: never cached (as admin)."""
    response.headers.setdefault("Cache-Control", "no-store")
    return response


def _may_write() -> bool:
    return current_user.role in WRITERS


# ----------------------------------------------------------- ready to export


@bp.route("/")
@role_required(*STAFF)
def index():
    """Approved billings not yet exported, with missing ERP codes, and batches."""
    filters = read_filters(request.args, export_batches.latest_format())
    page = query_page(request.args)
    pagination = db.paginate(
        export_batches.unexported_query(
            filters.project_id, filters.period_id, filters.vendor_id
        ),
        page=page,
        per_page=READY_PAGE_SIZE,
        error_out=False,
    )
    items = export_batches.readiness(list(pagination.items), filters.fmt)
    batches = db.session.scalars(
        sa.select(ExportBatch)
        .options(defer(ExportBatch.content), joinedload(ExportBatch.created_by))
        .order_by(ExportBatch.id.desc())
        .limit(10)
    ).all()
    return render_template(
        "exports/index.html",
        filters=filters,
        pagination=pagination,
        items=items,
        ready_count=sum(1 for item in items if item.ready),
        batches=batches,
        currencies=export_batches.batch_currencies(b.id for b in batches),
        formats=FORMATS,
        no_direct=NO_DIRECT_EXPORT,
        projects=db.session.scalars(sa.select(Project).order_by(Project.number)).all(),
        periods=db.session.scalars(
            sa.select(BillingPeriod)
            .options(joinedload(BillingPeriod.project))
            .order_by(BillingPeriod.project_id, BillingPeriod.sequence)
        ).all(),
        vendors=db.session.scalars(sa.select(Vendor).order_by(Vendor.name)).all(),
        may_write=_may_write(),
    )


@bp.route("/batches", methods=["POST"])
@role_required(*WRITERS)
def batch_create():
    """Create a batch from the selected billings (all or nothing)."""
    form = BatchCreateForm()
    form.validate()
    back = url_for(
        "exports.index",
        **{
            key: value
            for key, value in {
                "project": form.f_project.data,
                "period": form.f_period.data,
                "vendor": form.f_vendor.data,
                "format": form.fmt,
            }.items()
            if value
        },
    )
    if form.fmt is None:
        flash("Choose an export format.", "danger")
        return redirect(back)
    if form.billing_id.bad or not form.billing_id.data:
        flash("Select at least one billing to export.", "warning")
        return redirect(back)
    try:
        batch = export_batches.create_batch(
            current_user,
            form.fmt,
            form.billing_id.data,
            include_vendors=form.include_vendors.data,
        )
    except export_batches.NotReady as exc:
        db.session.rollback()
        details = "; ".join(
            f"{exc.labels.get(billing_id, billing_id)}: {', '.join(found)}"
            for billing_id, found in list(exc.problems.items())[:10]
        )
        flash(f"{exc} {details}", "danger")
        return redirect(back)
    except export_batches.ExportError as exc:
        db.session.rollback()
        flash(str(exc), "danger")
        return redirect(back)
    db.session.commit()
    flash(
        f"Batch {batch.id} created with {batch.billing_count} "
        f"billing{'s' if batch.billing_count != 1 else ''}. Download the file below.",
        "success",
    )
    return redirect(url_for("exports.batch_view", batch_id=batch.id))


# ------------------------------------------------------------------ batches


#: The batch list's sortable columns.
BATCH_SORTS = SortSpec(
    {
        "id": ExportBatch.id,
        "created": ExportBatch.created_at,
        "format": ExportBatch.format,
        "file": ExportBatch.filename,
        "billings": ExportBatch.billing_count,
        "total": ExportBatch.total_amount,
        "state": ExportBatch.reversed_at,
    },
    default="-id",
    tiebreak=ExportBatch.id,
    nullable=frozenset({"state"}),
    desc_first=frozenset({"id", "created", "billings", "total"}),
)


def _day_start(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


@bp.route("/batches")
@role_required(*STAFF)
def batches():
    """Every export batch, newest first; filtered by format, state and date,
    sortable by column. The stored files are never read here."""
    page = query_page(request.args)
    filters = read_batch_filters(request.args)
    where: list[Any] = []
    if "format" in filters:
        where.append(ExportBatch.format == filters["format"])
    if filters.get("state") == "live":
        where.append(ExportBatch.reversed_at.is_(None))
    elif filters.get("state") == "reversed":
        where.append(ExportBatch.reversed_at.is_not(None))
    since, until = filters.get("since"), filters.get("until")
    if isinstance(since, date):
        where.append(ExportBatch.created_at >= _day_start(since))
    if isinstance(until, date):
        where.append(ExportBatch.created_at < _day_start(until + timedelta(days=1)))
    sort = BATCH_SORTS.parse(request.args)
    pagination = paginate(
        sort.apply(
            sa.select(ExportBatch)
            .options(
                defer(ExportBatch.content),
                joinedload(ExportBatch.created_by),
                joinedload(ExportBatch.reversed_by),
            )
            .where(*where)
        ),
        ExportBatch.id,
        page=page,
        per_page=BATCH_PAGE_SIZE,
        count=sa.select(sa.func.count()).select_from(ExportBatch).where(*where),
    )
    args = {
        key: value.isoformat() if isinstance(value, date) else value
        for key, value in filters.items()
    }
    return render_template(
        "exports/batches.html",
        pagination=pagination,
        filters=args,
        args=args,
        sort=sort,
        states=BATCH_STATES,
        currencies=export_batches.batch_currencies(b.id for b in pagination.items),
        formats=FORMATS,
        may_write=_may_write(),
    )


def _batch_or_404(batch_id: int) -> ExportBatch:
    batch = db.session.scalar(
        sa.select(ExportBatch)
        .where(ExportBatch.id == batch_id)
        .options(selectinload(ExportBatch.items))
    )
    if batch is None:
        abort(404)
    return batch


@bp.route("/batches/<int:batch_id>")
@role_required(*STAFF)
def batch_view(batch_id: int):
    """One batch: its billings, file, and the reverse form."""
    batch = _batch_or_404(batch_id)
    billings = export_batches.batch_billings(batch)
    rows = export_batches.export_rows(billings)
    return render_template(
        "exports/batch.html",
        batch=batch,
        currencies=export_batches.batch_currencies([batch.id]),
        entries=[(b, rows[b.id]) for b in billings],
        formats=FORMATS,
        may_write=_may_write(),
        errors={},
        values={},
    )


@bp.route("/batches/<int:batch_id>/download")
@role_required(*STAFF)
def batch_download(batch_id: int):
    """The batch's stored file, byte for byte."""
    return api.send_batch_file(_batch_or_404(batch_id))


@bp.route("/batches/<int:batch_id>/reverse", methods=["POST"])
@role_required(*WRITERS)
def batch_reverse(batch_id: int):
    """Reverse a batch with a reason; its billings can be exported again."""
    batch = _batch_or_404(batch_id)
    form = ReverseForm()
    try:
        freed = export_batches.reverse_batch(batch, current_user, form.reason.data)
    except export_batches.ReasonRequired as exc:
        db.session.rollback()
        form.add_errors(exc.errors)
        billings = export_batches.batch_billings(batch)
        rows = export_batches.export_rows(billings)
        return (
            render_template(
                "exports/batch.html",
                batch=batch,
                currencies=export_batches.batch_currencies([batch.id]),
                entries=[(b, rows[b.id]) for b in billings],
                formats=FORMATS,
                may_write=_may_write(),
                errors=form.messages,
                values=form.values,
            ),
            400,
        )
    except export_batches.ExportError as exc:
        db.session.rollback()
        flash(str(exc), "danger")
        return redirect(url_for("exports.batch_view", batch_id=batch_id))
    db.session.commit()
    flash(
        f"Batch {batch_id} reversed: {len(freed)} "
        f"billing{'s' if len(freed) != 1 else ''} can be exported again.",
        "success",
    )
    return redirect(url_for("exports.batch_view", batch_id=batch_id))


# ------------------------------------------------------------- ERP settings


@bp.route("/settings")
@role_required(*STAFF)
def settings():
    """ERP accounts and defaults."""
    row = export_batches.erp_settings()
    values = {name: getattr(row, name) or "" for name in erp.SETTINGS_FIELDS}
    return render_template(
        "exports/settings.html",
        values=values,
        fields=erp.SETTINGS_FIELDS,
        errors={},
        may_write=_may_write(),
        tab="accounts",
    )


@bp.route("/settings", methods=["POST"])
@role_required(*WRITERS)
def settings_save():
    """Save the ERP accounts and defaults."""
    form = settings_form()
    data = form.texts()
    try:
        changed = erp.save_settings(current_user, data)
    except erp.SettingsInvalid as exc:
        db.session.rollback()
        form.add_errors(exc.errors)
        return (
            render_template(
                "exports/settings.html",
                values=data,
                fields=erp.SETTINGS_FIELDS,
                errors=form.messages,
                may_write=True,
                tab="accounts",
            ),
            400,
        )
    db.session.commit()
    flash("ERP settings saved." if changed else "Nothing changed.", "success")
    return redirect(url_for("exports.settings"))


def _cost_code_page(page: int) -> tuple[object, list[dict[str, str]]]:
    pagination = db.paginate(
        erp.cost_codes_select(),
        page=page,
        per_page=SETTINGS_PAGE_SIZE,
        error_out=False,
    )
    codes = list(pagination.items)
    known = export_batches.cost_code_settings()
    rows = []
    for code in codes:
        row = known.get(code)
        rows.append(
            {
                "code": code,
                **{
                    name: (getattr(row, name) or "") if row else ""
                    for name in erp.COST_CODE_FIELDS
                },
            }
        )
    return pagination, rows


@bp.route("/settings/cost-codes")
@role_required(*STAFF)
def settings_cost_codes():
    """ERP codes per cost code: expense account, Sage cost code/category, QB class."""
    page = query_page(request.args)
    pagination, rows = _cost_code_page(page)
    return render_template(
        "exports/settings_cost_codes.html",
        pagination=pagination,
        rows=rows,
        fields=erp.COST_CODE_FIELDS,
        defaults=export_batches.erp_settings(),
        errors={},
        may_write=_may_write(),
        tab="cost_codes",
    )


@bp.route("/settings/cost-codes", methods=["POST"])
@role_required(*WRITERS)
def settings_cost_codes_save():
    """Save one page of cost-code mappings."""
    form = cost_code_form()
    page = form.page_number
    data = form.rows()
    try:
        changed = erp.save_cost_codes(current_user, data)
    except erp.SettingsInvalid as exc:
        db.session.rollback()
        form.add_errors(exc.errors)
        pagination, _ = _cost_code_page(page)
        rows = [{"code": code, **values} for code, values in data.items()]
        return (
            render_template(
                "exports/settings_cost_codes.html",
                pagination=pagination,
                rows=rows,
                fields=erp.COST_CODE_FIELDS,
                defaults=export_batches.erp_settings(),
                errors=form.messages,
                may_write=True,
                tab="cost_codes",
            ),
            400,
        )
    db.session.commit()
    flash(
        f"Saved {changed} cost code{'s' if changed != 1 else ''}."
        if changed
        else "Nothing changed.",
        "success",
    )
    return redirect(url_for("exports.settings_cost_codes", page=page))


@bp.route("/settings/cost-codes/fill-sage", methods=["POST"])
@role_required(*WRITERS)
def settings_cost_codes_fill():
    """Copy each portal cost code into its blank Sage cost code."""
    changed = erp.fill_sage_cost_codes(current_user)
    db.session.commit()
    flash(
        f"Filled {changed} blank Sage cost code{'s' if changed != 1 else ''}.",
        "success",
    )
    return redirect(url_for("exports.settings_cost_codes"))


def _vendor_page(page: int) -> object:
    return db.paginate(
        sa.select(Vendor).order_by(Vendor.name),
        page=page,
        per_page=SETTINGS_PAGE_SIZE,
        error_out=False,
    )


@bp.route("/settings/vendors")
@role_required(*STAFF)
def settings_vendors():
    """ERP vendor codes."""
    page = query_page(request.args)
    return render_template(
        "exports/settings_vendors.html",
        pagination=_vendor_page(page),
        values={},
        errors={},
        may_write=_may_write(),
        tab="vendors",
    )


@bp.route("/settings/vendors", methods=["POST"])
@role_required(*WRITERS)
def settings_vendors_save():
    """Save one page of vendor codes."""
    form = vendor_code_form()
    page = form.page_number
    data = form.codes()
    try:
        changed = erp.save_vendor_codes(current_user, data)
    except erp.SettingsInvalid as exc:
        db.session.rollback()
        form.add_errors(exc.errors)
        return (
            render_template(
                "exports/settings_vendors.html",
                pagination=_vendor_page(page),
                values=data,
                errors=form.messages,
                may_write=True,
                tab="vendors",
            ),
            400,
        )
    db.session.commit()
    flash(
        f"Saved {changed} vendor code{'s' if changed != 1 else ''}."
        if changed
        else "Nothing changed.",
        "success",
    )
    return redirect(url_for("exports.settings_vendors", page=page))


def _project_page(page: int) -> object:
    return db.paginate(
        sa.select(Project).order_by(Project.number),
        page=page,
        per_page=SETTINGS_PAGE_SIZE,
        error_out=False,
    )


@bp.route("/settings/projects")
@role_required(*STAFF)
def settings_projects():
    """ERP job numbers and QuickBooks Customer:Job names per project."""
    page = query_page(request.args)
    return render_template(
        "exports/settings_projects.html",
        pagination=_project_page(page),
        values={},
        errors={},
        may_write=_may_write(),
        tab="projects",
    )


@bp.route("/settings/projects", methods=["POST"])
@role_required(*WRITERS)
def settings_projects_save():
    """Save one page of project codes."""
    form = project_code_form()
    page = form.page_number
    data = form.rows()
    try:
        changed = erp.save_project_codes(current_user, data)
    except erp.SettingsInvalid as exc:
        db.session.rollback()
        form.add_errors(exc.errors)
        return (
            render_template(
                "exports/settings_projects.html",
                pagination=_project_page(page),
                values=data,
                errors=form.messages,
                may_write=True,
                tab="projects",
            ),
            400,
        )
    db.session.commit()
    flash(
        f"Saved {changed} project{'s' if changed != 1 else ''}."
        if changed
        else "Nothing changed.",
        "success",
    )
    return redirect(url_for("exports.settings_projects", page=page))


# --------------------------------------------------------------- API tokens


def _tokens_page(
    new_token: str | None = None, form: TokenForm | None = None, code: int = 200
):
    response = make_response(
        render_template(
            "exports/tokens.html",
            tokens=api_tokens.tokens_of(current_user),
            new_token=new_token,
            errors=form.messages if form is not None else {},
            values=form.values if form is not None else {},
            may_write=current_user.role in WRITERS,
        ),
        code,
    )
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/tokens")
@role_required(*STAFF)
def tokens():
    """The signed-in user's API tokens."""
    return _tokens_page()


@bp.route("/tokens", methods=["POST"])
@role_required(*STAFF)
def token_create():
    """Create an API token and show it once."""
    form = TokenForm()
    try:
        _, raw = api_tokens.create_token(current_user, form.name.data)
    except api_tokens.TokenInvalid as exc:
        db.session.rollback()
        form.add_errors(exc.errors)
        return _tokens_page(form=form, code=400)
    db.session.commit()
    return _tokens_page(new_token=raw)


@bp.route("/tokens/<int:token_id>/revoke", methods=["POST"])
@role_required(*STAFF)
def token_revoke(token_id: int):
    """Revoke one of the signed-in user's tokens."""
    token = db.session.get(ApiToken, token_id)
    if token is None or token.user_id != current_user.id:
        abort(404)
    revoked = api_tokens.revoke_token(token, current_user)
    db.session.commit()
    flash(
        f"Token {token.prefix}… revoked."
        if revoked
        else "That token was already revoked.",
        "success" if revoked else "info",
    )
    return redirect(url_for("exports.tokens"))
