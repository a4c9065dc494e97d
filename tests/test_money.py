"""Tests of portal.core.money: SPEC §4's worked example, edge cases and properties."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portal.core.money import (
    CENT,
    ZERO,
    BillingFigures,
    BillingTotals,
    LineFigures,
    LineInput,
    UpstreamSource,
    apply_markup,
    compute_billing,
    compute_line,
    figures_from_dict,
    figures_to_dict,
    line_columns_from_dict,
    pct_of,
    percent_complete,
    rollup_by_cost_code,
    to_cents,
)

D = Decimal
WORK_PCT = D("10.0000")
MATERIALS_PCT = D("5.0000")


def line(
    original: str,
    change_orders: str = "0",
    previous: str = "0",
    work: str = "0",
    materials: str = "0",
    stored_before: str = "0",
    installed: str = "0",
) -> LineInput:
    return LineInput(
        original_value=D(original),
        change_orders=D(change_orders),
        previous_work=D(previous),
        work_this_period=D(work),
        materials_stored=D(materials),
        materials_previous=D(stored_before),
        materials_installed=D(installed),
    )


def billing(lines: list[LineInput], **kwargs: Decimal) -> BillingFigures:
    return compute_billing(
        lines,
        work_retainage_pct=WORK_PCT,
        materials_retainage_pct=MATERIALS_PCT,
        **kwargs,
    )


# --------------------------------------------------------------------------
# SPEC §4 worked example, to the cent
# --------------------------------------------------------------------------


@pytest.fixture
def billing_1() -> BillingFigures:
    """Billing 1, approved as claimed: L1 work 20,000; L2 materials 6,000."""
    return billing(
        [
            line("50000.00", work="20000.00"),
            line("30000.00", materials="6000.00"),
            line("20000.00"),
        ]
    )


@pytest.fixture
def billing_2(billing_1: BillingFigures) -> BillingFigures:
    """Billing 2 with the reviewer's approved figures (L3 cut to 10,000)."""
    l1, l2, l3 = billing_1.lines
    # D is earlier approved *work* only; F carries (SPEC §4): L2's 6,000.00
    # stored in billing 1, of which 3,500.00 is installed this period (part of
    # its 4,000.00 of work) and nothing new is stored, leaves F = 2,500.00.
    return billing(
        [
            line("50000.00", "0", str(l1.work_this_period), work="15000.00"),
            line(
                "30000.00",
                "5000.00",
                str(l2.work_this_period),
                work="4000.00",
                stored_before=str(l2.materials_stored),
                installed="3500.00",
            ),
            line("20000.00", "0", str(l3.work_this_period), work="10000.00"),
        ],
        previous_certificates=billing_1.totals.total_earned_less_retainage,
    )


def test_worked_example_billing_1(billing_1: BillingFigures) -> None:
    t = billing_1.totals
    assert t.total_completed_and_stored == D("26000.00")
    assert t.retainage_on_work == D("2000.00")
    assert t.retainage_on_materials == D("300.00")
    assert t.retainage == D("2300.00")
    assert t.total_earned_less_retainage == D("23700.00")
    assert t.previous_certificates == ZERO
    assert t.current_payment_due == D("23700.00")
    assert t.original_contract_sum == D("100000.00")


