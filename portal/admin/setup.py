"""Set-up pages: projects, vendors and contacts, commitments with SOV lines, CSV
import, change orders, billing contacts, client contracts (SPEC §2)."""

from __future__ import annotations

import zoneinfo
from functools import cache

import sqlalchemy as sa
from flask import flash, redirect, render_template, request, url_for
from sqlalchemy.orm import joinedload, selectinload

from portal import contracts
from portal.accounts.auth import role_required
from portal.admin import bp
from portal.admin.common import (
    ADMINS,
    READERS,
    arg_text,
    form_page,
    like,
    me,
    page_arg,
    per_page,
)
from portal.billing.dashboard import billing_sums
from portal.billing.figures import _cents
from portal.contracts.sov_import import ImportFailed, parse_sov_csv
from portal.core.statuses import (
    ChangeOrderStatus,
    CommitmentKind,
    CommitmentStatus,
    ContractStatus,
    Currency,
    PeriodStatus,
)
from portal.extensions import db
from portal.models import (
    Billing,
    BillingPeriod,
    ChangeOrder,
    ChangeOrderItem,
    ClientContract,
    ClientSovLine,
    Commitment,
    Contact,
    Project,
    SovLine,
    Vendor,
    commitment_contacts,
)
from portal.validation import FieldErrors, Form, InputError

TERMINOLOGY_CHOICES = [
    ("", "Deployment default"),
    ("us", "US: progress billing, retainage, owner invoice"),
    ("au", "Australia: progress claim, retention, HC/Client progress claim"),
    ("ca", "Canada: progress billing, holdback"),
]
KIND_CHOICES = [
    (CommitmentKind.SUBCONTRACT.value, "Subcontract"),
    (CommitmentKind.PURCHASE_ORDER.value, "Purchase order"),
]
CURRENCY_CHOICES = [(c.value, c.value) for c in Currency]


@cache
def _time_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def _pct_text(value) -> str:  # noqa: ANN001
    return f"{value.normalize():f}" if value is not None else ""


def _done(message: str, endpoint: str, **values: object):  # noqa: ANN202
    db.session.commit()
    flash(message, "success")
    return redirect(url_for(endpoint, **values))


def _refused(exc: Exception, endpoint: str, **values: object):  # noqa: ANN202
    db.session.rollback()
    flash(str(exc), "danger")
    return redirect(url_for(endpoint, **values))


def _scheduled_totals(commitment_ids: list[int]) -> dict[int, object]:
    """Original + approved change orders per commitment, in two queries."""
    if not commitment_ids:
        return {}
    original = dict(
        db.session.execute(
            sa.select(SovLine.commitment_id, sa.func.sum(SovLine.original_value))
            .where(SovLine.commitment_id.in_(commitment_ids))
            .group_by(SovLine.commitment_id)
        ).all()
    )
    changes = dict(
        db.session.execute(
            sa.select(ChangeOrder.commitment_id, sa.func.sum(ChangeOrderItem.amount))
            .join(ChangeOrderItem, ChangeOrderItem.change_order_id == ChangeOrder.id)
            .where(
                ChangeOrder.commitment_id.in_(commitment_ids),
                ChangeOrder.status == ChangeOrderStatus.APPROVED,
            )
            .group_by(ChangeOrder.commitment_id)
        ).all()
    )
    return {
        cid: _cents(original.get(cid)) + _cents(changes.get(cid))
        for cid in commitment_ids
    }


# ------------------------------------------------------------------ projects


@bp.route("/projects")
@role_required(*READERS)
def projects():  # noqa: ANN201
    """Every project, searchable and paginated."""
    q = arg_text("q")
    stmt = sa.select(Project).order_by(Project.number)
    if q:
        stmt = stmt.where(
            sa.or_(
                sa.func.lower(Project.number).like(like(q), escape="\\"),
                sa.func.lower(Project.name).like(like(q), escape="\\"),
            )
        )
    pagination = db.paginate(
        stmt, page=page_arg(), per_page=per_page(), error_out=False
    )
    ids = [p.id for p in pagination.items]
    counts = dict(
        db.session.execute(
            sa.select(Commitment.project_id, sa.func.count(Commitment.id))
            .where(Commitment.project_id.in_(ids))
            .group_by(Commitment.project_id)
        ).all()
    )
    open_periods = {
        p.project_id: p
        for p in db.session.scalars(
            sa.select(BillingPeriod).where(
                BillingPeriod.project_id.in_(ids),
                BillingPeriod.status == PeriodStatus.OPEN,
            )
        )
    }
    return render_template(
        "admin/projects.html",
        pagination=pagination,
        q=q,
        counts=counts,
        open_periods=open_periods,
    )


def _parse_project(form: Form) -> contracts.ProjectInput:
    time_zone = form.text("time_zone", max_len=64, label="a time zone")
    if time_zone and time_zone not in _time_zones():
        form.errors["time_zone"] = "Enter a time zone like America/New_York."
    terminology = form.choice("terminology", [c for c, _ in TERMINOLOGY_CHOICES])
    return contracts.ProjectInput(
        number=form.text("number", max_len=40, label="a project number"),
        name=form.text("name", max_len=200, label="a name"),
        currency=form.choice("currency", [c.value for c in Currency]),
        address=form.text("address", max_len=500, required=False, multiline=True),
        time_zone=time_zone,
        overbilling_allowed=form.flag("overbilling_allowed"),
        late_submissions_allowed=form.flag("late_submissions_allowed"),
        retainage_release_allowed=form.flag("retainage_release_allowed"),
        default_work_retainage_pct=form.percent("default_work_retainage_pct"),
        default_materials_retainage_pct=form.percent("default_materials_retainage_pct"),
        terminology=terminology or None,
        erp_job_number=form.text("erp_job_number", max_len=40, required=False) or None,
        qb_customer_job=form.text("qb_customer_job", max_len=200, required=False)
        or None,
    )


