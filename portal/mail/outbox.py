"""The mail outbox (SPEC §8): rows written with the change, delivered after commit.

``queue_mail`` renders ``templates/mail/<name>.txt`` and ``.html`` and adds an
:class:`OutboxMessage` to the session (no commit). ``deliver_pending`` claims due
messages (``FOR UPDATE SKIP LOCKED`` on PostgreSQL), sends them with Flask-Mail
and records the result, with exponential backoff on failure.
"""

from __future__ import annotations

import re
import socket
import sys
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from flask import current_app, render_template
from flask_mail import Message

from portal.core.statuses import OutboxStatus
from portal.extensions import db, mail
from portal.models import OutboxMessage
from portal.timeutil import utcnow

_HEADER_UNSAFE = re.compile(r"[\r\n\x00-\x1f\x7f]+")


def header_safe(text: str, limit: int = 250) -> str:
    """Collapse control characters (CR/LF included) so no header can be injected."""
    return _HEADER_UNSAFE.sub(" ", text).strip()[:limit]


def queue_mail(
    name: str,
    recipient: str,
    subject: str,
    *,
    obj: Any = None,
    **context: Any,
) -> OutboxMessage:
    """Render a mail from its templates and add it to the outbox (no commit)."""
    context.setdefault("base_url", current_app.config["PUBLIC_BASE_URL"])
    subject = header_safe(subject)
    context.setdefault("subject", subject)  # the HTML mail's <title>
    message = OutboxMessage(
        kind=name,
        recipient=header_safe(recipient, 254),
        subject=subject,
        body_text=render_template(f"mail/{name}.txt", **context),
        body_html=render_template(f"mail/{name}.html", **context),
        status=OutboxStatus.PENDING,
        object_type=obj.__tablename__.rstrip("s") if obj is not None else None,
        object_id=obj.id if obj is not None else None,
    )
    db.session.add(message)
    return message


def backoff(attempts: int) -> timedelta:
    """Wait before retry ``attempts``: 1, 2, 4, ... minutes, at most 6 hours."""
    return timedelta(minutes=min(2 ** max(attempts - 1, 0), 360))


def _send(message: OutboxMessage) -> None:
    if current_app.config.get("MAIL_TRANSPORT") == "console":
        print(
            f"--- mail to {message.recipient}: {message.subject}\n"
            f"{message.body_text}\n---",
            file=sys.stdout,
            flush=True,
        )
        return
    # Flask-Mail opens smtplib connections without a timeout: a hanging server
    # would block the worker for ever. smtplib falls back to the socket default.
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(float(current_app.config.get("MAIL_TIMEOUT") or 10))
    try:
        _send_smtp(message)
    finally:
        socket.setdefaulttimeout(previous)


def _send_smtp(message: OutboxMessage) -> None:
    mail.send(
        Message(
            subject=message.subject,
            recipients=[message.recipient],
            body=message.body_text,
            html=message.body_html,
        )
    )


def deliver_pending(limit: int = 50) -> tuple[int, int]:
    """Send due messages; return (sent, failed). Commits after each message."""
    sent = failed = 0
    max_attempts = current_app.config["OUTBOX_MAX_ATTEMPTS"]
    for _ in range(limit):
        now = utcnow()
        stmt = (
            sa.select(OutboxMessage)
            .where(
                OutboxMessage.status == OutboxStatus.PENDING,
                OutboxMessage.next_attempt_at <= now,
            )
            .order_by(OutboxMessage.id)
            .limit(1)
            .with_for_update(skip_locked=True)
        )
        message = db.session.scalars(stmt).first()
        if message is None:
            db.session.rollback()
            break
        # Claim it with a compare-and-set too: SQLite ignores FOR UPDATE, but its
        # UPDATE takes the write lock, so a second worker's claim finds 0 rows.
        claimed = db.session.execute(
            sa.update(OutboxMessage)
            .where(
                OutboxMessage.id == message.id,
                OutboxMessage.status == OutboxStatus.PENDING,
                OutboxMessage.attempts == message.attempts,
            )
            .values(attempts=OutboxMessage.attempts + 1)
            .execution_options(synchronize_session=False)
        )
        if claimed.rowcount != 1:
            db.session.rollback()
            continue
        db.session.refresh(message)
        try:
            _send(message)
        except Exception as exc:  # noqa: BLE001 - any transport failure is retried
            message.last_error = header_safe(f"{type(exc).__name__}: {exc}", 1000)
            if message.attempts >= max_attempts:
                message.status = OutboxStatus.FAILED
            else:
                message.next_attempt_at = now + backoff(message.attempts)
            failed += 1
        else:
            message.status = OutboxStatus.SENT
            message.sent_at = utcnow()
            message.last_error = ""
            sent += 1
        db.session.commit()
    return sent, failed


def retry_message(message: OutboxMessage) -> None:
    """Put a failed message back in the queue now (admin outbox page)."""
    message.status = OutboxStatus.PENDING
    message.next_attempt_at = utcnow()
