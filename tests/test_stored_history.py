"""A billing's history read from the stored carry equals the summed one (issue 16).

``figures.history`` / ``histories_for`` read the carry of the commitment's
previous counted billing, stored when it was decided; ``summed_history`` /
``summed_histories_for`` sum every earlier counted billing as before (the path
for data without a stored carry). Six months on two commitments cover what can
tell them apart: a skipped month, approved as noted, materials stored then
installed, a change order adding a line between billings (its D is 0), a
retainage release, a billing held for the owner, a later one approved while it
is held, then the held one voided (it no longer counts: the later carries must
drop its work), and undecided billings after them. Pages and the dashboard
show the same figures with the carries as without them; the migration's
backfill writes the carries the app writes.
"""

from __future__ import annotations

import importlib.util
import re
from datetime import date
from decimal import Decimal
from pathlib import Path

import sqlalchemy as sa

from portal import contracts
from portal.billing import billings as wf
from portal.billing import figures
from portal.core.statuses import COUNTED_STATUSES, PeriodStatus
from portal.extensions import db
from portal.models import (
    Billing,
    BillingCarry,
    BillingCarryLine,
    BillingPeriod,
    Commitment,
    Contact,
    User,
)

from .helpers import Period, Sub, bill, build_world, counting
from .test_six_months import _release

D = Decimal
MIGRATION = (
    Path(__file__).resolve().parents[1] / "migrations/versions/0011_hist_carries.py"
)
COMMITMENTS = (
    Sub(
        "a",
        "SC-A",
        "Alpha Co",
        (("03-300", "40000.00"), ("03-400", "20000.00")),
        (("Ann Alpha", "ann@alpha.example"),),
    ),
    Sub(
        "b",
        "SC-B",
        "Beta Co",
        (("05-100", "50000.00"),),
        (("Bob Beta", "bob@beta.example"),),
    ),
)
AMOUNT = re.compile(r"-?\d{1,3}(?:,\d{3})*\.\d\d")


def _build(app, today) -> dict:
    with app.app_context():
        w = build_world(
            today,
            project={"name": "Stored History"},
            commitments=COMMITMENTS,
            periods=[
                Period(
                    date(2025, n, 1),
                    date(2025, n, 25),
                    status=PeriodStatus.OPEN if n == 6 else PeriodStatus.CLOSED,
                )
                for n in range(1, 7)
            ],
        )
        admin = db.session.get(User, w.admin_id)
        a, b = (db.session.get(Commitment, w.commitments[k]) for k in "ab")
        a.project.retainage_release_allowed = True
        p = db.session.scalars(
            sa.select(BillingPeriod)
            .where(BillingPeriod.project_id == w.project_id)
            .order_by(BillingPeriod.sequence)
        ).all()
        ids = {}
        # P1: A works on L1 and stores materials on L2; B works.
        ids["A1"] = bill(a, p[0], admin, {1: ("8000.00", "0"), 2: ("0", "3000.00")})
        ids["B1"] = bill(b, p[0], admin, {1: ("10000.00", "0")})
        # P2: A approved as noted, installs the stored 2,000; B held for the owner.
        ids["A2"] = bill(
            a,
            p[1],
            admin,
            {1: ("12000.00", "0"), 2: ("2000.00", "0", "2000.00")},
            approved={1: ("10000.00", "0")},
        )
        ids["B2"] = bill(b, p[1], admin, {1: ("7000.00", "500.00")}, decide="hold")
        # Between P2 and P3: a change order adds 5,000 on A's L2 and a new L3.
        co = contracts.create_change_order(admin, a, "CO-1", "More")
        line2 = next(ln for ln in a.sov_lines if ln.line_number == 2)
        contracts.add_change_order_item(admin, co, D("5000.00"), sov_line_id=line2.id)
        contracts.add_change_order_item(
            admin, co, D("6000.00"), new_line=("03-500", "Extra")
        )
        contracts.approve_change_order(admin, co)
        db.session.commit()
        # P3: A skips; B approved while B2 is still held.
        ids["B3"] = bill(b, p[2], admin, {1: ("3000.00", "0", "500.00")})
        # P4: A bills L1 and the new L3 (D 0), approved as noted.
        ids["A4"] = bill(
            a,
            p[3],
            admin,
            {1: ("5000.00", "0"), 3: ("1000.00", "250.00")},
            approved={3: ("900.00", "200.00")},
        )
        # P5: A releases retainage; B2 is voided (no longer counted).
        ids["A5"] = _release(a, p[4], admin, "1000.00")
        b2 = ids["B2"]
        wf.void_billing(b2, admin, b2.version, "Owner refused")
        ids["B5"] = bill(b, p[4], admin, {1: ("2000.00", "0")})
        # P6: undecided billings after all of it.
        ids["A6"] = bill(a, p[5], admin, {1: ("1000.00", "0")}, decide="review")
        ids["B6"] = bill(b, p[5], admin, {1: ("500.00", "100.00")}, decide="draft")
        db.session.commit()
        return {
            "ids": {k: v.id for k, v in ids.items()},
            "admin_id": w.admin_id,
            "contacts": {
                k: db.session.scalar(
                    sa.select(Contact.id).where(Contact.email == sub.contacts[0][1])
                )
                for k, sub in zip("AB", COMMITMENTS, strict=True)
            },
            "period_ids": [x.id for x in p],
        }


def _all_billings() -> list[Billing]:
    return list(db.session.scalars(sa.select(Billing).order_by(Billing.id)))


