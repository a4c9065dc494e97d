"""Upstream claims: claims."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from portal import audit
from portal.billing import figures
from portal.billing.billings import BillingError, ValidationFailed, approve_billing
from portal.core import money
from portal.core.amounts import MAX_AMOUNT, AmountError, parse_amount
from portal.core.statuses import BillingStatus
from portal.extensions import db
from portal.models import (
    Billing,
    BillingPeriod,
    ClientClaim,
    ClientClaimLine,
    ClientContract,
    ClientSovLine,
    Commitment,
    CostCodeMapping,
    User,
)
from portal.timeutil import utcnow
from portal.upstream import stored
from portal.upstream.common import (
    COST_CODE_LIMIT,
    DESCRIPTION_LIMIT,
    ELIGIBLE_STATUSES,
    TEXT_LIMITS,
    ZERO,
    C,
    ClaimError,
    _cas,
    _check,
    _require_admin,
    _text,
)
from portal.upstream.figures import (
    claim_sheet,
    compute,
    overbilled_lines,
    trace_sources,
)
from portal.upstream.generate import (
    _earlier_claims,
    _later_claims,
    _missing_earlier,
    _release_billings,
)
from portal.upstream.reconciliation import out_of_date
from portal.web.templating import term

# ------------------------------------------------------------ adjust


def _line_errors(
    claim: ClientClaim,
    values: Mapping[int, tuple[Decimal, Decimal]],
    field_for: Mapping[int, str],
    which: str = "claimed",
) -> dict[str, str]:
    """Work to date below zero is refused on any line (SPEC §5)."""
    sovs, figs = compute(claim, values, which=which)
    errors = {}
    for sov, fig in zip(sovs, figs.lines, strict=True):
        if sov.id not in field_for:
            continue
        if fig.previous_work + fig.work_this_period < 0:
            errors[f"{field_for[sov.id]}-work"] = (
                "Work to date cannot go below zero: at most "
                f"-{fig.previous_work:,.2f} can be taken back on this line."
            )
        if abs(fig.total_completed_and_stored) > MAX_AMOUNT:
            errors[f"{field_for[sov.id]}-work"] = (
                "Amounts are limited to 999,999,999,999.99."
            )
    return errors


def adjust_line(
    claim: ClientClaim,
    line: ClientClaimLine,
    user: User,
    work: str | None,
    materials: str | None,
    reason: str | None,
    expected_version: int | None = None,
) -> None:
    """Set a draft line's hand adjustment (self-performed work, corrections), audited."""
    _check(claim, "adjust", user)
    if line.client_claim_id != claim.id:
        raise ClaimError("That line belongs to another claim.")
    errors: dict[str, str] = {}
    adj_work = adj_materials = ZERO
    try:
        adj_work = parse_amount(work, field="work")
    except AmountError as exc:
        errors["work"] = str(exc)
    try:
        adj_materials = parse_amount(materials, field="materials")
    except AmountError as exc:
        errors["materials"] = str(exc)
    text = _text(reason)
    if len(text) > TEXT_LIMITS["reason"]:
        errors["reason"] = f"Use at most {TEXT_LIMITS['reason']} characters."
    elif (adj_work or adj_materials) and not text:
        errors["reason"] = "Say why (for example: self-performed work, a correction)."
    if errors:
        raise ValidationFailed(errors)
    new_work = money.to_cents(line.generated_work + adj_work)
    new_materials = money.to_cents(line.generated_materials + adj_materials)
    if new_materials < 0:
        raise ValidationFailed(
            {
                "materials": "Materials stored cannot go below zero: at most "
                f"-{line.generated_materials:,.2f} can be taken off."
            }
        )
    line_errors = _line_errors(
        claim,
        {line.client_sov_line_id: (new_work, new_materials)},
        {line.client_sov_line_id: "line"},
    )
    if line_errors:
        raise ValidationFailed({"work": next(iter(line_errors.values()))})
    before = {
        "line_number": line.client_sov_line.line_number,
        "adjustment_work": line.adjustment_work,
        "adjustment_materials": line.adjustment_materials,
        "reason": line.adjustment_reason,
    }
    _cas(claim, expected_version, C.DRAFT)
    line.adjustment_work, line.adjustment_materials = adj_work, adj_materials
    line.adjustment_reason = text if (adj_work or adj_materials) else ""
    line.work_this_period, line.materials_stored = new_work, new_materials
    audit.record(
        user,
        "claim.adjust",
        claim,
        before=before,
        after={
            "line_number": line.client_sov_line.line_number,
            "adjustment_work": adj_work,
            "adjustment_materials": adj_materials,
            "reason": line.adjustment_reason,
        },
    )
    db.session.flush()


