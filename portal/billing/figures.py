"""G702/G703 figures of billings from the database, via the pure money engine.

The queries here gather the inputs (scheduled values with approved change
orders, D from earlier billings, earlier retainage releases, previous
certificates) in a fixed number of statements; :mod:`portal.core.money` does the
arithmetic. Approved billings read their frozen figures instead.

A billing's history is the *carry* of its commitment's previous counted billing,
stored when that billing was decided (:func:`store_carries`): one indexed read,
however old the project. A counted billing without a stored carry (none is
written outside :func:`store_carries`) is summed over the earlier billings as
before (:func:`summed_history`, :func:`summed_histories_for`); both give the
same figures (``tests/test_stored_history.py``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.orm import aliased, selectinload
from sqlalchemy.orm.attributes import set_committed_value

from portal import generations
from portal.core import money
from portal.core.statuses import COUNTED_STATUSES, ChangeOrderStatus
from portal.extensions import db
from portal.models import (
    Billing,
    BillingCarry,
    BillingCarryLine,
    BillingLine,
    ChangeOrder,
    ChangeOrderItem,
    Commitment,
    SovLine,
)

ZERO = Decimal("0.00")


@dataclass(frozen=True)
class SovInfo:
    """A billable SOV line with its approved change orders."""

    line: SovLine
    change_orders: Decimal


def billable_sov_lines(commitment: Commitment) -> list[SovInfo]:
    """The commitment's SOV lines that count (original, or added by an approved CO)."""
    return billable_sov_lines_for([commitment.id]).get(commitment.id, [])


def billable_sov_lines_for(commitment_ids: Iterable[int]) -> dict[int, list[SovInfo]]:
    """commitment id → its billable SOV lines, in two queries however many."""
    ids = sorted(set(commitment_ids))
    if not ids:
        return {}
    co_sums = dict(
        db.session.execute(
            sa.select(ChangeOrderItem.sov_line_id, sa.func.sum(ChangeOrderItem.amount))
            .join(ChangeOrder, ChangeOrder.id == ChangeOrderItem.change_order_id)
            .where(
                ChangeOrder.commitment_id.in_(ids),
                ChangeOrder.status == ChangeOrderStatus.APPROVED,
            )
            .group_by(ChangeOrderItem.sov_line_id)
        ).all()
    )
    lines = db.session.scalars(_billable(sa.select(SovLine), ids)).all()
    out: dict[int, list[SovInfo]] = {cid: [] for cid in ids}
    for line in lines:
        out[line.commitment_id].append(SovInfo(line, _cents(co_sums.get(line.id))))
    return out


def _billable(stmt: sa.Select, commitment_ids: list[int]) -> sa.Select:
    """``stmt`` over SovLine narrowed to the commitments' billable lines, in SOV
    order: lines added by a change order count once it is approved."""
    return (
        stmt.outerjoin(ChangeOrder, ChangeOrder.id == SovLine.change_order_id)
        .where(
            SovLine.commitment_id.in_(commitment_ids),
            sa.or_(
                SovLine.change_order_id.is_(None),
                sa.and_(
                    ChangeOrder.commitment_id == SovLine.commitment_id,
                    ChangeOrder.status == ChangeOrderStatus.APPROVED,
                ),
            ),
        )
        .order_by(SovLine.commitment_id, SovLine.line_number)
    )


def _cents(raw: int | Decimal | None) -> Decimal:
    """A SUM over a Money column comes back as raw integer cents."""
    if raw is None:
        return ZERO
    if isinstance(raw, Decimal):  # SUM keeps the Money type on most drivers
        return raw.quantize(money.CENT)
    return Decimal(int(raw)).scaleb(-2).quantize(money.CENT)


@dataclass(frozen=True)
class History:
    """What earlier billings of the same commitment contribute (SPEC §4)."""

    previous_work: dict[int, Decimal]  # D per sov_line_id
    released_before: Decimal  # effective retainage released by earlier billings
    previous_certificates: Decimal  # line 6 of the previous counted billing
    previous_materials: dict[int, Decimal]  # F of the previous counted billing


