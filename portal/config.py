"""Configuration: defaults safe for development, overridden by environment variables.

Every setting may be given as ``PORTAL_<NAME>`` (parsed as JSON where possible, by
Flask's ``from_prefixed_env``) and the most common ones by their plain names too
(``DATABASE_URL``, ``SECRET_KEY``, ``MAIL_SERVER``...). Nothing here reads the
environment at import time: :func:`load_config` is called by the app factory.
"""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

DEV_SECRET_KEY = "dev-insecure-change-me"  # noqa: S105 - refused outside debug/tests


class Config:
    """Defaults. Values that depend on the instance folder are filled in by the factory."""

    SECRET_KEY = DEV_SECRET_KEY
    #: Older keys, newest first; links signed with them still verify until they expire.
    SECRET_KEY_FALLBACKS: list[str] = []
    SQLALCHEMY_DATABASE_URI: str | None = None  # default: sqlite in instance/
    SQLALCHEMY_ENGINE_OPTIONS: dict[str, Any] = {"pool_pre_ping": True}
    SQLALCHEMY_TRACK_MODIFICATIONS = False

    PUBLIC_BASE_URL = "http://127.0.0.1:5000"
    LINK_MAX_AGE_DAYS = 14
    CONTACT_SESSION_HOURS = 12
    STAFF_SESSION_HOURS = 12
    PERMANENT_SESSION_LIFETIME = timedelta(hours=12)
    #: A session's age is checked against when it started (accounts.auth), so
    #: re-signing the cookie on every response only costs CPU and bytes; it is
    #: sent when the session changes. The cookie lives as long as the longest
    #: session (load_config raises the lifetime to it).
    SESSION_REFRESH_EACH_REQUEST = False

    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_SECURE: bool | None = None  # None: secure unless base URL is http
    REMEMBER_COOKIE_HTTPONLY = True

    WTF_CSRF_TIME_LIMIT = None  # tied to the session, which expires by itself

    BOOTSTRAP_SERVE_LOCAL = True
    BOOTSTRAP_BOOTSWATCH_THEME = None

    MAIL_SERVER = "localhost"
    MAIL_PORT = 25
    MAIL_USE_TLS = False
    MAIL_USE_SSL = False
    MAIL_USERNAME: str | None = None
    MAIL_PASSWORD: str | None = None
    MAIL_DEFAULT_SENDER = "Progress Billings <billing@example.com>"
    MAIL_TIMEOUT = 10
    #: "smtp" delivers through Flask-Mail; "console" prints mails (the demo).
    MAIL_TRANSPORT = "smtp"
    OUTBOX_MAX_ATTEMPTS = 8
    #: A message due this many minutes ago and still pending means the mail
    #: worker (``portal send-mail --loop``, polling every few seconds) is not
    #: running: the dashboard and the outbox warn.
    OUTBOX_STALE_MINUTES = 10

    RATELIMIT_STORAGE_URI = "memory://"
    RATELIMIT_HEADERS_ENABLED = True
    RATELIMIT_ENABLED = True
    #: A storage outage (Redis down) must not lock everyone out: count in this
    #: process's memory until the storage answers again, and never turn a
    #: storage error into a 500 (docs/security.md, "Dependencies down").
    RATELIMIT_IN_MEMORY_FALLBACK_ENABLED = True
    RATELIMIT_SWALLOW_ERRORS = True
    #: Proxies in front of the app that set X-Forwarded-For (werkzeug's
    #: ProxyFix). 0 (the default) trusts no forwarding header, so a client
    #: talking to the app directly cannot pick its own rate-limit bucket; set
    #: 1 behind one reverse proxy (README, "Production").
    PROXY_FIX_X_FOR = 0
    PROXY_FIX_X_PROTO = 0

    LOGIN_RATE_LIMIT = "10 per minute;60 per hour"
    NEW_LINK_RATE_LIMIT = "5 per minute;20 per hour"
    LINK_RATE_LIMIT = "10 per minute;60 per hour"
    LINK_VIEW_RATE_LIMIT = "30 per minute;300 per hour"
    FRESH_LINKS_PER_HOUR = 3

    UPLOAD_FOLDER: str | None = None  # default: instance/uploads
    MAX_UPLOAD_BYTES = 10 * 1024 * 1024
    #: Files one billing may hold (invoices, waivers, backup); 0: no limit.
    MAX_FILES_PER_BILLING = 20
    MAX_CONTENT_LENGTH = 25 * 1024 * 1024
    MAX_FORM_PARTS = 200
    #: Characters of rendered pages each worker keeps (portal.web.fragments);
    #: 0 turns the page cache off. ``PORTAL_FRAGMENT_CACHE_BYTES``.
    FRAGMENT_CACHE_BYTES = 32 * 1024 * 1024

    #: Our company (the contractor) as named on PDFs and mails.
    COMPANY_NAME = "Northwind Specialty Contractors"
    #: The zone of times not tied to a project (users, outbox, audit, exports);
    #: a project's own pages use the project's zone.
    TIME_ZONE = "UTC"
    #: "us", "au" or "ca": the vocabulary pages, mails and PDFs use.
    TERMINOLOGY = "us"
    PAGE_SIZE = 25
    #: Commitments per page of the period dashboard (its counts and totals
    #: cover every page).
    BOARD_PAGE_SIZE = 100


#: Plain environment names accepted besides ``PORTAL_*``.
_PLAIN_ENV = {
    "DATABASE_URL": "SQLALCHEMY_DATABASE_URI",
    "SECRET_KEY": "SECRET_KEY",
    "PUBLIC_BASE_URL": "PUBLIC_BASE_URL",
    "MAIL_SERVER": "MAIL_SERVER",
    "MAIL_PORT": "MAIL_PORT",
    "MAIL_USERNAME": "MAIL_USERNAME",
    "MAIL_PASSWORD": "MAIL_PASSWORD",
    "MAIL_USE_TLS": "MAIL_USE_TLS",
    "MAIL_DEFAULT_SENDER": "MAIL_DEFAULT_SENDER",
    "RATELIMIT_STORAGE_URI": "RATELIMIT_STORAGE_URI",
    "UPLOAD_FOLDER": "UPLOAD_FOLDER",
    "COMPANY_NAME": "COMPANY_NAME",
    "TIME_ZONE": "TIME_ZONE",
    "PROXY_FIX_X_FOR": "PROXY_FIX_X_FOR",
    "PROXY_FIX_X_PROTO": "PROXY_FIX_X_PROTO",
}

_INT_KEYS = {"MAIL_PORT", "PROXY_FIX_X_FOR", "PROXY_FIX_X_PROTO"}
_BOOL_KEYS = {"MAIL_USE_TLS"}


def plain_env_overrides(environ: dict[str, str] | None = None) -> dict[str, Any]:
    """Settings taken from the plain (unprefixed) environment variable names."""
    environ = dict(os.environ if environ is None else environ)
    out: dict[str, Any] = {}
    for env_name, key in _PLAIN_ENV.items():
        if env_name not in environ or environ[env_name] == "":
            continue
        value: Any = environ[env_name]
        if key in _INT_KEYS:
            value = int(value)
        elif key in _BOOL_KEYS:
            value = value.lower() in {"1", "true", "yes", "on"}
        out[key] = value
    if "SECRET_KEY_FALLBACKS" in environ:
        out["SECRET_KEY_FALLBACKS"] = [
            k for k in environ["SECRET_KEY_FALLBACKS"].split(",") if k.strip()
        ]
    return out


def normalize_database_url(url: str) -> str:
    """Use the psycopg 3 driver for plain postgres URLs."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url
