"""Sortable, paginated lists: a whitelist of columns per list, parsed from the
``sort`` query argument (``name`` ascending, ``-name`` descending) into an
ORDER BY with a unique tiebreaker, and a page whose count is one cheap
statement over the filtered ids.

A view declares its columns once::

    BILLING_SORTS = SortSpec(
        {"vendor": Vendor.name, "updated": Billing.updated_at},
        default="-updated",
        tiebreak=Billing.id,
    )
    sort = BILLING_SORTS.parse(request.args)
    pagination = paginate(sort.apply(stmt), Billing.id, page=..., per_page=...)

and the template draws each header with ``sort_th`` from ``_macros.html``; the
page links carry ``sort.url_args(filters)``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from flask_sqlalchemy.pagination import Pagination, SelectPagination
from sqlalchemy.orm import Session

from portal.extensions import db

SORT_ARG = "sort"


@dataclass(frozen=True)
class Inverted:
    """A secondary column that runs against its key's direction (project
    ascending, its newest period first)."""

    column: Any


@dataclass(frozen=True)
class SortSpec:
    """The sortable columns of one list (key → column), its default and tiebreak.

    ``nullable`` keys sort their NULLs last in both directions (SQLite and
    PostgreSQL disagree otherwise); ``desc_first`` keys (dates, amounts) sort
    descending on the first click.
    """

    columns: Mapping[str, Any]
    default: str
    tiebreak: Any
    nullable: frozenset[str] = field(default_factory=frozenset)
    desc_first: frozenset[str] = field(default_factory=frozenset)
    #: The query argument (two lists on one page need two).
    arg: str = SORT_ARG

    def __post_init__(self) -> None:
        if self.default.lstrip("-") not in self.columns:
            raise ValueError(f"default sort {self.default!r} is not a column")

    def parse(self, args: Mapping[str, str]) -> Sort:
        """The sort the ``sort`` argument asks for; the default when unknown."""
        raw = (args.get(self.arg) or "").strip()[:40]
        key = raw.lstrip("-")
        if key not in self.columns or raw.count("-") > 1:
            raw = self.default
            key = raw.lstrip("-")
        return Sort(self, key, raw.startswith("-"))


@dataclass(frozen=True)
class Sort:
    """One list's current order."""

    spec: SortSpec
    key: str
    descending: bool

    @property
    def arg(self) -> str:
        return ("-" if self.descending else "") + self.key

    @property
    def is_default(self) -> bool:
        return self.arg == self.spec.default

    def order_by(self) -> list[Any]:
        """ORDER BY clauses: the column, then the tiebreak, in one direction."""
        column = self.spec.columns[self.key]
        clauses = []
        for col in column if isinstance(column, tuple) else (column,):
            down = self.descending
            if isinstance(col, Inverted):
                col, down = col.column, not down
            clause = col.desc() if down else col.asc()
            if self.key in self.spec.nullable:
                clause = clause.nulls_last()
            clauses.append(clause)
        tiebreak = self.spec.tiebreak
        clauses.append(tiebreak.desc() if self.descending else tiebreak.asc())
        return clauses

    def apply(self, stmt: sa.Select) -> sa.Select:
        """``stmt`` ordered by this sort (any earlier ORDER BY replaced)."""
        return stmt.order_by(None).order_by(*self.order_by())

    def state(self, key: str) -> str | None:
        """The header's aria-sort value: ascending, descending or None."""
        if key != self.key:
            return None
        return "descending" if self.descending else "ascending"

    def next(self, key: str) -> str:
        """The ``sort`` argument a click on column ``key`` asks for."""
        if key == self.key:
            return key if self.descending else f"-{key}"
        return f"-{key}" if key in self.spec.desc_first else key

    def url_args(self, args: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """``args`` plus this sort (left out when it is the default)."""
        out = dict(args or {})
        out.pop(self.spec.arg, None)
        out.pop("page", None)
        if not self.is_default:
            out[self.spec.arg] = self.arg
        return out

    def link_args(
        self, key: str, args: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """The URL values of column ``key``'s header link: ``args`` (the list's
        filters and path values), the toggled sort, and no page (back to 1)."""
        out = dict(args or {})
        out.pop("page", None)
        out[self.spec.arg] = self.next(key)
        return out


class CountedPagination(SelectPagination):
    """A page of ``select`` whose total is counted on a bare select of ids.

    Flask-SQLAlchemy's own count wraps the whole statement (every column, its
    joins for sorting) in a subquery; here the count reads only the id column
    with the statement's filters and joins, and no ORDER BY.
    """

    def _query_count(self) -> int:
        count = self._query_args["count_select"]
        session: Session = self._query_args["session"]
        return int(session.execute(count).scalar() or 0)


def count_of(stmt: sa.Select, id_column: Any) -> sa.Select:
    """SELECT count(*) over ``stmt``'s ids: its joins and filters, no ORDER BY."""
    ids = stmt.with_only_columns(id_column, maintain_column_froms=True).order_by(None)
    return sa.select(sa.func.count()).select_from(ids.subquery())


def paginate(
    stmt: sa.Select,
    id_column: Any,
    *,
    page: int,
    per_page: int,
    count: sa.Select | None = None,
) -> CountedPagination:
    """One page of ``stmt`` and its total, counted by ``count`` (default: ids)."""
    return CountedPagination(
        select=stmt,
        count_select=count if count is not None else count_of(stmt, id_column),
        session=db.session(),
        page=page,
        per_page=per_page,
        max_per_page=None,
        error_out=False,
    )


class ListPagination(Pagination):
    """A page of a list already in memory (rows computed in Python, such as the
    period dashboard's), with Flask-SQLAlchemy's page links. A page past the
    last shows the last one (a link kept from before rows went away); with
    ``holding``, the page of the first item it accepts, if any (a link to a row)."""

    def __init__(
        self,
        items: list[Any],
        page: int,
        per_page: int,
        holding: Callable[[Any], bool] | None = None,
    ) -> None:
        if holding is not None:
            at = next((i for i, item in enumerate(items) if holding(item)), None)
            if at is not None:
                page = at // per_page + 1
        pages = max(1, -(-len(items) // per_page))
        super().__init__(
            page=min(page, pages),
            per_page=per_page,
            max_per_page=None,
            error_out=False,
            items=items,
        )

    def _query_items(self) -> list[Any]:
        start = (self.page - 1) * self.per_page
        return self._query_args["items"][start : start + self.per_page]

    def _query_count(self) -> int:
        return len(self._query_args["items"])