def _project_values(project: Project) -> dict[str, str]:
    return {
        "number": project.number,
        "name": project.name,
        "currency": project.currency,
        "address": project.address,
        "time_zone": project.time_zone,
        "overbilling_allowed": "1" if project.overbilling_allowed else "",
        "late_submissions_allowed": "1" if project.late_submissions_allowed else "",
        "retainage_release_allowed": "1" if project.retainage_release_allowed else "",
        "default_work_retainage_pct": _pct_text(project.default_work_retainage_pct),
        "default_materials_retainage_pct": _pct_text(
            project.default_materials_retainage_pct
        ),
        "terminology": project.terminology or "",
        "erp_job_number": project.erp_job_number or "",
        "qb_customer_job": project.qb_customer_job or "",
    }


def _project_form(project: Project | None):  # noqa: ANN202
    context = {
        "project": project,
        "terminologies": TERMINOLOGY_CHOICES,
        "currencies": CURRENCY_CHOICES,
        "time_zones": sorted(_time_zones()),
    }
    if request.method == "GET":
        values = (
            _project_values(project)
            if project
            else {
                "currency": "USD",
                "time_zone": "America/New_York",
                "default_work_retainage_pct": "10",
                "default_materials_retainage_pct": "0",
            }
        )
        return render_template(
            "admin/project_form.html", values=values, errors={}, **context
        )
    form = Form(request.form)
    data = _parse_project(form)
    if form.ok:
        try:
            saved = contracts.save_project(me(), project, data)
        except FieldErrors as exc:
            form.errors.update(exc.errors)
        else:
            return _done(
                f"Project {saved.number} saved.",
                "admin.project_view",
                project_id=saved.id,
            )
    return form_page("admin/project_form.html", form, **context)


@bp.route("/projects/new", methods=["GET", "POST"])
@role_required(*ADMINS)
def project_new():  # noqa: ANN201
    """Create a project."""
    return _project_form(None)


@bp.route("/projects/<int:project_id>/edit", methods=["GET", "POST"])
@role_required(*ADMINS)
def project_edit(project_id: int):  # noqa: ANN201
    """Change a project's settings (audited)."""
    return _project_form(db.get_or_404(Project, project_id))


@bp.route("/projects/<int:project_id>")
@role_required(*READERS)
def project_view(project_id: int):  # noqa: ANN201
    """A project: its commitments (searchable), periods and client contracts."""
    project = db.get_or_404(Project, project_id)
    q = arg_text("q")
    stmt = (
        sa.select(Commitment)
        .options(joinedload(Commitment.vendor))
        .join(Vendor, Vendor.id == Commitment.vendor_id)
        .where(Commitment.project_id == project.id)
        .order_by(Commitment.number)
    )
    if q:
        stmt = stmt.where(
            sa.or_(
                sa.func.lower(Commitment.number).like(like(q), escape="\\"),
                sa.func.lower(Commitment.title).like(like(q), escape="\\"),
                sa.func.lower(Vendor.name).like(like(q), escape="\\"),
            )
        )
    pagination = db.paginate(
        stmt, page=page_arg(), per_page=per_page(), error_out=False
    )
    ids = [c.id for c in pagination.items]
    contact_counts = dict(
        db.session.execute(
            sa.select(commitment_contacts.c.commitment_id, sa.func.count())
            .where(commitment_contacts.c.commitment_id.in_(ids))
            .group_by(commitment_contacts.c.commitment_id)
        ).all()
    )
    periods = db.session.scalars(
        sa.select(BillingPeriod)
        .where(BillingPeriod.project_id == project.id)
        .order_by(BillingPeriod.sequence.desc())
        .limit(6)
    ).all()
    contracts = db.session.scalars(
        sa.select(ClientContract)
        .where(ClientContract.project_id == project.id)
        .order_by(ClientContract.number)
    ).all()
    return render_template(
        "admin/project_view.html",
        project=project,
        pagination=pagination,
        q=q,
        totals=_scheduled_totals(ids),
        contact_counts=contact_counts,
        periods=periods,
        contracts=contracts,
    )


# ------------------------------------------------------------------- vendors


@bp.route("/vendors")
@role_required(*READERS)
def vendors():  # noqa: ANN201
    """Every vendor, searchable by name, ERP code or contact; paginated."""
    q = arg_text("q")
    stmt = sa.select(Vendor).order_by(Vendor.name)
    if q:
        pattern = like(q)
        contact_match = (
            sa.select(Contact.id)
            .where(
                Contact.vendor_id == Vendor.id,
                sa.or_(
                    sa.func.lower(Contact.email).like(pattern, escape="\\"),
                    sa.func.lower(Contact.name).like(pattern, escape="\\"),
                ),
            )
            .exists()
        )
        stmt = stmt.where(
            sa.or_(
                sa.func.lower(Vendor.name).like(pattern, escape="\\"),
                sa.func.lower(Vendor.erp_vendor_code).like(pattern, escape="\\"),
                contact_match,
            )
        )
    pagination = db.paginate(
        stmt, page=page_arg(), per_page=per_page(), error_out=False
    )
    ids = [v.id for v in pagination.items]
    contacts = dict(
        db.session.execute(
            sa.select(Contact.vendor_id, sa.func.count(Contact.id))
            .where(Contact.vendor_id.in_(ids), Contact.active.is_(True))
            .group_by(Contact.vendor_id)
        ).all()
    )
    commitments = dict(
        db.session.execute(
            sa.select(Commitment.vendor_id, sa.func.count(Commitment.id))
            .where(Commitment.vendor_id.in_(ids))
            .group_by(Commitment.vendor_id)
        ).all()
    )
    return render_template(
        "admin/vendors.html",
        pagination=pagination,
        q=q,
        contacts=contacts,
        commitments=commitments,
    )


