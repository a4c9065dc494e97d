"""Export batches (SPEC §7): readiness, batch creation and reversal.

A batch takes approved billings not yet exported, stores the exact bytes of the
file and marks its billings exported with one compare-and-set ``UPDATE``, so a
billing is never in two live batches even when two batches are created at the
same moment. Reversing a batch (with a reason) frees its billings; its items
stay as history. Functions here flush, never commit: the view commits once.

The rows given to the pure builders (:mod:`portal.finance.builders`) are made
from each billing's frozen money-engine figures (:func:`portal.billing.figures.sheet`)
and those of the commitment's previous counted billing (for "this period").
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from types import SimpleNamespace
from typing import cast

import sqlalchemy as sa
from sqlalchemy.orm import joinedload, selectinload
from sqlalchemy.orm.identity import _WeakInstanceDict

from portal import audit, generations
from portal.billing import figures
from portal.core import money
from portal.core.statuses import FINAL_STATUSES, Role
from portal.extensions import db, rowcount
from portal.finance.builders import (
    FORMATS,
    BatchInfo,
    BillingRow,
    LineRow,
    build,
    reconciliation_problems,
    sage_fit_problem,
)
from portal.models import (
    Billing,
    BillingLine,
    BillingPeriod,
    Commitment,
    ErpCostCode,
    ErpSettings,
    ExportBatch,
    ExportBatchItem,
    Project,
    SovLine,
    User,
)
from portal.timeutil import utcnow
from portal.validation import clean_text

ZERO = Decimal("0.00")
#: Statuses a billing must have to be exported.
EXPORTABLE = tuple(s.value for s in FINAL_STATUSES)
#: Roles that may create and reverse batches and edit ERP settings.
WRITE_ROLES = (Role.FINANCE.value, Role.ADMIN.value)
MAX_BATCH_BILLINGS = 1000
REASON_LIMIT = 2000


class ExportError(Exception):
    """A refused export action, with a message fit for the user."""


class ExportForbidden(ExportError):
    """The user's role may not do this."""


class UnknownBillings(ExportError):
    """Some of the requested billing ids do not exist."""

    def __init__(self, ids: Sequence[int]) -> None:
        """Keep the unknown ids."""
        self.ids = list(ids)
        shown = ", ".join(str(i) for i in self.ids[:20])
        super().__init__(f"No billing with id {shown}.")


class ExportConflict(ExportError):
    """The billings' state does not allow it (already exported, not approved…)."""


@dataclass
class NotReady(ExportConflict):
    """Billings held back: ``problems`` maps billing id → what is missing."""

    problems: dict[int, list[str]] = field(default_factory=dict)
    #: billing id → "SC-100 #2" for messages.
    labels: dict[int, str] = field(default_factory=dict)

    def __str__(self) -> str:
        count = len(self.problems)
        noun = "billing is" if count == 1 else "billings are"
        return (
            f"Nothing was exported: {count} selected {noun} not ready for this "
            "format (missing ERP codes are listed on the page)."
        )


@dataclass
class ReasonRequired(ExportError):
    """A reversal needs a reason (field errors for the form)."""

    errors: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return next(iter(self.errors.values()), "Give a reason.")


# ------------------------------------------------------------ ERP settings


def erp_settings() -> ErpSettings:
    """The single settings row, or unsaved defaults when there is none yet."""
    row = db.session.get(ErpSettings, 1)
    if row is None:
        row = ErpSettings(
            id=1,
            ap_account="",
            retainage_payable_account="",
            default_expense_account="",
            default_sage_category="S",
            default_qb_class="",
        )
    return row


def cost_code_settings() -> dict[str, ErpCostCode]:
    """ERP codes per cost code."""
    return {
        row.cost_code: row for row in db.session.scalars(sa.select(ErpCostCode)).all()
    }


# ------------------------------------------------------------------- rows


def _eager(lines: bool = True) -> list:
    options = [
        joinedload(Billing.commitment).joinedload(Commitment.vendor),
        joinedload(Billing.commitment).joinedload(Commitment.project),
        joinedload(Billing.period),
    ]
    if lines:
        # Lines join their SOV lines: a selectinload would query again per 500 lines.
        options.append(selectinload(Billing.lines).joinedload(BillingLine.sov_line))
    return options


