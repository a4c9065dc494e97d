"""Command line: ``portal demo``, ``create-user``, ``send-mail``, ``remind``, ``db …``.

Available as ``flask --app portal …`` and as the ``portal`` console script.
"""

from __future__ import annotations

import click
import sqlalchemy as sa
from flask import Flask, current_app
from flask.cli import FlaskGroup, with_appcontext

from portal.accounts.passwords import hash_password, password_problem
from portal.config import Config
from portal.core.statuses import Role
from portal.extensions import db
from portal.models import User


def register_commands(app: Flask) -> None:
    """Attach the commands to ``app.cli``."""
    for command in (
        demo_command,
        create_user_command,
        send_mail_command,
        remind_command,
    ):
        app.cli.add_command(command)


@click.command("create-user")
@click.option("--email", prompt=True)
@click.option("--name", prompt=True)
@click.option(
    "--role",
    type=click.Choice([r.value for r in Role]),
    default="admin",
    show_default=True,
)
@click.password_option()
@with_appcontext
def create_user_command(email: str, name: str, role: str, password: str) -> None:
    """Create a back-office user (or reset an existing one's password and role)."""
    from portal import audit

    problem = password_problem(password)
    if problem:
        raise click.BadParameter(problem, param_hint="password")
    email = email.strip()
    if "@" not in email or len(email) > 254:
        raise click.BadParameter("Enter a valid email address.", param_hint="email")
    user = db.session.scalar(
        sa.select(User).where(sa.func.lower(User.email) == email.lower())
    )
    if user is None:
        user = User(
            email=email,
            name=name.strip()[:120],
            role=role,
            password_hash=hash_password(password),
        )
        db.session.add(user)
        db.session.flush()
        audit.record(None, "user.create", user, after={"email": email, "role": role})
        click.echo(f"Created {role} {email}.")
    else:
        user.password_hash = hash_password(password)
        user.role = role
        user.session_version += 1
        audit.record(None, "user.reset", user, after={"role": role})
        click.echo(f"Updated {email}: new password, role {role}.")
    db.session.commit()


@click.command("send-mail")
@click.option("--loop", is_flag=True, help="Keep running, polling the outbox.")
@click.option(
    "--interval", default=5.0, show_default=True, help="Seconds between polls."
)
@click.option("--limit", default=100, show_default=True, help="Messages per pass.")
@with_appcontext
def send_mail_command(loop: bool, interval: float, limit: int) -> None:
    """Deliver pending outbox mail, with retries and backoff.

    With ``--loop``, SIGTERM or Ctrl-C stops it between two messages: the one
    being sent is finished and recorded, so a restart or deploy never sends a
    message twice nor leaves one claimed until its backoff runs out.
    """
    import signal
    import threading

    from portal.mail.outbox import deliver_pending

    stopping = threading.Event()
    previous = {}
    if loop:
        for signum in (signal.SIGTERM, signal.SIGINT):
            previous[signum] = signal.signal(signum, lambda *_: stopping.set())
    try:
        while True:
            sent, failed = deliver_pending(limit, stop=stopping.is_set)
            if sent or failed or not loop:
                click.echo(f"sent {sent}, failed {failed}")
            if not loop or stopping.is_set():
                return
            db.session.remove()
            if stopping.wait(interval):
                return
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


@click.command("remind")
@click.option(
    "--days", default=3, show_default=True, help="Remind when due within N days."
)
@with_appcontext
def remind_command(days: int) -> None:
    """Send reminders for invitations without a submitted billing (once a day each)."""
    from portal.billing.invitations import due_for_reminder, remind

    sent = remind(due_for_reminder(days), None)
    db.session.commit()
    click.echo(f"sent {sent} reminder(s)")


