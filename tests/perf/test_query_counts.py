"""SPEC §11: every page and API endpoint runs the same number of SQL statements
however many commitments, SOV lines, periods of history or billings there are.

The benchmark generator (``benchmarks.generate``) builds a small world and a
larger one (more commitments, contacts, SOV lines on the billing under review,
periods of approved history, export batches and client claims); every endpoint
is requested once in each, with a ``before_cursor_execute`` listener counting
the statements. A page that loads something per row (an N+1) runs more
statements in the larger world and fails its test, which prints the statements
that grew.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa

from benchmarks import generate as gen
from portal.extensions import db
from portal.models import (
    Billing,
    ChangeOrder,
    ClientClaim,
    ClientClaimLine,
    Commitment,
    Contact,
    ExportBatch,
    SovLine,
)

from ..conftest import _empty_all_tables, make_test_app
from ..helpers import counting

SMALL = gen.Size(commitments=11, lines=5, periods=2, contacts=24, big_lines=(6, 5))
LARGE = gen.Size(commitments=44, lines=12, periods=7, contacts=120, big_lines=(60, 30))


Ids = SimpleNamespace
Value = Callable[[Ids], Any]


@dataclass(frozen=True)
class Call:
    """One request: who makes it, how, and what it sends (built from the ids)."""

    name: str
    actor: str  # admin, finance, viewer, contact, api
    path: Value
    method: str = "GET"
    data: Value | None = None
    json: Value | None = None
    ok: tuple[int, ...] = (200,)


def _one(stmt: sa.Select) -> Any:
    return db.session.scalars(stmt.limit(1)).first()


def _ids(fx: gen.Fixture) -> Ids:
    """Ids the calls need, looked up like a user would find them."""
    s = db.session
    big = s.get(Billing, fx.review_big_id)
    draft = s.get(Billing, fx.contact_billing_id)
    other = _one(
        sa.select(Billing)
        .where(
            Billing.status == "revise_and_resubmit",
            Billing.period_id == fx.open_period_id,
        )
        .order_by(Billing.id)
    )
    claim = _one(sa.select(ClientClaim).order_by(ClientClaim.id.desc()))
    claim_line = _one(
        sa.select(ClientClaimLine.id)
        .where(ClientClaimLine.client_claim_id == claim.id)
        .order_by(ClientClaimLine.generated_work.desc(), ClientClaimLine.id)
    )
    vendor = draft.commitment.vendor_id
    # A commitment with an approved change order (line 1 raised, a line added).
    change_order = _one(
        sa.select(ChangeOrder)
        .where(ChangeOrder.status == "approved")
        .order_by(ChangeOrder.id)
    )
    half = len(fx.export_ids) // 2
    return Ids(
        project=fx.project_id,
        period=fx.open_period_id,
        last_closed=fx.last_closed_period_id,
        contract=fx.contract_id,
        approved=fx.approved_big_id,
        big=big,
        mid=s.get(Billing, fx.review_mid_id),
        draft=draft,
        other=other,
        commitment=change_order.commitment_id,
        claim=claim.id,
        claim_line=claim_line,
        claim_period=claim.period_id,
        batch=_one(sa.select(ExportBatch.id).order_by(ExportBatch.id.desc())),
        vendor=vendor,
        contact=fx.contact_id,
        change_order=change_order.id,
        sov_line=_one(
            sa.select(SovLine.id)
            .where(SovLine.commitment_id == change_order.commitment_id)
            .order_by(SovLine.id)
        ),
        web_export=fx.export_ids[:half],
        api_export=fx.export_ids[half:],
        history_billing=_one(
            sa.select(Billing.id)
            .join(Commitment)
            .where(
                Commitment.vendor_id == vendor,
                Billing.status.in_(["approved", "approved_as_noted"]),
            )
            .order_by(Billing.id.desc())
        ),
    )


def _review_form(i: Ids) -> dict[str, Any]:
    """Approve every line of the big billing as claimed."""
    form: dict[str, Any] = {"version": i.big.version, "decision": "approve"}
    for bl in i.big.lines:
        form[f"line-{bl.id}-work"] = str(bl.claimed_work)
        form[f"line-{bl.id}-materials"] = str(bl.claimed_materials)
        form[f"line-{bl.id}-status"] = "approved"
    return form


def _billing_form(billing: Billing, action: str = "save") -> dict[str, Any]:
    """The billing form with new amounts on every line.

    Every line's amounts change, so the ORM writes every line with the same
    UPDATE (one executemany): the statement count depends only on whether the
    lines are written per row.
    """
    form: dict[str, Any] = {"version": billing.version, "action": action}
    for bl in billing.lines:
        form[f"line-{bl.sov_line_id}-work"] = "1.01"
        form[f"line-{bl.sov_line_id}-materials"] = "0.51"
        # Installed too (the generator's drafts install some of the stored
        # materials they carry): a new value on every line, within the work
        # and the materials stored.
        form[f"line-{bl.sov_line_id}-installed"] = "0.01"
    form["notes"] = "Benchmark"
    return form


def _get(name: str, actor: str, path: Value) -> Call:
    return Call(name, actor, path)


#: Every page and endpoint measured: the GETs first, then the POSTs.
CALLS = [
    # back office
    _get("admin dashboard", "admin", lambda i: "/admin/"),
    _get("periods", "admin", lambda i: "/admin/periods"),
    _get("periods (sorted)", "admin", lambda i: "/admin/periods?sort=-due&status=open"),
    _get("period dashboard", "admin", lambda i: f"/admin/periods/{i.period}"),
    _get(
        "period dashboard (filtered)",
        "admin",
        lambda i: f"/admin/periods/{i.period}?state=under_review",
    ),
    _get(
        "period close checklist",
        "admin",
        lambda i: f"/admin/periods/{i.period}/close-out",
    ),
    _get("billings list", "admin", lambda i: "/admin/billings"),
    _get(
        "billings list (filtered)",
        "viewer",
        lambda i: (
            f"/admin/billings?project_id={i.project}&period_id={i.period}"
            "&status=under_review"
        ),
    ),
    _get("billings list (sorted)", "admin", lambda i: "/admin/billings?sort=-vendor"),
    _get(
        "billings list (sorted, filtered)",
        "viewer",
        lambda i: (
            f"/admin/billings?project_id={i.project}&status=under_review"
            "&q=e&sort=submitted&page=1"
        ),
    ),
    _get("billing review", "admin", lambda i: f"/admin/billings/{i.big.id}"),
    _get(
        "billing review (approved)", "viewer", lambda i: f"/admin/billings/{i.approved}"
    ),
    _get("billing audit", "admin", lambda i: f"/admin/billings/{i.approved}/audit"),
    _get("billing edit", "admin", lambda i: f"/admin/billings/{i.other.id}/edit"),
    _get("billing PDF", "admin", lambda i: f"/admin/billings/{i.big.id}/pdf"),
    _get(
        "billing PDF (approved)", "admin", lambda i: f"/admin/billings/{i.approved}/pdf"
    ),
    _get("projects", "admin", lambda i: "/admin/projects"),
    _get("project", "admin", lambda i: f"/admin/projects/{i.project}"),
    _get(
        "project (commitments sorted)",
        "admin",
        lambda i: f"/admin/projects/{i.project}?sort=-vendor&status=approved&q=e",
    ),
    _get("vendors", "admin", lambda i: "/admin/vendors"),
    _get("vendors (sorted)", "admin", lambda i: "/admin/vendors?sort=-code&q=e"),
    _get("vendor", "admin", lambda i: f"/admin/vendors/{i.vendor}"),
    _get(
        "vendor (contacts and commitments sorted)",
        "admin",
        lambda i: f"/admin/vendors/{i.vendor}?sort=-email&commitments_sort=title",
    ),
    _get("contact", "admin", lambda i: f"/admin/contacts/{i.contact}"),
    _get("commitment", "admin", lambda i: f"/admin/commitments/{i.commitment}"),
    _get(
        "commitment edit", "admin", lambda i: f"/admin/commitments/{i.commitment}/edit"
    ),
    _get("SOV line", "admin", lambda i: f"/admin/sov-lines/{i.sov_line}"),
    _get("change order", "admin", lambda i: f"/admin/change-orders/{i.change_order}"),
    _get("client contract", "admin", lambda i: f"/admin/client-contracts/{i.contract}"),
    _get("audit log", "admin", lambda i: "/admin/audit"),
    _get(
        "audit log (sorted)",
        "admin",
        lambda i: "/admin/audit?sort=object&object_type=billing",
    ),
    _get("outbox", "admin", lambda i: "/admin/outbox"),
    _get("users", "admin", lambda i: "/admin/users"),
    _get("claims index", "admin", lambda i: "/admin/claims"),
    _get("claim", "admin", lambda i: f"/admin/claims/{i.claim}"),
    _get("claim trace", "admin", lambda i: f"/admin/claims/{i.claim}/trace"),
    _get(
        "claim line",
        "admin",
        lambda i: f"/admin/claims/{i.claim}/lines/{i.claim_line}",
    ),
    _get("claim PDF", "admin", lambda i: f"/admin/claims/{i.claim}/pdf"),
    _get(
        "claims of a period",
        "admin",
        lambda i: f"/admin/claims/periods/{i.claim_period}",
    ),
    # finance
    _get("exports index", "finance", lambda i: "/exports/"),
    _get(
        "exports index (IIF)",
        "finance",
        lambda i: f"/exports/?format=iif&project={i.project}",
    ),
    _get("batches", "finance", lambda i: "/exports/batches"),
    _get(
        "batches (sorted, filtered)",
        "finance",
        lambda i: "/exports/batches?sort=-total&since=2000-01-01&until=2200-12-31",
    ),
    _get("batch", "finance", lambda i: f"/exports/batches/{i.batch}"),
    _get("batch download", "finance", lambda i: f"/exports/batches/{i.batch}/download"),
    _get("ERP settings", "finance", lambda i: "/exports/settings"),
    _get("ERP cost codes", "finance", lambda i: "/exports/settings/cost-codes"),
    _get("ERP vendors", "finance", lambda i: "/exports/settings/vendors"),
    _get("ERP projects", "finance", lambda i: "/exports/settings/projects"),
    _get("API tokens", "finance", lambda i: "/exports/tokens"),
    _get("API billings", "api", lambda i: "/exports/api/v1/billings?per_page=100"),
    _get(
        "API billings (filtered)",
        "api",
        lambda i: (
            "/exports/api/v1/billings?status=approved&exported=false"
            f"&project={i.project}"
        ),
    ),
    _get("API billing", "api", lambda i: f"/exports/api/v1/billings/{i.approved}"),
    _get(
        "API billing (under review)",
        "api",
        lambda i: f"/exports/api/v1/billings/{i.big.id}",
    ),
    _get("API batches", "api", lambda i: "/exports/api/v1/batches"),
    _get("API batch", "api", lambda i: f"/exports/api/v1/batches/{i.batch}"),
    _get("API batch file", "api", lambda i: f"/exports/api/v1/batches/{i.batch}/file"),
    # contact portal
    _get("contact home", "contact", lambda i: "/portal/"),
    _get("contact billing", "contact", lambda i: f"/portal/billings/{i.draft.id}"),
    _get(
        "contact billing (approved)",
        "contact",
        lambda i: f"/portal/billings/{i.history_billing}",
    ),
    # changes
    Call(
        "contact saves a draft",
        "contact",
        lambda i: f"/portal/billings/{i.draft.id}",
        "POST",
        lambda i: _billing_form(i.draft),
        ok=(302,),
    ),
    Call(
        "admin saves a revision",
        "admin",
        lambda i: f"/admin/billings/{i.other.id}/edit",
        "POST",
        lambda i: _billing_form(i.other),
        ok=(302,),
    ),
    Call(
        "review and approve",
        "admin",
        lambda i: f"/admin/billings/{i.big.id}/decide",
        "POST",
        _review_form,
        ok=(302,),
    ),
    Call(
        "send back",
        "admin",
        lambda i: f"/admin/billings/{i.mid.id}/decide",
        "POST",
        lambda i: {
            "version": i.mid.version,
            "decision": "send_back",
            "comment": "Please attach the lien waiver.",
        },
        ok=(302,),
    ),
    Call(
        "generate a claim",
        "admin",
        lambda i: "/admin/claims/generate",
        "POST",
        lambda i: {"contract_id": i.contract, "period_id": i.last_closed},
        ok=(302,),
    ),
    Call(
        "export batch (web)",
        "finance",
        lambda i: "/exports/batches",
        "POST",
        lambda i: {"format": "csv", "billing_id": [str(x) for x in i.web_export]},
        ok=(302,),
    ),
    Call(
        "export batch (API)",
        "api",
        lambda i: "/exports/api/v1/batches",
        "POST",
        json=lambda i: {"format": "xlsx", "billing_ids": i.api_export},
        ok=(201,),
    ),
]
CALL = {c.name: c for c in CALLS}


def _client(app, actor: str, fx: gen.Fixture):
    client = app.test_client()
    if actor == "api":
        return client
    with app.app_context():
        from portal.models import User

        if actor == "contact":
            account = db.session.get(Contact, fx.contact_id).get_id()
        else:
            email = {
                "admin": gen.ADMIN_EMAIL,
                "finance": gen.FINANCE_EMAIL,
                "viewer": "viewer1@bench.example",
            }[actor]
            user = db.session.scalar(sa.select(User).where(User.email == email))
            account = user.get_id()
    from portal.timeutil import utcnow

    with client.session_transaction() as sess:
        sess["_user_id"] = account
        sess["_fresh"] = True
        sess["started"] = int(utcnow().timestamp())
    return client


def measure(app, size: gen.Size) -> dict[str, tuple[int, list[str], int]]:
    """Generate ``size`` and make every call once: name → (count, statements, status)."""
    with app.app_context():
        gen.generate(size, seed=11)
        fx = gen.find_fixture()
        engine = db.engine
        db.session.remove()
    clients = {
        actor: _client(app, actor, fx)
        for actor in ("admin", "finance", "viewer", "contact", "api")
    }
    headers = {"Authorization": f"Bearer {gen.API_TOKEN}"}
    # Warm up: the first connection runs the dialect's own queries.
    clients["admin"].get("/admin/")
    out = {}
    for call in CALLS:
        with app.app_context():  # fresh ids and versions (earlier POSTs changed some)
            ids = _ids(fx)
            kwargs: dict[str, Any] = {}
            if call.data is not None:
                kwargs["data"] = call.data(ids)
            if call.json is not None:
                kwargs["json"] = call.json(ids)
            path = call.path(ids)
            db.session.remove()
        if call.actor == "api":
            kwargs["headers"] = headers
        with counting(engine) as statements:
            response = clients[call.actor].open(path, method=call.method, **kwargs)
        out[call.name] = (len(statements), statements, response.status_code)
    return out


@pytest.fixture(scope="module")
def worlds(database_url: str, tmp_path_factory: pytest.TempPathFactory):
    """Measurements of every call in the small and the large world."""
    # Pages longer than the small world, so a query per listed row shows up.
    app = make_test_app(database_url, tmp_path_factory.mktemp("perf"), PAGE_SIZE=200)
    results = []
    try:
        for size in (SMALL, LARGE):
            results.append(measure(app, size))
            with app.app_context():
                db.session.remove()
                _empty_all_tables()
                db.session.remove()
    finally:
        with app.app_context():
            db.session.remove()
            _empty_all_tables()
            db.session.remove()
            db.engine.dispose()
    return results


def _shape(statement: str) -> str:
    """A statement without its literal lists, to group repeats."""
    return re.sub(r"\s+", " ", re.sub(r"\([^()]*\)", "(…)", statement))[:160]


def _growth(small: list[str], large: list[str]) -> str:
    a, b = Counter(map(_shape, small)), Counter(map(_shape, large))
    grew = [(n - a.get(s, 0), s) for s, n in b.items() if n > a.get(s, 0)]
    return "\n".join(f"  +{n} × {s}" for n, s in sorted(grew, reverse=True)[:8])


@pytest.mark.parametrize("name", list(CALL))
def test_queries_do_not_grow_with_data(worlds, name: str) -> None:
    small, large = worlds
    count_small, statements_small, status_small = small[name]
    count_large, statements_large, status_large = large[name]
    assert status_small in CALL[name].ok, f"{name}: status {status_small}"
    assert status_large in CALL[name].ok, f"{name}: status {status_large}"
    assert count_large == count_small, (
        f"{name}: {count_small} statements in the small world, {count_large} in "
        f"the large one. Grew:\n{_growth(statements_small, statements_large)}"
    )
