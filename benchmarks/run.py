"""Time the heavy pages of SPEC §11 against a generated database.

Every case goes through the Flask test client, like a browser would, N times:
the table gives the median and 95th percentile time, the number of SQL
statements of one request, the peak Python memory of one request (tracemalloc,
measured in a separate run so it does not slow the timed ones), and the median
as a multiple of a bare Flask route (``/__bench/bare``, returning "ok") timed in
the same run, so figures compare across machines. Usage::

    python -m benchmarks.run --database-url sqlite:////tmp/bench.db
    python -m benchmarks.run --database-url postgresql+psycopg://postgres@127.0.0.1:5432/bench_pb

Cases that change data undo their change after each (timed) request, outside the
timing: a generated claim is voided, an export batch is reversed.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from flask import Flask

from portal import create_app
from portal.extensions import db
from tests.helpers import counting

from . import generate as gen

FORMATS = ("csv", "xlsx", "iif", "sage300")


@dataclass
class Case:
    """One measured request."""

    name: str
    actor: str
    method: str
    path: str
    target_ms: float | None = None
    iterations: int | None = None
    data: Any = None
    json: Any = None
    ok: tuple[int, ...] = (200,)
    #: Undo the request's change (not timed); gets the response.
    undo: Callable[[Any], None] | None = None
    note: str = ""


@dataclass
class Result:
    case: Case
    times: list[float] = field(default_factory=list)
    queries: int = 0
    peak: int = 0
    size: int = 0

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    @property
    def p95(self) -> float:
        ordered = sorted(self.times)
        return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def bench_app(url: str) -> Flask:
    """The app on the generated database, with the bare reference route."""
    app = create_app(gen.bench_config(url))

    @app.route("/__bench/bare")
    def bare() -> str:
        return "ok"

    return app


def login(app: Flask, actor: str, fx: gen.Fixture) -> Any:
    """A test client with a session for ``actor`` (or a bearer token for api)."""
    from portal.models import Contact, User
    from portal.timeutil import utcnow

    client = app.test_client()
    if actor in ("api", "anonymous"):
        return client
    with app.app_context():
        if actor == "contact":
            account = db.session.get(Contact, fx.contact_id).get_id()
        else:
            email = {"admin": gen.ADMIN_EMAIL, "finance": gen.FINANCE_EMAIL}[actor]
            account = db.session.scalar(
                sa.select(User).where(User.email == email)
            ).get_id()
    with client.session_transaction() as sess:
        sess["_user_id"] = account
        sess["_fresh"] = True
        sess["started"] = int(utcnow().timestamp())
    return client


def void_generated_claim(app: Flask, fx: gen.Fixture) -> Callable[[Any], None]:
    """Undo for the claim case: void the draft just generated."""
    from portal import upstream
    from portal.models import ClientClaim, User

    def undo(response: Any) -> None:
        with app.app_context():
            claim = db.session.scalar(
                sa.select(ClientClaim).where(
                    ClientClaim.period_id == fx.last_closed_period_id,
                    ClientClaim.status == "draft",
                )
            )
            upstream.void_claim(
                claim, db.session.get(User, fx.admin_id), None, "benchmark run"
            )
            db.session.commit()

    return undo


def reverse_latest_batch(app: Flask, fx: gen.Fixture) -> Callable[[Any], None]:
    """Undo for the export cases: reverse the batch just made."""
    from portal.finance import batches as export_batches
    from portal.models import ExportBatch, User

    def undo(response: Any) -> None:
        with app.app_context():
            batch = db.session.scalar(
                sa.select(ExportBatch)
                .where(ExportBatch.reversed_at.is_(None))
                .order_by(ExportBatch.id.desc())
                .limit(1)
            )
            export_batches.reverse_batch(
                batch, db.session.get(User, fx.finance_id), "benchmark run"
            )
            db.session.commit()

    return undo


def cases(app: Flask, fx: gen.Fixture) -> list[Case]:
    """The figures SPEC §11 asks for, and their targets (ms, median)."""
    with app.app_context():
        from portal import upstream
        from portal.models import Billing, BillingLine, BillingPeriod, ClientContract

        lines_500 = db.session.scalar(
            sa.select(sa.func.count(BillingLine.id)).where(
                BillingLine.billing_id == fx.review_big_id
            )
        )
        lines_100 = db.session.scalar(
            sa.select(sa.func.count(BillingLine.id)).where(
                BillingLine.billing_id == fx.review_mid_id
            )
        )
        found = upstream.gather(
            db.session.get(ClientContract, fx.contract_id),
            db.session.get(BillingPeriod, fx.last_closed_period_id),
        )
        sources = len(found.sources)
        billings = len(found.billings)
        commitments = db.session.scalar(
            sa.select(sa.func.count(sa.distinct(Billing.commitment_id))).where(
                Billing.period_id == fx.open_period_id
            )
        )
        draft_lines = db.session.scalar(
            sa.select(sa.func.count(BillingLine.id)).where(
                BillingLine.billing_id == fx.contact_billing_id
            )
        )
        db.session.rollback()
    from portal.models import Commitment

    with app.app_context():
        project_commitments = db.session.scalar(
            sa.select(sa.func.count(Commitment.id)).where(
                Commitment.project_id == fx.project_id
            )
        )
    n = len(fx.export_ids)
    out = [
        Case("bare Flask route", "anonymous", "GET", "/__bench/bare", iterations=200),
        Case(
            f"period dashboard ({project_commitments} commitments)",
            "admin",
            "GET",
            f"/admin/periods/{fx.open_period_id}",
            300,
            note=f"{commitments} billings in the period",
        ),
        Case(
            f"billing review ({lines_100} lines)",
            "admin",
            "GET",
            f"/admin/billings/{fx.review_mid_id}",
            50,
        ),
        Case(
            f"billing review ({lines_500} lines)",
            "admin",
            "GET",
            f"/admin/billings/{fx.review_big_id}",
        ),
        Case(
            f"contact billing page ({draft_lines} lines)",
            "contact",
            "GET",
            f"/portal/billings/{fx.contact_billing_id}",
            50,
        ),
        Case("contact home", "contact", "GET", "/portal/", 50),
        Case(
            f"upstream claim ({sources:,} lines, {billings} billings)",
            "admin",
            "POST",
            "/admin/claims/generate",
            2000,
            iterations=5,
            data={"contract_id": fx.contract_id, "period_id": fx.last_closed_period_id},
            ok=(302,),
            undo=void_generated_claim(app, fx),
        ),
    ]
    for fmt in FORMATS:
        for count in sorted({min(250, n), n}):
            out.append(
                Case(
                    f"export batch {fmt} ({count} billings)",
                    "finance",
                    "POST",
                    "/exports/batches",
                    3000 if count == n else None,
                    iterations=5,
                    data={
                        "format": fmt,
                        "billing_id": [str(i) for i in fx.export_ids[:count]],
                    },
                    ok=(302,),
                    undo=reverse_latest_batch(app, fx),
                )
            )
    out += [
        Case(
            f"billing PDF ({lines_500} lines)",
            "admin",
            "GET",
            f"/admin/billings/{fx.review_big_id}/pdf",
            5000,
            iterations=5,
        ),
        Case(
            "JSON billing list (API, 100 per page)",
            "api",
            "GET",
            "/exports/api/v1/billings?per_page=100",
        ),
    ]
    return out


def run_case(
    app: Flask, client: Any, case: Case, iterations: int, engine: sa.Engine
) -> Result:
    """Warm up once, time ``iterations`` requests, then one with tracemalloc."""
    headers = (
        {"Authorization": f"Bearer {gen.API_TOKEN}"} if case.actor == "api" else {}
    )
    kwargs: dict[str, Any] = {"headers": headers}
    if case.data is not None:
        kwargs["data"] = case.data
    if case.json is not None:
        kwargs["json"] = case.json
    result = Result(case)

    def once() -> Any:
        response = client.open(case.path, method=case.method, **kwargs)
        if response.status_code not in case.ok:
            raise SystemExit(
                f"{case.name}: HTTP {response.status_code}\n"
                + response.get_data(as_text=True)[:2000]
            )
        return response

    def undo(response: Any) -> None:
        if case.undo is not None:
            case.undo(response)

    undo(once())  # warm-up (caches, connections)
    for _ in range(iterations):
        gc.collect()
        started = time.perf_counter()
        response = once()
        result.times.append((time.perf_counter() - started) * 1000)
        result.size = len(response.get_data())
        undo(response)
    with counting(engine) as statements:
        response = once()
    result.queries = len(statements)
    undo(response)
    gc.collect()
    tracemalloc.start()
    response = once()
    result.peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    undo(response)
    return result


def fmt_ms(value: float) -> str:
    return f"{value:,.1f}" if value < 100 else f"{value:,.0f}"


def table(results: list[Result], bare: float, engine: str) -> str:
    """A Markdown table of the results."""
    head = (
        "| case | median ms | p95 ms | × bare | queries | peak MB | target | verdict |\n"
        "|---|---:|---:|---:|---:|---:|---:|---|\n"
    )
    rows = []
    for r in results:
        target = r.case.target_ms
        if target is None:
            verdict = "–"
        elif r.median <= target:
            verdict = "met"
        else:
            verdict = f"missed by {r.median / target - 1:.0%}"
        name = r.case.name + (f" — {r.case.note}" if r.case.note else "")
        rows.append(
            f"| {name} | {fmt_ms(r.median)} | {fmt_ms(r.p95)} | "
            f"{r.median / bare:,.0f} | {r.queries} | {r.peak / 2**20:,.1f} | "
            f"{'< ' + format(target, ',.0f') + ' ms' if target else '–'} | {verdict} |"
        )
    return (
        f"Engine: {engine}; bare route median {bare:.3f} ms.\n\n"
        + head
        + "\n".join(rows)
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument(
        "--heavy-iterations",
        type=int,
        default=5,
        help="iterations of the claim, export and PDF cases",
    )
    parser.add_argument("--only", help="run cases whose name contains this text")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args(argv)
    app = bench_app(args.database_url)
    with app.app_context():
        fx = gen.find_fixture()
        engine = db.engine
        dialect = engine.dialect.name
        db.session.remove()
    clients = {
        actor: login(app, actor, fx)
        for actor in ("admin", "finance", "contact", "api", "anonymous")
    }
    results = []
    bare = None
    for case in cases(app, fx):
        if args.only and args.only not in case.name and case.actor != "anonymous":
            continue
        iterations = args.iterations
        if case.iterations:  # the bare route runs more, the heavy cases fewer
            iterations = (
                case.iterations if case.actor == "anonymous" else args.heavy_iterations
            )
        result = run_case(app, clients[case.actor], case, iterations, engine)
        if case.actor == "anonymous":
            bare = result.median
        print(
            f"{case.name}: median {fmt_ms(result.median)} ms, p95 "
            f"{fmt_ms(result.p95)} ms, {result.queries} queries, peak "
            f"{result.peak / 2**20:.1f} MB",
            file=sys.stderr,
            flush=True,
        )
        results.append(result)
    assert bare is not None
    print(table(results, bare, dialect))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(
                [
                    {
                        "case": r.case.name,
                        "median_ms": r.median,
                        "p95_ms": r.p95,
                        "queries": r.queries,
                        "peak_bytes": r.peak,
                        "target_ms": r.case.target_ms,
                        "bare_ms": bare,
                    }
                    for r in results
                ],
                fh,
                indent=2,
            )


if __name__ == "__main__":
    main()
