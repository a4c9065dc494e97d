"""Upstream claims: reconciliation."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from portal.core import money
from portal.extensions import db
from portal.models import Billing, ClientClaim
from portal.upstream.common import ZERO, C
from portal.upstream.figures import claim_figures, claim_markup, trace
from portal.upstream.generate import _eligible_query, gather

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