def load_billings(ids: Iterable[int], *, lines: bool = True) -> list[Billing]:
    """The billings with these ids, eagerly loaded (their lines too unless
    ``lines`` is false), in id order."""
    wanted = sorted(set(ids))
    if not wanted:
        return []
    return list(
        db.session.scalars(
            sa.select(Billing)
            .where(Billing.id.in_(wanted))
            .options(*_eager(lines))
            .order_by(Billing.id)
        ).unique()
    )


def _previous_billings(billings: Sequence[Billing]) -> dict[int, Billing | None]:
    """Billing id → the commitment's previous counted billing (one query;
    :func:`portal.billing.figures.previous_counted`)."""
    found = figures.previous_counted(billings)
    return {billing.id: found.get(billing.id) for billing in billings}


def _previous_lines(
    previous: Billing,
) -> tuple[Decimal, dict[int, tuple[Decimal, Decimal]]]:
    """Line 5 and (materials stored, retainage) per SOV line of the previous billing."""
    stored = figures.frozen_fields(
        previous, ("materials_stored", "retainage"), ("retainage",)
    )
    if stored is not None:  # counted billings are frozen: no queries
        totals, lines = stored
        return totals["retainage"], lines  # type: ignore[return-value]
    sheet = figures.sheet(previous, "approved")
    return sheet.totals.retainage, {
        r.sov.id: (r.figures.materials_stored, r.figures.retainage) for r in sheet.rows
    }


def invoice_number(billing: Billing) -> str:
    """The vendor's invoice number, else ``<commitment>-<application number>``."""
    return (
        billing.vendor_invoice_number.strip()
        or f"{billing.commitment.number}-{billing.application_number}"
    )


@dataclass(frozen=True)
class _Line:
    """A billing line read as a plain row (no ORM objects), for frozen billings."""

    sov: SimpleNamespace  # id, line_number, cost_code, description
    line: SimpleNamespace  # claimed_work, claimed_materials, claimed_installed


def _plain_lines(ids: Sequence[int]) -> dict[int, dict[int, _Line]]:
    """billing id → sov_line_id → its line, in one query of plain rows."""
    out: dict[int, dict[int, _Line]] = {}
    for (
        billing_id,
        sov_id,
        work,
        materials,
        installed,
        number,
        code,
        text,
    ) in db.session.execute(
        sa.select(
            BillingLine.billing_id,
            BillingLine.sov_line_id,
            BillingLine.claimed_work,
            BillingLine.claimed_materials,
            BillingLine.claimed_installed,
            SovLine.line_number,
            SovLine.cost_code,
            SovLine.description,
        )
        .join(SovLine, SovLine.id == BillingLine.sov_line_id)
        .where(BillingLine.billing_id.in_(ids))
    ):
        out.setdefault(billing_id, {})[sov_id] = _Line(
            SimpleNamespace(
                id=sov_id, line_number=number, cost_code=code, description=text
            ),
            SimpleNamespace(
                claimed_work=work,
                claimed_materials=materials,
                claimed_installed=installed,
            ),
        )
    return out


def _sheet(
    billing: Billing, plain: dict[int, dict[int, _Line]] | None
) -> figures.Sheet:
    """The approved sheet; from plain line rows when given and the billing is frozen."""
    stored = figures.frozen(billing) if plain is not None else None
    if stored is None:
        return figures.sheet(billing, "approved")
    figs, sov_ids = stored
    mine = plain.get(billing.id, {})  # type: ignore[union-attr]
    # A line the billing has no line row for (added while it was under review)
    # is read from the SOV as it stood when the billing was decided.
    as_stood = figures.frozen_sov(billing) or {}
    rows = [
        figures.Row(mine[i].sov, mine[i].line, fig)  # type: ignore[arg-type]
        if i in mine
        else figures.Row(as_stood[i], None, fig)
        for i, fig in zip(sov_ids, figs.lines, strict=True)
    ]
    return figures.Sheet(rows=rows, totals=figs.totals, figures=figs)


