"""The one G702/G703 presentation: line numbers, labels and column totals.

Every page that shows a G702 summary (the contact's billing page, the admin
review, the upstream claim view) renders :func:`g702_lines` through the one
``g702`` macro in ``templates/_g702.html``, and the PDFs print the same lines;
G703 footers show :func:`g703_totals`. Pure: it knows the money engine's
figures and the terminology dictionaries, neither Flask nor the database.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from portal.core import money, terms
from portal.core.statuses import COUNTED_STATUSES

ZERO = Decimal("0.00")

#: SPEC §4 G702: (line number, BillingTotals field, label, detail line).
#: ``{Retainage}``/``{retainage}`` take the dialect's word (retention, holdback).
_SPEC: tuple[tuple[str, str, str, bool], ...] = (
    ("1", "original_contract_sum", "Original contract sum", False),
    ("2", "net_change_by_change_orders", "Net change by change orders", False),
    ("3", "contract_sum_to_date", "Contract sum to date (1 + 2)", False),
    ("4", "total_completed_and_stored", "Total completed and stored to date", False),
    ("5a", "retainage_on_work", "{Retainage} on completed work", True),
    ("5b", "retainage_on_materials", "{Retainage} on stored materials", True),
    ("5c", "retainage_released_to_date", "Less {retainage} released to date", True),
    ("5", "retainage", "Total {retainage} (5a + 5b − 5c)", False),
    (
        "6",
        "total_earned_less_retainage",
        "Total earned less {retainage} (4 − 5)",
        False,
    ),
    ("7", "previous_certificates", "Less previous certificates for payment", False),
    ("8", "current_payment_due", "Current payment due (6 − 7)", False),
    (
        "9",
        "balance_to_finish_including_retainage",
        "Balance to finish, including {retainage} (3 − 6)",
        False,
    ),
)

#: The line a G702 stresses: what is to be paid.
STRONG = "current_payment_due"


@dataclass(frozen=True)
class G702Line:
    """One G702 line: claimed and, where there is one, approved value."""

    number: str
    key: str
    label: str
    claimed: Decimal
    approved: Decimal | None = None
    detail: bool = False  #: 5a-5c, the parts of line 5

    @property
    def strong(self) -> bool:
        return self.key == STRONG

    @property
    def difference(self) -> Decimal | None:
        """Approved − claimed, or None when nothing is approved yet."""
        if self.approved is None:
            return None
        return self.approved - self.claimed


def g702_lines(
    claimed: money.BillingTotals,
    approved: money.BillingTotals | None = None,
    *,
    dialect: str | None = None,
) -> list[G702Line]:
    """SPEC §4 G702 lines 1-9 (with 5a-5c) labelled in ``dialect``."""
    word = terms.lookup("Retainage", dialect)
    lower = terms.lookup("retainage", dialect)
    return [
        G702Line(
            number=number,
            key=key,
            label=label.format(Retainage=word, retainage=lower),
            claimed=getattr(claimed, key),
            approved=getattr(approved, key) if approved is not None else None,
            detail=detail,
        )
        for number, key, label, detail in _SPEC
    ]


@dataclass(frozen=True)
class G703Totals:
    """A G703 footer: columns C-I summed over the rows, % of G over C."""

    scheduled_value: Decimal  # C
    previous_work: Decimal  # D
    work_this_period: Decimal  # E
    materials_stored: Decimal  # F
    total_completed_and_stored: Decimal  # G
    percent_complete: Decimal  # G / C
    balance_to_finish: Decimal  # H
    retainage: Decimal  # I
    materials_previous: Decimal = ZERO  # F of the previous counted billing
    materials_new: Decimal = ZERO  # stored this period
    materials_installed: Decimal = ZERO  # installed this period


_COLUMNS = (
    "scheduled_value",
    "previous_work",
    "work_this_period",
    "materials_stored",
    "total_completed_and_stored",
    "balance_to_finish",
    "retainage",
    "materials_previous",
    "materials_new",
    "materials_installed",
)


def g703_totals(lines: Iterable[money.LineFigures]) -> G703Totals:
    """Σ of each G703 column over ``lines`` (already-rounded line values)."""
    sums = dict.fromkeys(_COLUMNS, ZERO)
    for line in lines:
        for name in _COLUMNS:
            sums[name] += getattr(line, name)
    return G703Totals(
        **sums,
        percent_complete=money.percent_complete(
            sums["total_completed_and_stored"], sums["scheduled_value"]
        ),
    )


# ------------------------------------------------------------ period states

UPCOMING = "upcoming"


def period_phase(status: str, start_date: date, has_billings: bool, today: date) -> str:
    """What a period is called on every page: ``open``, ``closed`` or
    ``upcoming`` (closed, not started yet and never billed: it was never
    opened, so "Closed" would read as if it were over)."""
    if str(status) == "closed" and start_date > today and not has_billings:
        return UPCOMING
    return str(status)


def period_past_due(status: str, due_date: date, today: date) -> bool:
    """Only an open period can be past due: a closed one takes no billings."""
    return str(status) == "open" and today > due_date


# ------------------------------------------------------- period dashboard

#: The period dashboard's money columns: G703 E and F, G702 lines 5 and 8.
BOARD_COLUMNS = (
    "work_this_period",
    "materials_stored",
    "retainage",
    "current_payment_due",
)


def figures_side(status: str) -> str:
    """Which figures a billing's row shows: ``approved`` once decided (pending
    owner approval, approved, approved as noted: the frozen snapshot), else
    ``claimed`` (a draft, one under review or sent back)."""
    return "approved" if status in {s.value for s in COUNTED_STATUSES} else "claimed"


@dataclass(frozen=True)
class BoardFigures:
    """A billing's money on the period dashboard, on one side (``side``)."""

    side: str  #: ``claimed`` or ``approved`` (:func:`figures_side`)
    work_this_period: Decimal  #: G703 column E total
    materials_stored: Decimal  #: G703 column F total (presently stored)
    retainage: Decimal  #: G702 line 5, total retainage to date
    current_payment_due: Decimal  #: G702 line 8


def board_figures(figures: money.BillingFigures, side: str) -> BoardFigures:
    """The dashboard's four figures of a billing's G702/G703."""
    columns = g703_totals(figures.lines)
    return BoardFigures(
        side=side,
        work_this_period=columns.work_this_period,
        materials_stored=columns.materials_stored,
        retainage=figures.totals.retainage,
        current_payment_due=figures.totals.current_payment_due,
    )


def board_summary(summary: money.SummaryFigures, side: str) -> BoardFigures:
    """The dashboard's four figures from :func:`money.summary_figures` (the same
    figures as :func:`board_figures` of the full engine's, to the cent)."""
    return BoardFigures(
        side=side,
        work_this_period=summary.work_this_period,
        materials_stored=summary.materials_stored,
        retainage=summary.retainage,
        current_payment_due=summary.current_payment_due,
    )


def board_totals(rows: Iterable[BoardFigures]) -> dict[str, Decimal]:
    """Σ of each dashboard money column."""
    sums = dict.fromkeys(BOARD_COLUMNS, ZERO)
    for row in rows:
        for name in BOARD_COLUMNS:
            sums[name] += getattr(row, name)
    return sums
