"""Time the heavy pages of SPEC §11 against a generated database.

Every case goes through the Flask test client, like a browser would, N times,
with real sessions: each contact signs in through a real magic link (the link
page, then its Continue button), staff through the login form. The table gives,
per case:

* the median and 95th percentile wall time, and the median CPU time of this
  process (``time.process_time``: Python, templates and the driver; SQLite's
  own work is in it, PostgreSQL's server side is not);
* the bare route (``/__bench/bare``, returning "ok") timed *alternated* with
  the case (bare, case, bare, case …), so each case has its own bare median
  from the same minutes on the same machine, and "× bare" divides by that:
  the figure that compares across machines and loads;
* the number of SQL statements of one request, and the peak Python memory of
  one request (tracemalloc, in a separate request so it slows no timed one).

Nothing forces a garbage collection before a timed request: the collections a
worker pays in production are paid here too. Each light case rotates over
several billings (different commitments, contacts and sizes) instead of one;
the billings it shows are given attachments and comments at setup (through the
product's own ``save_upload`` and ``add_comment``), removed at the end. Usage::

    python -m benchmarks.run --database-url sqlite:////tmp/bench.db
    python -m benchmarks.run --database-url postgresql+psycopg://postgres@127.0.0.1:5432/bench_pb

Cases that change data undo their change after each (timed) request, outside the
timing: a generated claim is voided, an export batch is reversed. Sign-ins,
attachments and comments leave audit events behind: run it on a copy.
"""

from __future__ import annotations

import argparse
import gc
import io
import json
import shutil
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from flask import Flask

from portal import create_app
from portal.extensions import db
from tests.helpers import counting

from . import generate as gen

FORMATS = ("csv", "xlsx", "iif", "sage300")
BARE = "/__bench/bare"
#: A tiny file the upload check takes for a PDF.
PDF_BYTES = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"


@dataclass
class Case:
    """One measured request, rotated over ``targets`` (client key, path)."""

    name: str
    method: str
    targets: list[tuple[str, str]]
    target_ms: float | None = None
    heavy: bool = False
    data: Any = None
    json: Any = None
    ok: tuple[int, ...] = (200,)
    #: Undo the request's change (not timed); gets the response.
    undo: Callable[[Any], None] | None = None
    #: A change made before each timed request (not timed), such as a contact's
    #: save: the page is then measured as its first view after that change.
    #: Called an even number of times (it toggles, leaving the data as found).
    before: Callable[[], None] | None = None
    note: str = ""


@dataclass
class Result:
    case: Case
    times: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    bare_times: list[float] = field(default_factory=list)
    bare_cpu: list[float] = field(default_factory=list)
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

    @property
    def cpu_median(self) -> float:
        return statistics.median(self.cpu)

    @property
    def bare(self) -> float:
        return statistics.median(self.bare_times)

    @property
    def bare_cpu_median(self) -> float:
        return statistics.median(self.bare_cpu)

    @property
    def ratio(self) -> float:
        return self.median / self.bare

    @property
    def cpu_ratio(self) -> float:
        return self.cpu_median / self.bare_cpu_median


def bench_app(url: str, **extra: Any) -> Flask:
    """The app on the generated database, with the bare reference route."""
    app = create_app(gen.bench_config(url, **extra))

    @app.route(BARE)
    def bare() -> str:
        return "ok"

    return app


# ------------------------------------------------------------------ sessions


def staff_client(app: Flask, email: str) -> Any:
    """A test client signed in through the login form, as a browser would."""
    client = app.test_client()
    client.get("/admin/login")
    response = client.post(
        "/admin/login", data={"email": email, "password": gen.PASSWORD}
    )
    if response.status_code != 302 or "/login" in response.headers["Location"]:
        raise SystemExit(f"staff login {email}: HTTP {response.status_code}")
    return client


def contact_client(app: Flask, contact_id: int) -> Any:
    """A test client signed in through a real magic link (page, then Continue)."""
    from portal.accounts import tokens
    from portal.models import Contact

    with app.app_context():
        _, token = tokens.issue_link(db.session.get(Contact, contact_id))
        db.session.commit()
    client = app.test_client()
    page = client.get(f"/portal/link/{token}")
    response = client.post(f"/portal/link/{token}", data={})
    if page.status_code != 200 or response.status_code != 302:
        raise SystemExit(
            f"magic link of contact {contact_id}: HTTP {page.status_code}, "
            f"{response.status_code}"
        )
    return client