def set_retainage_released(
    claim: ClientClaim,
    user: User,
    amount: str | None,
    expected_version: int | None = None,
) -> Decimal:
    """Set the retainage the draft claim asks the client to release, audited.

    At most what is held to date (Σ retainage of the claim's lines less what
    earlier claims released) can be released.
    """
    _check(claim, "adjust", user)
    try:
        released = parse_amount(
            amount, allow_negative=False, field="retainage released"
        )
    except AmountError as exc:
        raise ValidationFailed({"retainage_released": str(exc)}) from None
    totals = compute(claim)[1].totals
    held = totals.retainage + claim.retainage_released  # before this claim's release
    if released > held:
        project = claim.contract.project
        raise ValidationFailed(
            {
                "retainage_released": f"You cannot release more "
                f"{term('retainage', project)} than is held "
                f"({max(held, ZERO):,.2f} available)."
            }
        )
    before = claim.retainage_released
    _cas(claim, expected_version, C.DRAFT, retainage_released=released)
    audit.record(
        user,
        "claim.retainage_released",
        claim,
        before={"retainage_released": before},
        after={"retainage_released": released},
    )
    db.session.flush()
    return released


# ------------------------------------------------------------ mapping


def map_cost_code(
    contract: ClientContract, cost_code: str, client_sov_line_id: int | None, user: User
) -> CostCodeMapping:
    """Map a downstream cost code to one of the contract's lines (SPEC §9 unmapped)."""
    _require_admin(user)
    code = _text(cost_code)
    if not code or len(code) > COST_CODE_LIMIT:
        raise ValidationFailed({"cost_code": "Choose a cost code to map."})
    target = next((s for s in contract.lines if s.id == client_sov_line_id), None)
    if target is None:
        raise ValidationFailed(
            {"client_sov_line_id": "Choose a line of this client contract."}
        )
    if any(s.cost_code == code for s in contract.lines):
        raise ValidationFailed(
            {
                "cost_code": f"Cost code {code} already has its own line on this "
                "contract: amounts with that code land there."
            }
        )
    mapping = db.session.scalar(
        sa.select(CostCodeMapping).where(
            CostCodeMapping.client_contract_id == contract.id,
            CostCodeMapping.cost_code == code,
        )
    )
    before = None
    if mapping is None:
        mapping = CostCodeMapping(
            client_contract_id=contract.id, cost_code=code, client_sov_line_id=target.id
        )
        db.session.add(mapping)
    else:
        before = {"client_sov_line_id": mapping.client_sov_line_id}
        mapping.client_sov_line_id = target.id
    try:
        with db.session.begin_nested():
            db.session.flush()
    except IntegrityError as exc:
        raise ClaimError(
            "That cost code was mapped by someone else meanwhile. Reload the page."
        ) from exc
    audit.record(
        user,
        "cost_code_mapping.save",
        mapping,
        before=before,
        after={
            "client_contract_id": contract.id,
            "cost_code": code,
            "client_sov_line_id": target.id,
            "line_number": target.line_number,
        },
    )
    db.session.flush()
    return mapping


def add_client_line(
    contract: ClientContract,
    cost_code: str | None,
    description: str | None,
    scheduled_value: str | None,
    user: User,
) -> ClientSovLine:
    """Add a schedule-of-values line to the client contract (for an unmapped code)."""
    _require_admin(user)
    errors: dict[str, str] = {}
    code = _text(cost_code)
    desc = _text(description)
    if not code:
        errors["cost_code"] = "Enter a cost code."
    elif len(code) > COST_CODE_LIMIT:
        errors["cost_code"] = f"Use at most {COST_CODE_LIMIT} characters."
    elif any(s.cost_code == code for s in contract.lines):
        errors["cost_code"] = f"Line with cost code {code} already exists."
    if not desc:
        errors["description"] = "Enter a description."
    elif len(desc) > DESCRIPTION_LIMIT:
        errors["description"] = f"Use at most {DESCRIPTION_LIMIT} characters."
    value = ZERO
    try:
        value = parse_amount(
            scheduled_value,
            allow_blank=False,
            allow_negative=False,
            field="scheduled_value",
        )
    except AmountError as exc:
        errors["scheduled_value"] = str(exc)
    if errors:
        raise ValidationFailed(errors)
    number = max((s.line_number for s in contract.lines), default=0) + 1
    line = ClientSovLine(
        line_number=number, cost_code=code, description=desc, scheduled_value=value
    )
    contract.lines.append(line)
    try:
        with db.session.begin_nested():
            db.session.flush()
    except IntegrityError as exc:
        raise ClaimError(
            "The contract's lines were changed by someone else meanwhile. "
            "Reload the page."
        ) from exc
    audit.record(
        user,
        "client_sov_line.create",
        line,
        after={
            "client_contract_id": contract.id,
            "line_number": number,
            "cost_code": code,
            "description": desc,
            "scheduled_value": value,
        },
    )
    db.session.flush()
    return line


