"""Vendors: list, create, edit, view with their commitments and contacts."""

import sqlalchemy as sa
from flask import render_template, request
from sqlalchemy.orm import contains_eager, selectinload

from portal import contracts as domain
from portal.accounts.auth import role_required
from portal.admin import bp
from portal.admin.common import (
    ADMINS,
    READERS,
    arg_text,
    done,
    form_page,
    like,
    me,
    page_arg,
    per_page,
    scheduled_totals,
)
from portal.admin.forms import VendorForm
from portal.extensions import db
from portal.models import (
    Commitment,
    Contact,
    Project,
    Vendor,
)
from portal.validation import FieldErrors
from portal.web.sorting import Inverted, SortSpec, paginate

VENDOR_SORTS = SortSpec(
    {"name": Vendor.name, "code": Vendor.erp_vendor_code, "created": Vendor.created_at},
    default="name",
    tiebreak=Vendor.id,
    nullable=frozenset({"code"}),
    desc_first=frozenset({"created"}),
)
#: A vendor's contacts (active first by default) and commitments, on its page.
CONTACT_SORTS = SortSpec(
    {
        "name": Contact.name,
        "email": Contact.email,
        "phone": Contact.phone,
        "status": (Inverted(Contact.active), Contact.name),
    },
    default="status",
    tiebreak=Contact.id,
)
VENDOR_COMMITMENT_SORTS = SortSpec(
    {
        "project": (Project.number, Commitment.number),
        "number": Commitment.number,
        "title": Commitment.title,
        "status": Commitment.status,
    },
    default="project",
    tiebreak=Commitment.id,
    arg="commitments_sort",
)


@bp.route("/vendors")
@role_required(*READERS)
def vendors():
    """Every vendor, searchable by name, ERP code or contact; paginated."""
    q = arg_text("q")
    sort = VENDOR_SORTS.parse(request.args)
    stmt = sa.select(Vendor)
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
    pagination = paginate(
        sort.apply(stmt), Vendor.id, page=page_arg(), per_page=per_page()
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
        sort=sort,
        args={"q": q} if q else {},
        contacts=contacts,
        commitments=commitments,
    )


def _parse_vendor(form: VendorForm) -> domain.VendorInput:
    form.validate()
    return domain.VendorInput(
        name=form.name.data,
        address=form.address.data,
        erp_vendor_code=form.erp_vendor_code.data or None,
    )


def _vendor_form(vendor: Vendor | None):
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
    form = VendorForm()
    data = _parse_vendor(form)
    if form.ok:
        try:
            saved = domain.save_vendor(me(), vendor, data)
        except FieldErrors as exc:
            form.add_errors(exc.errors)
        else:
            return done(
                f"Vendor {saved.name} saved.", "admin.vendor_view", vendor_id=saved.id
            )
    return form_page("admin/vendor_form.html", form, vendor=vendor)


@bp.route("/vendors/new", methods=["GET", "POST"])
@role_required(*ADMINS)
def vendor_new():
    """Create a vendor."""
    return _vendor_form(None)


@bp.route("/vendors/<int:vendor_id>/edit", methods=["GET", "POST"])
@role_required(*ADMINS)
def vendor_edit(vendor_id: int):
    """Change a vendor."""
    return _vendor_form(db.get_or_404(Vendor, vendor_id))


@bp.route("/vendors/<int:vendor_id>")
@role_required(*READERS)
def vendor_view(vendor_id: int):
    """A vendor: its contacts (add, edit, deactivate, revoke links) and commitments."""
    vendor = db.get_or_404(Vendor, vendor_id)
    contact_sort = CONTACT_SORTS.parse(request.args)
    commitment_sort = VENDOR_COMMITMENT_SORTS.parse(request.args)
    contacts = db.session.scalars(
        contact_sort.apply(
            sa.select(Contact)
            .options(selectinload(Contact.commitments))
            .where(Contact.vendor_id == vendor.id)
        )
    ).all()
    commitments = db.session.scalars(
        commitment_sort.apply(
            sa.select(Commitment)
            .join(Project, Project.id == Commitment.project_id)
            .options(contains_eager(Commitment.project))
            .where(Commitment.vendor_id == vendor.id)
        )
    ).all()
    # Each table's header links keep the other table's order.
    args = {
        "vendor_id": vendor.id,
        **contact_sort.url_args(),
        **commitment_sort.url_args(),
    }
    return render_template(
        "admin/vendor_view.html",
        vendor=vendor,
        contacts=contacts,
        commitments=commitments,
        contact_sort=contact_sort,
        commitment_sort=commitment_sort,
        args=args,
        totals=scheduled_totals([c.id for c in commitments]),
        values={},
        errors={},
    )
