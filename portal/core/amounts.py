"""The one strict parser for every amount and percentage field (SPEC §5).

An ASCII regex, not WTForms' ``DecimalField`` (which lets ``NaN``, ``sNaN``,
``1e309`` and non-ASCII digits through).  Every refusal is an ``AmountError``
whose ``str()`` is a message meant to be shown beside the field.

Accepted amounts: an optional leading ``-``, an optional ``$``, digits written
plainly (``1234``) or grouped in threes with commas (``1,234,567``), and an
optional ``.`` followed by one or two digits.  At least one digit is required
before the point (``.5`` and ``1.`` are refused).  Surrounding ASCII whitespace
is ignored; the 40-character limit applies to the text without it.
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal

from portal.core.money import ZERO, to_cents

__all__ = [
    "MAX_AMOUNT",
    "MAX_LENGTH",
    "AmountError",
    "format_amount",
    "parse_amount",
    "parse_percent",
]

MAX_AMOUNT = Decimal("999999999999.99")
MAX_LENGTH = 40
PERCENT_PLACES = Decimal("0.0001")
ZERO_PERCENT = Decimal("0.0000")
MAX_PERCENT = Decimal(100)

_ASCII_WHITESPACE = " \t\n\r\x0b\x0c"

MSG_REQUIRED = "Enter an amount."
MSG_FORMAT = "Enter an amount like 1,234.50."
MSG_DIGITS = "Use only the digits 0-9 (enter an amount like 1,234.50)."
MSG_TOO_LONG = f"Enter at most {MAX_LENGTH} characters."
MSG_SPECIAL = "Enter an ordinary number, not NaN or Infinity."
MSG_EXPONENT = "Write the amount out in full, without an exponent like 1e5."
MSG_DECIMALS = "Use at most 2 decimal places."
MSG_GROUPING = "Group digits in threes with commas, like 1,234,567."
MSG_TOO_LARGE = "Amounts are limited to 999,999,999,999.99."
MSG_NEGATIVE = "This amount cannot be negative."

MSG_PERCENT_REQUIRED = "Enter a percentage."
MSG_PERCENT_FORMAT = "Enter a percentage like 10 or 10.5."
MSG_PERCENT_DECIMALS = "Use at most 4 decimal places in a percentage."
MSG_PERCENT_RANGE = "Enter a percentage between 0 and 100."
MSG_PERCENT_DIGITS = "Use only the digits 0-9 (enter a percentage like 10 or 10.5)."

# Only ASCII [0-9] (re.ASCII too): Arabic-Indic or fullwidth digits never match.
_AMOUNT = re.compile(
    r"(?P<minus>-)?\$?"
    r"(?P<int>[1-9][0-9]{0,2}(?:,[0-9]{3})+|[0-9]+)"
    r"(?:\.(?P<frac>[0-9]{1,2}))?",
    re.ASCII,
)
# Diagnosis only (never accepted): well-formed but with too many decimals.
_TOO_MANY_DECIMALS = re.compile(
    r"-?\$?(?:[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)\.[0-9]{3,}", re.ASCII
)
# Diagnosis only: digits and commas (badly grouped), optional decimals.
_BAD_GROUPING = re.compile(r"-?\$?[0-9,]*,[0-9,]*(?:\.[0-9]*)?", re.ASCII)
# Diagnosis only: what Decimal() would read as an exponent, e.g. 1e5, 1.5E-3.
_EXPONENT = re.compile(r"[-+]?\$?[0-9,]*\.?[0-9]*e[-+]?[0-9]+", re.ASCII | re.I)
# Diagnosis only: NaN, sNaN (with an optional payload), Inf, Infinity.
_SPECIAL = re.compile(r"[-+]?\$?(?:s?nan[0-9]*|inf|infinity)", re.ASCII | re.I)

_PERCENT = re.compile(r"(?P<int>[0-9]+)(?:\.(?P<frac>[0-9]{1,4}))?[ ]*%?", re.ASCII)
_PERCENT_DECIMALS = re.compile(r"[0-9]+\.[0-9]{5,}[ ]*%?", re.ASCII)
_PERCENT_NEGATIVE = re.compile(r"-[0-9]+(?:\.[0-9]*)?[ ]*%?", re.ASCII)


class AmountError(ValueError):
    """A refused amount or percentage; ``str(e)`` is the user-facing message."""

    def __init__(self, message: str, field: str = "amount") -> None:
        """Keep the message as the only argument so ``str(e)`` is the message."""
        super().__init__(message)
        self.message = message
        self.field = field


def _clean(text: str | None) -> str:
    """Strip surrounding ASCII whitespace; None counts as blank (§5)."""
    if text is None:
        return ""
    if not isinstance(text, str):
        raise TypeError(f"expected str or None, not {type(text).__name__}")
    return text.strip(_ASCII_WHITESPACE)


def _diagnose_amount(text: str) -> str:
    """The most specific message for text the amount regex refused (§5)."""
    if not text.isascii():
        return MSG_DIGITS
    if _SPECIAL.fullmatch(text):
        return MSG_SPECIAL
    if _EXPONENT.fullmatch(text) and any(ch.isdigit() for ch in text):
        return MSG_EXPONENT
    if _TOO_MANY_DECIMALS.fullmatch(text):
        return MSG_DECIMALS
    if _BAD_GROUPING.fullmatch(text) and any(ch.isdigit() for ch in text):
        return MSG_GROUPING
    return MSG_FORMAT


def parse_amount(
    text: str | None,
    *,
    allow_blank: bool = True,
    allow_negative: bool = True,
    field: str = "amount",
) -> Decimal:
    """SPEC §5: parse one amount field strictly into a Decimal quantized to 0.01."""
    cleaned = _clean(text)
    if not cleaned:
        if allow_blank:
            return ZERO
        raise AmountError(MSG_REQUIRED, field)
    if len(cleaned) > MAX_LENGTH:
        raise AmountError(MSG_TOO_LONG, field)
    match = _AMOUNT.fullmatch(cleaned)
    if match is None:
        raise AmountError(_diagnose_amount(cleaned), field)
    digits = match["int"].replace(",", "")
    if match["frac"]:
        digits = f"{digits}.{match['frac']}"
    magnitude = Decimal(digits)  # at most 40 ASCII digits: always exact
    if magnitude > MAX_AMOUNT:
        raise AmountError(MSG_TOO_LARGE, field)
    if magnitude.is_zero():
        return ZERO  # "-0", "-0.00", "$0" all mean zero, never negative zero
    if match["minus"]:
        if not allow_negative:
            raise AmountError(MSG_NEGATIVE, field)
        magnitude = -magnitude
    return to_cents(magnitude)


def parse_percent(
    text: str | None, *, allow_blank: bool = False, field: str = "percent"
) -> Decimal:
    """SPEC §4/§5: parse a percentage 0-100 with up to 4 decimals ("10", "10.5%")."""
    cleaned = _clean(text)
    if not cleaned:
        if allow_blank:
            return ZERO_PERCENT
        raise AmountError(MSG_PERCENT_REQUIRED, field)
    if len(cleaned) > MAX_LENGTH:
        raise AmountError(MSG_TOO_LONG, field)
    match = _PERCENT.fullmatch(cleaned)
    if match is None:
        if not cleaned.isascii():
            message = MSG_PERCENT_DIGITS
        elif _SPECIAL.fullmatch(cleaned.rstrip(" %")):
            message = MSG_SPECIAL
        elif _PERCENT_DECIMALS.fullmatch(cleaned):
            message = MSG_PERCENT_DECIMALS
        elif _PERCENT_NEGATIVE.fullmatch(cleaned):
            message = MSG_PERCENT_RANGE
        else:
            message = MSG_PERCENT_FORMAT
        raise AmountError(message, field)
    digits = match["int"]
    if match["frac"]:
        digits = f"{digits}.{match['frac']}"
    value = Decimal(digits)  # at most 40 ASCII digits: always exact
    if value > MAX_PERCENT:
        raise AmountError(MSG_PERCENT_RANGE, field)
    return value.quantize(PERCENT_PLACES, rounding=ROUND_HALF_UP)


def format_amount(value: Decimal) -> str:
    """SPEC §5 display form of an amount: "1,234.50", "-1,234.50" (no symbol)."""
    if isinstance(value, (bool, float)) or not isinstance(value, (Decimal, int)):
        raise TypeError(f"expected Decimal or int, not {type(value).__name__}")
    return f"{to_cents(value):,.2f}"