def export_rows(
    billings: Sequence[Billing],
    settings: ErpSettings | None = None,
    codes: dict[str, ErpCostCode] | None = None,
    plain: dict[int, dict[int, _Line]] | None = None,
) -> dict[int, BillingRow]:
    """Builder rows for approved billings, from the money engine's frozen figures.

    ``plain`` (from :func:`_plain_lines`) spares loading the billings' lines as
    ORM objects.
    """
    settings = settings or erp_settings()
    codes = cost_code_settings() if codes is None else codes
    previous = _previous_billings(billings)
    out: dict[int, BillingRow] = {}
    for billing in billings:
        sheet = _sheet(billing, plain)
        prev = previous.get(billing.id)
        prev_lines: dict[int, tuple[Decimal, Decimal]] = {}
        prev_retainage = ZERO
        if prev is not None:
            prev_retainage, prev_lines = _previous_lines(prev)
        lines = []
        for r in sheet.rows:
            code = codes.get(r.sov.cost_code)
            stored_before, retainage_before = prev_lines.get(r.sov.id, (ZERO, ZERO))
            lines.append(
                LineRow(
                    line_number=r.sov.line_number,
                    cost_code=r.sov.cost_code,
                    description=r.sov.description,
                    scheduled_value=r.figures.scheduled_value,
                    previous_work=r.figures.previous_work,
                    work_this_period=r.figures.work_this_period,
                    materials_stored=r.figures.materials_stored,
                    total_completed_and_stored=r.figures.total_completed_and_stored,
                    percent_complete=r.figures.percent_complete,
                    balance_to_finish=r.figures.balance_to_finish,
                    retainage=r.figures.retainage,
                    claimed_work=r.line.claimed_work if r.line else ZERO,
                    # The claimed F: the same F previous, the claimed new and
                    # installed amounts (SPEC §4).
                    claimed_materials=money.materials_balance(
                        r.figures.materials_previous,
                        r.line.claimed_materials if r.line else ZERO,
                        (r.line.claimed_installed if r.line else ZERO) or ZERO,
                    ),
                    materials_stored_previous=stored_before,
                    retainage_previous=retainage_before,
                    expense_account=(code.expense_account if code else "")
                    or settings.default_expense_account,
                    sage_cost_code=code.sage_cost_code if code else "",
                    sage_category=(code.sage_category if code else "")
                    or settings.default_sage_category,
                    qb_class=(code.qb_class if code else "")
                    or settings.default_qb_class,
                )
            )
        totals = sheet.totals
        commitment = billing.commitment
        project = commitment.project
        vendor = commitment.vendor
        period = billing.period
        out[billing.id] = BillingRow(
            billing_id=billing.id,
            application_number=billing.application_number,
            status=billing.status,
            invoice_number=invoice_number(billing),
            vendor_name=vendor.name,
            vendor_code=vendor.erp_vendor_code or "",
            vendor_address=vendor.address or "",
            project_number=project.number,
            project_name=project.name,
            job_number=project.erp_job_number or "",
            qb_customer_job=project.qb_customer_job or "",
            commitment_number=commitment.number,
            commitment_title=commitment.title,
            period_sequence=period.sequence,
            period_start=period.start_date,
            period_end=period.end_date,
            billing_date=period.billing_date,
            currency=project.currency,
            original_contract_sum=totals.original_contract_sum,
            net_change_by_change_orders=totals.net_change_by_change_orders,
            contract_sum_to_date=totals.contract_sum_to_date,
            total_completed_and_stored=totals.total_completed_and_stored,
            retainage=totals.retainage,
            total_earned_less_retainage=totals.total_earned_less_retainage,
            previous_certificates=totals.previous_certificates,
            current_payment_due=totals.current_payment_due,
            balance_to_finish_including_retainage=(
                totals.balance_to_finish_including_retainage
            ),
            retainage_previous=prev_retainage,
            retainage_released_this_period=billing.retainage_released,
            lines=tuple(lines),
            ap_account=settings.ap_account,
            retainage_payable_account=settings.retainage_payable_account,
        )
    return out


# -------------------------------------------------------------- readiness


