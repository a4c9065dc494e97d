"""Export file builders (SPEC §7): rows in, bytes out, nothing else.

Every builder here is pure: it takes plain dataclasses (:class:`BillingRow`,
:class:`LineRow`, :class:`BatchInfo`), touches neither Flask nor the database,
and returns the exact bytes of the file. The rows are made from approved
billings' frozen money-engine figures by :mod:`portal.finance.batches`, so no
figure is computed here beyond the per-period differences the formats need
(this period = this billing minus the previous one), and those differences are
checked to reconcile with G702 line 8 before a billing may be exported.

Formats:

* QuickBooks Desktop IIF vendor bills (``BILL``) with a retainage split;
* Sage 300 CRE AP invoice import, Fixed format (``APIF``/``APDF``), whose field
  layout lives in one table, :data:`SAGE300_LAYOUT`;
* CSV (one row per billing line) and XLSX (a sheet of billings and a sheet of
  lines), with spreadsheet formula injection neutralised in text cells.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

CENT = Decimal("0.01")
ZERO = Decimal("0.00")

#: Text cells starting with one of these are read as formulas by spreadsheets.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


# --------------------------------------------------------------------- rows


@dataclass(frozen=True)
class LineRow:
    """One billing line (G703 row) with its ERP codes and last period's values."""

    line_number: int
    cost_code: str
    description: str
    scheduled_value: Decimal
    previous_work: Decimal
    work_this_period: Decimal
    materials_stored: Decimal
    total_completed_and_stored: Decimal
    percent_complete: Decimal
    balance_to_finish: Decimal
    retainage: Decimal
    claimed_work: Decimal
    claimed_materials: Decimal
    #: Materials stored and retainage of the same SOV line on the previous billing.
    materials_stored_previous: Decimal = ZERO
    retainage_previous: Decimal = ZERO
    expense_account: str = ""
    sage_cost_code: str = ""
    sage_category: str = ""
    qb_class: str = ""

    @property
    def materials_change(self) -> Decimal:
        """Stored materials this billing minus the previous one (F is a balance)."""
        return self.materials_stored - self.materials_stored_previous

    @property
    def amount_this_period(self) -> Decimal:
        """Cost this period: work this period plus the change in stored materials."""
        return self.work_this_period + self.materials_change

    @property
    def retainage_this_period(self) -> Decimal:
        """Retainage (column I) this billing minus the previous one."""
        return self.retainage - self.retainage_previous


@dataclass(frozen=True)
class BillingRow:
    """One approved billing with its G702 totals, lines and ERP codes."""

    billing_id: int
    application_number: int
    status: str
    invoice_number: str
    vendor_name: str
    vendor_code: str
    vendor_address: str
    project_number: str
    project_name: str
    job_number: str
    qb_customer_job: str
    commitment_number: str
    commitment_title: str
    period_sequence: int
    period_start: date
    period_end: date
    billing_date: date
    currency: str
    original_contract_sum: Decimal
    net_change_by_change_orders: Decimal
    contract_sum_to_date: Decimal
    total_completed_and_stored: Decimal
    retainage: Decimal
    total_earned_less_retainage: Decimal
    previous_certificates: Decimal
    current_payment_due: Decimal
    balance_to_finish_including_retainage: Decimal
    #: G702 line 5 of the previous billing (0 for the first).
    retainage_previous: Decimal
    retainage_released_this_period: Decimal
    lines: tuple[LineRow, ...]
    ap_account: str = ""
    retainage_payable_account: str = ""

    @property
    def retainage_this_period(self) -> Decimal:
        """Retainage held this period: line 5 now minus line 5 of the previous billing."""
        return self.retainage - self.retainage_previous

    @property
    def gross_this_period(self) -> Decimal:
        """Current payment due plus retainage held this period (the Sage amount)."""
        return self.current_payment_due + self.retainage_this_period


@dataclass(frozen=True)
class BatchInfo:
    """What a file says about its batch."""

    batch_id: int
    created_at: datetime
    include_vendors: bool = False


