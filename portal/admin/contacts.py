"""Vendors' contacts: add, edit, (de)activate, revoke their links."""

from flask import flash, redirect, render_template, request

from portal import contracts as domain
from portal.accounts.auth import role_required
from portal.admin import bp
from portal.admin.common import ADMINS, back_url, done, form_page, me, refused
from portal.admin.forms import ActiveForm, ContactForm
from portal.extensions import db
from portal.models import (
    Contact,
    Vendor,
)
from portal.validation import FieldErrors, InputError


def _parse_contact(form: ContactForm) -> domain.ContactInput:
    form.validate()
    return domain.ContactInput(
        name=form.name.data, email=form.email.data, phone=form.phone.data
    )


@bp.route("/vendors/<int:vendor_id>/contacts/new", methods=["GET", "POST"])
@role_required(*ADMINS)
def contact_new(vendor_id: int):
    """Add a contact to a vendor (email unique per vendor)."""
    vendor = db.get_or_404(Vendor, vendor_id)
    if request.method == "GET":
        return render_template(
            "admin/contact_form.html", vendor=vendor, contact=None, values={}, errors={}
        )
    form = ContactForm()
    data = _parse_contact(form)
    if form.ok:
        try:
            contact = domain.save_contact(me(), vendor, None, data)
        except FieldErrors as exc:
            form.add_errors(exc.errors)
        else:
            return done(
                f"{contact.name} was added to {vendor.name}.",
                "admin.vendor_view",
                vendor_id=vendor.id,
            )
    return form_page("admin/contact_form.html", form, vendor=vendor, contact=None)


@bp.route("/contacts/<int:contact_id>", methods=["GET", "POST"])
@role_required(*ADMINS)
def contact_edit(contact_id: int):
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
    form = ContactForm()
    data = _parse_contact(form)
    if form.ok:
        try:
            domain.save_contact(me(), vendor, contact, data)
        except FieldErrors as exc:
            form.add_errors(exc.errors)
        except InputError as exc:
            return refused(exc, "admin.vendor_view", vendor_id=vendor.id)
        else:
            return done(
                f"{contact.name} was updated.", "admin.vendor_view", vendor_id=vendor.id
            )
    return form_page("admin/contact_form.html", form, vendor=vendor, contact=contact)


@bp.route("/contacts/<int:contact_id>/active", methods=["POST"])
@role_required(*ADMINS)
def contact_active(contact_id: int):
    """Deactivate (ending every link and session) or reactivate a contact."""
    contact = db.get_or_404(Contact, contact_id)
    form = ActiveForm()
    form.validate()
    active = form.active.data
    domain.set_contact_active(me(), contact, active)
    db.session.commit()
    flash(
        f"{contact.name} was reactivated."
        if active
        else f"{contact.name} was deactivated; their links and sessions ended.",
        "success",
    )
    return redirect(back_url("admin.vendor_view", vendor_id=contact.vendor_id))


@bp.route("/contacts/<int:contact_id>/revoke-links", methods=["POST"])
@role_required(*ADMINS)
def contact_revoke(contact_id: int):
    """Revoke every link and session of a contact at once."""
    contact = db.get_or_404(Contact, contact_id)
    domain.revoke_links(me(), contact)
    db.session.commit()
    flash(
        f"Every link and session of {contact.name} was revoked. "
        "They can ask for a fresh link from the sign-in page.",
        "success",
    )
    return redirect(back_url("admin.vendor_view", vendor_id=contact.vendor_id))