def _missing(what: str) -> str:
    return f"Missing {what}"


def problems_for(row: BillingRow, fmt: str) -> list[str]:
    """What keeps this billing out of a ``fmt`` file (empty when it is ready)."""
    problems: list[str] = []
    if fmt in ("sage300", "csv", "xlsx") and not row.vendor_code:
        problems.append(_missing(f"vendor code for {row.vendor_name}"))
    if fmt in ("sage300", "csv", "xlsx") and not row.job_number:
        problems.append(_missing(f"job number for project {row.project_number}"))
    if fmt == "iif":
        problems.extend(_iif_problems(row))
    elif fmt == "sage300":
        problems.extend(_sage_problems(row))
    problems.extend(
        f"Figures do not reconcile: {p}" for p in reconciliation_problems(row)
    )
    return problems


def _iif_problems(row: BillingRow) -> list[str]:
    problems = []
    if not row.ap_account:
        problems.append(_missing("AP account (ERP settings)"))
    if not row.retainage_this_period.is_zero() and not row.retainage_payable_account:
        problems.append(_missing("retainage payable account (ERP settings)"))
    if not row.qb_customer_job:
        problems.append(
            _missing(f"QuickBooks Customer:Job for project {row.project_number}")
        )
    for code in _codes_needing(row, lambda line: not line.expense_account):
        problems.append(_missing(f"expense account for cost code {code}"))
    if row.current_payment_due <= 0:
        problems.append(
            f"Current payment due is {row.current_payment_due:,.2f}: a bill must be "
            "positive (enter credits in QuickBooks by hand)"
        )
    return problems


def _sage_problems(row: BillingRow) -> list[str]:
    problems = []
    for code in _codes_needing(row, lambda line: not line.sage_cost_code):
        problems.append(_missing(f"Sage cost code for cost code {code}"))
    for code in _codes_needing(row, lambda line: not line.sage_category):
        problems.append(_missing(f"Sage category for cost code {code}"))
    if row.retainage_released_this_period:
        problems.append(
            f"Releases retainage ({row.retainage_released_this_period:,.2f}): the "
            "Sage 300 CRE invoice import cannot carry a release; enter it in Sage "
            "or export this billing as CSV"
        )
    if row.gross_this_period <= 0:
        problems.append(
            f"Amount this period is {row.gross_this_period:,.2f}: an AP invoice "
            "must be positive"
        )
    elif row.current_payment_due < 0:
        # The invoice would hold more retainage than its amount: Sage would
        # record a negative amount payable, which its AP invoice import is not
        # meant to carry (see docs/exports.md). Held back, never half-right.
        problems.append(
            f"Current payment due is {row.current_payment_due:,.2f} (amount this "
            f"period {row.gross_this_period:,.2f} less retainage held this period "
            f"{row.retainage_this_period:,.2f}): a Sage 300 CRE invoice cannot hold "
            "more retainage than its amount; enter it in Sage by hand or export "
            "this billing as CSV"
        )
    checks = [
        ("APIF", "vendor", row.vendor_code),
        ("APIF", "invoice", row.invoice_number),
        ("APIF", "amount", row.gross_this_period),
        ("APDF", "job", row.job_number),
        ("APDF", "commitment", row.commitment_number),
    ]
    for line in row.lines:
        checks += [
            ("APDF", "cost_code", line.sage_cost_code),
            ("APDF", "category", line.sage_category),
            ("APDF", "expense_account", line.expense_account),
            ("APDF", "amount", line.amount_this_period),
        ]
    checks.append(("APDF", "ap_account", row.ap_account))
    for record, name, value in checks:
        problem = sage_fit_problem(record, name, value)
        if problem and problem not in problems:
            problems.append(problem)
    return problems


def _codes_needing(row: BillingRow, lacks: Callable[[LineRow], bool]) -> list[str]:
    """Cost codes of lines with activity this period that lack a code."""
    seen: list[str] = []
    for line in row.lines:
        active = not (
            line.amount_this_period.is_zero() and line.retainage_this_period.is_zero()
        )
        if active and lacks(line) and line.cost_code not in seen:
            seen.append(line.cost_code)
    return seen


