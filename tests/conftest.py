"""Shared fixtures: a real database per run (SQLite file or a fresh PostgreSQL
database), migrated with Alembic once, emptied after every test.

``TEST_DATABASE_URL`` (a PostgreSQL URL) runs the whole suite on PostgreSQL in a
database created for this run and dropped after it. Without it the suite runs
on SQLite. Tests that need PostgreSQL whatever the engine use ``pg_url``.

The clock is pinned for the whole run (tests/clock.py): noon UTC on
``PB_TEST_TODAY`` (default ``clock.DEFAULT_TODAY``), ticking on from there.
``today`` is that day, for building data; ``clock`` moves time within a test.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import date

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from portal import create_app
from portal.extensions import db

from . import clock as test_clock
from .helpers import build_world, built, make_staff

IN_CI = os.environ.get("CI", "").lower() == "true"
_traveller = None


def pytest_configure(config: pytest.Config) -> None:
    """Pin the clock before anything (collection, session fixtures) reads it."""
    global _traveller
    if _traveller is None:
        _traveller = test_clock.start()


def pytest_unconfigure(config: pytest.Config) -> None:
    global _traveller
    if _traveller is not None:
        _traveller.stop()
        _traveller = None


def pytest_report_header(config: pytest.Config) -> str:
    return (
        f"clock: pinned to {test_clock.pinned_today().isoformat()} 12:00 UTC "
        f"({test_clock.ENV_TODAY}), ticking"
    )


@pytest.fixture
def today() -> date:
    """The run's pinned day: build dated data from this, never from a clock."""
    return test_clock.pinned_today()


@pytest.fixture
def clock():
    """The test clock, to move within a test: ``clock.shift(timedelta(hours=25))``
    or ``clock.move_to(datetime(...), tick=False)``. Back to the run's clock after."""
    import time_machine

    from portal.timeutil import utcnow

    with time_machine.travel(utcnow(), tick=True) as coordinates:
        yield coordinates


def _is_pg(url: str | None) -> bool:
    return bool(url) and url.startswith("postgres")


def _create_pg_database(base_url: str) -> str:
    """Create a fresh database on the server of ``base_url``; return its URL."""
    url = make_url(base_url)
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    name = f"pb_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return url.set(database=name).render_as_string(hide_password=False)


def _drop_pg_database(db_url: str) -> None:
    url = make_url(db_url)
    name = url.database
    admin = sa.create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(
            sa.text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = :n AND pid <> pg_backend_pid()"
            ),
            {"n": name},
        )
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
    admin.dispose()


def _migrate(url: str, instance: str) -> None:
    from flask_migrate import upgrade

    app = create_app(_config(url, instance))
    with app.app_context():
        upgrade(revision="heads")
        db.engine.dispose()


def _config(url: str, instance: str) -> dict:
    return {
        "TESTING": True,
        "SECRET_KEY": "test-secret-key-not-for-production",
        "SQLALCHEMY_DATABASE_URI": url,
        "WTF_CSRF_ENABLED": False,
        "RATELIMIT_ENABLED": False,
        "MAIL_SUPPRESS_SEND": True,
        "UPLOAD_FOLDER": os.path.join(instance, "uploads"),
        "PUBLIC_BASE_URL": "http://portal.test",
        "SERVER_NAME": None,
    }


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The run's database, migrated to head."""
    base = os.environ.get("TEST_DATABASE_URL")
    instance = str(tmp_path_factory.mktemp("instance"))
    if _is_pg(base):
        url = _create_pg_database(base)
        try:
            _migrate(url, instance)
            yield url
        finally:
            _drop_pg_database(url)
    else:
        url = "sqlite:///" + os.path.join(instance, "test.db")
        _migrate(url, instance)
        yield url


