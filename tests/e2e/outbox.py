"""The served app's mail, read from its outbox (the server queues, never sends)."""

from __future__ import annotations

import re

import sqlalchemy as sa

from portal.extensions import db
from portal.models import OutboxMessage

LINK = re.compile(r"https?://[^/\s]+/portal/link/[A-Za-z0-9_.\-]+")


def magic_link(app, email: str) -> str:
    """The sign-in link of the latest mail to ``email`` (from the outbox)."""
    with app.app_context():
        body = db.session.scalars(
            sa.select(OutboxMessage.body_text)
            .where(OutboxMessage.recipient == email)
            .order_by(OutboxMessage.id.desc())
        ).first()
        db.session.remove()
    assert body, f"no mail to {email} in the outbox"
    found = LINK.search(body)
    assert found, body
    return found.group(0)
