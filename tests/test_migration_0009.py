"""Migration 0009 (stored materials carry) on data written in the old semantics.

Before 0009 a billing line's ``*_materials`` was F itself, typed afresh each
month, and a decided billing's snapshot had no previous/new/installed figures.
These tests build such data at 0008 with plain SQL, upgrade, and check that
every billing keeps the F it had (the app computes it again from the rewritten
lines), that the snapshots gain the carry and keep their F and totals; then
downgrade and check the old semantics come back, and upgrade again.

Each test migrates its own fresh database: a SQLite file, or a new PostgreSQL
database when the suite runs on PostgreSQL (``TEST_DATABASE_URL``).
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa

from portal.billing import figures
from portal.core import money
from portal.extensions import db
from portal.models import Billing

from .conftest import make_test_app

D = Decimal
BEFORE, AFTER = "0008_claim_numbers", "0009_materials_carry"
CARRY_KEYS = ("materials_previous", "materials_new", "materials_installed")


# ------------------------------------------------------------------ plumbing


@contextmanager
def _logging_kept() -> Iterator[None]:
    """Alembic's env.py runs logging's fileConfig, which disables every logger
    that exists and replaces the root handlers: put them back for later tests."""
    root = logging.getLogger()
    kept_root = (root.level, list(root.handlers))
    kept = {
        name: (logger.disabled, logger.level, list(logger.handlers), logger.propagate)
        for name, logger in logging.root.manager.loggerDict.items()
        if isinstance(logger, logging.Logger)
    }
    try:
        yield
    finally:
        root.setLevel(kept_root[0])
        root.handlers[:] = kept_root[1]
        for name, (disabled, level, handlers, propagate) in kept.items():
            logger = logging.getLogger(name)
            logger.disabled, logger.propagate = disabled, propagate
            logger.setLevel(level)
            logger.handlers[:] = handlers


@pytest.fixture
def migrations(fresh_url, tmp_path) -> Iterator[Any]:
    """An app context on the fresh database and a ``migrate(revision)`` helper
    that upgrades or downgrades to ``revision``."""
    from flask_migrate import downgrade, upgrade

    app = make_test_app(fresh_url, tmp_path)
    state = {"at": None}
    order = [BEFORE, AFTER]

    def migrate(revision: str) -> None:
        db.session.remove()  # no open transaction may hold the tables
        with _logging_kept():
            if state["at"] is None or order.index(revision) > order.index(state["at"]):
                # The app's code checked "after" reads the newest schema (0011's
                # stored carries); the later migrations leave lines and
                # snapshots as 0009 made them.
                upgrade(revision="heads" if revision == AFTER else revision)
            else:
                downgrade(revision=revision)
        state["at"] = revision

    with app.app_context():
        try:
            yield migrate
        finally:
            db.session.remove()
            db.engine.dispose()


def _cents(amount: str | Decimal) -> int:
    return int(D(amount).scaleb(2))


def _month(today: date, back: int) -> tuple[date, date]:
    """First and last day of the month ``back`` months before ``today``'s."""
    year, month = today.year, today.month - back
    while month < 1:
        year, month = year - 1, month + 12
    first = date(year, month, 1)
    nxt = date(year + (month == 12), month % 12 + 1, 1)
    return first, nxt - timedelta(days=1)


def _table(name: str, columns: str, **typed: Any) -> sa.TableClause:
    """A lightweight table clause: the 0008 schema, not today's models."""
    plain = [sa.column(n) for n in columns.split()]
    return sa.table(name, *plain, *(sa.column(n, t) for n, t in typed.items()))


users = _table("users", "id email name password_hash role created_at")
projects = _table("projects", "id number name currency created_at")
vendors = _table("vendors", "id name created_at")
commitments = _table(
    "commitments",
    "id project_id vendor_id kind number title status work_retainage_pct "
    "materials_retainage_pct created_at",
)
sov_lines = _table(
    "sov_lines", "id commitment_id line_number cost_code description original_value"
)
periods = _table(
    "billing_periods",
    "id project_id sequence start_date end_date due_date billing_date status "
    "created_at",
)
billings = _table(
    "billings",
    "id commitment_id period_id application_number status created_by_user_id "
    "decided_by_id created_at updated_at",
    approved_figures=sa.JSON,
)
LINE_COLUMNS = (
    "id billing_id sov_line_id claimed_work claimed_materials approved_work "
    "approved_materials status"
).split()
lines = _table("billing_lines", " ".join(LINE_COLUMNS))


