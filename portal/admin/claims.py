"""HC/Client progress claims (upstream) and PDFs: views on the admin blueprint.

Thin views: parse the form, call :mod:`portal.upstream`, commit once, flash and
redirect. Reading is open to every staff role; changing is for admins.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from flask import (
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user
from sqlalchemy.orm import defer, selectinload
from werkzeug.wrappers import Response

from portal import generations, upstream
from portal.accounts.auth import role_required
from portal.admin import bp
from portal.admin.forms import (
    ClaimAddLineForm,
    ClaimAdjustForm,
    ClaimBackToDraftForm,
    ClaimForm,
    ClaimGenerateForm,
    ClaimMapForm,
    ClaimReleaseForm,
    ClaimSubmitForm,
    ClaimVoidForm,
    claim_approve_form,
)
from portal.billing.billings import BillingError, ValidationFailed
from portal.core.statuses import ADMINS, READERS, BillingStatus, ClaimStatus
from portal.extensions import db
from portal.models import (
    AuditEvent,
    Billing,
    BillingPeriod,
    ClientClaim,
    ClientClaimLine,
    ClientContract,
    Commitment,
    Project,
)
from portal.validation import parse_id
from portal.web import fragments
from portal.web.downloads import pdf_response
from portal.web.forms import StrictForm
from portal.web.templating import term

ZERO = Decimal("0.00")


def _me() -> Any:
    return current_user._get_current_object()


def _int(raw: str | None) -> int | None:
    """A positive id (or version, page) from form or query text, else None."""
    return parse_id(raw)


def _checked(form: StrictForm) -> None:
    """Refuse a form whose fields do not parse as the domain would (nothing written)."""
    if not form.check():
        raise ValidationFailed(dict(form.messages))


def _page() -> int:
    return _int(request.args.get("page")) or 1


def _claim_or_404(claim_id: int) -> ClientClaim:
    return db.get_or_404(ClientClaim, claim_id)


def _back(claim: ClientClaim, anchor: str | None = None) -> Response:
    return redirect(url_for("admin.claim_view", claim_id=claim.id, _anchor=anchor))


def _refused(claim_id: int, exc: Exception, anchor: str | None = None) -> Response:
    """Roll back, show why the action was refused, go back to the claim."""
    db.session.rollback()
    flash(str(exc), "danger")
    return redirect(url_for("admin.claim_view", claim_id=claim_id, _anchor=anchor))


def _label() -> str:
    return term("client_claim")


# ------------------------------------------------------------------ index


@bp.route("/claims")
@role_required(*READERS)
def claims_index():
    """Every client contract with its upstream claims, and the generate form."""
    return _index_page(
        {
            "contract_id": request.args.get("contract_id", ""),
            "period_id": request.args.get("period_id", ""),
        }
    )


def _index_page(
    values: Mapping[str, Any], errors: dict[str, str] | None = None, status: int = 200
) -> tuple[str, int]:
    project_id = _int(request.args.get("project_id"))
    query = (
        sa.select(ClientContract)
        .join(Project, Project.id == ClientContract.project_id)
        .options(selectinload(ClientContract.project))
        .order_by(Project.name, ClientContract.number)
    )
    if project_id:
        query = query.where(ClientContract.project_id == project_id)
    pagination = db.paginate(
        query,
        page=_page(),
        per_page=int(current_app.config.get("PAGE_SIZE", 25)),
        error_out=False,
    )
    contracts = list(pagination.items)
    claims_by_contract: dict[int, list[ClientClaim]] = {c.id: [] for c in contracts}
    if contracts:
        claims = db.session.scalars(
            sa.select(ClientClaim)
            .where(ClientClaim.client_contract_id.in_(list(claims_by_contract)))
            .options(selectinload(ClientClaim.period))
            .order_by(ClientClaim.claim_number.desc())
        ).all()
        for claim in claims:
            claims_by_contract[claim.client_contract_id].append(claim)
    totals = {}
    for claims in claims_by_contract.values():
        for claim in claims:
            if claim.status == ClaimStatus.VOID:
                continue
            which = "approved" if claim.status == ClaimStatus.APPROVED else "claimed"
            figs = upstream.claim_figures(claim, which)
            totals[claim.id] = {
                "this_period": sum(
                    (f.work_this_period + f.materials_stored for f in figs.lines), ZERO
                ),
                "payment_due": figs.totals.current_payment_due,
                "completed": figs.totals.total_completed_and_stored,
            }
    return (
        render_template(
            "admin/claims_index.html",
            contracts=contracts,
            claims_by_contract=claims_by_contract,
            totals=totals,
            pagination=pagination,
            project_id=project_id,
            projects=db.session.scalars(
                sa.select(Project).order_by(Project.name)
            ).all(),
            values=values,
            errors=errors or {},
            waiting={c.id: upstream.unclaimed_periods(c) for c in contracts},
            **_generate_options(),
        ),
        status,
    )


def _generate_options() -> dict[str, Any]:
    contracts = db.session.scalars(
        sa.select(ClientContract)
        .join(Project, Project.id == ClientContract.project_id)
        .options(selectinload(ClientContract.project))
        .order_by(Project.name, ClientContract.number)
    ).all()
    periods = db.session.scalars(
        sa.select(BillingPeriod)
        .join(Project, Project.id == BillingPeriod.project_id)
        .options(selectinload(BillingPeriod.project))
        .order_by(Project.name, BillingPeriod.sequence.desc())
    ).all()
    grouped: OrderedDict[str, list[BillingPeriod]] = OrderedDict()
    for period in periods:
        grouped.setdefault(
            f"{period.project.name} ({period.project.number})", []
        ).append(period)
    return {"all_contracts": contracts, "periods_by_project": grouped}


@bp.route("/claims/generate", methods=["POST"])
@role_required(*ADMINS)
def claims_generate():
    """Generate a draft claim for a client contract and a billing period."""
    form = ClaimGenerateForm()
    form.check()
    contract = db.session.get(ClientContract, form.contract_id.data or 0)
    period = db.session.get(BillingPeriod, form.period_id.data or 0)
    if contract is None:
        form.fail("contract_id", f"Choose a {term('client_contract')}.")
    if period is None:
        form.fail("period_id", "Choose a billing period.")
    if form.ok and contract is not None and period is not None:
        try:
            claim = upstream.generate_claim(contract, period, _me())
        except ValidationFailed as exc:
            form.add_errors(exc.errors)
        except BillingError as exc:
            db.session.rollback()
            flash(str(exc), "danger")
            return redirect(
                url_for(
                    "admin.claims_index",
                    contract_id=contract.id,
                    period_id=period.id,
                )
            )
        else:
            db.session.commit()
            count = len(claim.billings)
            flash(
                f"{term('Client_claim')} #{claim.claim_number} generated as a draft "
                f"from {count} approved {term('progress_billing')}"
                f"{'' if count == 1 else 's'}.",
                "success",
            )
            if claim.unmapped:
                flash(
                    f"{len(claim.unmapped)} downstream line(s) have no line on the "
                    "client contract: map them below.",
                    "warning",
                )
            return _back(claim)
    db.session.rollback()
    flash("Please correct the highlighted fields.", "danger")
    return _index_page(form.values, form.messages, 400)


# ------------------------------------------------------------------ claim


def _claim_context(claim: ClientClaim, **extra: Any) -> dict[str, Any]:
    contract = claim.contract
    sheet = upstream.claim_sheet(claim, "claimed")
    approved = (
        upstream.claim_sheet(claim, "approved")
        if claim.status == ClaimStatus.APPROVED
        else None
    )
    included = _included_page(claim)
    groups = upstream.stored.unmapped_groups(claim)
    voided_included = db.session.scalar(
        sa.select(sa.func.count(Billing.id)).where(
            Billing.client_claim_id == claim.id, Billing.status == BillingStatus.VOID
        )
    )
    events = db.session.scalars(
        sa.select(AuditEvent)
        .where(
            AuditEvent.object_type == "client_claim", AuditEvent.object_id == claim.id
        )
        .options(selectinload(AuditEvent.actor_user))
        .order_by(AuditEvent.created_at.desc(), AuditEvent.id.desc())
        .limit(50)
    ).all()
    return {
        "claim": claim,
        "contract": contract,
        "project": contract.project,
        "period": claim.period,
        "currency": contract.project.currency,
        "sheet": sheet,
        "approved": approved,
        "approved_rows": dict(
            zip(
                [r.sov.id for r in approved.rows] if approved else [],
                approved.rows if approved else [],
                strict=True,
            )
        ),
        "recon": upstream.reconcile(claim),
        "unmapped_groups": groups,
        "unmapped_count": sum(g["count"] for g in groups),
        "included": included.items,
        "included_pages": included,
        "amounts": {b.id: upstream.billing_amount(b) for b in included.items},
        "voided_included": voided_included or 0,
        "stale": upstream.stale(claim),
        "overbilled": {r.sov.id for r in upstream.overbilled_lines(sheet)},
        "events": events,
        "can_edit": current_user.has_role(*ADMINS),
        "allowed": lambda action: upstream.allowed(claim, action),
        "map_errors": extra.pop("map_errors", {}),
        "map_values": extra.pop("map_values", {}),
        "errors": extra.pop("errors", {}),
        "values": extra.pop("values", {}),
        **extra,
    }


def _billings_page(query: sa.Select) -> Any:
    """One page (``?page=``) of downstream billings with their commitment and
    vendor, and the count: a period's or a claim's thousand billings are listed
    a page at a time (issue 16 item 3)."""
    return db.paginate(
        query.options(
            selectinload(Billing.commitment).selectinload(Commitment.vendor),
            selectinload(Billing.client_claim),
        ),
        page=_page(),
        per_page=int(current_app.config.get("PAGE_SIZE", 25)),
        error_out=False,
    )


def _included_page(claim: ClientClaim) -> Any:
    """The page of the claim's included billings (as upstream.included_billings)."""
    return _billings_page(
        sa.select(Billing)
        .join(Commitment, Commitment.id == Billing.commitment_id)
        .where(Billing.client_claim_id == claim.id)
        .order_by(Commitment.number, Billing.id)
    )


