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

Modules: :mod:`.common` (statuses, errors, the compare-and-set),
:mod:`.generate` (gathering the downstream lines, generate and regenerate),
:mod:`.figures` (G702/G703 of a claim, traceability), :mod:`.reconciliation`
and :mod:`.claims` (adjustments, mappings, submit/approve/void, listings).
Every public name is re-exported here: ``from portal import upstream; upstream.X``.
"""

from __future__ import annotations

from portal.upstream.claims import (
    ApprovalResult,
    add_client_line,
    adjust_line,
    approve_claim,
    back_to_draft,
    billing_amount,
    billing_amounts,
    map_cost_code,
    period_billings,
    set_retainage_released,
    submit_claim,
    void_claim,
)
from portal.upstream.common import (
    COST_CODE_LIMIT,
    COUNTING_CLAIM_STATUSES,
    DESCRIPTION_LIMIT,
    ELIGIBLE_STATUSES,
    TEXT_LIMITS,
    ZERO,
    C,
    ClaimError,
    StaleClaim,
    allowed,
)
from portal.upstream.figures import (
    ClaimHistory,
    ClaimRow,
    ClaimSheet,
    TraceLine,
    claim_figures,
    claim_markup,
    claim_sheet,
    compute,
    history,
    overbilled_lines,
    trace,
    trace_sources,
)
from portal.upstream.generate import (
    Gathered,
    SourceLine,
    gather,
    generate_claim,
    generation_refusal,
    included_billings,
    line_resolver,
    next_claim_number,
    regenerate,
    rollup,
    unclaimed_periods,
)
from portal.upstream.reconciliation import Reconciliation, out_of_date, reconcile, stale

__all__ = [
    "ApprovalResult",
    "C",
    "COST_CODE_LIMIT",
    "COUNTING_CLAIM_STATUSES",
    "ClaimError",
    "ClaimHistory",
    "ClaimRow",
    "ClaimSheet",
    "DESCRIPTION_LIMIT",
    "ELIGIBLE_STATUSES",
    "Gathered",
    "Reconciliation",
    "SourceLine",
    "StaleClaim",
    "TEXT_LIMITS",
    "TraceLine",
    "ZERO",
    "add_client_line",
    "adjust_line",
    "allowed",
    "approve_claim",
    "back_to_draft",
    "billing_amount",
    "billing_amounts",
    "claim_figures",
    "claim_markup",
    "claim_sheet",
    "compute",
    "gather",
    "generate_claim",
    "generation_refusal",
    "history",
    "included_billings",
    "line_resolver",
    "map_cost_code",
    "next_claim_number",
    "out_of_date",
    "overbilled_lines",
    "period_billings",
    "reconcile",
    "regenerate",
    "rollup",
    "set_retainage_released",
    "stale",
    "submit_claim",
    "trace",
    "trace_sources",
    "unclaimed_periods",
    "void_claim",
]
