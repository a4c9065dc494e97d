"""The pure export builders against hand-written expected files (no app, no DB)."""

from __future__ import annotations

import csv
import io
from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from openpyxl import load_workbook

from portal.finance import builders
from portal.finance.builders import BatchInfo, BillingRow, LineRow

D = Decimal
EXPECTED = Path(__file__).parent / "expected"
BATCH = BatchInfo(7, datetime(2025, 4, 2, 9, 30, tzinfo=UTC))


def _line(**kw) -> LineRow:
    base = {
        "line_number": 1,
        "cost_code": "26-100",
        "description": "Line",
        "scheduled_value": D("25000.00"),
        "previous_work": D("0.00"),
        "work_this_period": D("2500.00"),
        "materials_stored": D("0.00"),
        "total_completed_and_stored": D("2500.00"),
        "percent_complete": D("10.00"),
        "balance_to_finish": D("22500.00"),
        "retainage": D("0.00"),
        "claimed_work": D("2500.00"),
        "claimed_materials": D("0.00"),
        "expense_account": "Job Costs:Subcontracts",
        "sage_cost_code": "26-100",
        "sage_category": "S",
        "qb_class": "Subcontract",
    }
    base.update(kw)
    return LineRow(**base)


def _billing(**kw) -> BillingRow:
    base = {
        "billing_id": 121,
        "application_number": 1,
        "status": "approved",
        "invoice_number": "BE-7781",
        "vendor_name": "Bright Electric Inc",
        "vendor_code": "BRIGHT",
        "vendor_address": "400 Volt Ave\nSpringfield IL 62702",
        "project_number": "1024",
        "project_name": "1024 Riverside Clinic",
        "job_number": "1024",
        "qb_customer_job": "Riverside Health:1024 Riverside Clinic",
        "commitment_number": "PO-002",
        "commitment_title": "Electrical",
        "period_sequence": 3,
        "period_start": date(2025, 3, 1),
        "period_end": date(2025, 3, 31),
        "billing_date": date(2025, 3, 31),
        "currency": "USD",
        "original_contract_sum": D("25000.00"),
        "net_change_by_change_orders": D("0.00"),
        "contract_sum_to_date": D("25000.00"),
        "total_completed_and_stored": D("2500.00"),
        "retainage": D("0.00"),
        "total_earned_less_retainage": D("2500.00"),
        "previous_certificates": D("0.00"),
        "current_payment_due": D("2500.00"),
        "balance_to_finish_including_retainage": D("22500.00"),
        "retainage_previous": D("0.00"),
        "retainage_released_this_period": D("0.00"),
        "lines": (_line(description='Electrical rough-in\tphase 1\nlevel 2 "A"'),),
        "ap_account": "Accounts Payable",
        "retainage_payable_account": "Retainage Payable",
    }
    base.update(kw)
    return BillingRow(**base)


def reference_claims() -> list[BillingRow]:
    """erp-formats.md's Claim A (10 % retainage) and Claim B (none)."""
    acme = _billing(
        billing_id=118,
        invoice_number="ACME-0042",
        vendor_name="Acme Concrete LLC",
        vendor_code="ACME",
        vendor_address="12 Quarry Rd\nSpringfield, IL 62701",
        commitment_number="SC-001",
        original_contract_sum=D("50000.00"),
        contract_sum_to_date=D("50000.00"),
        total_completed_and_stored=D("10000.00"),
        retainage=D("1000.00"),
        total_earned_less_retainage=D("9000.00"),
        current_payment_due=D("9000.00"),
        balance_to_finish_including_retainage=D("41000.00"),
        lines=(
            _line(
                line_number=3,
                cost_code="03-300",
                description="Cast-in-place concrete",
                scheduled_value=D("50000.00"),
                work_this_period=D("10000.00"),
                total_completed_and_stored=D("10000.00"),
                percent_complete=D("20.00"),
                balance_to_finish=D("40000.00"),
                retainage=D("1000.00"),
                claimed_work=D("10000.00"),
                sage_cost_code="03-300",
            ),
        ),
    )
    return [acme, _billing()]


