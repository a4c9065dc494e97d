"""The benchmark scripts run (issue 16 item 1): a smoke test on a tiny world.

``benchmarks.run`` signs its people in for real (a magic link, the login form),
furnishes the billings it rotates over with attachments and comments and takes
them away again, and times each case alternated with the bare route;
``benchmarks.load`` reads the workers' CPU from ``/proc``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
import sqlalchemy as sa

from benchmarks import generate as gen
from benchmarks import load, run
from portal.extensions import db
from portal.models import Attachment, Comment

from ..conftest import _empty_all_tables, make_test_app

TINY = gen.Size(
    commitments=30,
    lines=3,
    periods=2,
    contacts=40,
    big_lines=(6, 5),
    claim_history=False,
)


@pytest.fixture
def world(database_url: str, tmp_path):
    app = make_test_app(database_url, tmp_path)
    with app.app_context():
        gen.generate(TINY, seed=3)
        db.session.remove()
    yield app
    with app.app_context():
        db.session.remove()
        _empty_all_tables()
        db.session.remove()
        db.engine.dispose()


def _counts(app) -> tuple[int, int]:
    with app.app_context():
        out = (
            db.session.scalar(sa.select(sa.func.count(Attachment.id))),
            db.session.scalar(sa.select(sa.func.count(Comment.id))),
        )
        db.session.remove()
    return out


def test_run_times_real_sessions_alternated_with_bare(
    world, database_url: str, tmp_path, capsys
) -> None:
    before = _counts(world)
    out = tmp_path / "run.json"
    for only in ("contact", "billing review ("):
        run.main(
            [
                "--database-url",
                database_url,
                "--iterations",
                "2",
                "--rotate",
                "3",
                "--only",
                only,
                "--json",
                str(out),
            ]
        )
        results = json.loads(out.read_text())
        assert results, only
        for r in results:
            assert r["median_ms"] > 0 and r["cpu_ms"] > 0 and r["bare_ms"] > 0
            assert r["times_bare"] == pytest.approx(r["median_ms"] / r["bare_ms"])
            assert r["queries"] > 0
    table = capsys.readouterr().out
    assert "| × bare |" in table and "contact revise & resubmit page" in table
    assert _counts(world) == before  # the attachments and comments are gone again


BURN = """
import sys, time
while time.process_time() < 0.3:
    pass
print("burnt", flush=True)
time.sleep(30)
"""


#: A "master" whose only child burns CPU: the test reads that master's children,
#: not the test process's own (under the whole suite, pytest has other children,
#: such as the browser tests' server, whose CPU would count).
MASTER = """
import subprocess, sys
subprocess.run([sys.executable, "-c", sys.argv[1]])
"""


def test_workers_cpu_reads_the_children_of_a_pid() -> None:
    import signal

    master = subprocess.Popen(
        [sys.executable, "-c", MASTER, BURN],
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        assert master.stdout is not None and master.stdout.readline() == b"burnt\n"
        assert 0.25 <= load.workers_cpu(master.pid) < 5  # ticks of 10 ms
        assert load.workers_cpu(os.getpid() + 10**7) == 0  # no such parent
    finally:
        os.killpg(master.pid, signal.SIGKILL)
        master.wait()
        master.stdout.close()


def test_the_bare_app_answers_ok() -> None:
    from benchmarks.bare_wsgi import app

    assert app.test_client().get("/__bench/bare").get_data() == b"ok"


@pytest.mark.skipif(
    shutil.which("wrk") is None and os.environ.get("CI") != "true",
    reason="needs wrk (apt-get install wrk; .ci/run installs it and never skips)",
)
def test_wrk_runs_a_fixed_request_count_against_the_bare_app() -> None:
    """The count ends the run (wrk alone would sleep for its whole -d)."""
    port = 8700 + os.getpid() % 200
    server = load.start_server(
        "sqlite://",
        "bench-smoke-secret-key-0123456789abcdef",
        port,
        2,
        1,
        app="benchmarks.bare_wsgi:app",
        probe_path="/__bench/bare",
    )
    try:
        result = load.wrk_run(
            port, [("", "/__bench/bare")], 400, 8, 1, seconds=30, master=server.pid
        )
    finally:
        load.stop_server(server)
    assert result.errors == 0
    assert 400 <= result.answered < 420  # a few may be in flight at the stop
    assert result.elapsed < 20  # not the 30 s of -d
    assert result.cpu_ms is not None and 0 < result.cpu_ms < 100