@click.command("demo")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--no-serve", is_flag=True, help="Load the demo and exit.")
@click.option(
    "--mail-interval",
    default=2.0,
    show_default=True,
    help="Seconds between outbox deliveries while serving.",
)
@with_appcontext
def demo_command(host: str, port: int, no_serve: bool, mail_interval: float) -> None:
    """Create the SQLite database, load the demo, print logins and serve.

    Links and mails use http://HOST:PORT unless PUBLIC_BASE_URL is configured.
    While it serves, queued mail is delivered every few seconds (to the console
    unless MAIL_SERVER is set).
    """
    from flask_migrate import upgrade

    from portal.demo import load_demo

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    if app.config["PUBLIC_BASE_URL"] == Config.PUBLIC_BASE_URL:
        # B104: a wildcard bind is only compared here, never bound; it is not an
        # address a browser can open, so links use loopback.
        wildcard = host in ("0.0.0.0", "::", "")  # noqa: S104 - compared  # nosec B104
        link_host = "127.0.0.1" if wildcard else host
        app.config["PUBLIC_BASE_URL"] = f"http://{link_host}:{port}"
    if (
        app.config["MAIL_TRANSPORT"] == "smtp"
        and app.config["MAIL_SERVER"] == Config.MAIL_SERVER
    ):
        app.config["MAIL_TRANSPORT"] = "console"  # no mail server configured
    upgrade(revision="heads")
    info = load_demo()
    db.session.commit()
    from portal.mail.outbox import deliver_pending

    deliver_pending(500)
    base = app.config["PUBLIC_BASE_URL"]
    click.echo("")
    click.echo("=" * 72)
    click.echo("Progress Billings demo is ready.")
    click.echo(f"  Back office:  {base}/admin/")
    click.echo(
        f"  Admin login:  {info['admin_email']}  password: {info['admin_password']}"
    )
    click.echo(
        f"  Finance:      {info['finance_email']}  password: {info['admin_password']}"
    )
    click.echo(f"  Contact link: {info['contact_link']}")
    click.echo(
        f"                (for {info['contact_email']}; single use, run the demo again for another)"
    )
    if not no_serve:
        click.echo(f"  Serving on {base}/  (Ctrl+C stops; mail is printed below)")
    click.echo("=" * 72, nl=True)
    if no_serve:
        return
    db.session.remove()
    serve(app, host, port, mail_interval)


def serve(app: Flask, host: str, port: int, mail_interval: float) -> None:
    """Serve ``app`` with Werkzeug and deliver the outbox in a thread until stopped.

    ``app.run`` refuses to start inside the ``flask``/``portal`` CLI, so the
    demo calls Werkzeug's server itself (threaded, no reloader, no debugger).
    """
    import threading

    from werkzeug.serving import run_simple

    stop = threading.Event()
    worker = threading.Thread(
        target=_mail_worker,
        args=(app, stop, mail_interval),
        name="demo-outbox",
        daemon=True,
    )
    worker.start()
    try:
        run_simple(host, port, app, threaded=True, use_reloader=False)
    finally:
        stop.set()
        worker.join(timeout=mail_interval + 5)


def _mail_worker(app: Flask, stop, interval: float) -> None:
    """Deliver pending outbox mail every ``interval`` seconds (the demo's worker)."""
    from portal.mail.outbox import deliver_pending

    while not stop.wait(interval):
        with app.app_context():
            try:
                deliver_pending(100)
            except Exception as exc:
                click.echo(f"outbox delivery failed: {exc}", err=True)
            finally:
                db.session.remove()


def _cli_subcommand(argv: list[str]) -> str | None:
    """The subcommand named on a ``portal``/``flask`` command line, if any."""
    takes_value = {"--app", "-A", "--env-file", "-e"}
    args = iter(argv)
    for arg in args:
        if arg in takes_value:
            next(args, None)
        elif not arg.startswith("-"):
            return arg
    return None


def dev_key_allowed(argv: list[str]) -> bool:
    """May this command line run without a real SECRET_KEY?

    The demo may (it says so), and so may anything that only prints help: the
    app is loaded to list its commands, but nothing runs.
    """
    return "--help" in argv or _cli_subcommand(argv) in (None, "demo")


def _create_app_for_cli() -> Flask:
    from portal import create_app

    return create_app()


@click.group(cls=FlaskGroup, create_app=_create_app_for_cli)
def main() -> None:
    """Progress Billings management commands.

    \b
    Start with `portal demo` (no configuration needed). For a real instance set
    SECRET_KEY (and DATABASE_URL, MAIL_SERVER, PUBLIC_BASE_URL), then
    `portal db upgrade`, `portal create-user`, and serve it with
    `gunicorn 'portal:create_app()'` plus `portal send-mail --loop` for mail.
    """