def reconciliation_problems(row: BillingRow) -> list[str]:
    """Why the per-period split does not add up to the G702 figures (normally none)."""
    problems = []
    lines_total = sum((line.amount_this_period for line in row.lines), ZERO)
    if lines_total != row.gross_this_period:
        problems.append(
            f"the lines' amounts this period ({_plain(lines_total)}) do not add up "
            f"to current payment due plus retainage held this period "
            f"({_plain(row.gross_this_period)})"
        )
    held = sum((line.retainage_this_period for line in row.lines), ZERO)
    if held - row.retainage_released_this_period != row.retainage_this_period:
        problems.append(
            "the lines' retainage this period does not add up to G702 line 5 "
            "minus the previous billing's"
        )
    return problems


# ------------------------------------------------------------------ helpers


def _plain(amount: Decimal) -> str:
    """``-1234.50``: two decimals, no separators, no currency, never ``-0.00``."""
    value = amount.quantize(CENT)
    if value.is_zero():
        value = ZERO
    return format(value, "f")


#: Control characters that spreadsheet writers (openpyxl) or readers drop: text
#: behind them is judged as if they were not there ("\x01=cmd" → "=cmd").
_DROPPED = "".join(chr(c) for c in range(32) if chr(c) not in "\t\r") + "\x7f"


def neutralise(text: str) -> str:
    """Prefix a single quote to text a spreadsheet would read as a formula."""
    return "'" + text if text.lstrip(_DROPPED).startswith(FORMULA_PREFIXES) else text


def _mdy(day: date | None) -> str:
    return day.strftime("%m/%d/%Y") if day else ""


def _invoice_label(row: BillingRow) -> str:
    return f"{row.commitment_number} #{row.application_number}"


# ------------------------------------------------------------ QuickBooks IIF

IIF_TRNS_FIELDS = (
    "TRNSID",
    "TRNSTYPE",
    "DATE",
    "ACCNT",
    "NAME",
    "CLASS",
    "AMOUNT",
    "DOCNUM",
    "MEMO",
    "CLEAR",
    "TOPRINT",
    "DUEDATE",
    "TERMS",
)
IIF_SPL_FIELDS = (
    "SPLID",
    "TRNSTYPE",
    "DATE",
    "ACCNT",
    "NAME",
    "CLASS",
    "AMOUNT",
    "DOCNUM",
    "MEMO",
    "CLEAR",
)
IIF_VEND_FIELDS = ("NAME", "PRINTAS", "ADDR1", "ADDR2", "ADDR3", "ADDR4", "ADDR5")
IIF_MEMO_LIMIT = 4095


def iif_text(value: str, limit: int | None = None) -> str:
    """One IIF text field: TAB → ``\\t``, LF → ``\\n``, CR dropped, ``"`` → ``'``.

    IIF has no escape mechanism, so a tab or line break would shift every later
    column; this follows CiviCRM's IIF exporter (see docs). A value with a
    comma is quoted, as QuickBooks' own exports do.
    """
    text = (
        value.replace("\r\n", "\n")
        .replace("\r", "")
        .replace("\t", "\\t")
        .replace("\n", "\\n")
        .replace('"', "'")
    )
    if limit is not None:
        text = text[:limit]
    if "," in text:
        text = f'"{text}"'
    return text


def _iif_record(keyword: str, values: Sequence[str]) -> str:
    return "\t".join([keyword, *values])


