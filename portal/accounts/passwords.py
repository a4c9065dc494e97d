"""Password hashing with argon2id at OWASP's recommended parameters (SPEC §6)."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

# OWASP Password Storage Cheat Sheet: argon2id, m=19 MiB, t=2, p=1.
_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
#: A hash to verify against when the account doesn't exist (constant time):
#: ``_hasher.hash("not-a-real-password")``, written out so that importing this
#: module does not spend an argon2 hash (19 MiB, ~50 ms) on every start-up.
#: tests/test_startup.py checks it still matches the parameters above.
_DUMMY = "$argon2id$v=19$m=19456,t=2,p=1$7mkqDjYRHxR+4QfCdBJ2rw$g3c0mHg+cHHh34NTZc6JM11mNzf0Hy9efs9Ywox6n3c"

MIN_LENGTH = 12


def hash_password(password: str) -> str:
    """An argon2id hash of ``password``."""
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """Whether ``password`` matches; spends the same time when there is no hash."""
    try:
        return _hasher.verify(password_hash or _DUMMY, password) and bool(password_hash)
    except (VerificationError, InvalidHashError):
        return False


def password_problem(password: str) -> str | None:
    """Why ``password`` is too weak, or None."""
    if len(password) < MIN_LENGTH:
        return f"Use at least {MIN_LENGTH} characters."
    if len(password) > 256:
        return "Use at most 256 characters."
    if len(set(password)) < 5:
        return "Use a less repetitive password."
    return None