@pytest.mark.parametrize(
    ("index", "expected"),
    [
        (
            0,  # L1 rough-in
            {
                "original_value": "50000.00",
                "change_orders": "0.00",
                "scheduled_value": "50000.00",
                "previous_work": "20000.00",
                "work_this_period": "15000.00",
                "materials_stored": "0.00",
                "total_completed_and_stored": "35000.00",
                "percent_complete": "70.00",
                "balance_to_finish": "15000.00",
                "retainage_on_work": "3500.00",
                "retainage_on_materials": "0.00",
                "retainage": "3500.00",
                "materials_previous": "0.00",
                "materials_new": "0.00",
                "materials_installed": "0.00",
            },
        ),
        (
            1,  # L2 fixtures, with CO-1
            {
                "original_value": "30000.00",
                "change_orders": "5000.00",
                "scheduled_value": "35000.00",
                "previous_work": "0.00",
                "work_this_period": "4000.00",
                "materials_stored": "2500.00",
                "total_completed_and_stored": "6500.00",
                "percent_complete": "18.57",
                "balance_to_finish": "28500.00",
                "retainage_on_work": "400.00",
                "retainage_on_materials": "125.00",
                "retainage": "525.00",
                "materials_previous": "6000.00",
                "materials_new": "0.00",
                "materials_installed": "3500.00",
            },
        ),
        (
            2,  # L3 switchgear, approved at 10,000 instead of 12,345.67
            {
                "original_value": "20000.00",
                "change_orders": "0.00",
                "scheduled_value": "20000.00",
                "previous_work": "0.00",
                "work_this_period": "10000.00",
                "materials_stored": "0.00",
                "total_completed_and_stored": "10000.00",
                "percent_complete": "50.00",
                "balance_to_finish": "10000.00",
                "retainage_on_work": "1000.00",
                "retainage_on_materials": "0.00",
                "retainage": "1000.00",
                "materials_previous": "0.00",
                "materials_new": "0.00",
                "materials_installed": "0.00",
            },
        ),
    ],
)
def test_worked_example_billing_2_lines(
    billing_2: BillingFigures, index: int, expected: dict[str, str]
) -> None:
    figures = billing_2.lines[index]
    actual = {name: str(value) for name, value in dataclasses.asdict(figures).items()}
    assert actual == expected


def test_worked_example_billing_2_totals(billing_2: BillingFigures) -> None:
    actual = {
        name: str(value) for name, value in dataclasses.asdict(billing_2.totals).items()
    }
    assert actual == {
        "original_contract_sum": "100000.00",  # 1
        "net_change_by_change_orders": "5000.00",  # 2
        "contract_sum_to_date": "105000.00",  # 3
        "total_completed_and_stored": "51500.00",  # 4
        "retainage_on_work": "4900.00",
        "retainage_on_materials": "125.00",
        "retainage_released_to_date": "0.00",
        "retainage": "5025.00",  # 5
        "total_earned_less_retainage": "46475.00",  # 6
        "previous_certificates": "23700.00",  # 7
        "current_payment_due": "22775.00",  # 8
        "balance_to_finish_including_retainage": "58525.00",  # 9
        "percent_complete": "49.05",  # 51,500 / 105,000 = 49.047...%
    }


# --------------------------------------------------------------------------
# Rounding: ROUND_HALF_UP to the cent.  Python's ROUND_HALF_UP rounds ties
# *away from zero*, so -0.005 becomes -0.01 (symmetric for credits), and it is
# not banker's rounding (0.025 becomes 0.03, not 0.02).
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "pct", "expected"),
    [
        ("0.05", "10", "0.01"),  # 0.005 -> 0.01
        ("0.10", "5", "0.01"),  # 0.005 -> 0.01
        ("1.00", "2.5", "0.03"),  # 0.025 -> 0.03 (half-even would give 0.02)
        ("-0.05", "10", "-0.01"),  # -0.005 -> -0.01: ties go away from zero
        ("0.04", "10", "0.00"),  # 0.004 -> 0.00
        ("-0.04", "10", "0.00"),  # -0.004 -> 0.00, never "-0.00"
        ("0.14", "10", "0.01"),  # 0.014
        ("0.25", "10", "0.03"),  # 0.025
        ("33333.33", "10.0000", "3333.33"),
        ("100.00", "0", "0.00"),
        ("100.00", "100", "100.00"),
        ("999999999999.99", "100.0000", "999999999999.99"),
        ("1234.56", "7.1234", "87.94"),  # 87.9415...
    ],
)
def test_pct_of(amount: str, pct: str, expected: str) -> None:
    result = pct_of(D(amount), D(pct))
    assert str(result) == expected


