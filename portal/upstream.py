"""HC/Client progress claims (upstream, owner invoices) of SPEC §9.

A claim is generated for one client contract and one billing period from the
period's downstream billings in ``approved``, ``approved_as_noted`` or
``pending_owner_approval`` that no other live claim includes
(``Billing.client_claim_id`` links a billing to at most one claim). Each
downstream line lands on the client-contract SOV line with the same cost code
(or the one a :class:`CostCodeMapping` names); the sums per upstream line are
marked up and rounded per line; then SPEC §4's formulas run on the client
contract's own SOV via :mod:`portal.core.money`, with D from the contract's earlier
claims. Amounts that find no line are listed on the draft, never dropped.

Every change is one function here; each checks the claim's status, changes it
with a compare-and-set on ``ClientClaim.version``, writes its audit event and
flushes. None commits: the view does, once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from portal import audit
from portal.billing.billings import BillingError, ValidationFailed, approve_billing
from portal.core import money
from portal.core.amounts import MAX_AMOUNT, AmountError, parse_amount
from portal.core.statuses import (
    COUNTED_STATUSES,
    BillingStatus,
    ClaimStatus,
    ContractStatus,
    Role,
)
from portal.extensions import db
from portal.models import (
    Billing,
    BillingLine,
    BillingPeriod,
    ClientClaim,
    ClientClaimLine,
    ClientContract,
    ClientSovLine,
    Commitment,
    CostCodeMapping,
    SovLine,
    User,
)
from portal.timeutil import utcnow
from portal.validation import clean_text
from portal.web.templating import term

ZERO = Decimal("0.00")
C = ClaimStatus

#: Downstream billings a claim may take (SPEC §9).
ELIGIBLE_STATUSES = tuple(s.value for s in COUNTED_STATUSES)
#: Claims whose amounts count for later claims (D, line 7, releases).
COUNTING_CLAIM_STATUSES = (C.SUBMITTED.value, C.APPROVED.value)

#: (from status, action) → to status.
TRANSITIONS: dict[tuple[ClaimStatus, str], ClaimStatus] = {
    (C.DRAFT, "regenerate"): C.DRAFT,
    (C.DRAFT, "adjust"): C.DRAFT,
    (C.DRAFT, "submit"): C.SUBMITTED,
    (C.SUBMITTED, "approve"): C.APPROVED,
    (C.SUBMITTED, "back_to_draft"): C.DRAFT,
    (C.DRAFT, "void"): C.VOID,
    (C.SUBMITTED, "void"): C.VOID,
}

_ACTION_WORDS = {
    "regenerate": "regenerated",
    "adjust": "adjusted",
    "submit": "submitted",
    "approve": "approved",
    "back_to_draft": "put back to draft",
    "void": "voided",
}

TEXT_LIMITS = {"reason": 1000, "void_reason": 2000, "note": 2000}
DESCRIPTION_LIMIT = 300
COST_CODE_LIMIT = 40


class ClaimError(BillingError):
    """A refused claim action, with a message fit for the user."""


class StaleClaim(ClaimError):
    """The claim changed since the page was loaded."""


# ------------------------------------------------------------------ helpers


def allowed(claim: ClientClaim, action: str) -> bool:
    """Whether ``action`` is a legal move from the claim's status."""
    return (C(claim.status), action) in TRANSITIONS


def _check(claim: ClientClaim, action: str, user: User) -> ClaimStatus:
    if not isinstance(user, User) or user.role != Role.ADMIN:
        raise ClaimError("You are not allowed to do that.")
    key = (C(claim.status), action)
    if key not in TRANSITIONS:
        if claim.status in (C.SUBMITTED, C.APPROVED) and action in (
            "regenerate",
            "adjust",
        ):
            raise ClaimError(
                f"This claim is {claim.status}: its amounts are frozen. "
                "Put it back to draft first (only a submitted claim can go back)."
            )
        raise ClaimError(
            f"A claim that is {claim.status} cannot be "
            f"{_ACTION_WORDS.get(action, action)}."
        )
    return TRANSITIONS[key]