def _parse_vendor(form: Form) -> contracts.VendorInput:
    return contracts.VendorInput(
        name=form.text("name", max_len=200, label="a name"),
        address=form.text("address", max_len=500, required=False, multiline=True),
        erp_vendor_code=form.text("erp_vendor_code", max_len=40, required=False)
        or None,
    )


def _vendor_form(vendor: Vendor | None):  # noqa: ANN202
    if request.method == "GET":
        values = (
            {
                "name": vendor.name,
                "address": vendor.address,
                "erp_vendor_code": vendor.erp_vendor_code or "",
            }
            if vendor
            else {}
        )
        return render_template(
            "admin/vendor_form.html", vendor=vendor, values=values, errors={}
        )
    form = Form(request.form)
    data = _parse_vendor(form)
    if form.ok:
        try:
            saved = contracts.save_vendor(me(), vendor, data)
        except FieldErrors as exc:
            form.errors.update(exc.errors)
        else:
            return _done(
                f"Vendor {saved.name} saved.", "admin.vendor_view", vendor_id=saved.id
            )
    return form_page("admin/vendor_form.html", form, vendor=vendor)


@bp.route("/vendors/new", methods=["GET", "POST"])
@role_required(*ADMINS)
def vendor_new():  # noqa: ANN201
    """Create a vendor."""
    return _vendor_form(None)


@bp.route("/vendors/<int:vendor_id>/edit", methods=["GET", "POST"])
@role_required(*ADMINS)
def vendor_edit(vendor_id: int):  # noqa: ANN201
    """Change a vendor."""
    return _vendor_form(db.get_or_404(Vendor, vendor_id))


@bp.route("/vendors/<int:vendor_id>")
@role_required(*READERS)
def vendor_view(vendor_id: int):  # noqa: ANN201
    """A vendor: its contacts (add, edit, deactivate, revoke links) and commitments."""
    vendor = db.get_or_404(Vendor, vendor_id)
    contacts = db.session.scalars(
        sa.select(Contact)
        .options(selectinload(Contact.commitments))
        .where(Contact.vendor_id == vendor.id)
        .order_by(Contact.active.desc(), Contact.name)
    ).all()
    commitments = db.session.scalars(
        sa.select(Commitment)
        .options(joinedload(Commitment.project))
        .where(Commitment.vendor_id == vendor.id)
        .order_by(Commitment.project_id, Commitment.number)
    ).all()
    return render_template(
        "admin/vendor_view.html",
        vendor=vendor,
        contacts=contacts,
        commitments=commitments,
        totals=_scheduled_totals([c.id for c in commitments]),
        values={},
        errors={},
    )


# ------------------------------------------------------------------ contacts


def _parse_contact(form: Form) -> contracts.ContactInput:
    return contracts.ContactInput(
        name=form.text("name", max_len=120, label="a name"),
        email=form.email("email"),
        phone=form.text("phone", max_len=40, required=False),
    )


@bp.route("/vendors/<int:vendor_id>/contacts/new", methods=["GET", "POST"])
@role_required(*ADMINS)
def contact_new(vendor_id: int):  # noqa: ANN201
    """Add a contact to a vendor (email unique per vendor)."""
    vendor = db.get_or_404(Vendor, vendor_id)
    if request.method == "GET":
        return render_template(
            "admin/contact_form.html", vendor=vendor, contact=None, values={}, errors={}
        )
    form = Form(request.form)
    data = _parse_contact(form)
    if form.ok:
        try:
            contact = contracts.save_contact(me(), vendor, None, data)
        except FieldErrors as exc:
            form.errors.update(exc.errors)
        else:
            return _done(
                f"{contact.name} was added to {vendor.name}.",
                "admin.vendor_view",
                vendor_id=vendor.id,
            )
    return form_page("admin/contact_form.html", form, vendor=vendor, contact=None)


@bp.route("/contacts/<int:contact_id>", methods=["GET", "POST"])
@role_required(*ADMINS)
def contact_edit(contact_id: int):  # noqa: ANN201
    """Change a contact (a new email address revokes their links)."""
    contact = db.get_or_404(Contact, contact_id)
    vendor = contact.vendor
    if request.method == "GET":
        values = {"name": contact.name, "email": contact.email, "phone": contact.phone}
        return render_template(
            "admin/contact_form.html",
            vendor=vendor,
            contact=contact,
            values=values,
            errors={},
        )
    form = Form(request.form)
    data = _parse_contact(form)
    if form.ok:
        try:
            contracts.save_contact(me(), vendor, contact, data)
        except FieldErrors as exc:
            form.errors.update(exc.errors)
        except InputError as exc:
            return _refused(exc, "admin.vendor_view", vendor_id=vendor.id)
        else:
            return _done(
                f"{contact.name} was updated.", "admin.vendor_view", vendor_id=vendor.id
            )
    return form_page("admin/contact_form.html", form, vendor=vendor, contact=contact)