def _carried(billing: Billing) -> tuple[Decimal, Decimal, dict[int, Decimal]]:
    """Line 6, effective releases to date and F per SOV line of a counted billing.

    Reads its frozen figures (every counted billing has them); a counted billing
    without a snapshot (older data) is computed.
    """
    data = _frozen_data(billing)
    if data is not None:
        # Only the three stored figures it needs, read as frozen_fields() does
        # (a period dashboard carries hundreds of these).
        raw = data["figures"]
        return (
            money.to_cents(raw["totals"]["total_earned_less_retainage"]),
            money.to_cents(raw["totals"]["retainage_released_to_date"]),
            {
                sov_id: money.to_cents(line["materials_stored"])
                for sov_id, line in zip(data["sov_line_ids"], raw["lines"], strict=True)
            },
        )
    figs = compute(billing, which="approved")
    ids = [info.line.id for info in billable_sov_lines(billing.commitment)]
    stored = {
        sov_id: line.materials_stored
        for sov_id, line in zip(ids, figs.lines, strict=True)
    }
    return (
        figs.totals.total_earned_less_retainage,
        figs.totals.retainage_released_to_date,
        stored,
    )


COUNTED = [s.value for s in COUNTED_STATUSES]


def _no_history() -> History:
    """The history of a commitment's first counted billing."""
    return History(
        previous_work={},
        released_before=ZERO,
        previous_certificates=ZERO,
        previous_materials={},
    )


#: The stored carry of a previous counted billing, with its per-line rows; the
#: amounts as the integer cents they are stored in (a page reads thousands:
#: converted once here, not through the Money type for every row).
_CARRY_COLUMNS = (
    BillingCarry.billing_id,
    sa.type_coerce(BillingCarry.certificates, sa.BigInteger),
    sa.type_coerce(BillingCarry.released_to_date, sa.BigInteger),
    BillingCarryLine.sov_line_id,
    sa.type_coerce(BillingCarryLine.work_to_date, sa.BigInteger),
    sa.type_coerce(BillingCarryLine.materials_stored, sa.BigInteger),
)


def _history_from_carry(rows: Sequence[Sequence[Any]]) -> History:
    """A History from the carry rows of one billing (``_CARRY_COLUMNS`` order)."""
    work: dict[int, Decimal] = {}
    materials: dict[int, Decimal] = {}
    for _carry_id, _certs, _rel, sov_id, done, stored in rows:
        if sov_id is None:
            continue
        if done is not None:
            work[sov_id] = Decimal(done).scaleb(-2)
        if stored is not None:
            materials[sov_id] = Decimal(stored).scaleb(-2)
    _carry_id, certificates, released, *_ = rows[0]
    return History(
        previous_work=work,
        released_before=Decimal(released).scaleb(-2),
        previous_certificates=Decimal(certificates).scaleb(-2),
        previous_materials=materials,
    )


def history(commitment_id: int, application_number: int) -> History:
    """D per line, earlier releases and line 7 for a billing's position: the
    stored carry of the previous counted billing, in one statement."""
    previous = (
        sa.select(Billing.id)
        .where(
            Billing.commitment_id == commitment_id,
            Billing.status.in_(COUNTED),
            Billing.application_number < application_number,
        )
        .order_by(Billing.application_number.desc())
        .limit(1)
        .scalar_subquery()
    )
    rows = db.session.execute(
        sa.select(Billing.id, *_CARRY_COLUMNS)
        .select_from(Billing)
        .outerjoin(BillingCarry, BillingCarry.billing_id == Billing.id)
        .outerjoin(
            BillingCarryLine, BillingCarryLine.billing_id == BillingCarry.billing_id
        )
        .where(Billing.id == previous)
    ).all()
    if not rows:
        return _no_history()
    if rows[0][1] is None:  # decided before carries were stored
        return summed_history(commitment_id, application_number)
    return _history_from_carry([row[1:] for row in rows])