def _cas(
    claim: ClientClaim, expected_version: int | None, to_status: str, **values: Any
) -> None:
    """Compare-and-set the status and bump the version, or raise StaleClaim."""
    version = claim.version if expected_version is None else expected_version
    result = db.session.execute(
        sa.update(ClientClaim)
        .where(
            ClientClaim.id == claim.id,
            ClientClaim.status == claim.status,
            ClientClaim.version == version,
        )
        .values(status=to_status, version=ClientClaim.version + 1, **values)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        raise StaleClaim(
            "This claim was changed by someone else meanwhile. "
            "Reload the page to see the latest version, then try again."
        )
    db.session.refresh(claim)


def _text(value: str | None) -> str:
    return clean_text(value, multiline=True)


def _cents(raw: object) -> Decimal:
    if raw is None:
        return ZERO
    if isinstance(raw, Decimal):
        return raw.quantize(money.CENT)
    return Decimal(int(raw)).scaleb(-2).quantize(money.CENT)  # type: ignore[call-overload]


def _require_admin(user: User) -> None:
    if not isinstance(user, User) or user.role != Role.ADMIN:
        raise ClaimError("You are not allowed to do that.")


# ------------------------------------------------------------ gathering


@dataclass(frozen=True)
class SourceLine:
    """SPEC §9 one approved downstream billing line feeding an upstream claim."""

    billing_id: int
    billing_status: str
    application_number: int
    commitment_id: int
    commitment_number: str
    vendor_name: str
    sov_line_id: int
    line_number: int
    cost_code: str
    description: str
    work: Decimal
    materials: Decimal
    #: The client-contract SOV line it lands on; None = unmapped.
    client_sov_line_id: int | None
    via_mapping: bool = False

    @property
    def amount(self) -> Decimal:
        """Work plus materials (before markup)."""
        return money.to_cents(self.work + self.materials)

    def to_dict(self) -> dict[str, Any]:
        """JSON form, kept on the claim (unmapped list, frozen trace)."""
        return {
            "billing_id": self.billing_id,
            "billing_status": self.billing_status,
            "application_number": self.application_number,
            "commitment_id": self.commitment_id,
            "commitment": self.commitment_number,
            "vendor": self.vendor_name,
            "sov_line_id": self.sov_line_id,
            "line_number": self.line_number,
            "cost_code": self.cost_code,
            "description": self.description,
            "work": str(self.work),
            "materials": str(self.materials),
            "amount": str(self.amount),
            "client_sov_line_id": self.client_sov_line_id,
            "via_mapping": self.via_mapping,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SourceLine:
        """Read back :meth:`to_dict`."""
        return cls(
            billing_id=int(data["billing_id"]),
            billing_status=str(data.get("billing_status", "")),
            application_number=int(data["application_number"]),
            commitment_id=int(data["commitment_id"]),
            commitment_number=str(data["commitment"]),
            vendor_name=str(data["vendor"]),
            sov_line_id=int(data["sov_line_id"]),
            line_number=int(data["line_number"]),
            cost_code=str(data["cost_code"]),
            description=str(data["description"]),
            work=money.to_cents(str(data["work"])),
            materials=money.to_cents(str(data["materials"])),
            client_sov_line_id=data.get("client_sov_line_id"),
            via_mapping=bool(data.get("via_mapping", False)),
        )


@dataclass
class Gathered:
    """What a generation finds: the billings, their lines, the rolled-up amounts."""

    billings: list[Billing]
    sources: list[SourceLine]
    #: client_sov_line_id → (work, materials) with markup, rounded per line.
    generated: dict[int, tuple[Decimal, Decimal]]
    #: client_sov_line_id → (work, materials) before markup.
    placed: dict[int, tuple[Decimal, Decimal]]

    @property
    def unmapped(self) -> list[SourceLine]:
        """Downstream lines whose cost code has no client-contract line."""
        return [s for s in self.sources if s.client_sov_line_id is None]


def line_resolver(contract: ClientContract) -> dict[str, tuple[int, bool]]:
    """cost code → (client_sov_line_id, via mapping) for the contract."""
    out: dict[str, tuple[int, bool]] = {}
    mappings = db.session.execute(
        sa.select(CostCodeMapping.cost_code, CostCodeMapping.client_sov_line_id).where(
            CostCodeMapping.client_contract_id == contract.id
        )
    ).all()
    for code, line_id in mappings:
        out[code] = (line_id, True)
    lines = db.session.execute(
        sa.select(ClientSovLine.cost_code, ClientSovLine.id).where(
            ClientSovLine.client_contract_id == contract.id
        )
    ).all()
    # A line with the very same cost code wins over a mapping (SPEC §9).
    for code, line_id in lines:
        out[code] = (line_id, False)
    return out


def _sources(
    billings: Iterable[Billing], resolve: Mapping[str, tuple[int, bool]]
) -> list[SourceLine]:
    """The billings' lines with an amount, placed on the client contract.

    The lines are read in one query as plain rows (10,000 lines of a period
    would otherwise be 10,000 ORM objects and their SOV lines).
    """
    billings = list(billings)
    if not billings:
        return []
    rows = db.session.execute(
        sa.select(
            BillingLine.billing_id,
            BillingLine.approved_work,
            BillingLine.approved_materials,
            SovLine.id,
            SovLine.line_number,
            SovLine.cost_code,
            SovLine.description,
        )
        .join(SovLine, SovLine.id == BillingLine.sov_line_id)
        .where(
            BillingLine.billing_id.in_([b.id for b in billings]),
            sa.or_(BillingLine.approved_work != 0, BillingLine.approved_materials != 0),
        )
        .order_by(BillingLine.billing_id, SovLine.line_number)
    ).all()
    lines: dict[int, list[Any]] = {}
    for row in rows:
        lines.setdefault(row[0], []).append(row)
    out = []
    for billing in billings:
        commitment = billing.commitment
        for _, work, materials, sov_id, number, code, description in lines.get(
            billing.id, []
        ):
            if not work and not materials:
                continue
            target = resolve.get(code)
            out.append(
                SourceLine(
                    billing_id=billing.id,
                    billing_status=billing.status,
                    application_number=billing.application_number,
                    commitment_id=commitment.id,
                    commitment_number=commitment.number,
                    vendor_name=commitment.vendor.name,
                    sov_line_id=sov_id,
                    line_number=number,
                    cost_code=code,
                    description=description,
                    work=work,
                    materials=materials,
                    client_sov_line_id=target[0] if target else None,
                    via_mapping=target[1] if target else False,
                )
            )
    return out


def rollup(
    sources: Iterable[SourceLine], markup_pct: Decimal
) -> tuple[dict[int, tuple[Decimal, Decimal]], dict[int, tuple[Decimal, Decimal]]]:
    """SPEC §9 per upstream line: Σ approved, then × (1 + markup %), rounded per line.

    Returns (generated with markup, placed before markup), both keyed by
    client_sov_line_id. The grouping key handed to the money engine is the line
    id, so several cost codes mapped to one line are summed before rounding.
    """
    mapped = [s for s in sources if s.client_sov_line_id is not None]
    items = [
        money.UpstreamSource(
            cost_code=str(s.client_sov_line_id),
            approved_work=s.work,
            approved_materials=s.materials,
        )
        for s in mapped
    ]
    generated = {
        int(key): value
        for key, value in money.rollup_by_cost_code(items, markup_pct).items()
    }
    placed: dict[int, tuple[Decimal, Decimal]] = {}
    for s in mapped:
        key = int(s.client_sov_line_id)  # type: ignore[arg-type]
        work, materials = placed.get(key, (ZERO, ZERO))
        placed[key] = (work + s.work, materials + s.materials)
    return generated, placed


def _eligible_query(
    contract: ClientContract, period: BillingPeriod, claim_id: int | None
) -> sa.Select:
    void_claims = sa.select(ClientClaim.id).where(ClientClaim.status == C.VOID)
    free = sa.or_(
        Billing.client_claim_id.is_(None),
        Billing.client_claim_id.in_(void_claims),
    )
    if claim_id is not None:
        free = sa.or_(free, Billing.client_claim_id == claim_id)
    return (
        sa.select(Billing)
        .join(Commitment, Commitment.id == Billing.commitment_id)
        .where(
            Billing.period_id == period.id,
            Commitment.project_id == contract.project_id,
            Billing.status.in_(ELIGIBLE_STATUSES),
            free,
        )
        .options(selectinload(Billing.commitment).selectinload(Commitment.vendor))
        .order_by(Commitment.number, Billing.id)
    )


def gather(
    contract: ClientContract, period: BillingPeriod, claim: ClientClaim | None = None
) -> Gathered:
    """The period's eligible downstream billings, placed and rolled up (SPEC §9)."""
    billings = list(
        db.session.scalars(
            _eligible_query(contract, period, claim.id if claim else None)
        ).all()
    )
    sources = _sources(billings, line_resolver(contract))
    generated, placed = rollup(sources, contract.markup_pct)
    return Gathered(billings, sources, generated, placed)


def included_billings(claim: ClientClaim) -> list[Billing]:
    """The downstream billings the claim includes, loaded with their lines."""
    return list(
        db.session.scalars(
            sa.select(Billing)
            .join(Commitment, Commitment.id == Billing.commitment_id)
            .where(Billing.client_claim_id == claim.id)
            .options(
                selectinload(Billing.lines).joinedload(BillingLine.sov_line),
                selectinload(Billing.commitment).selectinload(Commitment.vendor),
                selectinload(Billing.attachments),
            )
            .order_by(Commitment.number, Billing.id)
        ).all()
    )


def _take_billings(claim: ClientClaim, billings: list[Billing]) -> None:
    """Link the billings to the claim, refusing any another claim took meanwhile."""
    ids = [b.id for b in billings]
    if not ids:
        return
    void_claims = sa.select(ClientClaim.id).where(ClientClaim.status == C.VOID)
    result = db.session.execute(
        sa.update(Billing)
        .where(
            Billing.id.in_(ids),
            Billing.status.in_(ELIGIBLE_STATUSES),
            sa.or_(
                Billing.client_claim_id.is_(None),
                Billing.client_claim_id == claim.id,
                Billing.client_claim_id.in_(void_claims),
            ),
        )
        .values(client_claim_id=claim.id)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != len(ids):
        raise StaleClaim(
            "A downstream billing was changed or included in another claim "
            "meanwhile. Reload the page and try again."
        )
    for billing in billings:
        db.session.expire(billing, ["client_claim_id"])
    db.session.expire(claim, ["billings"])


def _release_billings(claim: ClientClaim, keep: Iterable[int] = ()) -> list[int]:
    """Unlink the claim's billings except ``keep``; return the released ids."""
    keep_ids = list(keep)
    condition = [Billing.client_claim_id == claim.id]
    if keep_ids:
        condition.append(Billing.id.notin_(keep_ids))
    released = list(db.session.scalars(sa.select(Billing.id).where(*condition)).all())
    if released:
        db.session.execute(
            sa.update(Billing)
            .where(Billing.id.in_(released))
            .values(client_claim_id=None)
            .execution_options(synchronize_session=False)
        )
        for billing in db.session.identity_map.values():
            if isinstance(billing, Billing) and billing.id in released:
                db.session.expire(billing, ["client_claim_id"])
    db.session.expire(claim, ["billings"])
    return released


def _ensure_lines(claim: ClientClaim) -> dict[int, ClientClaimLine]:
    """One claim line per client SOV line (new contract lines get one too)."""
    have = {line.client_sov_line_id: line for line in claim.lines}
    for sov in claim.contract.lines:
        if sov.id not in have:
            line = ClientClaimLine(
                client_sov_line=sov,
                generated_work=ZERO,
                generated_materials=ZERO,
                adjustment_work=ZERO,
                adjustment_materials=ZERO,
                adjustment_reason="",
                work_this_period=ZERO,
                materials_stored=ZERO,
            )
            claim.lines.append(line)
            have[sov.id] = line
    return have


def _apply_generated(claim: ClientClaim, found: Gathered) -> None:
    lines = _ensure_lines(claim)
    problems = []
    for sov_id, line in lines.items():
        work, materials = found.generated.get(sov_id, (ZERO, ZERO))
        line.generated_work, line.generated_materials = work, materials
        line.work_this_period = money.to_cents(work + line.adjustment_work)
        line.materials_stored = money.to_cents(materials + line.adjustment_materials)
        if line.materials_stored < 0:
            problems.append(line.client_sov_line.line_number)
    if problems:
        raise ClaimError(
            "The hand adjustments of line(s) "
            + ", ".join(str(n) for n in sorted(problems))
            + " would now take materials stored below zero. Change those "
            "adjustments, then regenerate."
        )
    claim.unmapped = [s.to_dict() for s in found.unmapped]
    claim.generated_at = utcnow()


def _totals(claim: ClientClaim) -> dict[str, str]:
    return {
        "work_this_period": str(
            money.to_cents(sum((ln.work_this_period for ln in claim.lines), ZERO))
        ),
        "materials_stored": str(
            money.to_cents(sum((ln.materials_stored for ln in claim.lines), ZERO))
        ),
    }


# ------------------------------------------------------------ ordering


def _earlier_claims(claim: ClientClaim, statuses: Iterable[str]) -> sa.Select:
    return (
        sa.select(ClientClaim)
        .join(BillingPeriod, BillingPeriod.id == ClientClaim.period_id)
        .where(
            ClientClaim.client_contract_id == claim.client_contract_id,
            ClientClaim.id != claim.id,
            ClientClaim.status.in_(list(statuses)),
            BillingPeriod.sequence < claim.period.sequence,
        )
        .order_by(BillingPeriod.sequence.desc(), ClientClaim.claim_number.desc())
    )


def _later_claims(
    contract_id: int, period: BillingPeriod, statuses: Iterable[str]
) -> list[ClientClaim]:
    return list(
        db.session.scalars(
            sa.select(ClientClaim)
            .join(BillingPeriod, BillingPeriod.id == ClientClaim.period_id)
            .where(
                ClientClaim.client_contract_id == contract_id,
                ClientClaim.status.in_(list(statuses)),
                BillingPeriod.sequence > period.sequence,
            )
            .order_by(BillingPeriod.sequence)
        ).all()
    )


# ------------------------------------------------------------ generate


def generate_claim(
    contract: ClientContract, period: BillingPeriod, user: User
) -> ClientClaim:
    """SPEC §9: a draft claim for the contract and period from its approved billings."""
    _require_admin(user)
    if period.project_id != contract.project_id:
        raise ClaimError("That billing period belongs to another project.")
    if contract.status != ContractStatus.APPROVED:
        raise ClaimError(
            "Only approved client contracts can be claimed against. "
            "Approve the contract first."
        )
    if not contract.lines:
        raise ClaimError(
            "This client contract has no schedule of values yet. Add its SOV lines "
            "first."
        )
    existing = db.session.scalar(
        sa.select(ClientClaim.claim_number).where(
            ClientClaim.client_contract_id == contract.id,
            ClientClaim.period_id == period.id,
            ClientClaim.status != C.VOID,
        )
    )
    if existing is not None:
        raise ClaimError(
            f"Claim #{existing} already exists for this contract and period: "
            "open it and regenerate it instead."
        )
    later = _later_claims(contract.id, period, [C.DRAFT, C.SUBMITTED, C.APPROVED])
    if later:
        raise ClaimError(
            f"Claim #{later[0].claim_number} already exists for a later period "
            f"({later[0].period.label}). Claims go in period order: void the later "
            "claim first."
        )
    last_number = db.session.scalar(
        sa.select(sa.func.max(ClientClaim.claim_number)).where(
            ClientClaim.client_contract_id == contract.id
        )
    )
    claim = ClientClaim(
        client_contract_id=contract.id,
        period_id=period.id,
        claim_number=(last_number or 0) + 1,
        status=C.DRAFT,
        created_by_id=user.id,
    )
    db.session.add(claim)
    try:
        with db.session.begin_nested():
            db.session.flush()
    except IntegrityError as exc:
        raise ClaimError(
            "A claim for this contract and period was created by someone else "
            "meanwhile. Reload the page."
        ) from exc
    found = gather(contract, period, claim)
    _take_billings(claim, found.billings)
    _apply_generated(claim, found)
    db.session.flush()
    audit.record(
        user,
        "claim.generate",
        claim,
        after={
            "status": C.DRAFT,
            "claim_number": claim.claim_number,
            "period_id": period.id,
            "billing_ids": [b.id for b in found.billings],
            "unmapped": len(found.unmapped),
            **_totals(claim),
        },
    )
    db.session.flush()
    return claim


def regenerate(
    claim: ClientClaim, user: User, expected_version: int | None = None
) -> dict[str, list[int]]:
    """Rebuild a draft: pick up billings approved since, keep hand adjustments."""
    _check(claim, "regenerate", user)
    before = {
        **_totals(claim),
        "billing_ids": sorted(b.id for b in claim.billings),
    }
    _cas(claim, expected_version, C.DRAFT)
    found = gather(claim.contract, claim.period, claim)
    keep = [b.id for b in found.billings]
    released = _release_billings(claim, keep)
    added = sorted(set(keep) - set(before["billing_ids"]))
    _take_billings(claim, found.billings)
    _apply_generated(claim, found)
    db.session.flush()
    audit.record(
        user,
        "claim.regenerate",
        claim,
        before=before,
        after={
            **_totals(claim),
            "billing_ids": sorted(keep),
            "added": added,
            "released": released,
            "unmapped": len(found.unmapped),
        },
    )
    db.session.flush()
    return {"added": added, "released": released}


# ------------------------------------------------------------ figures


@dataclass(frozen=True)
class ClaimHistory:
    """What a claim's earlier claims contribute (SPEC §9 with §4)."""

    previous_work: dict[int, Decimal]
    released_before: Decimal
    previous_certificates: Decimal


def history(claim: ClientClaim) -> ClaimHistory:
    """D per client line, earlier releases and line 7 from earlier counted claims."""
    earlier = _earlier_claims(claim, COUNTING_CLAIM_STATUSES).subquery()
    rows = db.session.execute(
        sa.select(
            earlier.c.status,
            ClientClaimLine.client_sov_line_id,
            ClientClaimLine.work_this_period,
            ClientClaimLine.client_approved_work,
        ).join(ClientClaimLine, ClientClaimLine.client_claim_id == earlier.c.id)
    ).all()
    previous_work: dict[int, Decimal] = {}
    for status, sov_id, work, approved in rows:
        # The client's approved amount once the client has approved the claim.
        value = approved if status == C.APPROVED and approved is not None else work
        previous_work[sov_id] = previous_work.get(sov_id, ZERO) + value
    released = db.session.scalar(sa.select(sa.func.sum(earlier.c.retainage_released)))
    previous = db.session.scalars(
        _earlier_claims(claim, COUNTING_CLAIM_STATUSES).limit(1)
    ).first()
    certificates = ZERO
    if previous is not None:
        which = "approved" if previous.status == C.APPROVED else "claimed"
        certificates = claim_figures(previous, which).totals.total_earned_less_retainage
    return ClaimHistory(
        previous_work={k: money.to_cents(v) for k, v in previous_work.items()},
        released_before=_cents(released),
        previous_certificates=certificates,
    )


def compute(
    claim: ClientClaim,
    values: Mapping[int, tuple[Decimal, Decimal]] | None = None,
    *,
    which: str = "claimed",
) -> tuple[list[ClientSovLine], money.BillingFigures]:
    """SPEC §4 on the client contract's SOV: the claim's figures, computed now.

    ``values`` maps client_sov_line_id to (work, materials) and overrides the
    stored ones; ``which`` picks the ``claimed`` amounts or the client's
    ``approved`` ones (falling back to claimed where none was recorded).
    """
    contract = claim.contract
    sovs = list(contract.lines)
    by_sov = {line.client_sov_line_id: line for line in claim.lines}
    hist = history(claim)
    inputs = []
    for sov in sovs:
        line = by_sov.get(sov.id)
        if values is not None and sov.id in values:
            work, materials = values[sov.id]
        elif line is None:
            work, materials = ZERO, ZERO
        elif which == "approved":
            work = (
                line.client_approved_work
                if line.client_approved_work is not None
                else line.work_this_period
            )
            materials = (
                line.client_approved_materials
                if line.client_approved_materials is not None
                else line.materials_stored
            )
        else:
            work, materials = line.work_this_period, line.materials_stored
        inputs.append(
            money.LineInput(
                original_value=sov.scheduled_value,
                change_orders=ZERO,
                previous_work=hist.previous_work.get(sov.id, ZERO),
                work_this_period=work,
                materials_stored=materials,
            )
        )
    figs = money.compute_billing(
        inputs,
        work_retainage_pct=contract.work_retainage_pct,
        materials_retainage_pct=contract.materials_retainage_pct,
        retainage_released_to_date=hist.released_before + claim.retainage_released,
        previous_certificates=hist.previous_certificates,
    )
    return sovs, figs


def _frozen(
    claim: ClientClaim, which: str
) -> tuple[money.BillingFigures, list[int]] | None:
    data = claim.submitted_figures
    if not data or claim.status not in COUNTING_CLAIM_STATUSES:
        return None
    if which == "approved":
        if claim.status != C.APPROVED or not data.get("approved_figures"):
            return None
        return (
            money.figures_from_dict(data["approved_figures"]),
            list(data["client_sov_line_ids"]),
        )
    return money.figures_from_dict(data["figures"]), list(data["client_sov_line_ids"])


def claim_figures(claim: ClientClaim, which: str = "claimed") -> money.BillingFigures:
    """The claim's figures: frozen once submitted (approved ones once approved)."""
    frozen = _frozen(claim, which)
    if frozen is not None:
        return frozen[0]
    return compute(claim, which=which)[1]


@dataclass(frozen=True)
class ClaimRow:
    """One G703 row of a claim: the client SOV line, the claim line, the figures."""

    sov: ClientSovLine
    line: ClientClaimLine | None
    figures: money.LineFigures


@dataclass(frozen=True)
class ClaimSheet:
    """A claim's continuation sheet (rows) and summary (totals)."""

    rows: list[ClaimRow]
    totals: money.BillingTotals
    figures: money.BillingFigures


def claim_sheet(claim: ClientClaim, which: str = "claimed") -> ClaimSheet:
    """Rows and totals of the claim for pages and PDFs, in line-number order."""
    by_sov = {line.client_sov_line_id: line for line in claim.lines}
    frozen = _frozen(claim, which)
    if frozen is not None:
        figs, ids = frozen
        sovs = {
            s.id: s
            for s in db.session.scalars(
                sa.select(ClientSovLine).where(ClientSovLine.id.in_(ids))
            )
        }
        rows = [
            ClaimRow(sovs[i], by_sov.get(i), fig)
            for i, fig in zip(ids, figs.lines, strict=True)
        ]
    else:
        sov_list, figs = compute(claim, which=which)
        rows = [
            ClaimRow(sov, by_sov.get(sov.id), fig)
            for sov, fig in zip(sov_list, figs.lines, strict=True)
        ]
    return ClaimSheet(rows=rows, totals=figs.totals, figures=figs)


def overbilled_lines(sheet: ClaimSheet) -> list[ClaimRow]:
    """Rows whose total to date exceeds the scheduled value (flagged, SPEC §5)."""
    return [
        r
        for r in sheet.rows
        if r.figures.total_completed_and_stored > r.figures.scheduled_value
    ]


# ------------------------------------------------------------ trace


@dataclass
class TraceLine:
    """An upstream line and the downstream lines that make it up."""

    sov: ClientSovLine
    line: ClientClaimLine | None
    sources: list[SourceLine]
    placed_work: Decimal
    placed_materials: Decimal
    marked_up_work: Decimal
    marked_up_materials: Decimal


def trace_sources(claim: ClientClaim) -> list[SourceLine]:
    """Every downstream line of the claim: frozen once submitted, else as now."""
    data = claim.submitted_figures
    if data and claim.status in COUNTING_CLAIM_STATUSES and "trace" in data:
        return [SourceLine.from_dict(item) for item in data["trace"]]
    if claim.status == C.VOID:
        return []
    # A billing voided since the draft was generated no longer counts.
    live = [b for b in included_billings(claim) if b.status in ELIGIBLE_STATUSES]
    return _sources(live, line_resolver(claim.contract))


def claim_markup(claim: ClientClaim) -> Decimal:
    """The markup % the claim was built with (frozen on submission)."""
    data = claim.submitted_figures
    if data and claim.status in COUNTING_CLAIM_STATUSES and data.get("markup_pct"):
        return Decimal(str(data["markup_pct"]))
    return claim.contract.markup_pct


def trace(claim: ClientClaim) -> tuple[list[TraceLine], list[SourceLine]]:
    """Per upstream line, the downstream lines and billings behind it; and unmapped."""
    sources = trace_sources(claim)
    generated, placed = rollup(sources, claim_markup(claim))
    by_line: dict[int, list[SourceLine]] = {}
    for s in sources:
        if s.client_sov_line_id is not None:
            by_line.setdefault(s.client_sov_line_id, []).append(s)
    claim_lines = {line.client_sov_line_id: line for line in claim.lines}
    out = []
    for sov in claim.contract.lines:
        pw, pm = placed.get(sov.id, (ZERO, ZERO))
        gw, gm = generated.get(sov.id, (ZERO, ZERO))
        out.append(
            TraceLine(
                sov=sov,
                line=claim_lines.get(sov.id),
                sources=by_line.get(sov.id, []),
                placed_work=money.to_cents(pw),
                placed_materials=money.to_cents(pm),
                marked_up_work=gw,
                marked_up_materials=gm,
            )
        )
    return out, [s for s in sources if s.client_sov_line_id is None]


# ------------------------------------------------------------ reconciliation


@dataclass
class Reconciliation:
    """Ties the period's downstream approved amounts to the upstream claim (SPEC §9)."""

    downstream_total: Decimal  # Σ approved work + materials of included billings
    unmapped: Decimal  # not placed on any upstream line
    placed: Decimal  # downstream_total − unmapped
    markup: Decimal  # placed × markup, rounded per upstream line
    generated_expected: Decimal  # placed + markup
    generated_stored: Decimal  # Σ generated amounts on the claim's lines
    out_of_date: Decimal  # stored − expected (mapping or billings changed since)
    adjustments: Decimal  # Σ hand adjustments
    claim_total: Decimal  # Σ (E + F) of the claim
    difference: Decimal  # claim_total − (generated_stored + adjustments)
    markup_pct: Decimal
    not_yet_included: list[Billing] = field(default_factory=list)
    not_yet_included_total: Decimal = ZERO

    @property
    def ties(self) -> bool:
        """Whether every difference is explained (markup, unmapped, adjustments)."""
        return self.difference == ZERO and self.out_of_date == ZERO


def reconcile(claim: ClientClaim) -> Reconciliation:
    """Σ downstream → − unmapped → + markup → + adjustments = upstream E + F."""
    lines, unmapped_sources = trace(claim)
    sources = [s for t in lines for s in t.sources] + unmapped_sources
    downstream_total = money.to_cents(sum((s.amount for s in sources), ZERO))
    unmapped = money.to_cents(sum((s.amount for s in unmapped_sources), ZERO))
    placed = money.to_cents(downstream_total - unmapped)
    expected = money.to_cents(
        sum((t.marked_up_work + t.marked_up_materials for t in lines), ZERO)
    )
    stored = money.to_cents(
        sum((ln.generated_work + ln.generated_materials for ln in claim.lines), ZERO)
    )
    adjustments = money.to_cents(
        sum((ln.adjustment_work + ln.adjustment_materials for ln in claim.lines), ZERO)
    )
    if claim.status == C.VOID:
        claim_total = ZERO
        stored = adjustments = ZERO
    else:
        figs = claim_figures(claim, "claimed")
        claim_total = money.to_cents(
            sum((f.work_this_period + f.materials_stored for f in figs.lines), ZERO)
        )
    pending: list[Billing] = []
    if claim.status == C.DRAFT:
        found_ids = {b.id for b in claim.billings}
        pending = [
            b
            for b in db.session.scalars(
                _eligible_query(claim.contract, claim.period, claim.id)
            ).all()
            if b.id not in found_ids
        ]
    pending_total = money.to_cents(
        sum(
            (
                bl.approved_work + bl.approved_materials
                for b in pending
                for bl in b.lines
            ),
            ZERO,
        )
    )
    return Reconciliation(
        downstream_total=downstream_total,
        unmapped=unmapped,
        placed=placed,
        markup=money.to_cents(expected - placed),
        generated_expected=expected,
        generated_stored=stored,
        out_of_date=money.to_cents(stored - expected)
        if claim.status != C.VOID
        else ZERO,
        adjustments=adjustments,
        claim_total=claim_total,
        difference=money.to_cents(claim_total - stored - adjustments),
        markup_pct=claim_markup(claim),
        not_yet_included=pending,
        not_yet_included_total=pending_total,
    )


def out_of_date(claim: ClientClaim) -> str:
    """Why a draft no longer matches its billings and mappings ('' when it does)."""
    if claim.status != C.DRAFT:
        return ""
    found = gather(claim.contract, claim.period, claim)
    have = {b.id for b in claim.billings}
    new = [b for b in found.billings if b.id not in have]
    gone = have - {b.id for b in found.billings}
    if new:
        return (
            f"{len(new)} downstream billing(s) of this period were approved since "
            "the draft was generated."
        )
    if gone:
        return f"{len(gone)} included billing(s) were voided since."
    lines = {ln.client_sov_line_id: ln for ln in claim.lines}
    if {s.id for s in claim.contract.lines} - set(lines):
        return "The client contract has new lines since the draft was generated."
    for sov_id, line in lines.items():
        expected = found.generated.get(sov_id, (ZERO, ZERO))
        if (line.generated_work, line.generated_materials) != expected:
            return (
                "Cost-code mappings or the markup changed since the draft was "
                "generated."
            )

    def key(item: Mapping[str, Any]) -> tuple[Any, ...]:
        return (
            item["billing_id"],
            item["sov_line_id"],
            item["work"],
            item["materials"],
        )

    now = sorted(key(s.to_dict()) for s in found.unmapped)
    if now != sorted(key(item) for item in claim.unmapped or []):
        return "Cost-code mappings changed since the draft was generated."
    return ""


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
    frozen = {
        "figures": money.figures_to_dict(sheet.figures),
        "client_sov_line_ids": [r.sov.id for r in sheet.rows],
        "trace": [s.to_dict() for s in sources],
        "markup_pct": str(claim.contract.markup_pct),
    }
    _cas(
        claim,
        expected_version,
        to_status,
        submitted_at=utcnow(),
        submitted_figures=frozen,
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
    _cas(claim, expected_version, to_status, submitted_at=None, submitted_figures=None)
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


def billing_amount(billing: Billing, which: str = "approved") -> Decimal:
    """Σ work this period + materials stored of a billing (approved or claimed)."""
    if which == "claimed":
        total = sum(
            (bl.claimed_work + bl.claimed_materials for bl in billing.lines), ZERO
        )
    else:
        total = sum(
            (bl.approved_work + bl.approved_materials for bl in billing.lines), ZERO
        )
    return money.to_cents(total)
