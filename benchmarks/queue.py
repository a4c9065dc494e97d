"""Time the review queue at 1,000 waiting billings and a bulk approval of 100.

Builds its own database with the generator (``benchmarks.generate``): a project
of ``--commitments`` commitments whose open period has about half its billings
under review or held for the owner, then tops the open period up (drafts and
billings sent back become submitted, through SQL, outside the timing) until
exactly ``--waiting`` billings wait for a decision. Then, through the Flask test
client like ``benchmarks.run``:

* the queue page (first page, 25 rows; a filtered page; the last page), N times;
* the review page opened from the queue ("N of M"), N times;
* ``--batches`` bulk approvals of ``--bulk`` billings each (distinct billings:
  an approval can't be undone), each one POST.

Usage::

    python -m benchmarks.queue --database-url sqlite:////tmp/bench_queue.db
    python -m benchmarks.queue --database-url postgresql+psycopg://postgres@127.0.0.1:5432/bench_queue
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from flask import Flask

from portal import create_app
from portal.billing.queue import QUEUE_STATUSES
from portal.core.statuses import BillingStatus, LineStatus
from portal.extensions import db
from portal.models import Billing, BillingLine, BillingPeriod, Project, User
from portal.timeutil import utcnow
from tests.helpers import counting

from . import generate as gen


def build(url: str, commitments: int, waiting: int) -> None:
    """A fresh benchmark database with exactly ``waiting`` billings in the queue."""
    url = gen.prepare_database(url, reset=True)
    gen.migrate(url)
    app = create_app(gen.bench_config(url))
    size = gen.Size(
        commitments=commitments,
        lines=8,
        periods=2,
        contacts=commitments * 2,
        big_lines=(60, 30),
        export_history=False,
        claim_history=False,
    )
    with app.app_context():
        gen.generate(size, seed=2026)
        fx = gen.find_fixture(export_count=0)
        have = int(
            db.session.scalar(
                sa.select(sa.func.count(Billing.id)).where(
                    Billing.status.in_(QUEUE_STATUSES)
                )
            )
            or 0
        )
        if have < waiting:
            ids = db.session.scalars(
                sa.select(Billing.id)
                .where(
                    Billing.period_id == fx.open_period_id,
                    Billing.status.in_(
                        [BillingStatus.DRAFT, BillingStatus.REVISE_AND_RESUBMIT]
                    ),
                )
                .order_by(Billing.id)
                .limit(waiting - have)
            ).all()
            now = utcnow()
            for n, billing_id in enumerate(ids):
                db.session.execute(
                    sa.update(Billing)
                    .where(Billing.id == billing_id)
                    .values(
                        status=BillingStatus.UNDER_REVIEW,
                        submitted_at=now - timedelta(minutes=n),
                        version=Billing.version + 1,
                    )
                )
            db.session.execute(
                sa.update(BillingLine)
                .where(BillingLine.billing_id.in_(ids))
                .values(
                    status=LineStatus.PENDING,
                    approved_work=BillingLine.claimed_work,
                    approved_materials=BillingLine.claimed_materials,
                    approved_installed=BillingLine.claimed_installed,
                )
            )
            db.session.commit()
        db.session.remove()
        db.engine.dispose()


def _admin_client(app: Flask) -> Any:
    """A test client signed in as the generated admin."""
    client = app.test_client()
    with app.app_context():
        user = db.session.scalar(sa.select(User).where(User.email == gen.ADMIN_EMAIL))
        assert user is not None
        account = user.get_id()
    with client.session_transaction() as sess:
        sess["_user_id"] = account
        sess["_fresh"] = True
        sess["started"] = int(utcnow().timestamp())
    return client


def _timed(client: Any, engine: sa.Engine, method: str, path: str, **kw: Any):
    start = time.perf_counter()
    with counting(engine) as statements:
        response = client.open(path, method=method, **kw)
    elapsed = (time.perf_counter() - start) * 1000
    assert response.status_code in (200, 302), (path, response.status_code)
    return elapsed, len(statements), response


def _row(name: str, times: list[float], queries: int) -> str:
    ordered = sorted(times)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return (
        f"| {name} | {len(times)} | {statistics.median(times):.0f} | {p95:.0f} "
        f"| {queries} |"
    )


def measure(url: str, iterations: int, bulk: int, batches: int) -> list[str]:
    app: Flask = create_app(gen.bench_config(url))
    with app.app_context():
        engine = db.engine
        project_id = db.session.scalar(
            sa.select(Project.id).where(Project.number == gen.PROJECT_NUMBER)
        )
        waiting = int(
            db.session.scalar(
                sa.select(sa.func.count(Billing.id)).where(
                    Billing.status.in_(QUEUE_STATUSES)
                )
            )
            or 0
        )
        db.session.remove()
    client = _admin_client(app)
    client.get("/admin/queue")  # warm up
    last_page = (waiting + 24) // 25
    pages = [
        (f"queue, first page (25 of {waiting})", "/admin/queue"),
        (
            "queue, filtered (project, under review)",
            f"/admin/queue?project_id={project_id}&status=under_review",
        ),
        ("queue, last page", f"/admin/queue?page={last_page}"),
    ]
    rows = [
        f"Queue: {waiting} billings waiting for a decision ({engine.dialect.name}).",
        "",
        "| case | n | median ms | p95 ms | statements |",
        "|---|---|---|---|---|",
    ]
    for name, path in pages:
        times, queries = [], 0
        for _ in range(iterations):
            ms, queries, _ = _timed(client, engine, "GET", path)
            times.append(ms)
        rows.append(_row(name, times, queries))
    with app.app_context():
        middle = db.session.scalars(
            sa.select(Billing.id)
            .join(BillingPeriod, BillingPeriod.id == Billing.period_id)
            .where(Billing.status.in_(QUEUE_STATUSES))
            .order_by(BillingPeriod.due_date, Billing.submitted_at, Billing.id)
            .offset(waiting // 2)
            .limit(1)
        ).first()
        db.session.remove()
    times, queries = [], 0
    for _ in range(iterations):
        ms, queries, _ = _timed(
            client, engine, "GET", f"/admin/billings/{middle}?queue="
        )
        times.append(ms)
    rows.append(_row("review page from the queue (N of M)", times, queries))
    times, queries = [], 0
    for _ in range(batches):
        with app.app_context():
            # Billings a bulk approval takes: under review, every line pending,
            # no difference, nothing earlier undecided on the commitment.
            picked = db.session.execute(
                sa.select(Billing.id, Billing.version)
                .where(
                    Billing.status == BillingStatus.UNDER_REVIEW,
                    ~sa.exists().where(
                        BillingLine.billing_id == Billing.id,
                        sa.or_(
                            BillingLine.status == LineStatus.REVISE,
                            BillingLine.approved_work != BillingLine.claimed_work,
                            BillingLine.approved_materials
                            != BillingLine.claimed_materials,
                            BillingLine.approved_installed
                            != BillingLine.claimed_installed,
                        ),
                    ),
                )
                .order_by(Billing.id)
                .limit(bulk)
            ).all()
            db.session.remove()
        pairs = [f"{i}:{v}" for i, v in picked]
        ms, queries, response = _timed(
            client,
            engine,
            "POST",
            "/admin/billings/bulk",
            data={"action": "approve", "billing": pairs, "back": "/admin/queue"},
        )
        with client.session_transaction() as sess:
            flashed = [m for _, m in sess.pop("_flashes", [])][:1]
        times.append(ms)
        rows.append(f"<!-- batch: {flashed} -->")
    rows.append(_row(f"bulk approval of {bulk} billings (one POST)", times, queries))
    with app.app_context():
        db.engine.dispose()
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--commitments", type=int, default=1600)
    parser.add_argument("--waiting", type=int, default=1000)
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--bulk", type=int, default=100)
    parser.add_argument("--batches", type=int, default=3)
    parser.add_argument("--no-build", action="store_true", help="reuse the database")
    args = parser.parse_args(argv)
    if not args.no_build:
        start = time.perf_counter()
        build(args.database_url, args.commitments, args.waiting)
        print(f"built in {time.perf_counter() - start:.0f} s")
    for line in measure(args.database_url, args.iterations, args.bulk, args.batches):
        print(line)


if __name__ == "__main__":
    main()