# ------------------------------------------------------------ transitions


def submit_claim(
    claim: ClientClaim,
    user: User,
    expected_version: int | None = None,
    *,
    accept_unmapped: bool = False,
) -> None:
    """Draft → submitted (sent to the client): its figures are frozen."""
    to_status = _check(claim, "submit", user)
    earlier_draft = db.session.scalars(
        _earlier_claims(claim, [C.DRAFT]).limit(1)
    ).first()
    if earlier_draft is not None:
        raise ClaimError(
            f"Claim #{earlier_draft.claim_number} for an earlier period is still a "
            "draft: submit or void it first."
        )
    waiting = _missing_earlier(claim.contract, claim.period)
    if waiting:
        raise ClaimError(waiting)
    stale = out_of_date(claim)
    if stale:
        raise ClaimError(f"{stale} Regenerate the draft first.")
    if claim.unmapped and not accept_unmapped:
        raise ClaimError(
            "Some downstream amounts have no line on the client contract. Map them "
            "or add a line and regenerate, or confirm that they stay unclaimed."
        )
    sheet = claim_sheet(claim, "claimed")
    if (
        not any(
            r.figures.work_this_period or r.figures.materials_stored for r in sheet.rows
        )
        and not claim.retainage_released
    ):
        raise ClaimError("There is nothing to claim: every line is zero.")
    negative = [
        r.sov.line_number
        for r in sheet.rows
        if r.figures.previous_work + r.figures.work_this_period < 0
    ]
    if negative:
        raise ClaimError(
            "Work to date would go below zero on line(s) "
            + ", ".join(str(n) for n in negative)
            + ". Correct the adjustments first."
        )
    over = overbilled_lines(sheet)
    if over and not claim.contract.project.overbilling_allowed:
        raise ClaimError(
            "Line(s) "
            + ", ".join(str(r.sov.line_number) for r in over)
            + " would bill more than their scheduled value, which this project "
            "does not allow. Adjust those lines first."
        )
    sources = trace_sources(claim)
    frozen: dict[str, Any] = {
        "figures": money.figures_to_dict(sheet.figures),
        "client_sov_line_ids": [r.sov.id for r in sheet.rows],
        "markup_pct": str(claim.contract.markup_pct),
    }
    _cas(
        claim,
        expected_version,
        to_status,
        submitted_at=utcnow(),
        submitted_figures=frozen,
        submitted_trace=[s.to_dict() for s in sources],
        first_submitted_at=claim.first_submitted_at or utcnow(),
    )
    stored.write(
        claim,
        sources,
        [b.id for b in claim.billings],
        certificates={"claimed": str(sheet.figures.totals.total_earned_less_retainage)},
    )
    audit.record(
        user,
        "claim.submit",
        claim,
        before={"status": C.DRAFT},
        after={
            "status": to_status,
            "current_payment_due": frozen["figures"]["totals"]["current_payment_due"],
            "unmapped_accepted": bool(claim.unmapped),
        },
    )
    db.session.flush()


