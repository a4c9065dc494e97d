"""AIA-style PDFs (G702 summary + G703 continuation sheet) with fpdf2 (SPEC §9).

Not the AIA forms themselves: their layout. Figures come from the same money
engine as the pages (:func:`portal.billing.figures.sheet` for downstream billings,
:func:`portal.upstream.claim_sheet` for upstream claims) and are formatted
with the same ``money`` filter, so a PDF shows exactly what the page shows.

fpdf2 is pure Python and installs with pip alone. Only its built-in core
fonts (Helvetica) are used, so no font files ship or download; every text is
made latin-1 safe first (typographic characters are replaced by plain ones,
anything else by ``?``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal, cast

from flask import current_app
from fpdf import FPDF
from fpdf.enums import XPos, YPos

from portal import upstream
from portal.billing import figures
from portal.core.billing_presentation import g702_lines, g703_totals
from portal.core.statuses import COUNTED_STATUSES, BillingStatus, ClaimStatus
from portal.models import Billing, ClientClaim
from portal.timeutil import utcnow
from portal.web.templating import current_dialect, percent, status_label, term
from portal.web.templating import money as format_money

FONT = "Helvetica"
ROW_H = 5.0
LINE_H = 3.6
#: Small grey lines under a figure (the stored-materials carry under F).
NOTE_SIZE = 5.5
NOTE_H = 2.5

#: Characters outside latin-1 that have a plain equivalent.
_REPLACEMENTS = {
    "\u2013": "-",  # en dash
    "\u2014": "-",  # em dash
    "\u2212": "-",  # minus sign
    "\u2018": "'",
    "\u2019": "'",
    "\u201a": ",",
    "\u201c": '"',
    "\u201d": '"',
    "\u201e": '"',
    "\u2026": "...",
    "\u2022": "*",
    "\u2009": " ",
    "\u200a": " ",
    "\u202f": " ",
    "\u2007": " ",
    "\u200b": "",
    "\u20ac": "EUR",
    "\u2264": "<=",
    "\u2265": ">=",
    "\u00d7": "x",  # latin-1 has it, but keep tables plain
}


def safe(text: Any) -> str:
    """Text the core fonts can show: latin-1 only, no control characters."""
    value = "" if text is None else str(text)
    for char, plain in _REPLACEMENTS.items():
        if char in value:
            value = value.replace(char, plain)
    value = "".join(
        ch if ch >= " " or ch == "\n" else " " for ch in value.replace("\r", "")
    )
    return value.encode("latin-1", errors="replace").decode("latin-1")


@dataclass(frozen=True)
class Stacked:
    """A figure with small lines under it, e.g. F with its carry (SPEC §4)."""

    main: str
    notes: tuple[str, ...] = ()

    def __str__(self) -> str:
        return self.main


#: A table cell: text, or a figure with notes under it.
Cell = str | Stacked


@dataclass(frozen=True)
class Column:
    """A table column: header lines, width in mm, alignment."""

    header: tuple[str, ...]
    width: float
    align: str = "R"


class _Document(FPDF):
    """Landscape Letter pages with a running title and "Page X of Y" footer."""

    def __init__(self, running_title: str) -> None:
        super().__init__(orientation="L", unit="mm", format="Letter")
        self.running_title = safe(running_title)
        self.set_margins(10, 10, 10)
        self.set_auto_page_break(auto=True, margin=14)
        self.set_title(self.running_title)
        self.set_creator("Progress Billings")
        self.generated = utcnow().strftime("%Y-%m-%d %H:%M UTC")

    def footer(self) -> None:
        """Running title, generation time and the page number on every page."""
        self.set_y(-11)
        self.set_font(FONT, "", 7)
        self.set_text_color(90, 90, 90)
        width = self.w - self.l_margin - self.r_margin
        self.cell(width, 4, f"{self.running_title} - generated {self.generated}")
        self.set_x(self.l_margin)
        self.cell(width, 4, f"Page {self.page_no()} of {{nb}}", align="R")
        self.set_text_color(0, 0, 0)

    # ------------------------------------------------------------ pieces

    @property
    def usable_width(self) -> float:
        return self.w - self.l_margin - self.r_margin

    def heading(self, text: str, size: int = 14) -> None:
        """A bold heading line."""
        self.set_font(FONT, "B", size)
        self.cell(
            self.usable_width,
            size * 0.5,
            safe(text),
            new_x=XPos.LMARGIN,
            new_y=YPos.NEXT,
        )

    def subheading(self, text: str) -> None:
        """A section heading, with a page break first when it would be orphaned."""
        if self.will_page_break(16):
            self.add_page()
        self.ln(3)
        self.set_font(FONT, "B", 10)
        self.cell(self.usable_width, 6, safe(text), new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    def stamp(self, text: str) -> None:
        """A red notice line (draft, void)."""
        self.set_font(FONT, "B", 10)
        self.set_text_color(180, 0, 0)
        self.multi_cell(
            self.usable_width, 5, safe(text), new_x=XPos.LMARGIN, new_y=YPos.NEXT
        )
        self.set_text_color(0, 0, 0)

    def note(self, text: str) -> None:
        """A small paragraph."""
        self.set_font(FONT, "", 8)
        self.multi_cell(
            self.usable_width, 4, safe(text), new_x=XPos.LMARGIN, new_y=YPos.NEXT
        )

    def parties(
        self, left: list[tuple[str, str]], right: list[tuple[str, str]]
    ) -> None:
        """Two columns of label/value pairs (parties, contract, application)."""
        half = self.usable_width / 2
        top = self.get_y()
        bottoms = []
        for index, pairs in enumerate((left, right)):
            x = self.l_margin + index * half
            self.set_xy(x, top)
            for label, value in pairs:
                self.set_x(x)
                self.set_font(FONT, "B", 8)
                self.cell(34, 4.5, safe(label))
                self.set_font(FONT, "", 8)
                self.multi_cell(
                    half - 36,
                    4.5,
                    safe(value) or "-",
                    new_x=XPos.LMARGIN,
                    new_y=YPos.NEXT,
                )
            bottoms.append(self.get_y())
        self.set_xy(self.l_margin, max(bottoms) + 2)

    def fit(self, text: str, width: float) -> str:
        """``text`` cut with an ellipsis to fit one line of ``width`` mm."""
        value = safe(text).replace("\n", " ")
        if self.get_string_width(value) <= width - 1.5:
            return value
        while value and self.get_string_width(value + "...") > width - 1.5:
            value = value[:-1]
        return value + "..."

    # Not named ``table``: fpdf2's own FPDF.table() is a different API.
    def grid(
        self,
        columns: Sequence[Column],
        rows: Sequence[Sequence[Cell]],
        *,
        footer: Sequence[Cell] | None = None,
        wrap: int | None = None,
        size: float = 7,
    ) -> None:
        """A table whose header repeats on every page it runs onto.

        Cells are cut to one line, except the ``wrap`` column, which wraps.
        A :class:`Stacked` figure makes its row taller for the notes under it.
        """

        def draw_header() -> None:
            self.set_font(FONT, "B", size)
            self.set_fill_color(225, 229, 234)
            height = max(len(c.header) for c in columns) * LINE_H + 1
            y = self.get_y()
            x = self.l_margin
            for col in columns:
                self.rect(x, y, col.width, height, style="DF")
                self.set_xy(x, y + (height - len(col.header) * LINE_H) / 2)
                self.multi_cell(
                    col.width,
                    LINE_H,
                    safe("\n".join(col.header)),
                    align="C",
                    new_x=XPos.RIGHT,
                    new_y=YPos.TOP,
                )
                x += col.width
            self.set_xy(self.l_margin, y + height)
            self.set_font(FONT, "", size)

        def draw_figure(
            text: str, width: float, height: float, at: float, border: Literal[0, 1] = 0
        ) -> None:
            # Figures are never cut: one too wide is drawn smaller.
            text = safe(text).replace("\n", " ")
            shrunk = at
            self.set_font_size(at)
            while shrunk > 3 and self.get_string_width(text) > width - 1.5:
                shrunk -= 0.25
                self.set_font_size(shrunk)
            self.cell(width, height, text, border=border, align="R")
            self.set_font_size(size)

        def draw_row(values: Sequence[Cell], bold: bool = False) -> None:
            self.set_font(FONT, "B" if bold else "", size)
            height = ROW_H
            notes = max(
                (len(v.notes) for v in values if isinstance(v, Stacked)), default=0
            )
            if notes:
                height = ROW_H + notes * NOTE_H + 0.8
            wrapped: list[str] = []
            if wrap is not None:
                # output="LINES" returns the lines; the stub's return type is
                # the union over every ``output`` choice.
                wrapped = cast(
                    list[str],
                    self.multi_cell(
                        columns[wrap].width,
                        LINE_H,
                        safe(str(values[wrap])),
                        dry_run=True,
                        output="LINES",
                    ),
                )
                height = max(ROW_H, len(wrapped) * LINE_H + 1.4)
            if self.will_page_break(height):
                self.add_page()
                draw_header()
                self.set_font(FONT, "B" if bold else "", size)
            y = self.get_y()
            x = self.l_margin
            for index, (col, value) in enumerate(zip(columns, values, strict=True)):
                self.set_xy(x, y)
                if index == wrap:
                    self.rect(x, y, col.width, height)
                    self.set_xy(x, y + 0.7)
                    self.multi_cell(
                        col.width,
                        LINE_H,
                        safe(str(value)),
                        align="L",
                        new_x=XPos.RIGHT,
                        new_y=YPos.TOP,
                    )
                elif col.align == "R" and isinstance(value, Stacked) and value.notes:
                    # The figure on top, its notes small and grey under it.
                    self.rect(x, y, col.width, height)
                    draw_figure(value.main, col.width, ROW_H, size)
                    self.set_text_color(90, 90, 90)
                    for number, note in enumerate(value.notes):
                        self.set_xy(x, y + ROW_H - 0.4 + number * NOTE_H)
                        draw_figure(note, col.width, NOTE_H, NOTE_SIZE)
                    self.set_text_color(0, 0, 0)
                elif col.align == "R":
                    draw_figure(str(value), col.width, height, size, border=1)
                else:
                    self.cell(
                        col.width,
                        height,
                        self.fit(str(value), col.width),
                        border=1,
                        align=col.align,
                    )
                x += col.width
            self.set_xy(self.l_margin, y + height)

        if self.will_page_break(ROW_H * 4):
            self.add_page()
        draw_header()
        for row in rows:
            draw_row(row)
        if footer is not None:
            draw_row(footer, bold=True)


# ---------------------------------------------------------------- G702 / G703


def _currency_formatter(currency: str) -> Callable[[Decimal | None], str]:
    def fmt(value: Decimal | None) -> str:
        return safe(format_money(value, currency)) if value is not None else ""

    return fmt


#: Amount columns are wide enough for -$999,999,999,999.99 (SPEC §5's largest
#: amount, negative) at the table's 7 pt; a wider figure (a grand total of
#: several such lines) is drawn smaller, never cut (see ``_Document.grid``).
AMOUNT_W = 26.5
G703_COLUMNS = (
    Column(("A", "Item"), 10, "C"),
    Column(("B", "Description of work"), 51.5, "L"),
    Column(("C", "Scheduled", "value"), AMOUNT_W),
    Column(("D", "From previous", "application"), AMOUNT_W),
    Column(("E", "Work completed", "this period"), AMOUNT_W),
    Column(("F", "Materials", "presently stored"), AMOUNT_W),
    Column(("G", "Total completed", "and stored to date"), AMOUNT_W),
    Column(("G / C", "%"), 12),
    Column(("H", "Balance to finish", "(C - G)"), AMOUNT_W),
    Column(("I", "Retainage"), AMOUNT_W),
)


def g703_columns(project: Any) -> tuple[Column, ...]:
    """The G703 columns with column I named in the project's terminology."""
    word = term("Retainage", project)
    return G703_COLUMNS[:-1] + (Column(("I", word), G703_COLUMNS[-1].width),)