def iif_transaction(row: BillingRow, batch: BatchInfo) -> list[list[str]]:
    """The TRNS, SPL… and ENDTRNS records of one vendor bill, unescaped.

    A/P (TRNS) = −current payment due; one SPL per billing line with the cost
    this period (work this period + change in stored materials) on its expense
    account; one SPL of −retainage held this period on Retainage Payable. The
    amounts sum to zero because line 8 = Σ cost this period − Δ line 5.
    """
    date_text = _mdy(row.billing_date)
    memo = (
        f"{row.commitment_number} billing #{row.application_number} "
        f"period {row.period_sequence} ({_mdy(row.period_start)}-"
        f"{_mdy(row.period_end)}) batch {batch.batch_id}"
    )
    records = [
        [
            "TRNS",
            "",
            "BILL",
            date_text,
            row.ap_account,
            row.vendor_name,
            "",
            _plain(-row.current_payment_due),
            row.invoice_number,
            memo,
            "N",
            "N",
            "",
            "",
        ]
    ]
    for line in row.lines:
        if line.amount_this_period.is_zero():
            continue
        detail = f"work {_plain(line.work_this_period)}"
        if not line.materials_change.is_zero():
            detail += f"; stored materials change {_plain(line.materials_change)}"
        records.append(
            [
                "SPL",
                "",
                "BILL",
                date_text,
                line.expense_account,
                row.qb_customer_job,
                line.qb_class,
                _plain(line.amount_this_period),
                row.invoice_number,
                f"{line.cost_code} {line.description}: {detail}",
                "N",
            ]
        )
    held = row.retainage_this_period
    if not held.is_zero():
        what = "held" if held > 0 else "released"
        records.append(
            [
                "SPL",
                "",
                "BILL",
                date_text,
                row.retainage_payable_account,
                row.qb_customer_job,
                "",
                _plain(-held),
                row.invoice_number,
                f"Retainage {what} this period on {row.commitment_number}",
                "N",
            ]
        )
    records.append(["ENDTRNS"])
    return records


def _address_lines(address: str) -> list[str]:
    lines = [part.strip() for part in address.replace("\r", "").split("\n")]
    return [line for line in lines if line][:5]


def build_iif(billings: Iterable[BillingRow], batch: BatchInfo) -> bytes:
    """QuickBooks Desktop IIF: optional !VEND list, then one BILL per billing.

    The rows are read once (the vendor list is gathered on the way), so they can
    stream past a chunk at a time.
    """
    vendors: list[str] = []
    seen: set[str] = set()
    out: list[str] = [
        _iif_record("!TRNS", IIF_TRNS_FIELDS),
        _iif_record("!SPL", IIF_SPL_FIELDS),
        "!ENDTRNS",
    ]
    for row in billings:
        if batch.include_vendors and row.vendor_name not in seen:
            seen.add(row.vendor_name)
            address = _address_lines(row.vendor_address)
            address += [""] * (5 - len(address))
            values = [row.vendor_name, row.vendor_name, *address]
            vendors.append(_iif_record("VEND", [iif_text(v) for v in values]))
        for record in iif_transaction(row, batch):
            keyword, values = record[0], record[1:]
            memo_at = 8  # MEMO is the 9th field after the keyword in TRNS and SPL
            cleaned = [
                iif_text(v, IIF_MEMO_LIMIT if i == memo_at else None)
                for i, v in enumerate(values)
            ]
            out.append(_iif_record(keyword, cleaned))
    if batch.include_vendors:
        out[:0] = [_iif_record("!VEND", IIF_VEND_FIELDS), *vendors]
    text = "\r\n".join(out) + "\r\n"
    return text.encode("cp1252", errors="replace")


# ----------------------------------------------------------- Sage 300 CRE


@dataclass(frozen=True)
class SageField:
    """One field of a Sage 300 CRE import record.

    ``position`` is the field's import order in the comma-delimited record
    (Sage's "Fixed" format is a fixed *set* of fields, not fixed columns);
    ``length`` is the maximum number of characters (for numeric fields, digits
    before the point); ``kind`` is ``A`` alpha, ``N`` numeric with 2 decimals
    (signed) or ``D`` date mm/dd/yyyy; ``published`` says whether the field
    follows Sage's published layout (KB "AP Import Invoices Fixed Format") or is
    our guess, to be confirmed with a real import.
    """

    name: str
    position: int
    length: int
    kind: str
    published: bool


