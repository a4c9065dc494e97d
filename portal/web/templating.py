"""Template filters and globals: money, percentages, badges, terminology."""

from __future__ import annotations

from collections.abc import Collection
from decimal import Decimal
from enum import StrEnum
from typing import Any

from babel.numbers import format_currency, format_decimal
from flask import Flask, current_app, g
from markupsafe import Markup, escape

from portal import timeutil
from portal.accounts.auth import home_endpoint
from portal.core import billing_presentation, statuses, terms
from portal.core.statuses import ADMINS, AUDITORS, BADGE_COLOURS, READERS

LOCALES = {"USD": "en_US", "CAD": "en_CA"}


#: currency → (prefix, negative prefix, suffix) as Babel writes them, when the
#: locale groups with "," and uses "." (a page of 500 lines formats thousands of
#: amounts: Babel takes ~100 µs each, this ~2 µs, with the very same text).
_AFFIXES: dict[str, tuple[str, str, str] | None] = {}
_PROBE = "1,234.50"


def _affixes(currency: str) -> tuple[str, str, str] | None:
    if currency not in _AFFIXES:
        locale = LOCALES.get(currency, "en_US")
        positive = format_currency(Decimal("1234.50"), currency, locale=locale)
        negative = format_currency(Decimal("-1234.50"), currency, locale=locale)
        found = None
        if _PROBE in positive and _PROBE in negative:
            prefix, suffix = positive.split(_PROBE)
            neg_prefix, neg_suffix = negative.split(_PROBE)
            if suffix == neg_suffix:
                found = (prefix, neg_prefix, suffix)
        _AFFIXES[currency] = found
    return _AFFIXES[currency]


_CENT = Decimal("0.01")


def _exact_cents(value: Decimal) -> bool:
    """Finite with at most 2 decimals: formatting needs no rounding."""
    if value.same_quantum(_CENT):  # what Money columns and the engine give
        return True
    exponent = value.as_tuple().exponent
    return isinstance(exponent, int) and exponent >= -2


def money(value: Decimal | int | None, currency: str = "USD") -> str:
    """``$1,234.50`` in the project's currency (negative as ``-$1,234.50``)."""
    if value is None:
        return ""
    number = Decimal(value)
    currency = currency or "USD"
    affixes = _affixes(currency)
    if affixes is not None and _exact_cents(number):
        prefix, neg_prefix, suffix = affixes
        sign = neg_prefix if number.is_signed() else prefix
        return f"{sign}{abs(number):,.2f}{suffix}"
    return format_currency(number, currency, locale=LOCALES.get(currency, "en_US"))


def plain_amount(value: Decimal | int | None) -> str:
    """``1,234.50``: no currency symbol (form inputs)."""
    if value is None:
        return ""
    number = Decimal(value)
    if _exact_cents(number):
        return f"{number:,.2f}"  # what Babel's "#,##0.00" in en_US gives
    return format_decimal(number, format="#,##0.00", locale="en_US")


def percent(value: Decimal | int | None, places: int = 2) -> str:
    """``70.00 %`` style percentage, from a value already in percent."""
    if value is None:
        return ""
    quantum = Decimal(1).scaleb(-places)
    return f"{Decimal(value).quantize(quantum)}%"


def status_label(status: str | None) -> str:
    """``approved_as_noted`` → ``Approved as noted``."""
    if not status:
        return ""
    text = str(status).replace("_", " ")
    if text == "revise and resubmit":
        return "Revise & resubmit"
    return text[:1].upper() + text[1:]


def rendered(html: str) -> Markup:
    """HTML that a Jinja template rendered with autoescaping on, marked safe to
    insert into another template (a cached fragment). Callers pass only the
    output of ``render_template``, or that output with an attribute inserted
    from an integer (the vendor filter's ``selected``)."""
    # Bandit B704 (Markup on untrusted data) does not apply: every value in
    # the HTML went through the template's autoescape.
    return Markup(html)  # noqa: S704 - autoescaped template output  # nosec B704


def badge(status: str | None) -> Markup:
    """A Bootstrap badge with one colour per status."""
    colour = BADGE_COLOURS.get(str(status), "secondary")
    text_class = " text-dark" if colour in {"warning", "light", "info"} else ""
    if colour == "light":
        text_class += " border"  # visible on light backgrounds too
    # Plain concatenation with escape(): Markup.format costs ~10× more, and a
    # period dashboard shows a badge per commitment.
    # Bandit B704 (Markup on untrusted data) does not apply: colour and
    # text_class come from BADGE_COLOURS and the literals above, and the status
    # and its label are escaped.
    return Markup(  # noqa: S704 - values escaped or constant  # nosec B704
        f'<span class="badge text-bg-{colour}{text_class} status-{escape(status)}">'
        f"{escape(status_label(status))}</span>"
    )


