"""A submitted claim's trace lives in ``client_claims.submitted_trace``, apart
from its frozen figures (migration 0014_claim_trace, issue 16 item 3).

The claim view and the claims of a period read only the figures: they must run
without ever selecting the trace column, however many downstream lines the
claim has. The trace page reads it and shows what was frozen on submission.
"""

from __future__ import annotations

import importlib.util
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa

from portal import upstream
from portal.core import money
from portal.extensions import db
from portal.models import BillingPeriod, ClientClaim, ClientContract, User, Vendor

from ..conftest import make_test_app
from ..helpers import counting
from ..test_migration_0009 import _logging_kept
from .scenario import build

D = Decimal
COLUMN = "submitted_trace"
BEFORE, AFTER = "0013_frag", "0014_claim_trace"


def _submitted(w) -> int:
    """The period-1 claim of the upstream world, generated and submitted."""
    admin = db.session.get(User, w.admin_id)
    claim = upstream.generate_claim(
        db.session.get(ClientContract, w.contract_id),
        db.session.get(BillingPeriod, w.period1_id),
        admin,
    )
    upstream.submit_claim(claim, admin, claim.version, accept_unmapped=True)
    db.session.commit()
    return claim.id


def _plain(traced) -> tuple:
    """``upstream.trace`` without ORM objects (comparable across sessions)."""
    lines, unmapped = traced
    return (
        [
            (
                t.sov.id,
                t.line.id if t.line else None,
                [s.to_dict() for s in t.sources],
                t.placed_work,
                t.placed_materials,
                t.marked_up_work,
                t.marked_up_materials,
            )
            for t in lines
        ],
        [s.to_dict() for s in unmapped],
    )


def _money(amount: str) -> str:
    return f"{D(amount):,.2f}"


@pytest.fixture
def submitted(app):
    with app.app_context():
        w = build()
        claim_id = _submitted(w)
        figures = db.session.get(ClientClaim, claim_id).submitted_figures
    return w, claim_id, figures


# ------------------------------------------------------------ the pages


@pytest.mark.parametrize("page", ["view", "period", "pdf"])
def test_claim_pages_never_select_the_trace(app, client, auth, submitted, page):
    w, claim_id, frozen = submitted
    auth.login_user(w.admin_id)
    url = {
        "view": f"/admin/claims/{claim_id}",
        "period": f"/admin/claims/periods/{w.period1_id}",
        "pdf": f"/admin/claims/{claim_id}/pdf",
    }[page]
    with counting(app) as statements:
        response = client.get(url)
    assert response.status_code == 200
    assert statements, "the page ran no SQL: a cached answer proves nothing"
    assert not [s for s in statements if COLUMN in s]
    if page != "pdf":
        # The frozen figures, as submitted.
        html = response.get_data(as_text=True)
        totals = frozen["figures"]["totals"]
        assert _money(totals["total_completed_and_stored"]) in html
        if page == "view":
            assert _money(totals["current_payment_due"]) in html
            assert _money(totals["total_earned_less_retainage"]) in html


def test_loading_a_claim_leaves_the_trace_unloaded(app, submitted):
    _w, claim_id, frozen = submitted
    with app.app_context(), counting(app) as statements:
        claim = db.session.get(ClientClaim, claim_id)
        assert upstream.claim_figures(claim) == money.figures_from_dict(
            frozen["figures"]
        )
        upstream.claim_sheet(claim)
        upstream.claim_markup(claim)
        assert COLUMN not in sa.inspect(claim).dict
    assert not [s for s in statements if COLUMN in s]


def test_the_trace_page_shows_what_was_frozen(app, client, auth):
    with app.app_context():
        w = build()
        admin = db.session.get(User, w.admin_id)
        draft = upstream.generate_claim(
            db.session.get(ClientContract, w.contract_id),
            db.session.get(BillingPeriod, w.period1_id),
            admin,
        )
        db.session.commit()
        claim_id = draft.id
        live = _plain(upstream.trace(draft))
        upstream.submit_claim(draft, admin, draft.version, accept_unmapped=True)
        db.session.commit()
    auth.login_user(w.admin_id)
    with counting(app) as statements:
        page = client.get(f"/admin/claims/{claim_id}/trace")
    assert page.status_code == 200
    assert [s for s in statements if COLUMN in s], "the trace is read from its column"
    html = page.get_data(as_text=True)
    assert "Acme Concrete" in html
    with app.app_context():
        # Downstream changes after submission: the trace shows what was frozen.
        vendor = db.session.scalars(
            sa.select(Vendor).where(Vendor.name == "Acme Concrete")
        ).one()
        vendor.name = "Renamed Concrete"
        db.session.commit()
        claim = db.session.get(ClientClaim, claim_id)
        assert len(claim.submitted_trace) == 6
        assert _plain(upstream.trace(claim)) == live
    html = client.get(f"/admin/claims/{claim_id}/trace").get_data(as_text=True)
    assert "Acme Concrete" in html and "Renamed Concrete" not in html