def back_to_draft(
    claim: ClientClaim,
    user: User,
    expected_version: int | None = None,
    reason: str = "",
) -> None:
    """Submitted → draft (the client asked for changes): figures unfrozen."""
    to_status = _check(claim, "back_to_draft", user)
    text = _text(reason)
    if len(text) > TEXT_LIMITS["note"]:
        raise ValidationFailed({"reason": "Use at most 2000 characters."})
    later = _later_claims(
        claim.client_contract_id, claim.period, [C.SUBMITTED, C.APPROVED]
    )
    if later:
        raise ClaimError(
            f"Claim #{later[0].claim_number} for a later period is {later[0].status}"
            " and builds on this one: put that one back first."
        )
    _cas(
        claim,
        expected_version,
        to_status,
        submitted_at=None,
        submitted_figures=None,
        submitted_trace=None,
    )
    stored.update(claim, certificates={})
    audit.record(
        user,
        "claim.back_to_draft",
        claim,
        before={"status": C.SUBMITTED},
        after={"status": to_status, "reason": text},
    )
    db.session.flush()


@dataclass
class ApprovalResult:
    """What approving a claim did."""

    approved_billing_ids: list[int]
    differs: bool


def approve_claim(
    claim: ClientClaim,
    user: User,
    expected_version: int | None = None,
    amounts: Mapping[int, tuple[str | None, str | None]] | None = None,
    approve_billing_ids: Iterable[int] = (),
    note: str = "",
) -> ApprovalResult:
    """Submitted → approved with the client's amounts per line; both are kept.

    ``amounts`` maps client_claim_line_id to the client's (work, materials) as
    text; lines left out were approved as claimed. The included downstream
    billings in ``approve_billing_ids`` (held in ``pending_owner_approval``) are
    approved in the same transaction, or nothing is.
    """
    to_status = _check(claim, "approve", user)
    earlier = db.session.scalars(
        _earlier_claims(claim, [C.DRAFT, C.SUBMITTED]).limit(1)
    ).first()
    if earlier is not None:
        raise ClaimError(
            f"Claim #{earlier.claim_number} for an earlier period is still "
            f"{earlier.status}: record the client's decision on it first."
        )
    text = _text(note)
    errors: dict[str, str] = {}
    if len(text) > TEXT_LIMITS["note"]:
        errors["note"] = "Use at most 2000 characters."
    by_id = {line.id: line for line in claim.lines}
    parsed: dict[int, tuple[Decimal, Decimal]] = {}
    for line_id, (raw_work, raw_materials) in (amounts or {}).items():
        line = by_id.get(line_id)
        if line is None:
            raise ValidationFailed(
                {"lines": "Unknown line in the form. Reload the page."}
            )
        work = materials = None
        try:
            work = parse_amount(raw_work, allow_blank=False, field="work")
        except AmountError as exc:
            errors[f"line-{line_id}-work"] = str(exc)
        try:
            materials = parse_amount(
                raw_materials,
                allow_blank=False,
                allow_negative=False,
                field="materials",
            )
        except AmountError as exc:
            errors[f"line-{line_id}-materials"] = str(exc)
        if work is not None and materials is not None:
            parsed[line_id] = (work, materials)
    if errors:
        raise ValidationFailed(errors)
    values = {}
    for line in claim.lines:
        values[line.client_sov_line_id] = parsed.get(
            line.id, (line.work_this_period, line.materials_stored)
        )
    line_errors = _line_errors(
        claim, values, {ln.client_sov_line_id: f"line-{ln.id}" for ln in claim.lines}
    )
    if line_errors:
        raise ValidationFailed(line_errors)
    wanted = sorted(set(approve_billing_ids))
    included = {b.id: b for b in claim.billings}
    for billing_id in wanted:
        billing = included.get(billing_id)
        if billing is None or billing.status != BillingStatus.PENDING_OWNER_APPROVAL:
            raise ClaimError(
                "Only included billings held for owner approval can be approved "
                "here. Reload the page."
            )
    _cas(claim, expected_version, to_status, approved_at=utcnow())
    differs = False
    for line in claim.lines:
        work, materials = values[line.client_sov_line_id]
        line.client_approved_work, line.client_approved_materials = work, materials
        if (work, materials) != (line.work_this_period, line.materials_stored):
            differs = True
    db.session.flush()
    sheet = claim_sheet(claim, "approved")
    frozen = dict(claim.submitted_figures or {})
    frozen["approved_figures"] = money.figures_to_dict(sheet.figures)
    claim.submitted_figures = frozen
    approved_ids = []
    for billing_id in wanted:
        billing = included[billing_id]
        try:
            approve_billing(billing, user, billing.version)
        except BillingError as exc:
            raise ClaimError(
                f"{billing.commitment.vendor.name} {billing.commitment.number} "
                f"billing #{billing.application_number}: {exc}"
            ) from exc
        approved_ids.append(billing_id)
    certificates = dict((claim.summary or {}).get("certificates") or {})
    certificates["approved"] = str(sheet.figures.totals.total_earned_less_retainage)
    # Approving its held billings changed them: the totals to date hold from now.
    stored.update(claim, refresh_to_date=bool(approved_ids), certificates=certificates)
    audit.record(
        user,
        "claim.approve",
        claim,
        before={"status": C.SUBMITTED},
        after={
            "status": to_status,
            "client_amounts_differ": differs,
            "current_payment_due": frozen["approved_figures"]["totals"][
                "current_payment_due"
            ],
            "approved_billing_ids": approved_ids,
            "note": text,
        },
    )
    db.session.flush()
    return ApprovalResult(approved_billing_ids=approved_ids, differs=differs)