def summed_history(commitment_id: int, application_number: int) -> History:
    """:func:`history` summed over every earlier counted billing (the path for
    a previous billing without a stored carry, and the reference in tests)."""

    def earlier(billing: Any) -> sa.ColumnElement[bool]:
        return sa.and_(
            billing.commitment_id == commitment_id,
            billing.status.in_([s.value for s in COUNTED_STATUSES]),
            billing.application_number < application_number,
        )

    work = dict(
        db.session.execute(
            sa.select(BillingLine.sov_line_id, sa.func.sum(BillingLine.approved_work))
            .join(Billing, Billing.id == BillingLine.billing_id)
            .where(earlier(Billing))
            .group_by(BillingLine.sov_line_id)
        ).all()
    )
    # The previous counted billing carries line 7, F and the releases (SPEC §4):
    # its frozen figures hold its F per line and its effective releases to date.
    previous = db.session.scalars(
        sa.select(Billing)
        .where(earlier(Billing))
        .order_by(Billing.application_number.desc())
        .limit(1)
    ).first()
    previous_certificates = released = ZERO
    materials: dict[int, Decimal] = {}
    if previous is not None:
        previous_certificates, released, materials = _carried(previous)
    return History(
        previous_work={k: _cents(v) for k, v in work.items()},
        released_before=released,
        previous_certificates=previous_certificates,
        previous_materials=materials,
    )


def previous_materials(billings: list[Billing]) -> dict[int, dict[int, Decimal]]:
    """billing id → F per SOV line of its previous counted billing, in one query
    (its stored carry holds F; SPEC §4)."""
    return {
        billing_id: hist.previous_materials
        for billing_id, hist in histories_for(billings).items()
    }


def compute(
    billing: Billing,
    values: Mapping[int, tuple[Decimal, Decimal, Decimal]] | None = None,
    *,
    retainage_released: Decimal | None = None,
    which: str = "approved",
    infos: list[SovInfo] | None = None,
    hist: History | None = None,
) -> money.BillingFigures:
    """Figures for ``billing``'s lines (ordered by SOV line number).

    ``values`` maps sov_line_id to (work this period, materials newly stored,
    stored materials installed) and overrides the stored ones (a form being validated); otherwise ``which`` picks
    the ``approved`` or ``claimed`` amounts. ``infos`` are the commitment's
    billable lines when the caller has them already.
    """
    commitment = billing.commitment
    if infos is None:
        infos = billable_sov_lines(commitment)
    if hist is None:
        hist = history(commitment.id, billing.application_number)
    by_line = {bl.sov_line_id: bl for bl in billing.lines}
    inputs = []
    for info in infos:
        bl = by_line.get(info.line.id)
        if values is not None and info.line.id in values:
            work, materials, installed = values[info.line.id]
        elif bl is None:
            work, materials, installed = ZERO, ZERO, ZERO
        elif which == "claimed":
            work, materials = bl.claimed_work, bl.claimed_materials
            installed = bl.claimed_installed or ZERO
        else:
            work, materials = bl.approved_work, bl.approved_materials
            installed = bl.approved_installed or ZERO
        inputs.append(
            money.LineInput(
                original_value=info.line.original_value,
                change_orders=info.change_orders,
                previous_work=hist.previous_work.get(info.line.id, ZERO),
                work_this_period=work,
                materials_stored=materials,
                materials_previous=hist.previous_materials.get(info.line.id, ZERO),
                materials_installed=installed,
            )
        )
    released = (
        billing.retainage_released if retainage_released is None else retainage_released
    )
    return money.compute_billing(
        inputs,
        work_retainage_pct=commitment.work_retainage_pct,
        materials_retainage_pct=commitment.materials_retainage_pct,
        retainage_released_to_date=hist.released_before + released,
        previous_certificates=hist.previous_certificates,
    )


@dataclass(frozen=True)
class SovView:
    """An SOV line as it stood when a billing was decided (SPEC §4: an approved
    billing's figures never change, nor the schedule they were computed on)."""

    id: int
    line_number: int
    cost_code: str
    description: str
    original_value: Decimal
    change_orders: Decimal