@dataclass(frozen=True)
class Readiness:
    """A ready-to-export billing, its row and what keeps it out of the format."""

    billing: Billing
    row: BillingRow
    problems: list[str]

    @property
    def ready(self) -> bool:
        return not self.problems


def readiness(billings: Sequence[Billing], fmt: str) -> list[Readiness]:
    """Readiness of each billing for ``fmt`` (a fixed number of queries)."""
    rows = export_rows(billings)
    return [Readiness(b, rows[b.id], problems_for(rows[b.id], fmt)) for b in billings]


def unexported_query(
    project_id: int | None = None,
    period_id: int | None = None,
    vendor_id: int | None = None,
) -> sa.Select:
    """Approved billings not yet exported, filtered, in a stable order."""
    query = (
        sa.select(Billing)
        .join(Billing.commitment)
        .where(
            Billing.status.in_(EXPORTABLE),
            Billing.export_batch_id.is_(None),
        )
        .options(*_eager())
        .order_by(
            Commitment.project_id,
            Commitment.number,
            Billing.application_number,
            Billing.id,
        )
    )
    if project_id:
        query = query.where(Commitment.project_id == project_id)
    if period_id:
        query = query.where(Billing.period_id == period_id)
    if vendor_id:
        query = query.where(Commitment.vendor_id == vendor_id)
    return query


# ---------------------------------------------------------------- batches


def _check_role(user: User) -> None:
    if not user.is_staff or user.role not in WRITE_ROLES:
        raise ExportForbidden("Only finance and admin users can do that.")


def create_batch(
    user: User,
    fmt: str,
    billing_ids: Iterable[int],
    *,
    include_vendors: bool = False,
) -> ExportBatch:
    """Export approved, unexported billings as one batch, all or nothing (SPEC §7)."""
    _check_role(user)
    if fmt not in FORMATS:
        raise ExportError(f"Unknown export format {fmt!r}.")
    ids = sorted(set(billing_ids))
    if not ids:
        raise ExportError("Select at least one billing to export.")
    if len(ids) > MAX_BATCH_BILLINGS:
        raise ExportError(
            f"A batch holds at most {MAX_BATCH_BILLINGS} billings; select fewer."
        )
    heads = _heads(ids)
    unknown = sorted(set(ids) - set(heads))
    if unknown:
        raise UnknownBillings(unknown)
    not_final = [h for h in heads.values() if h.status not in EXPORTABLE]
    if not_final:
        raise ExportConflict(
            "Only approved billings can be exported; not approved: "
            + ", ".join(h.label for h in not_final)
            + "."
        )
    exported = [h for h in heads.values() if h.export_batch_id is not None]
    if exported:
        raise ExportConflict(
            "Already exported (reverse that batch first to export again): "
            + ", ".join(f"{h.label} in batch {h.export_batch_id}" for h in exported)
            + "."
        )
    currencies = sorted({h.currency for h in heads.values()})
    if len(currencies) > 1:
        # One total, one file, one ERP import: amounts in two currencies
        # cannot be added up (filter by project and export each on its own).
        raise ExportConflict(
            "A batch holds billings in one currency; these are in "
            + " and ".join(currencies)
            + ". Filter by project and export each currency on its own."
        )
    settings = erp_settings()
    info = FORMATS[fmt]
    now = utcnow()
    screen = _Screen(fmt)
    with db.session.begin_nested():
        batch = ExportBatch(
            format=fmt,
            created_by_id=user.id,
            created_at=now,
            filename="pending",
            content_type=info.content_type,
            content=b"",
            sha256="",
            billing_count=len(ids),
            total_amount=ZERO,
        )
        db.session.add(batch)
        db.session.flush()
        _claim(batch, ids)
        # One pass: rows are made a chunk at a time, checked, and written.
        content = build(
            fmt,
            screen(_stream_rows(ids, settings)),
            BatchInfo(batch.id, now, include_vendors=include_vendors),
        )
        if screen.problems:  # all or nothing: the savepoint is rolled back
            raise NotReady(screen.problems, {i: heads[i].label for i in ids})
        batch.total_amount = screen.total
        batch.content = content
        batch.sha256 = hashlib.sha256(content).hexdigest()
        batch.filename = batch_filename(batch.id, fmt, heads.values())
        # One executemany, not one INSERT per billing.
        db.session.execute(  # their billings' commitments: touched by _claim
            sa.insert(ExportBatchItem).execution_options(**generations.COVERED_OPTIONS),
            [{"batch_id": batch.id, "billing_id": i} for i in ids],
        )
        db.session.flush()
    db.session.expire(batch, ["items"])
    audit.record(
        user,
        "export_batch.create",
        batch,
        after={
            "format": fmt,
            "billing_ids": ids,
            "sha256": batch.sha256,
            "total_amount": batch.total_amount,
        },
        object_type="export_batch",
    )
    db.session.flush()
    return batch


