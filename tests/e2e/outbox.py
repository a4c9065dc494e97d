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


def sign_in_contact(page, app, contact_id: int) -> None:
    """Sign ``page`` in as the contact, with a link the served app signs (an
    old link is used, the contact asks for a fresh one, the browser opens the
    mail's): nothing depends on this process's clock agreeing with the server's."""
    import re as _re

    from playwright.sync_api import expect

    from portal.accounts import tokens
    from portal.models import Contact
    from portal.timeutil import utcnow

    with app.app_context():
        contact = db.session.get(Contact, contact_id)
        used, token = tokens.issue_link(contact)
        used.used_at = utcnow()
        db.session.commit()
        url, email = tokens.link_url(token), contact.email
        db.session.remove()
    page.goto(url)
    page.get_by_role("button", name="Email me a fresh link").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Check your email")
    page.goto(magic_link(app, email))
    page.get_by_role("button", name=_re.compile("^Continue")).click()
    expect(page.locator(".alert-success")).to_contain_text("You are signed in")