_F = SageField
#: The whole Sage layout, one record per key; correct positions here only.
SAGE300_LAYOUT: dict[str, tuple[SageField, ...]] = {
    "APIF": (
        # Sage lists Record ID as "Alpha 3" although the value is always APIF.
        _F("record_id", 1, 4, "A", True),
        _F("vendor", 2, 10, "A", True),
        _F("invoice", 3, 15, "A", True),
        _F("description", 4, 30, "A", True),
        _F("amount", 5, 9, "N", True),
        _F("tax", 6, 7, "N", True),
        _F("discount_offered", 7, 7, "N", True),
        _F("misc_deduction", 8, 7, "N", True),
        _F("invoice_date", 9, 10, "D", True),
        _F("date_received", 10, 10, "D", False),
        _F("payment_date", 11, 10, "D", False),
        _F("accounting_date", 12, 10, "D", False),
        _F("retainage", 13, 9, "N", False),
    ),
    "APDF": (
        _F("record_id", 1, 4, "A", False),
        _F("commitment", 2, 10, "A", False),
        _F("commitment_item", 3, 10, "A", False),
        _F("job", 4, 10, "A", False),
        _F("extra", 5, 10, "A", False),
        _F("cost_code", 6, 12, "A", False),
        _F("category", 7, 3, "A", False),
        _F("expense_account", 8, 25, "A", False),
        _F("ap_account", 9, 25, "A", False),
        _F("description", 10, 30, "A", False),
        _F("amount", 11, 9, "N", False),
        _F("retainage", 12, 9, "N", False),
    ),
}
del _F


class SageLayoutError(ValueError):
    """A value does not fit its Sage field (too long, too large)."""


def sage_field(record: str, name: str) -> SageField:
    """The layout entry for ``record``'s field ``name``."""
    for spec in SAGE300_LAYOUT[record]:
        if spec.name == name:
            return spec
    raise KeyError(f"{record}.{name}")


def sage_fit_problem(record: str, name: str, value: Any) -> str | None:
    """Why ``value`` does not fit the field (None when it does)."""
    spec = sage_field(record, name)
    if value is None or value == "":
        return None
    if spec.kind == "A":
        text = _sage_text(str(value))
        if len(text) > spec.length:
            return (
                f"Sage {name.replace('_', ' ')} '{text}' is longer than "
                f"{spec.length} characters"
            )
    elif spec.kind == "N":
        digits = len(str(abs(Decimal(value)).quantize(CENT)).split(".")[0])
        if digits > spec.length:
            return f"Sage {name.replace('_', ' ')} {value} is too large"
    return None


def _sage_text(value: str) -> str:
    """Alpha values: one line, no double quotes (every value is quoted)."""
    return " ".join(value.replace('"', "'").split())


def _sage_value(spec: SageField, value: Any) -> str:
    if value is None or value == "":
        return ""
    if spec.kind == "N":
        return _plain(Decimal(value))
    if spec.kind == "D":
        return _mdy(value)
    return _sage_text(str(value))


def sage_record(record: str, values: dict[str, Any]) -> str:
    """One record in the layout's field order, every value quoted."""
    specs = sorted(SAGE300_LAYOUT[record], key=lambda spec: spec.position)
    unknown = set(values) - {spec.name for spec in specs} - {"record_id"}
    if unknown:
        raise KeyError(f"unknown {record} fields: {sorted(unknown)}")
    cells = []
    for spec in specs:
        raw = record if spec.name == "record_id" else values.get(spec.name)
        problem = sage_fit_problem(record, spec.name, raw)
        if problem:
            raise SageLayoutError(problem)
        cells.append('"' + _sage_value(spec, raw) + '"')
    return ",".join(cells)


def sage_description(row: BillingRow, batch: BatchInfo) -> str:
    """The invoice description (30 characters): commitment, billing and batch."""
    text = f"{row.commitment_number} #{row.application_number} B{batch.batch_id}"
    return _sage_text(text)[:30]