def freeze(billing: Billing) -> dict:
    """The JSON stored on a decided billing: its approved and claimed figures,
    and the SOV (lines, scheduled values) they were computed on.

    Every surface of a decided billing reads this, so a change order approved
    later (a new line, a new scheduled value) changes none of it.
    """
    infos = billable_sov_lines(billing.commitment)
    hist = history(billing.commitment_id, billing.application_number)
    figs = compute(billing, which="approved", infos=infos, hist=hist)
    claimed = compute(billing, which="claimed", infos=infos, hist=hist)
    return frozen_json(
        figs,
        claimed,
        [
            SovView(
                id=info.line.id,
                line_number=info.line.line_number,
                cost_code=info.line.cost_code,
                description=info.line.description,
                original_value=info.line.original_value,
                change_orders=info.change_orders,
            )
            for info in infos
        ],
    )


def frozen_json(
    figs: money.BillingFigures,
    claimed: money.BillingFigures,
    sov: Sequence[SovView],
) -> dict:
    """What :func:`freeze` stores, from the figures and the SOV they were
    computed on (the benchmark generator writes its billings with this too)."""
    return {
        "figures": money.figures_to_dict(figs),
        "claimed_figures": money.figures_to_dict(claimed),
        "sov_line_ids": [line.id for line in sov],
        "sov": [
            {
                "id": line.id,
                "line_number": line.line_number,
                "cost_code": line.cost_code,
                "description": line.description,
                "original_value": str(line.original_value),
                "change_orders": str(line.change_orders),
            }
            for line in sov
        ],
    }


def store_carries(billing: Billing) -> None:
    """(Re)store the carry of ``billing`` and of its commitment's later counted
    billings, in application-number order; call it once ``billing`` has its
    new status (decided: counted and frozen; voided: no longer counted).

    A billing's carry is what :func:`summed_history` gives the billing after it:
    per SOV line the work completed to date (D + this billing's approved E) and
    F, line 6 and the effective releases to date (the last three from its
    frozen figures, as :func:`_carried` reads them). Only deciding or voiding a
    billing changes which billings count, so only then is it written; the
    later ones are rewritten because a voided earlier billing (held for the
    owner, then voided) no longer adds to their D.
    """
    from_here = sa.select(Billing.id).where(
        Billing.commitment_id == billing.commitment_id,
        Billing.application_number >= billing.application_number,
    )
    # The commitment's pages change with its carries (the statements below
    # are marked covered rather than bumping every page).
    generations.touch(billing)
    # Their lines go with them (ON DELETE CASCADE).
    db.session.execute(
        sa.delete(BillingCarry)
        .where(BillingCarry.billing_id.in_(from_here))
        .execution_options(**generations.COVERED_OPTIONS)
    )
    if billing.status in COUNTED:
        _store_carry(billing)
    for later in db.session.scalars(
        sa.select(Billing)
        .where(
            Billing.commitment_id == billing.commitment_id,
            Billing.application_number > billing.application_number,
            Billing.status.in_(COUNTED),
        )
        .order_by(Billing.application_number)
    ):
        _store_carry(later)


def _store_carry(billing: Billing) -> None:
    """Write the carry of one counted billing (its earlier ones' are current)."""
    hist = history(billing.commitment_id, billing.application_number)
    work = dict(hist.previous_work)
    for bl in billing.lines:
        work[bl.sov_line_id] = work.get(bl.sov_line_id, ZERO) + bl.approved_work
    certificates, released, materials = _carried(billing)
    db.session.execute(
        sa.insert(_table(BillingCarry)).execution_options(
            **generations.COVERED_OPTIONS
        ),
        [
            {
                "billing_id": billing.id,
                "certificates": certificates,
                "released_to_date": released,
            }
        ],
    )
    rows = [
        {
            "billing_id": billing.id,
            "sov_line_id": sov_id,
            "work_to_date": work.get(sov_id),
            "materials_stored": materials.get(sov_id),
        }
        for sov_id in sorted(work.keys() | materials.keys())
    ]
    if rows:
        db.session.execute(
            sa.insert(_table(BillingCarryLine)).execution_options(
                **generations.COVERED_OPTIONS
            ),
            rows,
        )


def _table(model: Any) -> sa.Table:
    """A model's Core table, typed (``__table__`` is typed as a FromClause)."""
    return cast(sa.Table, model.__table__)


