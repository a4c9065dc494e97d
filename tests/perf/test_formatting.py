"""The fast money filters write exactly what Babel writes (they replace it on
pages with thousands of amounts, SPEC §11)."""

from __future__ import annotations

import random
from decimal import Decimal

import pytest
from babel.numbers import format_currency, format_decimal

from portal.web.templating import LOCALES, money, plain_amount

SAMPLES = [
    "0",
    "-0",
    "0.00",
    "-0.00",
    "0.01",
    "-0.01",
    "0.5",
    "7",
    "-7",
    "999.99",
    "1000",
    "1234.5",
    "-1234.50",
    "1000000.00",
    "999999999999.99",
    "-999999999999.99",
]


def _random_amounts(n: int = 300) -> list[str]:
    rng = random.Random(5)
    out = []
    for _ in range(n):
        cents = rng.randrange(-(10**14), 10**14) // rng.choice([1, 10, 1000, 10**6])
        out.append(str(Decimal(cents).scaleb(-2)))
    return out


@pytest.mark.parametrize("currency", ["USD", "CAD", "EUR", ""])
def test_money_matches_babel(currency: str) -> None:
    locale = LOCALES.get(currency or "USD", "en_US")
    for text in SAMPLES + _random_amounts():
        value = Decimal(text)
        assert money(value, currency) == format_currency(
            value, currency or "USD", locale=locale
        ), text
    assert money(None) == ""
    assert money(12, "USD") == "$12.00"


def test_more_decimals_still_round_like_babel() -> None:
    for text in ("0.005", "1.235", "-2.675", "1E+3", "1.23456"):
        value = Decimal(text)
        assert money(value, "USD") == format_currency(value, "USD", locale="en_US")
        assert plain_amount(value) == format_decimal(
            value, format="#,##0.00", locale="en_US"
        )


def test_plain_amount_matches_babel() -> None:
    for text in SAMPLES + _random_amounts():
        value = Decimal(text)
        assert plain_amount(value) == format_decimal(
            value, format="#,##0.00", locale="en_US"
        ), text
    assert plain_amount(None) == ""
