"""The hand-written XLSX writer: what openpyxl (as Excel would) reads back."""

from __future__ import annotations

import io
import zipfile
from datetime import UTC, date, datetime, time
from decimal import Decimal

import pytest
from openpyxl import load_workbook

from portal.finance import xlsx


@pytest.mark.parametrize(
    ("index", "letters"),
    [
        (0, "A"),
        (25, "Z"),
        (26, "AA"),
        (51, "AZ"),
        (52, "BA"),
        (701, "ZZ"),
        (702, "AAA"),
    ],
)
def test_column_letters(index: int, letters: str) -> None:
    assert xlsx.column_letter(index) == letters


def _book(rows: list[list[tuple[object, xlsx.Cell]]]) -> bytes:
    return xlsx.write_workbook(
        [xlsx.Sheet("Data", ["Name", "Amount", "Date", "Pct"], iter(rows))],
        creator="Progress Billings",
        title="Export batch 7",
        created=datetime(2026, 11, 29, 8, 30, 0, tzinfo=UTC),
    )


def test_values_types_formats_and_header_read_back() -> None:
    text, money = xlsx.Cell("text"), xlsx.Cell("number", '"$"#,##0.00')
    day, pct = xlsx.Cell("date", "yyyy-mm-dd"), xlsx.Cell("number", "0.00")
    rows = [
        [
            ("A & B <Ltd>", text),
            (Decimal("1234.50"), money),
            (date(2026, 2, 28), day),
            (Decimal("10.00"), pct),
        ],
        [
            ("=SUM(A1)", text),
            (Decimal("-0.00"), money),
            (date(1900, 3, 1), day),
            (None, pct),
        ],
    ]
    workbook = load_workbook(io.BytesIO(_book(rows)))
    sheet = workbook["Data"]
    assert [c.value for c in sheet[1]] == ["Name", "Amount", "Date", "Pct"]
    assert all(c.font.bold for c in sheet[1])
    assert sheet.freeze_panes == "A2"
    assert sheet["A2"].value == "A & B <Ltd>"
    assert sheet["B2"].value == pytest.approx(1234.5)
    assert sheet["B2"].number_format == '"$"#,##0.00'
    assert sheet["C2"].value.date() == date(2026, 2, 28)
    assert sheet["C2"].value.time() == time(0, 0)
    assert sheet["C2"].number_format == "yyyy-mm-dd"
    assert sheet["D2"].number_format == "0.00"
    # Text is stored as a string, never a formula.
    assert sheet["A3"].data_type == "s" and sheet["A3"].value == "=SUM(A1)"
    assert sheet["B3"].value == 0
    assert sheet["C3"].value.date() == date(1900, 3, 1)
    assert sheet["D3"].value is None
    assert workbook.properties.title == "Export batch 7"
    assert workbook.properties.creator == "Progress Billings"


def test_bytes_depend_only_on_input_and_zip_is_valid() -> None:
    rows = [[(f"row {i}", xlsx.Cell("text"))] * 4 for i in range(1200)]
    first, second = _book(rows), _book(rows)
    assert first == second
    with zipfile.ZipFile(io.BytesIO(first)) as zf:
        assert zf.testzip() is None
        assert "xl/worksheets/sheet1.xml" in zf.namelist()
    sheet = load_workbook(io.BytesIO(first))["Data"]
    assert sheet.max_row == 1201
    assert sheet["D1201"].value == "row 1199"