def sage_records(row: BillingRow, batch: BatchInfo) -> list[str]:
    """The APIF header and its APDF distributions for one billing.

    Header amount = current payment due + retainage held this period (Procore's
    published Sage mapping); each distribution carries one SOV line's cost this
    period and retainage this period, so the distributions sum to the header.
    """
    out = [
        sage_record(
            "APIF",
            {
                "vendor": row.vendor_code,
                "invoice": row.invoice_number,
                "description": sage_description(row, batch),
                "amount": row.gross_this_period,
                "invoice_date": row.billing_date,
                "accounting_date": row.billing_date,
                "retainage": row.retainage_this_period,
            },
        )
    ]
    for line in row.lines:
        if line.amount_this_period.is_zero() and line.retainage_this_period.is_zero():
            continue
        out.append(
            sage_record(
                "APDF",
                {
                    "commitment": row.commitment_number,
                    "commitment_item": str(line.line_number),
                    "job": row.job_number,
                    "cost_code": line.sage_cost_code,
                    "category": line.sage_category,
                    "expense_account": line.expense_account,
                    "ap_account": row.ap_account,
                    "description": _sage_text(f"{line.cost_code} {line.description}")[
                        :30
                    ],
                    "amount": line.amount_this_period,
                    "retainage": line.retainage_this_period,
                },
            )
        )
    return out


def build_sage300(billings: Iterable[BillingRow], batch: BatchInfo) -> bytes:
    """Sage 300 CRE AP invoice import (Fixed format): quoted, comma-delimited, CRLF."""
    records: list[str] = []
    for row in billings:
        records.extend(sage_records(row, batch))
    text = "".join(record + "\r\n" for record in records)
    return text.encode("cp1252", errors="replace")


# ------------------------------------------------------------ CSV and XLSX

#: (column, kind, value getter) for the CSV and the XLSX "Lines" sheet.
#: kind: "text" (neutralised), "amount", "percent", "int", "date".
LINE_COLUMNS: tuple[tuple[str, str, Any], ...] = (
    ("batch_id", "int", lambda b, row, line: b.batch_id),
    ("billing_id", "int", lambda b, row, line: row.billing_id),
    ("project_number", "text", lambda b, row, line: row.project_number),
    ("job_number", "text", lambda b, row, line: row.job_number),
    ("project_name", "text", lambda b, row, line: row.project_name),
    ("vendor_code", "text", lambda b, row, line: row.vendor_code),
    ("vendor_name", "text", lambda b, row, line: row.vendor_name),
    ("commitment_number", "text", lambda b, row, line: row.commitment_number),
    ("application_number", "int", lambda b, row, line: row.application_number),
    ("invoice_number", "text", lambda b, row, line: row.invoice_number),
    ("status", "text", lambda b, row, line: row.status),
    ("period_start", "date", lambda b, row, line: row.period_start),
    ("period_end", "date", lambda b, row, line: row.period_end),
    ("billing_date", "date", lambda b, row, line: row.billing_date),
    ("currency", "text", lambda b, row, line: row.currency),
    ("line_number", "int", lambda b, row, line: line.line_number),
    ("cost_code", "text", lambda b, row, line: line.cost_code),
    ("description", "text", lambda b, row, line: line.description),
    ("expense_account", "text", lambda b, row, line: line.expense_account),
    ("sage_cost_code", "text", lambda b, row, line: line.sage_cost_code),
    ("sage_category", "text", lambda b, row, line: line.sage_category),
    ("qb_class", "text", lambda b, row, line: line.qb_class),
    ("scheduled_value", "amount", lambda b, row, line: line.scheduled_value),
    ("previous_work", "amount", lambda b, row, line: line.previous_work),
    ("work_this_period", "amount", lambda b, row, line: line.work_this_period),
    ("materials_stored", "amount", lambda b, row, line: line.materials_stored),
    (
        "materials_stored_change",
        "amount",
        lambda b, row, line: line.materials_change,
    ),
    (
        "total_completed_and_stored",
        "amount",
        lambda b, row, line: line.total_completed_and_stored,
    ),
    ("percent_complete", "percent", lambda b, row, line: line.percent_complete),
    ("balance_to_finish", "amount", lambda b, row, line: line.balance_to_finish),
    ("retainage_to_date", "amount", lambda b, row, line: line.retainage),
    (
        "retainage_this_period",
        "amount",
        lambda b, row, line: line.retainage_this_period,
    ),
    ("amount_this_period", "amount", lambda b, row, line: line.amount_this_period),
    (
        "net_this_period",
        "amount",
        lambda b, row, line: line.amount_this_period - line.retainage_this_period,
    ),
    ("claimed_work", "amount", lambda b, row, line: line.claimed_work),
    ("claimed_materials", "amount", lambda b, row, line: line.claimed_materials),
    (
        "billing_current_payment_due",
        "amount",
        lambda b, row, line: row.current_payment_due,
    ),
)