@bp.route("/claims/<int:claim_id>")
@role_required(*READERS)
def claim_view(claim_id: int):
    """The claim in a G703 layout with its summary, unmapped amounts and actions."""
    # Every unmapped line is in claim.unmapped; the page reads the stored groups.
    claim = db.session.get(
        ClientClaim, claim_id, options=[defer(ClientClaim.unmapped)]
    ) or abort(404)
    return render_template("admin/claims_view.html", **_claim_context(claim))


@bp.route("/claims/<int:claim_id>/regenerate", methods=["POST"])
@role_required(*ADMINS)
def claim_regenerate(claim_id: int):
    """Rebuild a draft from the period's billings (keeps hand adjustments)."""
    claim = _claim_or_404(claim_id)
    try:
        result = upstream.regenerate(claim, _me(), ClaimForm().expected_version)
    except BillingError as exc:
        return _refused(claim_id, exc)
    db.session.commit()
    parts = []
    if result["added"]:
        parts.append(f"{len(result['added'])} billing(s) added")
    if result["released"]:
        parts.append(f"{len(result['released'])} released")
    flash("Draft regenerated" + (f": {', '.join(parts)}." if parts else "."), "success")
    return _back(claim)


@bp.route("/claims/<int:claim_id>/map", methods=["POST"])
@role_required(*ADMINS)
def claim_map(claim_id: int):
    """Map an unmapped cost code to a client-contract line, then regenerate."""
    claim = _claim_or_404(claim_id)
    form = ClaimMapForm()
    # No silent cut: an over-long code is refused with a field error.
    code = form.cost_code.raw.strip()
    try:
        _checked(form)
        upstream.map_cost_code(
            claim.contract, code, form.client_sov_line_id.data, _me()
        )
        upstream.regenerate(claim, _me(), form.expected_version)
    except ValidationFailed as exc:
        return _map_errors(claim_id, code, form, exc)
    except BillingError as exc:
        return _refused(claim_id, exc, "unmapped")
    db.session.commit()
    flash(f"Cost code {code} mapped; the draft was regenerated.", "success")
    return _back(claim, "unmapped")