# ------------------------------------------------------------------ old data

#: SOV: L1 rough-in 50,000 (work only), L2 fixtures 30,000, L3 switchgear 20,000.
SOV = {1: ("26-100", "Rough-in", "50000.00"), 2: ("26-200", "Fixtures", "30000.00")}
SOV[3] = ("26-300", "Switchgear", "20000.00")
WORK_PCT, MATERIALS_PCT = D("10.0000"), D("5.0000")

#: The commitment's billings in the OLD semantics: per SOV line number
#: (claimed work, claimed F, approved work, approved F). F is typed as the
#: balance: 10,000 stored on L2, 6,000 left after installing 4,000, 6,000 again.
#: #3 was voided and billed again as #3; #4 is the open draft.
OLD_BILLINGS: list[dict[str, Any]] = [
    {
        "number": 1,
        "period": 1,
        "status": "approved",
        "snapshot": "with claimed figures",
        "lines": {
            1: ("20000.00", "0.00", "20000.00", "0.00"),
            2: ("0.00", "10000.00", "0.00", "10000.00"),
            3: ("0.00", "0.00", "0.00", "0.00"),
        },
    },
    {
        # Approved as noted: the reviewer kept 6,000 of L2 stored (the contact
        # had claimed 5,000) and 1,500 of the 2,000 newly stored on L3.
        "number": 2,
        "period": 2,
        "status": "approved_as_noted",
        "snapshot": "figures only",  # as snapshots before 0008 were
        "lines": {
            1: ("5000.00", "0.00", "5000.00", "0.00"),
            2: ("4000.00", "5000.00", "4000.00", "6000.00"),
            3: ("0.00", "2000.00", "0.00", "1500.00"),
        },
    },
    {
        "number": 3,
        "period": 3,
        "status": "void",
        "snapshot": None,
        "lines": {
            1: ("0.00", "0.00", "0.00", "0.00"),
            2: ("0.00", "3000.00", "0.00", "3000.00"),
            3: ("0.00", "1500.00", "0.00", "1500.00"),
        },
    },
    {
        # Held for the owner (counted, frozen): L3's switchgear installed.
        "number": 3,
        "period": 3,
        "status": "pending_owner_approval",
        "snapshot": "with claimed figures",
        "lines": {
            1: ("0.00", "0.00", "0.00", "0.00"),
            2: ("0.00", "6000.00", "0.00", "6000.00"),
            3: ("1500.00", "0.00", "1500.00", "0.00"),
        },
    },
    {
        "number": 4,
        "period": 4,
        "status": "draft",
        "snapshot": None,
        "lines": {
            1: ("1000.00", "0.00", "1000.00", "0.00"),
            2: ("0.00", "6000.00", "0.00", "6000.00"),
            3: ("0.00", "0.00", "0.00", "0.00"),
        },
    },
]

#: What 0009 must make of them, against the previous COUNTED billing's approved
#: F: per billing index and SOV line number (claimed new, claimed installed,
#: approved new, approved installed).
EXPECTED_CARRY = {
    0: {1: ("0", "0", "0", "0"), 2: ("10000", "0", "10000", "0"), 3: ("0",) * 4},
    1: {1: ("0",) * 4, 2: ("0", "5000", "0", "4000"), 3: ("2000", "0", "1500", "0")},
    # the void #3 against #2 (it never becomes anyone's previous billing)
    2: {1: ("0",) * 4, 2: ("0", "3000", "0", "3000"), 3: ("0",) * 4},
    # #3 against #2 too, not against the void #3
    3: {1: ("0",) * 4, 2: ("0",) * 4, 3: ("0", "1500", "0", "1500")},
    # the draft against #3: nothing new, nothing installed
    4: {1: ("0",) * 4, 2: ("0",) * 4, 3: ("0",) * 4},
}


