"""Back-office accounts: sign-in with lockout, session ends, user management (SPEC §1, §6).

Every function flushes and never commits. A failed sign-in is itself a change
(the account's counter), so the view commits it too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from portal import audit, generations
from portal.accounts.passwords import hash_password, password_problem, verify_password
from portal.core.statuses import Role
from portal.extensions import db, rowcount
from portal.locks import lock_rows
from portal.models import ApiToken, SignInFailure, User
from portal.timeutil import aware, utcnow
from portal.validation import FieldErrors, InputError, flush_unique

#: Consecutive failed sign-ins that lock an account, and for how long.
MAX_FAILED_LOGINS = 5
LOCK_MINUTES = 15

USER_FIELDS = ["email", "name", "role", "active"]


class LoginFailed(InputError):
    """Wrong email or password, or a locked or inactive account."""


class AccountLocked(LoginFailed):
    """Too many failed sign-ins for this email from this client address.

    The same words whether or not the email is a user's: a lock tells nobody
    which accounts exist. The real user, elsewhere, is not locked out.
    """

    def __init__(self, until: datetime) -> None:
        minutes = max(1, int((until - utcnow()).total_seconds() // 60) + 1)
        super().__init__(
            "Too many failed sign-ins for this email address from your network. "
            f"Try again in {minutes} minute{'s' if minutes != 1 else ''}, or ask "
            "an administrator to reset your password."
        )
        self.until = until


WRONG_CREDENTIALS = "Wrong email or password."


def find_by_email(email: str) -> User | None:
    """The user with this email, case-insensitively."""
    return db.session.scalar(
        sa.select(User).where(sa.func.lower(User.email) == email.strip().lower())
    )


def _failure_key(email: str, address: str | None) -> tuple[str, str]:
    return email.strip().lower()[:254], (address or "")[:64]


def authenticate(email: str, password: str, address: str | None = None) -> User:
    """The user for these credentials; count failures and lock after too many.

    Failures are counted per typed email (known or not) and client address:
    after ``MAX_FAILED_LOGINS`` that pair is locked for ``LOCK_MINUTES``, the
    same way for a made-up email as for a real one, and the account's owner
    signing in from another address is not affected.

    :raise AccountLocked: this email is locked from this address.
    :raise LoginFailed: wrong email or password, or an inactive account.
    """
    key = _failure_key(email, address)
    now = utcnow()
    record = db.session.scalar(
        sa.select(SignInFailure).where(
            SignInFailure.email == key[0], SignInFailure.address == key[1]
        )
    )
    locked_until = aware(record.locked_until) if record is not None else None
    user = find_by_email(email) if email else None
    if locked_until is not None and locked_until > now:
        verify_password(None, password)  # same time as a real check
        raise AccountLocked(locked_until)
    good = verify_password(user.password_hash if user else None, password)
    if user is None or not good:
        until = _count_failure(key, user, now)
        if until is not None:
            raise AccountLocked(until)
        raise LoginFailed(WRONG_CREDENTIALS)
    if not user.active:
        raise LoginFailed(WRONG_CREDENTIALS)
    if record is not None:
        db.session.execute(
            sa.delete(SignInFailure).where(SignInFailure.id == record.id)
        )
    user.failed_logins = 0
    user.locked_until = None
    user.last_login_at = now
    audit.record(user, "user.login", user)
    db.session.flush()
    return user


def _count_failure(
    key: tuple[str, str], user: User | None, now: datetime
) -> datetime | None:
    """Count one failure for (email, address), atomically; the lock's end if locked."""
    where = (SignInFailure.email == key[0], SignInFailure.address == key[1])

    def bump() -> int:
        return rowcount(
            db.session.execute(
                sa.update(SignInFailure)
                .where(*where)
                .values(failures=SignInFailure.failures + 1, updated_at=now)
                .execution_options(synchronize_session=False)
            )
        )

    if bump() != 1:
        try:
            with db.session.begin_nested():
                db.session.add(
                    SignInFailure(
                        email=key[0], address=key[1], failures=1, updated_at=now
                    )
                )
                db.session.flush()
        except IntegrityError:
            bump()  # a parallel first failure inserted the row
    failures = db.session.scalar(sa.select(SignInFailure.failures).where(*where)) or 0
    if user is not None:
        audit.record(None, "user.login_failed", user, after={"failed_logins": failures})
    if failures < MAX_FAILED_LOGINS:
        return None
    until = now + timedelta(minutes=LOCK_MINUTES)
    db.session.execute(
        sa.update(SignInFailure)
        .where(*where)
        .values(failures=0, locked_until=until)
        .execution_options(synchronize_session=False)
    )
    if user is not None:
        audit.record(None, "user.locked", user, after={"until": until.isoformat()})
    db.session.flush()
    return until