@bp.route("/claims/<int:claim_id>/add-line", methods=["POST"])
@role_required(*ADMINS)
def claim_add_line(claim_id: int):
    """Add a client-contract SOV line for an unmapped cost code, then regenerate."""
    claim = _claim_or_404(claim_id)
    form = ClaimAddLineForm()
    code = form.cost_code.raw.strip()
    if claim.status != ClaimStatus.DRAFT:
        return _refused(
            claim_id, upstream.ClaimError("Only a draft claim can be regenerated.")
        )
    try:
        _checked(form)
        line = upstream.add_client_line(
            claim.contract,
            code,
            form.description.raw,
            form.scheduled_value.raw,
            _me(),
        )
        upstream.regenerate(claim, _me(), form.expected_version)
    except ValidationFailed as exc:
        return _map_errors(claim_id, code, form, exc)
    except BillingError as exc:
        return _refused(claim_id, exc, "unmapped")
    db.session.commit()
    flash(
        f"Line {line.line_number} ({code}) added to the {term('client_contract')}; "
        "the draft was regenerated.",
        "success",
    )
    return _back(claim, "unmapped")


def _map_errors(
    claim_id: int, code: str, form: StrictForm, exc: ValidationFailed
) -> tuple[str, int]:
    db.session.rollback()
    form.add_errors(exc.errors)
    claim = _claim_or_404(claim_id)
    flash("Please correct the highlighted fields.", "danger")
    return (
        render_template(
            "admin/claims_view.html",
            **_claim_context(
                claim,
                map_errors={code: form.messages},
                map_values={code: form.values},
            ),
        ),
        400,
    )