# ------------------------------------------------------------------ subjects


@dataclass
class Subjects:
    """The billings the light cases rotate over (each with its contact)."""

    drafts: list[tuple[int, int]]  # (billing, contact)
    revise: list[tuple[int, int]]
    reviews: list[int]  # under review, 20+ lines
    attachments: list[int] = field(default_factory=list)
    comments: list[int] = field(default_factory=list)


def pick_subjects(fx: gen.Fixture, rotate: int) -> Subjects:
    """Billings of the open period from different commitments (app context)."""
    from portal.models import Billing, BillingLine, Commitment

    def per_contact(status: str) -> list[tuple[int, int]]:
        rows = db.session.execute(
            sa.select(Billing.id, Billing.created_by_contact_id)
            .join(Commitment)
            .where(
                Billing.period_id == fx.open_period_id,
                Billing.status == status,
                Billing.created_by_contact_id.is_not(None),
                Commitment.number.notlike(f"{gen.BIG_PREFIX}%"),
            )
            .order_by(Billing.id)
        ).all()
        out: list[tuple[int, int]] = []
        seen: set[int] = set()
        for billing_id, contact_id in rows:
            if contact_id not in seen and len(out) < rotate:
                seen.add(contact_id)
                out.append((billing_id, contact_id))
        return out

    lines = (
        sa.select(sa.func.count(BillingLine.id))
        .where(BillingLine.billing_id == Billing.id)
        .scalar_subquery()
    )
    reviews = list(
        db.session.scalars(
            sa.select(Billing.id)
            .join(Commitment)
            .where(
                Billing.period_id == fx.open_period_id,
                Billing.status == "under_review",
                Commitment.number.notlike(f"{gen.BIG_PREFIX}%"),
                lines >= 20,
            )
            .order_by(Billing.id)
            .limit(rotate)
        )
    )
    drafts = per_contact("draft")
    if fx.contact_billing_id not in {b for b, _ in drafts}:
        drafts = [(fx.contact_billing_id, fx.contact_id)] + drafts[: rotate - 1]
    return Subjects(drafts, per_contact("revise_and_resubmit"), reviews)


def furnish(app: Flask, fx: gen.Fixture, subjects: Subjects) -> None:
    """Two attachments and two comments (contact's, staff's on a line) per billing."""
    from werkzeug.datastructures import FileStorage

    from portal.billing import attachments, billings
    from portal.models import Billing, BillingLine, Contact, User

    with app.test_request_context():
        admin = db.session.get(User, fx.admin_id)
        finance = db.session.get(User, fx.finance_id)
        everyone = [(b, c) for b, c in subjects.drafts + subjects.revise] + [
            (b, None) for b in subjects.reviews + [fx.review_mid_id]
        ]
        for billing_id, contact_id in everyone:
            billing = db.session.get(Billing, billing_id)
            contact = db.session.get(Contact, contact_id) if contact_id else None
            for kind, name in (
                ("invoice", "invoice.pdf"),
                ("lien_waiver", "waiver.pdf"),
            ):
                upload = FileStorage(
                    io.BytesIO(PDF_BYTES), filename=name, content_type="application/pdf"
                )
                subjects.attachments.append(
                    attachments.save_upload(billing, upload, kind, contact or admin).id
                )
            line = db.session.scalar(
                sa.select(BillingLine)
                .where(BillingLine.billing_id == billing_id)
                .order_by(BillingLine.id)
                .limit(1)
            )
            first = contact if contact and billing.status == "draft" else finance
            subjects.comments.append(
                billings.add_comment(billing, first, "Invoice attached.").id
            )
            subjects.comments.append(
                billings.add_comment(billing, admin, "Check this line.", line).id
            )
        db.session.commit()