def _summary(
    doc: _Document,
    claimed: Any,
    approved: Any | None,
    fmt: Callable[[Decimal | None], str],
    approved_label: str,
    project: Any,
) -> None:
    """The G702 lines of :mod:`billing_presentation`, as the pages show them."""
    lines = g702_lines(claimed, approved, dialect=current_dialect(project))
    columns = [Column(("Application summary",), 110.0, "L"), Column(("Claimed",), 40)]
    if approved is not None:
        columns += [Column((approved_label,), 40), Column(("Difference",), 36)]
    rows = []
    for line in lines:
        indent = "   " if line.detail else ""
        row = [f"{indent}{line.number}. {line.label}", fmt(line.claimed)]
        if approved is not None:
            row += [fmt(line.approved), fmt(line.difference) if line.difference else ""]
        rows.append(row)
    doc.grid(columns, rows, size=8)


def _carry(fig: Any, fmt: Any) -> Cell:
    """F, with the carry under it when the line has stored anything (SPEC §4:
    F previous + new − installed), as the review page stacks it."""
    carry = (fig.materials_previous, fig.materials_new, fig.materials_installed)
    if not any(carry):
        return fmt(fig.materials_stored)
    previous, new, installed = carry
    return Stacked(
        fmt(fig.materials_stored),
        (
            f"before {fmt(previous)}",
            f"+ new {fmt(new)}",
            f"- installed {fmt(installed)}",
        ),
    )


