"""Input rules shared by the domain and the form layer: ids, text, field errors.

Forms (``portal/web/forms.py`` and each blueprint's ``forms.py``) read a submitted
form strictly and collect one message per field, so a page can show every
problem at once (SPEC §5). Domain functions raise :class:`FieldErrors` for rules
that need the database (duplicates, overlaps); the views put those beside the
same fields. This module imports no form library: the domain may use it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal

from sqlalchemy.exc import IntegrityError

from portal.extensions import db

ZERO = Decimal("0.00")
#: Ids are 32-bit integers in the database (PostgreSQL ``integer``): larger ones
#: can't exist, and binding them would fail in the driver.
MAX_ID = 2**31 - 1
_ID = re.compile(r"[1-9][0-9]{0,9}", re.ASCII)
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


def flush_unique(errors: Mapping[str, str]) -> None:
    """Flush in a savepoint; a unique-key race becomes field errors, not a 500."""
    try:
        with db.session.begin_nested():
            db.session.flush()
    except IntegrityError as exc:
        raise FieldErrors(errors) from exc