def unfurnish(app: Flask, fx: gen.Fixture, subjects: Subjects) -> None:
    """Remove what ``furnish`` added (their audit events stay)."""
    from portal.billing import attachments
    from portal.models import Attachment, Comment, User

    with app.test_request_context():
        admin = db.session.get(User, fx.admin_id)
        gone = [db.session.get(Attachment, i) for i in subjects.attachments]
        for attachment in gone:
            if attachment is not None:
                attachments.delete_attachment(attachment, admin)
        db.session.execute(sa.delete(Comment).where(Comment.id.in_(subjects.comments)))
        db.session.commit()
        for attachment in gone:
            if attachment is not None:
                attachments.discard_file(attachment)


def toggle_a_line(app: Flask, billing_id: int) -> Callable[[], None]:
    """A save of one line of draft ``billing_id`` through the ORM (its
    commitment's counter bumps, as with a contact's save): +1 cent, then −1
    cent on the next call, so an even number of calls leaves it as found."""
    from portal.models import BillingLine

    calls = [0]

    def before() -> None:
        with app.app_context():
            line = db.session.scalars(
                sa.select(BillingLine)
                .where(BillingLine.billing_id == billing_id)
                .order_by(BillingLine.id)
                .limit(1)
            ).one()
            step = Decimal("0.01") if calls[0] % 2 == 0 else Decimal("-0.01")
            line.claimed_work = (line.claimed_work or Decimal("0")) + step
            db.session.commit()
            db.session.remove()
        calls[0] += 1

    return before


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


def cases(
    app: Flask, fx: gen.Fixture, subjects: Subjects, api_pages: int
) -> list[Case]:
    """The figures SPEC §11 asks for, and their targets (ms, median)."""
    from portal import upstream
    from portal.models import (
        Billing,
        BillingLine,
        BillingPeriod,
        ClientContract,
        Commitment,
    )

    with app.app_context():

        def lines_of(billing_id: int) -> int:
            return db.session.scalar(
                sa.select(sa.func.count(BillingLine.id)).where(
                    BillingLine.billing_id == billing_id
                )
            )

        lines_500 = lines_of(fx.review_big_id)
        lines_100 = lines_of(fx.review_mid_id)
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
        project_commitments = db.session.scalar(
            sa.select(sa.func.count(Commitment.id)).where(
                Commitment.project_id == fx.project_id
            )
        )
        from portal.models import ClientClaim

        # The latest claim the generator submitted (the claim view's subject)
        # and its period (the claims of a period's).
        latest_claim = db.session.scalars(
            sa.select(ClientClaim)
            .where(ClientClaim.status != "void", ClientClaim.status != "draft")
            .order_by(ClientClaim.id.desc())
            .limit(1)
        ).first()
        claim_id = latest_claim.id if latest_claim else None
        claim_period_id = latest_claim.period_id if latest_claim else None

        def span(ids: list[int]) -> str:
            sizes = sorted(lines_of(i) for i in ids)
            if not sizes:
                return "none"
            return (
                f"{sizes[0]}–{sizes[-1]} lines"
                if sizes[0] != sizes[-1]
                else (f"{sizes[0]} lines")
            )

        draft_span = span([b for b, _ in subjects.drafts])
        revise_span = span([b for b, _ in subjects.revise])
        review_span = span(subjects.reviews)
        db.session.rollback()

    def contact_pages(pairs: list[tuple[int, int]]) -> list[tuple[str, str]]:
        return [(f"contact:{c}", f"/portal/billings/{b}") for b, c in pairs]

    n = len(fx.export_ids)
    out = [
        Case(
            f"period dashboard ({project_commitments} commitments)",
            "GET",
            [("admin", f"/admin/periods/{fx.open_period_id}")],
            300,
            note=f"{commitments} billings in the period (the one open period)",
        ),
        Case(
            f"period dashboard ({project_commitments} commitments), first view "
            "after a save",
            "GET",
            [("admin", f"/admin/periods/{fx.open_period_id}")],
            before=toggle_a_line(app, subjects.drafts[0][0]),
            note="one draft's line changed before each view: a miss that "
            "recomputes that commitment's billing only",
        ),
        Case(
            f"billing review ({lines_100} lines)",
            "GET",
            [("admin", f"/admin/billings/{fx.review_mid_id}")],
            50,
        ),
        Case(
            f"billing review ({lines_500} lines)",
            "GET",
            [("admin", f"/admin/billings/{fx.review_big_id}")],
        ),
        Case(
            f"billing review ({review_span})",
            "GET",
            [("admin", f"/admin/billings/{b}") for b in subjects.reviews],
            50,
        ),
        Case(
            f"contact billing page, draft ({draft_span})",
            "GET",
            contact_pages(subjects.drafts),
            50,
        ),
        Case(
            f"contact revise & resubmit page ({revise_span})",
            "GET",
            contact_pages(subjects.revise),
            50,
        ),
        Case(
            "contact home",
            "GET",
            [(f"contact:{c}", "/portal/") for _, c in subjects.drafts],
            50,
        ),
        Case(
            "billing list (every billing, newest first)",
            "GET",
            [("admin", "/admin/billings")],
        ),
        Case("exports ready page", "GET", [("finance", "/exports/")]),
        Case(
            "upstream claim view (the latest submitted claim)",
            "GET",
            [("admin", f"/admin/claims/{claim_id}")] if claim_id else [],
        ),
        Case(
            "claims of a period (the latest claim's)",
            "GET",
            [("admin", f"/admin/claims/periods/{claim_period_id}")]
            if claim_period_id
            else [],
        ),
        Case(
            f"upstream claim ({sources:,} lines, {billings} billings)",
            "POST",
            [("admin", "/admin/claims/generate")],
            2000,
            heavy=True,
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
                    "POST",
                    [("finance", "/exports/batches")],
                    3000 if count == n else None,
                    heavy=True,
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
            "GET",
            [("admin", f"/admin/billings/{fx.review_big_id}/pdf")],
            5000,
            heavy=True,
        ),
        Case(
            "JSON billing list (API, 100 per page)",
            "GET",
            [
                ("api", f"/exports/api/v1/billings?per_page=100&page={p}")
                for p in range(1, api_pages + 1)
            ],
        ),
    ]
    return [c for c in out if c.targets]


