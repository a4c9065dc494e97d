"""SPEC §4's worked example, billing 2, in every format: exact files, and every
figure agreeing to the cent with the money engine (portal.billing.figures.sheet).

Billing 2 (approved as noted) after billing 1:
* current payment due (line 8) 22,775.00 = line 6 46,475.00 − line 7 23,700.00;
* retainage held this period = line 5 5,025.00 − billing 1's 2,300.00 = 2,725.00;
* cost this period per line = work this period + change in stored materials:
  L1 15,000.00; L2 4,000.00 + (2,500.00 − 6,000.00) = 500.00; L3 10,000.00;
  together 25,500.00 = line 4 51,500.00 − billing 1's 26,000.00
  = 22,775.00 + 2,725.00 (the Sage header amount);
* so the IIF bill is A/P −22,775.00, lines +15,000.00 +500.00 +10,000.00,
  Retainage Payable −2,725.00: it sums to zero.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from openpyxl import load_workbook

from portal.billing import figures
from portal.extensions import db
from portal.finance import batches as export_batches
from portal.finance import builders
from portal.models import Billing

D = Decimal
EXPECTED = Path(__file__).parent / "expected"
BATCH = builders.BatchInfo(7, datetime(2025, 5, 2, 8, 0, tzinfo=UTC))


@pytest.fixture
def billing2(example):
    billing = db.session.get(Billing, example.billing2_id)
    row = export_batches.export_rows([billing])[billing.id]
    return billing, row


def test_billing2_frozen_figures_are_the_worked_example(billing2) -> None:
    billing, row = billing2
    totals = figures.sheet(billing).totals
    assert billing.status == "approved_as_noted"
    assert totals.total_completed_and_stored == D("51500.00")
    assert totals.retainage == D("5025.00")
    assert totals.total_earned_less_retainage == D("46475.00")
    assert totals.previous_certificates == D("23700.00")
    assert totals.current_payment_due == D("22775.00")
    assert row.retainage_previous == D("2300.00")
    assert row.retainage_this_period == D("2725.00")
    assert row.gross_this_period == D("25500.00")
    assert [line.amount_this_period for line in row.lines] == [
        D("15000.00"),
        D("500.00"),
        D("10000.00"),
    ]
    assert [line.materials_change for line in row.lines] == [
        D("0.00"),
        D("-3500.00"),
        D("0.00"),
    ]
    assert [line.retainage_this_period for line in row.lines] == [
        D("1500.00"),
        D("225.00"),
        D("1000.00"),
    ]
    for fmt in builders.FORMATS:
        assert export_batches.problems_for(row, fmt) == [], fmt


def test_billing2_iif_matches_expected_file(billing2) -> None:
    _, row = billing2
    data = builders.build_iif([row], BATCH)
    assert data == (EXPECTED / "worked_example_billing2.iif").read_bytes()


def test_billing2_sage300_matches_expected_file(billing2) -> None:
    _, row = billing2
    data = builders.build_sage300([row], BATCH)
    assert data == (EXPECTED / "worked_example_billing2_sage300.txt").read_bytes()


def test_billing2_csv_matches_expected_file(billing2) -> None:
    billing, row = billing2
    expected = (EXPECTED / "worked_example_billing2.csv").read_bytes()
    expected = expected.replace(b"{billing_id}", str(billing.id).encode())
    assert builders.build_csv([row], BATCH) == expected


def test_every_format_agrees_with_the_money_engine_to_the_cent(billing2) -> None:
    billing, row = billing2
    sheet = figures.sheet(billing)
    t = sheet.totals

    # IIF: A/P = −line 8, lines = cost this period, retainage = −Δ line 5.
    text = builders.build_iif([row], BATCH).decode("cp1252")
    records = [
        r.split("\t") for r in text.split("\r\n") if r.startswith(("TRNS", "SPL"))
    ]
    amounts = [D(r[7]) for r in records]
    assert amounts[0] == -t.current_payment_due
    assert sum(amounts) == 0
    assert amounts[-1] == -(t.retainage - D("2300.00"))

    # Sage: header = line 8 + retainage held; distributions per SOV line.
    sage = list(csv.reader(io.StringIO(builders.build_sage300([row], BATCH).decode())))
    assert D(sage[0][4]) == t.current_payment_due + (t.retainage - D("2300.00"))
    assert [D(r[11]) for r in sage[1:]] == [
        fig.retainage - prev
        for fig, prev in zip(
            [r.figures for r in sheet.rows],
            [D("2000.00"), D("300.00"), D("0.00")],
            strict=True,
        )
    ]

    # CSV: every G703 column of every line.
    lines = list(csv.DictReader(io.StringIO(builders.build_csv([row], BATCH).decode())))
    assert len(lines) == len(sheet.rows)
    for got, sheet_row in zip(lines, sheet.rows, strict=True):
        f = sheet_row.figures
        assert got["cost_code"] == sheet_row.sov.cost_code
        assert D(got["scheduled_value"]) == f.scheduled_value
        assert D(got["previous_work"]) == f.previous_work
        assert D(got["work_this_period"]) == f.work_this_period
        assert D(got["materials_stored"]) == f.materials_stored
        assert D(got["total_completed_and_stored"]) == f.total_completed_and_stored
        assert D(got["percent_complete"]) == f.percent_complete
        assert D(got["balance_to_finish"]) == f.balance_to_finish
        assert D(got["retainage_to_date"]) == f.retainage
        assert D(got["billing_current_payment_due"]) == t.current_payment_due
        assert D(got["claimed_work"]) == sheet_row.line.claimed_work
    assert sum(D(r["net_this_period"]) for r in lines) == t.current_payment_due

    # XLSX: the Billings sheet carries G702 lines 1-9 as numbers.
    workbook = load_workbook(io.BytesIO(builders.build_xlsx([row], BATCH)))
    head = [c.value for c in workbook["Billings"][1]]
    values = {h: c.value for h, c in zip(head, workbook["Billings"][2], strict=True)}
    for name in (
        "original_contract_sum",
        "net_change_by_change_orders",
        "contract_sum_to_date",
        "total_completed_and_stored",
        "retainage",
        "total_earned_less_retainage",
        "previous_certificates",
        "current_payment_due",
        "balance_to_finish_including_retainage",
    ):
        assert D(str(values[name])).quantize(D("0.01")) == getattr(t, name), name
    assert values["current_payment_due"] == 22775
    assert values["balance_to_finish_including_retainage"] == 58525
    line_head = [c.value for c in workbook["Lines"][1]]
    l2 = {h: c.value for h, c in zip(line_head, workbook["Lines"][3], strict=True)}
    assert l2["materials_stored_change"] == -3500
    assert D(str(l2["percent_complete"])) == D("18.57")


def test_billing1_is_exported_without_a_previous_billing(example) -> None:
    billing = db.session.get(Billing, example.billing1_id)
    row = export_batches.export_rows([billing])[billing.id]
    assert row.current_payment_due == D("23700.00")
    assert row.retainage_previous == D("0.00")
    assert row.retainage_this_period == D("2300.00")
    records = [
        line.split("\t")
        for line in builders.build_iif([row], BATCH).decode("cp1252").split("\r\n")
        if line.startswith(("TRNS", "SPL"))
    ]
    assert [r[7] for r in records] == ["-23700.00", "20000.00", "6000.00", "-2300.00"]
