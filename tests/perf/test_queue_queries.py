"""The review queue's pages run the same number of statements at two data sizes
(SPEC §11; issue 15): a queue of 4 and of 16 billings, all on one page."""

from __future__ import annotations

from datetime import timedelta

import pytest

from portal.billing import billings as wf
from portal.core.statuses import LineStatus
from portal.extensions import db
from portal.models import User

from .. import factories as f
from ..conftest import make_test_app
from ..helpers import bill, counting, make_staff

pytestmark = pytest.mark.calendar


def _world(today, n: int):
    staff = make_staff()
    admin = db.session.get(User, staff["admin"])
    ids = []
    projects = [f.make_project(), f.make_project()]
    periods = [
        f.make_period(p, 1, start=today.replace(day=1), due=today + timedelta(days=k))
        for k, p in enumerate(projects, 2)
    ]
    lines = [("01-100", "10000.00"), ("01-200", "5000.00")]
    for i in range(n):
        vendor = f.make_vendor()
        commitment = f.make_commitment(
            projects[i % 2], vendor, lines, [f.make_contact(vendor)]
        )
        billing = bill(
            commitment,
            periods[i % 2],
            admin,
            {1: ("1000.00", "0.00"), 2: ("10.00", "0.00")},
            decide="hold" if i % 4 == 3 else "review",
        )
        if i % 4 == 1:
            line = billing.lines[0]
            wf.review_lines(
                billing,
                admin,
                {line.id: wf.LineReview("900.00", "0.00", LineStatus.APPROVED, "x")},
                billing.version,
            )
        if i % 3 == 0:
            f.make_attachment(billing.id, b"%PDF-1.4\n", f"{i:032d}.pdf", user=admin)
        ids.append(billing.id)
    db.session.commit()
    return staff["admin"], ids, periods[0].id


def _measure(database_url, tmp_path, today, n):
    app = make_test_app(database_url, tmp_path, PAGE_SIZE=200)
    try:
        with app.app_context():
            admin_id, ids, period_id = _world(today, n)
            account = db.session.get(User, admin_id).get_id()
            engine = db.engine
            db.session.remove()
        client = app.test_client()
        from portal.timeutil import utcnow

        with client.session_transaction() as sess:
            sess["_user_id"] = account
            sess["_fresh"] = True
            sess["started"] = int(utcnow().timestamp())
        client.get("/admin/")
        out = {}
        for name, path in [
            ("queue", "/admin/queue"),
            ("queue filtered", "/admin/queue?differences=1&missing=any"),
            ("review from queue", f"/admin/billings/{ids[len(ids) // 2]}?queue="),
            ("period dashboard", f"/admin/periods/{period_id}"),
        ]:
            with counting(engine) as statements:
                response = client.get(path)
            assert response.status_code == 200, (name, response.status_code)
            out[name] = len(statements)
        return out
    finally:
        from ..conftest import _empty_all_tables

        with app.app_context():
            db.session.remove()
            _empty_all_tables()
            db.session.remove()
            db.engine.dispose()


def test_queue_pages_do_not_grow_with_the_queue(database_url, tmp_path, today):
    small = _measure(database_url, tmp_path / "s", today, 4)
    large = _measure(database_url, tmp_path / "l", today, 16)
    assert small == large
