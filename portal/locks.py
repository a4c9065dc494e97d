"""Row locks that work on PostgreSQL and SQLite (issue 17).

A "count, then write" check (three fresh links an hour, one admin at least)
is only exact if nobody else writes between the count and the write. On
PostgreSQL ``SELECT … FOR UPDATE`` locks the row until commit; SQLite has no
row locks, so a no-op ``UPDATE`` of the row takes the database's write lock
instead, which also serialises every other writer until commit. Call it
before reading what the check counts.
"""

from __future__ import annotations

import sqlalchemy as sa

from . import generations
from .extensions import db


def lock_rows(model: type, *where: sa.ColumnElement[bool]) -> list[int]:
    """Lock the rows of ``model`` matching ``where``; their ids, in id order."""
    table = model.__table__  # type: ignore[attr-defined]
    if db.session.get_bind().dialect.name == "sqlite":
        db.session.execute(  # a no-op write: changes nothing a page shows
            sa.update(table)
            .where(*where)
            .values(id=table.c.id)
            .execution_options(**generations.COVERED_OPTIONS)
        )
        return list(
            db.session.scalars(sa.select(table.c.id).where(*where).order_by(table.c.id))
        )
    return list(
        db.session.scalars(
            sa.select(table.c.id).where(*where).order_by(table.c.id).with_for_update()
        )
    )