def _iif_transactions(data: bytes) -> list[list[list[str]]]:
    """Split IIF bytes into transactions (lists of tab-split records)."""
    text = data.decode("cp1252")
    assert text.endswith("\r\n")
    records = [line.split("\t") for line in text[:-2].split("\r\n")]
    transactions, current = [], None
    for record in records:
        if record[0] == "TRNS":
            current = [record]
        elif record[0] == "SPL":
            current.append(record)
        elif record[0] == "ENDTRNS":
            transactions.append(current)
            current = None
    return transactions


# ------------------------------------------------------------ exact bytes


def test_iif_matches_the_hand_written_reference_file() -> None:
    batch = replace(BATCH, include_vendors=True)
    data = builders.build_iif(reference_claims(), batch)
    assert data == (EXPECTED / "reference_sample.iif").read_bytes()


def test_sage300_matches_the_hand_written_reference_file() -> None:
    data = builders.build_sage300(reference_claims(), BATCH)
    assert data == (EXPECTED / "reference_sample_sage300.txt").read_bytes()


def test_csv_matches_the_hand_written_reference_file() -> None:
    data = builders.build_csv(reference_claims(), BATCH)
    assert data == (EXPECTED / "reference_sample.csv").read_bytes()


def test_iif_without_vendor_list_starts_with_the_transaction_headers() -> None:
    data = builders.build_iif(reference_claims(), BATCH)
    assert data.startswith(b"!TRNS\tTRNSID\tTRNSTYPE\tDATE")
    assert b"!VEND" not in data and b"\nVEND" not in data


# --------------------------------------------------------------- IIF rules


def test_each_iif_transaction_sums_to_zero_and_ap_is_minus_payment_due() -> None:
    rows = reference_claims()
    transactions = _iif_transactions(builders.build_iif(rows, BATCH))
    assert len(transactions) == 2
    for row, records in zip(rows, transactions, strict=True):
        amounts = [Decimal(record[7]) for record in records]
        assert sum(amounts) == 0
        assert amounts[0] == -row.current_payment_due
        assert records[0][4] == "Accounts Payable"


def test_iif_retainage_line_is_negative_and_released_retainage_positive() -> None:
    acme = reference_claims()[0]
    records = _iif_transactions(builders.build_iif([acme], BATCH))[0]
    assert records[-1][4] == "Retainage Payable"
    assert records[-1][7] == "-1000.00"
    # A billing that releases more than it holds credits A/P more than it costs.
    release = replace(
        acme,
        retainage=D("500.00"),
        retainage_previous=D("1000.00"),
        total_earned_less_retainage=D("9500.00"),
        previous_certificates=D("9000.00"),
        current_payment_due=D("500.00"),
        retainage_released_this_period=D("500.00"),
        lines=(
            replace(
                acme.lines[0],
                work_this_period=D("0.00"),
                retainage_previous=D("1000.00"),
            ),
        ),
    )
    assert builders.reconciliation_problems(release) == []
    records = _iif_transactions(builders.build_iif([release], BATCH))[0]
    assert [r[7] for r in records] == ["-500.00", "500.00"]
    assert records[1][9] == "Retainage released this period on SC-001"


def test_iif_text_neutralises_tabs_line_breaks_and_quotes() -> None:
    assert builders.iif_text("a\tb") == "a\\tb"
    assert builders.iif_text("a\r\nb\nc\rd") == "a\\nb\\ncd"
    assert builders.iif_text('say "hi"') == "say 'hi'"
    assert builders.iif_text("Springfield, IL") == '"Springfield, IL"'
    assert builders.iif_text("x" * 10, limit=4) == "xxxx"
    data = builders.build_iif([_billing(vendor_name="Tab\tCo\nLtd")], BATCH)
    for line in data.decode("cp1252").split("\r\n"):
        if line.startswith("TRNS"):
            assert len(line.split("\t")) == 14
            assert "Tab\\tCo\\nLtd" in line


def test_iif_dates_are_mm_dd_yyyy_with_crlf_and_cp1252() -> None:
    row = _billing(vendor_name="Café Électrique", billing_date=date(2025, 1, 5))
    data = builders.build_iif([row], BATCH)
    assert b"\tBILL\t01/05/2025\t" in data
    assert "Café Électrique".encode("cp1252") in data
    assert b"\n" not in data.replace(b"\r\n", b"")


# ------------------------------------------------------------ Sage layout