def run_case(
    clients: dict[str, Any], case: Case, iterations: int, engine: sa.Engine
) -> Result:
    """Warm up, then time ``iterations`` requests each right after a bare one.

    The case rotates over its targets; the statement count and the peak memory
    are of its first target, each in a request of its own.
    """
    bare_client = clients["anonymous"]
    result = Result(case)

    def once(i: int) -> Any:
        key, path = case.targets[i % len(case.targets)]
        kwargs: dict[str, Any] = {}
        if key == "api":
            kwargs["headers"] = {"Authorization": f"Bearer {gen.API_TOKEN}"}
        if case.data is not None:
            kwargs["data"] = case.data
        if case.json is not None:
            kwargs["json"] = case.json
        response = clients[key].open(path, method=case.method, **kwargs)
        if response.status_code not in case.ok:
            raise SystemExit(
                f"{case.name} ({path}): HTTP {response.status_code}\n"
                + response.get_data(as_text=True)[:2000]
            )
        return response

    def undo(response: Any) -> None:
        if case.undo is not None:
            case.undo(response)

    for i in range(1 if case.heavy else len(case.targets)):
        undo(once(i))  # warm-up (caches, connections, each target once)
    bare_client.get(BARE)
    for i in range(iterations):
        if case.before is not None:
            case.before()
        wall, cpu = time.perf_counter(), time.process_time()
        bare_client.get(BARE)
        result.bare_cpu.append((time.process_time() - cpu) * 1000)
        result.bare_times.append((time.perf_counter() - wall) * 1000)
        wall, cpu = time.perf_counter(), time.process_time()
        response = once(i)
        result.cpu.append((time.process_time() - cpu) * 1000)
        result.times.append((time.perf_counter() - wall) * 1000)
        result.size = len(response.get_data())
        undo(response)
    if case.before is not None:
        case.before()
    with counting(engine) as statements:
        response = once(0)
    result.queries = len(statements)
    undo(response)
    if case.before is not None:
        case.before()
    gc.collect()  # not timed: the peak is of this one request
    tracemalloc.start()
    response = once(0)
    result.peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    undo(response)
    if case.before is not None and iterations % 2:
        case.before()  # an even number of changes: the data as found
    return result


