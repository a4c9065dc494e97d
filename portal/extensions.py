"""Every Flask extension, unbound; each is initialised in the app factory."""

from __future__ import annotations

from typing import Any, cast

from flask_bootstrap import Bootstrap5
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_mail import Mail
from flask_migrate import Migrate
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


db = SQLAlchemy(model_class=Base)
migrate = Migrate()
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
