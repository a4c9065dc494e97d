"""Change generations: what a rendered-fragment cache keys on (issue 16 item 2).

A page cached as rendered HTML may be served again only while nothing it shows
has changed. Instead of reading everything a page shows to find out, every
write bumps a counter of the *scope* it belongs to, in the same transaction as
the write (a rolled-back write bumps nothing; a committed one is seen together
with its counter):

* ``commitments.cache_gen``: anything of one commitment (its SOV, change
  orders, invitations, billings and their lines, carries, comments, snapshots,
  attachments, export items);
* ``projects.cache_gen``: the project's own settings and terms, its periods,
  client contracts and claims, and any commitment added to or removed from it;
* ``fragment_generation.gen`` (one row): anything else a page may show (users',
  contacts' and vendors' names, ERP settings) and every bulk ``UPDATE``/
  ``DELETE``/``INSERT`` run through the session that the ORM cannot attribute
  to one commitment.

Each bump writes a new random value (:func:`fresh`), so a key never comes
back with other contents (a database restored from a backup, or emptied and
filled again).

A page's key is then the counters of the scopes it reads plus the viewer and
the clock-dependent facts it shows, read in one statement before the page's
rows (:func:`billing_counters`, :func:`period_counters`, the contact page's
``drafts.own_billing_version``). Tables no page shows (audit events, the outbox, sign-in links and
failures, API tokens) bump nothing, and neither do the bookkeeping columns of
users and contacts (last sign-in, failed attempts, session and token versions).

A model in none of :data:`SCOPES`, :data:`GLOBAL` and :data:`UNSHOWN` bumps
the global counter too (safe, slower); ``tests/test_generations.py`` fails for
it, so that a new model gets its scope.
"""

from __future__ import annotations

import functools
import secrets
from collections.abc import Callable, Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState, Session

from portal import models as m
from portal.extensions import db, rowcount

#: Execution option of a bulk statement whose rows' scopes are bumped by its
#: caller (:func:`touch`) or that changes nothing a page shows.
COVERED = "generations_covered"
#: ``.execution_options(**COVERED_OPTIONS)``
COVERED_OPTIONS = {COVERED: True}

FRAGMENT_GENERATION = m.fragment_generation

#: What a row says about its scope: ("commitment" | "project", table, id column)
#: where table is the table whose row id the value names: commitments and
#: projects directly, or a parent (billings, change orders, client contracts)
#: whose commitment or project is looked up in the bump's own statement.
Scope = tuple[str, str, Callable[[Any], Any]]

SCOPES: dict[type, Scope] = {
    m.Commitment: ("commitment", "commitments", lambda o: o.id),
    m.SovLine: ("commitment", "commitments", lambda o: o.commitment_id),
    m.ChangeOrder: ("commitment", "commitments", lambda o: o.commitment_id),
    m.ChangeOrderItem: ("commitment", "change_orders", lambda o: o.change_order_id),
    m.Invitation: ("commitment", "commitments", lambda o: o.commitment_id),
    m.Billing: ("commitment", "commitments", lambda o: o.commitment_id),
    m.BillingLine: ("commitment", "billings", lambda o: o.billing_id),
    m.BillingCarry: ("commitment", "billings", lambda o: o.billing_id),
    m.BillingCarryLine: ("commitment", "billings", lambda o: o.billing_id),
    m.Comment: ("commitment", "billings", lambda o: o.billing_id),
    m.RevisionSnapshot: ("commitment", "billings", lambda o: o.billing_id),
    m.Attachment: ("commitment", "billings", lambda o: o.billing_id),
    m.ExportBatchItem: ("commitment", "billings", lambda o: o.billing_id),
    m.Project: ("project", "projects", lambda o: o.id),
    m.BillingPeriod: ("project", "projects", lambda o: o.project_id),
    m.ClientContract: ("project", "projects", lambda o: o.project_id),
    m.ClientSovLine: ("project", "client_contracts", lambda o: o.client_contract_id),
    m.CostCodeMapping: (
        "project",
        "client_contracts",
        lambda o: o.client_contract_id,
    ),
    m.ClientClaim: ("project", "client_contracts", lambda o: o.client_contract_id),
    m.ClientClaimLine: ("project", "client_claims", lambda o: o.client_claim_id),
}

#: Models no cached page shows: their writes bump nothing.
UNSHOWN: frozenset[type] = frozenset(
    {
        m.AuditEvent,
        m.OutboxMessage,
        m.LoginLink,
        m.LinkRequest,
        m.SignInFailure,
        m.ApiToken,
        # A batch's own row (file, totals, reversal): its billings' export
        # marks are written with touch_billings.
        m.ExportBatch,
    }
)

