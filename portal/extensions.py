"""Every Flask extension, unbound; each is initialised in the app factory."""

from __future__ import annotations

import importlib
from typing import Any, cast

import click
from flask import Flask
from flask_bootstrap import Bootstrap5
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_mail import Mail
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect
from sqlalchemy import MetaData, event
from sqlalchemy.engine import CursorResult, Engine, Result
from sqlalchemy.orm import DeclarativeBase

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """The typed declarative base of every model (``db.Model`` is built on it)."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class LazyGroup(click.Group):
    """A click group that imports its real group only when it is run.

    ``portal --help`` lists it by its own short help; ``portal db …`` (or
    ``db --help``) imports ``module:attr`` and hands the command line to it.
    """

    def __init__(self, name: str, target: str, help_text: str) -> None:
        super().__init__(name, help=help_text, short_help=help_text)
        self.target = target

    def real(self) -> click.Group:
        module, attr = self.target.split(":")
        return cast(click.Group, getattr(importlib.import_module(module), attr))

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        # The returned context's command is the real group: click invokes that.
        return self.real().make_context(info_name, args, parent=parent, **extra)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.real().list_commands(ctx))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return self.real().get_command(ctx, cmd_name)


class LazyMigrateConfig:
    """``app.extensions["migrate"]``, built by Flask-Migrate on first use.

    Flask-Migrate imports Alembic (and Mako, Pygments: ~0.3 s) at import time,
    which every worker and CLI call would pay; only ``db …`` commands, the demo
    and the tests' set-up migrate, and they reach Flask-Migrate through this.
    """

    def __init__(self, db: Any, directory: str, **kwargs: Any) -> None:
        self._args = (db, directory, kwargs)
        self._real: Any = None

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        if self._real is None:
            from flask_migrate import Migrate, _MigrateConfig

            db, directory, kwargs = self._args
            migrate = Migrate(db=db, directory=directory, **kwargs)
            self._real = _MigrateConfig(migrate, db, **migrate.alembic_ctx_kwargs)
        return getattr(self._real, name)


class LazyMigrate:
    """Flask-Migrate's ``Migrate``, without importing it until it is used."""

    def init_app(self, app: Flask, db: Any, directory: str, **kwargs: Any) -> None:
        """What ``Migrate.init_app`` does: the extension entry and ``flask db``."""
        app.extensions["migrate"] = LazyMigrateConfig(db, directory, **kwargs)
        app.cli.add_command(
            LazyGroup("db", "flask_migrate.cli:db", "Perform database migrations.")
        )


db = SQLAlchemy(model_class=Base)
migrate = LazyMigrate()
login_manager = LoginManager()
csrf = CSRFProtect()
mail = Mail()
bootstrap = Bootstrap5()
limiter = Limiter(key_func=get_remote_address, default_limits=[])


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, connection_record) -> None:
    """Enforce foreign keys and wait on locks instead of failing, on SQLite only."""
    module = type(dbapi_connection).__module__
    if module.startswith("sqlite3"):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.close()


@event.listens_for(Engine, "savepoint")
def _sqlite_begin_before_savepoint(conn, name) -> None:
    """Open the transaction before a first SAVEPOINT, on SQLite only.

    pysqlite starts a transaction only before INSERT/UPDATE/DELETE, so a
    SAVEPOINT issued first opens one of SQLite's own, and its RELEASE then
    commits everything for good: a later failure in the same request could no
    longer roll back what the savepoint wrote. A BEGIN first keeps the savepoint
    nested in the request's transaction, as on PostgreSQL.
    """
    dbapi_connection = conn.connection.dbapi_connection
    if (
        type(dbapi_connection).__module__.startswith("sqlite3")
        and not dbapi_connection.in_transaction
    ):
        conn.exec_driver_sql("BEGIN")


def rowcount(result: Result[Any]) -> int:
    """The rows an UPDATE or DELETE matched (``Session.execute`` types it as Result)."""
    return cast("CursorResult[Any]", result).rowcount
