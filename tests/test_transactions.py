"""A savepoint stays inside the request's transaction, on SQLite as on PostgreSQL.

The workflow, exports and claims write inside ``begin_nested()``; whatever fails
after it in the same request must still roll everything back.
"""

from __future__ import annotations

import sqlalchemy as sa

from portal.extensions import db
from portal.models import User
from tests import factories as f


def _users() -> int:
    return db.session.scalar(sa.select(sa.func.count(User.id)))


def test_a_released_savepoint_is_undone_by_the_rollback(ctx) -> None:
    db.session.close()  # a fresh transaction: the savepoint is its first statement
    with db.session.begin_nested():
        f.make_user("admin", email="nested@example.com")
    assert _users() == 1
    db.session.rollback()
    assert _users() == 0


def test_a_request_that_fails_after_a_savepoint_keeps_nothing(app) -> None:
    """A view writes in a released savepoint, then fails: the 500 keeps nothing."""

    def write_then_fail():
        with db.session.begin_nested():
            f.make_user("admin", email="nested@example.com")
        assert _users() == 1  # released, and visible inside the request
        raise RuntimeError("failed after the savepoint")

    app.add_url_rule("/_test/write-then-fail", view_func=write_then_fail)
    app.config["PROPAGATE_EXCEPTIONS"] = False  # answer 500 as in production
    response = app.test_client().get("/_test/write-then-fail")
    assert response.status_code == 500
    with app.app_context():
        assert _users() == 0
        db.session.remove()


def test_a_committed_savepoint_is_kept(ctx) -> None:
    db.session.close()
    with db.session.begin_nested():
        f.make_user("admin", email="kept@example.com")
    db.session.commit()
    db.session.close()
    assert _users() == 1
