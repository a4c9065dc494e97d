"""Reading the portal's forms: plain functions over ``request.form``.

Amounts stay text here; :mod:`portal.billing.billings` parses them with the one strict
parser (SPEC §5). Only the fields a contact may set are read: anything else a
form carries (status, approved amounts, commitment id…) is ignored.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from portal.billing import figures
from portal.billing.billings import BillingInput
from portal.models import Billing
from portal.validation import parse_id

MAX_EMAIL = 254
# Deliberately loose: one @, something on each side, a dot in the domain, no spaces.
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


def parse_email(text: str | None) -> tuple[str, str | None]:
    """(cleaned address, error message or None)."""
    email = (text or "").strip()
    if not email:
        return email, "Enter the email address the invitation was sent to."
    if len(email) > MAX_EMAIL or not _EMAIL.fullmatch(email):
        return email[:MAX_EMAIL], "Enter an email address like name@company.com."
    return email, None


def parse_int(text: str | None) -> int | None:
    """A positive database id from a form field, or None."""
    return parse_id(text)


def parse_version(form: Mapping[str, str]) -> int:
    """The billing version the page was loaded with (0 when missing: always stale)."""
    return parse_int(form.get("version")) or 0


def billing_input(billing: Billing, form: Mapping[str, str]) -> BillingInput:
    """The billing form as :class:`BillingInput`, for the billing's own lines only."""
    lines: dict[int, tuple[str | None, str | None]] = {}
    installed: dict[int, str | None] = {}
    # The commitment's billable lines (a change order approved since the draft
    # began adds one); ids of anything else in the form are never read.
    for info in figures.billable_sov_lines(billing.commitment):
        sov_id = info.line.id
        work = form.get(f"line-{sov_id}-work")
        materials = form.get(f"line-{sov_id}-materials")
        if form.get(f"line-{sov_id}-installed") is not None:
            installed[sov_id] = form.get(f"line-{sov_id}-installed")
        if work is None and materials is None:
            continue  # not on the page that was loaded: keep what is stored
        lines[sov_id] = (work, materials)
    released = None
    if billing.commitment.project.retainage_release_allowed:
        released = form.get("retainage_released")
    return BillingInput(
        lines=lines,
        vendor_invoice_number=form.get("vendor_invoice_number", ""),
        notes=form.get("notes", ""),
        retainage_released=released,
        installed=installed,
    )