def _old_figures(
    billing: dict[str, Any], side: str, counted_before: list[dict[str, Any]]
) -> money.BillingFigures:
    """The figures the code before 0009 froze: F typed outright, no carry."""
    inputs = []
    for number, (_code, _text, value) in SOV.items():
        cw, cf, aw, af = billing["lines"][number]
        work, stored = (cw, cf) if side == "claimed" else (aw, af)
        inputs.append(
            money.LineInput(
                original_value=D(value),
                change_orders=D("0.00"),
                previous_work=sum(
                    (D(b["lines"][number][2]) for b in counted_before), D("0.00")
                ),
                work_this_period=D(work),
                materials_stored=D(stored),
            )
        )
    previous = (
        money.figures_from_dict(counted_before[-1]["frozen"]["figures"])
        if counted_before
        else None
    )
    return money.compute_billing(
        inputs,
        work_retainage_pct=WORK_PCT,
        materials_retainage_pct=MATERIALS_PCT,
        previous_certificates=(
            previous.totals.total_earned_less_retainage if previous else D("0.00")
        ),
    )


def _old_dict(figs: money.BillingFigures) -> dict[str, Any]:
    data = money.figures_to_dict(figs)
    for line in data["lines"]:
        for key in CARRY_KEYS:
            del line[key]  # the old LineFigures had no such fields
    return data


def _insert_old_world(today: date) -> None:
    """Write the project, commitment, SOV and OLD_BILLINGS at 0008."""
    at = datetime.combine(today, time(12), tzinfo=UTC)
    conn = db.session.connection()
    conn.execute(
        users.insert().values(
            id=1,
            email="admin@example.test",
            name="Admin",
            password_hash="x",
            role="admin",
            created_at=at,
        )
    )
    conn.execute(
        projects.insert().values(
            id=1, number="P-9", name="Carry", currency="USD", created_at=at
        )
    )
    conn.execute(vendors.insert().values(id=1, name="Sparks Ltd", created_at=at))
    conn.execute(
        commitments.insert().values(
            id=1,
            project_id=1,
            vendor_id=1,
            kind="subcontract",
            number="SC-1",
            title="Electrical",
            status="approved",
            work_retainage_pct=int(WORK_PCT.scaleb(4)),
            materials_retainage_pct=int(MATERIALS_PCT.scaleb(4)),
            created_at=at,
        )
    )
    for number, (code, text, value) in SOV.items():
        conn.execute(
            sov_lines.insert().values(
                id=10 + number,
                commitment_id=1,
                line_number=number,
                cost_code=code,
                description=text,
                original_value=_cents(value),
            )
        )
    for sequence in (1, 2, 3, 4):
        first, last = _month(today, 4 - sequence)
        conn.execute(
            periods.insert().values(
                id=sequence,
                project_id=1,
                sequence=sequence,
                start_date=first,
                end_date=last,
                due_date=last - timedelta(days=5),
                billing_date=last,
                status="open" if sequence == 4 else "closed",
                created_at=at,
            )
        )
    counted: list[dict[str, Any]] = []
    line_id = 100
    for index, billing in enumerate(OLD_BILLINGS):
        snapshot = None
        if billing["snapshot"]:
            approved = _old_figures(billing, "approved", counted)
            snapshot = {
                "figures": _old_dict(approved),
                "sov_line_ids": [10 + n for n in SOV],
                "sov": [
                    {
                        "id": 10 + n,
                        "line_number": n,
                        "cost_code": code,
                        "description": text,
                        "original_value": value,
                        "change_orders": "0.00",
                    }
                    for n, (code, text, value) in SOV.items()
                ],
            }
            if billing["snapshot"] == "with claimed figures":
                claimed = _old_figures(billing, "claimed", counted)
                snapshot["claimed_figures"] = _old_dict(claimed)
            billing["frozen"] = snapshot
            counted.append(billing)
        conn.execute(
            billings.insert().values(
                id=index + 1,
                commitment_id=1,
                period_id=billing["period"],
                application_number=billing["number"],
                status=billing["status"],
                created_by_user_id=1,
                decided_by_id=1 if snapshot else None,
                created_at=at,
                updated_at=at,
                approved_figures=snapshot,
            )
        )
        for number, (cw, cf, aw, af) in billing["lines"].items():
            line_id += 1
            conn.execute(
                lines.insert().values(
                    id=line_id,
                    billing_id=index + 1,
                    sov_line_id=10 + number,
                    claimed_work=_cents(cw),
                    claimed_materials=_cents(cf),
                    approved_work=_cents(aw),
                    approved_materials=_cents(af),
                    status="approved" if snapshot else "pending",
                )
            )
    db.session.commit()