def test_sage_layout_table_is_complete_and_ordered() -> None:
    for record, fields in builders.SAGE300_LAYOUT.items():
        assert [f.position for f in fields] == list(range(1, len(fields) + 1))
        assert fields[0].name == "record_id"
        assert all(f.kind in ("A", "N", "D") for f in fields)
        assert len({f.name for f in fields}) == len(fields), record
    published = [f.name for f in builders.SAGE300_LAYOUT["APIF"] if f.published]
    assert published == [
        "record_id",
        "vendor",
        "invoice",
        "description",
        "amount",
        "tax",
        "discount_offered",
        "misc_deduction",
        "invoice_date",
    ]
    assert not any(f.published for f in builders.SAGE300_LAYOUT["APDF"])


def test_sage_header_amount_is_payment_due_plus_retainage_held() -> None:
    acme = reference_claims()[0]
    records = list(
        csv.reader(io.StringIO(builders.build_sage300([acme], BATCH).decode()))
    )
    header, dists = records[0], records[1:]
    assert Decimal(header[4]) == acme.current_payment_due + acme.retainage_this_period
    assert Decimal(header[12]) == acme.retainage_this_period
    assert sum(Decimal(d[10]) for d in dists) == Decimal(header[4])
    assert sum(Decimal(d[11]) for d in dists) == Decimal(header[12])


def test_sage_refuses_values_longer_than_their_field() -> None:
    with pytest.raises(builders.SageLayoutError, match="longer than 10"):
        builders.build_sage300([_billing(vendor_code="TOO-LONG-CODE")], BATCH)
    assert builders.sage_fit_problem("APIF", "invoice", "X" * 15) is None
    assert "longer than 15" in builders.sage_fit_problem("APIF", "invoice", "X" * 16)
    assert "too large" in builders.sage_fit_problem("APIF", "amount", D("1000000000"))
    assert builders.sage_fit_problem("APIF", "amount", D("999999999.99")) is None


def test_sage_strips_double_quotes_and_line_breaks_from_text() -> None:
    row = _billing(invoice_number='A"1\n2')
    data = builders.build_sage300([row], BATCH).decode()
    assert '"A\'1 2"' in data
    assert data.count("\r\n") == 2


# ------------------------------------------------- CSV / XLSX neutralising

NASTY = ["=1+2", "+SUM(A1)", "-2+3", "@cmd", "\tTAB", "\rCR"]


@pytest.mark.parametrize("text", NASTY)
def test_neutralise_prefixes_a_quote(text: str) -> None:
    assert builders.neutralise(text) == "'" + text
    assert builders.neutralise("Plain " + text) == "Plain " + text


def _nasty_row() -> BillingRow:
    """Every text field (but the currency code) starts like a formula; amounts
    include negatives."""
    line = _line(
        cost_code="=CC",
        description="+DESC",
        expense_account="-EXP",
        sage_cost_code="@SAGE",
        sage_category="\tCAT",
        qb_class="\rCLASS",
        materials_stored=D("0.00"),
        materials_stored_previous=D("1500.00"),
        work_this_period=D("4000.00"),
    )
    return _billing(
        project_number="=P",
        job_number="+J",
        project_name="-N",
        vendor_code="@V",
        vendor_name='=HYPERLINK("http://evil.example","x")',
        commitment_number="+C",
        commitment_title="-T",
        invoice_number="@I",
        status="=S",
        lines=(line,),
    )


def test_csv_neutralises_every_text_column_and_keeps_negative_amounts() -> None:
    data = builders.build_csv([_nasty_row()], BATCH).decode()
    header, row = list(csv.reader(io.StringIO(data)))
    values = dict(zip(header, row, strict=True))
    kinds = {name: kind for name, kind, _ in builders.LINE_COLUMNS}
    for name, kind in kinds.items():
        if kind == "text" and name != "currency":
            assert values[name].startswith("'"), name
            assert values[name][1:2] in ("=", "+", "-", "@", "\t", "\r"), name
    assert values["materials_stored_change"] == "-1500.00"
    assert values["amount_this_period"] == "2500.00"
    for name, kind in kinds.items():
        if kind in ("amount", "percent"):
            Decimal(values[name])  # plain decimals, no symbols or separators
            assert "$" not in values[name] and "," not in values[name]