def _g703_row(
    item: str, description: str, fig: Any, fmt: Any, *, carry: bool = False
) -> list[Cell]:
    """One G703 line; ``carry`` shows the stored-materials carry under F
    (downstream billings: an upstream claim's F is a sum, not a carry)."""
    return [
        item,
        description,
        fmt(fig.scheduled_value),
        fmt(fig.previous_work),
        fmt(fig.work_this_period),
        _carry(fig, fmt) if carry else fmt(fig.materials_stored),
        fmt(fig.total_completed_and_stored),
        percent(fig.percent_complete),
        fmt(fig.balance_to_finish),
        fmt(fig.retainage),
    ]


def _g703_footer(lines: Sequence[Any], fmt: Any) -> list[str]:
    t = g703_totals(lines)
    return [
        "",
        "Grand total",
        fmt(t.scheduled_value),
        fmt(t.previous_work),
        fmt(t.work_this_period),
        fmt(t.materials_stored),
        fmt(t.total_completed_and_stored),
        percent(t.percent_complete),
        fmt(t.balance_to_finish),
        fmt(t.retainage),
    ]


def _output(doc: _Document) -> bytes:
    return bytes(doc.output())


def _company() -> str:
    return current_app.config.get("COMPANY_NAME") or "General contractor"


def _size(n: int) -> str:
    if n >= 1024 * 1024:
        return f"{n / (1024 * 1024):.1f} MB"
    if n >= 1024:
        return f"{n / 1024:.0f} KB"
    return f"{n} bytes"


