"""The finance pages' forms and filters (no logic, just parsing).

Every POST form carries the CSRF token (CSRFProtect checks it app-wide). Each
form is a :class:`StrictForm`; the ERP settings grids build their classes with
:func:`build` (their fields follow the rows posted). The ERP codes, the reversal
reason and the token name are checked by the domain, whose field errors come
back beside the fields through ``form.add_errors``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

from portal.finance.builders import FORMATS
from portal.finance.erp import COST_CODE_FIELDS, SETTINGS_FIELDS
from portal.validation import parse_id
from portal.web.forms import (
    FlagField,
    IdField,
    IdListField,
    PostedTextField,
    StrictChoiceField,
    StrictDateField,
    StrictForm,
    build,
)

#: The most rows a settings grid reads (a page shows far fewer).
MAX_ROWS = 1000


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


class FiltersForm(StrictForm):
    """The ready-to-export page's filters, from the query (unknown values ignored)."""

    format = StrictChoiceField(choices=list(FORMATS), default="")
    project = IdField(required=False)
    period = IdField(required=False)
    vendor = IdField(required=False)


#: The batch list's "state" filter values.
BATCH_STATES = ("live", "reversed")


class BatchFiltersForm(StrictForm):
    """The batch list's filters, from the query (unknown values ignored)."""

    format = StrictChoiceField(choices=list(FORMATS), default="")
    state = StrictChoiceField(choices=BATCH_STATES, default="")
    since = StrictDateField(required=False)
    until = StrictDateField(required=False)


def read_batch_filters(args: Mapping[str, str]) -> dict[str, object]:
    """The batch list's filters that are set (format, state, since, until)."""
    form = BatchFiltersForm(formdata=args)
    form.validate()
    values = {
        "format": form.format.data,
        "state": form.state.data,
        "since": form.since.data,
        "until": form.until.data,
    }
    return {key: value for key, value in values.items() if value}


def read_filters(args: Mapping[str, str], default_format: str) -> Filters:
    """Filters from the query string; unknown values are ignored."""
    form = FiltersForm(formdata=args)
    return Filters(
        project_id=form.project.data,
        period_id=form.period.data,
        vendor_id=form.vendor.data,
        fmt=form.format.data or default_format,
    )


def query_page(args: Mapping[str, str]) -> int:
    """The ``page`` query argument (1 when missing or unreadable)."""
    return PageForm(formdata=args).page_number


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


class ReverseForm(StrictForm):
    """Reverse a batch: the reason (the domain requires and checks it)."""

    reason = PostedTextField()


class TokenForm(StrictForm):
    """Create an API token: its name (the domain checks it)."""

    name = PostedTextField()


class PageForm(StrictForm):
    """A settings grid's page number (1 when missing or unreadable)."""

    page = IdField(required=False)

    @property
    def page_number(self) -> int:
        return self.page.data or 1


class SettingsForm(StrictForm):
    """The ERP accounts form; the domain cleans and checks every code."""

    def texts(self) -> dict[str, str]:
        """Field name → text as typed, for the domain and to show again."""
        return {name: self[name].data for name in SETTINGS_FIELDS}


def settings_form() -> SettingsForm:
    """The ERP accounts form, read from the posted data."""
    cls = build(SettingsForm, {name: PostedTextField() for name in SETTINGS_FIELDS})
    return cls()


def _posted() -> Mapping[str, str]:
    """The posted fields' names (a grid's fields follow the rows posted)."""
    return StrictForm().values


class CostCodeForm(PageForm):
    """One page of cost-code mappings: rows ``cc-<i>-code`` + ``cc-<i>-<field>``."""

    row_count: ClassVar[int] = 0

    def rows(self) -> dict[str, dict[str, str]]:
        """{cost_code: {field: text}} as posted (a later duplicate code wins)."""
        rows: dict[str, dict[str, str]] = {}
        for index in range(self.row_count):
            code = self[f"cc-{index}-code"].data
            rows[code] = {
                name: self[f"cc-{index}-{name}"].data for name in COST_CODE_FIELDS
            }
        return rows


def cost_code_form() -> CostCodeForm:
    """The cost-code grid, with a field per posted row (the first 1000 rows)."""
    posted = _posted()
    count = 0
    while f"cc-{count}-code" in posted and count < MAX_ROWS:
        count += 1
    fields = {}
    for index in range(count):
        fields[f"cc-{index}-code"] = PostedTextField()
        for name in COST_CODE_FIELDS:
            fields[f"cc-{index}-{name}"] = PostedTextField()
    cls = build(CostCodeForm, fields)
    cls.row_count = count
    return cls()


class VendorCodeForm(PageForm):
    """One page of vendor codes: fields ``vendor-<id>``."""

    keys: ClassVar[dict[str, int]] = {}

    def codes(self) -> dict[int, str]:
        """{vendor_id: code as typed}."""
        return {vendor_id: self[key].data for key, vendor_id in self.keys.items()}


def vendor_code_form() -> VendorCodeForm:
    """The vendor grid, with a field per posted ``vendor-<id>``."""
    keys: dict[str, int] = {}
    for key in _posted():
        if key.startswith("vendor-"):
            vendor_id = positive_int(key.removeprefix("vendor-"))
            if vendor_id:
                keys[key] = vendor_id
    cls = build(VendorCodeForm, {key: PostedTextField() for key in keys})
    cls.keys = keys
    return cls()


class ProjectCodeForm(PageForm):
    """One page of project codes: ``project-<id>-job`` and ``project-<id>-qb``."""

    keys: ClassVar[dict[int, tuple[str, str]]] = {}

    def rows(self) -> dict[int, dict[str, str]]:
        """{project_id: {"erp_job_number": …, "qb_customer_job": …}} as typed."""
        return {
            project_id: {
                "erp_job_number": self[job].data,
                "qb_customer_job": self[qb].data,
            }
            for project_id, (job, qb) in self.keys.items()
        }


def project_code_form() -> ProjectCodeForm:
    """The project grid, with fields per posted ``project-<id>-job``."""
    keys: dict[int, tuple[str, str]] = {}
    for key in _posted():
        if not key.startswith("project-") or not key.endswith("-job"):
            continue
        project_id = positive_int(key.removeprefix("project-").removesuffix("-job"))
        if project_id:
            keys[project_id] = (key, f"project-{project_id}-qb")
    fields = {}
    for job, qb in keys.values():
        fields[job] = PostedTextField()
        fields[qb] = PostedTextField()
    cls = build(ProjectCodeForm, fields)
    cls.keys = keys
    return cls()