def g702_lines(
    claimed: Any, approved: Any | None = None, project: Any | None = None
) -> list[billing_presentation.G702Line]:
    """The G702 lines of ``claimed`` (and ``approved``) totals in the project's words."""
    return billing_presentation.g702_lines(
        claimed, approved, dialect=current_dialect(project)
    )


def g703_totals(rows: Any) -> billing_presentation.G703Totals:
    """The G703 footer of sheet rows (or of line figures)."""
    return billing_presentation.g703_totals(getattr(r, "figures", r) for r in rows)


def current_dialect(project: Any | None = None) -> str:
    """The project's terminology, else the deployment's."""
    if project is not None and getattr(project, "terminology", None):
        return project.terminology
    override = g.get("terminology") if g else None
    return override or current_app.config.get("TERMINOLOGY", "us")


def term(key: str, project: Any | None = None) -> str:
    """A label from the terminology dictionary in force."""
    return terms.lookup(key, current_dialect(project))


#: Navigation per area: (label key or text, endpoint, roles). Links whose endpoint
#: does not exist (yet) are left out, so each area can grow on its own.
NAV: dict[str, list[tuple[str, str, Collection[str]]]] = {
    "staff": [
        ("Dashboard", "admin.index", READERS),
        ("Projects", "admin.projects", READERS),
        ("Vendors", "admin.vendors", READERS),
        ("Periods", "admin.periods", READERS),
        ("Review queue", "admin.review_queue", READERS),
        ("Billings", "admin.billings", READERS),
        ("Client_claims", "admin.claims_index", READERS),
        ("Exports", "exports.index", READERS),
        ("Audit log", "admin.audit_log", AUDITORS),
        ("Outbox", "admin.outbox", ADMINS),
        ("Users", "admin.users", ADMINS),
    ],
    "contact": [
        ("My_billings", "contact.index", ("contact",)),
    ],
}


def nav_links() -> list[tuple[str, str]]:
    """(label, endpoint) pairs for the signed-in account's navigation bar."""
    from flask_login import current_user

    if not current_user.is_authenticated:
        return []
    area = "contact" if current_user.is_contact else "staff"
    links = []
    for label, endpoint, roles in NAV[area]:
        if endpoint in current_app.view_functions and current_user.role in roles:
            text = term(label) if label in terms.US else label
            links.append((text, endpoint))
    return links


#: Every StrEnum of :mod:`portal.core.statuses`, by class name: templates compare
#: with ``BillingStatus.APPROVED`` rather than ``'approved'`` so a renamed or
#: removed status fails loudly instead of silently never matching.
STATUS_ENUMS: dict[str, type[StrEnum]] = {
    name: value
    for name, value in vars(statuses).items()
    if isinstance(value, type) and issubclass(value, StrEnum) and value is not StrEnum
}


def sentence(text: str | None) -> str:
    """``text`` ending in one full stop (a reason typed with its own "." or
    "!" is not given a second one: "for this vendor.." read wrong)."""
    text = (text or "").rstrip()
    return text if not text or text[-1] in ".!?" else text + "."


def portal_name() -> str:
    """What mails call the portal: the contractor's (``COMPANY_NAME``)."""
    company = (current_app.config.get("COMPANY_NAME") or "").strip()
    return f"the {company} billing portal" if company else "Progress Billings"


def when(value: Any, project: Any | None = None) -> str:
    """A time as every page shows it (issue 14 item 10): in the project's zone
    when the page is about one, else the contractor's ``TIME_ZONE``; labelled."""
    zone = getattr(project, "time_zone", None) or current_app.config.get("TIME_ZONE")
    return timeutil.display(value, zone)


def register(app: Flask) -> None:
    """Install the filters and globals."""
    app.jinja_env.globals.update(STATUS_ENUMS)
    app.jinja_env.globals["COUNTED_STATUSES"] = statuses.COUNTED_STATUSES
    app.add_template_filter(money, "money")
    app.add_template_filter(plain_amount, "amount")
    app.add_template_filter(percent, "pct")
    app.add_template_filter(status_label, "status_label")
    app.add_template_filter(badge, "badge")
    app.add_template_filter(sentence, "sentence")
    app.add_template_filter(when, "when")
    app.add_template_global(term, "term")
    app.add_template_global(portal_name, "portal_name")
    app.add_template_global(nav_links, "nav_links")
    app.add_template_global(home_endpoint, "home_endpoint")
    app.add_template_global(g702_lines, "g702_lines")
    app.add_template_global(g703_totals, "g703_totals")
    app.add_template_global(billing_presentation.period_phase, "period_phase")
    app.add_template_global(billing_presentation.period_past_due, "period_past_due")
    app.add_template_global(
        lambda: current_app.view_functions.keys(), "current_app_endpoints"
    )
