"""Command line: ``portal demo``, ``create-user``, ``send-mail``, ``remind``, ``db …``.

Available as ``flask --app portal …`` and as the ``portal`` console script.
"""

from __future__ import annotations

import time

import click
import sqlalchemy as sa
from flask import Flask, current_app
from flask.cli import FlaskGroup, with_appcontext

from portal.accounts.passwords import hash_password, password_problem
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
@click.option("--role", type=click.Choice([r.value for r in Role]), default="admin")
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
    """Deliver pending outbox mail, with retries and backoff."""
    from portal.mail.outbox import deliver_pending

    while True:
        sent, failed = deliver_pending(limit)
        if sent or failed or not loop:
            click.echo(f"sent {sent}, failed {failed}")
        if not loop:
            return
        db.session.remove()
        time.sleep(interval)


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
@click.option("--port", default=5000, show_default=True)
@click.option("--no-serve", is_flag=True, help="Load the demo and exit.")
@with_appcontext
def demo_command(host: str, port: int, no_serve: bool) -> None:
    """Create the SQLite database, load the demo, print logins and serve."""
    from flask_migrate import upgrade

    from portal.demo import load_demo

    upgrade(revision="heads")
    info = load_demo()
    db.session.commit()
    from portal.mail.outbox import deliver_pending

    deliver_pending(500)
    click.echo("")
    click.echo("=" * 72)
    click.echo("Progress Billings demo is ready.")
    click.echo(f"  Back office:  {current_app.config['PUBLIC_BASE_URL']}/admin/")
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
    click.echo("=" * 72)
    if no_serve:
        return
    current_app.run(host=host, port=port, debug=False, use_reloader=False)


def _create_app_for_cli() -> Flask:
    import os
    import sys

    from portal import create_app

    overrides: dict[str, object] = {}
    # Only the demo may run with the development key; it prints mail to the console.
    if sys.argv[1:2] == ["demo"]:
        if not os.environ.get("SECRET_KEY") and not os.environ.get("PORTAL_SECRET_KEY"):
            overrides["ALLOW_DEV_SECRET_KEY"] = True
        if not os.environ.get("MAIL_SERVER") and not os.environ.get(
            "PORTAL_MAIL_SERVER"
        ):
            overrides["MAIL_TRANSPORT"] = "console"
    return create_app(overrides)


@click.group(cls=FlaskGroup, create_app=_create_app_for_cli)
def main() -> None:
    """Progress Billings management commands."""
