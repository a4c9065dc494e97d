"""The period close checklist (issue 15 item 6): what still blocks a billing
period's owner invoice (the upstream client claim) and its exports.

Nothing here has rules of its own about claims or exports: the commitment
states are the period dashboard's (:func:`portal.billing.dashboard.period_dashboard`),
the client-contract refusals are :func:`portal.upstream.generation_refusal`
(what :func:`portal.upstream.generate_claim` refuses on), and the export
problems are :func:`portal.finance.batches.readiness` (what a batch refuses
on). The checklist adds one policy: a period's owner invoice waits until every
commitment's billing of the period is decided (none left undecided, declined,
not invited or with no billing contact).

A fixed number of statements however many commitments or billings the period
has (one claim check per client contract of the project, of which there are few).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import selectinload

from portal import upstream
from portal.billing import dashboard
from portal.core.statuses import (
    COUNTED_STATUSES,
    BillingStatus,
    ClaimStatus,
    InvitationStatus,
)
from portal.extensions import db
from portal.finance import batches as export_batches
from portal.finance.builders import FORMATS
from portal.models import (
    Billing,
    BillingPeriod,
    ClientClaim,
    ClientContract,
    Commitment,
)

ZERO = Decimal("0.00")

#: Blocker kinds, in the order the page lists them.
UNDECIDED = "undecided"
AWAITING = "awaiting_billing"
DECLINED = "declined"
NOT_INVITED = "not_invited"
NO_CONTACT = "no_contact"
CONTRACT = "contract"
NO_CONTRACT = "no_contract"
KINDS = (UNDECIDED, AWAITING, DECLINED, NOT_INVITED, NO_CONTACT, CONTRACT, NO_CONTRACT)

#: Billing states still waiting for a decision (the review decides them).
UNDECIDED_STATES = frozenset(
    {
        BillingStatus.DRAFT.value,
        BillingStatus.UNDER_REVIEW.value,
        BillingStatus.REVISE_AND_RESUBMIT.value,
    }
)
#: Dashboard state → blocker kind, for commitments with no decided billing.
_STATE_KINDS = {
    **dict.fromkeys(UNDECIDED_STATES, UNDECIDED),
    InvitationStatus.INVITED.value: AWAITING,
    InvitationStatus.ACCEPTED.value: AWAITING,
    InvitationStatus.DECLINED.value: DECLINED,
    dashboard.NOT_INVITED: NOT_INVITED,
    dashboard.NO_CONTACT: NO_CONTACT,
}
COUNTED = tuple(s.value for s in COUNTED_STATUSES)


@dataclass(frozen=True)
class Blocker:
    """One thing that keeps the owner invoice (or an export) from going out."""

    kind: str
    message: str
    commitment: Commitment | None = None
    billing: Billing | None = None
    contract: ClientContract | None = None
    #: the dashboard state behind a commitment blocker
    state: str = ""


@dataclass(frozen=True)
class ContractClose:
    """One client contract of the project for the period: its live claim, or
    why a claim cannot be generated yet (None: it can)."""

    contract: ClientContract
    claim: ClientClaim | None
    refusal: str | None


@dataclass(frozen=True)
class ExportProblem:
    """An approved, unexported billing of the period a batch would refuse."""

    billing: Billing
    problems: list[str]


@dataclass
class PeriodClose:
    """Everything the period close checklist shows."""

    period: BillingPeriod
    blockers: list[Blocker]
    contracts: list[ContractClose]
    approved_count: int
    approved_total: Decimal
    export_format: str
    export_ready: int
    export_problems: list[ExportProblem] = field(default_factory=list)
    #: counted billings held for the owner: exported once the claim approves them
    held_for_owner: list[Billing] = field(default_factory=list)
    exported: int = 0

    @property
    def export_label(self) -> str:
        """The export format's name as the exports page shows it."""
        info = FORMATS.get(self.export_format)
        return info.label if info else self.export_format

    @property
    def to_generate(self) -> list[ClientContract]:
        """Client contracts that have no live claim for the period yet."""
        return [c.contract for c in self.contracts if c.claim is None]

    @property
    def claims(self) -> list[ClientClaim]:
        """The period's live claims (already generated)."""
        return [c.claim for c in self.contracts if c.claim is not None]

    @property
    def can_generate(self) -> bool:
        """Nothing blocks, and some contract still needs its claim."""
        return not self.blockers and bool(self.to_generate)

    def by_kind(self, kind: str) -> list[Blocker]:
        return [b for b in self.blockers if b.kind == kind]