@pytest.fixture(scope="session")
def pg_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A migrated PostgreSQL database, whatever engine the suite runs on.

    Skips without ``TEST_DATABASE_URL``/``TEST_POSTGRES_URL``, except under CI=true.
    """
    base = os.environ.get("TEST_DATABASE_URL")
    if not _is_pg(base):
        base = os.environ.get("TEST_POSTGRES_URL")
    if not _is_pg(base):
        if IN_CI:
            pytest.fail(
                "CI=true but neither TEST_DATABASE_URL nor TEST_POSTGRES_URL is set"
            )
        pytest.skip("needs PostgreSQL: set TEST_DATABASE_URL or TEST_POSTGRES_URL")
    instance = str(tmp_path_factory.mktemp("pg-instance"))
    url = _create_pg_database(base)
    try:
        _migrate(url, instance)
        yield url
    finally:
        _drop_pg_database(url)


def _empty_all_tables() -> None:
    tables = list(reversed(db.metadata.sorted_tables))
    if db.engine.dialect.name == "postgresql":
        names = ", ".join(f'"{t.name}"' for t in tables)
        db.session.execute(sa.text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    else:
        db.session.execute(sa.text("PRAGMA foreign_keys=OFF"))
        for table in tables:
            db.session.execute(table.delete())
        db.session.execute(
            sa.text("DELETE FROM sqlite_sequence")
        ) if _has_sequence() else None
        db.session.execute(sa.text("PRAGMA foreign_keys=ON"))
    db.session.commit()


def _has_sequence() -> bool:
    return bool(
        db.session.execute(
            sa.text("SELECT name FROM sqlite_master WHERE name='sqlite_sequence'")
        ).first()
    )


def make_test_app(url: str, tmp_path, **overrides):
    """An app on ``url`` with test settings (and ``overrides``)."""
    config = _config(url, str(tmp_path))
    config.update(overrides)
    return create_app(config)


@pytest.fixture
def app_config() -> dict:
    """Override in a test module to change settings of the ``app`` fixture."""
    return {}


@pytest.fixture
def app(database_url: str, tmp_path, app_config: dict):
    """The app on the run's database; tables are emptied after the test."""
    application = make_test_app(database_url, tmp_path, **app_config)
    yield application
    with application.app_context():
        db.session.remove()
        _empty_all_tables()
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def ctx(app):
    """An app context, for tests that use the models directly."""
    with app.app_context():
        yield app


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def world(app, today):
    """SPEC §4's worked example set up in the database (see helpers.build_world).

    Built in a short-lived app context (``helpers.built``). Tests that use the
    models directly also ask for ``ctx``.
    """
    return built(app, build_world, today)


class Auth:
    """Sign in helpers for the test client."""

    def __init__(self, app, client) -> None:
        self.app = app
        self.client = client

    def login_user(self, user_id: int) -> None:
        """Put a staff session in the client's cookie (as a real login would)."""
        with self.app.app_context():
            from portal.models import User

            user = db.session.get(User, user_id)
            account_id = user.get_id()
        self._set_session(account_id)

    def login_contact(self, contact_id: int) -> None:
        with self.app.app_context():
            from portal.models import Contact

            contact = db.session.get(Contact, contact_id)
            account_id = contact.get_id()
        self._set_session(account_id)

    def _set_session(self, account_id: str) -> None:
        from portal.timeutil import utcnow

        with self.client.session_transaction() as sess:
            sess.clear()
            sess["_user_id"] = account_id
            sess["_fresh"] = True
            sess["started"] = int(utcnow().timestamp())


@pytest.fixture
def auth(app, client):
    return Auth(app, client)


@pytest.fixture
def users(app):
    """One active user per role: {"admin": id, "finance": id, "viewer": id}."""
    with app.app_context():
        out = make_staff()
        db.session.commit()
        db.session.remove()
    return out


@pytest.fixture
def fresh_url(tmp_path) -> Iterator[str]:
    """An empty database on the suite's engine."""
    base = os.environ.get("TEST_DATABASE_URL")
    if _is_pg(base):
        url = _create_pg_database(base)
        try:
            yield url
        finally:
            _drop_pg_database(url)
    else:
        yield "sqlite:///" + str(tmp_path / "migration.db")
