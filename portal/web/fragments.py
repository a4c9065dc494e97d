"""A rendered-page cache keyed on what the page shows (issue 16 item 2).

A page that is read far more often than it changes (a contact's billing, a
billing under review) is rendered once per *version* of what it shows and then
served from memory. The caller builds the key from the change counters of the
scopes the page reads (:mod:`portal.generations`, bumped in the writing
transaction), the viewer and any clock-dependent fact the page states (a
period past its due date). Read the global counter **before** loading the
page's rows: a write committing in between then leaves a newer page under an
older key (served only to requests that began earlier), never an older page
under a newer key.

Two things in a page are per request and never cached: the CSRF token (the
cached HTML holds a placeholder, replaced by this session's token on every
serve) and the flashed messages (a marker, replaced by the messages of this
request). Each worker keeps its own LRU of at most ``FRAGMENT_CACHE_BYTES``
characters (0 turns the cache off); a restart (a deploy) empties it, so the
templates' code needs no place in the key.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable

from cachetools import LRUCache
from flask import (
    Flask,
    Response,
    current_app,
    g,
    make_response,
    render_template,
    session,
)
from flask_login import current_user
from flask_wtf.csrf import generate_csrf
from markupsafe import Markup

from portal.web.templating import rendered

#: Stands for the CSRF token in cached HTML (never sent to a browser).
CSRF_PLACEHOLDER = "\x00csrf-token\x00"
#: Stands for the flashed messages in cached HTML.
FLASH_MARKER = "\x00flashed-messages\x00"
#: Response header saying whether the page came from the cache (hit/miss/off).
HEADER = "X-Fragment-Cache"

_lock = threading.Lock()


def register(app: Flask) -> None:
    """The template globals that leave placeholders while a page is cached,
    and this worker's cache."""
    app.extensions["fragments"] = LRUCache(
        maxsize=max(int(app.config["FRAGMENT_CACHE_BYTES"]), 1),
        getsizeof=len,
    )
    # Flask-WTF puts its generate_csrf in both the globals (imported macros)
    # and a context processor (every template): this one comes later and wins.
    app.jinja_env.globals["csrf_token"] = csrf_token
    app.context_processor(lambda: {"csrf_token": csrf_token})
    app.jinja_env.globals["fragment_rendering"] = rendering
    app.jinja_env.globals["FLASH_MARKER"] = FLASH_MARKER


def rendering() -> bool:
    """Whether the page being rendered is going into the cache."""
    return bool(g.get("fragment_rendering"))


def csrf_token() -> str:
    """The session's CSRF token, or its placeholder in a page being cached."""
    return CSRF_PLACEHOLDER if rendering() else generate_csrf()


def enabled() -> bool:
    return int(current_app.config["FRAGMENT_CACHE_BYTES"]) > 0


def page(key: Hashable | None, render: Callable[[], str]) -> Response:
    """The page for ``key``: from this worker's cache, or rendered by
    ``render`` (a ``render_template`` call) and kept; with this request's CSRF
    token and flashed messages put in. With the cache off (``key`` is then
    not needed), rendered as usual."""
    if key is None or not enabled():
        response = make_response(render())
        response.headers[HEADER] = "off"
        return response
    html, state = _kept(key, render)
    response = make_response(_personal(html))
    response.headers[HEADER] = state
    return response


def part(key: Hashable, render: Callable[[], str]) -> Markup:
    """A piece of a page that holds no token and no message (a long list of
    options): from this worker's cache under ``key``, or rendered by
    ``render`` and kept. The caller's key holds the counters of what it shows."""
    if not enabled():
        return rendered(render())
    html, _ = _kept(key, render)
    return rendered(html)


def _kept(key: Hashable, render: Callable[[], str]) -> tuple[str, str]:
    """The HTML kept under ``key`` ("hit"), or rendered by ``render`` with
    placeholders for what is per request, and kept ("miss")."""
    cache: LRUCache[Hashable, str] = current_app.extensions["fragments"]
    with _lock:
        html = cache.get(key)
    if html is not None:
        return html, "hit"
    g.fragment_rendering = True
    try:
        html = render()
    finally:
        g.fragment_rendering = False
    if len(html) <= cache.maxsize:
        with _lock:
            cache[key] = html
    return html, "miss"


def _personal(html: str) -> str:
    """The cached HTML with this request's token and messages."""
    if CSRF_PLACEHOLDER in html:
        html = html.replace(CSRF_PLACEHOLDER, generate_csrf())
    if FLASH_MARKER in html:
        # No template to render when there is nothing to flash (most views).
        flashed = render_template("_flashes.html") if "_flashes" in session else ""
        html = html.replace(FLASH_MARKER, flashed, 1)
    return html


def viewer() -> tuple[object, ...]:
    """The signed-in account as every cached page's key needs it: who (with
    the session version), the name and role the page's header shows, and
    whether the account is active."""
    user = current_user
    return (user.get_id(), user.name, user.role, user.active)
