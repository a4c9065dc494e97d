"""The exports JSON API under ``/exports/api/v1/`` (SPEC §7, §10).

Authenticated by per-user API tokens (``Authorization: Bearer …``), never by
cookies, so the views are exempt from CSRF. Read-only except batch creation.
Every answer is JSON, errors included: ``{"error": …, "message": …}``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from flask import Response, g, jsonify, request, send_file
from sqlalchemy.orm import defer, joinedload, selectinload

from portal.accounts import api_tokens
from portal.billing import figures
from portal.core import money
from portal.core.statuses import (
    COUNTED_STATUSES,
    BillingStatus,
    ExportFormat,
    Role,
    values,
)
from portal.exports import bp
from portal.exports.openapi import document
from portal.extensions import csrf, db
from portal.finance import batches as export_batches
from portal.models import Billing, Commitment, ExportBatch
from portal.validation import MAX_ID
from portal.web.sorting import paginate
from portal.web.urls import public_url

ZERO = Decimal("0.00")

API_PREFIX = "/exports/api/"
#: Endpoints reachable without a token.
PUBLIC_API_ENDPOINTS = {"exports.api_openapi"}
#: Roles whose tokens may read.
READ_ROLES = (Role.ADMIN.value, Role.FINANCE.value, Role.VIEWER.value)
DEFAULT_PER_PAGE = 25
MAX_PER_PAGE = 100
REALM = 'Bearer realm="exports"'

_REASONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    409: "Conflict",
}


class ApiError(Exception):
    """An API error answer: status, message and extra JSON fields."""

    def __init__(self, status: int, message: str, **extra: Any) -> None:
        """Keep what the JSON answer needs."""
        super().__init__(message)
        self.status = status
        self.message = message
        self.extra = extra


def error_response(status: int, message: str, **extra: Any) -> Response:
    """A JSON error answer."""
    response = jsonify(
        {"error": _REASONS.get(status, "Error"), "message": message, **extra}
    )
    response.status_code = status
    if status == 401:
        response.headers["WWW-Authenticate"] = REALM
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.errorhandler(ApiError)
def _api_error(error: ApiError) -> Response:
    return error_response(error.status, error.message, **error.extra)


def guard() -> Response | None:
    """Token authentication for every API endpoint (fail closed)."""
    if request.endpoint in PUBLIC_API_ENDPOINTS:
        return None
    header = request.headers.get("Authorization", "")
    scheme, _, raw = header.partition(" ")
    if scheme.lower() != "bearer" or not raw.strip():
        return error_response(
            401, "Send your API token in the header 'Authorization: Bearer <token>'."
        )
    token = api_tokens.authenticate(raw.strip())
    if token is None:
        return error_response(401, "This API token is unknown or has been revoked.")
    user = token.user
    if user.role not in READ_ROLES:
        return error_response(403, "This account may not use the API.")
    if api_tokens.touch(token):
        db.session.commit()
    g.api_user = user
    g.api_token = token
    return None


# ----------------------------------------------------------- serialisation


def _money(value: Decimal | None) -> str | None:
    if value is None:
        return None
    text = format(value.quantize(Decimal("0.01")), "f")
    return "0.00" if text == "-0.00" else text


def _when(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def _frozen_totals(billing: Billing) -> Any:
    """Totals of a decided billing from its stored figures (no queries), else None."""
    counted = [s.value for s in COUNTED_STATUSES]
    if not billing.approved_figures or billing.status not in counted:
        return None
    return figures.billing_figures(billing, "approved").totals


def _frozen_payment_due(billing: Billing) -> Decimal | None:
    """Line 8 of a decided billing, read alone from its stored figures (a list
    shows only that figure: building every line's figures cost most of a page)."""
    found = figures.frozen_fields(billing, (), ("current_payment_due",))
    return found[0]["current_payment_due"] if found is not None else None


def billing_summary(billing: Billing) -> dict[str, Any]:
    """A billing's identity, status and line 8, as the API shows it in lists."""
    commitment = billing.commitment
    project = commitment.project
    vendor = commitment.vendor
    period = billing.period
    due = _frozen_payment_due(billing)
    return {
        "id": billing.id,
        "status": billing.status,
        "application_number": billing.application_number,
        "revision": billing.revision,
        "vendor_invoice_number": billing.vendor_invoice_number,
        "project": {
            "id": project.id,
            "number": project.number,
            "name": project.name,
            "currency": project.currency,
            "erp_job_number": project.erp_job_number,
        },
        "commitment": {
            "id": commitment.id,
            "number": commitment.number,
            "title": commitment.title,
            "kind": commitment.kind,
        },
        "vendor": {
            "id": vendor.id,
            "name": vendor.name,
            "erp_vendor_code": vendor.erp_vendor_code,
        },
        "period": {
            "id": period.id,
            "sequence": period.sequence,
            "start_date": period.start_date.isoformat(),
            "end_date": period.end_date.isoformat(),
            "billing_date": period.billing_date.isoformat(),
        },
        "exported": billing.export_batch_id is not None,
        "export_batch_id": billing.export_batch_id,
        "decided_at": _when(billing.decided_at),
        "current_payment_due": _money(due),
        "url": public_url("exports.api_billing", billing_id=billing.id),
    }


TOTAL_FIELDS = (
    "original_contract_sum",
    "net_change_by_change_orders",
    "contract_sum_to_date",
    "total_completed_and_stored",
    "retainage",
    "retainage_on_work",
    "retainage_on_materials",
    "retainage_released_to_date",
    "total_earned_less_retainage",
    "previous_certificates",
    "current_payment_due",
    "balance_to_finish_including_retainage",
    "percent_complete",
)


def _side(f: money.LineFigures, bl: Any, which: str) -> dict[str, str | None]:
    """One side (claimed or approved) of a line: E, F and F's new/installed parts.

    F previous is the previous counted billing's approved F for both sides, so
    each side's F is ``materials_balance`` of it and that side's inputs (SPEC §4).
    """
    work = getattr(bl, f"{which}_work") if bl else ZERO
    new = getattr(bl, f"{which}_materials") if bl else ZERO
    installed = (getattr(bl, f"{which}_installed") if bl else ZERO) or ZERO
    return {
        "work_this_period": _money(work),
        "materials_stored": _money(
            money.materials_balance(f.materials_previous, new, installed)
        ),
        "materials_new": _money(new),
        "materials_installed": _money(installed),
    }


def billing_detail(billing: Billing) -> dict[str, Any]:
    """A billing with its G703 lines and G702 totals (approved figures)."""
    sheet = figures.sheet(billing, "approved")
    lines = []
    for row in sheet.rows:
        f = row.figures
        bl = row.line
        lines.append(
            {
                "sov_line_id": row.sov.id,
                "line_number": row.sov.line_number,
                "cost_code": row.sov.cost_code,
                "description": row.sov.description,
                "scheduled_value": _money(f.scheduled_value),
                "previous_work": _money(f.previous_work),
                "work_this_period": _money(f.work_this_period),
                "materials_stored": _money(f.materials_stored),
                "materials_previous": _money(f.materials_previous),
                "materials_new": _money(f.materials_new),
                "materials_installed": _money(f.materials_installed),
                "total_completed_and_stored": _money(f.total_completed_and_stored),
                "percent_complete": _money(f.percent_complete),
                "balance_to_finish": _money(f.balance_to_finish),
                "retainage": _money(f.retainage),
                "status": bl.status if bl else None,
                "reviewer_comment": bl.reviewer_comment if bl else "",
                "claimed": _side(f, bl, "claimed"),
                "approved": _side(f, bl, "approved"),
            }
        )
    totals = {name: _money(getattr(sheet.totals, name)) for name in TOTAL_FIELDS}
    return {
        **billing_summary(billing),
        "current_payment_due": _money(sheet.totals.current_payment_due),
        "retainage_released": _money(billing.retainage_released),
        "figures_frozen": _frozen_totals(billing) is not None,
        "lines": lines,
        "totals": totals,
    }


def batch_json(batch: ExportBatch) -> dict[str, Any]:
    """An export batch without its bytes."""
    return {
        "id": batch.id,
        "format": batch.format,
        "status": "reversed" if batch.reversed_at else "live",
        "filename": batch.filename,
        "content_type": batch.content_type,
        "size": batch.content_size,
        "sha256": batch.sha256,
        "billing_count": batch.billing_count,
        "billing_ids": sorted(item.billing_id for item in batch.items),
        "total_amount": _money(batch.total_amount),
        "created_at": _when(batch.created_at),
        "created_by": {"id": batch.created_by.id, "name": batch.created_by.name},
        "reversed_at": _when(batch.reversed_at),
        "reversed_by": (
            {"id": batch.reversed_by.id, "name": batch.reversed_by.name}
            if batch.reversed_by
            else None
        ),
        "reverse_reason": batch.reverse_reason or "",
        "url": public_url("exports.api_batch", batch_id=batch.id),
        "file_url": public_url("exports.api_batch_file", batch_id=batch.id),
    }


# ------------------------------------------------------------ parameters


def _int_arg(name: str, minimum: int = 1, maximum: int | None = None) -> int | None:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return None
    if not raw.isascii() or not raw.isdigit() or len(raw) > 12:
        raise ApiError(400, f"'{name}' must be a whole number.")
    value = int(raw)
    if value < minimum or (maximum is not None and value > maximum):
        limits = f"between {minimum} and {maximum}" if maximum else f">= {minimum}"
        raise ApiError(400, f"'{name}' must be {limits}.")
    return value


def _bool_arg(name: str) -> bool | None:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return None
    if raw.lower() in ("true", "1", "yes"):
        return True
    if raw.lower() in ("false", "0", "no"):
        return False
    raise ApiError(400, f"'{name}' must be true or false.")


def _page_args() -> tuple[int, int]:
    page = _int_arg("page") or 1
    per_page = _int_arg("per_page", 1, MAX_PER_PAGE) or DEFAULT_PER_PAGE
    return page, per_page


def _listing(
    endpoint: str, select: sa.Select, page: int, per_page: int, serialise: Any
) -> dict[str, Any]:
    # Counted over the ids alone: the default count wraps every column (a
    # batch's file among them) in a subquery.
    entity = select.column_descriptions[0]["entity"]
    pagination = paginate(select, entity.id, page=page, per_page=per_page)
    args = {k: v for k, v in request.args.items() if k not in ("page", "per_page")}

    def link(number: int) -> str:
        return public_url(endpoint, page=number, per_page=per_page, **args)

    return {
        "items": [serialise(item) for item in pagination.items],
        "page": page,
        "per_page": per_page,
        "total": pagination.total or 0,
        "pages": pagination.pages,
        "links": {
            "self": link(page),
            "next": link(page + 1) if page < pagination.pages else None,
            "prev": link(page - 1) if page > 1 and pagination.pages else None,
        },
    }


# ----------------------------------------------------------------- views


@bp.route("/api/v1/openapi.json")
@csrf.exempt
def api_openapi() -> Response:
    """The OpenAPI 3.1 document of this API."""
    return jsonify(document())


@bp.route("/api/v1/billings")
@csrf.exempt
def api_billings() -> Response:
    """Billings with filters: status, exported, project, period, vendor, commitment."""
    statuses = sorted({s for s in (request.args.get("status") or "").split(",") if s})
    if any(status not in values(BillingStatus) for status in statuses):
        raise ApiError(
            400,
            "'status' must be one or more (comma-separated) of "
            f"{', '.join(values(BillingStatus))}.",
        )
    exported = _bool_arg("exported")
    filters = {
        name: _int_arg(name, 1, MAX_ID)
        for name in ("project", "period", "vendor", "commitment")
    }
    page, per_page = _page_args()
    query = (
        sa.select(Billing)
        .join(Billing.commitment)
        .options(
            joinedload(Billing.commitment).joinedload(Commitment.vendor),
            joinedload(Billing.commitment).joinedload(Commitment.project),
            joinedload(Billing.period),
        )
        .order_by(Billing.id.desc())
    )
    if statuses:
        query = query.where(Billing.status.in_(statuses))
    if exported is True:
        query = query.where(Billing.export_batch_id.is_not(None))
    elif exported is False:
        query = query.where(Billing.export_batch_id.is_(None))
    if filters["project"]:
        query = query.where(Commitment.project_id == filters["project"])
    if filters["vendor"]:
        query = query.where(Commitment.vendor_id == filters["vendor"])
    if filters["commitment"]:
        query = query.where(Billing.commitment_id == filters["commitment"])
    if filters["period"]:
        query = query.where(Billing.period_id == filters["period"])
    return jsonify(
        _listing("exports.api_billings", query, page, per_page, billing_summary)
    )


@bp.route("/api/v1/billings/<int:billing_id>")
@csrf.exempt
def api_billing(billing_id: int) -> Response:
    """One billing with its lines and totals."""
    # Eagerly loaded (lines with their SOV lines): no query per line.
    found = export_batches.load_billings([billing_id])
    if not found:
        raise ApiError(404, f"No billing with id {billing_id}.")
    return jsonify(billing_detail(found[0]))


def _batch_or_404(batch_id: int) -> ExportBatch:
    batch = db.session.scalar(
        sa.select(ExportBatch)
        .where(ExportBatch.id == batch_id)
        .options(selectinload(ExportBatch.items))
    )
    if batch is None:
        raise ApiError(404, f"No export batch with id {batch_id}.")
    return batch


@bp.route("/api/v1/batches")
@csrf.exempt
def api_batches() -> Response:
    """Export batches, newest first."""
    reversed_ = _bool_arg("reversed")
    page, per_page = _page_args()
    query = (
        sa.select(ExportBatch)
        .options(
            defer(ExportBatch.content),  # listing never loads the files
            selectinload(ExportBatch.items),
            joinedload(ExportBatch.created_by),
            joinedload(ExportBatch.reversed_by),
        )
        .order_by(ExportBatch.id.desc())
    )
    if reversed_ is True:
        query = query.where(ExportBatch.reversed_at.is_not(None))
    elif reversed_ is False:
        query = query.where(ExportBatch.reversed_at.is_(None))
    return jsonify(_listing("exports.api_batches", query, page, per_page, batch_json))


def _parse_batch_request() -> tuple[str, list[int], bool]:
    try:
        data = request.get_json(silent=True)
    except RecursionError:  # absurdly nested JSON: a 400, not a 500
        data = None
    if not isinstance(data, dict):
        raise ApiError(400, "Send a JSON object with Content-Type: application/json.")
    unknown = sorted(set(data) - {"format", "billing_ids", "include_vendors"})
    if unknown:
        raise ApiError(400, f"Unknown field(s): {', '.join(unknown)}.")
    fmt = data.get("format")
    if fmt not in values(ExportFormat):
        raise ApiError(
            400, f"'format' must be one of {', '.join(values(ExportFormat))}."
        )
    ids = data.get("billing_ids")
    if isinstance(ids, list):
        # JSON Schema's "integer" includes 7.0: take integral numbers as ids.
        ids = [
            int(i) if isinstance(i, float) and i.is_integer() and abs(i) < 2**53 else i
            for i in ids
        ]
    if (
        not isinstance(ids, list)
        or not ids
        or not all(isinstance(i, int) and not isinstance(i, bool) for i in ids)
        # Ids are 32-bit in the database: larger ones overflow the driver (a 500).
        or not all(0 < i < 2**31 for i in ids)
    ):
        raise ApiError(400, "'billing_ids' must be a non-empty list of billing ids.")
    if len(set(ids)) > export_batches.MAX_BATCH_BILLINGS:
        raise ApiError(
            400, f"A batch holds at most {export_batches.MAX_BATCH_BILLINGS} billings."
        )
    include_vendors = data.get("include_vendors", False)
    if not isinstance(include_vendors, bool):
        raise ApiError(400, "'include_vendors' must be true or false.")
    return fmt, ids, include_vendors


@bp.route("/api/v1/batches", methods=["POST"])
@csrf.exempt
def api_batch_create() -> tuple[Response, int, dict[str, str]]:
    """Create an export batch (finance and admin tokens)."""
    user = g.api_user
    if user.role not in export_batches.WRITE_ROLES:
        raise ApiError(403, "Only finance and admin tokens can create batches.")
    fmt, ids, include_vendors = _parse_batch_request()
    try:
        batch = export_batches.create_batch(
            user, fmt, ids, include_vendors=include_vendors
        )
    except export_batches.ExportForbidden as exc:
        db.session.rollback()
        raise ApiError(403, str(exc)) from exc
    except export_batches.UnknownBillings as exc:
        db.session.rollback()
        raise ApiError(400, str(exc), unknown_ids=exc.ids) from exc
    except export_batches.NotReady as exc:
        db.session.rollback()
        raise ApiError(
            409,
            str(exc).replace(" (missing ERP codes are listed on the page)", ""),
            problems=[
                {"billing_id": billing_id, "problems": found}
                for billing_id, found in sorted(exc.problems.items())
            ],
        ) from exc
    except export_batches.ExportConflict as exc:
        db.session.rollback()
        raise ApiError(409, str(exc)) from exc
    except export_batches.ExportError as exc:
        db.session.rollback()
        raise ApiError(400, str(exc)) from exc
    db.session.commit()
    batch = _batch_or_404(batch.id)
    return (
        jsonify(batch_json(batch)),
        201,
        {"Location": public_url("exports.api_batch", batch_id=batch.id)},
    )


@bp.route("/api/v1/batches/<int:batch_id>")
@csrf.exempt
def api_batch(batch_id: int) -> Response:
    """One export batch."""
    return jsonify(batch_json(_batch_or_404(batch_id)))


@bp.route("/api/v1/batches/<int:batch_id>/file")
@csrf.exempt
def api_batch_file(batch_id: int) -> Response:
    """The batch's stored bytes, exactly as made."""
    return send_batch_file(_batch_or_404(batch_id))


def send_batch_file(batch: ExportBatch) -> Response:
    """A download of the batch's stored bytes (the same bytes every time)."""
    import io

    response = send_file(
        io.BytesIO(batch.content),
        mimetype=batch.content_type,
        as_attachment=True,
        download_name=batch.filename,
        etag=batch.sha256,
        max_age=0,
    )
    # send_file appends "; charset=utf-8" to any text/ type: say the file's
    # own charset once (IIF files are windows-1252).
    response.headers["Content-Type"] = batch.content_type
    response.headers["X-Content-SHA256"] = batch.sha256
    response.headers["Cache-Control"] = "private, no-store"
    return response


__all__ = ["API_PREFIX", "guard", "send_batch_file"]