@dataclass(frozen=True)
class _Head:
    """What the batch checks need of a billing, without its lines."""

    status: str
    export_batch_id: int | None
    label: str
    project_number: str = ""
    currency: str = ""
    period_sequence: int = 0


def _heads(ids: list[int]) -> dict[int, _Head]:
    """Status, batch, label, project and period of each billing (one query)."""
    rows = db.session.execute(
        sa.select(
            Billing.id,
            Billing.status,
            Billing.export_batch_id,
            Commitment.number,
            Billing.application_number,
            Project.number,
            Project.currency,
            BillingPeriod.sequence,
        )
        .join(Commitment, Commitment.id == Billing.commitment_id)
        .join(Project, Project.id == Commitment.project_id)
        .join(BillingPeriod, BillingPeriod.id == Billing.period_id)
        .where(Billing.id.in_(ids))
    ).all()
    return {
        row[0]: _Head(row[1], row[2], f"{row[3]} #{row[4]}", row[5], row[6], row[7])
        for row in rows
    }


def batch_filename(batch_id: int, fmt: str, heads: Iterable[_Head]) -> str:
    """The file's name after what it holds (issue 14 item 15): the project,
    the period when there is one, the format and the batch number, e.g.
    ``2040-P03-batch-00012-iif.iif``; "several-projects" when it mixes them."""
    heads = list(heads)
    projects = sorted({h.project_number for h in heads})
    periods = sorted({h.period_sequence for h in heads})
    parts = [projects[0] if len(projects) == 1 else "several-projects"]
    if len(projects) == 1 and len(periods) == 1:
        parts.append(f"P{periods[0]:02d}")
    parts += [f"batch-{batch_id:05d}", fmt]
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", "-".join(parts)).strip("-")
    return f"{name}.{FORMATS[fmt].extension}"


def batch_currencies(batch_ids: Iterable[int]) -> dict[int, str]:
    """The currency of each batch (a batch holds one: :func:`create_batch`)."""
    ids = list(batch_ids)
    if not ids:
        return {}
    rows = db.session.execute(
        sa.select(ExportBatchItem.batch_id, sa.func.min(Project.currency))
        .join(Billing, Billing.id == ExportBatchItem.billing_id)
        .join(Commitment, Commitment.id == Billing.commitment_id)
        .join(Project, Project.id == Commitment.project_id)
        .where(ExportBatchItem.batch_id.in_(ids))
        .group_by(ExportBatchItem.batch_id)
    ).all()
    return {int(batch_id): str(currency) for batch_id, currency in rows}


#: Billings loaded at a time when building a batch: the ORM objects of one
#: chunk are let go before the next, so memory follows the chunk, not the batch.
ROW_CHUNK = 250


def _stream_rows(ids: list[int], settings: ErpSettings) -> Iterator[BillingRow]:
    """Builder rows for ``ids`` in order, ``ROW_CHUNK`` billings at a time.

    Only one chunk's billings and rows are held: memory follows the chunk, not
    the batch.
    """
    codes = cost_code_settings()
    for start in range(0, len(ids), ROW_CHUNK):
        chunk = ids[start : start + ROW_CHUNK]
        held = set(db.session.identity_map.keys())
        billings = load_billings(chunk, lines=False)  # lines come as plain rows
        rows = export_rows(billings, settings, codes, _plain_lines(chunk))
        # Session.identity_map is a _WeakInstanceDict at runtime; the annotation
        # names its base class, which lacks the dict methods.
        identity_map = cast(_WeakInstanceDict, db.session.identity_map)
        for key, obj in list(identity_map.items()):
            if key not in held and isinstance(obj, Billing):
                db.session.expunge(obj)
        for billing_id in chunk:
            yield rows.pop(billing_id)