def _carries() -> tuple[list[tuple], list[tuple]]:
    return (
        [
            tuple(r)
            for r in db.session.execute(
                sa.select(
                    BillingCarry.billing_id,
                    BillingCarry.certificates,
                    BillingCarry.released_to_date,
                ).order_by(BillingCarry.billing_id)
            )
        ],
        [
            tuple(r)
            for r in db.session.execute(
                sa.select(
                    BillingCarryLine.billing_id,
                    BillingCarryLine.sov_line_id,
                    BillingCarryLine.work_to_date,
                    BillingCarryLine.materials_stored,
                ).order_by(BillingCarryLine.billing_id, BillingCarryLine.sov_line_id)
            )
        ],
    )


def _drop_carries() -> None:
    db.session.execute(sa.delete(BillingCarryLine))
    db.session.execute(sa.delete(BillingCarry))


def _figures_now(w: dict) -> dict:
    """Every billing's figures and dashboard summary, as the app computes them
    (undecided ones from their history; counted ones are frozen)."""
    db.session.expire_all()
    billings = _all_billings()
    return {
        "figures": figures.figures_for(billings, lambda b: "approved"),
        "claimed": figures.figures_for(billings, lambda b: "claimed"),
        "summaries": figures.summaries_for(billings, lambda b: "claimed"),
        "computed": {
            b.id: (
                figures.compute(b, which="approved"),
                figures.compute(b, which="claimed"),
            )
            for b in billings
        },
        "previous_materials": figures.previous_materials(billings),
    }


def _pages(client, auth, w: dict) -> dict[str, list[str]]:
    """The amounts on the review, contact and dashboard pages (undecided
    billings read their history on every view)."""
    out = {}
    auth.login_user(w["admin_id"])
    for name in ("A6", "B6", "A4", "B5"):
        page = client.get(f"/admin/billings/{w['ids'][name]}")
        assert page.status_code == 200, name
        out[f"review {name}"] = AMOUNT.findall(page.get_data(as_text=True))
    for period_id in w["period_ids"]:
        page = client.get(f"/admin/periods/{period_id}")
        assert page.status_code == 200
        out[f"dashboard {period_id}"] = AMOUNT.findall(page.get_data(as_text=True))
    for name in ("A6", "B6"):
        auth.login_contact(w["contacts"][name[0]])
        page = client.get(f"/portal/billings/{w['ids'][name]}")
        assert page.status_code == 200, name
        out[f"contact {name}"] = AMOUNT.findall(page.get_data(as_text=True))
    return out


def test_stored_history_equals_the_summed_one_over_six_months(
    app, client, auth, today
) -> None:
    w = _build(app, today)
    with app.app_context():
        billings = _all_billings()
        counted = [b for b in billings if b.status in COUNTED_STATUSES]
        # Every counted billing has its carry (B2, voided, has none).
        carries, _ = _carries()
        assert [c[0] for c in carries] == sorted(b.id for b in counted)
        assert w["ids"]["B2"] not in [c[0] for c in carries]
        for billing in billings:
            stored = figures.history(billing.commitment_id, billing.application_number)
            summed = figures.summed_history(
                billing.commitment_id, billing.application_number
            )
            assert stored == summed, billing
        assert figures.histories_for(billings) == figures.summed_histories_for(billings)
        # The stored path is one statement, whatever the project's age.
        a6 = db.session.get(Billing, w["ids"]["A6"])
        with counting(db.engine) as statements:
            hist = figures.history(a6.commitment_id, a6.application_number)
        assert len(statements) == 1
        with counting(db.engine) as statements:
            figures.histories_for(billings)
        assert len(statements) == 1
        # Worked by hand: A6's D on L1 is 8,000 + 10,000 + 5,000; L2 2,000;
        # L3 (added by CO-1 after A2) 900; F on L2 1,000, L3 200; A5's release.
        lines = {
            s.line_number: s.id
            for s in db.session.get(Commitment, a6.commitment_id).sov_lines
        }
        assert hist.previous_work == {
            lines[1]: D("23000.00"),
            lines[2]: D("2000.00"),
            lines[3]: D("900.00"),
        }
        assert hist.previous_materials == {
            lines[1]: D("0.00"),
            lines[2]: D("1000.00"),
            lines[3]: D("200.00"),
        }
        assert hist.released_before == D("1000.00")
        # B6 after B2 was voided: D holds B1, B3 and B5 only (not B2's 7,000),
        # though B3 was decided while B2 counted.
        b6 = db.session.get(Billing, w["ids"]["B6"])
        b_hist = figures.history(b6.commitment_id, b6.application_number)
        assert list(b_hist.previous_work.values()) == [D("15000.00")]
        with_carries = _figures_now(w)
    pages = _pages(client, auth, w)

    # Without the carries (data decided before they were stored) every figure
    # and page is the same: the summed path.
    with app.app_context():
        _drop_carries()
        db.session.commit()
        assert _figures_now(w) == with_carries
    assert _pages(client, auth, w) == pages


def test_migration_backfill_writes_the_carries_the_app_writes(app, today) -> None:
    _build(app, today)
    spec = importlib.util.spec_from_file_location("migration_0011", MIGRATION)
    assert spec is not None and spec.loader is not None
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    with app.app_context():
        made = _carries()
        assert made[0] and made[1]
        _drop_carries()
        migration.backfill(db.session.connection())
        assert _carries() == made
        # Run again, it adds nothing.
        migration.backfill(db.session.connection())
        assert _carries() == made
