"""One compare-and-set for every status-bearing row (SPEC §3, §9).

``UPDATE … SET status = :to, version = version + 1, … WHERE id = :id AND status
= :from AND version = :expected``, checking the row count: two admins deciding
the same record at once, or a double-clicked button, get exactly one winner;
the other is told the record changed meanwhile. Works the same on SQLite
(which ignores ``SELECT … FOR UPDATE``) and PostgreSQL. Billings
(:mod:`portal.billing.billings`) and upstream claims (:mod:`portal.upstream`) both use it.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from portal import generations
from portal.extensions import db, rowcount


class Stale(Exception):
    """The row changed since the caller read it (status or version moved)."""


def compare_and_set(
    model: type[Any],
    row: Any,
    expected_version: int,
    to_status: str,
    *,
    stale: type[Exception] = Stale,
    message: str = "This record was changed by someone else meanwhile.",
    **values: Any,
) -> None:
    """Move ``row`` (an instance of ``model``) from its current status and
    ``expected_version`` to ``to_status``, bump its version and write ``values``,
    in one conditional UPDATE; raise ``stale(message)`` unless exactly one row
    matched. The instance is refreshed from the database afterwards."""
    result = db.session.execute(
        sa.update(model)
        .where(
            model.id == row.id,
            model.status == row.status,
            model.version == expected_version,
        )
        .values(status=to_status, version=model.version + 1, **values)
        .execution_options(synchronize_session=False, **generations.COVERED_OPTIONS)
    )
    if rowcount(result) != 1:
        raise stale(message)
    generations.touch(row)  # the row's scope, not every page (the bulk default)
    db.session.refresh(row)