@pytest.mark.parametrize(
    ("total", "scheduled", "expected"),
    [
        ("0", "0", "0.00"),  # C = 0 -> 0 %
        ("100.00", "0", "0.00"),  # C = 0 but work billed -> still 0 %
        ("0", "100.00", "0.00"),
        ("1", "3", "33.33"),
        ("2", "3", "66.67"),
        ("1", "8", "12.50"),
        ("1", "800", "0.13"),  # 0.125 % -> 0.13 (tie, half up)
        ("-1", "800", "-0.13"),  # negative correction: tie away from zero
        ("150.00", "100.00", "150.00"),  # overbilling shows above 100 %
        ("6500.00", "35000.00", "18.57"),
    ],
)
def test_percent_complete(total: str, scheduled: str, expected: str) -> None:
    assert str(percent_complete(D(total), D(scheduled))) == expected


@pytest.mark.parametrize(
    ("amount", "markup", "expected"),
    [
        ("100.00", "10", "110.00"),
        ("0.05", "10", "0.06"),  # 0.055 -> 0.06
        ("-0.05", "10", "-0.06"),  # -0.055 -> -0.06
        ("1.00", "12.5", "1.13"),  # 1.125 -> 1.13
        ("33.33", "0", "33.33"),
        ("0", "15", "0.00"),
    ],
)
def test_apply_markup(amount: str, markup: str, expected: str) -> None:
    assert str(apply_markup(D(amount), D(markup))) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (D("0.005"), "0.01"),
        (D("-0.005"), "-0.01"),
        (D("0.004"), "0.00"),
        (D("-0.001"), "0.00"),  # no negative zero
        (D("-0.00"), "0.00"),
        (5, "5.00"),
        (-5, "-5.00"),
        ("12.345", "12.35"),
        (" 7 ", "7.00"),
        (D("1234.5"), "1234.50"),
        (D("999999999999.99"), "999999999999.99"),
        (D("1E+3"), "1000.00"),
    ],
)
def test_to_cents(value: Decimal | int | str, expected: str) -> None:
    assert str(to_cents(value)) == expected


# --------------------------------------------------------------------------
# Line and billing edge cases
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("case", "given_line", "expected"),
    [
        (
            "scheduled value 0 gives percent 0",
            line("0"),
            {
                "scheduled_value": "0.00",
                "percent_complete": "0.00",
                "retainage": "0.00",
            },
        ),
        (
            "work on a zero line: percent 0, negative balance",
            line("0", work="100.00"),
            {
                "percent_complete": "0.00",
                "balance_to_finish": "-100.00",
                "retainage": "10.00",
            },
        ),
        (
            "negative correction of work reduces G and retainage",
            line("1000.00", previous="500.00", work="-200.00"),
            {
                "total_completed_and_stored": "300.00",
                "percent_complete": "30.00",
                "balance_to_finish": "700.00",
                "retainage_on_work": "30.00",
                "retainage": "30.00",
            },
        ),
        (
            "correction back to zero",
            line("1000.00", previous="500.00", work="-500.00"),
            {"total_completed_and_stored": "0.00", "retainage": "0.00"},
        ),
        (
            "deductive change order",
            line("1000.00", "-250.00", work="250.00"),
            {
                "scheduled_value": "750.00",
                "percent_complete": "33.33",
                "balance_to_finish": "500.00",
            },
        ),
        (
            "materials only: retainage at the materials rate",
            line("1000.00", materials="333.33"),
            {
                "total_completed_and_stored": "333.33",
                "retainage_on_work": "0.00",
                "retainage_on_materials": "16.67",  # 16.6665
                "retainage": "16.67",
            },
        ),
        (
            "each retainage term rounded separately",
            line("100.00", work="0.05", materials="0.10"),
            {
                "retainage_on_work": "0.01",  # 0.005
                "retainage_on_materials": "0.01",  # 0.005
                "retainage": "0.02",  # not round(0.010) = 0.01
            },
        ),
        (
            "work retainage on D + E, not on E alone",
            line("1000.00", previous="0.05", work="0.00"),
            {"retainage_on_work": "0.01"},
        ),
        (
            "overbilling: G above C",
            line("100.00", work="150.00"),
            {"percent_complete": "150.00", "balance_to_finish": "-50.00"},
        ),
    ],
)
def test_line_edge_cases(
    case: str, given_line: LineInput, expected: dict[str, str]
) -> None:
    figures = compute_line(given_line, WORK_PCT, MATERIALS_PCT)
    actual = {name: str(getattr(figures, name)) for name in expected}
    assert actual == expected, case