@bp.route("/claims/<int:claim_id>/lines/<int:line_id>")
@role_required(*READERS)
def claim_line(claim_id: int, line_id: int):
    """One upstream line: the downstream lines behind it and its hand adjustment."""
    claim = _claim_or_404(claim_id)
    line = db.get_or_404(ClientClaimLine, line_id)
    if line.client_claim_id != claim.id:
        abort(404)
    return _line_page(claim, line)


def _line_page(
    claim: ClientClaim,
    line: ClientClaimLine,
    errors: Mapping[str, str] | None = None,
    values: Mapping[str, Any] | None = None,
    status: int = 200,
) -> tuple[str, int]:
    lines, _unmapped = upstream.trace(claim)
    traced = next(t for t in lines if t.sov.id == line.client_sov_line_id)
    sheet = upstream.claim_sheet(claim, "claimed")
    row = next((r for r in sheet.rows if r.sov.id == line.client_sov_line_id), None)
    if values is None:
        values = {
            "work": f"{line.adjustment_work:.2f}",
            "materials": f"{line.adjustment_materials:.2f}",
            "reason": line.adjustment_reason,
        }
    return (
        render_template(
            "admin/claims_line.html",
            claim=claim,
            contract=claim.contract,
            project=claim.contract.project,
            currency=claim.contract.project.currency,
            line=line,
            traced=traced,
            row=row,
            markup_pct=upstream.claim_markup(claim),
            errors=errors or {},
            values=values,
            can_edit=current_user.has_role(*ADMINS)
            and upstream.allowed(claim, "adjust"),
        ),
        status,
    )


@bp.route("/claims/<int:claim_id>/lines/<int:line_id>/adjust", methods=["POST"])
@role_required(*ADMINS)
def claim_line_adjust(claim_id: int, line_id: int):
    """Save a line's hand adjustment (with its reason) on a draft claim."""
    claim = _claim_or_404(claim_id)
    line = db.get_or_404(ClientClaimLine, line_id)
    if line.client_claim_id != claim.id:
        abort(404)
    form = ClaimAdjustForm()
    try:
        _checked(form)
        upstream.adjust_line(
            claim,
            line,
            _me(),
            form.work.raw,
            form.materials.raw,
            form.reason.raw,
            form.expected_version,
        )
    except ValidationFailed as exc:
        db.session.rollback()
        form.add_errors(exc.errors)
        flash("Please correct the highlighted fields.", "danger")
        return _line_page(
            _claim_or_404(claim_id),
            db.get_or_404(ClientClaimLine, line_id),
            form.messages,
            form.values,
            400,
        )
    except BillingError as exc:
        return _refused(claim_id, exc)
    db.session.commit()
    flash(f"Adjustment on line {line.client_sov_line.line_number} saved.", "success")
    return _back(claim, f"line-{line.id}")


