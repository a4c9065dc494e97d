"""Change orders: create, items, approve, void."""

import sqlalchemy as sa
from flask import flash, render_template
from sqlalchemy.orm import joinedload

from portal import contracts as domain
from portal.accounts.auth import role_required
from portal.admin import bp
from portal.admin.commitments import commitment_page
from portal.admin.common import ADMINS, READERS, done, form_state, me, refused
from portal.admin.forms import ChangeOrderForm, ChangeOrderItemForm
from portal.extensions import db
from portal.models import (
    ChangeOrder,
    ChangeOrderItem,
    Commitment,
)
from portal.validation import FieldErrors, InputError
from portal.web.forms import StrictForm


@bp.route("/commitments/<int:commitment_id>/change-orders", methods=["POST"])
@role_required(*ADMINS)
def change_order_new(commitment_id: int):
    """Start a pending change order."""
    commitment = db.get_or_404(Commitment, commitment_id)
    form = ChangeOrderForm()
    form.validate()
    number = form.co_number.data
    title = form.co_title.data
    if form.ok:
        try:
            co = domain.create_change_order(me(), commitment, number, title)
        except FieldErrors as exc:
            form.fail("co_number", exc.errors.get("number", str(exc)))
        except InputError as exc:
            return refused(exc, "admin.commitment_view", commitment_id=commitment_id)
        else:
            return done(
                f"Change order {co.number} created: add its changes, then approve it.",
                "admin.change_order_view",
                change_order_id=co.id,
            )
    flash("The change order was not created.", "danger")
    return commitment_page(commitment, form)


def _change_order_page(co: ChangeOrder, form: StrictForm | None = None):
    if form is not None:
        db.session.rollback()
    commitment = co.commitment
    items = db.session.scalars(
        sa.select(ChangeOrderItem)
        .options(joinedload(ChangeOrderItem.sov_line))
        .where(ChangeOrderItem.change_order_id == co.id)
        .order_by(ChangeOrderItem.id)
    ).all()
    posted, errors = form_state(form)
    return (
        render_template(
            "admin/change_order_view.html",
            co=co,
            commitment=commitment,
            project=commitment.project,
            lines=domain.lines_open_to(co),
            items=items,
            values=dict(posted) if form is not None else {"mode": "existing"},
            errors=errors,
        ),
        400 if errors else 200,
    )


@bp.route("/change-orders/<int:change_order_id>")
@role_required(*READERS)
def change_order_view(change_order_id: int):
    """A change order and its changes."""
    return _change_order_page(db.get_or_404(ChangeOrder, change_order_id))


@bp.route("/change-orders/<int:change_order_id>/items", methods=["POST"])
@role_required(*ADMINS)
def change_order_item_add(change_order_id: int):
    """Add a change: an amount on an existing line, or a new line."""
    co = db.get_or_404(ChangeOrder, change_order_id)
    form = ChangeOrderItemForm()
    form.validate()
    amount = form.amount.data
    sov_line_id = None
    new_line = None
    if form.mode.data == "existing":
        sov_line_id = form.sov_line_id.data
    else:
        new_line = (form.cost_code.data, form.description.data)
    if form.ok:
        try:
            domain.add_change_order_item(
                me(), co, amount, sov_line_id=sov_line_id, new_line=new_line
            )
        except FieldErrors as exc:
            form.add_errors(exc.errors)
        except InputError as exc:
            return refused(exc, "admin.change_order_view", change_order_id=co.id)
        else:
            return done(
                "Change added.", "admin.change_order_view", change_order_id=co.id
            )
    flash("The change was not added: correct the highlighted fields.", "danger")
    return _change_order_page(co, form)


@bp.route("/change-order-items/<int:item_id>/remove", methods=["POST"])
@role_required(*ADMINS)
def change_order_item_remove(item_id: int):
    """Remove a change from a pending change order."""
    item = db.get_or_404(ChangeOrderItem, item_id)
    co_id = item.change_order_id
    try:
        domain.remove_change_order_item(me(), item)
    except InputError as exc:
        return refused(exc, "admin.change_order_view", change_order_id=co_id)
    return done("Change removed.", "admin.change_order_view", change_order_id=co_id)


@bp.route("/change-orders/<int:change_order_id>/approve", methods=["POST"])
@role_required(*ADMINS)
def change_order_approve(change_order_id: int):
    """Approve a change order: its amounts now count."""
    co = db.get_or_404(ChangeOrder, change_order_id)
    try:
        domain.approve_change_order(me(), co)
    except InputError as exc:
        return refused(exc, "admin.change_order_view", change_order_id=co.id)
    return done(
        f"Change order {co.number} approved.",
        "admin.commitment_view",
        commitment_id=co.commitment_id,
    )


@bp.route("/change-orders/<int:change_order_id>/void", methods=["POST"])
@role_required(*ADMINS)
def change_order_void(change_order_id: int):
    """Void a pending change order."""
    co = db.get_or_404(ChangeOrder, change_order_id)
    try:
        domain.void_change_order(me(), co)
    except InputError as exc:
        return refused(exc, "admin.change_order_view", change_order_id=co.id)
    return done(
        f"Change order {co.number} voided.",
        "admin.commitment_view",
        commitment_id=co.commitment_id,
    )
