"""Upstream claims: reconciliation."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from portal.billing.figures import frozen
from portal.billing.figures import sheet as billing_sheet
from portal.core import money
from portal.extensions import db
from portal.models import Billing, ClientClaim, SovLine
from portal.upstream.common import COUNTING_CLAIM_STATUSES, ZERO, C
from portal.upstream.figures import claim_figures, claim_markup, trace, trace_sources
from portal.upstream.generate import (
    _earlier_claims,
    _eligible_query,
    gather,
    latest_counted,
    line_resolver,
)

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
    #: SPEC §9 to date, before markup, on mapped cost codes: Σ of every
    #: commitment's latest counted G (D + E + F) …
    downstream_to_date: Decimal = ZERO
    #: … and what the upstream claims through this one placed: Σ work of
    #: every counting claim + this claim's materials presently stored.
    upstream_to_date: Decimal = ZERO
    #: upstream_to_date − downstream_to_date (0 when it ties).
    to_date_difference: Decimal = ZERO

    @property
    def ties(self) -> bool:
        """Whether every difference is explained (markup, unmapped, adjustments)
        and the totals to date agree (SPEC §9)."""
        return (
            self.difference == ZERO
            and self.out_of_date == ZERO
            and self.to_date_difference == ZERO
        )


def _to_date(claim: ClientClaim, sources: list[Any]) -> tuple[Decimal, Decimal]:
    """(downstream, upstream) totals to date before markup on mapped codes."""
    resolve = line_resolver(claim.contract)
    latest = latest_counted(claim.contract.project_id, claim.period)
    rows = {b.id: _approved_g(b) for b in latest.values()}
    codes = dict(
        db.session.execute(
            sa.select(SovLine.id, SovLine.cost_code).where(
                SovLine.id.in_({i for r in rows.values() for i in r} or {0})
            )
        ).all()
    )
    downstream = money.to_cents(
        sum(
            (g for r in rows.values() for i, g in r.items() if codes.get(i) in resolve),
            ZERO,
        )
    )
    earlier = db.session.scalars(_earlier_claims(claim, COUNTING_CLAIM_STATUSES)).all()
    work = sum(
        (
            s.work
            for c in earlier
            for s in trace_sources(c)
            if s.client_sov_line_id is not None
        ),
        ZERO,
    )
    mine = [s for s in sources if s.client_sov_line_id is not None]
    upstream = money.to_cents(work + sum((s.work + s.materials for s in mine), ZERO))
    return downstream, upstream


def _approved_g(billing: Billing) -> dict[int, Decimal]:
    """G (total completed and stored to date) per SOV line of a counted billing."""
    stored = frozen(billing)
    if stored is not None:
        figs, ids = stored
        return {
            i: f.total_completed_and_stored
            for i, f in zip(ids, figs.lines, strict=True)
        }
    sheet = billing_sheet(billing, "approved")
    return {r.sov.id: r.figures.total_completed_and_stored for r in sheet.rows}


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
                r.figures.work_this_period + r.figures.materials_stored
                for b in pending
                for r in billing_sheet(b, "approved").rows
            ),
            ZERO,
        )
    )
    downstream_to_date = upstream_to_date = ZERO
    if claim.status != C.VOID:
        downstream_to_date, upstream_to_date = _to_date(claim, sources)
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
        downstream_to_date=downstream_to_date,
        upstream_to_date=upstream_to_date,
        to_date_difference=money.to_cents(upstream_to_date - downstream_to_date),
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