def _frozen_data(billing: Billing) -> dict | None:
    data = billing.approved_figures
    if not data or billing.status not in [s.value for s in COUNTED_STATUSES]:
        return None
    return data


_FROZEN_KEYS = {"approved": "figures", "claimed": "claimed_figures"}


def _frozen(
    billing: Billing, which: str = "approved"
) -> tuple[money.BillingFigures, list[int]] | None:
    """Stored figures of a decided billing (``claimed`` ones only in snapshots
    taken since they are stored: older ones compute the claimed side)."""
    data = _frozen_data(billing)
    key = _FROZEN_KEYS.get(which)
    if data is None or key is None or key not in data:
        return None
    return money.figures_from_dict(data[key]), list(data["sov_line_ids"])


def frozen_columns(
    billing: Billing, names: tuple[str, ...]
) -> list[tuple[int, tuple[Decimal, ...]]] | None:
    """(SOV line id, the ``names`` approved line figures) of a decided
    billing's stored figures (no queries), else None: :func:`frozen` for a
    reader of a few columns of many billings (the upstream claim)."""
    data = _frozen_data(billing)
    if data is None or "figures" not in data:
        return None
    columns = money.line_columns_from_dict(data["figures"], names)
    return list(zip(data["sov_line_ids"], columns, strict=True))


def frozen(billing: Billing) -> tuple[money.BillingFigures, list[int]] | None:
    """A decided billing's stored figures and their SOV line ids (no queries), else None."""
    return _frozen(billing)


def frozen_sov(billing: Billing) -> dict[int, SovView] | None:
    """A decided billing's SOV lines as they stood, by id (no queries), else None."""
    data = _frozen_data(billing)
    if data is None or "sov" not in data:
        return None
    return {
        raw["id"]: SovView(
            id=raw["id"],
            line_number=raw["line_number"],
            cost_code=raw["cost_code"],
            description=raw["description"],
            original_value=money.to_cents(raw["original_value"]),
            change_orders=money.to_cents(raw["change_orders"]),
        )
        for raw in data["sov"]
    }


def frozen_fields(
    billing: Billing, line_fields: tuple[str, ...], total_fields: tuple[str, ...]
) -> tuple[dict[str, Decimal], dict[int, tuple[Decimal, ...]]] | None:
    """Only the named stored figures of a decided billing: totals by name, and
    per SOV line id the line fields in order (else None; no queries)."""
    data = _frozen_data(billing)
    if data is None:
        return None
    stored = data["figures"]
    totals = {name: money.to_cents(stored["totals"][name]) for name in total_fields}
    lines = {
        sov_id: tuple(money.to_cents(line[name]) for name in line_fields)
        for sov_id, line in zip(data["sov_line_ids"], stored["lines"], strict=True)
    }
    return totals, lines


def billing_figures(billing: Billing, which: str = "approved") -> money.BillingFigures:
    """The billing's figures: frozen ones once decided, else computed now."""
    frozen = _frozen(billing, which)
    if frozen is not None:
        return frozen[0]
    return compute(billing, which=which)


def _latest_counted_before(billings: Sequence[Billing]) -> sa.Subquery:
    """Per billing (``billing_id``, ``commitment_id``): the application
    ``number`` of its commitment's last counted billing before it (billings
    without one have no row)."""
    earlier = aliased(Billing)
    return (
        sa.select(
            Billing.id.label("billing_id"),
            Billing.commitment_id.label("commitment_id"),
            sa.func.max(earlier.application_number).label("number"),
        )
        .join(
            earlier,
            sa.and_(
                earlier.commitment_id == Billing.commitment_id,
                earlier.status.in_(COUNTED),
                earlier.application_number < Billing.application_number,
            ),
        )
        .where(Billing.id.in_([b.id for b in billings]))
        .group_by(Billing.id, Billing.commitment_id)
        .subquery()
    )


