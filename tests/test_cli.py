"""The command line: demo (twice), create-user, send-mail, remind."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import sqlalchemy as sa

from portal.accounts import tokens
from portal.accounts.passwords import verify_password
from portal.extensions import db
from portal.models import (
    Billing,
    BillingPeriod,
    Commitment,
    Invitation,
    OutboxMessage,
    Project,
    SovLine,
    User,
)


def _counts() -> dict[str, int]:
    return {
        model.__name__: db.session.scalar(sa.select(sa.func.count()).select_from(model))
        for model in (
            Project,
            Commitment,
            SovLine,
            BillingPeriod,
            Billing,
            Invitation,
            User,
        )
    }


def test_demo_loads_a_realistic_project_once(app, runner) -> None:
    first = runner.invoke(args=["demo", "--no-serve"])
    assert first.exit_code == 0, first.output
    with app.app_context():
        counts = _counts()
        commitments = db.session.scalars(sa.select(Commitment)).all()
        assert len(commitments) >= 3
        assert all(5 <= len(c.sov_lines) <= 15 for c in commitments)
        assert any(
            co.status == "approved" for c in commitments for co in c.change_orders
        )
        assert all(c.contacts for c in commitments)
        periods = db.session.scalars(
            sa.select(BillingPeriod).order_by(BillingPeriod.sequence)
        ).all()
        assert [p.status for p in periods] == ["closed", "open"]
        statuses = {b.status for b in db.session.scalars(sa.select(Billing))}
        assert statuses <= {"approved", "approved_as_noted"} and statuses
        assert counts["Invitation"] >= 3
    second = runner.invoke(args=["demo", "--no-serve"])
    assert second.exit_code == 0, second.output
    with app.app_context():
        assert _counts() == counts  # nothing duplicated
        # The printed password and link work.
        match = re.search(r"Admin login:\s+(\S+)\s+password: (\S+)", second.output)
        assert match
        admin = db.session.scalar(sa.select(User).where(User.email == match.group(1)))
        assert verify_password(admin.password_hash, match.group(2))
        link = re.search(r"Contact link: (\S+)", second.output).group(1)
        token = link.rsplit("/", 1)[1]
        assert link.startswith("http://portal.test/portal/link/")
        assert tokens.resolve_link(token).contact.email == "dana@acme-concrete.example"


def test_console_script_demo_on_a_fresh_sqlite_file(tmp_path) -> None:
    """What the README's quick start runs: `portal demo` (here without serving)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PORTAL_", "DATABASE_URL", "SECRET_KEY", "MAIL_"))
    }
    env["PORTAL_SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{tmp_path / 'demo.db'}"
    script = os.path.join(os.path.dirname(sys.executable), "portal")
    for _ in range(2):
        done = subprocess.run(
            [script, "demo", "--no-serve"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        assert "Admin login:" in done.stdout and "/portal/link/" in done.stdout


def test_create_user(app, runner) -> None:
    result = runner.invoke(
        args=[
            "create-user",
            "--email",
            "Boss@Example.com",
            "--name",
            "Boss",
            "--role",
            "finance",
        ],
        input="a long enough password\na long enough password\n",
    )
    assert result.exit_code == 0, result.output
    with app.app_context():
        user = db.session.scalar(
            sa.select(User).where(User.email == "Boss@Example.com")
        )
        assert user.role == "finance"
        assert verify_password(user.password_hash, "a long enough password")
    weak = runner.invoke(
        args=["create-user", "--email", "x@example.com", "--name", "X"],
        input="short\nshort\n",
    )
    assert weak.exit_code != 0 and "at least 12" in weak.output


def test_send_mail_delivers_and_survives_a_down_server(app, runner) -> None:
    from portal.extensions import mail
    from portal.mail.outbox import queue_mail

    with app.app_context():
        contact_ctx = {
            "contact": type("C", (), {"name": "Pat"})(),
            "link": "http://x/l",
            "expires": __import__("datetime").datetime(2030, 1, 1),
        }
        queue_mail("new_link", "pat@example.com", "Your link", **contact_ctx)
        db.session.commit()
    # A mail server that refuses connections: nothing lost, retried later.
    app.config.update(
        MAIL_SUPPRESS_SEND=False, MAIL_SERVER="127.0.0.1", MAIL_PORT=1, MAIL_TIMEOUT=2
    )
    mail.init_app(app)
    result = runner.invoke(args=["send-mail"])
    assert "sent 0, failed 1" in result.output
    with app.app_context():
        message = db.session.scalars(sa.select(OutboxMessage)).one()
        assert (message.status, message.attempts) == ("pending", 1)
        assert message.last_error
        message.next_attempt_at = message.created_at  # due again now
        db.session.commit()
    app.config.update(MAIL_SUPPRESS_SEND=True)
    mail.init_app(app)
    with app.app_context(), mail.record_messages() as outbox:
        from portal.mail.outbox import deliver_pending

        assert deliver_pending() == (1, 0)
        assert [m.recipients for m in outbox] == [["pat@example.com"]]
        message = db.session.scalars(sa.select(OutboxMessage)).one()
        assert (message.status, message.attempts) == ("sent", 2)
        assert deliver_pending() == (0, 0)  # never sent twice


def _clean_env() -> dict[str, str]:
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PORTAL_", "DATABASE_URL", "SECRET_KEY", "MAIL_"))
    }


def test_console_script_db_upgrade_needs_a_secret_key(tmp_path) -> None:
    """`portal db upgrade` migrates a fresh database, and refuses the dev key."""
    script = os.path.join(os.path.dirname(sys.executable), "portal")
    db_file = tmp_path / "prod.db"
    env = _clean_env() | {"DATABASE_URL": f"sqlite:///{db_file}"}
    refused = subprocess.run(
        [script, "db", "upgrade"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert refused.returncode != 0 and "SECRET_KEY" in refused.stderr
    assert not db_file.exists() or db_file.stat().st_size == 0
    env["SECRET_KEY"] = "a-production-secret-key-of-decent-length"
    done = subprocess.run(
        [script, "db", "upgrade"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    engine = sa.create_engine(f"sqlite:///{db_file}")
    with engine.connect() as conn:
        tables = set(sa.inspect(conn).get_table_names())
    engine.dispose()
    assert {"billings", "billing_lines", "outbox_messages", "alembic_version"} <= tables


def _run_script(args: list[str], tmp_path, script: str = "portal"):
    env = _clean_env() | {"DATABASE_URL": f"sqlite:///{tmp_path / 'none.db'}"}
    return subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), script), *args],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_every_help_works_without_configuration(tmp_path) -> None:
    """Issue 14 item 2: no SECRET_KEY, no traceback, our commands listed."""
    top = _run_script(["--help"], tmp_path)
    assert top.returncode == 0, top.stderr[-2000:]
    assert "Traceback" not in top.stdout + top.stderr
    for name in ("demo", "create-user", "db", "send-mail", "remind", "run"):
        assert re.search(rf"^\s+{name}\s", top.stdout, re.M), name
    assert "gunicorn" in top.stdout  # how to run it for real
    for args in (["create-user", "--help"], ["remind", "--help"], ["demo", "--help"]):
        done = _run_script(args, tmp_path)
        assert done.returncode == 0 and "Traceback" not in done.stderr, args
        assert "Usage:" in done.stdout
    user_help = " ".join(
        _run_script(["create-user", "--help"], tmp_path).stdout.split()
    )
    assert "[default: admin]" in user_help
    demo_help = " ".join(_run_script(["demo", "--help"], tmp_path).stdout.split())
    assert "[default: 5000" in demo_help
    flask = _run_script(["--app", "portal", "demo", "--help"], tmp_path, "flask")
    assert flask.returncode == 0 and "--no-serve" in flask.stdout, flask.stderr


def test_a_missing_secret_key_is_one_clear_line(tmp_path) -> None:
    for args in (["send-mail"], ["remind"], ["create-user", "--email", "a@b.c"]):
        done = _run_script(args, tmp_path)
        assert done.returncode != 0, args
        assert "Traceback" not in done.stderr, done.stderr[-2000:]
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and "SECRET_KEY" in lines[0], lines
        assert "set SECRET_KEY" in lines[0].replace("Set", "set")


def test_flask_app_portal_demo_loads_without_a_key(tmp_path) -> None:
    done = _run_script(["--app", "portal", "demo", "--no-serve"], tmp_path, "flask")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Admin login:" in done.stdout
