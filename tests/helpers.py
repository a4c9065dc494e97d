"""What several test files share: the SQL statement counter and the test world.

- ``counting``: the one SQL statement counter. Every query-count test (and the
  benchmark runner) uses it, so a statement counts the same way everywhere:
  every statement the engine sends to the database inside the block, as
  ``before_cursor_execute`` sees it, SAVEPOINT and RELEASE included (none of the
  counters it replaced left them out, and the thresholds were set on that count).
- ``build_world``: the one builder of a test world (staff users, a project,
  vendors with contacts, commitments with SOV lines and approved change orders,
  billing periods, a client contract), described by ``Sub`` / ``Period`` /
  ``Contract`` specs; by default SPEC §4's worked example. Options add what a
  suite needs on top: ``approved`` (billings 1 and 2 of the worked example),
  ``erp`` (the ERP codes the expected export files carry), more staff roles.
  The conftest fixtures (``world``, ``w``, ``example``...), the attack suite's
  worlds (tests/security/world.py) and the upstream scenario
  (tests/upstream/scenario.py) are all built with it.
- ``built``: run a builder in a short-lived app context (what fixtures do).
- ``bill``: a billing taken through the real workflow (create, save, submit,
  review, decide).

Single objects (a user, a period, an attachment...) are made by tests/factories.py.
Every date is explicit: from the ``today`` fixture / ``tests.clock.pinned_today()``
or a literal, never the real clock.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import TypeVar

import sqlalchemy as sa
from flask import Flask

from portal.billing import billings as wf
from portal.core.statuses import LineStatus, PeriodStatus, Role
from portal.extensions import db
from portal.models import (
    Billing,
    BillingPeriod,
    Commitment,
    ErpCostCode,
    ErpSettings,
    Project,
    User,
    Vendor,
)

from . import factories as f

T = TypeVar("T")


@contextmanager
def counting(target: Flask | sa.Engine) -> Iterator[list[str]]:
    """Every SQL statement sent to the database inside the block.

    ``target`` is an app (its ``db.engine`` is counted) or an engine.
    """
    if isinstance(target, Flask):
        with target.app_context():
            engine = db.engine
    else:
        engine = target
    statements: list[str] = []

    def before(conn, cursor, statement, *args) -> None:
        statements.append(statement)

    sa.event.listen(engine, "before_cursor_execute", before)
    try:
        yield statements
    finally:
        sa.event.remove(engine, "before_cursor_execute", before)


# ------------------------------------------------------------------ the world


def built(app: Flask, build: Callable[..., T], *args, **kwargs) -> T:
    """``build(*args, **kwargs)`` in a short-lived app context, its session
    removed after: no context stays pushed (Flask would reuse it for every
    test-client request and leak Flask-Login's user between requests)."""
    with app.app_context():
        out = build(*args, **kwargs)
        db.session.remove()
    return out


@dataclass(frozen=True)
class Sub:
    """One commitment of a world, with its vendor and the vendor's contacts.

    ``lines`` are (cost code, value); ``contacts`` (name, email), all on the
    commitment; ``change_orders`` approved ones as (line number, amount).
    """

    key: str
    number: str
    vendor: str
    lines: tuple[tuple[str, str], ...]
    contacts: tuple[tuple[str, str], ...] = ()
    work_pct: str = "10"
    materials_pct: str = "5"
    change_orders: tuple[tuple[int, str], ...] = ()


@dataclass(frozen=True)
class Period:
    """A billing period; ``end`` defaults to 28 days from ``start``."""

    start: date
    due: date
    end: date | None = None
    status: str = PeriodStatus.OPEN


@dataclass(frozen=True)
class Contract:
    """The project's client (head) contract: lines are (cost code, value)."""

    lines: tuple[tuple[str, str], ...]
    markup: str = "0"
    work_pct: str = "10"
    materials_pct: str = "10"


#: SPEC §4's worked example: L1 50,000; L2 30,000 (+CO-1 5,000); L3 20,000;
#: 10 % work / 5 % materials retainage, Casey's; and Olive's other commitment.
WORKED_EXAMPLE = (
    Sub(
        "electric",
        "SC-100",
        "Example Electric",
        (("26-100", "50000.00"), ("26-200", "30000.00"), ("26-300", "20000.00")),
        (("Casey Contact", "casey@example-electric.example"),),
        change_orders=((2, "5000.00"),),
    ),
    Sub(
        "other",
        "SC-200",
        "Other Vendor",
        (("03-300", "40000.00"),),
        (("Olive Other", "olive@other.example"),),
    ),
)


@dataclass
class World:
    """The ids of a built world (no ORM objects: they outlive no session).

    ``commitment_id`` / ``vendor_id`` / ``contact_id`` / ``line_ids`` are the
    first commitment's, ``other_*`` the second's; ``period1_id`` / ``period2_id``
    the first two periods. Suites add their own ids as attributes.
    """

    today: date
    admin_id: int
    project_id: int
    vendor_id: int
    contact_id: int | None
    commitment_id: int
    line_ids: list[int]
    period1_id: int
    commitments: dict[str, int] = field(default_factory=dict)
    staff: dict[str, int] = field(default_factory=dict)
    other_contact_id: int | None = None
    other_commitment_id: int | None = None
    period2_id: int | None = None
    finance_id: int | None = None
    viewer_id: int | None = None
    contract_id: int | None = None
    client_line_ids: list[int] = field(default_factory=list)
    billing1_id: int | None = None
    billing2_id: int | None = None
    billings: dict[str, int] = field(default_factory=dict)


#: Every staff role, admin first.
STAFF = tuple(r.value for r in Role)


def make_staff(roles: Sequence[str] = STAFF) -> dict[str, int]:
    """One active user per role, as {role: id} (flushed, not committed)."""
    return {role: f.make_user(role).id for role in roles}


def worked_example_periods(today: date, approved: bool = False) -> tuple[Period, ...]:
    """Period 1 of the worked example.

    Open, from the 1st of ``today``'s month and due ten days after ``today``
    (contacts may still bill); with ``approved``, March 2025 as SPEC §4 and the
    expected export files have it.
    """
    if approved:
        return (Period(date(2025, 3, 1), date(2025, 3, 25), end=date(2025, 3, 31)),)
    return (Period(today.replace(day=1), today + timedelta(days=10)),)


def build_world(
    today: date,
    *,
    project: Mapping[str, str] | None = None,
    commitments: Sequence[Sub] = WORKED_EXAMPLE,
    periods: Sequence[Period] | None = None,
    contract: Contract | None = None,
    staff: Sequence[str] = ("admin",),
    approved: bool = False,
    erp: bool = False,
) -> World:
    """Build a world in the database (needs an app context; commits).

    The defaults are SPEC §4's worked example with one admin. ``approved``
    takes the worked example's billings 1 and 2 through the workflow (billing 1
    approved in period 1, which is then closed; billing 2 approved as noted in
    period 2, April 2025); ``erp`` sets the ERP codes of the expected export
    files. ``staff`` lists the users' roles (the first is the admin who
    approves the change orders).
    """
    users = make_staff(staff)
    admin = db.session.get(User, users[staff[0]])
    proj = f.make_project(**(project or {"name": "Worked Example"}))
    made_contacts = []
    vendors = []
    for sub in commitments:
        vendor = f.make_vendor(name=sub.vendor)
        vendors.append(vendor)
        made_contacts.append(
            [f.make_contact(vendor, name=n, email=e) for n, e in sub.contacts]
        )
    made = []
    for sub, vendor, contacts in zip(commitments, vendors, made_contacts, strict=True):
        made.append(
            f.make_commitment(
                proj,
                vendor,
                list(sub.lines),
                contacts,
                work_pct=sub.work_pct,
                materials_pct=sub.materials_pct,
                number=sub.number,
            )
        )
    client = None
    if contract is not None:
        client = f.make_client_contract(
            proj,
            list(contract.lines),
            markup=contract.markup,
            work_pct=contract.work_pct,
            materials_pct=contract.materials_pct,
        )
    for sub, commitment in zip(commitments, made, strict=True):
        for line_number, amount in sub.change_orders:
            f.approve_change_order(
                commitment, commitment.sov_lines[line_number - 1], amount, admin
            )
    made_periods = [
        f.make_period(proj, n, start=p.start, due=p.due, end=p.end, status=p.status)
        for n, p in enumerate(periods or worked_example_periods(today, approved), 1)
    ]
    db.session.commit()
    # The first contact of the first / the second commitment, where it has one.
    lead = [contacts[0].id if contacts else None for contacts in made_contacts]
    world = World(
        today=today,
        admin_id=admin.id,
        project_id=proj.id,
        vendor_id=vendors[0].id,
        contact_id=lead[0],
        commitment_id=made[0].id,
        line_ids=[line.id for line in made[0].sov_lines],
        period1_id=made_periods[0].id,
        commitments={sub.key: c.id for sub, c in zip(commitments, made, strict=True)},
        staff=users,
        other_contact_id=lead[1] if len(lead) > 1 else None,
        other_commitment_id=made[1].id if len(made) > 1 else None,
        period2_id=made_periods[1].id if len(made_periods) > 1 else None,
        finance_id=users.get("finance"),
        viewer_id=users.get("viewer"),
        contract_id=client.id if client else None,
        client_line_ids=[line.id for line in client.lines] if client else [],
    )
    if approved:
        _approve_worked_example(world)
    if erp:
        _configure_erp(world)
    return world


# ------------------------------------------------------------------ billings


def bill(
    commitment: Commitment,
    period: BillingPeriod,
    actor,
    claimed: Mapping[int, tuple[str, ...]],
    approved: Mapping[int, tuple[str, ...]] | None = None,
    decide: str = "approve",
    *,
    invoice: str = "INV-{id}",
    notes: str = "",
    comment: str = "Approved as noted: work on site measured",
    review_all: bool = True,
) -> Billing:
    """A billing through the workflow: create, save, submit, review, decide.

    ``claimed`` / ``approved`` map SOV line numbers to (work, new materials
    stored[, stored materials installed]) text (SPEC §4: F carries).
    ``decide``: "approve", "hold" (pending owner approval), "review" (left
    under review) or "draft" (saved, not submitted). ``invoice`` is the
    vendor's invoice number ("{id}": the billing's). Lines in ``approved`` are
    approved as noted with ``comment``; the others as claimed (with
    ``review_all``; without it they are left to the approval).
    """
    billing = wf.create_billing(commitment, period, actor)
    by_number = {bl.sov_line.line_number: bl for bl in billing.lines}
    wf.save_billing(
        billing,
        actor,
        wf.BillingInput(
            lines={by_number[n].sov_line_id: (v[0], v[1]) for n, v in claimed.items()},
            vendor_invoice_number=invoice.format(id=billing.id),
            notes=notes,
            installed={
                by_number[n].sov_line_id: v[2] for n, v in claimed.items() if len(v) > 2
            },
        ),
        billing.version,
    )
    if decide == "draft":
        return billing
    wf.submit_billing(billing, actor, billing.version)
    if decide == "review":
        return billing
    noted = approved or {}
    reviews = {}
    for n, bl in by_number.items():
        if n not in noted and not review_all:
            continue
        work, materials, *rest = noted.get(
            n,
            (
                str(bl.claimed_work),
                str(bl.claimed_materials),
                str(bl.claimed_installed),
            ),
        )
        reviews[bl.id] = wf.LineReview(
            work,
            materials,
            LineStatus.APPROVED,
            comment if n in noted else "",
            approved_installed=rest[0] if rest else None,
        )
    if reviews:
        wf.review_lines(billing, actor, reviews, billing.version)
    if decide == "hold":
        wf.hold_for_owner(billing, actor, billing.version)
    else:
        wf.approve_billing(billing, actor, billing.version)
    return billing


def _approve_worked_example(world: World) -> None:
    """SPEC §4's billing 1 (approved; period 1 then closed) and billing 2
    (approved as noted, in a new period 2, April 2025)."""
    admin = db.session.get(User, world.admin_id)
    commitment = db.session.get(Commitment, world.commitment_id)
    period1 = db.session.get(BillingPeriod, world.period1_id)
    b1 = bill(
        commitment,
        period1,
        admin,
        {1: ("20000.00", "0"), 2: ("0", "6000.00")},
        invoice="EE-2001",
        review_all=False,
    )
    assert b1.status == "approved", b1.status
    period1.status = PeriodStatus.CLOSED
    db.session.flush()
    period2 = f.make_period(
        commitment.project,
        2,
        start=date(2025, 4, 1),
        end=date(2025, 4, 30),
        due=date(2025, 4, 25),
    )
    b2 = bill(
        commitment,
        period2,
        admin,
        # F carries (SPEC §4): 3,500.00 of L2's 6,000.00 installed, 2,500.00 left.
        {
            1: ("15000.00", "0"),
            2: ("4000.00", "0", "3500.00"),
            3: ("12345.67", "0"),
        },
        approved={3: ("10000.00", "0")},
        invoice="EE-2002",
        comment="Per site walk",
        review_all=False,
    )
    assert b2.status == "approved_as_noted", b2.status
    db.session.commit()
    world.billing1_id, world.billing2_id, world.period2_id = b1.id, b2.id, period2.id


def _configure_erp(world: World) -> None:
    """ERP codes for the worked example (the values the expected files carry)."""
    db.session.add(
        ErpSettings(
            id=1,
            ap_account="Accounts Payable",
            retainage_payable_account="Retainage Payable",
            default_expense_account="Job Costs:Subcontracts",
            default_sage_category="S",
            default_qb_class="Subcontract",
        )
    )
    codes = {
        "26-100": ("Job Costs:Electrical", "", ""),
        "26-200": ("", "", ""),
        "26-300": ("Job Costs:Switchgear", "M", "Equipment"),
    }
    db.session.add_all(
        ErpCostCode(
            cost_code=code,
            expense_account=account,
            sage_cost_code=code,
            sage_category=category,
            qb_class=qb_class,
        )
        for code, (account, category, qb_class) in codes.items()
    )
    vendor = db.session.get(Vendor, world.vendor_id)
    vendor.erp_vendor_code = "EXEL"
    vendor.address = "45 Volta Ave\nSpringfield, IL 62702"
    project = db.session.get(Project, world.project_id)
    project.number = "1024"
    project.erp_job_number = "1024"
    project.qb_customer_job = "Riverside Health:Worked Example"
    db.session.commit()


# ----------------------------------------------------------- page cache

#: A CSRF token input (its signature carries the second it was made).
CSRF_INPUT = re.compile(r'name="csrf_token" value="[^"]*"')


def cached_get(client, url: str) -> tuple[str | None, str]:
    """GET ``url`` (200): the page cache's header (hit/miss/off/None) and the page."""
    from portal.web import fragments

    response = client.get(url)
    assert response.status_code == 200, url
    return response.headers.get(fragments.HEADER), response.get_data(as_text=True)


def assert_no_token_cached(app: Flask) -> None:
    """No cached page holds a session's CSRF token: only the placeholder that
    each serve replaces with the token of its own session."""
    from portal.web import fragments

    for html in app.extensions["fragments"].values():
        values = set(re.findall(r'name="csrf_token" value="([^"]*)"', html))
        assert values <= {fragments.CSRF_PLACEHOLDER}, values


def check_cached(app: Flask, client, url: str) -> str:
    """GET (taking any flashed message), GET again (a hit from the page cache):
    the hit equals what a fresh render with empty caches gives (the page
    cache and the period dashboard's memo of billing figures)."""
    from portal.billing import dashboard

    cached_get(client, url)
    state, served = cached_get(client, url)
    assert state == "hit", url
    assert_no_token_cached(app)
    app.extensions["fragments"].clear()
    dashboard.clear_memo(app)
    state, fresh = cached_get(client, url)
    assert state == "miss", url
    assert CSRF_INPUT.sub("", served) == CSRF_INPUT.sub("", fresh), (
        f"stale page from the cache: {url}"
    )
    return served


def project_periods(project_id: int) -> list[BillingPeriod]:
    """A project's billing periods, in order (in an app context)."""
    return list(
        db.session.scalars(
            sa.select(BillingPeriod)
            .where(BillingPeriod.project_id == project_id)
            .order_by(BillingPeriod.sequence)
        )
    )


def committed(app: Flask, fn: Callable[[], T]) -> T:
    """``fn()`` in a short app context, committed."""
    with app.app_context():
        result = fn()
        db.session.commit()
        db.session.remove()
    return result