def _back(default: str, **values: object) -> str:
    """Where to return after a small POST: a local ``back`` field, else ``default``."""
    from portal.accounts.auth import safe_next

    target = (request.form.get("back") or "").strip()
    fallback = url_for(default, **values)
    # safe_next's own fallback can't carry ``values``: a foreign ``back`` used to
    # build url_for(default) without them (a BuildError, so a 500).
    return target if target and safe_next(target) == target else fallback


@bp.route("/contacts/<int:contact_id>/active", methods=["POST"])
@role_required(*ADMINS)
def contact_active(contact_id: int):  # noqa: ANN201
    """Deactivate (ending every link and session) or reactivate a contact."""
    contact = db.get_or_404(Contact, contact_id)
    active = Form(request.form).flag("active")
    contracts.set_contact_active(me(), contact, active)
    db.session.commit()
    flash(
        f"{contact.name} was reactivated."
        if active
        else f"{contact.name} was deactivated; their links and sessions ended.",
        "success",
    )
    return redirect(_back("admin.vendor_view", vendor_id=contact.vendor_id))


@bp.route("/contacts/<int:contact_id>/revoke-links", methods=["POST"])
@role_required(*ADMINS)
def contact_revoke(contact_id: int):  # noqa: ANN201
    """Revoke every link and session of a contact at once."""
    contact = db.get_or_404(Contact, contact_id)
    contracts.revoke_links(me(), contact)
    db.session.commit()
    flash(
        f"Every link and session of {contact.name} was revoked. "
        "They can ask for a fresh link from the sign-in page.",
        "success",
    )
    return redirect(_back("admin.vendor_view", vendor_id=contact.vendor_id))


# --------------------------------------------------------------- commitments


def _parse_commitment(form: Form) -> contracts.CommitmentInput:
    return contracts.CommitmentInput(
        vendor_id=form.identifier("vendor_id") or 0,
        kind=form.choice("kind", [k for k, _ in KIND_CHOICES]),
        number=form.text("number", max_len=40, label="a number"),
        title=form.text("title", max_len=200, label="a title"),
        work_retainage_pct=form.percent("work_retainage_pct"),
        materials_retainage_pct=form.percent("materials_retainage_pct"),
    )


def _commitment_form(project: Project, commitment: Commitment | None):  # noqa: ANN202
    vendors_list = db.session.scalars(sa.select(Vendor).order_by(Vendor.name)).all()
    context = {
        "project": project,
        "commitment": commitment,
        "vendors": [(v.id, v.name) for v in vendors_list],
        "kinds": KIND_CHOICES,
    }
    if request.method == "GET":
        if commitment is not None:
            values = {
                "vendor_id": commitment.vendor_id,
                "kind": commitment.kind,
                "number": commitment.number,
                "title": commitment.title,
                "work_retainage_pct": _pct_text(commitment.work_retainage_pct),
                "materials_retainage_pct": _pct_text(
                    commitment.materials_retainage_pct
                ),
            }
        else:
            values = {
                "kind": "subcontract",
                "vendor_id": request.args.get("vendor_id", ""),
                "work_retainage_pct": _pct_text(project.default_work_retainage_pct),
                "materials_retainage_pct": _pct_text(
                    project.default_materials_retainage_pct
                ),
            }
        return render_template(
            "admin/commitment_form.html", values=values, errors={}, **context
        )
    form = Form(request.form)
    data = _parse_commitment(form)
    if form.ok:
        try:
            saved = contracts.save_commitment(me(), project, commitment, data)
        except FieldErrors as exc:
            form.errors.update(exc.errors)
        else:
            return _done(
                f"Commitment {saved.number} saved.",
                "admin.commitment_view",
                commitment_id=saved.id,
            )
    return form_page("admin/commitment_form.html", form, **context)


@bp.route("/projects/<int:project_id>/commitments/new", methods=["GET", "POST"])
@role_required(*ADMINS)
def commitment_new(project_id: int):  # noqa: ANN201
    """Create a draft commitment (subcontract or purchase order)."""
    return _commitment_form(db.get_or_404(Project, project_id), None)


@bp.route("/commitments/<int:commitment_id>/edit", methods=["GET", "POST"])
@role_required(*ADMINS)
def commitment_edit(commitment_id: int):  # noqa: ANN201
    """Change a commitment's header."""
    commitment = db.get_or_404(Commitment, commitment_id)
    return _commitment_form(commitment.project, commitment)


def _commitment_page(commitment: Commitment, form: Form | None = None, status=200):  # noqa: ANN001, ANN202
    from portal.billing.figures import billable_sov_lines

    if form is not None:
        db.session.rollback()
    lines = db.session.scalars(
        sa.select(SovLine)
        .options(joinedload(SovLine.added_by))
        .where(SovLine.commitment_id == commitment.id)
        .order_by(SovLine.line_number)
    ).all()
    counted = {
        info.line.id: info.change_orders for info in billable_sov_lines(commitment)
    }
    change_orders = db.session.scalars(
        sa.select(ChangeOrder)
        .options(selectinload(ChangeOrder.items))
        .where(ChangeOrder.commitment_id == commitment.id)
        .order_by(ChangeOrder.created_at, ChangeOrder.id)
    ).all()
    billings = db.session.scalars(
        sa.select(Billing)
        .options(joinedload(Billing.period))
        .where(Billing.commitment_id == commitment.id)
        .order_by(Billing.application_number.desc(), Billing.id.desc())
    ).all()
    on_it = {c.id for c in commitment.contacts}
    candidates = db.session.scalars(
        sa.select(Contact)
        .where(Contact.vendor_id == commitment.vendor_id, Contact.active.is_(True))
        .order_by(Contact.name)
    ).all()
    values = dict(form.data) if form is not None else {}
    values.setdefault("line_number", str(contracts.next_line_number(commitment)))
    errors = form.errors if form is not None else {}
    return (
        render_template(
            "admin/commitment_view.html",
            commitment=commitment,
            project=commitment.project,
            lines=lines,
            counted=counted,
            change_orders=change_orders,
            billings=billings,
            sums=billing_sums([b.id for b in billings]),
            candidates=[c for c in candidates if c.id not in on_it],
            values=values,
            errors=errors,
        ),
        400 if errors else status,
    )