#: (column, kind, value getter) for the XLSX "Billings" sheet.
BILLING_COLUMNS: tuple[tuple[str, str, Any], ...] = (
    ("batch_id", "int", lambda b, row: b.batch_id),
    ("billing_id", "int", lambda b, row: row.billing_id),
    ("project_number", "text", lambda b, row: row.project_number),
    ("job_number", "text", lambda b, row: row.job_number),
    ("project_name", "text", lambda b, row: row.project_name),
    ("vendor_code", "text", lambda b, row: row.vendor_code),
    ("vendor_name", "text", lambda b, row: row.vendor_name),
    ("commitment_number", "text", lambda b, row: row.commitment_number),
    ("commitment_title", "text", lambda b, row: row.commitment_title),
    ("application_number", "int", lambda b, row: row.application_number),
    ("invoice_number", "text", lambda b, row: row.invoice_number),
    ("status", "text", lambda b, row: row.status),
    ("period_start", "date", lambda b, row: row.period_start),
    ("period_end", "date", lambda b, row: row.period_end),
    ("billing_date", "date", lambda b, row: row.billing_date),
    ("currency", "text", lambda b, row: row.currency),
    ("original_contract_sum", "amount", lambda b, row: row.original_contract_sum),
    (
        "net_change_by_change_orders",
        "amount",
        lambda b, row: row.net_change_by_change_orders,
    ),
    ("contract_sum_to_date", "amount", lambda b, row: row.contract_sum_to_date),
    (
        "total_completed_and_stored",
        "amount",
        lambda b, row: row.total_completed_and_stored,
    ),
    ("retainage", "amount", lambda b, row: row.retainage),
    (
        "total_earned_less_retainage",
        "amount",
        lambda b, row: row.total_earned_less_retainage,
    ),
    ("previous_certificates", "amount", lambda b, row: row.previous_certificates),
    ("current_payment_due", "amount", lambda b, row: row.current_payment_due),
    (
        "balance_to_finish_including_retainage",
        "amount",
        lambda b, row: row.balance_to_finish_including_retainage,
    ),
    ("retainage_this_period", "amount", lambda b, row: row.retainage_this_period),
    (
        "retainage_released_this_period",
        "amount",
        lambda b, row: row.retainage_released_this_period,
    ),
    ("gross_this_period", "amount", lambda b, row: row.gross_this_period),
)


def _csv_cell(kind: str, value: Any) -> str:
    if value is None:
        return ""
    if kind in ("amount", "percent"):
        return _plain(value)
    if kind == "int":
        return str(int(value))
    if kind == "date":
        return value.isoformat()
    return neutralise(str(value))


