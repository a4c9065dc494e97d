"""Templates name statuses and roles through the enums of portal.core.statuses.

``templating.register`` exposes every StrEnum (``BillingStatus``, ``Role``, …) as
a Jinja global, so a template writes ``billing.status == BillingStatus.APPROVED``
rather than ``'approved'``: a renamed or removed status then fails at render time
(an undefined attribute) instead of a comparison that silently never matches.
The scan below keeps string literals from creeping back in.
"""

from __future__ import annotations

import re
from enum import StrEnum
from pathlib import Path

from portal.web.templating import STATUS_ENUMS

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"

#: Every value of every status enum ("approved", "admin", "iif", …).
ENUM_VALUES = frozenset(m.value for enum in STATUS_ENUMS.values() for m in enum)

_TAG = re.compile(r"\{[{%](.*?)[%}]\}", re.S)
_LIT = r"""(['"])(\w+)\1"""
#: Places a literal acts as a status: either side of == / !=, inside the
#: brackets of an ``in`` test or loop, as a dict key, as the argument of
#: ``equalto`` in select/rejectattr, and as a ``has_role`` argument.
_PATTERNS = [
    re.compile(r"(?:==|!=)\s*" + _LIT),
    re.compile(_LIT + r"\s*(?:==|!=)"),
    re.compile(r"""equalto['"]\s*,\s*""" + _LIT),
    re.compile(r"[{,]\s*" + _LIT + r"\s*:"),
]
_GROUPS = [
    re.compile(r"\bin\s*[(\[]([^)\]]*)[)\]]"),
    re.compile(r"\bhas_role\(([^)]*)\)"),
]


def literal_statuses(source: str) -> list[str]:
    """The status/role values written as string literals in comparisons of
    ``source`` (a template's text), in order of appearance."""
    found = []
    for tag in _TAG.finditer(source):
        expr = tag.group(1)
        for pattern in _PATTERNS:
            found += [m.group(2) for m in pattern.finditer(expr)]
        for group in _GROUPS:
            for m in group.finditer(expr):
                found += [lit.group(2) for lit in re.finditer(_LIT, m.group(1))]
    return [value for value in found if value in ENUM_VALUES]


def test_the_enums_are_all_exposed() -> None:
    assert {"BillingStatus", "LineStatus", "PeriodStatus", "ClaimStatus"} <= set(
        STATUS_ENUMS
    )
    assert {"CommitmentStatus", "ContractStatus", "ChangeOrderStatus"} <= set(
        STATUS_ENUMS
    )
    assert {"Role", "ExportFormat", "OutboxStatus"} <= set(STATUS_ENUMS)
    assert all(issubclass(e, StrEnum) for e in STATUS_ENUMS.values())


def test_the_scan_finds_literals() -> None:
    """The scan itself catches every form it looks for, and leaves alone
    literals that are no status and text outside Jinja tags."""
    source = """
    {% if billing.status == 'approved' %}{% endif %}
    {% if "void" != claim.status %}{% endif %}
    {% if b.status in ('draft', 'revise_and_resubmit') %}{% endif %}
    {% for s in ['open', 'closed'] %}{% endfor %}
    {{ {'pending': 'Pending'}[st] }}
    {{ claims|rejectattr('status', 'equalto', 'submitted')|list }}
    {% if current_user.has_role('admin') %}{% endif %}
    {% if filters.fmt == 'iif' %}{% endif %}
    {% if value == 'overdue' or reason == 'expired' %}{% endif %}
    {% if billing.status == BillingStatus.APPROVED %}{% endif %}
    <p>status == 'approved' in prose is not a comparison</p>
    """
    assert literal_statuses(source) == [
        "approved",
        "void",
        "draft",
        "revise_and_resubmit",
        "open",
        "closed",
        "pending",
        "submitted",
        "admin",
        "iif",
    ]


def test_no_template_compares_with_a_status_literal() -> None:
    offenders = {}
    for path in sorted(TEMPLATES.rglob("*.html")):
        found = literal_statuses(path.read_text(encoding="utf-8"))
        if found:
            offenders[str(path.relative_to(TEMPLATES))] = found
    assert not offenders, (
        "compare with the enums of portal.core.statuses (e.g. "
        f"BillingStatus.APPROVED), not string literals: {offenders}"
    )


def test_templates_render_with_the_enums(app) -> None:
    """Database values are plain strings: they equal the enum members, look
    up dicts keyed by them, and the members render as their values."""
    source = (
        "{% if status == BillingStatus.APPROVED %}approved{% endif %}"
        "|{% if status in (BillingStatus.DRAFT, BillingStatus.VOID) %}x{% endif %}"
        "|{% if role == Role.ADMIN %}admin{% endif %}"
        "|{{ {LineStatus.REVISE: 'Revise'}[line] }}"
        "|{% for s in PeriodStatus %}{{ s }}{{ s|status_label }} {% endfor %}"
        "|{{ BillingStatus.APPROVED_AS_NOTED|badge }}"
    )
    with app.app_context():
        html = app.jinja_env.from_string(source).render(
            status="approved", role="admin", line="revise"
        )
    parts = html.split("|")
    assert parts[:4] == ["approved", "", "admin", "Revise"]
    assert parts[4] == "openOpen closedClosed "
    assert "status-approved_as_noted" in parts[5]
    assert "Approved as noted" in parts[5]
