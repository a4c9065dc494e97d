"""Upstream claims: gather."""

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
from portal.core import money
from portal.core.statuses import ContractStatus
from portal.extensions import db, rowcount
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
from portal.upstream.common import (
    ELIGIBLE_STATUSES,
    ZERO,
    C,
    ClaimError,
    StaleClaim,
    _cas,
    _check,
    _require_admin,
)

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
    #: commitment id → its latest counted billing as of the period (read once
    #: for the source lines and the claim's stored G per cost code).
    latest: dict[int, Billing] | None = None

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


def _approved_lines(billing: Billing) -> list[tuple[int, Decimal, Decimal]]:
    """(sov_line_id, approved E, approved F) of a counted billing, from its frozen
    figures (every counted billing has them), else computed."""
    stored = figures.frozen_columns(billing, ("work_this_period", "materials_stored"))
    if stored is not None:
        return [(sov_id, work, materials) for sov_id, (work, materials) in stored]
    sheet = figures.sheet(billing, "approved")
    return [
        (r.sov.id, r.figures.work_this_period, r.figures.materials_stored)
        for r in sheet.rows
    ]


def latest_counted(project_id: int, period: BillingPeriod) -> dict[int, Billing]:
    """commitment id → its latest counted billing as of ``period`` (SPEC §9).

    Only those billings are loaded, one per commitment: the latest application
    number is found in SQL. Loading every counted billing of the project with
    its frozen figures to keep the last of each made a claim's generation grow
    with the project's age (17.8 s and 1.8 GB for the benchmark's 24 periods,
    issue 16 item 3)."""

    def counted(stmt: sa.Select) -> sa.Select:
        return (
            stmt.join(BillingPeriod, BillingPeriod.id == Billing.period_id)
            .join(Commitment, Commitment.id == Billing.commitment_id)
            .where(
                Commitment.project_id == project_id,
                Billing.status.in_(ELIGIBLE_STATUSES),
                BillingPeriod.sequence <= period.sequence,
            )
        )

    last = (
        counted(
            sa.select(
                Billing.commitment_id.label("commitment_id"),
                sa.func.max(Billing.application_number).label("number"),
            )
        )
        .group_by(Billing.commitment_id)
        .subquery()
    )
    rows = db.session.scalars(
        counted(sa.select(Billing))
        .join(
            last,
            sa.and_(
                last.c.commitment_id == Billing.commitment_id,
                last.c.number == Billing.application_number,
            ),
        )
        .options(selectinload(Billing.commitment).selectinload(Commitment.vendor))
        .order_by(Billing.commitment_id, Billing.id.desc())
    ).all()
    out: dict[int, Billing] = {}
    for billing in rows:
        out.setdefault(billing.commitment_id, billing)
    return out


