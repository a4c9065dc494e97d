"""Running requests at the same moment, for real, in threads.

Each job gets its own app (its own engine and connection pool, as separate
gunicorn workers have). A listener holds every job at its first statement
that takes a lock (an UPDATE, INSERT, DELETE or SELECT … FOR UPDATE) until all
jobs have reached it, so every one of them
has read the same state and only the database decides who wins. (Holding at a
later write would hold a lock while waiting: SQLite would then give up with
"database is locked" after its busy timeout, an artefact of the test.)
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask import Flask

from portal.extensions import db

from ..conftest import make_test_app

WRITES = ("UPDATE", "INSERT", "DELETE")


def _hold(app: Flask, barrier: threading.Barrier) -> None:
    waited = threading.Event()

    def before(conn, cursor, statement, parameters, context, executemany) -> None:
        text = statement.lstrip().upper()
        takes_locks = (
            text.startswith(WRITES)
            or " FOR UPDATE" in text
            or (" FOR NO KEY UPDATE" in text)
        )
        if waited.is_set() or not takes_locks:
            return
        waited.set()
        try:
            barrier.wait(timeout=15)
        except threading.BrokenBarrierError:
            pass  # a job that never writes: let the others go on

    with app.app_context():
        sa.event.listen(db.engine, "before_cursor_execute", before)


def race(
    url: str,
    folder: Path,
    jobs: list[Callable[[Flask], Any]],
) -> list[Any]:
    """Run ``job(app)`` for each job in its own thread and app; their results."""
    apps = [make_test_app(url, folder / f"racer{i}") for i in range(len(jobs))]
    barrier = threading.Barrier(len(jobs))
    for app in apps:
        _hold(app, barrier)
    results: list[Any] = [None] * len(jobs)

    def run(index: int) -> None:
        try:
            results[index] = jobs[index](apps[index])
        except Exception as exc:
            results[index] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(jobs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=90)
    for app in apps:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
    return results