@bp.route("/claims/<int:claim_id>/retainage-released", methods=["POST"])
@role_required(*ADMINS)
def claim_retainage_released(claim_id: int):
    """Set the retainage a draft claim asks the client to release."""
    claim = _claim_or_404(claim_id)
    form = ClaimReleaseForm()
    try:
        _checked(form)
        released = upstream.set_retainage_released(
            claim, _me(), form.retainage_released.raw, form.expected_version
        )
    except ValidationFailed as exc:
        db.session.rollback()
        form.add_errors(exc.errors)
        flash("Please correct the highlighted field.", "danger")
        claim = _claim_or_404(claim_id)
        return (
            render_template(
                "admin/claims_view.html",
                **_claim_context(claim, errors=form.messages, values=form.values),
            ),
            400,
        )
    except BillingError as exc:
        return _refused(claim_id, exc, "release")
    db.session.commit()
    flash(
        f"{term('Retainage', claim.contract.project)} released on this claim: "
        f"{released:,.2f}.",
        "success",
    )
    return _back(claim, "release")


@bp.route("/claims/<int:claim_id>/trace")
@role_required(*READERS)
def claim_trace(claim_id: int):
    """Every upstream line with the downstream lines and billings that make it up."""
    claim = _claim_or_404(claim_id)
    lines, unmapped = upstream.trace(claim)
    return render_template(
        "admin/claims_trace.html",
        claim=claim,
        contract=claim.contract,
        project=claim.contract.project,
        currency=claim.contract.project.currency,
        lines=lines,
        unmapped=unmapped,
        markup_pct=upstream.claim_markup(claim),
        recon=upstream.reconcile(claim),
    )


# ------------------------------------------------------------------ statuses


@bp.route("/claims/<int:claim_id>/submit", methods=["POST"])
@role_required(*ADMINS)
def claim_submit(claim_id: int):
    """Draft → submitted: the figures are frozen as sent to the client."""
    claim = _claim_or_404(claim_id)
    form = ClaimSubmitForm()
    form.check()
    try:
        upstream.submit_claim(
            claim,
            _me(),
            form.expected_version,
            accept_unmapped=form.accept_unmapped.data,
        )
    except BillingError as exc:
        return _refused(claim_id, exc)
    db.session.commit()
    flash(
        f"{term('Client_claim')} #{claim.claim_number} submitted: its amounts are "
        "frozen.",
        "success",
    )
    return _back(claim)


@bp.route("/claims/<int:claim_id>/back-to-draft", methods=["POST"])
@role_required(*ADMINS)
def claim_back_to_draft(claim_id: int):
    """Submitted → draft, when the client asked for changes."""
    claim = _claim_or_404(claim_id)
    form = ClaimBackToDraftForm()
    try:
        _checked(form)
        upstream.back_to_draft(claim, _me(), form.expected_version, form.reason.raw)
    except ValidationFailed as exc:
        return _refused(claim_id, BillingError(" ".join(exc.errors.values())))
    except BillingError as exc:
        return _refused(claim_id, exc)
    db.session.commit()
    flash(f"{term('Client_claim')} #{claim.claim_number} is a draft again.", "success")
    return _back(claim)