@bp.route("/commitments/<int:commitment_id>")
@role_required(*READERS)
def commitment_view(commitment_id: int):  # noqa: ANN201
    """A commitment: SOV lines, change orders, billing contacts and billings."""
    return _commitment_page(db.get_or_404(Commitment, commitment_id))


@bp.route("/commitments/<int:commitment_id>/status", methods=["POST"])
@role_required(*ADMINS)
def commitment_status(commitment_id: int):  # noqa: ANN201
    """Approve, return to draft or void a commitment."""
    commitment = db.get_or_404(Commitment, commitment_id)
    status = Form(request.form).choice(
        "status", [s.value for s in CommitmentStatus], default=""
    )
    try:
        contracts.set_commitment_status(me(), commitment, status)
    except InputError as exc:
        return _refused(exc, "admin.commitment_view", commitment_id=commitment_id)
    return _done(
        f"Commitment {commitment.number} is now {status}.",
        "admin.commitment_view",
        commitment_id=commitment_id,
    )


@bp.route("/commitments/<int:commitment_id>/contacts", methods=["POST"])
@role_required(*ADMINS)
def commitment_contact_add(commitment_id: int):  # noqa: ANN201
    """Make a contact of the vendor a billing contact on the commitment."""
    commitment = db.get_or_404(Commitment, commitment_id)
    contact_id = Form(request.form).identifier("contact_id")
    contact = db.session.get(Contact, contact_id) if contact_id else None
    if contact is None:
        flash("Choose a contact to add.", "danger")
        return redirect(url_for("admin.commitment_view", commitment_id=commitment_id))
    try:
        contracts.add_commitment_contact(me(), commitment, contact)
    except InputError as exc:
        return _refused(exc, "admin.commitment_view", commitment_id=commitment_id)
    return _done(
        f"{contact.name} is now a billing contact on {commitment.number}.",
        "admin.commitment_view",
        commitment_id=commitment_id,
    )


@bp.route(
    "/commitments/<int:commitment_id>/contacts/<int:contact_id>/remove",
    methods=["POST"],
)
@role_required(*ADMINS)
def commitment_contact_remove(commitment_id: int, contact_id: int):  # noqa: ANN201
    """Remove a billing contact: their links and sessions end."""
    commitment = db.get_or_404(Commitment, commitment_id)
    contact = db.get_or_404(Contact, contact_id)
    try:
        contracts.remove_commitment_contact(me(), commitment, contact)
    except InputError as exc:
        return _refused(exc, "admin.commitment_view", commitment_id=commitment_id)
    return _done(
        f"{contact.name} was removed from {commitment.number}; their links and "
        "sessions ended.",
        "admin.commitment_view",
        commitment_id=commitment_id,
    )


# ------------------------------------------------------------------ SOV lines


def _parse_sov_line(form: Form) -> contracts.SovLineInput:
    return contracts.SovLineInput(
        line_number=form.integer("line_number", minimum=1, maximum=999999) or 0,
        cost_code=form.text("cost_code", max_len=40, label="a cost code"),
        description=form.text("description", max_len=300, label="a description"),
        original_value=form.amount("original_value"),
    )


@bp.route("/commitments/<int:commitment_id>/lines", methods=["POST"])
@role_required(*ADMINS)
def sov_line_new(commitment_id: int):  # noqa: ANN201
    """Add a SOV line by hand to a draft commitment."""
    commitment = db.get_or_404(Commitment, commitment_id)
    form = Form(request.form)
    data = _parse_sov_line(form)
    if form.ok:
        try:
            contracts.add_sov_line(me(), commitment, data)
        except FieldErrors as exc:
            form.errors.update(exc.errors)
        except InputError as exc:
            return _refused(exc, "admin.commitment_view", commitment_id=commitment_id)
        else:
            return _done(
                f"Line {data.line_number} added.",
                "admin.commitment_view",
                commitment_id=commitment_id,
            )
    flash("The line was not added: correct the highlighted fields.", "danger")
    return _commitment_page(commitment, form)


@bp.route("/sov-lines/<int:line_id>", methods=["GET", "POST"])
@role_required(*ADMINS)
def sov_line_edit(line_id: int):  # noqa: ANN201
    """Change a SOV line (amounts only while the commitment is a draft)."""
    line = db.get_or_404(SovLine, line_id)
    commitment = line.commitment
    context = {"line": line, "commitment": commitment, "project": commitment.project}
    if request.method == "GET":
        values = {
            "line_number": str(line.line_number),
            "cost_code": line.cost_code,
            "description": line.description,
            "original_value": f"{line.original_value:,.2f}",
        }
        return render_template(
            "admin/sov_line_form.html", values=values, errors={}, **context
        )
    form = Form(request.form)
    data = _parse_sov_line(form)
    if form.ok:
        try:
            contracts.update_sov_line(me(), line, data)
        except FieldErrors as exc:
            form.errors.update(exc.errors)
        except InputError as exc:
            return _refused(exc, "admin.sov_line_edit", line_id=line_id)
        else:
            return _done(
                f"Line {data.line_number} saved.",
                "admin.commitment_view",
                commitment_id=commitment.id,
            )
    return form_page("admin/sov_line_form.html", form, **context)