def _sources(
    billings: Iterable[Billing],
    resolve: Mapping[str, tuple[int, bool]],
    period: BillingPeriod | None = None,
    latest: Mapping[int, Billing] | None = None,
) -> list[SourceLine]:
    """The lines with an amount, placed on the client contract (SPEC §9).

    Work this period comes from the period's billings; materials presently
    stored is the latest counted F of *every* commitment as of the period: a
    commitment that does not bill this period keeps its stored balance upstream
    (its latest counted billing is the source line, with no work).
    """
    billings = list(billings)
    chosen: list[tuple[Billing, bool]] = [(b, True) for b in billings]
    if period is not None:
        billed = {b.commitment_id for b in billings}
        if latest is None:
            latest = latest_counted(period.project_id, period)
        for commitment_id, last in latest.items():
            # A commitment whose billing of this period is in another claim has
            # its balance there; one that did not bill this period keeps it here.
            if commitment_id not in billed and last.period_id != period.id:
                chosen.append((last, False))
    if not chosen:
        return []
    amounts = {b.id: _approved_lines(b) for b, _ in chosen}
    # The chosen commitments' SOV lines, selected by commitment (an IN list of
    # every line id, 11,000 at full size, cost more to build than to read).
    sovs = {
        row.id: row
        for row in db.session.execute(
            sa.select(
                SovLine.id, SovLine.line_number, SovLine.cost_code, SovLine.description
            ).where(
                SovLine.commitment_id.in_(sorted({b.commitment_id for b, _ in chosen}))
            )
        ).all()
    }
    out = []
    for billing, this_period in chosen:
        commitment = billing.commitment
        for sov_id, work, materials in sorted(
            amounts[billing.id], key=lambda r: sovs[r[0]].line_number
        ):
            if not this_period:
                work = ZERO
            if not work and not materials:
                continue
            sov = sovs[sov_id]
            target = resolve.get(sov.cost_code)
            out.append(
                SourceLine(
                    billing_id=billing.id,
                    billing_status=billing.status,
                    application_number=billing.application_number,
                    commitment_id=commitment.id,
                    commitment_number=commitment.number,
                    vendor_name=commitment.vendor.name,
                    sov_line_id=sov_id,
                    line_number=sov.line_number,
                    cost_code=sov.cost_code,
                    description=sov.description,
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
    latest = latest_counted(period.project_id, period)
    sources = _sources(billings, line_resolver(contract), period, latest)
    generated, placed = rollup(sources, contract.markup_pct)
    return Gathered(billings, sources, generated, placed, latest)


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
    if rowcount(result) != len(ids):
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


def _store_summary(claim: ClientClaim, found: Gathered) -> None:
    """Keep what the claim pages show (after the billings are taken: the sums
    hold from now on, see :mod:`portal.upstream.stored`)."""
    from portal.upstream import stored

    stored.write(
        claim, found.sources, [b.id for b in found.billings], latest=found.latest
    )


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


def unclaimed_periods(
    contract: ClientContract, before: BillingPeriod | None = None
) -> list[tuple[BillingPeriod, int]]:
    """Periods with counted downstream billings in no live claim, for which the
    contract has no live claim (SPEC §9: claims follow the periods in order).

    Each with the number of such billings, in period order; only the periods
    before ``before`` when given. Billings another contract's live claim took
    do not count: they are claimed.
    """
    live = sa.select(ClientClaim.id).where(ClientClaim.status != C.VOID)
    claimed_periods = sa.select(ClientClaim.period_id).where(
        ClientClaim.client_contract_id == contract.id, ClientClaim.status != C.VOID
    )
    query = (
        sa.select(BillingPeriod, sa.func.count(Billing.id))
        .join(Billing, Billing.period_id == BillingPeriod.id)
        .join(Commitment, Commitment.id == Billing.commitment_id)
        .where(
            BillingPeriod.project_id == contract.project_id,
            Commitment.project_id == contract.project_id,
            Billing.status.in_(ELIGIBLE_STATUSES),
            sa.or_(
                Billing.client_claim_id.is_(None),
                Billing.client_claim_id.not_in(live),
            ),
            BillingPeriod.id.not_in(claimed_periods),
        )
        .group_by(BillingPeriod.id)
        .order_by(BillingPeriod.sequence)
    )
    if before is not None:
        query = query.where(BillingPeriod.sequence < before.sequence)
    return [(period, count) for period, count in db.session.execute(query).all()]


def _missing_earlier(contract: ClientContract, period: BillingPeriod) -> str | None:
    """Why a claim for ``period`` must wait for earlier periods' claims, or None."""
    missing = unclaimed_periods(contract, period)
    if not missing:
        return None
    names = "; ".join(
        f"{p.label} ({n} counted billing{'' if n == 1 else 's'})" for p, n in missing
    )
    return (
        f"Claims follow the periods in order: {names} "
        f"{'has' if len(missing) == 1 else 'have'} no claim yet. Generate "
        f"{'it' if len(missing) == 1 else 'them'} first."
    )


def next_claim_number(contract: ClientContract) -> int:
    """The next application number the client sees (SPEC §9: no gaps).

    Numbers of live claims and of void claims the client was sent
    (``first_submitted_at``) are used up; a draft voided before it was ever
    submitted gives its number back.
    """
    last = db.session.scalar(
        sa.select(sa.func.max(ClientClaim.claim_number)).where(
            ClientClaim.client_contract_id == contract.id,
            sa.or_(
                ClientClaim.status != C.VOID,
                ClientClaim.first_submitted_at.is_not(None),
            ),
        )
    )
    return (last or 0) + 1


# ------------------------------------------------------------ generate


def generation_refusal(contract: ClientContract, period: BillingPeriod) -> str | None:
    """Why :func:`generate_claim` would refuse a claim for the contract and
    period, or None: the one list of its rules (the period close page reads it)."""
    if period.project_id != contract.project_id:
        return "That billing period belongs to another project."
    if contract.status != ContractStatus.APPROVED:
        return (
            "Only approved client contracts can be claimed against. "
            "Approve the contract first."
        )
    if not contract.lines:
        return (
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
        return (
            f"Claim #{existing} already exists for this contract and period: "
            "open it and regenerate it instead."
        )
    later = _later_claims(contract.id, period, [C.DRAFT, C.SUBMITTED, C.APPROVED])
    if later:
        return (
            f"Claim #{later[0].claim_number} already exists for a later period "
            f"({later[0].period.label}). Claims go in period order: void the later "
            "claim first."
        )
    return _missing_earlier(contract, period)


def generate_claim(
    contract: ClientContract, period: BillingPeriod, user: User
) -> ClientClaim:
    """SPEC §9: a draft claim for the contract and period from its approved billings."""
    _require_admin(user)
    refusal = generation_refusal(contract, period)
    if refusal:
        raise ClaimError(refusal)
    claim = ClientClaim(
        client_contract_id=contract.id,
        period_id=period.id,
        claim_number=next_claim_number(contract),
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
    _store_summary(claim, found)
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
    _store_summary(claim, found)
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
