"""Form input for the back office: strict parsing into typed values, field errors.

:class:`Form` reads text from a submitted form (any mapping of str to str) and
collects one message per field instead of raising, so a page can show every
problem at once (SPEC §5). Domain functions raise :class:`FieldErrors` for rules
that need the database (duplicates, overlaps); the view shows both the same way.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import date
from decimal import Decimal

from sqlalchemy.exc import IntegrityError

from portal.core.amounts import AmountError, parse_amount, parse_percent
from portal.extensions import db

ZERO = Decimal("0.00")
#: Ids are 32-bit integers in the database (PostgreSQL ``integer``): larger ones
#: can't exist, and binding them would fail in the driver.
MAX_ID = 2**31 - 1
_ID = re.compile(r"[1-9][0-9]{0,9}", re.ASCII)
_EMAIL = re.compile(r"[^@\s<>\"',;]+@[^@\s<>\"',;]+\.[^@\s<>\"',;]+", re.ASCII)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class InputError(Exception):
    """A refused action, with a message fit for the user."""


class FieldErrors(InputError):
    """Errors keyed by form field name (``{"email": "Already in use."}``)."""

    def __init__(self, errors: Mapping[str, str], message: str | None = None) -> None:
        super().__init__(message or "Please correct the highlighted fields.")
        self.errors = dict(errors)


def parse_id(value: object) -> int | None:
    """A database id from form, query or path text: 1 to :data:`MAX_ID`, else None.

    The one id parser: select boxes, checkbox lists, query arguments and the
    ``<int:…>`` URL converter all read ids through it (surrounding space is
    ignored; signs, leading zeros, non-ASCII digits and overflows are not ids).
    """
    if not isinstance(value, str):
        return None
    text = value.strip()
    if not _ID.fullmatch(text):
        return None
    number = int(text)
    return number if number <= MAX_ID else None


def clean_text(value: str | None, *, multiline: bool = False) -> str:
    """Strip surrounding space and control characters (NUL included)."""
    text = (value or "").replace("\x00", "")
    if not multiline:
        text = text.replace("\r", " ").replace("\n", " ").replace("\t", " ")
    return _CONTROL.sub("", text).strip()


class Form:
    """Typed, strict reading of a submitted form; problems go to ``errors``."""

    def __init__(self, data: Mapping[str, str]) -> None:
        self.data = data
        self.errors: dict[str, str] = {}

    @property
    def ok(self) -> bool:
        """Whether every field read so far was valid."""
        return not self.errors

    def raw(self, name: str) -> str:
        value = self.data.get(name)
        return value if isinstance(value, str) else ""

    def text(
        self,
        name: str,
        *,
        max_len: int,
        required: bool = True,
        multiline: bool = False,
        label: str = "this field",
    ) -> str:
        """A text field, stripped; required and at most ``max_len`` characters."""
        value = clean_text(self.raw(name), multiline=multiline)
        if required and not value:
            self.errors[name] = f"Enter {label}."
        elif len(value) > max_len:
            self.errors[name] = f"Use at most {max_len} characters."
        return value

    def email(self, name: str, *, required: bool = True) -> str:
        """An email address (one @, no spaces), at most 254 characters."""
        value = clean_text(self.raw(name))
        if not value:
            if required:
                self.errors[name] = "Enter an email address."
            return ""
        if len(value) > 254:
            self.errors[name] = "Use at most 254 characters."
        elif not _EMAIL.fullmatch(value):
            self.errors[name] = "Enter a valid email address, like name@example.com."
        return value

    def choice(
        self, name: str, choices: Iterable[str], *, default: str | None = None
    ) -> str:
        """One of ``choices`` (or ``default`` when blank and a default is given)."""
        allowed = list(choices)
        value = clean_text(self.raw(name))
        if not value and default is not None:
            return default
        if value not in allowed:
            self.errors[name] = "Choose one of the options."
            return default if default is not None else (allowed[0] if allowed else "")
        return value

    def flag(self, name: str) -> bool:
        """A checkbox: present and not "0"/"false"/"off"."""
        return self.raw(name).strip().lower() not in {"", "0", "false", "off", "no"}

    def date(self, name: str, *, required: bool = True) -> date | None:
        """An ISO date (YYYY-MM-DD), as an HTML date input sends it."""
        value = clean_text(self.raw(name))
        if not value:
            if required:
                self.errors[name] = "Enter a date."
            return None
        try:
            if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value, re.ASCII):
                raise ValueError(value)
            day = date.fromisoformat(value)
        except ValueError:
            self.errors[name] = "Enter a date as YYYY-MM-DD."
            return None
        if not 1900 <= day.year <= 2200:
            self.errors[name] = "Enter a date between the years 1900 and 2200."
            return None
        return day

    def integer(
        self,
        name: str,
        *,
        minimum: int,
        maximum: int,
        required: bool = True,
        default: int | None = None,
    ) -> int | None:
        """A whole number between ``minimum`` and ``maximum``."""
        value = clean_text(self.raw(name))
        if not value:
            if required and default is None:
                self.errors[name] = "Enter a number."
            return default
        if not re.fullmatch(r"-?[0-9]{1,9}", value, re.ASCII):
            self.errors[name] = "Enter a whole number."
            return default
        number = int(value)
        if not minimum <= number <= maximum:
            self.errors[name] = f"Enter a number from {minimum} to {maximum}."
            return default
        return number

    def identifier(self, name: str, *, required: bool = True) -> int | None:
        """A database id from a select box."""
        value = clean_text(self.raw(name))
        if not value:
            if required:
                self.errors[name] = "Choose one of the options."
            return None
        number = parse_id(value)
        if number is None:
            self.errors[name] = "Choose one of the options."
        return number

    def percent(self, name: str, *, required: bool = True) -> Decimal:
        """A percentage 0-100 with up to 4 decimals (the strict parser)."""
        try:
            return parse_percent(self.raw(name), allow_blank=not required)
        except AmountError as exc:
            self.errors[name] = str(exc)
            return Decimal("0.0000")

    def amount(
        self, name: str, *, required: bool = True, allow_negative: bool = False
    ) -> Decimal:
        """An amount (the one strict parser of SPEC §5)."""
        try:
            return parse_amount(
                self.raw(name),
                allow_blank=not required,
                allow_negative=allow_negative,
            )
        except AmountError as exc:
            self.errors[name] = str(exc)
            return ZERO

    def ids(self, name: str, getlist: Iterable[str]) -> list[int]:
        """Checkbox ids (``name`` repeated): the well-formed ones, in order, unique."""
        out: list[int] = []
        for raw in getlist:
            number = parse_id(raw)
            if number is not None and number not in out:
                out.append(number)
        return out

    def check(self) -> None:
        """Raise :class:`FieldErrors` if any field was invalid."""
        if self.errors:
            raise FieldErrors(self.errors)


def flush_unique(errors: Mapping[str, str]) -> None:
    """Flush in a savepoint; a unique-key race becomes field errors, not a 500."""
    try:
        with db.session.begin_nested():
            db.session.flush()
    except IntegrityError as exc:
        raise FieldErrors(errors) from exc