def _live_claims(period: BillingPeriod) -> dict[int, ClientClaim]:
    rows = db.session.scalars(
        sa.select(ClientClaim).where(
            ClientClaim.period_id == period.id,
            ClientClaim.status != ClaimStatus.VOID,
        )
    ).all()
    return {claim.client_contract_id: claim for claim in rows}


def _contracts(period: BillingPeriod) -> list[ContractClose]:
    contracts = db.session.scalars(
        sa.select(ClientContract)
        .where(ClientContract.project_id == period.project_id)
        .options(selectinload(ClientContract.lines))
        .order_by(ClientContract.number)
    ).all()
    live = _live_claims(period)
    out = []
    for contract in contracts:
        claim = live.get(contract.id)
        refusal = (
            None if claim is not None else upstream.generation_refusal(contract, period)
        )
        out.append(ContractClose(contract, claim, refusal))
    return out


def _commitment_blockers(board: dashboard.PeriodDashboard) -> list[Blocker]:
    out = []
    for row in board.rows:
        kind = _STATE_KINDS.get(row.state)
        if kind is None:
            continue
        c = row.commitment
        if kind == UNDECIDED:
            message = f"{c.number}: billing #{row.billing.application_number} " + (  # type: ignore[union-attr]
                "is a draft not yet submitted"
                if row.state == BillingStatus.DRAFT
                else "waits for a decision"
                if row.state == BillingStatus.UNDER_REVIEW
                else "was sent back and is not resubmitted"
            )
        elif kind == AWAITING:
            message = f"{c.number}: invited, no billing yet"
        elif kind == DECLINED:
            message = f"{c.number}: every invited contact declined"
        elif kind == NOT_INVITED:
            message = f"{c.number}: not invited to bill"
        else:
            message = f"{c.number}: no active billing contact"
        out.append(Blocker(kind, message, c, row.billing, state=row.state))
    return out


def period_close(period: BillingPeriod) -> PeriodClose:
    """The checklist of ``period`` in a fixed number of statements."""
    board = dashboard.period_dashboard(period)
    blockers = _commitment_blockers(board)
    contracts = _contracts(period)
    if not contracts:
        blockers.append(
            Blocker(NO_CONTRACT, "The project has no client contract to claim against.")
        )
    for item in contracts:
        if item.refusal:
            blockers.append(
                Blocker(
                    CONTRACT,
                    f"{item.contract.number}: {item.refusal}",
                    contract=item.contract,
                )
            )
    counted = [
        row.billing
        for row in board.rows
        if row.billing is not None and row.billing.status in COUNTED
    ]
    amounts = upstream.billing_amounts(counted)
    fmt = export_batches.latest_format()
    unexported = list(
        db.session.scalars(
            export_batches.unexported_query(period_id=period.id)
        ).unique()
    )
    ready = export_batches.readiness(unexported, fmt)
    return PeriodClose(
        period=period,
        blockers=blockers,
        contracts=contracts,
        approved_count=len(counted),
        approved_total=sum((amounts[b.id] for b in counted), ZERO),
        export_format=fmt,
        export_ready=sum(1 for r in ready if r.ready),
        export_problems=[
            ExportProblem(r.billing, r.problems) for r in ready if r.problems
        ],
        held_for_owner=[
            b for b in counted if b.status == BillingStatus.PENDING_OWNER_APPROVAL
        ],
        exported=sum(1 for b in counted if b.export_batch_id is not None),
    )
