"""Upstream claims: reconciliation."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from portal.billing.figures import sheet as billing_sheet
from portal.core import money
from portal.extensions import db
from portal.models import Billing, ClientClaim
from portal.upstream import stored
from portal.upstream.common import ZERO, C
from portal.upstream.figures import claim_figures, claim_markup, trace
from portal.upstream.generate import (
    _eligible_query,
    gather,
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
    by_code = stored.downstream_by_code(claim)
    downstream = money.to_cents(
        sum((g for code, g in by_code.items() if code in resolve), ZERO)
    )
    work = stored.earlier_mapped_work(claim)
    mine = [s for s in sources if s.client_sov_line_id is not None]
    upstream = money.to_cents(work + sum((s.work + s.materials for s in mine), ZERO))
    return downstream, upstream


def _pending(claim: ClientClaim) -> tuple[list[Billing], Decimal]:
    """A draft's billings of the period approved since it was generated (in no
    live claim), with Σ approved E + F."""
    if claim.status != C.DRAFT:
        return [], ZERO
    pending = list(
        db.session.scalars(_eligible_query(claim.contract, claim.period, None)).all()
    )
    total = money.to_cents(
        sum(
            (
                r.figures.work_this_period + r.figures.materials_stored
                for b in pending
                for r in billing_sheet(b, "approved").rows
            ),
            ZERO,
        )
    )
    return pending, total


def _line_sums(claim: ClientClaim) -> tuple[Decimal, Decimal]:
    """(Σ generated, Σ hand adjustments) of the claim's lines."""
    generated = money.to_cents(
        sum((ln.generated_work + ln.generated_materials for ln in claim.lines), ZERO)
    )
    adjustments = money.to_cents(
        sum((ln.adjustment_work + ln.adjustment_materials for ln in claim.lines), ZERO)
    )
    return generated, adjustments


def _claim_total(claim: ClientClaim) -> Decimal:
    figs = claim_figures(claim, "claimed")
    return money.to_cents(
        sum((f.work_this_period + f.materials_stored for f in figs.lines), ZERO)
    )


def _stored_reconcile(claim: ClientClaim) -> Reconciliation | None:
    """:func:`reconcile` from the claim's stored sums (None when they may not
    hold: then the downstream billings are read)."""
    data = claim.summary or {}
    if "by_code" not in data or "downstream_by_code" not in data:
        return None
    if not stored.fresh(claim):
        return None
    resolve = line_resolver(claim.contract)
    total, unmapped, per_line = stored.sums(claim, stored.placement(claim, resolve))
    placed = money.to_cents(total - unmapped)
    expected = money.to_cents(
        sum(
            (
                w + m
                for w, m in stored.generated(per_line, claim_markup(claim)).values()
            ),
            ZERO,
        )
    )
    generated, adjustments = _line_sums(claim)
    downstream_to_date = stored.downstream_to_date(claim, resolve)
    upstream_to_date = money.to_cents(stored.earlier_mapped_work(claim) + placed)
    return _assembled(
        claim,
        downstream_total=total,
        unmapped=unmapped,
        expected=expected,
        generated=generated,
        adjustments=adjustments,
        claim_total=_claim_total(claim),
        downstream_to_date=downstream_to_date,
        upstream_to_date=upstream_to_date,
    )


def _assembled(
    claim: ClientClaim,
    *,
    downstream_total: Decimal,
    unmapped: Decimal,
    expected: Decimal,
    generated: Decimal,
    adjustments: Decimal,
    claim_total: Decimal,
    downstream_to_date: Decimal,
    upstream_to_date: Decimal,
) -> Reconciliation:
    """The reconciliation from its inputs, read from the stored sums or from the
    downstream billings: the derived figures are computed here only."""
    placed = money.to_cents(downstream_total - unmapped)
    pending, pending_total = _pending(claim)
    return Reconciliation(
        downstream_total=downstream_total,
        unmapped=unmapped,
        placed=placed,
        markup=money.to_cents(expected - placed),
        generated_expected=expected,
        generated_stored=generated,
        out_of_date=money.to_cents(generated - expected)
        if claim.status != C.VOID
        else ZERO,
        adjustments=adjustments,
        claim_total=claim_total,
        difference=money.to_cents(claim_total - generated - adjustments),
        markup_pct=claim_markup(claim),
        not_yet_included=pending,
        not_yet_included_total=pending_total,
        downstream_to_date=downstream_to_date,
        upstream_to_date=upstream_to_date,
        to_date_difference=money.to_cents(upstream_to_date - downstream_to_date),
    )


def reconcile(claim: ClientClaim, *, use_stored: bool = True) -> Reconciliation:
    """Σ downstream → − unmapped → + markup → + adjustments = upstream E + F.

    From the claim's stored sums while they hold (:mod:`.stored`), else from
    the downstream billings: the same figures either way.
    """
    if use_stored and claim.status != C.VOID:
        kept = _stored_reconcile(claim)
        if kept is not None:
            return kept
    lines, unmapped_sources = trace(claim)
    sources = [s for t in lines for s in t.sources] + unmapped_sources
    downstream_total = money.to_cents(sum((s.amount for s in sources), ZERO))
    unmapped = money.to_cents(sum((s.amount for s in unmapped_sources), ZERO))
    expected = money.to_cents(
        sum((t.marked_up_work + t.marked_up_materials for t in lines), ZERO)
    )
    generated, adjustments = _line_sums(claim)
    claim_total = downstream_to_date = upstream_to_date = ZERO
    if claim.status == C.VOID:
        generated = adjustments = ZERO
    else:
        claim_total = _claim_total(claim)
        downstream_to_date, upstream_to_date = _to_date(claim, sources)
    return _assembled(
        claim,
        downstream_total=downstream_total,
        unmapped=unmapped,
        expected=expected,
        generated=generated,
        adjustments=adjustments,
        claim_total=claim_total,
        downstream_to_date=downstream_to_date,
        upstream_to_date=upstream_to_date,
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


def _stored_out_of_date(claim: ClientClaim) -> str | None:
    """:func:`out_of_date` from the draft's stored sums, or None when they may
    not hold (a downstream billing changed since: then it is gathered again)."""
    data = claim.summary or {}
    if "by_code" not in data or not stored.fresh(claim):
        return None
    # No billing changed since: none was approved, held or voided since.
    lines = {ln.client_sov_line_id: ln for ln in claim.lines}
    if {s.id for s in claim.contract.lines} - set(lines):
        return "The client contract has new lines since the draft was generated."
    placed_on = stored.placement(claim)
    _total, _unmapped, per_line = stored.sums(claim, placed_on)
    expected = stored.generated(per_line, claim.contract.markup_pct)
    for sov_id, line in lines.items():
        if (line.generated_work, line.generated_materials) != expected.get(
            sov_id, (ZERO, ZERO)
        ):
            return (
                "Cost-code mappings or the markup changed since the draft was "
                "generated."
            )
    now = {code for code, line_id in placed_on.items() if line_id is None}
    if now != {g["cost_code"] for g in stored.unmapped_groups(claim)}:
        return "Cost-code mappings changed since the draft was generated."
    return ""


def stale(claim: ClientClaim) -> str:
    """:func:`out_of_date` for the claim pages: from the stored sums while they
    hold, else by gathering the period's billings again (same answer)."""
    if claim.status != C.DRAFT:
        return ""
    kept = _stored_out_of_date(claim)
    return out_of_date(claim) if kept is None else kept