@bp.route("/sov-lines/<int:line_id>/delete", methods=["POST"])
@role_required(*ADMINS)
def sov_line_delete(line_id: int):  # noqa: ANN201
    """Delete an unused SOV line of a draft commitment."""
    line = db.get_or_404(SovLine, line_id)
    commitment_id = line.commitment_id
    number = line.line_number
    try:
        contracts.delete_sov_line(me(), line)
    except InputError as exc:
        return _refused(exc, "admin.commitment_view", commitment_id=commitment_id)
    return _done(
        f"Line {number} deleted.", "admin.commitment_view", commitment_id=commitment_id
    )


def _uploaded_bytes() -> bytes | None:
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        return None
    return upload.stream.read(1024 * 1024 + 1)


@bp.route("/commitments/<int:commitment_id>/import", methods=["GET", "POST"])
@role_required(*ADMINS)
def sov_import(commitment_id: int):  # noqa: ANN201
    """Import SOV lines from a CSV file: all lines or, with any error, none."""
    commitment = db.get_or_404(Commitment, commitment_id)
    context = {
        "commitment": commitment,
        "project": commitment.project,
        "back": url_for("admin.commitment_view", commitment_id=commitment.id),
        "target": url_for("admin.sov_import", commitment_id=commitment.id),
        "what": f"commitment {commitment.number}",
        "unique_codes": False,
    }
    if request.method == "GET":
        return render_template("admin/sov_import.html", problems=[], **context)
    data = _uploaded_bytes()
    try:
        if data is None:
            raise ImportFailed(["Choose a CSV file to import."])
        rows = parse_sov_csv(
            data, existing_numbers=[line.line_number for line in commitment.sov_lines]
        )
        count = contracts.import_sov_lines(me(), commitment, rows)
    except ImportFailed as exc:
        db.session.rollback()
        flash(
            "Nothing was imported: fix the rows listed below and try again.", "danger"
        )
        return (
            render_template("admin/sov_import.html", problems=exc.errors, **context),
            400,
        )
    except FieldErrors as exc:
        db.session.rollback()
        flash("Nothing was imported.", "danger")
        return (
            render_template(
                "admin/sov_import.html", problems=list(exc.errors.values()), **context
            ),
            400,
        )
    except InputError as exc:
        return _refused(exc, "admin.commitment_view", commitment_id=commitment_id)
    return _done(
        f"{count} line(s) imported.",
        "admin.commitment_view",
        commitment_id=commitment_id,
    )


# ------------------------------------------------------------- change orders


@bp.route("/commitments/<int:commitment_id>/change-orders", methods=["POST"])
@role_required(*ADMINS)
def change_order_new(commitment_id: int):  # noqa: ANN201
    """Start a pending change order."""
    commitment = db.get_or_404(Commitment, commitment_id)
    form = Form(request.form)
    number = form.text("co_number", max_len=40, label="a change order number")
    title = form.text("co_title", max_len=200, label="a title")
    if form.ok:
        try:
            co = contracts.create_change_order(me(), commitment, number, title)
        except FieldErrors as exc:
            form.errors["co_number"] = exc.errors.get("number", str(exc))
        except InputError as exc:
            return _refused(exc, "admin.commitment_view", commitment_id=commitment_id)
        else:
            return _done(
                f"Change order {co.number} created: add its changes, then approve it.",
                "admin.change_order_view",
                change_order_id=co.id,
            )
    flash("The change order was not created.", "danger")
    return _commitment_page(commitment, form)


def _change_order_page(co: ChangeOrder, form: Form | None = None):  # noqa: ANN202
    if form is not None:
        db.session.rollback()
    commitment = co.commitment
    lines = db.session.scalars(
        sa.select(SovLine)
        .where(SovLine.commitment_id == commitment.id)
        .order_by(SovLine.line_number)
    ).all()
    items = db.session.scalars(
        sa.select(ChangeOrderItem)
        .options(joinedload(ChangeOrderItem.sov_line))
        .where(ChangeOrderItem.change_order_id == co.id)
        .order_by(ChangeOrderItem.id)
    ).all()
    errors = form.errors if form is not None else {}
    return (
        render_template(
            "admin/change_order_view.html",
            co=co,
            commitment=commitment,
            project=commitment.project,
            lines=[line for line in lines if line.change_order_id in (None, co.id)],
            items=items,
            values=dict(form.data) if form is not None else {"mode": "existing"},
            errors=errors,
        ),
        400 if errors else 200,
    )


@bp.route("/change-orders/<int:change_order_id>")
@role_required(*READERS)
def change_order_view(change_order_id: int):  # noqa: ANN201
    """A change order and its changes."""
    return _change_order_page(db.get_or_404(ChangeOrder, change_order_id))


@bp.route("/change-orders/<int:change_order_id>/items", methods=["POST"])
@role_required(*ADMINS)
def change_order_item_add(change_order_id: int):  # noqa: ANN201
    """Add a change: an amount on an existing line, or a new line."""
    co = db.get_or_404(ChangeOrder, change_order_id)
    form = Form(request.form)
    mode = form.choice("mode", ["existing", "new"], default="existing")
    amount = form.amount("amount", allow_negative=True)
    sov_line_id = None
    new_line = None
    if mode == "existing":
        sov_line_id = form.identifier("sov_line_id")
    else:
        new_line = (
            form.text("cost_code", max_len=40, label="a cost code"),
            form.text("description", max_len=300, label="a description"),
        )
    if form.ok:
        try:
            contracts.add_change_order_item(
                me(), co, amount, sov_line_id=sov_line_id, new_line=new_line
            )
        except FieldErrors as exc:
            form.errors.update(exc.errors)
        except InputError as exc:
            return _refused(exc, "admin.change_order_view", change_order_id=co.id)
        else:
            return _done(
                "Change added.", "admin.change_order_view", change_order_id=co.id
            )
    flash("The change was not added: correct the highlighted fields.", "danger")
    return _change_order_page(co, form)


