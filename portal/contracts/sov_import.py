"""Schedule-of-values CSV import: parse a whole file or refuse it with per-row errors.

Pure: bytes in, rows or errors out. Nothing is saved from a file with any error
(SPEC §5); the caller adds the rows only when :func:`parse_sov_csv` returns.

Expected columns (header row, any order, case and spacing ignored):
``line`` (optional; numbered after the existing lines when missing),
``cost_code``, ``description``, ``scheduled_value``.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from portal.core.amounts import AmountError, parse_amount
from portal.validation import clean_text

MAX_BYTES = 1024 * 1024
MAX_ROWS = 2000
MAX_ERRORS = 50
LIMITS = {"cost_code": 40, "description": 300}

#: Accepted header spellings per column.
ALIASES = {
    "line_number": {"line", "line_number", "line_no", "item", "item_number", "no"},
    "cost_code": {"cost_code", "code", "budget_code", "costcode"},
    "description": {"description", "desc", "description_of_work", "title"},
    "scheduled_value": {
        "scheduled_value",
        "value",
        "amount",
        "original_value",
        "scheduled",
    },
}
REQUIRED = ("cost_code", "description", "scheduled_value")


@dataclass(frozen=True)
class ImportRow:
    """One parsed SOV line."""

    line_number: int
    cost_code: str
    description: str
    scheduled_value: Decimal


@dataclass
class ImportFailed(Exception):
    """The file was refused; ``errors`` lists every problem ("Row 3: …")."""

    errors: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return "Nothing was imported: " + "; ".join(self.errors[:3])


def _header_key(text: str) -> str:
    key = re.sub(r"[^a-z0-9]+", "_", text.strip().lower().replace("#", " no ")).strip(
        "_"
    )
    for column, names in ALIASES.items():
        if key in names:
            return column
    return key


def _decode(data: bytes) -> str:
    if not data or not data.strip():
        raise ImportFailed(["The file is empty."])
    if len(data) > MAX_BYTES:
        raise ImportFailed([f"The file is larger than {MAX_BYTES // 1024} KB."])
    if b"\x00" in data:
        raise ImportFailed(["This is not a CSV text file (it contains binary data)."])
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            return data.decode("cp1252")
        except UnicodeDecodeError:
            raise ImportFailed(
                ["The file is not UTF-8 text. Save it as 'CSV UTF-8' and try again."]
            ) from None


def parse_sov_csv(
    data: bytes,
    *,
    existing_numbers: Iterable[int] = (),
    existing_codes: Iterable[str] | None = None,
) -> list[ImportRow]:
    """Parse a SOV CSV; raise :class:`ImportFailed` listing every bad row.

    ``existing_codes`` (client contracts) makes cost codes unique too.
    """
    text = _decode(data)
    first_line = text.splitlines()[0] if text.splitlines() else ""
    delimiter = "\t" if "\t" in first_line and "," not in first_line else ","
    try:
        rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    except csv.Error as exc:
        raise ImportFailed([f"The file is not valid CSV ({exc})."]) from exc
    rows = [r for r in rows if any(cell.strip() for cell in r)]
    if not rows:
        raise ImportFailed(["The file is empty."])
    header = [_header_key(cell) for cell in rows[0]]
    missing = [col for col in REQUIRED if col not in header]
    if missing:
        names = ", ".join(m.replace("_", " ") for m in missing)
        raise ImportFailed(
            [
                f"The header row must name the columns cost_code, description and "
                f"scheduled_value (missing: {names})."
            ]
        )
    body = rows[1:]
    if not body:
        raise ImportFailed(["The file has a header but no lines."])
    if len(body) > MAX_ROWS:
        raise ImportFailed([f"Import at most {MAX_ROWS} lines at a time."])
    index = {col: header.index(col) for col in ALIASES if col in header}
    taken = set(existing_numbers)
    codes = {c.lower() for c in existing_codes} if existing_codes is not None else None
    next_number = max(taken, default=0) + 1
    errors: list[str] = []
    out: list[ImportRow] = []
    for number, row in enumerate(body, start=2):
        problems: list[str] = []

        def cell(col: str, row: list[str] = row) -> str:
            i = index.get(col)
            return clean_text(row[i]) if i is not None and i < len(row) else ""

        line_number = next_number
        raw_line = cell("line_number")
        if raw_line:
            if not re.fullmatch(r"[0-9]{1,6}", raw_line, re.ASCII) or int(raw_line) < 1:
                problems.append("line must be a whole number from 1")
            else:
                line_number = int(raw_line)
        if line_number in taken:
            problems.append(f"line {line_number} already exists")
        code = cell("cost_code")
        if not code:
            problems.append("cost code is blank")
        elif len(code) > LIMITS["cost_code"]:
            problems.append(
                f"cost code is longer than {LIMITS['cost_code']} characters"
            )
        elif codes is not None and code.lower() in codes:
            problems.append(f"cost code {code} is already on another line")
        description = cell("description")
        if not description:
            problems.append("description is blank")
        elif len(description) > LIMITS["description"]:
            problems.append(
                f"description is longer than {LIMITS['description']} characters"
            )
        value = Decimal("0.00")
        try:
            value = parse_amount(
                cell("scheduled_value"), allow_blank=False, allow_negative=False
            )
        except AmountError as exc:
            problems.append(f"scheduled value: {exc}")
        if problems:
            errors.append(
                f"Row {number}: " + "; ".join(p.rstrip(".") for p in problems) + "."
            )
            if len(errors) >= MAX_ERRORS:
                errors.append("…and possibly more: fix these first.")
                break
            continue
        taken.add(line_number)
        if codes is not None:
            codes.add(code.lower())
        next_number = max(next_number, line_number + 1)
        out.append(ImportRow(line_number, code, description, value))
    if errors:
        raise ImportFailed(errors)
    return out
