"""Tests of portal.core.amounts: the strict amount and percentage parser of SPEC §5."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from portal.core.amounts import (
    MAX_AMOUNT,
    AmountError,
    format_amount,
    parse_amount,
    parse_percent,
)

D = Decimal

FORMAT = "Enter an amount like 1,234.50."
DIGITS = "digits 0-9"
DECIMALS = "Use at most 2 decimal places."
SPECIAL = "not NaN or Infinity"
EXPONENT = "without an exponent"
GROUPING = "Group digits in threes"
TOO_LARGE = "Amounts are limited to 999,999,999,999.99."
TOO_LONG = "at most 40 characters"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1234.5", "1234.50"),
        ("1,234.50", "1234.50"),
        ("$1,234.50", "1234.50"),
        ("-500", "-500.00"),
        ("-$1,234.50", "-1234.50"),
        ("-1,234.50", "-1234.50"),
        ("0", "0.00"),
        (" 12 ", "12.00"),
        ("\t7.05\r\n", "7.05"),
        ("999999999999.99", "999999999999.99"),
        ("999,999,999,999.99", "999999999999.99"),
        ("-999999999999.99", "-999999999999.99"),
        ("", "0.00"),
        ("   ", "0.00"),
        (None, "0.00"),
        ("-0", "0.00"),  # never negative zero
        ("-$0.00", "0.00"),
        ("1,234", "1234.00"),
        ("1,234,567.8", "1234567.80"),
        ("0.5", "0.50"),
        ("$0.01", "0.01"),
        ("007", "7.00"),
    ],
)
def test_accepted(text: str | None, expected: str) -> None:
    result = parse_amount(text)
    assert str(result) == expected
    assert result.as_tuple().exponent == -2


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("abc", FORMAT),
        ("12a", FORMAT),
        ("1.234", DECIMALS),
        ("1,234.567", DECIMALS),
        ("0.001", DECIMALS),
        ("NaN", SPECIAL),
        ("nan", SPECIAL),
        ("sNaN", SPECIAL),
        ("NaN123", SPECIAL),
        ("Infinity", SPECIAL),
        ("-inf", SPECIAL),
        ("Inf", SPECIAL),
        ("1e5", EXPONENT),
        ("1E309", EXPONENT),
        ("1.5e-3", EXPONENT),
        ("1,23", GROUPING),
        ("12,34,567", GROUPING),
        ("1,2345", GROUPING),
        ("0,123", GROUPING),
        (",123", GROUPING),
        ("\u0661\u0662\u0663", DIGITS),  # Arabic-Indic digits
        ("\uff11\uff12\uff13", DIGITS),  # fullwidth digits
        ("12\u00a0", DIGITS),  # no-break space is not stripped
        ("1000000000000.00", TOO_LARGE),
        ("1,000,000,000,000", TOO_LARGE),
        ("-1000000000000", TOO_LARGE),
        ("9" * 40, TOO_LARGE),
        ("--5", FORMAT),
        ("$", FORMAT),
        ("-", FORMAT),
        (".", FORMAT),
        ("1.", FORMAT),
        (".5", FORMAT),
        ("1 000", FORMAT),
        ("1\x00", FORMAT),
        ("\x00", FORMAT),
        ("1_000", FORMAT),  # Decimal() would accept this
        ("+5", FORMAT),
        ("$-1,234.50", FORMAT),
        ("0x10", FORMAT),
        ("(500)", FORMAT),
        ("1" * 41, TOO_LONG),
        ("1" * 10_000, TOO_LONG),
    ],
)
def test_refused(text: str, fragment: str) -> None:
    with pytest.raises(AmountError) as info:
        parse_amount(text)
    assert fragment in str(info.value)
    assert info.value.field == "amount"


def test_amount_error_is_a_value_error_with_the_field() -> None:
    with pytest.raises(ValueError) as info:
        parse_amount("abc", field="work_this_period")
    assert isinstance(info.value, AmountError)
    assert info.value.field == "work_this_period"
    assert str(info.value) == FORMAT
    assert info.value.message == FORMAT


@pytest.mark.parametrize("text", ["-5", "-0.01", "-$1,234.50"])
def test_negative_refused_when_not_allowed(text: str) -> None:
    with pytest.raises(AmountError, match="This amount cannot be negative."):
        parse_amount(text, allow_negative=False)


@pytest.mark.parametrize("text", ["-0", "-0.00", "0", "5"])
def test_zero_and_positive_allowed_when_negative_is_not(text: str) -> None:
    assert parse_amount(text, allow_negative=False) >= 0


@pytest.mark.parametrize("text", ["", "   ", "\t\n", None])
def test_blank_refused_when_not_allowed(text: str | None) -> None:
    with pytest.raises(AmountError, match=r"^Enter an amount\.$"):
        parse_amount(text, allow_blank=False)


def test_non_string_is_a_programming_error() -> None:
    with pytest.raises(TypeError):
        parse_amount(12)


# --------------------------------------------------------------------------
# Percentages
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10", "10.0000"),
        ("10.5", "10.5000"),
        ("10.5%", "10.5000"),
        ("10 %", "10.0000"),
        (" 5% ", "5.0000"),
        ("0", "0.0000"),
        ("100", "100.0000"),
        ("100.0000", "100.0000"),
        ("12.3456", "12.3456"),
    ],
)
def test_percent_accepted(text: str, expected: str) -> None:
    assert str(parse_percent(text)) == expected


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("100.0001", "between 0 and 100"),
        ("101", "between 0 and 100"),
        ("-1", "between 0 and 100"),
        ("-0.5%", "between 0 and 100"),
        ("10.12345", "at most 4 decimal places"),
        ("abc", "Enter a percentage like 10 or 10.5."),
        ("%", "Enter a percentage like 10 or 10.5."),
        ("1e1", "Enter a percentage like 10 or 10.5."),
        ("10%%", "Enter a percentage like 10 or 10.5."),
        ("NaN", "not NaN or Infinity"),
        ("Infinity%", "not NaN or Infinity"),
        ("\u0661\u0660", "digits 0-9"),
        ("1" * 41, "at most 40 characters"),
        ("", "Enter a percentage."),
        (None, "Enter a percentage."),
    ],
)
def test_percent_refused(text: str | None, fragment: str) -> None:
    with pytest.raises(AmountError) as info:
        parse_percent(text)
    assert fragment in str(info.value)


def test_percent_blank_allowed() -> None:
    assert str(parse_percent("  ", allow_blank=True)) == "0.0000"
    assert str(parse_percent(None, allow_blank=True)) == "0.0000"


# --------------------------------------------------------------------------
# format_amount
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (D("1234.5"), "1,234.50"),
        (D("-1234.5"), "-1,234.50"),
        (D("0"), "0.00"),
        (0, "0.00"),
        (D("-0.00"), "0.00"),
        (D("-0.001"), "0.00"),
        (D("0.005"), "0.01"),
        (D("999"), "999.00"),
        (D("1000000"), "1,000,000.00"),
        (D("999999999999.99"), "999,999,999,999.99"),
        (1234, "1,234.00"),
    ],
)
def test_format_amount(value: Decimal | int, expected: str) -> None:
    assert format_amount(value) == expected


@pytest.mark.parametrize("value", [1.5, True, "1.00", None])
def test_format_amount_refuses_non_decimals(value: object) -> None:
    with pytest.raises(TypeError):
        format_amount(value)


# --------------------------------------------------------------------------
# Properties
# --------------------------------------------------------------------------

MAX_CENTS = int(MAX_AMOUNT * 100)
amounts = st.integers(min_value=-MAX_CENTS, max_value=MAX_CENTS).map(
    lambda c: D(c).scaleb(-2)
)


@given(amounts)
def test_format_then_parse_round_trips(value: Decimal) -> None:
    text = format_amount(value)
    parsed = parse_amount(text)
    assert parsed == value
    assert str(parsed) == str(value if value else D("0.00"))
    assert parse_amount(f"${text}" if value >= 0 else f"-${text[1:]}") == value
    assert parse_amount(format(value, "f")) == value


@given(st.text(max_size=60))
def test_any_text_is_parsed_or_refused_cleanly(text: str) -> None:
    try:
        value = parse_amount(text)
    except AmountError as error:
        assert str(error)
    else:
        assert value.is_finite()
        assert abs(value) <= MAX_AMOUNT
        assert value.as_tuple().exponent == -2


@given(st.text(alphabet="0123456789,.-$eE%naNiIf ", max_size=20))
def test_number_like_text_is_parsed_or_refused_cleanly(text: str) -> None:
    for parse in (parse_amount, parse_percent):
        try:
            value = parse(text)
        except AmountError as error:
            assert str(error)
        else:
            assert value.is_finite()


@given(st.integers(min_value=0, max_value=100 * 10**4))
def test_percent_round_trip(ten_thousandths: int) -> None:
    value = D(ten_thousandths).scaleb(-4)
    assert parse_percent(format(value, "f")) == value
    assert parse_percent(f"{value:f}%") == value