@bp.route("/change-order-items/<int:item_id>/remove", methods=["POST"])
@role_required(*ADMINS)
def change_order_item_remove(item_id: int):  # noqa: ANN201
    """Remove a change from a pending change order."""
    item = db.get_or_404(ChangeOrderItem, item_id)
    co_id = item.change_order_id
    try:
        contracts.remove_change_order_item(me(), item)
    except InputError as exc:
        return _refused(exc, "admin.change_order_view", change_order_id=co_id)
    return _done("Change removed.", "admin.change_order_view", change_order_id=co_id)


@bp.route("/change-orders/<int:change_order_id>/approve", methods=["POST"])
@role_required(*ADMINS)
def change_order_approve(change_order_id: int):  # noqa: ANN201
    """Approve a change order: its amounts now count."""
    co = db.get_or_404(ChangeOrder, change_order_id)
    try:
        contracts.approve_change_order(me(), co)
    except InputError as exc:
        return _refused(exc, "admin.change_order_view", change_order_id=co.id)
    return _done(
        f"Change order {co.number} approved.",
        "admin.commitment_view",
        commitment_id=co.commitment_id,
    )


@bp.route("/change-orders/<int:change_order_id>/void", methods=["POST"])
@role_required(*ADMINS)
def change_order_void(change_order_id: int):  # noqa: ANN201
    """Void a pending change order."""
    co = db.get_or_404(ChangeOrder, change_order_id)
    try:
        contracts.void_change_order(me(), co)
    except InputError as exc:
        return _refused(exc, "admin.change_order_view", change_order_id=co.id)
    return _done(
        f"Change order {co.number} voided.",
        "admin.commitment_view",
        commitment_id=co.commitment_id,
    )


# ---------------------------------------------------------- client contracts


def _parse_contract(form: Form) -> contracts.ClientContractInput:
    return contracts.ClientContractInput(
        number=form.text("number", max_len=40, label="a number"),
        title=form.text("title", max_len=200, label="a title"),
        client_name=form.text("client_name", max_len=200, label="the client's name"),
        work_retainage_pct=form.percent("work_retainage_pct"),
        materials_retainage_pct=form.percent("materials_retainage_pct"),
        markup_pct=form.percent("markup_pct"),
    )


def _contract_form(project: Project, contract: ClientContract | None):  # noqa: ANN202
    context = {"project": project, "contract": contract}
    if request.method == "GET":
        if contract is not None:
            values = {
                "number": contract.number,
                "title": contract.title,
                "client_name": contract.client_name,
                "work_retainage_pct": _pct_text(contract.work_retainage_pct),
                "materials_retainage_pct": _pct_text(contract.materials_retainage_pct),
                "markup_pct": _pct_text(contract.markup_pct),
            }
        else:
            values = {
                "work_retainage_pct": _pct_text(project.default_work_retainage_pct),
                "materials_retainage_pct": _pct_text(
                    project.default_materials_retainage_pct
                ),
                "markup_pct": "0",
            }
        return render_template(
            "admin/client_contract_form.html", values=values, errors={}, **context
        )
    form = Form(request.form)
    data = _parse_contract(form)
    if form.ok:
        try:
            saved = contracts.save_client_contract(me(), project, contract, data)
        except FieldErrors as exc:
            form.errors.update(exc.errors)
        except InputError as exc:
            flash(str(exc), "danger")
        else:
            return _done(
                f"Contract {saved.number} saved.",
                "admin.client_contract_view",
                contract_id=saved.id,
            )
    return form_page("admin/client_contract_form.html", form, **context)


@bp.route("/projects/<int:project_id>/client-contracts/new", methods=["GET", "POST"])
@role_required(*ADMINS)
def client_contract_new(project_id: int):  # noqa: ANN201
    """Create a draft client (head) contract."""
    return _contract_form(db.get_or_404(Project, project_id), None)


@bp.route("/client-contracts/<int:contract_id>/edit", methods=["GET", "POST"])
@role_required(*ADMINS)
def client_contract_edit(contract_id: int):  # noqa: ANN201
    """Change a client contract's header."""
    contract = db.get_or_404(ClientContract, contract_id)
    return _contract_form(contract.project, contract)


def _contract_page(contract: ClientContract, form: Form | None = None):  # noqa: ANN202
    if form is not None:
        db.session.rollback()
    lines = db.session.scalars(
        sa.select(ClientSovLine)
        .where(ClientSovLine.client_contract_id == contract.id)
        .order_by(ClientSovLine.line_number)
    ).all()
    values = dict(form.data) if form is not None else {}
    values.setdefault(
        "line_number", str(max((ln.line_number for ln in lines), default=0) + 1)
    )
    errors = form.errors if form is not None else {}
    return (
        render_template(
            "admin/client_contract_view.html",
            contract=contract,
            project=contract.project,
            lines=lines,
            values=values,
            errors=errors,
        ),
        400 if errors else 200,
    )


