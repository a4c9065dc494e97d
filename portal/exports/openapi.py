"""The OpenAPI 3.1 document of the exports API (served at /exports/api/v1/openapi.json).

Its schemas are JSON Schema 2020-12, so tests validate real responses against
them with ``jsonschema``. Keep it in step with :mod:`portal.exports.api`.
"""

from __future__ import annotations

from typing import Any

from portal.core.statuses import BillingStatus, ExportFormat, values

MONEY = {
    "type": "string",
    "pattern": r"^-?[0-9]+\.[0-9]{2}$",
    "description": "A decimal amount with 2 places, as a string (never a float).",
    "examples": ["22775.00", "-3500.00"],
}
PERCENT = {
    "type": "string",
    "pattern": r"^-?[0-9]+\.[0-9]{2}$",
    "description": "A percentage with 2 places (70.00 means 70 %).",
}
DATE = {"type": "string", "format": "date"}
DATETIME = {"type": "string", "format": "date-time"}
NULLABLE_DATETIME = {"type": ["string", "null"], "format": "date-time"}


#: Ids are the database's integers: 1 … 2**31 - 1 (larger ones are a 400/404).
ID_SCHEMA: dict[str, Any] = {"type": "integer", "minimum": 1, "maximum": 2**31 - 1}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _obj(props: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": props,
        "required": list(props) if required is None else required,
        "additionalProperties": False,
    }


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": schema}},
    }


def _error(description: str) -> dict[str, Any]:
    return _json(_ref("Error"), description)


ERRORS_READ = {
    "400": _error("Bad request: a parameter is invalid."),
    "401": _error("No, unknown or revoked API token."),
    "403": _error("The token's user may not do this."),
}

_LINE_FIGURES = {
    "work_this_period": MONEY,
    "materials_stored": MONEY,
    "materials_new": MONEY,
    "materials_installed": MONEY,
}

SUMMARY_PROPS: dict[str, Any] = {
    "id": {"type": "integer"},
    "status": {"type": "string", "enum": values(BillingStatus)},
    "application_number": {"type": "integer"},
    "revision": {"type": "integer"},
    "vendor_invoice_number": {"type": "string"},
    "project": _ref("ProjectRef"),
    "commitment": _ref("CommitmentRef"),
    "vendor": _ref("VendorRef"),
    "period": _ref("PeriodRef"),
    "exported": {"type": "boolean"},
    "export_batch_id": {"type": ["integer", "null"]},
    "decided_at": NULLABLE_DATETIME,
    "current_payment_due": {
        "oneOf": [MONEY, {"type": "null"}],
        "description": "G702 line 8 of a decided billing; null before.",
    },
    "url": {"type": "string"},
}

SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "properties": {
            "error": {"type": "string"},
            "message": {"type": "string"},
            "problems": {
                "type": "array",
                "items": _obj(
                    {
                        "billing_id": {"type": "integer"},
                        "problems": {"type": "array", "items": {"type": "string"}},
                    }
                ),
            },
            "unknown_ids": {"type": "array", "items": {"type": "integer"}},
        },
        "required": ["error", "message"],
        "additionalProperties": False,
    },
    "Links": _obj(
        {
            "self": {"type": "string"},
            "next": {"type": ["string", "null"]},
            "prev": {"type": ["string", "null"]},
        }
    ),
    "ProjectRef": _obj(
        {
            "id": {"type": "integer"},
            "number": {"type": "string"},
            "name": {"type": "string"},
            "currency": {"type": "string", "enum": ["USD", "CAD"]},
            "erp_job_number": {"type": ["string", "null"]},
        }
    ),
    "CommitmentRef": _obj(
        {
            "id": {"type": "integer"},
            "number": {"type": "string"},
            "title": {"type": "string"},
            "kind": {"type": "string", "enum": ["subcontract", "purchase_order"]},
        }
    ),
    "VendorRef": _obj(
        {
            "id": {"type": "integer"},
            "name": {"type": "string"},
            "erp_vendor_code": {"type": ["string", "null"]},
        }
    ),
    "PeriodRef": _obj(
        {
            "id": {"type": "integer"},
            "sequence": {"type": "integer"},
            "start_date": DATE,
            "end_date": DATE,
            "billing_date": DATE,
        }
    ),
    "BillingSummary": _obj(SUMMARY_PROPS),
    "BillingLine": _obj(
        {
            "sov_line_id": {"type": "integer"},
            "line_number": {"type": "integer"},
            "cost_code": {"type": "string"},
            "description": {"type": "string"},
            "scheduled_value": MONEY,
            "previous_work": MONEY,
            "work_this_period": MONEY,
            "materials_stored": MONEY,
            "materials_previous": MONEY,
            "materials_new": MONEY,
            "materials_installed": MONEY,
            "total_completed_and_stored": MONEY,
            "percent_complete": PERCENT,
            "balance_to_finish": MONEY,
            "retainage": MONEY,
            "status": {"type": ["string", "null"]},
            "reviewer_comment": {"type": "string"},
            "claimed": _obj(_LINE_FIGURES),
            "approved": _obj(_LINE_FIGURES),
        }
    ),
    "Totals": _obj(
        {
            "original_contract_sum": MONEY,
            "net_change_by_change_orders": MONEY,
            "contract_sum_to_date": MONEY,
            "total_completed_and_stored": MONEY,
            "retainage": MONEY,
            "retainage_on_work": MONEY,
            "retainage_on_materials": MONEY,
            "retainage_released_to_date": MONEY,
            "total_earned_less_retainage": MONEY,
            "previous_certificates": MONEY,
            "current_payment_due": MONEY,
            "balance_to_finish_including_retainage": MONEY,
            "percent_complete": PERCENT,
        }
    ),
    "BillingDetail": _obj(
        {
            **SUMMARY_PROPS,
            "retainage_released": MONEY,
            "figures_frozen": {
                "type": "boolean",
                "description": "True once decided: the stored approved figures.",
            },
            "lines": {"type": "array", "items": _ref("BillingLine")},
            "totals": _ref("Totals"),
        }
    ),
    "BillingList": _obj(
        {
            "items": {"type": "array", "items": _ref("BillingSummary")},
            "page": {"type": "integer", "minimum": 1},
            "per_page": {"type": "integer", "minimum": 1, "maximum": 100},
            "total": {"type": "integer", "minimum": 0},
            "pages": {"type": "integer", "minimum": 0},
            "links": _ref("Links"),
        }
    ),
    "UserRef": _obj({"id": {"type": "integer"}, "name": {"type": "string"}}),
    "Batch": _obj(
        {
            "id": {"type": "integer"},
            "format": {"type": "string", "enum": values(ExportFormat)},
            "status": {"type": "string", "enum": ["live", "reversed"]},
            "filename": {"type": "string"},
            "content_type": {"type": "string"},
            "size": {"type": "integer"},
            "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
            "billing_count": {"type": "integer"},
            "billing_ids": {"type": "array", "items": {"type": "integer"}},
            "total_amount": MONEY,
            "created_at": DATETIME,
            "created_by": _ref("UserRef"),
            "reversed_at": NULLABLE_DATETIME,
            "reversed_by": {"oneOf": [_ref("UserRef"), {"type": "null"}]},
            "reverse_reason": {"type": "string"},
            "url": {"type": "string"},
            "file_url": {"type": "string"},
        }
    ),
    "BatchList": _obj(
        {
            "items": {"type": "array", "items": _ref("Batch")},
            "page": {"type": "integer", "minimum": 1},
            "per_page": {"type": "integer", "minimum": 1, "maximum": 100},
            "total": {"type": "integer", "minimum": 0},
            "pages": {"type": "integer", "minimum": 0},
            "links": _ref("Links"),
        }
    ),
    "BatchCreate": {
        "type": "object",
        "properties": {
            "format": {"type": "string", "enum": values(ExportFormat)},
            "billing_ids": {
                "type": "array",
                "items": ID_SCHEMA,
                "minItems": 1,
                "maxItems": 1000,
            },
            "include_vendors": {
                "type": "boolean",
                "description": "IIF only: add a !VEND list before the bills.",
            },
        },
        "required": ["format", "billing_ids"],
        "additionalProperties": False,
    },
}

PAGE_PARAMS = [
    {
        "name": "page",
        "in": "query",
        "schema": {"type": "integer", "minimum": 1, "default": 1},
    },
    {
        "name": "per_page",
        "in": "query",
        "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 25},
    },
]