def void_claim(
    claim: ClientClaim, user: User, expected_version: int | None, reason: str
) -> list[int]:
    """Void with a reason; its downstream billings are freed for another claim."""
    to_status = _check(claim, "void", user)
    text = _text(reason)
    if not text:
        raise ValidationFailed({"reason": "Give a reason for voiding."})
    if len(text) > TEXT_LIMITS["void_reason"]:
        raise ValidationFailed({"reason": "Use at most 2000 characters."})
    later = _later_claims(
        claim.client_contract_id, claim.period, [C.SUBMITTED, C.APPROVED]
    )
    if later:
        raise ClaimError(
            f"Claim #{later[0].claim_number} for a later period is {later[0].status}"
            " and builds on this one: it cannot be voided."
        )
    before = claim.status
    _cas(claim, expected_version, to_status, void_reason=text)
    released = _release_billings(claim)
    audit.record(
        user,
        "claim.void",
        claim,
        before={"status": before},
        after={"status": to_status, "reason": text, "released_billing_ids": released},
    )
    db.session.flush()
    return released


# ------------------------------------------------------------ listings


def period_billings(period: BillingPeriod) -> list[Billing]:
    """Every downstream billing of the period (any status), for the overview."""
    return list(
        db.session.scalars(
            sa.select(Billing)
            .join(Commitment, Commitment.id == Billing.commitment_id)
            .where(
                Billing.period_id == period.id,
                Commitment.project_id == period.project_id,
            )
            .options(
                selectinload(Billing.lines),
                selectinload(Billing.commitment).selectinload(Commitment.vendor),
                selectinload(Billing.client_claim),
            )
            .order_by(Commitment.number, Billing.id)
        ).all()
    )


def billing_amount(
    billing: Billing,
    which: str = "approved",
    previous: dict[int, Decimal] | None = None,
) -> Decimal:
    """Σ work this period + materials presently stored (F, carried from billing
    to billing, SPEC §4) of a billing, approved or claimed.

    ``previous`` is F per SOV line of the previous counted billing
    (:func:`billing_amounts` fetches it for many billings in one query).
    """
    if which == "approved":
        stored = figures.frozen(billing)
        if stored is not None:
            figs, _ = stored
            return money.to_cents(
                sum((f.work_this_period + f.materials_stored for f in figs.lines), ZERO)
            )
    if previous is None:
        previous = figures.previous_materials([billing])[billing.id]
    total = ZERO
    for bl in billing.lines:
        work = bl.approved_work if which == "approved" else bl.claimed_work
        new = bl.approved_materials if which == "approved" else bl.claimed_materials
        installed = (
            bl.approved_installed if which == "approved" else bl.claimed_installed
        )
        stored_f = money.materials_balance(
            previous.get(bl.sov_line_id, ZERO), new, installed or ZERO
        )
        total += work + stored_f
    # Lines with no billing line keep their previous balance.
    have = {bl.sov_line_id for bl in billing.lines}
    total += sum((f for sov, f in previous.items() if sov not in have), ZERO)
    return money.to_cents(total)


def billing_amounts(billings: list[Billing]) -> dict[int, Decimal]:
    """billing id → :func:`billing_amount`, approved for counted billings and
    claimed for the others, with the previous balances in one query."""
    previous = figures.previous_materials(billings)
    return {
        b.id: billing_amount(
            b,
            "approved" if b.status in ELIGIBLE_STATUSES else "claimed",
            previous[b.id],
        )
        for b in billings
    }
