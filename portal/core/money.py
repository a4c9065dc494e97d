"""Billing arithmetic of SPEC §4 (AIA G702/G703 figures), in one pure module.

Nothing here touches Flask or the database: pages, PDFs, exports and the API all
call these functions so that every figure is computed in exactly one place.

Rules kept throughout:

* every amount is a ``Decimal`` quantized to the cent (``CENT``);
* every rounding is ``ROUND_HALF_UP``.  Python's ``ROUND_HALF_UP`` rounds ties
  *away from zero*, so ``0.005`` becomes ``0.01`` and ``-0.005`` becomes ``-0.01``
  (symmetric for credits/corrections, the usual accounting convention);
* billing totals are sums of the already-rounded line values;
* floats are refused with ``TypeError`` (binary floats cannot hold cents exactly);
  ``int`` is accepted, ``bool`` is not;
* non-finite decimals (NaN, Infinity) are refused with ``ValueError``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Context, Decimal, InvalidOperation
from typing import Any

__all__ = [
    "CENT",
    "ZERO",
    "BillingFigures",
    "BillingTotals",
    "LineFigures",
    "LineInput",
    "SummaryFigures",
    "UpstreamSource",
    "apply_markup",
    "compute_billing",
    "compute_line",
    "figures_from_dict",
    "figures_to_dict",
    "pct_of",
    "percent_complete",
    "materials_balance",
    "retainage_available",
    "rollup_by_cost_code",
    "summary_figures",
    "to_cents",
]

CENT = Decimal("0.01")
ZERO = Decimal("0.00")
_HUNDRED = Decimal(100)
# Working precision for intermediate products/quotients: amounts are at most
# 15 digits and percentages 7, so 60 significant digits keep every product exact
# and leave any quotient far more precise than the final rounding needs.
_PRECISION = 60
#: Contexts used explicitly (cheaper than ``localcontext()`` per operation): the
#: arithmetic one keeps the default rounding, the rounding one is ROUND_HALF_UP.
_ARITHMETIC = Context(prec=_PRECISION)
_ROUNDING = Context(prec=_PRECISION, rounding=ROUND_HALF_UP)


def _number(value: object, name: str) -> Decimal:
    """Return ``value`` as a finite Decimal; refuse floats and non-numbers (§4)."""
    if isinstance(value, (bool, float)):
        raise TypeError(f"{name} must be a Decimal or int, not {type(value).__name__}")
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int):
        result = Decimal(value)
    else:
        raise TypeError(f"{name} must be a Decimal or int, not {type(value).__name__}")
    if not result.is_finite():
        raise ValueError(f"{name} must be a finite number, not {value}")
    return result


def _round(value: Decimal) -> Decimal:
    """Quantize to the cent, ROUND_HALF_UP, with negative zero folded to 0.00 (§4)."""
    result = value.quantize(CENT, context=_ROUNDING)
    return ZERO if result.is_zero() else result


def to_cents(value: Decimal | int | str) -> Decimal:
    """SPEC §4 "amounts are Decimal quantized to 0.01 with ROUND_HALF_UP"."""
    if isinstance(value, str):
        try:
            parsed = Decimal(value.strip())
        except InvalidOperation:
            raise ValueError(f"not a decimal number: {value!r}") from None
        return _round(_number(parsed, "value"))
    return _round(_number(value, "value"))


def pct_of(amount: Decimal, pct: Decimal) -> Decimal:
    """SPEC §4 I: one retainage term, round(pct % × amount) to the cent, half-up."""
    a = _number(amount, "amount")
    p = _number(pct, "pct")
    product = _ARITHMETIC.divide(_ARITHMETIC.multiply(a, p), _HUNDRED)
    return _round(product)


def percent_complete(total: Decimal, scheduled: Decimal) -> Decimal:
    """SPEC §4 G703 % complete = G / C × 100 to 2 decimals (0 when C is 0)."""
    g = _number(total, "total")
    c = _number(scheduled, "scheduled")
    if c.is_zero():
        return ZERO
    quotient = _ARITHMETIC.divide(_ARITHMETIC.multiply(g, _HUNDRED), c)
    return _round(quotient)


def apply_markup(amount: Decimal, markup_pct: Decimal) -> Decimal:
    """SPEC §9: amount × (1 + markup %), rounded to the cent half-up."""
    a = _number(amount, "amount")
    m = _number(markup_pct, "markup_pct")
    product = _ARITHMETIC.divide(
        _ARITHMETIC.multiply(a, _ARITHMETIC.add(_HUNDRED, m)), _HUNDRED
    )
    return _round(product)


def materials_balance(previous: Decimal, new: Decimal, installed: Decimal) -> Decimal:
    """SPEC §4 F = F previous + new stored this period − installed, never below 0."""
    f = to_cents(previous) + to_cents(new) - to_cents(installed)
    return _round(f) if f > 0 else ZERO


def retainage_available(
    retainage_on_lines: Decimal, released_before: Decimal
) -> Decimal:
    """What a billing may release (docs/money.md): Σ I less the effective releases
    before it, never below 0."""
    held = to_cents(retainage_on_lines) - to_cents(released_before)
    return _round(held) if held > 0 else ZERO


@dataclass(frozen=True)
class LineInput:
    """SPEC §4 inputs of one G703 line (approved figures of one SOV line).

    ``materials_stored`` is what is *newly* stored this period; with
    ``materials_previous`` (F of the previous counted billing) and
    ``materials_installed`` (stored materials installed this period, whose value
    is part of ``work_this_period``) it makes F (:func:`materials_balance`).
    A caller that knows F outright passes it as ``materials_stored`` alone.
    """

    original_value: Decimal
    change_orders: Decimal
    previous_work: Decimal
    work_this_period: Decimal
    materials_stored: Decimal
    materials_previous: Decimal = ZERO
    materials_installed: Decimal = ZERO

    def __post_init__(self) -> None:
        """Refuse floats and non-numbers at construction (§4)."""
        for f in dataclasses.fields(self):
            _number(getattr(self, f.name), f.name)


@dataclass(frozen=True)
class LineFigures:
    """SPEC §4 G703 columns C-I for one line, all rounded to the cent."""

    original_value: Decimal
    change_orders: Decimal
    scheduled_value: Decimal
    previous_work: Decimal
    work_this_period: Decimal
    materials_stored: Decimal  # F, the balance presently stored
    total_completed_and_stored: Decimal
    percent_complete: Decimal
    balance_to_finish: Decimal
    retainage_on_work: Decimal
    retainage_on_materials: Decimal
    retainage: Decimal
    materials_previous: Decimal = ZERO  # F of the previous counted billing
    materials_new: Decimal = ZERO  # stored this period
    materials_installed: Decimal = ZERO  # installed this period (moved into E)


#: LineFigures fields an older stored snapshot may lack (read back as 0, or
#: for ``materials_new`` as the F it stored, which is what it meant then).
_OPTIONAL_LINE_FIELDS = ("materials_previous", "materials_new", "materials_installed")


@dataclass(frozen=True)
class BillingTotals:
    """SPEC §4 G702 lines 1-9 of one billing."""

    original_contract_sum: Decimal
    net_change_by_change_orders: Decimal
    contract_sum_to_date: Decimal
    total_completed_and_stored: Decimal
    retainage_on_work: Decimal
    retainage_on_materials: Decimal
    retainage_released_to_date: Decimal
    retainage: Decimal
    total_earned_less_retainage: Decimal
    previous_certificates: Decimal
    current_payment_due: Decimal
    balance_to_finish_including_retainage: Decimal
    percent_complete: Decimal


@dataclass(frozen=True)
class BillingFigures:
    """SPEC §4 the complete G702/G703 figures of one billing."""

    lines: tuple[LineFigures, ...]
    totals: BillingTotals


def compute_line(
    line: LineInput,
    work_retainage_pct: Decimal,
    materials_retainage_pct: Decimal,
) -> LineFigures:
    """SPEC §4 G703 columns C = orig + CO, G = D + E + F, %, H = C - G, I."""
    if not isinstance(line, LineInput):
        raise TypeError(f"line must be a LineInput, not {type(line).__name__}")
    work_pct = _number(work_retainage_pct, "work_retainage_pct")
    materials_pct = _number(materials_retainage_pct, "materials_retainage_pct")
    original = to_cents(line.original_value)
    change_orders = to_cents(line.change_orders)
    d = to_cents(line.previous_work)
    e = to_cents(line.work_this_period)
    previous_f = to_cents(line.materials_previous)
    new_f = to_cents(line.materials_stored)
    installed = to_cents(line.materials_installed)
    f = materials_balance(previous_f, new_f, installed)
    c = _round(original + change_orders)
    g = _round(d + e + f)
    on_work = pct_of(d + e, work_pct)
    on_materials = pct_of(f, materials_pct)
    return LineFigures(
        original_value=original,
        change_orders=change_orders,
        scheduled_value=c,
        previous_work=d,
        work_this_period=e,
        materials_stored=f,
        total_completed_and_stored=g,
        percent_complete=percent_complete(g, c),
        balance_to_finish=_round(c - g),
        retainage_on_work=on_work,
        retainage_on_materials=on_materials,
        retainage=_round(on_work + on_materials),
        materials_previous=previous_f,
        materials_new=new_f,
        materials_installed=installed,
    )


def _sum(values: Iterable[Decimal]) -> Decimal:
    """Exact sum of already-rounded cent amounts (§4 totals are sums of lines)."""
    total = ZERO
    for value in values:
        total = _ARITHMETIC.add(total, value)
    return _round(total)


def compute_billing(
    lines: Sequence[LineInput],
    *,
    work_retainage_pct: Decimal,
    materials_retainage_pct: Decimal,
    retainage_released_to_date: Decimal = ZERO,
    previous_certificates: Decimal = ZERO,
) -> BillingFigures:
    """SPEC §4 G702 lines 1-9 as sums of the rounded G703 lines.

    ``retainage_released_to_date`` is the effective releases before this billing
    plus this one's; line 5 never goes below 0: when the retainage base Σ I has
    shrunk below what was released (materials installed on a line with no work
    retainage), the release counts only up to Σ I, and what was paid stays paid
    (docs/money.md).  The stored ``retainage_released_to_date`` is that effective
    figure, which the next billing starts from.
    """
    if isinstance(lines, (str, bytes)) or isinstance(lines, LineInput):
        raise TypeError("lines must be a sequence of LineInput")
    asked = _round(_number(retainage_released_to_date, "retainage_released_to_date"))
    previous = _round(_number(previous_certificates, "previous_certificates"))
    figures = tuple(
        compute_line(line, work_retainage_pct, materials_retainage_pct)
        for line in lines
    )
    original_sum = _sum(f.original_value for f in figures)  # line 1
    change_orders = _sum(f.change_orders for f in figures)  # line 2
    contract_to_date = _round(original_sum + change_orders)  # line 3
    completed = _sum(f.total_completed_and_stored for f in figures)  # line 4
    on_work = _sum(f.retainage_on_work for f in figures)
    on_materials = _sum(f.retainage_on_materials for f in figures)
    base = _sum(f.retainage for f in figures)
    released = asked if asked <= base or asked <= 0 else max(base, ZERO)
    retainage = _round(base - released)  # line 5
    earned = _round(completed - retainage)  # line 6
    totals = BillingTotals(
        original_contract_sum=original_sum,
        net_change_by_change_orders=change_orders,
        contract_sum_to_date=contract_to_date,
        total_completed_and_stored=completed,
        retainage_on_work=on_work,
        retainage_on_materials=on_materials,
        retainage_released_to_date=released,
        retainage=retainage,
        total_earned_less_retainage=earned,
        previous_certificates=previous,  # line 7
        current_payment_due=_round(earned - previous),  # line 8
        balance_to_finish_including_retainage=_round(
            contract_to_date - earned
        ),  # line 9
        percent_complete=percent_complete(completed, contract_to_date),
    )
    return BillingFigures(lines=figures, totals=totals)


#: One line's inputs for :func:`summary_figures`, in integer cents: D, E,
#: F previous, newly stored and installed (:class:`LineInput`'s fields).
SummaryInput = tuple[int, int, int, int, int]


@dataclass(frozen=True)
class SummaryFigures:
    """Four figures of :func:`compute_billing` (the period dashboard's columns)."""

    work_this_period: Decimal  #: Σ G703 E
    materials_stored: Decimal  #: Σ G703 F, the balance presently stored
    retainage: Decimal  #: G702 line 5
    current_payment_due: Decimal  #: G702 line 8


def _ratio(pct: Decimal) -> tuple[int, int]:
    """``pct`` % as an exact fraction n / d of one (10.0000 → 100000 / 1000000)."""
    p = _number(pct, "pct")
    exponent = p.as_tuple().exponent
    places = max(-exponent, 0) if isinstance(exponent, int) else 0  # finite
    return int(p.scaleb(places)), 100 * 10**places


def _half_up(numerator: int, denominator: int) -> int:
    """numerator / denominator rounded to an integer, ties away from zero
    (``ROUND_HALF_UP``, as :func:`pct_of` rounds); ``denominator`` > 0."""
    if numerator >= 0:
        return (2 * numerator + denominator) // (2 * denominator)
    return -((-2 * numerator + denominator) // (2 * denominator))


def _from_cents(cents: int) -> Decimal:
    return Decimal(cents).scaleb(-2)


def summary_figures(
    lines: Iterable[SummaryInput],
    *,
    work_retainage_pct: Decimal,
    materials_retainage_pct: Decimal,
    retainage_released_to_date: int = 0,
    previous_certificates: int = 0,
) -> SummaryFigures:
    """Σ E, Σ F, line 5 and line 8 of :func:`compute_billing` for the same
    inputs given in integer cents, without building every line's figures (a
    period dashboard computes hundreds of billings per view).

    The same arithmetic step for step in exact integers: F of
    :func:`materials_balance`, each line's I of :func:`pct_of` (half-up to the
    cent), the line-5 rule; so the figures are equal to the cent
    (``tests/test_money.py`` holds the two equal on random inputs).
    """
    work_n, work_d = _ratio(work_retainage_pct)
    materials_n, materials_d = _ratio(materials_retainage_pct)
    asked = int(retainage_released_to_date)
    e_sum = f_sum = completed = base = 0
    for d, e, previous_f, new_f, installed in lines:
        f = previous_f + new_f - installed
        if f < 0:
            f = 0
        e_sum += e
        f_sum += f
        completed += d + e + f
        base += _half_up((d + e) * work_n, work_d) + _half_up(
            f * materials_n, materials_d
        )
    released = asked if asked <= base or asked <= 0 else max(base, 0)
    retainage = base - released
    earned = completed - retainage
    return SummaryFigures(
        work_this_period=_from_cents(e_sum),
        materials_stored=_from_cents(f_sum),
        retainage=_from_cents(retainage),
        current_payment_due=_from_cents(earned - int(previous_certificates)),
    )


_LINE_FIELDS = tuple(f.name for f in dataclasses.fields(LineFigures))
_TOTAL_FIELDS = tuple(f.name for f in dataclasses.fields(BillingTotals))


def _as_text(value: Decimal) -> str:
    """One stored figure as a plain 2-decimal string such as "1234.50" (§4)."""
    return format(_round(_number(value, "figure")), "f")


def figures_to_dict(figures: BillingFigures) -> dict[str, Any]:
    """SPEC §4 "an approved billing's figures are stored with it": JSON-ready form."""
    if not isinstance(figures, BillingFigures):
        raise TypeError("figures must be a BillingFigures")
    return {
        "lines": [
            {name: _as_text(getattr(line, name)) for name in _LINE_FIELDS}
            for line in figures.lines
        ],
        "totals": {
            name: _as_text(getattr(figures.totals, name)) for name in _TOTAL_FIELDS
        },
    }


def _from_text(value: object, where: str) -> Decimal:
    """Read back one stored figure; only strings with at most 2 decimals (§4)."""
    if not isinstance(value, str):
        raise TypeError(f"{where} must be a string, not {type(value).__name__}")
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise ValueError(f"{where} is not a decimal number: {value!r}") from None
    if not number.is_finite():
        raise ValueError(f"{where} is not a finite number: {value!r}")
    if number.same_quantum(CENT):  # "1234.50", as figures_to_dict writes them
        return ZERO if number.is_zero() else number
    exponent = number.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -2:
        raise ValueError(f"{where} has more than 2 decimals: {value!r}")
    return _round(number)


def _record(data: object, names: tuple[str, ...], where: str) -> dict[str, Decimal]:
    """Read one mapping of stored figures with exactly the expected keys."""
    if not isinstance(data, Mapping):
        raise TypeError(f"{where} must be a mapping")
    missing = [name for name in names if name not in data]
    extra = [key for key in data if key not in names]
    if missing or extra:
        raise ValueError(f"{where}: missing keys {missing}, unexpected keys {extra}")
    out = {}
    for name in names:
        value = data[name]
        # Fast path for what figures_to_dict writes ("1234.50"): an export of
        # 1,000 billings reads half a million of these.
        if isinstance(value, str) and value[-3:-2] == ".":
            try:
                number = Decimal(value)
            except InvalidOperation:
                pass
            else:
                if number.same_quantum(CENT):
                    out[name] = ZERO if number.is_zero() else number
                    continue
        out[name] = _from_text(value, f"{where}.{name}")
    return out


def _with_optional(raw: object) -> object:
    """A line stored before F carried (no previous/new/installed keys) reads as
    what it was then: F all new this period."""
    if not isinstance(raw, Mapping) or any(k in raw for k in _OPTIONAL_LINE_FIELDS):
        return raw
    filled = dict(raw)
    filled["materials_previous"] = "0.00"
    filled["materials_new"] = raw.get("materials_stored", "0.00")
    filled["materials_installed"] = "0.00"
    return filled


def line_columns_from_dict(
    data: dict[str, Any], names: tuple[str, ...]
) -> list[tuple[Decimal, ...]]:
    """Only the ``names`` figures of each stored line (as :func:`figures_from_dict`
    reads them, with the same checks on those values): what a claim needs of
    1,000 latest billings, without reading the other fields of every line."""
    unknown = [name for name in names if name not in _LINE_FIELDS]
    if unknown:
        raise ValueError(f"no such line figures: {unknown}")
    if not isinstance(data, Mapping):
        raise TypeError("data must be a mapping")
    raw_lines = data.get("lines")
    if not isinstance(raw_lines, (list, tuple)):
        raise TypeError("data['lines'] must be a list")
    out = []
    for i, raw in enumerate(raw_lines):
        if not isinstance(raw, Mapping):
            raise TypeError(f"lines[{i}] must be a mapping")
        row = []
        for name in names:
            if name not in raw:
                raise ValueError(f"lines[{i}]: missing key {name!r}")
            row.append(_from_text(raw[name], f"lines[{i}].{name}"))
        out.append(tuple(row))
    return out


def figures_from_dict(data: dict[str, Any]) -> BillingFigures:
    """SPEC §4 stored approved figures read back unchanged (inverse of to_dict)."""
    if not isinstance(data, Mapping):
        raise TypeError("data must be a mapping")
    if set(data) != {"lines", "totals"}:
        raise ValueError("data must have exactly the keys 'lines' and 'totals'")
    raw_lines = data["lines"]
    if not isinstance(raw_lines, (list, tuple)):
        raise TypeError("data['lines'] must be a list")
    lines = tuple(
        LineFigures(**_record(_with_optional(raw), _LINE_FIELDS, f"lines[{i}]"))
        for i, raw in enumerate(raw_lines)
    )
    totals = BillingTotals(**_record(data["totals"], _TOTAL_FIELDS, "totals"))
    return BillingFigures(lines=lines, totals=totals)


@dataclass(frozen=True)
class UpstreamSource:
    """SPEC §9 one approved downstream billing line feeding the upstream claim."""

    cost_code: str
    approved_work: Decimal
    approved_materials: Decimal

    def __post_init__(self) -> None:
        """Refuse floats and non-numbers at construction (§4)."""
        if not isinstance(self.cost_code, str):
            raise TypeError("cost_code must be a string")
        _number(self.approved_work, "approved_work")
        _number(self.approved_materials, "approved_materials")


def rollup_by_cost_code(
    sources: Iterable[UpstreamSource], markup_pct: Decimal
) -> dict[str, tuple[Decimal, Decimal]]:
    """SPEC §9 upstream E and F per cost code: Σ approved × (1 + markup %), per line."""
    markup = _number(markup_pct, "markup_pct")
    work: dict[str, Decimal] = {}
    materials: dict[str, Decimal] = {}
    for source in sources:
        if not isinstance(source, UpstreamSource):
            raise TypeError("sources must be UpstreamSource items")
        code = source.cost_code
        work[code] = work.get(code, ZERO) + to_cents(source.approved_work)
        materials[code] = materials.get(code, ZERO) + to_cents(
            source.approved_materials
        )
    return {
        code: (apply_markup(work[code], markup), apply_markup(materials[code], markup))
        for code in work
    }
