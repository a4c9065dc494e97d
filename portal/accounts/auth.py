"""Sessions for back-office users and contacts, and the role checks (SPEC §1, §6).

Flask-Login has one ``user_loader``; the session id is prefixed and carries a
version (``u:<id>:<session_version>``, ``c:<id>:<token_version>``), so bumping the
version ends every copy of the session on its next request.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from functools import wraps
from typing import Any, TypeVar
from urllib.parse import urlsplit

from flask import Flask, abort, current_app, request, session, url_for
from flask_login import current_user

from portal.extensions import db, login_manager
from portal.models import Contact, User
from portal.timeutil import utcnow

F = TypeVar("F", bound=Callable[..., Any])

#: Session key holding when the session began (epoch seconds).
SESSION_STARTED = "started"
#: Session key holding the id of the magic link a contact session began with.
SESSION_LINK = "link"


def init_app(app: Flask) -> None:
    """Wire Flask-Login to both kinds of account."""
    login_manager.login_view = "admin.login"
    login_manager.login_message = "Please sign in to continue."
    login_manager.login_message_category = "warning"
    login_manager.session_protection = "basic"
    login_manager.user_loader(load_account)


def load_account(account_id: str) -> User | Contact | None:
    """Load the user or contact of a session id; None for anything stale or odd."""
    try:
        kind, raw_id, raw_version = account_id.split(":")
        pk, version = int(raw_id), int(raw_version)
    except (ValueError, AttributeError):
        return None
    started = session.get(SESSION_STARTED)
    if kind == "u":
        user = db.session.get(User, pk)
        if user is None or not user.active or user.session_version != version:
            return None
        hours = current_app.config["STAFF_SESSION_HOURS"]
        return user if _fresh(started, hours) else None
    if kind == "c":
        live = True
        from portal.accounts.tokens import contact_of_live_link

        if SESSION_LINK in session:
            # A session started from a link ends on sign-out, copies included.
            link_id = session[SESSION_LINK]
            if not isinstance(link_id, int):
                return None
            contact, live = contact_of_live_link(pk, link_id)
        else:
            # The same statement (a cached page's key is read with it); no
            # link to be live.
            contact = contact_of_live_link(pk, None)[0]
        if contact is None or not contact.active or contact.token_version != version:
            return None
        if not live:
            return None
        hours = current_app.config["CONTACT_SESSION_HOURS"]
        return contact if _fresh(started, hours) else None
    return None


def _fresh(started: Any, hours: int) -> bool:
    if not isinstance(started, int | float):
        return False
    age = utcnow().timestamp() - float(started)
    return 0 <= age <= timedelta(hours=hours).total_seconds()


def mark_session_started() -> None:
    """Record the start of a new session (call right after login_user)."""
    session[SESSION_STARTED] = int(utcnow().timestamp())
    session.permanent = True


def role_required(*roles: str) -> Callable[[F], F]:
    """Allow the view only to signed-in staff with one of ``roles``."""

    def decorator(view: F) -> F:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if not current_user.is_authenticated or not current_user.is_staff:
                return login_manager.unauthorized()
            if not current_user.has_role(*roles):
                abort(403)
            return view(*args, **kwargs)

        wrapped.allowed_roles = roles  # type: ignore[attr-defined]
        return wrapped  # type: ignore[return-value]

    return decorator


def contact_required(view: F) -> F:
    """Allow the view only to a contact with a live session."""

    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if not current_user.is_authenticated or not current_user.is_contact:
            abort(403) if current_user.is_authenticated else abort(401)
        return view(*args, **kwargs)

    return wrapped  # type: ignore[return-value]


#: Where each staff role lands after signing in (issue 14 item 12): on what it
#: does. Finance exports; admins and viewers see what needs attention.
HOME_ENDPOINTS = {"finance": "exports.index"}


def home_endpoint(role: str | None) -> str:
    """The endpoint a staff user of ``role`` lands on."""
    return HOME_ENDPOINTS.get(role or "", "admin.index")


def safe_next(target: str | None, default_endpoint: str = "admin.index") -> str:
    """``target`` if it is a local path, else the default page (no open redirect)."""
    fallback = url_for(default_endpoint)
    if not target:
        return fallback
    target = target.strip()
    if any(ch in target for ch in "\\\r\n\t\x00") or not target.startswith("/"):
        return fallback
    if target.startswith("//"):
        return fallback
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return fallback
    return target


def remote_addr() -> str | None:
    """The client's address, for audit events and throttles."""
    try:
        return request.remote_addr
    except RuntimeError:
        return None