def test_line_inputs_are_rounded_to_cents() -> None:
    figures = compute_line(line("100.005", work="0.004"), D("10"), D("5"))
    assert figures.original_value == D("100.01")
    assert figures.work_this_period == ZERO


def test_retainage_released_reduces_line_5() -> None:
    lines = [
        line("50000.00", work="20000.00"),
        line("30000.00", materials="6000.00"),
    ]
    released = billing(lines, retainage_released_to_date=D("300.00")).totals
    assert released.retainage_released_to_date == D("300.00")
    assert released.retainage_on_work == D("2000.00")  # line retainage unchanged
    assert released.retainage == D("2000.00")  # 2,300 - 300
    assert released.total_earned_less_retainage == D("24000.00")
    assert released.current_payment_due == D("24000.00")
    assert released.balance_to_finish_including_retainage == D("56000.00")


def test_full_release_brings_line_5_to_zero() -> None:
    totals = billing(
        [line("1000.00", previous="1000.00")],
        retainage_released_to_date=D("100.00"),
        previous_certificates=D("900.00"),
    ).totals
    assert totals.retainage == ZERO
    assert totals.total_earned_less_retainage == D("1000.00")
    assert totals.current_payment_due == D("100.00")
    assert totals.balance_to_finish_including_retainage == ZERO
    assert totals.percent_complete == D("100.00")


def test_empty_billing_is_all_zero() -> None:
    figures = billing([])
    assert figures.lines == ()
    assert all(value == ZERO for value in dataclasses.asdict(figures.totals).values())


def test_totals_are_sums_of_rounded_lines() -> None:
    # Three lines each with 0.005 retainage: the total is 3 x 0.01, not 0.015 -> 0.02.
    figures = billing([line("1.00", work="0.05") for _ in range(3)])
    assert [f.retainage for f in figures.lines] == [D("0.01")] * 3
    assert figures.totals.retainage == D("0.03")


def test_int_inputs_are_accepted() -> None:
    figures = compute_billing(
        [LineInput(100, 0, 0, 50, 0)],
        work_retainage_pct=10,
        materials_retainage_pct=5,
    )
    assert figures.lines[0].retainage == D("5.00")
    assert figures.totals.current_payment_due == D("45.00")


# --------------------------------------------------------------------------
# Floats (and other non-numbers) are refused everywhere
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call",
    [
        lambda: to_cents(0.1),
        lambda: to_cents(True),
        lambda: pct_of(0.5, D("10")),
        lambda: pct_of(D("1"), 10.0),
        lambda: percent_complete(1.0, D("2")),
        lambda: percent_complete(D("1"), 2.0),
        lambda: apply_markup(1.0, D("10")),
        lambda: apply_markup(D("1"), 10.0),
        lambda: pct_of("1.00", D("10")),
        lambda: LineInput(D("1"), D("0"), D("0"), 0.5, D("0")),
        lambda: LineInput(D("1"), D("0"), D("0"), D("0"), "5"),
        lambda: compute_line(line("1"), 10.0, D("5")),
        lambda: compute_line(line("1"), D("10"), 5.0),
        lambda: compute_billing(
            [line("1")], work_retainage_pct=10.0, materials_retainage_pct=D("5")
        ),
        lambda: billing([line("1")], retainage_released_to_date=1.0),
        lambda: billing([line("1")], previous_certificates=1.0),
        lambda: UpstreamSource("01", 1.0, D("0")),
        lambda: UpstreamSource("01", D("1"), 0.0),
        lambda: rollup_by_cost_code([], 10.0),
    ],
)
def test_floats_are_refused(call: Callable[[], object]) -> None:
    with pytest.raises(TypeError):
        call()