# ------------------------------------------------------------ the migration


def _migration():
    path = (
        Path(__file__).resolve().parents[2]
        / "migrations"
        / "versions"
        / "0014_claim_trace.py"
    )
    spec = importlib.util.spec_from_file_location("m0014", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _rows() -> dict[int, tuple]:
    rows = db.session.execute(
        sa.text("SELECT id, submitted_figures, submitted_trace FROM client_claims")
    ).all()
    return {r[0]: (_json(r[1]), _json(r[2])) for r in rows}


def _rows_before() -> dict[int, object]:
    rows = db.session.execute(
        sa.text("SELECT id, submitted_figures FROM client_claims")
    )
    return {r[0]: _json(r[1]) for r in rows}


def _json(value):
    import json

    return json.loads(value) if isinstance(value, str) else value


def test_migration_moves_the_trace_both_ways(fresh_url, tmp_path, monkeypatch):
    from flask_migrate import downgrade, upgrade

    app = make_test_app(fresh_url, tmp_path)
    with app.app_context():
        try:
            with _logging_kept():
                upgrade(revision="heads")
            # Head: a claim submitted, put back to draft and submitted again.
            w = build()
            first = _submitted(w)
            admin = db.session.get(User, w.admin_id)
            claim = db.session.get(ClientClaim, first)
            upstream.back_to_draft(claim, admin, claim.version, "changes")
            upstream.submit_claim(claim, admin, claim.version, accept_unmapped=True)
            db.session.commit()
            at_head = _rows()
            trace = at_head[first][1]
            assert len(trace) == 6 and "trace" not in at_head[first][0]
            db.session.remove()

            with _logging_kept():
                downgrade(revision=BEFORE)
            # 0013's layout: the trace inside the frozen figures, no column.
            before = _rows_before()
            assert before[first] == {**at_head[first][0], "trace": trace}
            columns = {
                c["name"] for c in sa.inspect(db.engine).get_columns("client_claims")
            }
            assert COLUMN not in columns
            # A claim frozen without a trace (figures only) keeps its figures.
            legacy = dict(at_head[first][0])
            db.session.execute(
                sa.text(
                    "INSERT INTO client_claims (client_contract_id, period_id, "
                    "claim_number, status, retainage_released, created_at, "
                    "void_reason, submitted_figures, version) SELECT "
                    "client_contract_id, period_id, claim_number + 1, 'void', "
                    "retainage_released, created_at, 'x', :f, 1 "
                    "FROM client_claims WHERE id = :id"
                ).bindparams(sa.bindparam("f", type_=sa.JSON)),
                {"f": legacy, "id": first},
            )
            db.session.commit()
            db.session.remove()

            with _logging_kept():
                upgrade(revision=AFTER)
            after = _rows()
            assert after[first] == (at_head[first][0], trace)
            (other,) = set(after) - {first}
            assert after[other] == (legacy, None)
        finally:
            db.session.remove()
            db.engine.dispose()


def test_migration_moves_every_batch(app, monkeypatch):
    """More claims than one batch: every one is moved, both ways."""
    migration = _migration()
    monkeypatch.setattr(migration, "CHUNK", 2)
    with app.app_context():
        w = build()
        first = _submitted(w)
        claims = sa.table(
            "client_claims",
            sa.column("id", sa.Integer),
            sa.column("claim_number", sa.Integer),
            sa.column("status", sa.String),
            sa.column("submitted_figures", sa.JSON),
            sa.column(COLUMN, sa.JSON),
        )
        base = db.session.get(ClientClaim, first)
        figures, trace = dict(base.submitted_figures), list(base.submitted_trace)
        ids = [first]
        for n in range(4):  # void copies: any number may share a period
            copy = ClientClaim(
                client_contract_id=base.client_contract_id,
                period_id=base.period_id,
                claim_number=base.claim_number + 1 + n,
                status="void",
                submitted_figures=figures,
                submitted_trace=trace[: n + 1],
            )
            db.session.add(copy)
            db.session.flush()
            ids.append(copy.id)
        db.session.commit()
        conn = db.session.connection()
        migration.move_back(conn)
        rows = conn.execute(
            sa.select(claims.c.id, claims.c.submitted_figures, claims.c[COLUMN])
        ).all()
        assert all(_json(r[2]) is None for r in rows)
        back = {r[0]: _json(r[1])["trace"] for r in rows}
        assert back == {i: trace if i == first else trace[: ids.index(i)] for i in ids}
        migration.move_out(conn)
        rows = conn.execute(
            sa.select(claims.c.id, claims.c.submitted_figures, claims.c[COLUMN])
        ).all()
        assert all(_json(r[1]) == figures for r in rows)
        assert {r[0]: _json(r[2]) for r in rows} == {
            i: trace if i == first else trace[: ids.index(i)] for i in ids
        }
        db.session.rollback()
