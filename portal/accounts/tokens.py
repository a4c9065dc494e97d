"""Magic links for contacts (SPEC §6).

The emailed token is an itsdangerous-signed, timestamped payload naming a
:class:`LoginLink` row (salt of its own). The row decides: expiry, single use
(``UPDATE … WHERE used_at IS NULL``) and revocation (the contact's
``token_version``). Old secret keys in ``SECRET_KEY_FALLBACKS`` still verify.
"""

from __future__ import annotations

import functools
from datetime import date, datetime, time, timedelta
from typing import Any

import sqlalchemy as sa
from flask import current_app
from itsdangerous import BadSignature, URLSafeTimedSerializer

from portal import generations
from portal.extensions import db, rowcount
from portal.models import Contact, Invitation, LoginLink
from portal.timeutil import aware, utcnow
from portal.web import prefetch

LINK_SALT = "contact-login-link"


class InvalidLink(Exception):
    """A link that cannot be used; ``reason`` says why, ``link`` may be known."""

    def __init__(self, reason: str, link: LoginLink | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.link = link


def serializer(salt: str = LINK_SALT) -> URLSafeTimedSerializer:
    """A serializer signing with the current key, verifying with the old ones too."""
    keys = [
        *current_app.config.get("SECRET_KEY_FALLBACKS", []),
        current_app.config["SECRET_KEY"],
    ]
    return URLSafeTimedSerializer(keys, salt=salt)


def max_age() -> timedelta:
    return timedelta(days=current_app.config["LINK_MAX_AGE_DAYS"])


#: No link lives longer than this, whatever the billing's due date.
LINK_LONGEST_DAYS = 92
#: How far "in the future" a link may have been signed (another host's clock).
CLOCK_SKEW = timedelta(minutes=5)


def expiry(now: datetime, valid_through: date | None = None) -> datetime:
    """When a link made ``now`` expires: after ``LINK_MAX_AGE_DAYS``, and never
    before the end of ``valid_through`` (a billing's due date) in any time zone,
    but at most ``LINK_LONGEST_DAYS`` after it was made."""
    expires = now + max_age()
    if valid_through is not None:
        # Midnight UTC two days on is past the end of that day everywhere.
        end = datetime.combine(valid_through + timedelta(days=2), time(), now.tzinfo)
        expires = max(expires, end)
    return min(expires, now + timedelta(days=LINK_LONGEST_DAYS))


def issue_link(
    contact: Contact,
    invitation: Invitation | None = None,
    *,
    billing_id: int | None = None,
    valid_through: date | None = None,
) -> tuple[LoginLink, str]:
    """Create a link row for ``contact`` and return it with its signed token (no commit).

    ``billing_id`` is signed into the token: the link lands on that billing.
    ``valid_through`` (a due date) keeps the link usable until that day is over.
    """
    now = utcnow()
    if valid_through is None and invitation is not None:
        valid_through = invitation.period.due_date
    link = LoginLink(
        contact_id=contact.id,
        invitation_id=invitation.id if invitation is not None else None,
        token_version=contact.token_version,
        created_at=now,
        expires_at=expiry(now, valid_through),
    )
    db.session.add(link)
    db.session.flush()
    payload: dict[str, int] = {"l": link.id}
    if billing_id is not None:
        payload["b"] = billing_id
    return link, serializer().dumps(payload)


def billing_of(token: str) -> int | None:
    """The billing a (valid) token was made for, if any."""
    try:
        payload = serializer().loads(token)
    except BadSignature:
        return None
    value = payload.get("b") if isinstance(payload, dict) else None
    return value if isinstance(value, int) else None


def link_url(token: str) -> str:
    """The public URL of a token, from the configured base URL (never the Host header)."""
    return f"{current_app.config['PUBLIC_BASE_URL']}/portal/link/{token}"


def _load_payload(token: str, *, check_age: bool = True) -> int:
    link_id, _ = _load_signed(token, check_age=check_age)
    return link_id


def _load_signed(token: str, *, check_age: bool = True) -> tuple[int, datetime]:
    """The link id a token names and when it was signed.

    The signature caps the age (``resolve_link`` holds it to its row's
    lifetime). A token signed up to :data:`CLOCK_SKEW` "in the future" is
    accepted: the mail worker and the web server may be different hosts whose
    clocks disagree by seconds, and a contact who clicks at once must not be
    told the link has expired (itsdangerous alone refuses any negative age).
    """
    s = serializer()
    try:
        payload, signed_at = s.loads(token, return_timestamp=True)
    except BadSignature as exc:
        raise InvalidLink("invalid") from exc
    link_id = _link_id(payload)
    if link_id is None:
        raise InvalidLink("invalid")
    if check_age:
        age = utcnow() - signed_at
        if age > timedelta(days=LINK_LONGEST_DAYS + 1) or age < -CLOCK_SKEW:
            raise InvalidLink("expired", db.session.get(LoginLink, link_id))
    return link_id, signed_at


def _link_id(payload: object) -> int | None:
    # A correctly signed id beyond the integer column's range names no link.
    if isinstance(payload, dict) and type(payload.get("l")) is int:
        return payload["l"] if 0 < payload["l"] <= 2**31 - 1 else None
    return None


def resolve_link(token: str) -> LoginLink:
    """The usable link a token names; changes nothing (GET/HEAD).

    :raise InvalidLink: invalid, expired, used or revoked.
    """
    link_id, signed_at = _load_signed(token)
    link = db.session.get(LoginLink, link_id)
    if link is None:
        raise InvalidLink("invalid")
    lifetime = aware(link.expires_at) - aware(link.created_at)
    if signed_at + lifetime <= utcnow():
        raise InvalidLink("expired", link)  # signed long before its row was made
    contact = link.contact
    if not contact.active or link.token_version != contact.token_version:
        raise InvalidLink("revoked", link)
    if link.used_at is not None:
        raise InvalidLink("used", link)
    if link.expires_at <= utcnow():
        raise InvalidLink("expired", link)
    return link


def exchange_link(token: str) -> Contact:
    """Mark the link used, atomically, and return its contact (no commit).

    Exactly one of several concurrent exchanges wins: the UPDATE checks the link
    is unused, unexpired and unrevoked in the same statement that uses it.

    :raise InvalidLink: as :func:`resolve_link`, or ``used`` when another click won.
    """
    link = resolve_link(token)
    now = utcnow()
    current_version = (
        sa.select(Contact.token_version)
        .where(Contact.id == LoginLink.contact_id, Contact.active.is_(True))
        .scalar_subquery()
    )
    result = db.session.execute(
        sa.update(LoginLink)
        .where(
            LoginLink.id == link.id,
            LoginLink.used_at.is_(None),
            LoginLink.expires_at > now,
            LoginLink.token_version == current_version,
        )
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    if rowcount(result) != 1:
        raise InvalidLink("used", link)
    db.session.refresh(link)
    return link.contact


def contact_for_fresh_link(token: str) -> Contact | None:
    """The contact a (possibly expired, used or revoked) genuine token names, if active."""
    try:
        link_id = _load_payload(token, check_age=False)
    except InvalidLink:
        return None
    link = db.session.get(LoginLink, link_id)
    if link is None or not link.contact.active:
        return None
    return link.contact


def end_link_session(contact_id: int, link_id: object) -> None:
    """Sign-out: the session started from ``link_id`` ends everywhere (no commit).

    A used link's ``expires_at`` no longer matters for exchanging it, so setting
    it to ``used_at`` marks "the session this link started was signed out";
    :func:`link_session_live` refuses copies of that session cookie.
    """
    if not isinstance(link_id, int):
        return
    db.session.execute(
        sa.update(LoginLink)
        .where(
            LoginLink.id == link_id,
            LoginLink.contact_id == contact_id,
            LoginLink.used_at.is_not(None),
        )
        .values(expires_at=LoginLink.used_at)
        .execution_options(synchronize_session=False)
    )


def link_session_live(contact_id: int, link_id: object) -> bool:
    """Whether the session started from ``link_id`` was not signed out."""
    if not isinstance(link_id, int):
        return False
    return contact_of_live_link(contact_id, link_id)[1]


def contact_of_live_link(
    contact_id: int, link_id: int | None
) -> tuple[Contact | None, bool]:
    """The contact, and whether the session it started from ``link_id`` was
    not signed out, in one statement (every portal request asks both; with
    ``link_id`` None, only the contact). On a GET of a page whose cache key is
    prefetched (portal.web.prefetch), the key is read in the same statement."""
    params: dict[str, Any] = {"contact_id": contact_id, "link_id": link_id}
    stmt = _live_link_statement()
    # A cached page's key read in the same statement (portal.web.prefetch).
    wanted = prefetch.wanted()
    if wanted is not None:
        stmt = prefetch.statement(stmt, wanted[0])
        params.update(wanted[1])
    row = db.session.execute(stmt, params).first()
    if row is None:
        return None, False
    if wanted is not None:
        prefetch.keep(wanted[0], contact_id, wanted[1], row[2:])
    return row[0], row[1] is not None


@functools.cache
def _live_link_statement() -> Any:
    """Built once: :func:`contact_of_live_link` runs on every portal request."""
    return (
        sa.select(Contact, LoginLink.id)
        .outerjoin(
            LoginLink,
            sa.and_(
                LoginLink.id == sa.bindparam("link_id"),
                LoginLink.contact_id == Contact.id,
                LoginLink.used_at.is_not(None),
                LoginLink.expires_at > LoginLink.used_at,
            ),
        )
        .where(Contact.id == sa.bindparam("contact_id"))
    )


def revoke_contact_links(contact: Contact) -> None:
    """End every link and session of ``contact`` (bump ``token_version``; no commit)."""
    db.session.execute(
        sa.update(Contact)
        .where(Contact.id == contact.id)
        .values(token_version=Contact.token_version + 1)
        # sign-in bookkeeping: no page shows it (portal.generations)
        .execution_options(synchronize_session=False, **generations.COVERED_OPTIONS)
    )
    db.session.refresh(contact)
