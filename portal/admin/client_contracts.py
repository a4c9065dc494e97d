"""Client contracts and their SOV lines: create, edit, status, CSV import."""

from typing import Any

import sqlalchemy as sa
from flask import flash, render_template, request, url_for

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
    uploaded_bytes,
)
from portal.admin.forms import ClientContractForm, ClientLineForm, StatusForm
from portal.contracts.sov_import import ImportFailed, parse_sov_csv
from portal.core.statuses import (
    ContractStatus,
)
from portal.extensions import db
from portal.models import (
    ClientContract,
    ClientSovLine,
    Project,
)
from portal.validation import FieldErrors, InputError
from portal.web.forms import StrictForm


def _parse_contract(form: ClientContractForm) -> domain.ClientContractInput:
    form.validate()
    return domain.ClientContractInput(
        number=form.number.data,
        title=form.title.data,
        client_name=form.client_name.data,
        work_retainage_pct=form.work_retainage_pct.data,
        materials_retainage_pct=form.materials_retainage_pct.data,
        markup_pct=form.markup_pct.data,
    )


def _contract_form(project: Project, contract: ClientContract | None):
    context: dict[str, Any] = {"project": project, "contract": contract}
    if request.method == "GET":
        if contract is not None:
            values = {
                "number": contract.number,
                "title": contract.title,
                "client_name": contract.client_name,
                "work_retainage_pct": pct_text(contract.work_retainage_pct),
                "materials_retainage_pct": pct_text(contract.materials_retainage_pct),
                "markup_pct": pct_text(contract.markup_pct),
            }
        else:
            values = {
                "work_retainage_pct": pct_text(project.default_work_retainage_pct),
                "materials_retainage_pct": pct_text(
                    project.default_materials_retainage_pct
                ),
                "markup_pct": "0",
            }
        return render_template(
            "admin/client_contract_form.html", values=values, errors={}, **context
        )
    form = ClientContractForm()
    data = _parse_contract(form)
    if form.ok:
        try:
            saved = domain.save_client_contract(me(), project, contract, data)
        except FieldErrors as exc:
            form.add_errors(exc.errors)
        except InputError as exc:
            flash(str(exc), "danger")
        else:
            return done(
                f"Contract {saved.number} saved.",
                "admin.client_contract_view",
                contract_id=saved.id,
            )
    return form_page("admin/client_contract_form.html", form, **context)


@bp.route("/projects/<int:project_id>/client-contracts/new", methods=["GET", "POST"])
@role_required(*ADMINS)
def client_contract_new(project_id: int):
    """Create a draft client (head) contract."""
    return _contract_form(db.get_or_404(Project, project_id), None)


@bp.route("/client-contracts/<int:contract_id>/edit", methods=["GET", "POST"])
@role_required(*ADMINS)
def client_contract_edit(contract_id: int):
    """Change a client contract's header."""
    contract = db.get_or_404(ClientContract, contract_id)
    return _contract_form(contract.project, contract)


def _contract_page(contract: ClientContract, form: StrictForm | None = None):
    if form is not None:
        db.session.rollback()
    lines = db.session.scalars(
        sa.select(ClientSovLine)
        .where(ClientSovLine.client_contract_id == contract.id)
        .order_by(ClientSovLine.line_number)
    ).all()
    posted, errors = form_state(form)
    values = dict(posted)
    values.setdefault(
        "line_number", str(max((ln.line_number for ln in lines), default=0) + 1)
    )
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
def client_contract_view(contract_id: int):
    """A client contract and its SOV lines."""
    return _contract_page(db.get_or_404(ClientContract, contract_id))


@bp.route("/client-contracts/<int:contract_id>/status", methods=["POST"])
@role_required(*ADMINS)
def client_contract_status(contract_id: int):
    """Approve a client contract, or return it to draft."""
    contract = db.get_or_404(ClientContract, contract_id)
    form = StatusForm([s.value for s in ContractStatus])
    form.validate()
    status = form.status.data
    try:
        domain.set_client_contract_status(me(), contract, status)
    except InputError as exc:
        return refused(exc, "admin.client_contract_view", contract_id=contract_id)
    return done(
        f"Contract {contract.number} is now {status}.",
        "admin.client_contract_view",
        contract_id=contract_id,
    )