def previous_counted(billings: Sequence[Billing]) -> dict[int, Billing]:
    """Billing id → its commitment's previous counted billing, for those that
    have one (one query; only those billings are loaded, not the history)."""
    if not billings:
        return {}
    latest = _latest_counted_before(billings)
    previous: dict[int, Billing] = {}
    for billing_id, prev in db.session.execute(
        sa.select(latest.c.billing_id, Billing)
        .join(
            Billing,
            sa.and_(
                Billing.commitment_id == latest.c.commitment_id,
                Billing.application_number == latest.c.number,
                Billing.status.in_(COUNTED),
            ),
        )
        .order_by(Billing.id)
    ):
        previous[billing_id] = prev  # the last of equals, as history()'s limit
    return previous


def histories_for(billings: Iterable[Billing]) -> dict[int, History]:
    """billing id → :func:`history` at its position, in one query however many
    billings (those whose previous counted billing has no stored carry, older
    data, are summed as :func:`summed_histories_for`)."""
    billings = list(billings)
    if not billings:
        return {}
    latest = _latest_counted_before(billings)
    previous = aliased(Billing)
    rows: dict[int, list[Sequence[Any]]] = defaultdict(list)
    for billing_id, *carry in db.session.execute(
        sa.select(latest.c.billing_id, *_CARRY_COLUMNS)
        .select_from(latest)
        .join(
            previous,
            sa.and_(
                previous.commitment_id == latest.c.commitment_id,
                previous.application_number == latest.c.number,
                previous.status.in_(COUNTED),
            ),
        )
        .outerjoin(BillingCarry, BillingCarry.billing_id == previous.id)
        .outerjoin(
            BillingCarryLine, BillingCarryLine.billing_id == BillingCarry.billing_id
        )
    ):
        rows[billing_id].append(carry)
    out: dict[int, History] = {}
    summed: list[Billing] = []
    for billing in billings:
        mine = rows.get(billing.id)
        if not mine:
            out[billing.id] = _no_history()
        elif mine[0][0] is None:  # decided before carries were stored
            summed.append(billing)
        else:
            out[billing.id] = _history_from_carry(mine)
    out.update(summed_histories_for(summed))
    return out


def summed_histories_for(billings: Iterable[Billing]) -> dict[int, History]:
    """:func:`histories_for` summed over every earlier counted billing, in two
    queries however many billings (the path for a previous billing without a
    stored carry, and the reference in tests)."""
    billings = list(billings)
    if not billings:
        return {}
    work = _previous_work(billings)
    # The previous counted billing of each: only those rows are loaded (their
    # frozen figures carry line 7, F and the releases).
    previous = previous_counted(billings)
    out: dict[int, History] = {}
    for billing in billings:
        certificates = released = ZERO
        materials: dict[int, Decimal] = {}
        if billing.id in previous:
            certificates, released, materials = _carried(previous[billing.id])
        out[billing.id] = History(
            previous_work=work[billing.id],
            released_before=released,
            previous_certificates=certificates,
            previous_materials=materials,
        )
    return out


def _previous_work(billings: Sequence[Billing]) -> dict[int, dict[int, Decimal]]:
    """billing id → D per SOV line (Σ approved work of the commitment's earlier
    counted billings), in one query however many billings."""
    counted = [s.value for s in COUNTED_STATUSES]
    earlier = aliased(Billing)
    work: dict[int, dict[int, Decimal]] = {b.id: {} for b in billings}
    for billing_id, sov_line_id, total in db.session.execute(
        sa.select(
            Billing.id, BillingLine.sov_line_id, sa.func.sum(BillingLine.approved_work)
        )
        .join(
            earlier,
            sa.and_(
                earlier.commitment_id == Billing.commitment_id,
                earlier.status.in_(counted),
                earlier.application_number < Billing.application_number,
            ),
        )
        .join(BillingLine, BillingLine.billing_id == earlier.id)
        .where(Billing.id.in_([b.id for b in billings]))
        .group_by(Billing.id, BillingLine.sov_line_id)
    ):
        work[billing_id][sov_line_id] = _cents(total)
    return work


