"""Issue 16 item 6: heavy libraries load where they are used, not at start-up.

Timing is benchmarks/startup.py's job; this checks what makes it fast without
a clock: a fresh interpreter that imports portal and builds the app has not
loaded fpdf, Alembic, Flask-Migrate or the libraries they pull in.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from benchmarks.startup import DEFERRED

ROOT = Path(__file__).resolve().parents[1]

CHILD = """
import json, sys
from portal import create_app
app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": "sqlite://"})
print(json.dumps({"modules": sorted(sys.modules), "commands": sorted(app.cli.commands)}))
"""


def test_start_up_loads_no_heavy_library() -> None:
    done = subprocess.run(
        [sys.executable, "-c", CHILD],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    found = json.loads(done.stdout.strip().splitlines()[-1])
    loaded = {name.split(".")[0] for name in found["modules"]}
    assert {"fpdf", "alembic", "flask_migrate"} <= set(DEFERRED)
    assert loaded.isdisjoint(DEFERRED), sorted(loaded & set(DEFERRED))
    assert "db" in found["commands"]  # `flask db …` is still registered


def test_flask_db_still_lists_the_migration_commands(app) -> None:
    result = app.test_cli_runner().invoke(args=["db", "--help"])
    assert result.exit_code == 0, result.output
    for command in ("upgrade", "downgrade", "current", "migrate"):
        assert command in result.output
    current = app.test_cli_runner().invoke(args=["db", "current"])
    assert current.exit_code == 0, current.output


def test_the_written_out_dummy_hash_matches_the_hasher() -> None:
    from portal.accounts import passwords

    assert not passwords._hasher.check_needs_rehash(passwords._DUMMY)
    assert passwords._hasher.verify(passwords._DUMMY, "not-a-real-password")
    assert not passwords.verify_password(None, "not-a-real-password")
