"""A page's cache key read in the same statement as the signed-in contact.

Every portal request loads its contact (with the sign-in link the session
started from) in one statement before the view runs. A cached page then reads
its key (:mod:`portal.web.fragments`) in a second one. A page registered here
has its key's columns added to the contact's statement instead, as a
subquery joined on nothing, so a cached view runs **one** statement: the
request's database work is the contact's row and the counters, in one round
trip and one snapshot.

The key is computed for the contact id of the session, the same id the row is
loaded for, and kept on ``flask.g`` for this request only, with the view
arguments it was read for; the view takes it only for the same contact and
arguments (:func:`taken`), else reads its key itself. A contact the loader then
refuses (inactive, signed out, another token version) never reaches a view.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from flask import g, has_request_context, request


@dataclass(frozen=True)
class Prefetch:
    """What one endpoint's key needs: its subquery (built once; bind
    parameter ``contact_id`` is the session's contact) and its parameters
    from the request (None: nothing to prefetch for this request)."""

    subquery: Callable[[], sa.Subquery]
    params: Callable[[Mapping[str, Any]], dict[str, Any] | None]


_REGISTRY: dict[str, Prefetch] = {}


def register(
    endpoint: str,
    subquery: Callable[[], sa.Subquery],
    params: Callable[[Mapping[str, Any]], dict[str, Any] | None],
) -> None:
    """Read ``subquery``'s columns with the contact on GETs of ``endpoint``."""
    _REGISTRY[endpoint] = Prefetch(subquery, params)


def wanted() -> tuple[str, dict[str, Any]] | None:
    """This request's endpoint and parameters, if its key is prefetched."""
    if not has_request_context() or request.method != "GET":
        return None
    endpoint = request.endpoint
    entry = _REGISTRY.get(endpoint or "")
    if entry is None:
        return None
    params = entry.params(request.view_args or {})
    if params is None:
        return None
    return endpoint or "", params


@functools.cache
def statement(base: Any, endpoint: str) -> Any:
    """``base`` (the contact's statement) with ``endpoint``'s key columns,
    built once per endpoint."""
    sub = _REGISTRY[endpoint].subquery()
    return base.outerjoin(sub, sa.true()).add_columns(*sub.c)


def keep(endpoint: str, contact_id: int, params: dict[str, Any], row: Any) -> None:
    """Keep the key's columns read with the contact for this request."""
    g.prefetched = (endpoint, contact_id, params, tuple(row))


def taken(
    endpoint: str, contact_id: int, params: dict[str, Any]
) -> tuple[Any, ...] | None:
    """The key's columns read with the contact, if they were read for this
    endpoint, contact and parameters (None: read them yourself)."""
    kept = g.pop("prefetched", None) if has_request_context() else None
    if kept is None or kept[:3] != (endpoint, contact_id, params):
        return None
    return kept[3]
