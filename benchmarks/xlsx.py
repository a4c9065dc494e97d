"""XLSX: XlsxWriter (constant_memory) against the hand-written writer (issue 16 item 5).

Builds the XLSX of an export batch of 1,000 billings (and of 250) from synthetic
rows of the real shape (portal.finance.builders.BillingRow / LineRow: 20,760
lines for 1,000 billings, as in the benchmark database) with

* ``hand``: today's builder, ``portal.finance.builders.build_xlsx`` (the
  writer in ``portal.finance.xlsx``);
* ``xlsxwriter``: the same two sheets, header, frozen first row, number formats
  and text cleaning written with XlsxWriter in ``constant_memory`` mode.

Each is timed three times (median of CPU time and of wall time, no forced
collection), then once more under tracemalloc for the peak of Python memory.
No database, no Flask: run it with ``python -m benchmarks.xlsx``.
"""

from __future__ import annotations

import argparse
import io
import statistics
import time
import tracemalloc
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from portal.finance import builders
from portal.finance.builders import (
    BILLING_COLUMNS,
    LINE_COLUMNS,
    BatchInfo,
    BillingRow,
    LineRow,
    neutralise,
)

D = Decimal


def rows(count: int, lines_total: int | None = None) -> list[BillingRow]:
    """``count`` billings with 20 or 21 lines (20.76 a billing on average)."""
    lines_total = lines_total or round(count * 20.76)
    extra = lines_total - 20 * count
    out = []
    for i in range(count):
        n = 21 if i < extra else 20
        lines = tuple(
            LineRow(
                line_number=k + 1,
                cost_code=f"{3 + k % 20:02d}-{100 * (1 + k % 9)}",
                description=f"Line {k + 1} of commitment {i}: supply and install",
                scheduled_value=D("125000.00") + k,
                previous_work=D("41234.56") + i % 100,
                work_this_period=D("5234.17") + k,
                materials_stored=D("1200.00") if k % 3 == 0 else D("0.00"),
                total_completed_and_stored=D("47668.73") + k,
                percent_complete=D("38.13"),
                balance_to_finish=D("77331.27") - k,
                retainage=D("4766.87"),
                claimed_work=D("5234.17") + k,
                claimed_materials=D("0.00"),
                materials_stored_previous=D("600.00") if k % 3 == 0 else D("0.00"),
                retainage_previous=D("4243.45"),
                expense_account="5100",
                sage_cost_code=f"{3 + k % 20:02d}-{100 * (1 + k % 9)}",
                sage_category="S",
                qb_class="Job costs",
            )
            for k in range(n)
        )
        out.append(
            BillingRow(
                billing_id=10_000 + i,
                application_number=1 + i % 24,
                status="approved",
                invoice_number=f"INV-{i:05d}",
                vendor_name=f"Vendor {i % 300} Construction Ltd.",
                vendor_code=f"V{i % 300:04d}",
                vendor_address="1 Main Street\nSpringfield",
                project_number="P-2026-001",
                project_name="Harbour Tower",
                job_number="J-7001",
                qb_customer_job="Harbour Tower",
                commitment_number=f"SC-{i:04d}",
                commitment_title=f"Subcontract {i}",
                period_sequence=24,
                period_start=date(2026, 11, 1),
                period_end=date(2026, 11, 30),
                billing_date=date(2026, 11, 25),
                currency="USD",
                original_contract_sum=D("2500000.00"),
                net_change_by_change_orders=D("12500.00"),
                contract_sum_to_date=D("2512500.00"),
                total_completed_and_stored=D("953374.60"),
                retainage=D("95337.46"),
                total_earned_less_retainage=D("858037.14"),
                previous_certificates=D("763667.40"),
                current_payment_due=D("94369.74"),
                balance_to_finish_including_retainage=D("1654462.86"),
                retainage_previous=D("84868.90"),
                retainage_released_this_period=D("0.00"),
                lines=lines,
            )
        )
    return out


