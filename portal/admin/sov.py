"""A commitment's schedule of values: add, edit, delete lines, CSV import."""

from typing import Any

from flask import flash, render_template, request, url_for

from portal import contracts as domain
from portal.accounts.auth import role_required
from portal.admin import bp
from portal.admin.commitments import commitment_page
from portal.admin.common import ADMINS, done, form_page, me, refused, uploaded_bytes
from portal.admin.forms import SovLineForm
from portal.contracts.sov_import import ImportFailed, parse_sov_csv
from portal.extensions import db
from portal.models import (
    Commitment,
    SovLine,
)
from portal.validation import FieldErrors, InputError


def _parse_sov_line(form: SovLineForm) -> domain.SovLineInput:
    form.validate()
    return domain.SovLineInput(
        line_number=form.line_number.data or 0,
        cost_code=form.cost_code.data,
        description=form.description.data,
        original_value=form.original_value.data,
    )


@bp.route("/commitments/<int:commitment_id>/lines", methods=["POST"])
@role_required(*ADMINS)
def sov_line_new(commitment_id: int):
    """Add a SOV line by hand to a draft commitment."""
    commitment = db.get_or_404(Commitment, commitment_id)
    form = SovLineForm()
    data = _parse_sov_line(form)
    if form.ok:
        try:
            domain.add_sov_line(me(), commitment, data)
        except FieldErrors as exc:
            form.add_errors(exc.errors)
        except InputError as exc:
            return refused(exc, "admin.commitment_view", commitment_id=commitment_id)
        else:
            return done(
                f"Line {data.line_number} added.",
                "admin.commitment_view",
                commitment_id=commitment_id,
            )
    flash("The line was not added: correct the highlighted fields.", "danger")
    return commitment_page(commitment, form)


@bp.route("/sov-lines/<int:line_id>", methods=["GET", "POST"])
@role_required(*ADMINS)
def sov_line_edit(line_id: int):
    """Change a SOV line (amounts only while the commitment is a draft)."""
    line = db.get_or_404(SovLine, line_id)
    commitment = line.commitment
    context: dict[str, Any] = {
        "line": line,
        "commitment": commitment,
        "project": commitment.project,
    }
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
    form = SovLineForm()
    data = _parse_sov_line(form)
    if form.ok:
        try:
            domain.update_sov_line(me(), line, data)
        except FieldErrors as exc:
            form.add_errors(exc.errors)
        except InputError as exc:
            return refused(exc, "admin.sov_line_edit", line_id=line_id)
        else:
            return done(
                f"Line {data.line_number} saved.",
                "admin.commitment_view",
                commitment_id=commitment.id,
            )
    return form_page("admin/sov_line_form.html", form, **context)


@bp.route("/sov-lines/<int:line_id>/delete", methods=["POST"])
@role_required(*ADMINS)
def sov_line_delete(line_id: int):
    """Delete an unused SOV line of a draft commitment."""
    line = db.get_or_404(SovLine, line_id)
    commitment_id = line.commitment_id
    number = line.line_number
    try:
        domain.delete_sov_line(me(), line)
    except InputError as exc:
        return refused(exc, "admin.commitment_view", commitment_id=commitment_id)
    return done(
        f"Line {number} deleted.", "admin.commitment_view", commitment_id=commitment_id
    )


@bp.route("/commitments/<int:commitment_id>/import", methods=["GET", "POST"])
@role_required(*ADMINS)
def sov_import(commitment_id: int):
    """Import SOV lines from a CSV file: all lines or, with any error, none."""
    commitment = db.get_or_404(Commitment, commitment_id)
    context: dict[str, Any] = {
        "commitment": commitment,
        "project": commitment.project,
        "back": url_for("admin.commitment_view", commitment_id=commitment.id),
        "target": url_for("admin.sov_import", commitment_id=commitment.id),
        "what": f"commitment {commitment.number}",
        "unique_codes": False,
    }
    if request.method == "GET":
        return render_template("admin/sov_import.html", problems=[], **context)
    data = uploaded_bytes()
    try:
        if data is None:
            raise ImportFailed(["Choose a CSV file to import."])
        rows = parse_sov_csv(
            data, existing_numbers=[line.line_number for line in commitment.sov_lines]
        )
        count = domain.import_sov_lines(me(), commitment, rows)
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
        return refused(exc, "admin.commitment_view", commitment_id=commitment_id)
    return done(
        f"{count} line(s) imported.",
        "admin.commitment_view",
        commitment_id=commitment_id,
    )
