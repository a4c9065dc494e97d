"""Upstream claims: figures."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

import sqlalchemy as sa

from portal.core import money
from portal.extensions import db
from portal.models import ClientClaim, ClientClaimLine, ClientSovLine
from portal.upstream import stored
from portal.upstream.common import (
    COUNTING_CLAIM_STATUSES,
    ELIGIBLE_STATUSES,
    ZERO,
    C,
    _cents,
)
from portal.upstream.generate import (
    SourceLine,
    _earlier_claims,
    _sources,
    included_billings,
    line_resolver,
    rollup,
)

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
    previous = stored.previous_claim(claim)
    certificates = ZERO
    if previous is not None:
        which = "approved" if previous.status == C.APPROVED else "claimed"
        kept = stored.certificate(previous, which)
        certificates = (
            kept
            if kept is not None
            else claim_figures(previous, which).totals.total_earned_less_retainage
        )
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
    if claim.status in COUNTING_CLAIM_STATUSES and claim.submitted_figures:
        # The only reader of the (deferred) trace column: loaded here, on demand.
        frozen = claim.submitted_trace
        if frozen is not None:
            return [SourceLine.from_dict(item) for item in frozen]
    if claim.status == C.VOID:
        return []
    # A billing voided since the draft was generated no longer counts.
    live = [b for b in included_billings(claim) if b.status in ELIGIBLE_STATUSES]
    return _sources(live, line_resolver(claim.contract), claim.period)


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