@dataclass
class _Screen:
    """Checks rows as they stream to the builder: gathers the problems of those
    not ready and the batch total; once one is not ready, lets no more through
    (the file will be thrown away) but goes on checking, to list them all."""

    fmt: str
    problems: dict[int, list[str]] = field(default_factory=dict)
    total: Decimal = ZERO

    def __call__(self, rows: Iterable[BillingRow]) -> Iterator[BillingRow]:
        """The ready rows of ``rows``."""
        for row in rows:
            found = problems_for(row, self.fmt)
            if found:
                self.problems[row.billing_id] = found
            elif not self.problems:
                self.total += row.current_payment_due
                yield row


def _claim(batch: ExportBatch, ids: list[int]) -> None:
    """Mark the billings exported with one compare-and-set, or raise ExportConflict."""
    # Lock the rows in id order first (PostgreSQL), so two concurrent batches
    # over overlapping billings queue up instead of deadlocking.
    db.session.execute(
        sa.select(Billing.id)
        .where(Billing.id.in_(ids))
        .order_by(Billing.id)
        .with_for_update()
    ).all()
    result = db.session.execute(
        sa.update(Billing)
        .where(
            Billing.id.in_(ids),
            Billing.export_batch_id.is_(None),
            Billing.status.in_(EXPORTABLE),
        )
        .values(export_batch_id=batch.id)
        .execution_options(**generations.COVERED_OPTIONS)
    )
    if rowcount(result) != len(ids):
        raise ExportConflict(
            "Some of these billings were exported or changed by someone else "
            "meanwhile. Nothing was exported: reload the page and try again."
        )
    # Their commitments' pages, not every page (the bulk default, which also
    # queued concurrent batches on the global counter's row).
    generations.touch_billings(ids)


def reverse_batch(batch: ExportBatch, user: User, reason: str) -> list[int]:
    """Reverse a live batch with a reason; its billings become exportable again."""
    _check_role(user)
    text = clean_text(reason, multiline=True)
    if not text:
        raise ReasonRequired({"reason": "Give a reason for reversing this batch."})
    if len(text) > REASON_LIMIT:
        raise ReasonRequired({"reason": f"Use at most {REASON_LIMIT} characters."})
    now = utcnow()
    result = db.session.execute(
        sa.update(ExportBatch)
        .where(ExportBatch.id == batch.id, ExportBatch.reversed_at.is_(None))
        .values(reversed_at=now, reversed_by_id=user.id, reverse_reason=text)
        .execution_options(synchronize_session=False)
    )
    if rowcount(result) != 1:
        raise ExportConflict("This batch has already been reversed.")
    freed = list(
        db.session.scalars(
            sa.select(Billing.id)
            .where(Billing.export_batch_id == batch.id)
            .order_by(Billing.id)
        )
    )
    db.session.execute(
        sa.update(Billing)
        .where(Billing.export_batch_id == batch.id)
        .values(export_batch_id=None)
        .execution_options(**generations.COVERED_OPTIONS)
    )
    generations.touch_billings(freed)
    db.session.refresh(batch)
    audit.record(
        user,
        "export_batch.reverse",
        batch,
        before={"reversed": False, "billing_ids": freed},
        after={"reversed": True, "reason": text},
        object_type="export_batch",
    )
    db.session.flush()
    return freed


def batch_billings(batch: ExportBatch) -> list[Billing]:
    """The billings a batch holds (or held, once reversed), eagerly loaded."""
    ids = [item.billing_id for item in batch.items]
    return load_billings(ids)


def latest_format() -> str:
    """The format of the most recent batch (the page's default), else CSV."""
    fmt = db.session.scalar(
        sa.select(ExportBatch.format).order_by(ExportBatch.id.desc()).limit(1)
    )
    return fmt or "csv"