# ---------------------------------------------------------------- billing


def billing_pdf(billing: Billing) -> bytes:
    """A downstream billing: G702-style summary, differences, G703 continuation."""
    commitment = billing.commitment
    project = commitment.project
    period = billing.period
    fmt = _currency_formatter(project.currency)
    decided = billing.status in [s.value for s in COUNTED_STATUSES]
    claimed = figures.sheet(billing, "claimed")
    approved = figures.sheet(billing, "approved") if decided else None
    word = term("Progress_billing", project)
    title = f"{word} #{billing.application_number} - {commitment.number}"
    doc = _Document(f"{project.name} - {title}")
    doc.add_page()
    doc.heading(title)
    doc.set_font(FONT, "", 9)
    doc.note(
        "Summary of the application for payment (AIA G702 layout) and continuation "
        "sheet (G703 layout). Amounts in " + project.currency + "."
    )
    if billing.status == BillingStatus.VOID:
        doc.stamp(f"VOID - {billing.void_reason}")
    elif not decided:
        doc.stamp(
            f"{status_label(billing.status).upper()} - not yet approved: the amounts "
            "below are as claimed."
        )
    doc.ln(1)
    doc.parties(
        [
            ("Project", f"{project.name} ({project.number})"),
            ("Project address", project.address),
            ("To (contractor)", _company()),
            ("From (vendor)", commitment.vendor.name),
            ("Vendor address", commitment.vendor.address),
            (
                "Commitment",
                f"{commitment.number} - {commitment.title} "
                f"({status_label(commitment.kind).lower()})",
            ),
        ],
        [
            ("Application no.", str(billing.application_number)),
            (
                "Period",
                f"#{period.sequence}: {period.start_date:%Y-%m-%d} to "
                f"{period.end_date:%Y-%m-%d}",
            ),
            ("Billing date", f"{period.billing_date:%Y-%m-%d}"),
            ("Vendor invoice no.", billing.vendor_invoice_number),
            ("Status", status_label(billing.status)),
            ("Revision", str(billing.revision)),
        ],
    )
    _summary(
        doc,
        claimed.totals,
        approved.totals if approved else None,
        fmt,
        "Approved",
        project,
    )
    # F of each side (SPEC §4: F previous + new − installed) from the sheets.
    claimed_f = {r.sov.id: r.figures.materials_stored for r in claimed.rows}
    approved_f = (
        {r.sov.id: r.figures.materials_stored for r in approved.rows}
        if approved
        else {}
    )
    differences = [
        bl
        for bl in figures.ordered_lines(billing)
        if decided
        and (
            bl.claimed_work != bl.approved_work
            or bl.claimed_materials != bl.approved_materials
            or bl.claimed_installed != bl.approved_installed
            or claimed_f.get(bl.sov_line_id) != approved_f.get(bl.sov_line_id)
            or bl.reviewer_comment
        )
    ]
    if decided:
        doc.subheading("Claimed and approved amounts: differences and reasons")
        if differences:
            doc.grid(
                [
                    Column(("Item",), 12, "C"),
                    Column(("Description",), 55, "L"),
                    Column(("Claimed", "this period"), 26),
                    Column(("Approved", "this period"), 26),
                    Column(("Claimed", "materials stored"), 26),
                    Column(("Approved", "materials stored"), 26),
                    Column(("Reviewer's reason",), 88, "L"),
                ],
                [
                    [
                        str(bl.sov_line.line_number),
                        f"{bl.sov_line.cost_code} {bl.sov_line.description}",
                        fmt(bl.claimed_work),
                        fmt(bl.approved_work),
                        fmt(claimed_f.get(bl.sov_line_id, Decimal("0.00"))),
                        fmt(approved_f.get(bl.sov_line_id, Decimal("0.00"))),
                        bl.reviewer_comment or "-",
                    ]
                    for bl in differences
                ],
                wrap=6,
            )
        else:
            doc.note("Every line was approved as claimed.")
    doc.subheading("Attachments")
    if billing.attachments:
        for attachment in billing.attachments:
            doc.note(
                f"- {attachment.original_name} ({status_label(attachment.kind)}, "
                f"{_size(attachment.size)})"
            )
    else:
        doc.note("No attachments.")
    sheets = [("as claimed", claimed)]
    if approved is not None:
        differs = billing.status == BillingStatus.APPROVED_AS_NOTED or any(
            bl.claimed_work != bl.approved_work
            or bl.claimed_materials != bl.approved_materials
            or bl.claimed_installed != bl.approved_installed
            for bl in billing.lines
        )
        sheets = [("approved", approved)] + (
            [("as claimed", claimed)] if differs else []
        )
    for label, sheet in sheets:
        doc.add_page()
        doc.heading(f"Continuation sheet ({label}) - {title}", size=11)
        doc.note(
            f"{commitment.vendor.name} - {commitment.number} - application "
            f"{billing.application_number} - period #{period.sequence}. "
            f"Column I: {term('retainage', project)}."
        )
        doc.grid(
            g703_columns(project),
            [
                _g703_row(
                    str(row.sov.line_number),
                    f"{row.sov.cost_code} {row.sov.description}",
                    row.figures,
                    fmt,
                    carry=True,
                )
                for row in sheet.rows
            ],
            footer=_g703_footer([r.figures for r in sheet.rows], fmt),
        )
    return _output(doc)


