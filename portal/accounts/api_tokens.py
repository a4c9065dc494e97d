"""Per-user API tokens for the exports JSON API (SPEC §7, §10).

A token is shown once, when it is created; the database keeps only its SHA-256
hash (looked up by hash, so no secret is ever compared byte by byte) and a short
prefix to recognise it by. Revoking a token or deactivating its user ends it.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field

import sqlalchemy as sa

from portal import audit
from portal.extensions import db, rowcount
from portal.models import ApiToken, User
from portal.timeutil import aware, utcnow
from portal.validation import clean_text

#: Every token starts with this, so leaked tokens are easy to grep for.
TOKEN_MARK = "pbt_"  # noqa: S105 - a public marker, not a secret
PREFIX_LENGTH = 12
NAME_LIMIT = 80
MAX_LIVE_TOKENS = 20


@dataclass
class TokenInvalid(Exception):
    """Field errors for the token form."""

    errors: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return next(iter(self.errors.values()), "Check the form.")


def hash_token(raw: str) -> str:
    """The SHA-256 hex digest stored for a token."""
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def create_token(user: User, name: str) -> tuple[ApiToken, str]:
    """A new token for ``user``; returns the row and the raw token (shown once)."""
    label = " ".join(clean_text(name).split())
    if not label:
        raise TokenInvalid({"name": "Name the token (e.g. the tool that uses it)."})
    if len(label) > NAME_LIMIT:
        raise TokenInvalid({"name": f"Use at most {NAME_LIMIT} characters."})
    live = db.session.execute(
        sa.select(sa.func.count(ApiToken.id)).where(
            ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None)
        )
    ).scalar_one()
    if live >= MAX_LIVE_TOKENS:
        raise TokenInvalid(
            {"name": f"You have {live} live tokens: revoke one you no longer use."}
        )
    raw = TOKEN_MARK + secrets.token_urlsafe(32)
    token = ApiToken(
        user_id=user.id,
        name=label,
        token_hash=hash_token(raw),
        prefix=raw[:PREFIX_LENGTH],
    )
    db.session.add(token)
    db.session.flush()
    audit.record(
        user,
        "api_token.create",
        token,
        after={"name": label, "prefix": token.prefix},
        object_type="api_token",
    )
    return token, raw


def revoke_token(token: ApiToken, user: User) -> bool:
    """Revoke ``token`` (its owner's action); False if it was already revoked."""
    if token.user_id != user.id:
        raise PermissionError("That token belongs to someone else.")
    result = db.session.execute(
        sa.update(ApiToken)
        .where(ApiToken.id == token.id, ApiToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    db.session.refresh(token)
    if rowcount(result) != 1:
        return False
    audit.record(
        user,
        "api_token.revoke",
        token,
        before={"revoked": False},
        after={"revoked": True, "prefix": token.prefix},
        object_type="api_token",
    )
    db.session.flush()
    return True


def authenticate(raw: str | None) -> ApiToken | None:
    """The live token ``raw`` names, whose user is active staff; else None."""
    if not raw or not raw.startswith(TOKEN_MARK) or len(raw) > 200:
        return None
    token = db.session.scalar(
        sa.select(ApiToken).where(ApiToken.token_hash == hash_token(raw))
    )
    if token is None or token.revoked_at is not None:
        return None
    if not token.user.active:
        return None
    return token


def touch(token: ApiToken) -> bool:
    """Record the token's use (at most once a minute, to spare the database).

    True when it wrote (the caller commits only then: a GET that wrote nothing
    must not pay a commit).
    """
    now = utcnow()
    last = aware(token.last_used_at)
    if last is None or (now - last).total_seconds() > 60:
        db.session.execute(
            sa.update(ApiToken)
            .where(ApiToken.id == token.id)
            .values(last_used_at=now)
            .execution_options(synchronize_session=False)
        )
        return True
    return False


def tokens_of(user: User) -> list[ApiToken]:
    """The user's tokens, newest first."""
    return list(
        db.session.scalars(
            sa.select(ApiToken)
            .where(ApiToken.user_id == user.id)
            .order_by(ApiToken.id.desc())
        )
    )