def build_with_xlsxwriter(billings: Iterable[BillingRow], batch: BatchInfo) -> bytes:
    """The batch's two sheets written by XlsxWriter in constant_memory mode:
    same columns, header, frozen row, number formats and text cleaning."""
    import xlsxwriter
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    out = io.BytesIO()
    book = xlsxwriter.Workbook(
        out,
        {
            "constant_memory": True,
            "strings_to_formulas": False,
            "strings_to_urls": False,
        },
    )
    book.set_properties(
        {
            "author": "Progress Billings",
            "title": f"Export batch {batch.batch_id}",
            "created": batch.created_at.replace(tzinfo=None, microsecond=0),
        }
    )
    bold = book.add_format({"bold": True})
    fmt = {
        "percent": book.add_format({"num_format": "0.00"}),
        "date": book.add_format({"num_format": "yyyy-mm-dd"}),
        "int": None,
    }
    amounts: dict[str, Any] = {}
    cleaned: dict[Any, str] = {}

    def clean(value: Any) -> str:
        found = cleaned.get(value)
        if found is None:
            if len(cleaned) >= 5_000:
                cleaned.clear()
            found = cleaned[value] = ILLEGAL_CHARACTERS_RE.sub(
                "", neutralise(str(value or ""))
            )
        return found

    def sheet(name: str, columns: tuple[tuple[str, str, Any], ...]) -> Any:
        ws = book.add_worksheet(name)
        for c, (title, _, _) in enumerate(columns):
            ws.write_string(0, c, title, bold)
        ws.freeze_panes(1, 0)
        return ws

    billing_ws = sheet("Billings", BILLING_COLUMNS)
    line_ws = sheet("Lines", LINE_COLUMNS)
    origin = date(1899, 12, 30)

    def write(ws: Any, r: int, columns: Any, currency: str, *args: Any) -> None:
        amount = amounts.get(currency)
        if amount is None:
            amount = amounts[currency] = book.add_format(
                {"num_format": builders._xlsx_currency_format(currency)}
            )
        for c, (_, kind, get) in enumerate(columns):
            value = get(batch, *args)
            if value is None:
                continue
            if kind == "text":
                ws.write_string(r, c, clean(value))
            elif kind == "amount":
                ws.write_number(r, c, float(value), amount)
            elif kind == "date":
                serial = (value - origin).days
                ws.write_number(r, c, serial, fmt["date"])
            elif kind == "percent":
                ws.write_number(r, c, float(value), fmt["percent"])
            else:
                ws.write_number(r, c, int(value))

    b = ln = 0
    for row in billings:
        b += 1
        write(billing_ws, b, BILLING_COLUMNS, row.currency, row)
        for line in row.lines:
            ln += 1
            write(line_ws, ln, LINE_COLUMNS, row.currency, row, line)
    book.close()
    return out.getvalue()


BUILDERS: dict[str, Callable[[Iterable[BillingRow], BatchInfo], bytes]] = {
    "hand": builders.build_xlsx,
    "xlsxwriter": build_with_xlsxwriter,
}


def measure(name: str, data: list[BillingRow], repeat: int) -> dict[str, float]:
    build = BUILDERS[name]
    batch = BatchInfo(batch_id=1, created_at=datetime(2026, 12, 1, 9, 0, tzinfo=UTC))
    cpu, wall = [], []
    size = 0
    for _ in range(repeat):
        c0, w0 = time.process_time(), time.perf_counter()
        size = len(build(data, batch))
        cpu.append(time.process_time() - c0)
        wall.append(time.perf_counter() - w0)
    tracemalloc.start()
    build(data, batch)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {
        "cpu_ms": statistics.median(cpu) * 1000,
        "wall_ms": statistics.median(wall) * 1000,
        "peak_mib": peak / 2**20,
        "bytes": size,
    }


def same_cells() -> None:
    """Both writers' workbooks read back (openpyxl) with the same sheets, values
    and number formats: the comparison is of like with like."""
    from openpyxl import load_workbook

    data = rows(5)
    batch = BatchInfo(batch_id=1, created_at=datetime(2026, 12, 1, 9, 0, tzinfo=UTC))
    books = [
        load_workbook(io.BytesIO(build(data, batch)), read_only=True)
        for build in BUILDERS.values()
    ]
    sheets = [
        {
            ws.title: [[(c.value, c.number_format) for c in r] for r in ws.iter_rows()]
            for ws in book.worksheets
        }
        for book in books
    ]
    for title in sheets[0]:
        for a, b in zip(sheets[0][title], sheets[1][title], strict=True):
            for (va, fa), (vb, fb) in zip(a, b, strict=True):
                if isinstance(va, Decimal | float | int) and not isinstance(va, bool):
                    assert abs(float(va) - float(vb)) < 1e-9, (title, va, vb)
                else:
                    assert va == vb, (title, va, vb)
                assert fa == fb, (title, fa, fb)
    print("same sheets, values and number formats: yes")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--sizes", default="250,1000")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    same_cells()
    warm = rows(10)
    for build in BUILDERS.values():  # imports and first-call costs out of the timings
        build(warm, BatchInfo(batch_id=1, created_at=datetime(2026, 1, 1, tzinfo=UTC)))
    results: dict[tuple[str, int], dict[str, float]] = {}
    for count in sizes:
        data = rows(count)
        lines = sum(len(r.lines) for r in data)
        for name in BUILDERS:
            results[name, count] = r = measure(name, data, args.repeat)
            print(
                f"{name:<11} {count:>5} billings {lines:>6} lines: "
                f"CPU {r['cpu_ms']:8.0f} ms  wall {r['wall_ms']:8.0f} ms  "
                f"{r['cpu_ms'] / count:6.3f} CPU ms/billing  "
                f"peak {r['peak_mib']:6.1f} MiB  {r['bytes'] / 2**20:5.2f} MiB file",
                flush=True,
            )
    big, small = max(sizes), min(sizes)
    for name in BUILDERS:
        per_big = results[name, big]["cpu_ms"] / big
        per_small = results[name, small]["cpu_ms"] / small
        print(
            f"{name}: CPU per billing at {big} / at {small} = {per_big / per_small:.3f}"
        )
    ratio = results["xlsxwriter", big]["cpu_ms"] / results["hand", big]["cpu_ms"]
    print(f"xlsxwriter / hand-written CPU at {big} billings: {ratio:.2f}x")


if __name__ == "__main__":
    main()
