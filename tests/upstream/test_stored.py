"""The claim pages read the claim's stored sums (issue 16 item 3) and show the
very figures a full computation from the downstream billings gives.

A world of three months (materials carried by a commitment that skips a month,
a late approval in a claimed period, a mapping change, a void): after each step
every claim's reconciliation, staleness and rendered claim and period pages are
compared with those computed with no stored summary.
"""

from __future__ import annotations

import re
from datetime import date

import sqlalchemy as sa

from portal import upstream
from portal.core.statuses import PeriodStatus
from portal.extensions import db
from portal.models import BillingPeriod, ClientClaim, ClientContract, Commitment, User
from portal.upstream import reconciliation, stored

from ..helpers import (
    Contract,
    Period,
    Sub,
    bill,
    build_world,
    check_cached,
    project_periods,
)

COMMITMENTS = (
    Sub("a", "SC-A", "A", (("26-100", "50000.00"),), materials_pct="10"),
    Sub("b", "PO-B", "B", (("03-300", "44000.00"), ("77-700", "9000.00"))),
    Sub("c", "SC-C", "C", (("09-900", "5000.00"),)),
    Sub("d", "SC-D", "D", (("77-700", "9000.00"),)),
)

_CSRF = re.compile(r'name="csrf_token" value="[^"]*"')


def _world(app, today):
    with app.app_context():
        w = build_world(
            today,
            project={"name": "Stored"},
            commitments=COMMITMENTS,
            contract=Contract(
                (
                    ("26-100", "100000.00"),
                    ("03-300", "100000.00"),
                    ("09-900", "100000.00"),
                ),
                markup="7.5",
                work_pct="10",
                materials_pct="5",
            ),
            periods=[
                Period(
                    date(2025, n, 1),
                    date(2025, n, 25),
                    status=PeriodStatus.OPEN if n == 3 else PeriodStatus.CLOSED,
                )
                for n in (1, 2, 3)
            ],
        )
        db.session.commit()
        return w


def _periods(w) -> list[BillingPeriod]:
    """The world's periods, in order."""
    return project_periods(w.project_id)


def _pages(app, client, claim_ids, period_ids):
    out = {}
    for cid in claim_ids:
        out[f"claim {cid}"] = client.get(f"/admin/claims/{cid}").get_data(as_text=True)
    for pid in period_ids:
        # From the page cache: the same page as a fresh render (check_cached).
        out[f"period {pid}"] = check_cached(app, client, f"/admin/claims/periods/{pid}")
    return {k: _CSRF.sub("", html) for k, html in out.items()}


def _compare(app, client, expect_stored: set[int]):
    """Every claim: stored and computed figures equal; ``expect_stored`` are the
    claims whose stored sums must be the ones used (the others' may not hold)."""
    with app.app_context():
        claims = db.session.scalars(sa.select(ClientClaim)).all()
        ids = [c.id for c in claims]
        periods = sorted({c.period_id for c in claims})
        for c in claims:
            assert upstream.reconcile(c) == upstream.reconcile(c, use_stored=False)
            assert upstream.stale(c) == upstream.out_of_date(c)
            used = reconciliation._stored_reconcile(c) is not None
            assert used == (c.id in expect_stored), c.id
        db.session.rollback()
    with_summary = _pages(app, client, ids, periods)
    with app.app_context():
        kept = {c.id: c.summary for c in db.session.scalars(sa.select(ClientClaim))}
        for c in db.session.scalars(sa.select(ClientClaim)):
            c.summary = None
        db.session.commit()
    computed = _pages(app, client, ids, periods)
    with app.app_context():
        for c in db.session.scalars(sa.select(ClientClaim)):
            c.summary = kept[c.id]
        db.session.commit()
    for key, html in with_summary.items():
        assert "Internal" not in html
        assert html == computed[key], key
    # Warm the page cache with this state: the next step's change must show.
    for pid in periods:
        client.get(f"/admin/claims/periods/{pid}")


