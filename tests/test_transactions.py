"""A savepoint stays inside the request's transaction, on SQLite as on PostgreSQL.

The workflow, exports and claims write inside ``begin_nested()``; whatever fails
after it in the same request must still roll everything back.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from portal.extensions import db
from portal.models import User
from tests import factories as f


def _users() -> int:
    return db.session.scalar(sa.select(sa.func.count(User.id)))


@pytest.mark.parametrize("after", ["rollback", "error"])
def test_a_released_savepoint_is_undone_by_the_rollback(ctx, after: str) -> None:  # noqa: ANN001
    db.session.close()  # a fresh transaction: the savepoint is its first statement
    with db.session.begin_nested():
        f.make_user("admin", email="nested@example.com")
    assert _users() == 1
    if after == "error":
        with pytest.raises(RuntimeError):
            try:
                raise RuntimeError("failed after the savepoint")
            except RuntimeError:
                db.session.rollback()
                raise
    else:
        db.session.rollback()
    assert _users() == 0


def test_a_committed_savepoint_is_kept(ctx) -> None:  # noqa: ANN001
    db.session.close()
    with db.session.begin_nested():
        f.make_user("admin", email="kept@example.com")
    db.session.commit()
    db.session.close()
    assert _users() == 1