@pytest.mark.parametrize("value", [D("NaN"), D("sNaN"), D("Infinity"), D("-Infinity")])
def test_non_finite_decimals_are_refused(value: Decimal) -> None:
    with pytest.raises(ValueError):
        to_cents(value)
    with pytest.raises(ValueError):
        pct_of(D("1"), value)


def test_to_cents_refuses_garbage_text() -> None:
    with pytest.raises(ValueError):
        to_cents("abc")
    with pytest.raises(ValueError):
        to_cents("NaN")


# --------------------------------------------------------------------------
# Stored figures: figures_to_dict / figures_from_dict
# --------------------------------------------------------------------------


def test_figures_dict_round_trip(billing_2: BillingFigures) -> None:
    data = figures_to_dict(billing_2)
    assert data["lines"][1]["percent_complete"] == "18.57"
    assert data["lines"][0]["materials_stored"] == "0.00"
    assert data["totals"]["current_payment_due"] == "22775.00"
    assert set(data["totals"]) == {f.name for f in dataclasses.fields(BillingTotals)}
    assert set(data["lines"][0]) == {f.name for f in dataclasses.fields(LineFigures)}
    restored = figures_from_dict(json.loads(json.dumps(data)))
    assert restored == billing_2
    assert figures_to_dict(restored) == data
    assert all(
        str(value) == data["totals"][name]
        for name, value in dataclasses.asdict(restored.totals).items()
    )


def test_figures_to_dict_never_uses_exponent_or_negative_zero() -> None:
    figures = billing([line("0"), line("1000000.00", work="-0.00")])
    data = figures_to_dict(figures)
    values = [v for ln in data["lines"] for v in ln.values()]
    values += list(data["totals"].values())
    assert all("E" not in v and "e" not in v and v != "-0.00" for v in values)
    assert data["lines"][1]["original_value"] == "1000000.00"


def _valid_dict() -> dict[str, Any]:
    return figures_to_dict(billing([line("100.00", work="10.00")]))


@pytest.mark.parametrize(
    ("mutate", "error"),
    [
        (lambda d: d.pop("totals"), ValueError),
        (lambda d: d.update(extra=1), ValueError),
        (lambda d: d["totals"].pop("retainage"), ValueError),
        (lambda d: d["lines"][0].update(bogus="1.00"), ValueError),
        (lambda d: d["totals"].update(retainage=1.5), TypeError),
        (lambda d: d["totals"].update(retainage="1.234"), ValueError),
        (lambda d: d["totals"].update(retainage="NaN"), ValueError),
        (lambda d: d["totals"].update(retainage="abc"), ValueError),
        (lambda d: d.update(lines="nope"), TypeError),
        (lambda d: d.update(totals=[]), TypeError),
    ],
)
def test_figures_from_dict_refuses_malformed(
    mutate: Callable[[dict[str, Any]], object], error: type[Exception]
) -> None:
    data = _valid_dict()
    mutate(data)
    with pytest.raises(error):
        figures_from_dict(data)


