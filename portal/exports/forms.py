"""Reading the finance pages' forms and filters (no logic, just parsing).

Every POST form carries the CSRF token (CSRFProtect checks it app-wide). The
batch form is a :class:`StrictForm`; the ERP settings grids are still read by
the plain functions below (their fields depend on the rows shown).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from werkzeug.datastructures import MultiDict

from portal.finance.builders import FORMATS
from portal.finance.erp import COST_CODE_FIELDS, SETTINGS_FIELDS
from portal.validation import parse_id
from portal.web.forms import (
    FlagField,
    IdField,
    IdListField,
    StrictChoiceField,
    StrictForm,
)


def positive_int(raw: str | None) -> int | None:
    """A positive id (or page number) from a form or query value, else None."""
    return parse_id(raw)


@dataclass(frozen=True)
class Filters:
    """The ready-to-export page's filters."""

    project_id: int | None
    period_id: int | None
    vendor_id: int | None
    fmt: str

    def args(self) -> dict[str, object]:
        """As query arguments (for links and redirects)."""
        out: dict[str, object] = {"format": self.fmt}
        if self.project_id:
            out["project"] = self.project_id
        if self.period_id:
            out["period"] = self.period_id
        if self.vendor_id:
            out["vendor"] = self.vendor_id
        return out


def read_filters(args: Mapping[str, str], default_format: str) -> Filters:
    """Filters from the query string; unknown values are ignored."""
    fmt = args.get("format") or default_format
    if fmt not in FORMATS:
        fmt = default_format
    return Filters(
        project_id=positive_int(args.get("project")),
        period_id=positive_int(args.get("period")),
        vendor_id=positive_int(args.get("vendor")),
        fmt=fmt,
    )


class BatchCreateForm(StrictForm):
    """The "Create batch" form: format, selected billings, the IIF vendor list."""

    format = StrictChoiceField(choices=list(FORMATS))
    billing_id = IdListField()
    include_vendors = FlagField()
    # The ready page's filters, to return to it.
    f_project = IdField(required=False)
    f_period = IdField(required=False)
    f_vendor = IdField(required=False)

    @property
    def fmt(self) -> str | None:
        """The chosen format, or None when none (or no known one) was chosen."""
        return None if self.format.errors else self.format.data


def read_settings_form(form: MultiDict) -> dict[str, str]:
    """The ERP accounts form."""
    return {name: form.get(name, "") for name in SETTINGS_FIELDS}


def read_cost_code_form(form: MultiDict) -> dict[str, dict[str, str]]:
    """Rows ``cc-<i>-code`` + ``cc-<i>-<field>`` → {cost_code: {field: value}}."""
    rows: dict[str, dict[str, str]] = {}
    index = 0
    while f"cc-{index}-code" in form and index < 1000:
        code = form.get(f"cc-{index}-code", "")
        rows[code] = {
            name: form.get(f"cc-{index}-{name}", "") for name in COST_CODE_FIELDS
        }
        index += 1
    return rows


def read_vendor_form(form: MultiDict) -> dict[int, str]:
    """Fields ``vendor-<id>`` → {vendor_id: code}."""
    out: dict[int, str] = {}
    for key, value in form.items():
        if key.startswith("vendor-"):
            vendor_id = positive_int(key.removeprefix("vendor-"))
            if vendor_id:
                out[vendor_id] = value
    return out


def read_project_form(form: MultiDict) -> dict[int, dict[str, str]]:
    """Fields ``project-<id>-job`` / ``project-<id>-qb`` → {project_id: {...}}."""
    out: dict[int, dict[str, str]] = {}
    for key in form:
        if not key.startswith("project-") or not key.endswith("-job"):
            continue
        project_id = positive_int(key.removeprefix("project-").removesuffix("-job"))
        if project_id:
            out[project_id] = {
                "erp_job_number": form.get(key, ""),
                "qb_customer_job": form.get(f"project-{project_id}-qb", ""),
            }
    return out