# ---------------------------------------------------------------- claim


def claim_pdf(claim: ClientClaim) -> bytes:
    """An upstream claim: G702-style summary, client approval, G703 continuation."""
    contract = claim.contract
    project = contract.project
    period = claim.period
    fmt = _currency_formatter(project.currency)
    claimed = upstream.claim_sheet(claim, "claimed")
    approved = (
        upstream.claim_sheet(claim, "approved")
        if claim.status == ClaimStatus.APPROVED
        else None
    )
    word = term("Client_claim", project)
    title = f"{word} #{claim.claim_number} - {contract.number}"
    doc = _Document(f"{project.name} - {title}")
    doc.add_page()
    doc.heading(title)
    doc.note(
        "Summary of the application for payment (AIA G702 layout) and continuation "
        "sheet (G703 layout). Amounts in " + project.currency + "."
    )
    if claim.status == ClaimStatus.VOID:
        doc.stamp(f"VOID - {claim.void_reason}")
    elif claim.status == ClaimStatus.DRAFT:
        doc.stamp("DRAFT - not yet submitted to the client.")
    doc.ln(1)
    doc.parties(
        [
            ("To (client)", contract.client_name),
            ("From (contractor)", _company()),
            ("Project", f"{project.name} ({project.number})"),
            ("Project address", project.address),
            (term("Client_contract", project), f"{contract.number} - {contract.title}"),
        ],
        [
            ("Application no.", str(claim.claim_number)),
            (
                "Period",
                f"#{period.sequence}: {period.start_date:%Y-%m-%d} to "
                f"{period.end_date:%Y-%m-%d}",
            ),
            ("Billing date", f"{period.billing_date:%Y-%m-%d}"),
            ("Status", status_label(claim.status)),
            (
                "Submitted",
                f"{claim.submitted_at:%Y-%m-%d}" if claim.submitted_at else "",
            ),
            ("Approved", f"{claim.approved_at:%Y-%m-%d}" if claim.approved_at else ""),
        ],
    )
    _summary(
        doc,
        claimed.totals,
        approved.totals if approved else None,
        fmt,
        "Approved by client",
        project,
    )
    if approved is not None:
        doc.subheading("Claimed and approved amounts: differences")
        diff_rows = [
            (row, other)
            for row, other in zip(claimed.rows, approved.rows, strict=True)
            if row.figures.work_this_period != other.figures.work_this_period
            or row.figures.materials_stored != other.figures.materials_stored
        ]
        if diff_rows:
            doc.grid(
                [
                    Column(("Item",), 12, "C"),
                    Column(("Description",), 75, "L"),
                    Column(("Claimed", "this period"), 30),
                    Column(("Approved", "this period"), 30),
                    Column(("Claimed", "materials stored"), 30),
                    Column(("Approved", "materials stored"), 30),
                    Column(("Difference",), 30),
                ],
                [
                    [
                        str(row.sov.line_number),
                        f"{row.sov.cost_code} {row.sov.description}",
                        fmt(row.figures.work_this_period),
                        fmt(other.figures.work_this_period),
                        fmt(row.figures.materials_stored),
                        fmt(other.figures.materials_stored),
                        fmt(
                            other.figures.work_this_period
                            + other.figures.materials_stored
                            - row.figures.work_this_period
                            - row.figures.materials_stored
                        ),
                    ]
                    for row, other in diff_rows
                ],
            )
        else:
            doc.note("The client approved every line as claimed.")
    doc.subheading("Attachments (supporting documents)")
    included = upstream.included_billings(claim)
    listed = False
    for billing in included:
        for attachment in billing.attachments:
            listed = True
            doc.note(
                f"- {attachment.original_name} ({status_label(attachment.kind)}, "
                f"{_size(attachment.size)}) - {billing.commitment.vendor.name}, "
                f"{billing.commitment.number} application {billing.application_number}"
            )
    if not listed:
        doc.note("No attachments.")
    for label, sheet in (("as claimed", claimed), ("approved by client", approved)):
        if sheet is None:
            continue
        doc.add_page()
        doc.heading(f"Continuation sheet ({label}) - {title}", size=11)
        doc.note(
            f"{contract.client_name} - {contract.number} - application "
            f"{claim.claim_number} - period #{period.sequence}. "
            f"Column I: {term('retainage', project)}."
        )
        doc.grid(
            g703_columns(project),
            [
                _g703_row(
                    str(row.sov.line_number),
                    f"{row.sov.cost_code} {row.sov.description}",
                    row.figures,
                    fmt,
                )
                for row in sheet.rows
            ],
            footer=_g703_footer([r.figures for r in sheet.rows], fmt),
        )
    return _output(doc)
