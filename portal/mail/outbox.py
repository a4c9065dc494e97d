"""The mail outbox (SPEC §8): rows written with the change, delivered after commit.

``queue_mail`` renders ``templates/mail/<name>.txt`` and ``.html`` and adds an
:class:`OutboxMessage` to the session (no commit). ``deliver_pending`` claims a
due message in one short transaction (``FOR UPDATE SKIP LOCKED`` on PostgreSQL,
a compare-and-set everywhere) and commits, talks SMTP with no transaction open
(on SQLite a hanging server would otherwise hold the database's write lock and
block every request), then records the result in a second short transaction.
Every attempt of a message carries the same Message-ID, so a receiver that got
an attempt we believe failed can drop the repeat.
"""

from __future__ import annotations

import re
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import make_msgid
from typing import Any, Literal
from urllib.parse import urlsplit

import sqlalchemy as sa
from flask import current_app, render_template
from flask_mail import Message

from portal.core.statuses import OutboxStatus
from portal.extensions import db, mail, rowcount
from portal.models import OutboxMessage
from portal.timeutil import aware, utcnow

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
        message_id=new_message_id(),
    )
    db.session.add(message)
    return message


def new_message_id() -> str:
    """A fresh Message-ID under the portal's own host name."""
    host = urlsplit(current_app.config["PUBLIC_BASE_URL"]).hostname or "localhost"
    return make_msgid(domain=header_safe(host, 200) or "localhost")


@dataclass(frozen=True)
class _Claimed:
    """What the worker needs to send a claimed message, read before commit."""

    id: int
    recipient: str
    subject: str
    body_text: str
    body_html: str
    message_id: str
    attempts: int


def backoff(attempts: int) -> timedelta:
    """Wait before retry ``attempts``: 1, 2, 4, ... minutes, at most 6 hours."""
    return timedelta(minutes=min(2 ** max(attempts - 1, 0), 360))


def _send(message: _Claimed) -> None:
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


def _send_smtp(message: _Claimed) -> None:
    mail_message = Message(
        subject=message.subject,
        recipients=[message.recipient],
        body=message.body_text,
        html=message.body_html,
    )
    if message.message_id:
        mail_message.msgId = message.message_id
    mail.send(mail_message)


def _claim(now, max_attempts: int) -> _Claimed | None | Literal[False]:
    """Claim the next due message and commit; False: lost a race, try again."""
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
        return None
    # Claim it with a compare-and-set too: SQLite ignores FOR UPDATE, but its
    # UPDATE takes the write lock, so a second worker's claim finds 0 rows.
    # The claim moves the next attempt past the backoff: while this worker
    # talks SMTP (no transaction open) no other worker takes the message, and
    # if this one dies mid-send the message is retried after the backoff.
    attempts = message.attempts + 1
    claimed = db.session.execute(
        sa.update(OutboxMessage)
        .where(
            OutboxMessage.id == message.id,
            OutboxMessage.status == OutboxStatus.PENDING,
            OutboxMessage.attempts == message.attempts,
        )
        .values(
            attempts=attempts,
            next_attempt_at=now + backoff(attempts),
            message_id=message.message_id or new_message_id(),
        )
        .execution_options(synchronize_session=False)
    )
    if rowcount(claimed) != 1:
        db.session.rollback()
        return False
    db.session.refresh(message)
    out = _Claimed(
        id=message.id,
        recipient=message.recipient,
        subject=message.subject,
        body_text=message.body_text,
        body_html=message.body_html,
        message_id=message.message_id or "",
        attempts=message.attempts,
    )
    db.session.commit()
    return out


def deliver_pending(
    limit: int = 50, stop: Callable[[], bool] | None = None
) -> tuple[int, int]:
    """Send due messages; return (sent, failed).

    Per message: claim (commit), send with no transaction open, record (commit).
    ``stop`` is asked before each claim: once it says True no further message is
    claimed, so a worker told to stop leaves the rest to the others at once
    (a claimed message would wait out its backoff).
    """
    from portal.billing.drafts import expand_link_requests

    expand_link_requests()
    sent = failed = 0
    max_attempts = current_app.config["OUTBOX_MAX_ATTEMPTS"]
    for _ in range(limit):
        if stop is not None and stop():
            break
        now = utcnow()
        claimed = _claim(now, max_attempts)
        if claimed is None:
            break
        if claimed is False:
            continue
        db.session.close()  # nothing held while the mail server thinks
        try:
            _send(claimed)
        except Exception as exc:
            values: dict[str, object] = {
                "last_error": header_safe(f"{type(exc).__name__}: {exc}", 1000)
            }
            if claimed.attempts >= max_attempts:
                values["status"] = OutboxStatus.FAILED
            failed += 1
        else:
            values = {
                "status": OutboxStatus.SENT,
                "sent_at": utcnow(),
                "last_error": "",
            }
            sent += 1
        db.session.execute(
            sa.update(OutboxMessage)
            .where(OutboxMessage.id == claimed.id)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        db.session.commit()
    return sent, failed


def retry_message(message: OutboxMessage) -> None:
    """Put a failed message back in the queue now (admin outbox page)."""
    message.status = OutboxStatus.PENDING
    message.next_attempt_at = utcnow()


@dataclass(frozen=True)
class Backlog:
    """Pending mail that should have gone out already (the worker looks down)."""

    count: int
    oldest_due: datetime | None
    minutes: int


def stale_backlog(now: datetime | None = None) -> Backlog:
    """Pending messages due more than ``OUTBOX_STALE_MINUTES`` ago (one query)."""
    now = now or utcnow()
    minutes = int(current_app.config["OUTBOX_STALE_MINUTES"])
    count, oldest = db.session.execute(
        sa.select(
            sa.func.count(OutboxMessage.id), sa.func.min(OutboxMessage.next_attempt_at)
        ).where(
            OutboxMessage.status == OutboxStatus.PENDING,
            OutboxMessage.next_attempt_at < now - timedelta(minutes=minutes),
        )
    ).one()
    return Backlog(int(count or 0), aware(oldest), minutes)


#: A contact's sign-in link in a mail body: an admin reading the outbox must
#: not be able to sign in as the contact with it.
_SIGN_IN_LINK = re.compile(r"(/portal/link/)[A-Za-z0-9_.\-]+")


def redacted_body(message: OutboxMessage) -> str:
    """The plain-text body with sign-in link tokens hidden (admin outbox view)."""
    return _SIGN_IN_LINK.sub(r"\1[sign-in link hidden]", message.body_text)
