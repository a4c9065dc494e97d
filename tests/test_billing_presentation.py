"""The one G702/G703 presentation: line numbers, labels in the dialect, totals."""

from __future__ import annotations

from decimal import Decimal

from portal.core import money
from portal.core.billing_presentation import g702_lines, g703_totals

D = Decimal


def _figures(released: str = "0") -> money.BillingFigures:
    lines = [
        money.LineInput(D("60000"), D("5000"), D("10000"), D("12345.67"), D("0")),
        money.LineInput(D("40000"), D("0"), D("0"), D("1000"), D("2500")),
    ]
    return money.compute_billing(
        lines,
        work_retainage_pct=D("10"),
        materials_retainage_pct=D("5"),
        retainage_released_to_date=D(released),
        previous_certificates=D("9000"),
    )


def test_g702_lines_in_order_with_values_and_differences() -> None:
    claimed = _figures().totals
    approved = _figures("100").totals
    lines = g702_lines(claimed, approved, dialect="us")
    numbers = [line.number for line in lines]
    assert numbers == ["1", "2", "3", "4", "5a", "5b", "5c", "5", "6", "7", "8", "9"]
    by_number = {line.number: line for line in lines}
    for line in lines:
        assert line.claimed == getattr(claimed, line.key)
        assert line.approved == getattr(approved, line.key)
    assert by_number["5"].difference == D("-100.00")
    assert by_number["8"].difference == D("100.00")
    assert by_number["1"].difference == D("0.00")
    assert [line.number for line in lines if line.detail] == ["5a", "5b", "5c"]
    assert [line.number for line in lines if line.strong] == ["8"]
    assert g702_lines(claimed)[0].difference is None


def test_g702_labels_speak_the_dialect() -> None:
    totals = _figures().totals
    us = {line.number: line.label for line in g702_lines(totals, dialect="us")}
    au = {line.number: line.label for line in g702_lines(totals, dialect="au")}
    assert us["5"] == "Total retainage (5a + 5b − 5c)"
    assert au["5"] == "Total retention (5a + 5b − 5c)"
    assert au["5a"] == "Retention on completed work"
    assert au["9"] == "Balance to finish, including retention (3 − 6)"
    assert us["6"] == "Total earned less retainage (4 − 5)"
    assert us["3"] == "Contract sum to date (1 + 2)"


def test_g703_totals_are_the_column_sums() -> None:
    figs = _figures("100")
    t = g703_totals(figs.lines)
    for name in (
        "scheduled_value",
        "previous_work",
        "work_this_period",
        "materials_stored",
        "total_completed_and_stored",
        "balance_to_finish",
        "retainage",
    ):
        assert getattr(t, name) == sum(getattr(f, name) for f in figs.lines), name
    assert t.scheduled_value == figs.totals.contract_sum_to_date
    assert t.total_completed_and_stored == figs.totals.total_completed_and_stored
    assert t.percent_complete == figs.totals.percent_complete
    # Column I is the gross retainage of the lines; line 5 is net of releases.
    assert t.retainage == figs.totals.retainage + D("100.00")
    assert g703_totals([]).scheduled_value == D("0.00")