@given(st.lists(st.integers(min_value=0, max_value=10**11), min_size=1, max_size=6))
@settings(max_examples=60, deadline=None)
def test_line_columns_are_the_full_reads_columns(cents: list[int]) -> None:
    """The few columns a claim reads equal those of figures_from_dict, to the cent."""
    figures = billing(
        [line(str(D(abs(c)) / 100 + 1), work=str(D(c) / 100)) for c in cents]
    )
    data = json.loads(json.dumps(figures_to_dict(figures)))
    names = ("work_this_period", "materials_stored", "total_completed_and_stored")
    full = figures_from_dict(data)
    assert line_columns_from_dict(data, names) == [
        tuple(getattr(ln, n) for n in names) for ln in full.lines
    ]


@pytest.mark.parametrize(
    ("mutate", "error"),
    [
        (lambda d: d["lines"][0].pop("work_this_period"), ValueError),
        (lambda d: d["lines"][0].update(work_this_period=1.5), TypeError),
        (lambda d: d["lines"][0].update(work_this_period="1.234"), ValueError),
        (lambda d: d["lines"][0].update(work_this_period="Infinity"), ValueError),
        (lambda d: d.update(lines="nope"), TypeError),
        (lambda d: d["lines"].append("nope"), TypeError),
    ],
)
def test_line_columns_refuse_what_the_full_read_refuses(
    mutate: Callable[[dict[str, Any]], object], error: type[Exception]
) -> None:
    data = _valid_dict()
    mutate(data)
    with pytest.raises(error):
        line_columns_from_dict(data, ("work_this_period",))
    with pytest.raises(ValueError):
        line_columns_from_dict(_valid_dict(), ("no_such_figure",))


# --------------------------------------------------------------------------
# Upstream roll-up (SPEC §9): sum per cost code, then mark up once
# --------------------------------------------------------------------------


def test_rollup_marks_up_once_per_cost_code() -> None:
    sources = [
        UpstreamSource("01-100", D("33.33"), D("0.05")),
        UpstreamSource("02-200", D("1000.00"), D("0")),
        UpstreamSource("01-100", D("33.33"), D("0.05")),
        UpstreamSource("01-100", D("33.34"), D("0")),
    ]
    result = rollup_by_cost_code(sources, D("10.0000"))
    assert list(result) == ["01-100", "02-200"]  # first-seen order
    # 100.00 x 1.10 = 110.00 (per source it would be 36.66 + 36.66 + 36.67 = 109.99)
    # 0.10 x 1.10 = 0.11 (per source it would be 0.06 + 0.06 = 0.12)
    assert result["01-100"] == (D("110.00"), D("0.11"))
    assert result["02-200"] == (D("1100.00"), ZERO)


def test_rollup_edge_cases() -> None:
    assert rollup_by_cost_code([], D("10")) == {}
    only = rollup_by_cost_code(iter([UpstreamSource("X", D("0.05"), D("0"))]), D("10"))
    assert only == {"X": (D("0.06"), ZERO)}  # 0.055 -> 0.06
    netted = rollup_by_cost_code(
        [UpstreamSource("X", D("100"), D("0")), UpstreamSource("X", D("-100"), D("0"))],
        D("12.5"),
    )
    assert netted == {"X": (ZERO, ZERO)}
    with pytest.raises(TypeError):
        rollup_by_cost_code([("X", D("1"), D("1"))], D("10"))


# --------------------------------------------------------------------------
# Properties (hypothesis)
# --------------------------------------------------------------------------

MAX_CENTS = 10**12 * 100 - 1  # 999,999,999,999.99


def cents(min_value: int = -(10**13), max_value: int = 10**13) -> st.SearchStrategy:
    return st.integers(min_value=min_value, max_value=max_value).map(
        lambda c: D(c).scaleb(-2)
    )


percents = st.integers(min_value=0, max_value=100 * 10**4).map(
    lambda p: D(p).scaleb(-4)
)

line_inputs = st.builds(
    LineInput,
    original_value=cents(0),
    change_orders=cents(),
    previous_work=cents(0),
    work_this_period=cents(),
    materials_stored=cents(0),
)