def _dump() -> tuple[list[tuple], dict[int, Any]]:
    """Every billing line (the 0008 columns) and every snapshot, by id."""
    conn = db.session.connection()
    rows = [tuple(r) for r in conn.execute(sa.select(lines).order_by(lines.c.id)).all()]
    snapshots = dict(
        conn.execute(sa.select(billings.c.id, billings.c.approved_figures)).all()
    )
    db.session.commit()
    return rows, snapshots


def _carry_columns() -> dict[tuple[int, int], tuple[Decimal, ...]]:
    """(billing id, SOV line number) → (claimed new, claimed installed,
    approved new, approved installed), read as the models read them."""
    out = {}
    for billing in db.session.scalars(sa.select(Billing)).all():
        for bl in billing.lines:
            out[(billing.id, bl.sov_line.line_number)] = (
                bl.claimed_materials,
                bl.claimed_installed,
                bl.approved_materials,
                bl.approved_installed,
            )
    return out


def _computed_f(billing: Billing, side: str) -> dict[int, Decimal]:
    """F per SOV line number as the app computes it from the lines (not the
    snapshot): F previous from the previous counted billing, + new − installed."""
    figs = figures.compute(billing, which=side)
    infos = figures.billable_sov_lines(billing.commitment)
    return {
        info.line.line_number: line.materials_stored
        for info, line in zip(infos, figs.lines, strict=True)
    }


# ------------------------------------------------------------------ tests


def test_upgrade_keeps_every_f_and_downgrade_brings_the_old_data_back(
    migrations, today
) -> None:
    migrations(BEFORE)
    _insert_old_world(today)
    old_rows, old_snapshots = _dump()

    migrations(AFTER)

    # The lines now hold new and installed, against the previous counted F.
    carry = _carry_columns()
    for index, expected in EXPECTED_CARRY.items():
        for number, amounts in expected.items():
            assert carry[(index + 1, number)] == tuple(
                D(a).quantize(D("0.01")) for a in amounts
            ), (OLD_BILLINGS[index]["number"], OLD_BILLINGS[index]["status"], number)

    # ... from which the app computes the very F every billing had, both sides.
    for index, old in enumerate(OLD_BILLINGS):
        billing = db.session.get(Billing, index + 1)
        for side, column in (("claimed", 1), ("approved", 3)):
            had = {n: D(values[column]) for n, values in old["lines"].items()}
            assert _computed_f(billing, side) == had, (index + 1, side)

    # The snapshots gain F previous / new / installed; nothing else changes.
    _, snapshots = _dump()
    for index, old in enumerate(OLD_BILLINGS):
        before, after = old_snapshots[index + 1], snapshots[index + 1]
        if before is None:
            assert after is None
            continue
        assert set(after) == set(before)
        assert after["sov"] == before["sov"]
        assert after["sov_line_ids"] == before["sov_line_ids"]
        for key in ("figures", "claimed_figures"):
            if key not in before:
                continue
            assert after[key]["totals"] == before[key]["totals"]
            column = 3 if key == "figures" else 1
            previous_f = _previous_counted_f(index)
            for number, was, now in zip(
                SOV, before[key]["lines"], after[key]["lines"], strict=True
            ):
                assert {k: v for k, v in now.items() if k not in CARRY_KEYS} == was
                f_was, f_prev = D(old["lines"][number][column]), previous_f[number]
                assert now["materials_stored"] == was["materials_stored"]
                assert (
                    now["materials_previous"],
                    now["materials_new"],
                    now["materials_installed"],
                ) == (
                    f"{f_prev:.2f}",
                    f"{max(f_was - f_prev, D(0)):.2f}",
                    f"{max(f_prev - f_was, D(0)):.2f}",
                ), (index + 1, key, number)
        # The frozen figures agree with what the rewritten lines compute.
        billing = db.session.get(Billing, index + 1)
        assert figures.compute(billing, which="approved") == (
            money.figures_from_dict(after["figures"])
        )
        if "claimed_figures" in after:
            assert figures.compute(billing, which="claimed") == (
                money.figures_from_dict(after["claimed_figures"])
            )
    upgraded = _dump()

    migrations(BEFORE)
    assert _dump() == (old_rows, old_snapshots)  # the old semantics, exactly
    columns = {c["name"] for c in sa.inspect(db.engine).get_columns("billing_lines")}
    assert not {"claimed_installed", "approved_installed"} & columns

    migrations(AFTER)
    assert _dump() == upgraded