def test_xlsx_has_billings_and_lines_sheets_with_numbers_and_safe_text() -> None:
    data = builders.build_xlsx([_nasty_row(), *reference_claims()], BATCH)
    workbook = load_workbook(io.BytesIO(data))
    assert workbook.sheetnames == ["Billings", "Lines"]
    billings_sheet, lines_sheet = workbook["Billings"], workbook["Lines"]
    b_head = [c.value for c in billings_sheet[1]]
    assert b_head == [name for name, _, _ in builders.BILLING_COLUMNS]
    l_head = [c.value for c in lines_sheet[1]]
    assert l_head == [name for name, _, _ in builders.LINE_COLUMNS]
    assert billings_sheet.max_row == 4 and lines_sheet.max_row == 4
    nasty = dict(zip(l_head, lines_sheet[2], strict=True))
    for name, kind, _ in builders.LINE_COLUMNS:
        cell = nasty[name]
        if kind == "text" and name != "currency":
            assert cell.data_type == "s", name
            assert isinstance(cell.value, str) and cell.value.startswith("'"), name
        elif kind in ("amount", "percent"):
            assert cell.data_type == "n", name
            assert isinstance(cell.value, int | float), name
    assert nasty["materials_stored_change"].value == -1500
    assert nasty["materials_stored_change"].number_format == '"$"#,##0.00;-"$"#,##0.00'
    assert nasty["billing_date"].value.date() == date(2025, 3, 31)
    acme = {h: c.value for h, c in zip(b_head, billings_sheet[3], strict=True)}
    assert acme["current_payment_due"] == 9000
    assert acme["retainage_this_period"] == 1000
    assert acme["vendor_name"] == "Acme Concrete LLC"


def test_xlsx_drops_characters_excel_cannot_hold() -> None:
    row = _billing(vendor_name="Bell\x07Co")
    workbook = load_workbook(io.BytesIO(builders.build_xlsx([row], BATCH)))
    names = [c.value for c in workbook["Billings"]["G"]]
    assert names[1] == "BellCo"


def test_reconciliation_flags_inconsistent_rows() -> None:
    row = _billing(current_payment_due=D("2400.00"))
    problems = builders.reconciliation_problems(row)
    assert problems and "do not add up" in problems[0]


def test_formats_table_and_no_direct_export_list() -> None:
    assert set(builders.FORMATS) == {"sage300", "iif", "csv", "xlsx"}
    assert builders.NO_DIRECT_EXPORT == (
        "Viewpoint Spectrum",
        "Viewpoint Vista",
        "Sage 100 Contractor",
    )


def test_sage_holds_back_a_positive_invoice_whose_net_payable_is_negative() -> None:
    """Issue 13 item 8: 351.21 invoiced this period, 928.35 retainage held this
    period (stored materials installed into work at a higher rate): the
    current payment due is -577.14, which an AP invoice cannot carry."""
    from portal.finance.batches import problems_for

    line = _line(
        work_this_period=D("4641.75"),
        materials_stored=D("0.00"),
        materials_stored_previous=D("4290.54"),
        retainage=D("928.35"),
        total_completed_and_stored=D("4641.75"),
    )
    row = _billing(
        lines=(line,),
        total_completed_and_stored=D("4641.75"),
        retainage=D("928.35"),
        total_earned_less_retainage=D("3713.40"),
        previous_certificates=D("4290.54"),
        current_payment_due=D("-577.14"),
    )
    assert row.gross_this_period == D("351.21")
    assert row.retainage_this_period == D("928.35")
    problems = problems_for(row, "sage300")
    assert problems == [
        "Current payment due is -577.14 (amount this period 351.21 less retainage "
        "held this period 928.35): a Sage 300 CRE invoice cannot hold more "
        "retainage than its amount; enter it in Sage by hand or export this "
        "billing as CSV"
    ]
    # CSV and XLSX carry any figures; a zero payment due still goes to Sage.
    assert problems_for(row, "csv") == []
    fully_retained = replace(
        row,
        current_payment_due=D("0.00"),
        retainage=D("351.21"),
        lines=(replace(line, retainage=D("351.21")),),
        total_earned_less_retainage=D("4290.54"),
    )
    assert problems_for(fully_retained, "sage300") == []