def clear_failures(user: User) -> None:
    """Lift every sign-in lock on ``user``'s email (a new password was set)."""
    db.session.execute(
        sa.delete(SignInFailure).where(SignInFailure.email == user.email.lower())
    )


def end_sessions(user: User) -> None:
    """Bump the session version: every copy of every session of ``user`` ends."""
    db.session.execute(
        sa.update(User)
        .where(User.id == user.id)
        .values(session_version=User.session_version + 1)
        # sign-in bookkeeping: no page shows it (portal.generations)
        .execution_options(synchronize_session=False, **generations.COVERED_OPTIONS)
    )
    db.session.refresh(user)


def logout(user: User) -> None:
    """Sign out everywhere (SPEC §6: logout ends every copy of the session)."""
    end_sessions(user)
    audit.record(user, "user.logout", user)
    db.session.flush()


@dataclass
class UserInput:
    """A user form, already parsed."""

    email: str
    name: str
    role: str
    active: bool = True
    password: str | None = None


def _check_email_free(email: str, user_id: int | None) -> None:
    other = find_by_email(email)
    if other is not None and other.id != user_id:
        raise FieldErrors({"email": "Another user already has this email address."})


def _check_password(password: str, field: str = "password") -> None:
    problem = password_problem(password)
    if problem:
        raise FieldErrors({field: problem})


def create_user(actor: User, data: UserInput) -> User:
    """Create a back-office user."""
    _check_email_free(data.email, None)
    _check_password(data.password or "")
    user = User(
        email=data.email,
        name=data.name,
        role=data.role,
        active=data.active,
        password_hash=hash_password(data.password or ""),
    )
    db.session.add(user)
    flush_unique({"email": "Another user already has this email address."})
    audit.record(actor, "user.create", user, after=audit.snapshot(user, USER_FIELDS))
    return user


def _active_admins(excluding: int) -> int:
    return (
        db.session.scalar(
            sa.select(sa.func.count(User.id)).where(
                User.role == Role.ADMIN, User.active.is_(True), User.id != excluding
            )
        )
        or 0
    )


def update_user(actor: User, user: User, data: UserInput) -> None:
    """Change a user's email, name, role or active flag (ending sessions if needed)."""
    if user.id == actor.id and (not data.active or data.role != actor.role):
        raise InputError(
            "You cannot deactivate yourself or change your own role; "
            "ask another administrator."
        )
    losing_admin = user.role == Role.ADMIN and (
        data.role != Role.ADMIN or not data.active
    )
    if losing_admin and user.active:
        # Lock every active admin first: two admins demoting each other at once
        # are then served one after the other, and the second sees that only
        # one admin is left (issue 17). PostgreSQL: row locks; SQLite: the
        # write lock.
        lock_rows(User, User.role == Role.ADMIN, User.active.is_(True))
    if losing_admin and user.active and _active_admins(user.id) == 0:
        raise InputError("At least one active administrator must remain.")
    _check_email_free(data.email, user.id)
    before = audit.snapshot(user, USER_FIELDS)
    sessions_end = data.role != user.role or (user.active and not data.active)
    user.email, user.name, user.role, user.active = (
        data.email,
        data.name,
        data.role,
        data.active,
    )
    if data.active and not before["active"]:
        user.failed_logins = 0
        user.locked_until = None
    flush_unique({"email": "Another user already has this email address."})
    after = audit.snapshot(user, USER_FIELDS)
    if sessions_end:
        end_sessions(user)
    if before["active"] and not data.active:
        # Deactivation ends the user's API tokens for good: reactivating the
        # user must not bring old, possibly leaked, tokens back (issue 17).
        db.session.execute(
            sa.update(ApiToken)
            .where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
            .values(revoked_at=utcnow())
            .execution_options(synchronize_session=False)
        )
    if before != after:
        audit.record(actor, "user.update", user, before=before, after=after)
    db.session.flush()


def reset_password(actor: User, user: User, password: str) -> None:
    """Set a new password for ``user``; unlock it and end its sessions."""
    _check_password(password)
    user.password_hash = hash_password(password)
    user.failed_logins = 0
    user.locked_until = None
    clear_failures(user)
    db.session.flush()
    end_sessions(user)
    audit.record(actor, "user.password_reset", user)
    db.session.flush()


def change_own_password(user: User, current: str, new: str, confirm: str) -> None:
    """The signed-in user changes their password; every other session ends."""
    if not verify_password(user.password_hash, current):
        raise FieldErrors({"current_password": "That is not your current password."})
    _check_password(new, "new_password")
    if new != confirm:
        raise FieldErrors({"confirm_password": "The two passwords differ."})
    if verify_password(user.password_hash, new):
        raise FieldErrors({"new_password": "Choose a password you haven't used here."})
    user.password_hash = hash_password(new)
    db.session.flush()
    end_sessions(user)
    audit.record(user, "user.password_change", user)
    db.session.flush()