def _previous_counted_f(index: int) -> dict[int, Decimal]:
    """Approved F per SOV line number of the counted billing before OLD_BILLINGS
    [index] (by application number), 0 for the first."""
    me = OLD_BILLINGS[index]
    earlier = [
        b
        for b in OLD_BILLINGS
        if b["snapshot"] and b["number"] < me["number"]  # counted ones are frozen
    ]
    if not earlier:
        return {n: D("0.00") for n in SOV}
    return {n: D(v[3]) for n, v in earlier[-1]["lines"].items()}


def test_downgrade_keeps_f_of_data_entered_after_the_upgrade(migrations, today) -> None:
    """What the downgrade promises for lines and snapshots written by the new
    code: each line gets back its F (new and installed of one period netted, as
    the old semantics can only hold the balance), and snapshots lose the carry
    keys the old reader refuses."""
    migrations(BEFORE)
    _insert_old_world(today)
    migrations(AFTER)

    draft = db.session.get(Billing, 5)
    l2 = next(bl for bl in draft.lines if bl.sov_line.line_number == 2)
    l3 = next(bl for bl in draft.lines if bl.sov_line.line_number == 3)
    # F previous 6,000 on L2: 500 newly stored, 300 installed → F 6,200; the
    # reviewer keeps 6,100 (400 installed). L3: nothing before, 700 new.
    l2.claimed_work, l2.claimed_materials, l2.claimed_installed = (
        D("300.00"),
        D("500.00"),
        D("300.00"),
    )
    l2.approved_work, l2.approved_materials, l2.approved_installed = (
        D("400.00"),
        D("500.00"),
        D("400.00"),
    )
    l3.claimed_materials = l3.approved_materials = D("700.00")
    db.session.flush()
    draft.approved_figures = figures.freeze(draft)
    draft.status = "approved_as_noted"
    db.session.commit()
    frozen = copy.deepcopy(draft.approved_figures)
    assert frozen["figures"]["lines"][1]["materials_stored"] == "6100.00"

    migrations(BEFORE)
    rows, snapshots = _dump()
    by_line = {(r[1], r[2]): r for r in rows}
    index = LINE_COLUMNS.index
    assert by_line[(5, 12)][index("claimed_materials")] == _cents("6200.00")
    assert by_line[(5, 12)][index("approved_materials")] == _cents("6100.00")
    assert by_line[(5, 13)][index("approved_materials")] == _cents("700.00")
    old_fields = set(frozen["figures"]["lines"][0]) - set(CARRY_KEYS)
    for snapshot in snapshots.values():
        for key in ("figures", "claimed_figures"):
            for line in (snapshot or {}).get(key, {}).get("lines", []):
                assert set(line) == old_fields
    # Everything but the carry keys is the snapshot the new code froze.
    for key in ("figures", "claimed_figures"):
        for was, now in zip(
            frozen[key]["lines"], snapshots[5][key]["lines"], strict=True
        ):
            assert now == {k: v for k, v in was.items() if k not in CARRY_KEYS}
        assert snapshots[5][key]["totals"] == frozen[key]["totals"]

    # Upgrading again reads the netted F back: 200 new on L2 (6,000 → 6,200 claimed).
    migrations(AFTER)
    draft = db.session.get(Billing, 5)
    assert _computed_f(draft, "claimed")[2] == D("6200.00")
    assert _computed_f(draft, "approved") == {
        1: D("0.00"),
        2: D("6100.00"),
        3: D("700.00"),
    }