@bp.route("/claims/<int:claim_id>/void", methods=["POST"])
@role_required(*ADMINS)
def claim_void(claim_id: int):
    """Void the claim with a reason; its downstream billings are freed."""
    claim = _claim_or_404(claim_id)
    form = ClaimVoidForm()
    try:
        _checked(form)
        released = upstream.void_claim(
            claim, _me(), form.expected_version, form.reason.raw
        )
    except ValidationFailed as exc:
        return _refused(claim_id, BillingError(" ".join(exc.errors.values())), "void")
    except BillingError as exc:
        return _refused(claim_id, exc)
    db.session.commit()
    flash(
        f"{term('Client_claim')} #{claim.claim_number} voided; {len(released)} "
        f"{term('progress_billing')}(s) freed for another claim.",
        "success",
    )
    return _back(claim)


def _approve_page(
    claim: ClientClaim,
    errors: Mapping[str, str] | None = None,
    values: Mapping[str, Any] | None = None,
    status: int = 200,
) -> tuple[str, int]:
    sheet = upstream.claim_sheet(claim, "claimed")
    included = upstream.included_billings(claim)
    by_sov = {ln.client_sov_line_id: ln for ln in claim.lines}
    if values is None:
        shown: dict[str, str] = {}
        for row in sheet.rows:
            line = by_sov.get(row.sov.id)
            if line is not None:
                shown[f"line-{line.id}-work"] = f"{row.figures.work_this_period:.2f}"
                shown[f"line-{line.id}-materials"] = (
                    f"{row.figures.materials_stored:.2f}"
                )
        shown.update(
            {
                f"billing-{b.id}": "1"
                for b in included
                if b.status == BillingStatus.PENDING_OWNER_APPROVAL
            }
        )
        values = shown
    return (
        render_template(
            "admin/claims_approve.html",
            claim=claim,
            contract=claim.contract,
            project=claim.contract.project,
            currency=claim.contract.project.currency,
            sheet=sheet,
            by_sov=by_sov,
            pending=[
                b for b in included if b.status == BillingStatus.PENDING_OWNER_APPROVAL
            ],
            amounts={b.id: upstream.billing_amount(b) for b in included},
            errors=errors or {},
            values=values,
        ),
        status,
    )


@bp.route("/claims/<int:claim_id>/approve", methods=["GET", "POST"])
@role_required(*ADMINS)
def claim_approve(claim_id: int):
    """Record the client's approval with its amounts per line (both are kept)."""
    claim = _claim_or_404(claim_id)
    if request.method == "GET":
        if not upstream.allowed(claim, "approve"):
            flash(f"Only a submitted {_label()} can be approved.", "warning")
            return _back(claim)
        return _approve_page(claim)
    form = claim_approve_form(line.id for line in claim.lines)
    try:
        _checked(form)
        result = upstream.approve_claim(
            claim,
            _me(),
            form.expected_version,
            form.posted_amounts(),
            form.checked_billings(),
            form.note.raw,
        )
    except ValidationFailed as exc:
        db.session.rollback()
        form.add_errors(exc.errors)
        flash("Please correct the highlighted fields.", "danger")
        return _approve_page(_claim_or_404(claim_id), form.messages, form.values, 400)
    except BillingError as exc:
        db.session.rollback()
        flash(str(exc), "danger")
        return _approve_page(_claim_or_404(claim_id), {}, form.values, 409)
    db.session.commit()
    message = f"{term('Client_claim')} #{claim.claim_number} approved"
    if result.differs:
        message += " with the client's amounts (they differ from the claim)"
    if result.approved_billing_ids:
        message += (
            f"; {len(result.approved_billing_ids)} {term('progress_billing')}(s) "
            "held for owner approval were approved"
        )
    flash(message + ".", "success")
    return _back(claim)


# ------------------------------------------------------------------ period


@bp.route("/claims/periods/<int:period_id>")
@role_required(*READERS)
def claims_period(period_id: int):
    """A period's downstream billings tied to its upstream claims (reconciliation).

    The billings are listed a page at a time with their count; the totals come
    from the claims' stored sums (portal.upstream.stored) and only the billings
    in no claim whose sums hold are read (issue 16 item 3). From the page
    cache (portal.web.fragments) while nothing of the project changed: its
    counter (periods, claims, contracts, mappings), its commitments' digest
    (their billings), the global counter; per viewer and page of billings.
    """
    key = None
    if fragments.enabled():
        counters = generations.period_counters(period_id)
        if counters is None:
            abort(404)
        key = (
            "admin.claims_period",
            period_id,
            _page(),
            *counters,
            *fragments.viewer(),
        )
    return fragments.page(key, lambda: _claims_period_page(period_id))