#: Models whose writes bump the global counter (shown on pages of many
#: commitments and projects, rarely written).
GLOBAL: frozenset[type] = frozenset(
    {m.User, m.Contact, m.Vendor, m.ErpSettings, m.ErpCostCode}
)

#: Columns of shown models that no page shows (a change of only these bumps
#: nothing): sign-in bookkeeping.
BOOKKEEPING: dict[type, frozenset[str]] = {
    m.User: frozenset(
        {
            "last_login_at",
            "failed_logins",
            "locked_until",
            "session_version",
            "password_hash",
        }
    ),
    m.Contact: frozenset({"token_version"}),
}

_TABLES_UNSHOWN: frozenset[str] = frozenset(
    sa.inspect(cls).local_table.name for cls in UNSHOWN
)
#: The tables whose rows carry a counter.
_TARGETS: dict[str, sa.Table] = {
    "commitment": sa.inspect(m.Commitment).local_table,  # type: ignore[dict-item]
    "project": sa.inspect(m.Project).local_table,  # type: ignore[dict-item]
}


def _scope_of(obj: Any) -> tuple[str, str, Any] | None:
    """(kind, table, id) of an object's scope, or None if it bumps nothing;
    ("global", "", None) for anything not attributed."""
    cls = type(obj)
    if cls in UNSHOWN:
        return None
    scope = SCOPES.get(cls)
    if scope is None:
        for base in cls.__mro__[1:]:
            scope = SCOPES.get(base)
            if scope is not None:
                break
    if scope is None:
        quiet = BOOKKEEPING.get(cls)
        if quiet is not None and not _changed_beyond(obj, quiet):
            return None
        return ("global", "", None)
    kind, table, ident = scope
    value = ident(obj)
    if value is None:
        return ("global", "", None)
    return (kind, table, value)


def _changed_beyond(obj: Any, quiet: frozenset[str]) -> bool:
    """Whether a flushed object changed any attribute outside ``quiet`` (a new
    or deleted object always has)."""
    state = sa.inspect(obj)
    if state.pending or state.deleted or state.was_deleted or not state.has_identity:
        return True
    return any(
        attr.history.has_changes() for attr in state.attrs if attr.key not in quiet
    )


#: The commitment or project ids of parent rows (a bump's own subquery).
_LOOKUPS: dict[tuple[str, str], Callable[[list[Any]], Any]] = {
    ("commitment", "change_orders"): lambda ids: sa.select(
        m.ChangeOrder.commitment_id
    ).where(m.ChangeOrder.id.in_(ids)),
    ("commitment", "billings"): lambda ids: sa.select(m.Billing.commitment_id).where(
        m.Billing.id.in_(ids)
    ),
    ("project", "client_contracts"): lambda ids: sa.select(
        m.ClientContract.project_id
    ).where(m.ClientContract.id.in_(ids)),
    ("project", "client_claims"): lambda ids: (
        sa.select(m.ClientContract.project_id)
        .join(m.ClientClaim, m.ClientClaim.client_contract_id == m.ClientContract.id)
        .where(m.ClientClaim.id.in_(ids))
    ),
}


def _bump(connection: sa.Connection, scopes: Iterable[tuple[str, str, Any]]) -> None:
    """One UPDATE per scope kind and parent table."""
    wanted: dict[tuple[str, str], set[Any]] = {}
    bump_global = False
    for kind, table, value in scopes:
        if kind == "global":
            bump_global = True
        else:
            wanted.setdefault((kind, table), set()).add(value)
    for (kind, table), ids in sorted(wanted.items()):
        target = _TARGETS[kind]
        ordered = sorted(ids)
        if table == target.name:
            where = target.c.id.in_(ordered)
        else:
            where = target.c.id.in_(_LOOKUPS[(kind, table)](ordered))
        connection.execute(sa.update(target).where(where).values(cache_gen=fresh()))
    if bump_global:
        _bump_global(connection)


def _bump_global(connection: sa.Connection) -> None:
    result = connection.execute(
        sa.update(FRAGMENT_GENERATION)
        .where(FRAGMENT_GENERATION.c.id == 1)
        .values(gen=fresh())
    )
    if rowcount(result) == 0:  # the row was deleted (emptied tables): put it back
        connection.execute(sa.insert(FRAGMENT_GENERATION).values(id=1, gen=fresh()))


def fresh() -> int:
    """A new counter value: random, not ``+ 1``, so a database restored from a
    backup (or emptied and refilled) never reaches a value again with other
    contents behind it while a worker still caches pages under it."""
    return secrets.randbits(62) + 1


def _after_flush(session: Session, _context: Any) -> None:
    scopes = set()
    for obj in (*session.new, *session.dirty, *session.deleted):
        if obj in session.dirty and not session.is_modified(obj):
            continue
        scope = _scope_of(obj)
        if scope is not None:
            scopes.add(scope)
        if isinstance(obj, m.Commitment) and (
            obj in session.new or obj in session.deleted
        ):
            scopes.add(("project", "projects", obj.project_id))  # the project's lists
    if scopes:
        _bump(session.connection(), scopes)


