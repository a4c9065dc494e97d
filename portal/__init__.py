"""Progress Billings: the application factory."""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

from flask import Flask
from werkzeug.routing import IntegerConverter, ValidationError

from portal import config as config_module
from portal import extensions as ext


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the app: configuration, extensions, blueprints, errors, CLI, filters."""
    app = Flask(__name__, template_folder="../templates", instance_relative_config=True)
    load_config(app, config)
    check_secret_key(app)
    warn_per_process_state(app)
    register_extensions(app)
    register_blueprints(app)
    from portal import generations
    from portal.cli import register_commands
    from portal.web import assets, errors, fragments, security, templating

    errors.register_error_handlers(app)
    security.register(app)
    templating.register(app)
    fragments.register(app)
    generations.register()
    assets.register(app)
    register_commands(app)
    trust_proxies(app)
    return app


def trust_proxies(app: Flask) -> None:
    """Behind a reverse proxy, take the client's address from X-Forwarded-For.

    Only as many hops as ``PROXY_FIX_X_FOR`` says are trusted (0: none), so the
    rate limits and audit events see the real client, and a forged header sent
    straight to the app changes nothing.
    """
    x_for = int(app.config.get("PROXY_FIX_X_FOR") or 0)
    x_proto = int(app.config.get("PROXY_FIX_X_PROTO") or 0)
    if x_for or x_proto:
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=x_for, x_proto=x_proto)  # type: ignore[method-assign]


def load_config(app: Flask, overrides: dict[str, Any] | None) -> None:
    """Defaults, then instance/config.py, then the environment, then overrides."""
    app.config.from_object(config_module.Config)
    app.config.from_pyfile("config.py", silent=True)
    app.config.update(config_module.plain_env_overrides())
    app.config.from_prefixed_env("PORTAL")
    if overrides:
        app.config.update(overrides)
    os.makedirs(app.instance_path, exist_ok=True)
    uri = app.config.get("SQLALCHEMY_DATABASE_URI")
    if not uri:
        uri = "sqlite:///" + os.path.join(app.instance_path, "portal.db")
    app.config["SQLALCHEMY_DATABASE_URI"] = config_module.normalize_database_url(uri)
    if not app.config.get("UPLOAD_FOLDER"):
        app.config["UPLOAD_FOLDER"] = os.path.join(app.instance_path, "uploads")
    if app.config.get("SESSION_COOKIE_SECURE") is None:
        secure = app.config["PUBLIC_BASE_URL"].startswith("https://")
        app.config["SESSION_COOKIE_SECURE"] = secure
        app.config["REMEMBER_COOKIE_SECURE"] = secure
    app.config["PUBLIC_BASE_URL"] = app.config["PUBLIC_BASE_URL"].rstrip("/")
    longest = timedelta(
        hours=max(
            int(app.config["CONTACT_SESSION_HOURS"]),
            int(app.config["STAFF_SESSION_HOURS"]),
        )
    )
    lifetime = app.config["PERMANENT_SESSION_LIFETIME"]
    if isinstance(lifetime, int | float):
        lifetime = timedelta(seconds=lifetime)
    app.config["PERMANENT_SESSION_LIFETIME"] = max(lifetime, longest)


def check_secret_key(app: Flask) -> None:
    """Refuse to start with the default secret key outside debug and tests."""
    key = app.config.get("SECRET_KEY")
    if key and key != config_module.DEV_SECRET_KEY:
        return
    if app.debug or app.testing or app.config.get("ALLOW_DEV_SECRET_KEY"):
        return
    import click

    if click.get_current_context(silent=True) is not None:
        import sys

        from .cli import dev_key_allowed

        if dev_key_allowed(sys.argv[1:]):
            return  # `portal demo`, or help only
        # One line on the command line, not a traceback.
        raise click.ClickException(KEY_REQUIRED_MESSAGE)
    raise RuntimeError(KEY_REQUIRED_MESSAGE)


def warn_per_process_state(app: Flask) -> None:
    """Say so when a served app keeps what must be shared in its own process.

    With ``memory://`` rate-limit storage every gunicorn worker, and every host,
    counts on its own, so N workers let N times the limit through (docs/scaling.md).
    Not said in debug, tests or a command-line call (``portal demo``, ``send-mail``).
    """
    if app.debug or app.testing or not app.config.get("RATELIMIT_ENABLED", True):
        return
    import click

    if click.get_current_context(silent=True) is not None:
        return
    storage = str(app.config.get("RATELIMIT_STORAGE_URI") or "memory://")
    if storage.startswith("memory://"):
        app.logger.warning(PER_PROCESS_LIMITS_MESSAGE)


PER_PROCESS_LIMITS_MESSAGE = (
    "RATELIMIT_STORAGE_URI is memory://: each worker process counts rate limits "
    "on its own, so with several workers or hosts the sign-in and link limits let "
    "several times their number through. Set RATELIMIT_STORAGE_URI="
    "redis://<host>:6379/0 (docs/scaling.md)."
)


KEY_REQUIRED_MESSAGE = (
    "SECRET_KEY is not set (or is the development default). Set SECRET_KEY "
    "(or PORTAL_SECRET_KEY) to a long random value, e.g. "
    "export SECRET_KEY=\"$(python3 -c 'import secrets; print(secrets.token_urlsafe(48))')\" "
    "- only `portal demo` runs without one."
)


def register_extensions(app: Flask) -> None:
    """Bind every extension to the app."""
    ext.db.init_app(app)
    ext.migrate.init_app(app, ext.db, directory=_migrations_dir(), render_as_batch=True)
    ext.login_manager.init_app(app)
    ext.csrf.init_app(app)
    ext.mail.init_app(app)
    ext.bootstrap.init_app(app)
    ext.limiter.init_app(app)
    from portal.accounts import auth

    auth.init_app(app)


class IdConverter(IntegerConverter):
    """``<int:…>`` read by :func:`validation.parse_id`: a larger id is a 404.

    Path ids go through the same parser and limit as form and query ids, so an
    id one form accepts is one every URL accepts (a leading zero or an id above
    ``MAX_ID`` matches no route, instead of reaching the database driver).
    """

    regex = r"[1-9][0-9]{0,9}"

    def to_python(self, value: str) -> int:
        from portal.validation import parse_id

        number = parse_id(value)
        if number is None:
            raise ValidationError()
        return number


def register_blueprints(app: Flask) -> None:
    """The three areas: contact portal, back office, finance."""
    app.url_map.converters["int"] = IdConverter
    from portal.admin import bp as admin_bp
    from portal.contact import bp as contact_bp
    from portal.exports import bp as exports_bp

    app.register_blueprint(contact_bp)
    app.register_blueprint(admin_bp)
    app.register_blueprint(exports_bp)

    @app.route("/")
    def root():
        """Send each visitor to their own area."""
        from flask import redirect, url_for
        from flask_login import current_user

        if current_user.is_authenticated and current_user.is_contact:
            return redirect(url_for("contact.index"))
        return redirect(url_for("admin.index"))


def _migrations_dir() -> str:
    return os.path.join(os.path.dirname(os.path.dirname(__file__)), "migrations")