def half_up_div(numerator: int, denominator: int) -> int:
    """Integer division rounding ties away from zero (an independent oracle)."""
    quotient, remainder = divmod(abs(numerator), abs(denominator))
    if 2 * remainder >= abs(denominator):
        quotient += 1
    return quotient if (numerator < 0) == (denominator < 0) else -quotient


def as_cents(value: Decimal) -> int:
    return int(value.scaleb(2))


@given(amount=cents(-MAX_CENTS, MAX_CENTS), pct=percents)
def test_pct_of_matches_integer_oracle(amount: Decimal, pct: Decimal) -> None:
    expected = half_up_div(as_cents(amount) * int(pct.scaleb(4)), 100 * 10**4)
    assert pct_of(amount, pct) == D(expected).scaleb(-2)


@given(total=cents(), scheduled=cents())
def test_percent_complete_matches_integer_oracle(
    total: Decimal, scheduled: Decimal
) -> None:
    result = percent_complete(total, scheduled)
    if scheduled == 0:
        assert result == ZERO
    else:
        expected = half_up_div(as_cents(total) * 10**4, as_cents(scheduled))
        assert result == D(expected).scaleb(-2)


@given(line_input=line_inputs, work_pct=percents, materials_pct=percents)
def test_line_identities(
    line_input: LineInput, work_pct: Decimal, materials_pct: Decimal
) -> None:
    f = compute_line(line_input, work_pct, materials_pct)
    assert f.scheduled_value == f.original_value + f.change_orders  # C
    assert f.total_completed_and_stored == (
        f.previous_work + f.work_this_period + f.materials_stored
    )  # G = D + E + F
    assert f.balance_to_finish == f.scheduled_value - f.total_completed_and_stored
    assert f.retainage_on_work == pct_of(f.previous_work + f.work_this_period, work_pct)
    assert f.retainage_on_materials == pct_of(f.materials_stored, materials_pct)
    assert f.retainage == f.retainage_on_work + f.retainage_on_materials  # I
    assert f.percent_complete == percent_complete(
        f.total_completed_and_stored, f.scheduled_value
    )
    for value in dataclasses.asdict(f).values():
        assert value.as_tuple().exponent == -2
        assert not (value.is_zero() and value.is_signed())


@settings(max_examples=200)
@given(
    lines=st.lists(line_inputs, max_size=8),
    work_pct=percents,
    materials_pct=percents,
    released=cents(0, 10**10),
    previous=cents(0, 10**14),
)
def test_billing_identities(
    lines: list[LineInput],
    work_pct: Decimal,
    materials_pct: Decimal,
    released: Decimal,
    previous: Decimal,
) -> None:
    figures = compute_billing(
        lines,
        work_retainage_pct=work_pct,
        materials_retainage_pct=materials_pct,
        retainage_released_to_date=released,
        previous_certificates=previous,
    )
    t = figures.totals
    rows = figures.lines
    assert rows == tuple(compute_line(ln, work_pct, materials_pct) for ln in lines)
    # Totals are sums of the already-rounded line values.
    assert t.original_contract_sum == sum((r.original_value for r in rows), ZERO)
    assert t.net_change_by_change_orders == sum((r.change_orders for r in rows), ZERO)
    assert t.total_completed_and_stored == sum(
        (r.total_completed_and_stored for r in rows), ZERO
    )
    assert t.retainage_on_work == sum((r.retainage_on_work for r in rows), ZERO)
    assert t.retainage_on_materials == sum(
        (r.retainage_on_materials for r in rows), ZERO
    )
    # Line 5 = Σ I − released to date, the release counting only up to Σ I so
    # that line 5 is never negative (docs/money.md).
    base = sum((r.retainage for r in rows), ZERO)
    effective = min(released, max(base, ZERO))
    assert t.retainage == base - effective  # 5
    assert t.retainage == t.retainage_on_work + t.retainage_on_materials - effective
    assert t.retainage >= min(base, ZERO)
    assert t.retainage_released_to_date == effective
    assert t.previous_certificates == previous  # 7
    assert t.contract_sum_to_date == (
        t.original_contract_sum + t.net_change_by_change_orders
    )  # 3 = 1 + 2
    assert t.total_earned_less_retainage == (
        t.total_completed_and_stored - t.retainage
    )  # 6 = 4 - 5
    assert t.current_payment_due == (
        t.total_earned_less_retainage - t.previous_certificates
    )  # 8 = 6 - 7
    assert t.balance_to_finish_including_retainage == (
        t.contract_sum_to_date - t.total_earned_less_retainage
    )  # 9 = 3 - 6
    assert t.percent_complete == percent_complete(
        t.total_completed_and_stored, t.contract_sum_to_date
    )
    assert figures_from_dict(json.loads(json.dumps(figures_to_dict(figures)))) == (
        figures
    )