def fmt_ms(value: float) -> str:
    if value < 1:
        return f"{value:.2f}"
    return f"{value:,.1f}" if value < 100 else f"{value:,.0f}"


def table(results: list[Result], engine: str) -> str:
    """A Markdown table of the results."""
    head = (
        "| case | over | median ms | p95 ms | CPU ms | bare ms | bare CPU ms "
        "| × bare | CPU × bare | queries | peak MB | target | verdict |\n"
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n"
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
            f"| {name} | {len(r.case.targets)} | {fmt_ms(r.median)} | "
            f"{fmt_ms(r.p95)} | {fmt_ms(r.cpu_median)} | {r.bare:.3f} | "
            f"{r.bare_cpu_median:.3f} | {r.ratio:,.0f} | {r.cpu_ratio:,.0f} | "
            f"{r.queries} | "
            f"{r.peak / 2**20:,.1f} | "
            f"{'< ' + format(target, ',.0f') + ' ms' if target else '–'} | {verdict} |"
        )
    bares = [t for r in results for t in r.bare_times]
    return (
        f"Engine: {engine}; bare route median {statistics.median(bares):.3f} ms "
        f"over the whole run (min of the per-case medians "
        f"{min(r.bare for r in results):.3f}, max {max(r.bare for r in results):.3f}).\n"
        '"over": how many different billings (or pages) the case rotates over; '
        '"bare ms": the bare route\'s median timed alternated with this case; '
        '"× bare" = median / bare ms; CPU: this process\'s, median per request.\n\n'
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
    parser.add_argument(
        "--rotate", type=int, default=8, help="billings each light case rotates over"
    )
    parser.add_argument(
        "--only", help="run cases whose name contains this text (or one of a|b|c)"
    )
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args(argv)
    uploads = tempfile.mkdtemp(prefix="pb-bench-uploads-")
    app = bench_app(args.database_url, UPLOAD_FOLDER=uploads)
    with app.app_context():
        fx = gen.find_fixture()
        subjects = pick_subjects(fx, args.rotate)
        engine = db.engine
        dialect = engine.dialect.name
        db.session.remove()
    furnish(app, fx, subjects)
    try:
        clients: dict[str, Any] = {
            "admin": staff_client(app, gen.ADMIN_EMAIL),
            "finance": staff_client(app, gen.FINANCE_EMAIL),
            "api": app.test_client(),
            "anonymous": app.test_client(),
        }
        for _, contact_id in subjects.drafts + subjects.revise:
            clients[f"contact:{contact_id}"] = contact_client(app, contact_id)
        results = []
        for case in cases(app, fx, subjects, args.rotate):
            if args.only and not any(o in case.name for o in args.only.split("|")):
                continue
            iterations = args.heavy_iterations if case.heavy else args.iterations
            result = run_case(clients, case, iterations, engine)
            print(
                f"{case.name}: median {fmt_ms(result.median)} ms "
                f"(CPU {fmt_ms(result.cpu_median)}), bare {result.bare:.3f} ms, "
                f"× bare {result.ratio:,.0f}, {result.queries} queries, peak "
                f"{result.peak / 2**20:.1f} MB",
                file=sys.stderr,
                flush=True,
            )
            results.append(result)
    finally:
        unfurnish(app, fx, subjects)
        shutil.rmtree(uploads, ignore_errors=True)
    if not results:
        raise SystemExit("No case matched --only.")
    print(table(results, dialect))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(
                [
                    {
                        "case": r.case.name,
                        "targets": [path for _, path in r.case.targets],
                        "median_ms": r.median,
                        "p95_ms": r.p95,
                        "cpu_ms": r.cpu_median,
                        "bare_ms": r.bare,
                        "bare_cpu_ms": r.bare_cpu_median,
                        "times_bare": r.ratio,
                        "cpu_times_bare": r.cpu_ratio,
                        "queries": r.queries,
                        "peak_bytes": r.peak,
                        "target_ms": r.case.target_ms,
                    }
                    for r in results
                ],
                fh,
                indent=2,
            )


if __name__ == "__main__":
    main()