def _parse_client_line(form: ClientLineForm) -> domain.ClientLineInput:
    form.validate()
    return domain.ClientLineInput(
        line_number=form.line_number.data or 0,
        cost_code=form.cost_code.data,
        description=form.description.data,
        scheduled_value=form.scheduled_value.data,
    )


@bp.route("/client-contracts/<int:contract_id>/lines", methods=["POST"])
@role_required(*ADMINS)
def client_line_new(contract_id: int):
    """Add a SOV line to a draft client contract."""
    contract = db.get_or_404(ClientContract, contract_id)
    form = ClientLineForm()
    data = _parse_client_line(form)
    if form.ok:
        try:
            domain.add_client_line(me(), contract, data)
        except FieldErrors as exc:
            form.add_errors(exc.errors)
        except InputError as exc:
            return refused(exc, "admin.client_contract_view", contract_id=contract_id)
        else:
            return done(
                f"Line {data.line_number} added.",
                "admin.client_contract_view",
                contract_id=contract_id,
            )
    flash("The line was not added: correct the highlighted fields.", "danger")
    return _contract_page(contract, form)


@bp.route("/client-lines/<int:line_id>", methods=["GET", "POST"])
@role_required(*ADMINS)
def client_line_edit(line_id: int):
    """Change a client-contract SOV line."""
    line = db.get_or_404(ClientSovLine, line_id)
    contract = line.contract
    context: dict[str, Any] = {
        "line": line,
        "contract": contract,
        "project": contract.project,
    }
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
    form = ClientLineForm()
    data = _parse_client_line(form)
    if form.ok:
        try:
            domain.update_client_line(me(), line, data)
        except FieldErrors as exc:
            form.add_errors(exc.errors)
        except InputError as exc:
            return refused(exc, "admin.client_line_edit", line_id=line_id)
        else:
            return done(
                f"Line {data.line_number} saved.",
                "admin.client_contract_view",
                contract_id=contract.id,
            )
    return form_page("admin/client_line_form.html", form, **context)


@bp.route("/client-lines/<int:line_id>/delete", methods=["POST"])
@role_required(*ADMINS)
def client_line_delete(line_id: int):
    """Delete a line of a draft client contract."""
    line = db.get_or_404(ClientSovLine, line_id)
    contract_id = line.client_contract_id
    number = line.line_number
    try:
        domain.delete_client_line(me(), line)
    except InputError as exc:
        return refused(exc, "admin.client_contract_view", contract_id=contract_id)
    return done(
        f"Line {number} deleted.", "admin.client_contract_view", contract_id=contract_id
    )


@bp.route("/client-contracts/<int:contract_id>/import", methods=["GET", "POST"])
@role_required(*ADMINS)
def client_import(contract_id: int):
    """Import client-contract SOV lines from CSV (all or none)."""
    contract = db.get_or_404(ClientContract, contract_id)
    context: dict[str, Any] = {
        "contract": contract,
        "project": contract.project,
        "back": url_for("admin.client_contract_view", contract_id=contract.id),
        "target": url_for("admin.client_import", contract_id=contract.id),
        "what": f"client contract {contract.number}",
        "unique_codes": True,
    }
    if request.method == "GET":
        return render_template("admin/sov_import.html", problems=[], **context)
    data = uploaded_bytes()
    try:
        if data is None:
            raise ImportFailed(["Choose a CSV file to import."])
        rows = parse_sov_csv(
            data,
            existing_numbers=[ln.line_number for ln in contract.lines],
            existing_codes=[ln.cost_code for ln in contract.lines],
        )
        count = domain.import_client_lines(me(), contract, rows)
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
        return refused(exc, "admin.client_contract_view", contract_id=contract_id)
    return done(
        f"{count} line(s) imported.",
        "admin.client_contract_view",
        contract_id=contract_id,
    )