def figures_for(
    billings: Iterable[Billing], which: Callable[[Billing], str]
) -> dict[int, money.BillingFigures]:
    """billing id → :func:`billing_figures` (frozen once decided, else computed),
    ``which(billing)`` picking the side, in a fixed number of queries however
    many billings."""
    out: dict[int, money.BillingFigures] = {}
    todo: list[tuple[Billing, str]] = []
    for billing in billings:
        side = which(billing)
        stored = _frozen(billing, side)
        if stored is not None:
            out[billing.id] = stored[0]
        else:
            todo.append((billing, side))
    if todo:
        # The lines of the billings to compute, in one statement (the loaded
        # billings' ``lines`` are filled in place; frozen ones need none).
        db.session.scalars(
            sa.select(Billing)
            .options(selectinload(Billing.lines))
            .where(Billing.id.in_([b.id for b, _ in todo]))
        ).all()
        infos = billable_sov_lines_for(b.commitment_id for b, _ in todo)
        hists = histories_for(b for b, _ in todo)
        for billing, side in todo:
            out[billing.id] = compute(
                billing,
                which=side,
                infos=infos[billing.commitment_id],
                hist=hists[billing.id],
            )
    return out


def summaries_for(
    billings: Iterable[Billing], which: Callable[[Billing], str]
) -> dict[int, money.SummaryFigures]:
    """billing id → Σ E, Σ F, line 5 and line 8 of :func:`figures_for`'s figures
    (the period dashboard's columns), equal to the cent, in a fixed number of
    queries however many billings.

    Without the ORM lines or the full engine: a frozen billing reads the four
    figures of its snapshot; the others sum Core rows (their lines, D of the
    earlier counted billings and the previous one's carry, as
    :func:`histories_for` reads them) with
    :func:`money.summary_figures` over the same billable SOV lines as
    :func:`compute`. ``tests/admin/test_period_board.py`` holds both equal.
    """
    out: dict[int, money.SummaryFigures] = {}
    todo: list[tuple[Billing, str]] = []
    for billing in billings:
        side = which(billing)
        data = _frozen_data(billing)
        key = _FROZEN_KEYS.get(side)
        if data is not None and key is not None and key in data:
            out[billing.id] = _stored_summary(data[key])
        else:
            todo.append((billing, side))
    if not todo:
        return out
    ids = [b.id for b, _ in todo]
    billable: dict[int, list[int]] = defaultdict(list)
    for commitment_id, sov_id in db.session.execute(
        _billable(
            sa.select(SovLine.commitment_id, SovLine.id),
            sorted({b.commitment_id for b, _ in todo}),
        )
    ):
        billable[commitment_id].append(sov_id)
    # Integer cents as stored (Money columns), without the Decimal conversion.
    entered: dict[int, dict[int, tuple[int | None, ...]]] = {i: {} for i in ids}
    for billing_id, sov_id, *amounts in db.session.execute(
        sa.select(
            BillingLine.billing_id,
            BillingLine.sov_line_id,
            *(
                sa.type_coerce(column, sa.BigInteger)
                for column in (
                    BillingLine.claimed_work,
                    BillingLine.claimed_materials,
                    BillingLine.claimed_installed,
                    BillingLine.approved_work,
                    BillingLine.approved_materials,
                    BillingLine.approved_installed,
                )
            ),
        ).where(BillingLine.billing_id.in_(ids))
    ):
        entered[billing_id][sov_id] = tuple(amounts)
    hists = histories_for(b for b, _ in todo)
    none = (0,) * 6
    for billing, side in todo:
        hist = hists[billing.id]
        certificates, released = hist.previous_certificates, hist.released_before
        materials = hist.previous_materials
        d = hist.previous_work
        lines = entered[billing.id]
        start = 0 if side == "claimed" else 3
        inputs = []
        for sov_id in billable[billing.commitment_id]:
            line = lines.get(sov_id, none)
            inputs.append(
                (
                    _int_cents(d.get(sov_id, ZERO)),
                    int(line[start] or 0),
                    _int_cents(materials.get(sov_id, ZERO)),
                    int(line[start + 1] or 0),
                    int(line[start + 2] or 0),
                )
            )
        commitment = billing.commitment
        out[billing.id] = money.summary_figures(
            inputs,
            work_retainage_pct=commitment.work_retainage_pct,
            materials_retainage_pct=commitment.materials_retainage_pct,
            retainage_released_to_date=_int_cents(
                released + billing.retainage_released
            ),
            previous_certificates=_int_cents(certificates),
        )
    return out