def _bulk(state: ORMExecuteState) -> None:
    """A bulk statement through the session bumps the global counter unless it
    writes a table no page shows or says its rows' scopes are bumped."""
    if not (state.is_update or state.is_delete or state.is_insert):
        return
    if state.execution_options.get(COVERED) or (
        state.statement.get_execution_options().get(COVERED)
    ):
        return
    table = getattr(state.statement, "table", None)
    name = getattr(table, "name", None)
    if name in _TABLES_UNSHOWN or name == FRAGMENT_GENERATION.name:
        return
    _bump_global(state.session.connection())


def touch(obj: Any) -> None:
    """Bump the scope of ``obj`` now (a bulk statement wrote its rows)."""
    scope = _scope_of(obj) or ("global", "", None)
    _bump(db.session.connection(), [scope])


def touch_billings(billing_ids: Iterable[int]) -> None:
    """Bump the commitments of these billings now (a bulk statement wrote
    them): one UPDATE, instead of the global counter's every page."""
    ids = sorted(set(billing_ids))
    if ids:
        _bump(db.session.connection(), [("commitment", "billings", i) for i in ids])


def register() -> None:
    """Listen on every session (once)."""
    if not event.contains(Session, "after_flush", _after_flush):
        event.listen(Session, "after_flush", _after_flush)
        event.listen(Session, "do_orm_execute", _bulk)


#: Two primes: a project's commitments' counters are summed modulo each (a
#: changed counter leaves both sums as they were with odds of about 1e-19).
_MODULI = (2_147_483_647, 2_147_483_629)


def project_digest_columns(project_id: Any) -> list[sa.ScalarSelect[int]]:
    """What changes whenever any commitment of the project (``project_id``: a
    value or a column) does, as columns of a key statement: their count and
    their counters' sums modulo two primes (the counters are random, so a sum
    never comes back by chance)."""
    where = m.Commitment.project_id == project_id
    return [
        sa.select(sa.func.count(m.Commitment.id)).where(where).scalar_subquery(),
        *(
            sa.select(sa.func.coalesce(sa.func.sum(m.Commitment.cache_gen % p), 0))
            .where(where)
            .scalar_subquery()
            for p in _MODULI
        ),
    ]


def global_column() -> sa.ScalarSelect[int]:
    """The global counter as a column of a page's key statement (read in the
    same statement as the counters it goes with)."""
    return sa.select(
        sa.func.coalesce(sa.func.max(FRAGMENT_GENERATION.c.gen), 0)
    ).scalar_subquery()


def global_value() -> int:
    """The global counter alone (a cached piece that shows only globally
    scoped rows, such as the vendors). One statement, built once."""
    return int(db.session.execute(_global_statement()).scalar_one())


@functools.cache
def _global_statement() -> Any:
    return sa.select(global_column())


def billing_counters(billing_id: int) -> tuple[Any, ...] | None:
    """A billing's version and status with its commitment's, its project's
    and the global counter: what a page of one billing shows, as counters
    (None: no such billing). One statement, built once."""
    row = db.session.execute(_billing_statement(), {"billing_id": billing_id}).first()
    return None if row is None else tuple(row)


def period_counters(period_id: int) -> tuple[Any, ...] | None:
    """The counters of everything a page of one period of a project shows: the
    project's, the global one and the digest of all the project's commitments
    (None: no such period). One statement, built once."""
    row = db.session.execute(_period_statement(), {"period_id": period_id}).first()
    return None if row is None else tuple(row)


@functools.cache
def _billing_statement() -> Any:
    return (
        sa.select(
            m.Billing.version,
            m.Billing.status,
            m.Commitment.cache_gen,
            m.Project.cache_gen,
            global_column(),
        )
        .join(m.Commitment, m.Commitment.id == m.Billing.commitment_id)
        .join(m.Project, m.Project.id == m.Commitment.project_id)
        .where(m.Billing.id == sa.bindparam("billing_id"))
    )


@functools.cache
def _period_statement() -> Any:
    return (
        sa.select(
            m.Project.cache_gen,
            global_column(),
            *project_digest_columns(m.Project.id),
        )
        .join(m.BillingPeriod, m.BillingPeriod.project_id == m.Project.id)
        .where(m.BillingPeriod.id == sa.bindparam("period_id"))
    )


def global_generation() -> int:
    """The global counter (0 before migration 0013's row exists)."""
    return (
        db.session.scalar(
            sa.select(FRAGMENT_GENERATION.c.gen).where(FRAGMENT_GENERATION.c.id == 1)
        )
        or 0
    )