def test_pages_from_stored_sums_show_the_computed_figures(app, client, auth, today):
    w = _world(app, today)
    auth.login_user(w.admin_id)
    with app.app_context():
        admin = db.session.get(User, w.admin_id)
        contract = db.session.get(ClientContract, w.contract_id)
        p1, p2, p3 = _periods(w)
        pid1, pid2 = p1.id, p2.id
        a, b, c = (db.session.get(Commitment, w.commitments[k]) for k in "abc")
        bill(a, p1, admin, {1: ("1000.00", "10000.00")})
        bill(b, p1, admin, {1: ("0", "44000.00"), 2: ("300.00", "0")})  # 77-700
        claim1 = upstream.generate_claim(contract, p1, admin)
        db.session.commit()
        first = claim1.id
    _compare(app, client, {first})

    with app.app_context():
        claim1 = db.session.get(ClientClaim, first)
        admin = db.session.get(User, w.admin_id)
        upstream.submit_claim(claim1, admin, claim1.version, accept_unmapped=True)
        db.session.commit()
    _compare(app, client, {first})

    with app.app_context():
        admin = db.session.get(User, w.admin_id)
        claim1 = db.session.get(ClientClaim, first)
        upstream.approve_claim(
            claim1, admin, claim1.version, {claim1.lines[0].id: ("900.00", "0")}
        )
        p2 = db.session.get(BillingPeriod, pid2)
        a = db.session.get(Commitment, w.commitments["a"])
        # B skips period 2: its stored 44,000.00 is carried into claim 2.
        bill(a, p2, admin, {1: ("5000.00", "0")})
        d = db.session.get(Commitment, w.commitments["d"])
        bill(d, p2, admin, {1: ("200.00", "0")})  # 77-700: unmapped
        claim2 = upstream.generate_claim(
            db.session.get(ClientContract, w.contract_id), p2, admin
        )
        db.session.commit()
        second = claim2.id
    _compare(app, client, {first, second})

    # A mapping for 77-700 makes the draft out of date (stored sums still hold).
    with app.app_context():
        admin = db.session.get(User, w.admin_id)
        contract = db.session.get(ClientContract, w.contract_id)
        upstream.map_cost_code(contract, "77-700", contract.lines[0].id, admin)
        db.session.commit()
        assert upstream.stale(db.session.get(ClientClaim, second))
    _compare(app, client, {first, second})

    # Late approval in period 1: neither claim's stored totals hold any longer.
    with app.app_context():
        admin = db.session.get(User, w.admin_id)
        c = db.session.get(Commitment, w.commitments["c"])
        bill(c, db.session.get(BillingPeriod, pid1), admin, {1: ("700.00", "0")})
        db.session.commit()
    _compare(app, client, set())

    # Regenerated: claim 2 holds again; void claim 2 then.
    with app.app_context():
        admin = db.session.get(User, w.admin_id)
        claim2 = db.session.get(ClientClaim, second)
        upstream.regenerate(claim2, admin)
        db.session.commit()
    _compare(app, client, {second})
    with app.app_context():
        admin = db.session.get(User, w.admin_id)
        claim2 = db.session.get(ClientClaim, second)
        upstream.void_claim(claim2, admin, claim2.version, "test")
        db.session.commit()
    _compare(app, client, set())


def test_stored_sums_stay_small(app, today):
    w = _world(app, today)
    with app.app_context():
        admin = db.session.get(User, w.admin_id)
        p1 = _periods(w)[0]
        for k in "abc":
            commitment = db.session.get(Commitment, w.commitments[k])
            bill(commitment, p1, admin, {1: ("100.00", "0")})
        claim = upstream.generate_claim(
            db.session.get(ClientContract, w.contract_id), p1, admin
        )
        data = claim.summary
        # One entry per downstream cost code, none per billing.
        assert set(data["by_code"]) == {"26-100", "03-300", "09-900"}
        assert data["included_total"] == "300.00"
        assert stored.fresh(claim)


def test_migration_backfills_what_later_claims_read(app, today):
    """0012_flat fills a submitted claim's mapped work and certificate from its
    frozen figures and trace: the very values a submission now stores."""
    import importlib.util
    from pathlib import Path

    path = (
        Path(__file__).resolve().parents[2]
        / "migrations"
        / "versions"
        / "0012_flat_claim_summary.py"
    )
    spec = importlib.util.spec_from_file_location("m0011", path)
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    w = _world(app, today)
    with app.app_context():
        admin = db.session.get(User, w.admin_id)
        p1 = _periods(w)[0]
        for k, amounts in (("a", ("1000.00", "50.00")), ("d", ("300.00", "0"))):
            commitment = db.session.get(Commitment, w.commitments[k])
            bill(commitment, p1, admin, {1: amounts})
        claim = upstream.generate_claim(
            db.session.get(ClientContract, w.contract_id), p1, admin
        )
        upstream.submit_claim(claim, admin, claim.version, accept_unmapped=True)
        # 0012 read the trace inside the frozen figures (0014 moved it out).
        frozen = {**claim.submitted_figures, "trace": claim.submitted_trace}
        filled = migration._backfill(frozen)
        assert filled["mapped_work"] == claim.summary["mapped_work"] == "1000.00"
        assert filled["certificates"] == claim.summary["certificates"]
        # No totals to date: such a claim's pages compute them from the billings.
        assert "at" not in filled


def test_a_change_committed_after_the_summary_with_an_earlier_time_is_seen(app, today):
    """A transaction reads its clock for ``updated_at`` before it commits: one
    in flight while the summary is written commits after it with a time before
    ``at``. The stored sums must not be taken as fresh then."""
    from datetime import datetime, timedelta

    from portal.models import Billing

    w = _world(app, today)
    with app.app_context():
        admin = db.session.get(User, w.admin_id)
        p1 = _periods(w)[0]
        a = db.session.get(Commitment, w.commitments["a"])
        bill(a, p1, admin, {1: ("100.00", "0")})
        c = db.session.get(Commitment, w.commitments["c"])
        # Under review while the claim is generated: not in the sums.
        late_id = bill(c, p1, admin, {1: ("700.00", "0")}, decide="review").id
        db.session.commit()
        claim = upstream.generate_claim(
            db.session.get(ClientContract, w.contract_id), p1, admin
        )
        db.session.commit()
        claim_id = claim.id
        assert late_id not in {b.id for b in claim.billings}
        assert stored.fresh(claim)
        at = datetime.fromisoformat(claim.summary["at"])
        # The approval commits now, stamped with the time it read a moment
        # before the summary was written.
        db.session.execute(
            sa.update(Billing)
            .where(Billing.id == late_id)
            .values(status="approved", updated_at=at - timedelta(seconds=1))
        )
        db.session.commit()
        claim = db.session.get(ClientClaim, claim_id)
        assert not stored.fresh(claim)
        assert reconciliation._stored_reconcile(claim) is None