def _int_cents(amount: Decimal) -> int:
    """A cent amount (already quantized) as integer cents."""
    return int(amount.scaleb(2))


def _stored_summary(raw: Mapping[str, Any]) -> money.SummaryFigures:
    """The four summary figures of a stored snapshot (as figures_from_dict reads them)."""
    return money.SummaryFigures(
        work_this_period=sum(
            (money.to_cents(line["work_this_period"]) for line in raw["lines"]), ZERO
        ),
        materials_stored=sum(
            (money.to_cents(line["materials_stored"]) for line in raw["lines"]), ZERO
        ),
        retainage=money.to_cents(raw["totals"]["retainage"]),
        current_payment_due=money.to_cents(raw["totals"]["current_payment_due"]),
    )


def ordered_lines(billing: Billing) -> list[BillingLine]:
    """The billing's lines in SOV order."""
    load_sov_lines(billing)
    return sorted(billing.lines, key=lambda bl: bl.sov_line.line_number)


def load_sov_lines(billing: Billing) -> None:
    """Load the SOV lines of the billing's lines that are not loaded yet, in
    one statement (each would otherwise load on its own when first read: a
    decided billing's frozen figures leave them unloaded)."""
    lines = [bl for bl in billing.lines if "sov_line" in sa.inspect(bl).unloaded]
    if not lines:
        return
    found = {
        line.id: line
        for line in db.session.scalars(
            sa.select(SovLine).where(SovLine.id.in_({bl.sov_line_id for bl in lines}))
        )
    }
    # Set on each line (the session's identity map holds objects only weakly).
    for bl in lines:
        if bl.sov_line_id in found:
            set_committed_value(bl, "sov_line", found[bl.sov_line_id])


@dataclass(frozen=True)
class Row:
    """One G703 row: the SOV line, the billing's line (if any) and its figures."""

    sov: SovLine | SovView
    line: BillingLine | None
    figures: money.LineFigures


@dataclass(frozen=True)
class Sheet:
    """A billing's continuation sheet (rows) and summary (totals)."""

    rows: list[Row]
    totals: money.BillingTotals
    figures: money.BillingFigures


def sheets(billing: Billing, *sides: str) -> tuple[Sheet, ...]:
    """:func:`sheet` of each side in ``sides``, the billable lines and history
    of an undecided billing read once for all of them (the review shows both)."""
    infos: list[SovInfo] | None = None
    hist: History | None = None
    out = []
    for which in sides:
        if infos is None and _frozen(billing, which) is None:
            infos = billable_sov_lines(billing.commitment)
            hist = history(billing.commitment_id, billing.application_number)
        out.append(sheet(billing, which, infos=infos, hist=hist))
    return tuple(out)


def sheet(
    billing: Billing,
    which: str = "approved",
    *,
    infos: list[SovInfo] | None = None,
    hist: History | None = None,
) -> Sheet:
    """Rows and totals for pages, PDFs and exports, in SOV order (``infos`` and
    ``hist``: the billable lines and history when the caller has them)."""
    by_line = {bl.sov_line_id: bl for bl in billing.lines}
    frozen = _frozen(billing, which)
    if frozen is not None:
        figs, ids = frozen
        # The lines and values are the snapshot's; their labels (description,
        # cost code) are the live line's where the billing has one, so a text
        # correction shows (and reaches the ERP) while no figure moves.
        sovs: dict[int, SovLine | SovView] = dict(frozen_sov(billing) or {})
        load_sov_lines(billing)
        sovs.update({bl.sov_line_id: bl.sov_line for bl in billing.lines})
        rows = [
            Row(sovs[i], by_line.get(i), fig)
            for i, fig in zip(ids, figs.lines, strict=True)
        ]
    else:
        if infos is None:
            infos = billable_sov_lines(billing.commitment)
        figs = compute(billing, which=which, infos=infos, hist=hist)
        rows = [
            Row(info.line, by_line.get(info.line.id), fig)
            for info, fig in zip(infos, figs.lines, strict=True)
        ]
    return Sheet(rows=rows, totals=figs.totals, figures=figs)