@given(
    sources=st.lists(
        st.builds(
            UpstreamSource,
            cost_code=st.sampled_from(["01", "02", "03"]),
            approved_work=cents(0, 10**9),
            approved_materials=cents(0, 10**9),
        ),
        max_size=10,
    ),
    markup=percents,
)
def test_rollup_property(sources: list[UpstreamSource], markup: Decimal) -> None:
    result = rollup_by_cost_code(sources, markup)
    assert set(result) == {s.cost_code for s in sources}
    for code, (work, materials) in result.items():
        mine = [s for s in sources if s.cost_code == code]
        assert work == apply_markup(sum((s.approved_work for s in mine), ZERO), markup)
        assert materials == apply_markup(
            sum((s.approved_materials for s in mine), ZERO), markup
        )


def test_constants() -> None:
    assert CENT == D("0.01")
    assert str(ZERO) == "0.00"


# ------------------------------------------------- the dashboard's summary


_cents_st = st.integers(min_value=-500_000, max_value=5_000_000)
_pct_st = st.one_of(
    st.sampled_from([D("0"), D("5"), D("7.5"), D("10.0000"), D("3.3333")]),
    st.integers(min_value=0, max_value=1_000_000).map(lambda n: D(n).scaleb(-4)),
)


@settings(max_examples=300, deadline=None)
@given(
    lines=st.lists(
        st.tuples(_cents_st, _cents_st, _cents_st, _cents_st, _cents_st), max_size=8
    ),
    work_pct=_pct_st,
    materials_pct=_pct_st,
    released=_cents_st,
    previous=_cents_st,
)
def test_summary_figures_are_compute_billings_to_the_cent(
    lines, work_pct, materials_pct, released, previous
) -> None:
    """The period dashboard's four figures (issue 16) equal the full engine's."""
    from portal.core.money import summary_figures

    pcts = {"work_retainage_pct": work_pct, "materials_retainage_pct": materials_pct}

    def c(cents: int) -> Decimal:
        return D(cents).scaleb(-2)

    full = compute_billing(
        [
            LineInput(
                original_value=D("100000.00"),
                change_orders=ZERO,
                previous_work=c(d),
                work_this_period=c(e),
                materials_stored=c(new),
                materials_previous=c(prev),
                materials_installed=c(installed),
            )
            for d, e, prev, new, installed in lines
        ],
        retainage_released_to_date=c(released),
        previous_certificates=c(previous),
        **pcts,
    )
    summary = summary_figures(
        lines,
        retainage_released_to_date=released,
        previous_certificates=previous,
        **pcts,
    )
    assert summary.work_this_period == sum(
        (ln.work_this_period for ln in full.lines), ZERO
    )
    assert summary.materials_stored == sum(
        (ln.materials_stored for ln in full.lines), ZERO
    )
    assert summary.retainage == full.totals.retainage
    assert summary.current_payment_due == full.totals.current_payment_due