def _claims_period_page(period_id: int) -> str:
    period = db.get_or_404(BillingPeriod, period_id)
    project = period.project
    of_period = (
        sa.select(Billing)
        .join(Commitment, Commitment.id == Billing.commitment_id)
        .where(
            Billing.period_id == period.id,
            Commitment.project_id == period.project_id,
        )
    )
    pages = _billings_page(
        of_period.options(selectinload(Billing.lines)).order_by(
            Commitment.number, Billing.id
        )
    )
    billings = list(pages.items)
    claims = db.session.scalars(
        sa.select(ClientClaim)
        .join(ClientContract, ClientContract.id == ClientClaim.client_contract_id)
        .where(ClientClaim.period_id == period.id)
        .options(
            selectinload(ClientClaim.contract),
            selectinload(ClientClaim.lines),
            defer(ClientClaim.unmapped),  # every unmapped line: not shown here
        )
        .order_by(ClientContract.number, ClientClaim.claim_number)
    ).all()
    counted = of_period.where(Billing.status.in_(upstream.ELIGIBLE_STATUSES))
    live = sa.select(ClientClaim.id).where(ClientClaim.status != ClaimStatus.VOID)
    not_in_claim = db.session.scalar(
        counted.with_only_columns(sa.func.count(Billing.id)).where(
            sa.or_(
                Billing.client_claim_id.is_(None), Billing.client_claim_id.not_in(live)
            )
        )
    )
    # Σ approved E + F of the counted billings: the claims' stored sums where
    # they hold, the other billings read one by one.
    kept = [
        c
        for c in claims
        if c.status != ClaimStatus.VOID
        and "included_total" in (c.summary or {})
        and upstream.stored.fresh(c)
    ]
    approved_total = sum(
        (Decimal(str((c.summary or {})["included_total"])) for c in kept), ZERO
    )
    rest = list(
        db.session.scalars(
            counted.where(
                sa.or_(
                    Billing.client_claim_id.is_(None),
                    Billing.client_claim_id.not_in([c.id for c in kept]),
                )
            ).options(selectinload(Billing.lines))
        ).all()
    )
    rest_amounts = upstream.billing_amounts(rest)
    approved_total += sum(rest_amounts.values(), ZERO)
    return render_template(
        "admin/claims_period.html",
        period=period,
        project=project,
        currency=project.currency,
        billings=billings,
        billing_pages=pages,
        amounts=upstream.billing_amounts(billings),
        claims=claims,
        recons={
            c.id: upstream.reconcile(c) for c in claims if c.status != ClaimStatus.VOID
        },
        approved_total=approved_total,
        not_in_claim=not_in_claim or 0,
        contracts=project.client_contracts,
        eligible=upstream.ELIGIBLE_STATUSES,
    )


# ------------------------------------------------------------------ PDFs


@bp.route("/claims/<int:claim_id>/pdf")
@role_required(*READERS)
def claim_pdf(claim_id: int):
    """The claim as an AIA-style PDF (G702 summary and G703 continuation sheet)."""
    from portal.documents import pdf  # fpdf2 costs ~0.4 s to import: on first use

    claim = _claim_or_404(claim_id)
    data = pdf.claim_pdf(claim)
    return pdf_response(
        data,
        f"{claim.contract.number}-claim-{claim.claim_number}",
    )


@bp.route("/billings/<int:billing_id>/pdf")
@role_required(*READERS)
def billing_pdf(billing_id: int):
    """A downstream billing as an AIA-style PDF, claimed and approved side by side."""
    from portal.documents import pdf  # fpdf2 costs ~0.4 s to import: on first use

    billing = db.get_or_404(Billing, billing_id)
    data = pdf.billing_pdf(billing)
    return pdf_response(
        data,
        f"{billing.commitment.number}-billing-{billing.application_number}",
    )