def build_csv(billings: Iterable[BillingRow], batch: BatchInfo) -> bytes:
    """One row per billing line; plain decimals; formula-like text neutralised."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([name for name, _, _ in LINE_COLUMNS])
    for row in billings:
        for line in row.lines:
            writer.writerow(
                [
                    _csv_cell(kind, get(batch, row, line))
                    for _, kind, get in LINE_COLUMNS
                ]
            )
    return buffer.getvalue().encode("utf-8")


def _xlsx_currency_format(currency: str) -> str:
    return '"$"#,##0.00;-"$"#,##0.00' if currency in ("USD", "CAD") else "#,##0.00"


def build_xlsx(billings: Iterable[BillingRow], batch: BatchInfo) -> bytes:
    """An Excel workbook: "Billings" and "Lines" sheets, numbers as numbers.

    Written by :mod:`portal.finance.xlsx` straight into the zip, a few hundred
    rows at a time (openpyxl took ~20 µs a cell: 15 s for 1,000 billings).
    """
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    from portal.finance.xlsx import Cell, Sheet, SpooledSheet, Styles, write_workbook

    text = Cell("text")
    fixed = {
        "percent": Cell("number", "0.00"),
        "date": Cell("date", "yyyy-mm-dd"),
        "int": Cell("number"),
    }
    cleaned: dict[Any, str] = {}  # vendor, project… repeat on every line
    specs: dict[tuple[int, str], list[tuple[Any, Cell | None]]] = {}

    def clean(value: Any) -> str:
        found = cleaned.get(value)
        if found is None:
            if len(cleaned) >= 5_000:  # bounded: memory stays flat
                cleaned.clear()
            found = cleaned[value] = ILLEGAL_CHARACTERS_RE.sub(
                "", neutralise(str(value or ""))
            )
        return found

    def spec(
        columns: tuple[tuple[str, str, Any], ...], currency: str
    ) -> list[tuple[Any, Cell | None]]:
        """(getter, cell kind) per column, once per sheet and currency; None
        marks text, cleaned per value."""
        key = (id(columns), currency)
        if key not in specs:
            amount = Cell("number", _xlsx_currency_format(currency))
            specs[key] = [
                (
                    get,
                    None
                    if kind == "text"
                    else amount
                    if kind == "amount"
                    else fixed.get(kind, fixed["int"]),
                )
                for _, kind, get in columns
            ]
        return specs[key]

    def cells(
        columns: tuple[tuple[str, str, Any], ...], currency: str, *args: Any
    ) -> list[tuple[Any, Cell]]:
        """One sheet row: each column's value (from ``get(batch, *args)``) and cell."""
        return [
            (clean(get(batch, *args)), text) if c is None else (get(batch, *args), c)
            for get, c in spec(columns, currency)
        ]

    styles = Styles()
    lines = SpooledSheet("Lines", [n for n, _, _ in LINE_COLUMNS], styles)

    def billing_rows() -> Iterable[list[tuple[Any, Cell]]]:
        """Each billing's row; its lines go to the spooled "Lines" sheet meanwhile,
        so the billings are read once and need not all be held."""
        for row in billings:
            yield cells(BILLING_COLUMNS, row.currency, row)
            for line in row.lines:
                lines.add(cells(LINE_COLUMNS, row.currency, row, line))

    return write_workbook(
        [Sheet("Billings", [n for n, _, _ in BILLING_COLUMNS], billing_rows()), lines],
        styles=styles,
        creator="Progress Billings",
        title=f"Export batch {batch.batch_id}",
        created=batch.created_at.replace(tzinfo=None, microsecond=0),
    )


# ------------------------------------------------------------------ formats


@dataclass(frozen=True)
class FormatInfo:
    """A format's label, file extension, content type and builder."""

    key: str
    label: str
    extension: str
    content_type: str
    builder: Any


FORMATS: dict[str, FormatInfo] = {
    "sage300": FormatInfo(
        "sage300",
        "Sage 300 CRE (AP invoice import)",
        "txt",
        "text/plain; charset=windows-1252",
        build_sage300,
    ),
    "iif": FormatInfo(
        "iif",
        "QuickBooks Desktop (IIF vendor bills)",
        "iif",
        "application/octet-stream",
        build_iif,
    ),
    "csv": FormatInfo("csv", "CSV", "csv", "text/csv; charset=utf-8", build_csv),
    "xlsx": FormatInfo(
        "xlsx",
        "Excel (XLSX)",
        "xlsx",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        build_xlsx,
    ),
}

#: ERPs without a direct export: the page says so and offers CSV.
NO_DIRECT_EXPORT = ("Viewpoint Spectrum", "Viewpoint Vista", "Sage 100 Contractor")


def build(fmt: str, billings: Iterable[BillingRow], batch: BatchInfo) -> bytes:
    """The file of ``fmt`` for ``billings``."""
    return FORMATS[fmt].builder(billings, batch)