@bp.route("/client-contracts/<int:contract_id>")
@role_required(*READERS)
def client_contract_view(contract_id: int):  # noqa: ANN201
    """A client contract and its SOV lines."""
    return _contract_page(db.get_or_404(ClientContract, contract_id))


@bp.route("/client-contracts/<int:contract_id>/status", methods=["POST"])
@role_required(*ADMINS)
def client_contract_status(contract_id: int):  # noqa: ANN201
    """Approve a client contract, or return it to draft."""
    contract = db.get_or_404(ClientContract, contract_id)
    status = Form(request.form).choice(
        "status", [s.value for s in ContractStatus], default=""
    )
    try:
        contracts.set_client_contract_status(me(), contract, status)
    except InputError as exc:
        return _refused(exc, "admin.client_contract_view", contract_id=contract_id)
    return _done(
        f"Contract {contract.number} is now {status}.",
        "admin.client_contract_view",
        contract_id=contract_id,
    )


def _parse_client_line(form: Form) -> contracts.ClientLineInput:
    return contracts.ClientLineInput(
        line_number=form.integer("line_number", minimum=1, maximum=999999) or 0,
        cost_code=form.text("cost_code", max_len=40, label="a cost code"),
        description=form.text("description", max_len=300, label="a description"),
        scheduled_value=form.amount("scheduled_value"),
    )


@bp.route("/client-contracts/<int:contract_id>/lines", methods=["POST"])
@role_required(*ADMINS)
def client_line_new(contract_id: int):  # noqa: ANN201
    """Add a SOV line to a draft client contract."""
    contract = db.get_or_404(ClientContract, contract_id)
    form = Form(request.form)
    data = _parse_client_line(form)
    if form.ok:
        try:
            contracts.add_client_line(me(), contract, data)
        except FieldErrors as exc:
            form.errors.update(exc.errors)
        except InputError as exc:
            return _refused(exc, "admin.client_contract_view", contract_id=contract_id)
        else:
            return _done(
                f"Line {data.line_number} added.",
                "admin.client_contract_view",
                contract_id=contract_id,
            )
    flash("The line was not added: correct the highlighted fields.", "danger")
    return _contract_page(contract, form)


@bp.route("/client-lines/<int:line_id>", methods=["GET", "POST"])
@role_required(*ADMINS)
def client_line_edit(line_id: int):  # noqa: ANN201
    """Change a client-contract SOV line."""
    line = db.get_or_404(ClientSovLine, line_id)
    contract = line.contract
    context = {"line": line, "contract": contract, "project": contract.project}
    if request.method == "GET":
        values = {
            "line_number": str(line.line_number),
            "cost_code": line.cost_code,
            "description": line.description,
            "scheduled_value": f"{line.scheduled_value:,.2f}",
        }
        return render_template(
            "admin/client_line_form.html", values=values, errors={}, **context
        )
    form = Form(request.form)
    data = _parse_client_line(form)
    if form.ok:
        try:
            contracts.update_client_line(me(), line, data)
        except FieldErrors as exc:
            form.errors.update(exc.errors)
        except InputError as exc:
            return _refused(exc, "admin.client_line_edit", line_id=line_id)
        else:
            return _done(
                f"Line {data.line_number} saved.",
                "admin.client_contract_view",
                contract_id=contract.id,
            )
    return form_page("admin/client_line_form.html", form, **context)


@bp.route("/client-lines/<int:line_id>/delete", methods=["POST"])
@role_required(*ADMINS)
def client_line_delete(line_id: int):  # noqa: ANN201
    """Delete a line of a draft client contract."""
    line = db.get_or_404(ClientSovLine, line_id)
    contract_id = line.client_contract_id
    number = line.line_number
    try:
        contracts.delete_client_line(me(), line)
    except InputError as exc:
        return _refused(exc, "admin.client_contract_view", contract_id=contract_id)
    return _done(
        f"Line {number} deleted.", "admin.client_contract_view", contract_id=contract_id
    )


@bp.route("/client-contracts/<int:contract_id>/import", methods=["GET", "POST"])
@role_required(*ADMINS)
def client_import(contract_id: int):  # noqa: ANN201
    """Import client-contract SOV lines from CSV (all or none)."""
    contract = db.get_or_404(ClientContract, contract_id)
    context = {
        "contract": contract,
        "project": contract.project,
        "back": url_for("admin.client_contract_view", contract_id=contract.id),
        "target": url_for("admin.client_import", contract_id=contract.id),
        "what": f"client contract {contract.number}",
        "unique_codes": True,
    }
    if request.method == "GET":
        return render_template("admin/sov_import.html", problems=[], **context)
    data = _uploaded_bytes()
    try:
        if data is None:
            raise ImportFailed(["Choose a CSV file to import."])
        rows = parse_sov_csv(
            data,
            existing_numbers=[ln.line_number for ln in contract.lines],
            existing_codes=[ln.cost_code for ln in contract.lines],
        )
        count = contracts.import_client_lines(me(), contract, rows)
    except ImportFailed as exc:
        db.session.rollback()
        flash(
            "Nothing was imported: fix the rows listed below and try again.", "danger"
        )
        return (
            render_template("admin/sov_import.html", problems=exc.errors, **context),
            400,
        )
    except FieldErrors as exc:
        db.session.rollback()
        flash("Nothing was imported.", "danger")
        return (
            render_template(
                "admin/sov_import.html", problems=list(exc.errors.values()), **context
            ),
            400,
        )
    except InputError as exc:
        return _refused(exc, "admin.client_contract_view", contract_id=contract_id)
    return _done(
        f"{count} line(s) imported.",
        "admin.client_contract_view",
        contract_id=contract_id,
    )
