"""Two batches created at the same moment on PostgreSQL: exactly one wins.

Each thread has its own app (engine, pool, session). A listener on each engine
holds the thread at the row-locking statement until both threads are there, so
both have passed every earlier check and only the compare-and-set decides.
"""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa

from portal.extensions import db
from portal.finance import batches as export_batches
from portal.models import Billing, ExportBatch, ExportBatchItem, User
from tests.conftest import _empty_all_tables, make_test_app

from ..helpers import build_world

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_world(pg_url, tmp_path, today):
    """The worked example, approved, in the PostgreSQL database; emptied after."""
    app = make_test_app(pg_url, tmp_path)
    with app.app_context():
        example = build_world(
            today, staff=("admin", "finance"), approved=True, erp=True
        )
    yield example
    with app.app_context():
        db.session.remove()
        _empty_all_tables()
        db.session.remove()
        db.engine.dispose()


def _hold_at_lock(app, barrier: threading.Barrier) -> None:
    def before(conn, cursor, statement, parameters, context, executemany) -> None:
        if "FOR UPDATE" in statement:
            barrier.wait(timeout=20)

    with app.app_context():
        sa.event.listen(db.engine, "before_cursor_execute", before)


def _race(pg_url, tmp_path, jobs):
    """Run each job(app) in its own thread and app at once; return the outcomes."""
    apps = [make_test_app(pg_url, tmp_path / str(i)) for i in range(len(jobs))]
    barrier = threading.Barrier(len(jobs))
    for app in apps:
        _hold_at_lock(app, barrier)
    outcomes: list = [None] * len(jobs)

    def run(index: int) -> None:
        app = apps[index]
        try:
            outcomes[index] = jobs[index](app)
        except Exception as exc:
            outcomes[index] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(jobs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    for app in apps:
        with app.app_context():
            db.engine.dispose()
    return outcomes


def test_two_batches_at_once_exactly_one_wins(pg_url, pg_world, tmp_path) -> None:
    ids = [pg_world.billing1_id, pg_world.billing2_id]

    def make_batch(fmt: str):
        def job(app):
            with app.app_context():
                user = db.session.get(User, pg_world.finance_id)
                try:
                    batch = export_batches.create_batch(user, fmt, ids)
                    db.session.commit()
                    return batch.id
                finally:
                    db.session.remove()

        return job

    outcomes = _race(pg_url, tmp_path, [make_batch("csv"), make_batch("iif")])
    winners = [o for o in outcomes if isinstance(o, int)]
    losers = [o for o in outcomes if isinstance(o, Exception)]
    assert len(winners) == 1, outcomes
    assert len(losers) == 1 and isinstance(losers[0], export_batches.ExportConflict)
    assert "meanwhile" in str(losers[0])

    app = make_test_app(pg_url, tmp_path / "check")
    with app.app_context():
        assert db.session.scalars(sa.select(ExportBatch.id)).all() == winners
        assert sorted(
            db.session.scalars(sa.select(ExportBatchItem.billing_id)).all()
        ) == sorted(ids)
        for billing_id in ids:
            assert db.session.get(Billing, billing_id).export_batch_id == winners[0]
        db.engine.dispose()


def test_overlapping_api_requests_at_once_write_nothing_for_the_loser(
    pg_url, pg_world, tmp_path
) -> None:
    """Concurrent POST /exports/api/v1/batches: (billing 1, 2) against (2 only)."""
    from portal.accounts import api_tokens

    app = make_test_app(pg_url, tmp_path / "tokens")
    with app.app_context():
        user = db.session.get(User, pg_world.finance_id)
        _, raw = api_tokens.create_token(user, "race")
        db.session.commit()
        db.engine.dispose()

    def post(billing_ids):
        def job(app):
            client = app.test_client()
            response = client.post(
                "/exports/api/v1/batches",
                json={"format": "csv", "billing_ids": billing_ids},
                headers={"Authorization": f"Bearer {raw}"},
            )
            return response.status_code, response.get_json()

        return job

    both = [pg_world.billing1_id, pg_world.billing2_id]
    outcomes = _race(pg_url, tmp_path, [post(both), post([pg_world.billing2_id])])
    statuses = sorted(status for status, _ in outcomes)
    assert statuses == [201, 409], outcomes
    (winner,) = [body for status, body in outcomes if status == 201]
    (loser,) = [body for status, body in outcomes if status == 409]
    assert loser["error"] == "Conflict"

    check = make_test_app(pg_url, tmp_path / "check2")
    with check.app_context():
        assert db.session.scalars(sa.select(ExportBatch.id)).all() == [winner["id"]]
        exported = {
            b.id: b.export_batch_id
            for b in db.session.scalars(sa.select(Billing).where(Billing.id.in_(both)))
        }
        for billing_id in winner["billing_ids"]:
            assert exported[billing_id] == winner["id"]
        for billing_id in set(both) - set(winner["billing_ids"]):
            assert exported[billing_id] is None
        db.engine.dispose()
