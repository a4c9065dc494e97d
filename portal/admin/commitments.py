"""Commitments: create, edit, view, status, billing contacts."""

from typing import Any

import sqlalchemy as sa
from flask import flash, redirect, render_template, request, url_for
from sqlalchemy.orm import joinedload, selectinload

from portal import contracts as domain
from portal.accounts.auth import role_required
from portal.admin import bp
from portal.admin.common import (
    ADMINS,
    READERS,
    done,
    form_page,
    form_state,
    me,
    pct_text,
    refused,
)
from portal.admin.forms import KIND_CHOICES, CommitmentForm, ContactPickForm, StatusForm
from portal.billing.dashboard import billing_sums
from portal.core.statuses import (
    CommitmentStatus,
)
from portal.extensions import db
from portal.models import (
    Billing,
    ChangeOrder,
    Commitment,
    Contact,
    Project,
    SovLine,
    Vendor,
)
from portal.validation import FieldErrors, InputError
from portal.web.forms import StrictForm


def _parse_commitment(form: CommitmentForm) -> domain.CommitmentInput:
    form.validate()
    return domain.CommitmentInput(
        vendor_id=form.vendor_id.data or 0,
        kind=form.kind.data,
        number=form.number.data,
        title=form.title.data,
        work_retainage_pct=form.work_retainage_pct.data,
        materials_retainage_pct=form.materials_retainage_pct.data,
    )


def _commitment_form(project: Project, commitment: Commitment | None):
    vendors_list = db.session.scalars(sa.select(Vendor).order_by(Vendor.name)).all()
    context: dict[str, Any] = {
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
                "work_retainage_pct": pct_text(commitment.work_retainage_pct),
                "materials_retainage_pct": pct_text(commitment.materials_retainage_pct),
            }
        else:
            values = {
                "kind": "subcontract",
                "vendor_id": request.args.get("vendor_id", ""),
                "work_retainage_pct": pct_text(project.default_work_retainage_pct),
                "materials_retainage_pct": pct_text(
                    project.default_materials_retainage_pct
                ),
            }
        return render_template(
            "admin/commitment_form.html", values=values, errors={}, **context
        )
    form = CommitmentForm()
    data = _parse_commitment(form)
    if form.ok:
        try:
            saved = domain.save_commitment(me(), project, commitment, data)
        except FieldErrors as exc:
            form.add_errors(exc.errors)
        else:
            return done(
                f"Commitment {saved.number} saved.",
                "admin.commitment_view",
                commitment_id=saved.id,
            )
    return form_page("admin/commitment_form.html", form, **context)


@bp.route("/projects/<int:project_id>/commitments/new", methods=["GET", "POST"])
@role_required(*ADMINS)
def commitment_new(project_id: int):
    """Create a draft commitment (subcontract or purchase order)."""
    return _commitment_form(db.get_or_404(Project, project_id), None)


@bp.route("/commitments/<int:commitment_id>/edit", methods=["GET", "POST"])
@role_required(*ADMINS)
def commitment_edit(commitment_id: int):
    """Change a commitment's header."""
    commitment = db.get_or_404(Commitment, commitment_id)
    return _commitment_form(commitment.project, commitment)


def commitment_page(commitment: Commitment, form: StrictForm | None = None, status=200):
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
    posted, errors = form_state(form)
    values = dict(posted)
    values.setdefault("line_number", str(domain.next_line_number(commitment)))
    next_co = domain.next_change_order_number(co.number for co in change_orders)
    values.setdefault("co_number", next_co)
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
            next_co=next_co,
        ),
        400 if errors else status,
    )


@bp.route("/commitments/<int:commitment_id>")
@role_required(*READERS)
def commitment_view(commitment_id: int):
    """A commitment: SOV lines, change orders, billing contacts and billings."""
    return commitment_page(db.get_or_404(Commitment, commitment_id))


@bp.route("/commitments/<int:commitment_id>/status", methods=["POST"])
@role_required(*ADMINS)
def commitment_status(commitment_id: int):
    """Approve, return to draft or void a commitment."""
    commitment = db.get_or_404(Commitment, commitment_id)
    form = StatusForm([s.value for s in CommitmentStatus])
    form.validate()
    status = form.status.data
    try:
        domain.set_commitment_status(me(), commitment, status)
    except InputError as exc:
        return refused(exc, "admin.commitment_view", commitment_id=commitment_id)
    return done(
        f"Commitment {commitment.number} is now {status}.",
        "admin.commitment_view",
        commitment_id=commitment_id,
    )


@bp.route("/commitments/<int:commitment_id>/contacts", methods=["POST"])
@role_required(*ADMINS)
def commitment_contact_add(commitment_id: int):
    """Make a contact of the vendor a billing contact on the commitment."""
    commitment = db.get_or_404(Commitment, commitment_id)
    form = ContactPickForm()
    form.validate()
    contact_id = form.contact_id.data
    contact = db.session.get(Contact, contact_id) if contact_id else None
    if contact is None:
        flash("Choose a contact to add.", "danger")
        return redirect(url_for("admin.commitment_view", commitment_id=commitment_id))
    try:
        domain.add_commitment_contact(me(), commitment, contact)
    except InputError as exc:
        return refused(exc, "admin.commitment_view", commitment_id=commitment_id)
    return done(
        f"{contact.name} is now a billing contact on {commitment.number}.",
        "admin.commitment_view",
        commitment_id=commitment_id,
    )


@bp.route(
    "/commitments/<int:commitment_id>/contacts/<int:contact_id>/remove",
    methods=["POST"],
)
@role_required(*ADMINS)
def commitment_contact_remove(commitment_id: int, contact_id: int):
    """Remove a billing contact: their links and sessions end."""
    commitment = db.get_or_404(Commitment, commitment_id)
    contact = db.get_or_404(Contact, contact_id)
    try:
        domain.remove_commitment_contact(me(), commitment, contact)
    except InputError as exc:
        return refused(exc, "admin.commitment_view", commitment_id=commitment_id)
    return done(
        f"{contact.name} was removed from {commitment.number}; their links and "
        "sessions ended.",
        "admin.commitment_view",
        commitment_id=commitment_id,
    )