def _id_param(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": ID_SCHEMA}


def _id_filter(name: str, what: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "description": f"Only billings of this {what} (its id).",
        "schema": ID_SCHEMA,
    }


#: What a batch file is served as, per format (builders.FORMATS).
FILE_MEDIA_TYPES = [
    "text/plain; charset=windows-1252",
    "text/csv; charset=utf-8",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/octet-stream",
]

PATHS: dict[str, Any] = {
    "/openapi.json": {
        "get": {
            "operationId": "getOpenApi",
            "summary": "This document (no token needed)",
            "security": [],
            "responses": {"200": {"description": "The OpenAPI document."}},
        }
    },
    "/billings": {
        "get": {
            "operationId": "listBillings",
            "summary": "Billings, newest period first, with filters",
            "parameters": [
                {
                    "name": "status",
                    "in": "query",
                    "description": (
                        "One status or several, comma-separated: "
                        "`approved,approved_as_noted` lists every exportable "
                        "billing (with `exported=false`: the ones not exported yet)."
                    ),
                    "schema": {
                        "type": "string",
                        "pattern": "^(" + "|".join(values(BillingStatus)) + ")"
                        "(,(" + "|".join(values(BillingStatus)) + "))*$",
                    },
                },
                {
                    "name": "exported",
                    "in": "query",
                    "description": "false: not in a live export batch yet.",
                    "schema": {"type": "string", "enum": ["true", "false"]},
                },
                _id_filter("project", "project"),
                _id_filter("period", "billing period"),
                _id_filter("vendor", "vendor"),
                _id_filter("commitment", "commitment"),
                *PAGE_PARAMS,
            ],
            "responses": {
                "200": _json(_ref("BillingList"), "A page of billings."),
                **ERRORS_READ,
            },
        }
    },
    "/billings/{billing_id}": {
        "get": {
            "operationId": "getBilling",
            "summary": "A billing with its G703 lines and G702 totals",
            "parameters": [_id_param("billing_id")],
            "responses": {
                "200": _json(_ref("BillingDetail"), "The billing."),
                **ERRORS_READ,
                "404": _error("No such billing."),
            },
        }
    },
    "/batches": {
        "get": {
            "operationId": "listBatches",
            "summary": "Export batches, newest first",
            "parameters": [
                {
                    "name": "reversed",
                    "in": "query",
                    "schema": {"type": "string", "enum": ["true", "false"]},
                },
                *PAGE_PARAMS,
            ],
            "responses": {
                "200": _json(_ref("BatchList"), "A page of batches."),
                **ERRORS_READ,
            },
        },
        "post": {
            "operationId": "createBatch",
            "summary": "Export approved, unexported billings as one batch",
            "description": (
                "All or nothing: every billing must be approved (or approved as "
                "noted), not in a live batch, and have the ERP codes the format "
                "needs. Finance and admin tokens only."
            ),
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": _ref("BatchCreate")}},
            },
            "responses": {
                "201": _json(_ref("Batch"), "The batch was created."),
                **ERRORS_READ,
                "409": _error(
                    "A billing is not approved, already exported, exported "
                    "meanwhile, or missing ERP codes (see problems)."
                ),
            },
        },
    },
    "/batches/{batch_id}": {
        "get": {
            "operationId": "getBatch",
            "summary": "One export batch",
            "parameters": [_id_param("batch_id")],
            "responses": {
                "200": _json(_ref("Batch"), "The batch."),
                **ERRORS_READ,
                "404": _error("No such batch."),
            },
        }
    },
    "/batches/{batch_id}/file": {
        "get": {
            "operationId": "getBatchFile",
            "summary": "The batch's file: the exact bytes stored when it was made",
            "parameters": [_id_param("batch_id")],
            "responses": {
                "200": {
                    "description": "The file (IIF, Sage 300 CRE text, CSV or XLSX).",
                    "content": {
                        media: {"schema": {"type": "string", "contentMediaType": media}}
                        for media in FILE_MEDIA_TYPES
                    },
                },
                **ERRORS_READ,
                "404": _error("No such batch."),
            },
        }
    },
}


def document(server_url: str = "/exports/api/v1") -> dict[str, Any]:
    """The OpenAPI document."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Progress Billings exports API",
            "version": "1.0.0",
            "description": (
                "Read billings with their G702/G703 figures and create, list and "
                "download export batches. Authenticate with a personal API token "
                "(Exports → API tokens) sent as `Authorization: Bearer <token>`. "
                "Amounts are decimal strings with 2 places, never floats. Errors "
                "are JSON objects with `error` and `message`."
            ),
        },
        "servers": [{"url": server_url}],
        "security": [{"bearerAuth": []}],
        "paths": PATHS,
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer"},
            },
        },
    }
