"""What several test files share: the one SQL statement counter.

``counting`` is what every query-count test (and the benchmark runner) uses, so
a statement counts the same way everywhere: every statement the engine sends
to the database inside the block, as ``before_cursor_execute`` sees it,
SAVEPOINT and RELEASE included (none of the counters it replaced left them out,
and the thresholds were set on that count).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from flask import Flask

from portal.extensions import db


@contextmanager
def counting(target: Flask | sa.Engine) -> Iterator[list[str]]:
    """Every SQL statement sent to the database inside the block.

    ``target`` is an app (its ``db.engine`` is counted) or an engine.
    """
    if isinstance(target, Flask):
        with target.app_context():
            engine = db.engine
    else:
        engine = target
    statements: list[str] = []

    def before(conn, cursor, statement, *args) -> None:
        statements.append(statement)

    sa.event.listen(engine, "before_cursor_execute", before)
    try:
        yield statements
    finally:
        sa.event.remove(engine, "before_cursor_execute", before)
