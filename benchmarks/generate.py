"""Generate a large, realistic project for the benchmarks (SPEC §11).

Default size: 1,000 commitments of 20 SOV lines each (two of them with 500 and
100 lines), 24 periods of approved history, an open 25th period in full swing,
5,000 contacts, a client contract with its claims, and every approved history
billing but the last period's exported. Usage::

    python -m benchmarks.generate --database-url sqlite:////tmp/bench.db --reset
    python -m benchmarks.generate \
        --database-url postgresql+psycopg://postgres@127.0.0.1:5432/bench_pb --reset
    python -m benchmarks.generate --database-url ... --scale 0.1   # smaller

The rows are written with bulk ``INSERT``s (executemany) and explicit ids. They
keep every rule of the model: application numbers 1, 2, 3… in period order, one
live billing per commitment and period, G never above C, approved billings'
frozen figures computed by the money engine exactly as ``figures.freeze`` would
(D from the earlier approved lines, line 7 from the previous billing), and every
approved billing exportable in every format. Export batches and upstream claims
of the history are made with the product's own domain functions
(``export_batches.create_batch``, ``upstream.generate_claim``/``submit_claim``/
``approve_claim``), so their bytes and figures are the real ones.
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from portal import create_app
from portal.accounts.api_tokens import hash_token
from portal.accounts.passwords import hash_password
from portal.billing import figures
from portal.core import money
from portal.extensions import db
from portal.models import (
    ApiToken,
    AuditEvent,
    Billing,
    BillingLine,
    BillingPeriod,
    ChangeOrder,
    ChangeOrderItem,
    ClientContract,
    ClientSovLine,
    Comment,
    Commitment,
    Contact,
    CostCodeMapping,
    ErpCostCode,
    ErpSettings,
    Invitation,
    LoginLink,
    OutboxMessage,
    Project,
    RevisionSnapshot,
    SovLine,
    User,
    Vendor,
    commitment_contacts,
)

PASSWORD = "bench-password-2024"  # noqa: S105 - a benchmark database's fixed password
ADMIN_EMAIL = "admin1@bench.example"
FINANCE_EMAIL = "finance1@bench.example"
API_TOKEN = "pbt_benchmark-token-not-a-secret-0000000000000"  # noqa: S105
PROJECT_NUMBER = "BT-1000"
BIG_PREFIX = "SC-L"  # commitments with many lines: SC-L500, SC-L100
CHUNK = 5000

#: (cost code, description, share of the client contract); the last code has no
#: client-contract line (unmapped) and the one before it is mapped by hand.
COST_CODES = [
    ("01-100", "General requirements"),
    ("02-400", "Demolition"),
    ("03-300", "Cast-in-place concrete"),
    ("04-200", "Unit masonry"),
    ("05-120", "Structural steel"),
    ("05-500", "Metal fabrications"),
    ("06-100", "Rough carpentry"),
    ("07-200", "Thermal protection"),
    ("07-500", "Membrane roofing"),
    ("08-100", "Metal doors and frames"),
    ("08-400", "Entrances and storefronts"),
    ("09-200", "Plaster and gypsum board"),
    ("09-300", "Tiling"),
    ("09-600", "Flooring"),
    ("09-900", "Painting"),
    ("10-100", "Visual display units"),
    ("11-400", "Food service equipment"),
    ("12-300", "Casework"),
    ("14-200", "Elevators"),
    ("21-100", "Fire suppression"),
    ("22-100", "Plumbing piping"),
    ("22-400", "Plumbing fixtures"),
    ("23-300", "HVAC air distribution"),
    ("23-600", "Central cooling"),
    ("23-700", "Central HVAC equipment"),
    ("25-100", "Building automation"),
    ("26-050", "Electrical basic materials"),
    ("26-100", "Medium-voltage distribution"),
    ("26-200", "Low-voltage distribution"),
    ("26-500", "Lighting"),
    ("27-100", "Structured cabling"),
    ("28-300", "Fire detection and alarm"),
    ("31-200", "Earth moving"),
    ("32-100", "Paving"),
    ("32-900", "Planting"),
    ("33-100", "Water utilities"),
    ("33-300", "Sanitary sewerage"),
    ("33-400", "Storm drainage"),
    ("26-999", "Temporary power (mapped to 26-200)"),
    ("01-999", "Owner allowance (not on the head contract)"),
]
MAPPED_CODE = ("26-999", "26-200")
#: The open period's states, cycled over the regular commitments: every state
#: comes once first (so a small world has them all), then SPEC's usual mix of
#: 40 % under review, 15 % drafts, 10 % approved, and commitments yet to bill.
CURRENT_STATES = [
    "under_review",
    "draft",
    "revise_and_resubmit",
    "pending_owner_approval",
    "approved",
    "accepted",
    "invited",
    "declined",
    "not_invited",
    *["under_review"] * 7,
    "draft",
    "draft",
    "approved",
    "accepted",
]
UNMAPPED_CODE = "01-999"

FIRST = (
    "Alex Blake Casey Dana Eli Frankie Gale Harper Indy Jules Kai Lee Morgan".split()
)
LAST = (
    "Nguyen Smith Garcia Chen Patel Okafor Rossi Novak Silva Larsen Kim Haddad".split()
)
TRADES = "Electric Mechanical Plumbing Concrete Steel Glazing Drywall Roofing".split()


@dataclass(frozen=True)
class Size:
    """How much to generate."""

    commitments: int = 1000
    lines: int = 20
    periods: int = 24  # periods of approved history (one more is open)
    contacts: int = 5000
    big_lines: tuple[int, ...] = (500, 100)
    export_history: bool = True
    claim_history: bool = True

    def scaled(self, factor: float) -> Size:
        """Commitments and contacts times ``factor`` (periods and lines stay)."""
        return dataclasses.replace(
            self,
            commitments=max(len(self.big_lines) + 2, round(self.commitments * factor)),
            contacts=max(4, round(self.contacts * factor)),
        )


def cents(n: int) -> Decimal:
    """Integer cents as a Money Decimal."""
    return Decimal(n).scaleb(-2)


def pct(n: int | str) -> Decimal:
    return Decimal(n).quantize(Decimal("0.0001"))


class Ids:
    """Explicit primary keys, so rows can point at each other before the insert."""

    def __init__(self) -> None:
        self.next: dict[str, int] = {}

    def take(self, table: str) -> int:
        value = self.next.get(table, 1)
        self.next[table] = value + 1
        return value


class Writer:
    """Collects rows per table and writes them with chunked executemany."""

    def __init__(self) -> None:
        self.rows: dict[Any, list[dict[str, Any]]] = {}
        self.order: list[Any] = []
        self.count = 0

    def add(self, table: Any, row: dict[str, Any]) -> None:
        if table not in self.rows:
            self.rows[table] = []
            self.order.append(table)
        self.rows[table].append(row)

    def flush(self) -> None:
        """Insert everything collected, parents before children."""
        for table in [t for t in db.metadata.sorted_tables if t in self.rows]:
            rows = self.rows[table]
            json_cols = {c.name for c in table.columns if isinstance(c.type, sa.JSON)}
            groups: dict[frozenset[str], list[dict[str, Any]]] = {}
            for row in rows:
                # Leave JSON columns out when None: SQL NULL, not JSON 'null'.
                clean = {
                    k: v for k, v in row.items() if not (k in json_cols and v is None)
                }
                groups.setdefault(frozenset(clean), []).append(clean)
            for group in groups.values():
                for start in range(0, len(group), CHUNK):
                    db.session.execute(table.insert(), group[start : start + CHUNK])
            self.count += len(rows)
        self.rows.clear()
        self.order.clear()


def _t(model: Any) -> sa.Table:
    return model.__table__


# --------------------------------------------------------------- the model


@dataclass
class LinePlan:
    id: int
    number: int
    cost_code: str
    description: str
    original: int  # cents
    change_orders: int = 0
    change_order_id: int | None = None

    @property
    def scheduled(self) -> int:
        return self.original + self.change_orders


@dataclass
class CommitmentPlan:
    id: int
    number: str
    vendor_id: int
    contact_ids: list[int]
    work_pct: int
    materials_pct: int
    lines: list[LinePlan]


def _when(day: date, hour: int = 15, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)


def _month_start(day: date, shift: int) -> date:
    index = day.year * 12 + day.month - 1 + shift
    return date(index // 12, index % 12 + 1, 1)


def _installed(
    stored_before: dict[int, int], amounts: dict[int, tuple[int, int]]
) -> dict[int, int]:
    """Stored materials installed this period (cents): a line billed again
    installs what it had stored, as far as its work this period goes."""
    return {
        sov_id: min(stored_before[sov_id], work)
        for sov_id, (work, _) in amounts.items()
        if stored_before.get(sov_id, 0) > 0 and work > 0
    }


def _figures(
    plan: CommitmentPlan,
    previous: dict[int, int],
    amounts: dict[int, tuple[int, int]],
    previous_certificates: Decimal,
    stored_before: dict[int, int],
    installed: dict[int, int],
) -> money.BillingFigures:
    """The money engine's figures, as figures.compute would produce them (F
    carried from the previous billing's ``stored_before``)."""
    inputs = [
        money.LineInput(
            original_value=cents(line.original),
            change_orders=cents(line.change_orders),
            previous_work=cents(previous.get(line.id, 0)),
            work_this_period=cents(amounts.get(line.id, (0, 0))[0]),
            materials_stored=cents(amounts.get(line.id, (0, 0))[1]),
            materials_previous=cents(stored_before.get(line.id, 0)),
            materials_installed=cents(installed.get(line.id, 0)),
        )
        for line in plan.lines
    ]
    return money.compute_billing(
        inputs,
        work_retainage_pct=pct(plan.work_pct),
        materials_retainage_pct=pct(plan.materials_pct),
        retainage_released_to_date=money.ZERO,
        previous_certificates=previous_certificates,
    )


def _frozen(
    plan: CommitmentPlan,
    figs: money.BillingFigures,
    claimed: money.BillingFigures,
) -> dict[str, Any]:
    """The approved billing's JSON, built by the product's own ``freeze``
    serialisation from the figures and the SOV they were computed on."""
    return figures.frozen_json(
        figs,
        claimed,
        [
            figures.SovView(
                id=line.id,
                line_number=line.number,
                cost_code=line.cost_code,
                description=line.description,
                original_value=cents(line.original),
                change_orders=cents(line.change_orders),
            )
            for line in plan.lines
        ],
    )


def _stored_after(figs: money.BillingFigures, plan: CommitmentPlan) -> dict[int, int]:
    """F per line (cents) after a billing: what the next one carries."""
    return {
        line.id: int(f.materials_stored * 100)
        for line, f in zip(plan.lines, figs.lines, strict=True)
        if f.materials_stored
    }


class Generator:
    """Builds the rows; see the module docstring."""

    def __init__(self, size: Size, seed: int = 2024, today: date | None = None):
        self.size = size
        self.rng = random.Random(seed)
        self.ids = Ids()
        self.w = Writer()
        self.today = today or datetime.now(UTC).date()
        self.first_month = _month_start(self.today, -size.periods)
        self.log_started = time.perf_counter()

    def log(self, message: str) -> None:
        elapsed = time.perf_counter() - self.log_started
        print(f"[{elapsed:7.1f}s] {message}", file=sys.stderr, flush=True)

    # ------------------------------------------------------------ people

    def people(self) -> None:
        """Users, an API token, ERP settings."""
        hashed = hash_password(PASSWORD)
        self.admins: list[int] = []
        created = _when(_month_start(self.first_month, -2), 9)
        for role, n in (("admin", 4), ("finance", 2), ("viewer", 1)):
            for i in range(1, n + 1):
                uid = self.ids.take("users")
                self.w.add(
                    _t(User),
                    {
                        "id": uid,
                        "email": f"{role}{i}@bench.example",
                        "name": f"{role.title()} {LAST[i % len(LAST)]}",
                        "password_hash": hashed,
                        "role": role,
                        "active": True,
                        "session_version": 1,
                        "failed_logins": 0,
                        "created_at": created,
                    },
                )
                if role == "admin":
                    self.admins.append(uid)
                if role == "finance" and i == 1:
                    self.finance_id = uid
        self.w.add(
            _t(ApiToken),
            {
                "id": self.ids.take("api_tokens"),
                "user_id": self.finance_id,
                "name": "Benchmark ERP connector",
                "token_hash": hash_token(API_TOKEN),
                "prefix": API_TOKEN[:12],
                "created_at": created,
            },
        )
        self.w.add(
            _t(ErpSettings),
            {
                "id": 1,
                "ap_account": "2000-00",
                "retainage_payable_account": "2050-00",
                "default_expense_account": "5000-00",
                "default_sage_category": "S",
                "default_qb_class": "Construction",
                "updated_at": created,
            },
        )
        for i, (code, _) in enumerate(COST_CODES, start=1):
            self.w.add(
                _t(ErpCostCode),
                {
                    "id": self.ids.take("erp_cost_codes"),
                    "cost_code": code,
                    "expense_account": f"5{i:03d}-00",
                    "sage_cost_code": code.replace("-", ""),
                    "sage_category": "S",
                    "qb_class": f"Div {code[:2]}",
                },
            )

    # ------------------------------------------------------------ contracts

    def project(self) -> None:
        """The project, its vendors and contacts, commitments, SOV, change orders."""
        size = self.size
        created = _when(_month_start(self.first_month, -1), 9)
        self.project_id = self.ids.take("projects")
        self.w.add(
            _t(Project),
            {
                "id": self.project_id,
                "number": PROJECT_NUMBER,
                "name": "Harbour Tower",
                "currency": "USD",
                "address": "1 Harbour Way\nSeattle, WA 98101",
                "time_zone": "America/Los_Angeles",
                "overbilling_allowed": False,
                "late_submissions_allowed": False,
                "retainage_release_allowed": False,
                "default_work_retainage_pct": pct(10),
                "default_materials_retainage_pct": pct(5),
                "terminology": None,
                "erp_job_number": "J1000",
                "qb_customer_job": "Harbour Dev:Harbour Tower",
                "created_at": created,
            },
        )
        vendors = max(len(size.big_lines) + 1, size.commitments // 2)
        per_vendor = max(2, size.contacts // vendors)
        self.vendor_contacts: dict[int, list[int]] = {}
        self.contact_names: dict[int, tuple[str, str]] = {}
        made = 0
        for v in range(1, vendors + 1):
            vid = self.ids.take("vendors")
            trade = TRADES[v % len(TRADES)]
            self.w.add(
                _t(Vendor),
                {
                    "id": vid,
                    "name": f"{LAST[v % len(LAST)]} {trade} {v:04d} Inc.",
                    "address": f"{100 + v} Industrial Rd\nTacoma, WA 98402",
                    "erp_vendor_code": f"V{v:05d}",
                    "created_at": created,
                },
            )
            ids = []
            count = per_vendor if v < vendors else max(2, size.contacts - made)
            for i in range(count):
                cid = self.ids.take("contacts")
                name = f"{FIRST[(v + i) % len(FIRST)]} {LAST[(v * 7 + i) % len(LAST)]}"
                email = f"c{cid}.{name.split()[0].lower()}@vendor{v:04d}.example"
                self.w.add(
                    _t(Contact),
                    {
                        "id": cid,
                        "vendor_id": vid,
                        "name": name,
                        "email": email,
                        "phone": f"+1 206 555 {cid % 10000:04d}",
                        "active": i != count - 1 or count < 3,  # a few left
                        "token_version": 1,
                        "created_at": created,
                    },
                )
                self.contact_names[cid] = (name, email)
                ids.append(cid)
            made += count
            self.vendor_contacts[vid] = ids
        vendor_ids = list(self.vendor_contacts)
        self.commitments: list[CommitmentPlan] = []
        regular = size.commitments - len(size.big_lines)
        codes = [code for code, _ in COST_CODES]
        descriptions = dict(COST_CODES)
        for n in range(1, size.commitments + 1):
            mid = self.ids.take("commitments")
            big = n > regular
            if big:
                line_count = size.big_lines[n - regular - 1]
                number = f"{BIG_PREFIX}{line_count}"
                vid = vendor_ids[-1 - (n - regular - 1)]
            else:
                line_count = size.lines
                number = f"SC-{n:04d}"
                vid = vendor_ids[(n - 1) % (len(vendor_ids) - len(size.big_lines))]
            work_pct, materials_pct = (10, 5) if n % 4 else (5, 0)
            plan = CommitmentPlan(
                id=mid,
                number=number,
                vendor_id=vid,
                contact_ids=self.vendor_contacts[vid][: 2 if big else 1 + n % 2],
                work_pct=work_pct,
                materials_pct=materials_pct,
                lines=[],
            )
            self.w.add(
                _t(Commitment),
                {
                    "id": mid,
                    "project_id": self.project_id,
                    "vendor_id": vid,
                    "kind": "purchase_order" if n % 10 == 0 else "subcontract",
                    "number": number,
                    "title": f"{descriptions[codes[n % len(codes)]]} package {n}",
                    "status": "approved",
                    "work_retainage_pct": pct(work_pct),
                    "materials_retainage_pct": pct(materials_pct),
                    "created_at": created,
                },
            )
            for cid in plan.contact_ids:
                self.w.add(
                    commitment_contacts, {"commitment_id": mid, "contact_id": cid}
                )
            start = self.rng.randrange(len(codes))
            for i in range(1, line_count + 1):
                code = codes[(start + i) % len(codes)]
                plan.lines.append(
                    LinePlan(
                        id=self.ids.take("sov_lines"),
                        number=i,
                        cost_code=code,
                        description=f"{descriptions[code]} – part {i}",
                        original=self.rng.randrange(5_000, 250_000) * 100,
                    )
                )
            co_lines = []
            if n % 5 == 0:  # an approved change order adding to line 1 and a line
                co_id = self.ids.take("change_orders")
                self.w.add(
                    _t(ChangeOrder),
                    {
                        "id": co_id,
                        "commitment_id": mid,
                        "number": "CO-001",
                        "title": "Added scope",
                        "status": "approved",
                        "approved_at": created,
                        "approved_by_id": self.admins[0],
                        "created_at": created,
                    },
                )
                added = LinePlan(
                    id=self.ids.take("sov_lines"),
                    number=line_count + 1,
                    cost_code=codes[start % len(codes)],
                    description="Added by CO-001",
                    original=0,
                    change_order_id=co_id,
                )
                plan.lines.append(added)
                for target, amount in ((plan.lines[0], 1_500_000), (added, 2_000_000)):
                    target.change_orders += amount
                    co_lines.append(
                        {
                            "id": self.ids.take("change_order_items"),
                            "change_order_id": co_id,
                            "sov_line_id": target.id,
                            "amount": cents(amount),
                        }
                    )
            if n % 7 == 0:  # a pending one: must not count
                co_id = self.ids.take("change_orders")
                self.w.add(
                    _t(ChangeOrder),
                    {
                        "id": co_id,
                        "commitment_id": mid,
                        "number": "CO-002",
                        "title": "Proposed extra",
                        "status": "pending",
                        "created_at": created,
                    },
                )
                co_lines.append(
                    {
                        "id": self.ids.take("change_order_items"),
                        "change_order_id": co_id,
                        "sov_line_id": plan.lines[1].id,
                        "amount": cents(900_000),
                    }
                )
            for line in plan.lines:
                self.w.add(
                    _t(SovLine),
                    {
                        "id": line.id,
                        "commitment_id": mid,
                        "line_number": line.number,
                        "cost_code": line.cost_code,
                        "description": line.description,
                        "original_value": cents(line.original),
                        "change_order_id": line.change_order_id,
                    },
                )
            for row in co_lines:
                self.w.add(_t(ChangeOrderItem), row)
            self.commitments.append(plan)
        self._client_contract(created)

    def _client_contract(self, created: datetime) -> None:
        """The head contract: one line per cost code but the unmapped one."""
        self.contract_id = self.ids.take("client_contracts")
        self.w.add(
            _t(ClientContract),
            {
                "id": self.contract_id,
                "project_id": self.project_id,
                "number": "HC-1",
                "title": "Harbour Tower head contract",
                "client_name": "Harbour Development LLC",
                "status": "approved",
                "work_retainage_pct": pct(10),
                "materials_retainage_pct": pct(5),
                "markup_pct": pct(8),
                "created_at": created,
            },
        )
        scheduled: dict[str, int] = {}
        for plan in self.commitments:
            for line in plan.lines:
                code = (
                    MAPPED_CODE[1]
                    if line.cost_code == MAPPED_CODE[0]
                    else line.cost_code
                )
                scheduled[code] = scheduled.get(code, 0) + line.scheduled
        line_ids: dict[str, int] = {}
        number = 0
        for code, description in COST_CODES:
            if code in (UNMAPPED_CODE, MAPPED_CODE[0]):
                continue
            number += 1
            line_ids[code] = self.ids.take("client_sov_lines")
            self.w.add(
                _t(ClientSovLine),
                {
                    "id": line_ids[code],
                    "client_contract_id": self.contract_id,
                    "line_number": number,
                    "cost_code": code,
                    "description": description,
                    # markup 8 % plus room: upstream never overbills
                    "scheduled_value": cents(
                        scheduled.get(code, 0) * 12 // 10 + 100_000
                    ),
                },
            )
        self.w.add(
            _t(CostCodeMapping),
            {
                "id": self.ids.take("cost_code_mappings"),
                "client_contract_id": self.contract_id,
                "cost_code": MAPPED_CODE[0],
                "client_sov_line_id": line_ids[MAPPED_CODE[1]],
            },
        )

    # ------------------------------------------------------------ periods

    def periods(self) -> None:
        self.period_ids: list[int] = []
        self.period_dates: list[tuple[date, date]] = []
        for k in range(1, self.size.periods + 2):
            start = _month_start(self.first_month, k - 1)
            end = _month_start(start, 1) - timedelta(days=1)
            is_open = k == self.size.periods + 1
            due = (
                self.today + timedelta(days=14)
                if is_open
                else start + timedelta(days=24)
            )
            pid = self.ids.take("billing_periods")
            self.w.add(
                _t(BillingPeriod),
                {
                    "id": pid,
                    "project_id": self.project_id,
                    "sequence": k,
                    "start_date": start,
                    "end_date": end,
                    "due_date": due,
                    "billing_date": end,
                    "status": "open" if is_open else "closed",
                    "created_at": _when(start - timedelta(days=3), 8),
                },
            )
            self.period_ids.append(pid)
            self.period_dates.append((start, end))

    # ------------------------------------------------------------ billings

    def _work(
        self, plan: CommitmentPlan, done: dict[int, int], stored_before: dict[int, int]
    ) -> dict[int, tuple[int, int]]:
        """One period's (work, materials) per line, in cents; G never above C."""
        amounts: dict[int, tuple[int, int]] = {}
        for line in plan.lines:
            room = line.scheduled - done[line.id]
            owed = stored_before.get(line.id, 0)  # install what was stored
            if room <= 0 or (not owed and self.rng.random() >= 0.5):
                continue
            work = max(owed * 6 // 5, line.scheduled * self.rng.randrange(2, 7) // 100)
            work = min(work, room)
            materials = 0
            if not owed and self.rng.random() < 0.15:
                materials = min(line.scheduled * 3 // 100, room - work)
            if work or materials:
                amounts[line.id] = (work, max(materials, 0))
        if not any(w for w, _ in amounts.values()):  # always some progress
            line = max(plan.lines, key=lambda ln: ln.scheduled - done[ln.id])
            amounts[line.id] = (max(1, (line.scheduled - done[line.id]) // 50), 0)
        return amounts

    def _billing_row(
        self,
        plan: CommitmentPlan,
        k: int,
        status: str,
        contact_id: int,
        admin_id: int,
        figures: dict[str, Any] | None,
        revision: int = 0,
    ) -> dict[str, Any]:
        start, end = self.period_dates[k - 1]
        submitted = _when(end - timedelta(days=6), 16, k % 60)
        decided = status in ("approved", "approved_as_noted")
        return {
            "id": self.ids.take("billings"),
            "commitment_id": plan.id,
            "period_id": self.period_ids[k - 1],
            "application_number": k,
            "vendor_invoice_number": f"INV{plan.id:05d}-{k:02d}"
            if status != "draft"
            else "",
            "status": status,
            "revision": revision,
            "created_by_user_id": None,
            "created_by_contact_id": contact_id,
            "created_at": _when(end - timedelta(days=9), 10),
            "updated_at": _when(end, 11) if decided else submitted,
            "submitted_at": None if status == "draft" else submitted,
            "decided_at": _when(end + timedelta(days=2), 11) if decided else None,
            "decided_by_id": admin_id
            if status not in ("draft", "under_review")
            else None,
            "notes": "",
            "void_reason": "",
            "retainage_released": money.ZERO,
            "approved_figures": figures,
            "version": {"draft": 2, "under_review": 3}.get(status, 5),
        }

    def _lines(
        self,
        billing_id: int,
        plan: CommitmentPlan,
        claimed: dict[int, tuple[int, int]],
        approved: dict[int, tuple[int, int]],
        status: str,
        comments: dict[int, str] | None = None,
        installed: dict[int, int] | None = None,
    ) -> dict[int, int]:
        """Billing lines (every billable SOV line); returns sov id → line id."""
        ids = {}
        for line in plan.lines:
            cw, cm = claimed.get(line.id, (0, 0))
            aw, am = approved.get(line.id, (0, 0))
            lid = self.ids.take("billing_lines")
            ids[line.id] = lid
            reason = (comments or {}).get(line.id, "")
            self.w.add(
                _t(BillingLine),
                {
                    "id": lid,
                    "billing_id": billing_id,
                    "sov_line_id": line.id,
                    "claimed_work": cents(cw),
                    "claimed_materials": cents(cm),
                    "approved_work": cents(aw),
                    "approved_materials": cents(am),
                    "claimed_installed": cents((installed or {}).get(line.id, 0)),
                    "approved_installed": cents((installed or {}).get(line.id, 0)),
                    "status": (
                        ("revise" if reason else "approved")
                        if status == "revise"
                        else status
                    ),
                    "reviewer_comment": reason,
                },
            )
        return ids

    def _snapshot(
        self, billing: dict[str, Any], plan: CommitmentPlan, claimed: dict, rev: int
    ) -> None:
        self.w.add(
            _t(RevisionSnapshot),
            {
                "id": self.ids.take("revision_snapshots"),
                "billing_id": billing["id"],
                "revision": rev,
                "submitted_at": billing["submitted_at"],
                "data": {
                    "lines": {
                        str(line.id): {
                            "work": str(cents(claimed.get(line.id, (0, 0))[0])),
                            "materials": str(cents(claimed.get(line.id, (0, 0))[1])),
                        }
                        for line in plan.lines
                    },
                    "vendor_invoice_number": billing["vendor_invoice_number"],
                    "retainage_released": "0.00",
                    "notes": "",
                },
            },
        )

    def _audit(
        self,
        action: str,
        obj_type: str,
        obj_id: int,
        when: datetime,
        *,
        user: int | None = None,
        contact: int | None = None,
        before: dict | None = None,
        after: dict | None = None,
    ) -> None:
        self.w.add(
            _t(AuditEvent),
            {
                "id": self.ids.take("audit_events"),
                "actor_type": "user" if user else "contact" if contact else "system",
                "actor_user_id": user,
                "actor_contact_id": contact,
                "action": action,
                "object_type": obj_type,
                "object_id": obj_id,
                "before": before,
                "after": after,
                "remote_addr": f"10.0.0.{obj_id % 250 + 1}",
                "created_at": when,
            },
        )

    def _mail(
        self,
        kind: str,
        recipient: str,
        subject: str,
        when: datetime,
        obj_type: str,
        obj_id: int,
        sent: bool = True,
    ) -> None:
        text = (
            f"{subject}\n\nOpen the billing in the portal: "
            f"https://billing.example/{obj_type}/{obj_id}\n\n— Harbour Tower billing team"
        )
        self.w.add(
            _t(OutboxMessage),
            {
                "id": self.ids.take("outbox_messages"),
                "kind": kind,
                "recipient": recipient,
                "subject": subject,
                "body_text": text,
                "body_html": "<p>" + text.replace("\n\n", "</p><p>") + "</p>",
                "status": "sent" if sent else "pending",
                "attempts": 1 if sent else 0,
                "last_error": "",
                "created_at": when,
                "next_attempt_at": when,
                "sent_at": when + timedelta(seconds=20) if sent else None,
                "object_type": obj_type,
                "object_id": obj_id,
            },
        )

    def _invite(
        self, plan: CommitmentPlan, k: int, status: str, contact_id: int
    ) -> None:
        start, _ = self.period_dates[k - 1]
        sent = _when(start + timedelta(days=1), 9)
        iid = self.ids.take("invitations")
        self.w.add(
            _t(Invitation),
            {
                "id": iid,
                "period_id": self.period_ids[k - 1],
                "commitment_id": plan.id,
                "contact_id": contact_id,
                "status": status,
                "invited_by_id": self.admins[0],
                "sent_at": sent,
                "answered_at": None
                if status == "invited"
                else sent + timedelta(hours=5),
                "decline_reason": "We finished last month."
                if status == "declined"
                else "",
                "last_reminded_at": sent + timedelta(days=7)
                if status == "invited"
                else None,
            },
        )
        self._mail(
            "invite_to_bill",
            self.contact_names[contact_id][1],
            f"Harbour Tower: please bill {plan.number} for period #{k}",
            sent,
            "invitation",
            iid,
            sent=k <= self.size.periods,
        )

    def history(self) -> None:
        """Approved billings for every commitment and history period."""
        size = self.size
        self.state: dict[int, dict[str, Any]] = {}
        for index, plan in enumerate(self.commitments):
            done = {line.id: 0 for line in plan.lines}  # D in cents
            stored: dict[int, int] = {}
            previous_certificates = money.ZERO
            previous_completed = money.ZERO
            for k in range(1, size.periods + 1):
                contact = plan.contact_ids[k % len(plan.contact_ids)]
                admin = self.admins[(index + k) % len(self.admins)]
                claimed = self._work(plan, done, stored)
                approved = dict(claimed)
                noted = (index + k) % 10 == 3
                comments = {}
                if noted:  # the reviewer trims one line: approved as noted
                    sov_id, (w, m) = next(iter(claimed.items()))
                    approved[sov_id] = (w * 9 // 10, m)
                    comments[sov_id] = "Trimmed to the surveyed quantity."
                installed = _installed(stored, approved)
                figs = _figures(
                    plan, done, approved, previous_certificates, stored, installed
                )
                # Every approved billing pays something (exportable in every format).
                while (
                    figs.totals.current_payment_due <= 0
                    or figs.totals.total_completed_and_stored <= previous_completed
                ):
                    line = max(plan.lines, key=lambda ln: ln.scheduled - done[ln.id])
                    w, m = approved.get(line.id, (0, 0))
                    room = line.scheduled - done[line.id] - w - m
                    if room <= 0:
                        raise RuntimeError(f"{plan.number} is fully billed")
                    step = max(1, room // 10)
                    approved[line.id] = (w + step, m)
                    cw, cm = claimed.get(line.id, (0, 0))
                    claimed[line.id] = (cw + step, cm)
                    installed = _installed(stored, approved)
                    figs = _figures(
                        plan, done, approved, previous_certificates, stored, installed
                    )
                status = "approved_as_noted" if noted else "approved"
                revised = (index + k) % 9 == 4
                billing = self._billing_row(
                    plan,
                    k,
                    status,
                    contact,
                    admin,
                    _frozen(
                        plan,
                        figs,
                        _figures(
                            plan,
                            done,
                            claimed,
                            previous_certificates,
                            stored,
                            installed,
                        ),
                    ),
                    revision=1 if revised else 0,
                )
                bid = billing["id"]
                self.w.add(_t(Billing), billing)
                self._lines(
                    bid, plan, claimed, approved, "approved", comments, installed
                )
                self._snapshot(billing, plan, claimed, 0)
                if revised:
                    self._snapshot(billing, plan, claimed, 1)
                    self._comment(
                        bid,
                        admin,
                        None,
                        "Please attach the lien waiver.",
                        0,
                        billing["submitted_at"],
                    )
                    self._comment(
                        bid,
                        None,
                        contact,
                        "Attached, thanks.",
                        1,
                        billing["submitted_at"] + timedelta(hours=3),
                    )
                self._invite(plan, k, "accepted", plan.contact_ids[0])
                self._audit(
                    "billing.create",
                    "billing",
                    bid,
                    billing["created_at"],
                    contact=contact,
                    after={"status": "draft"},
                )
                self._audit(
                    "billing.submit",
                    "billing",
                    bid,
                    billing["submitted_at"],
                    contact=contact,
                    before={"status": "draft"},
                    after={"status": "under_review", "revision": 0},
                )
                self._audit(
                    "billing.approve",
                    "billing",
                    bid,
                    billing["decided_at"],
                    user=admin,
                    before={"status": "under_review"},
                    after={
                        "status": status,
                        "current_payment_due": str(figs.totals.current_payment_due),
                    },
                )
                self._mail(
                    "billing_approved",
                    self.contact_names[contact][1],
                    f"Harbour Tower: billing #{k} {status.replace('_', ' ')}",
                    billing["decided_at"],
                    "billing",
                    bid,
                )
                previous_certificates = figs.totals.total_earned_less_retainage
                previous_completed = figs.totals.total_completed_and_stored
                for sov_id, (w, _) in approved.items():
                    done[sov_id] += w
                stored = _stored_after(figs, plan)
            self.state[plan.id] = {
                "done": done,
                "stored": stored,
                "previous_certificates": previous_certificates,
            }
            if index % 100 == 99:
                self.w.flush()
                self.log(f"history: {index + 1} commitments")
        self.w.flush()

    def _comment(
        self,
        billing_id: int,
        user: int | None,
        contact: int | None,
        body: str,
        revision: int,
        when: datetime,
        line_id: int | None = None,
    ) -> None:
        self.w.add(
            _t(Comment),
            {
                "id": self.ids.take("comments"),
                "billing_id": billing_id,
                "billing_line_id": line_id,
                "author_user_id": user,
                "author_contact_id": contact,
                "revision": revision,
                "body": body,
                "created_at": when,
            },
        )

    def current(self) -> None:
        """The open period: every state of SPEC §2's period dashboard."""
        size = self.size
        k = size.periods + 1
        regular = size.commitments - len(size.big_lines)
        for index, plan in enumerate(self.commitments):
            st = self.state[plan.id]
            contact = plan.contact_ids[0]
            admin = self.admins[index % len(self.admins)]
            slot = index % len(CURRENT_STATES)
            status = "under_review" if index >= regular else CURRENT_STATES[slot]
            if status in ("accepted", "invited", "declined"):  # no billing yet
                self._invite(plan, k, status, contact)
                continue
            if status == "not_invited":
                continue
            self._invite(plan, k, "accepted", contact)
            if index >= regular:  # the big ones bill every line
                claimed = {
                    line.id: ((line.scheduled - st["done"][line.id]) // 20, 0)
                    for line in plan.lines
                }
            else:
                claimed = self._work(plan, st["done"], st["stored"])
            frozen = None
            installed = _installed(st["stored"], claimed)
            if status in ("pending_owner_approval", "approved"):
                figs = _figures(
                    plan,
                    st["done"],
                    claimed,
                    st["previous_certificates"],
                    st["stored"],
                    installed,
                )
                frozen = _frozen(plan, figs, figs)
            billing = self._billing_row(plan, k, status, contact, admin, frozen)
            if status != "draft":
                billing["submitted_at"] = _when(
                    self.today - timedelta(days=2), 9, index % 60
                )
                billing["created_at"] = billing["submitted_at"] - timedelta(hours=2)
            if status == "approved":
                billing["decided_at"] = billing["submitted_at"] + timedelta(hours=20)
            bid = billing["id"]
            self.w.add(_t(Billing), billing)
            line_status = {
                "draft": "pending",
                "under_review": "pending",
                "revise_and_resubmit": "revise",
            }.get(status, "approved")
            reasons = {}
            if status == "revise_and_resubmit":
                reasons = {plan.lines[0].id: "Quantity does not match the site survey."}
            self._lines(bid, plan, claimed, claimed, line_status, reasons, installed)
            self._audit(
                "billing.create",
                "billing",
                bid,
                billing["created_at"],
                contact=contact,
                after={"status": "draft"},
            )
            if status != "draft":
                self._snapshot(billing, plan, claimed, 0)
                self._audit(
                    "billing.submit",
                    "billing",
                    bid,
                    billing["submitted_at"],
                    contact=contact,
                    before={"status": "draft"},
                    after={"status": "under_review", "revision": 0},
                )
                self._mail(
                    "billing_submitted",
                    ADMIN_EMAIL,
                    f"Harbour Tower: {plan.number} submitted billing #{k}",
                    billing["submitted_at"],
                    "billing",
                    bid,
                    sent=index % 3 != 0,
                )
            if status == "revise_and_resubmit":
                self._comment(
                    bid,
                    admin,
                    None,
                    "See the note on line 1.",
                    0,
                    billing["submitted_at"] + timedelta(hours=4),
                )
            if index % 4 == 1:
                self._comment(
                    bid,
                    None,
                    contact,
                    "Invoice attached to the email.",
                    0,
                    billing["created_at"] + timedelta(minutes=30),
                )
        for plan in self.commitments[: min(len(self.commitments), 200)]:
            for contact in plan.contact_ids:
                self.w.add(
                    _t(LoginLink),
                    {
                        "id": self.ids.take("login_links"),
                        "contact_id": contact,
                        "invitation_id": None,
                        "token_version": 1,
                        "created_at": _when(self.today - timedelta(days=3)),
                        "expires_at": _when(self.today + timedelta(days=11)),
                        "used_at": _when(self.today - timedelta(days=2)),
                    },
                )
        self.w.flush()

    # ------------------------------------------------------------ run

    def rows(self) -> None:
        """Every row, bulk inserted (no commit)."""
        self.people()
        self.project()
        self.periods()
        self.w.flush()
        self.log(
            f"project: {len(self.commitments)} commitments, "
            f"{sum(len(p.lines) for p in self.commitments)} SOV lines"
        )
        self.history()
        self.current()
        self.log(f"{self.w.count} rows written")


def reset_sequences() -> None:
    """PostgreSQL: move every id sequence past the explicit ids."""
    if db.engine.dialect.name != "postgresql":
        return
    for table in db.metadata.sorted_tables:
        if "id" not in table.columns or not table.columns["id"].primary_key:
            continue
        db.session.execute(
            sa.text(
                f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "  # noqa: S608 - our own table names
                f"COALESCE((SELECT MAX(id) FROM {table.name}), 0) + 1, false)"
            )
        )


def store_carries(gen: Generator) -> None:
    """The carry of every approved billing (what ``figures.store_carries``
    stores when a billing is decided), written by the migration's backfill,
    which follows the same rules: without it every history would be summed."""
    import importlib.util
    from pathlib import Path

    versions = Path(__file__).resolve().parents[1] / "migrations" / "versions"
    (path,) = versions.glob("*_hist_carries.py")
    spec = importlib.util.spec_from_file_location("carries_backfill", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.backfill(db.session.connection())
    gen.log("carries stored")


def export_history(gen: Generator) -> None:
    """One CSV batch per history period but the last (finance is a month behind)."""
    from portal.finance import batches as export_batches

    for k in range(1, gen.size.periods):
        finance = db.session.get(User, gen.finance_id)
        ids = list(
            db.session.scalars(
                sa.select(Billing.id)
                .where(Billing.period_id == gen.period_ids[k - 1])
                .order_by(Billing.id)
            )
        )
        for start in range(0, len(ids), export_batches.MAX_BATCH_BILLINGS):
            fmt = ("csv", "iif", "sage300", "xlsx")[k % 4]
            chunk = ids[start : start + export_batches.MAX_BATCH_BILLINGS]
            export_batches.create_batch(finance, fmt, chunk)
            db.session.commit()
        db.session.expunge_all()
        gen.log(f"exported period {k}")


def claim_history(gen: Generator) -> None:
    """Approved client claims for every history period but the last."""
    from portal import upstream

    for k in range(1, gen.size.periods):
        admin = db.session.get(User, gen.admins[0])
        contract = db.session.get(ClientContract, gen.contract_id)
        period = db.session.get(BillingPeriod, gen.period_ids[k - 1])
        claim = upstream.generate_claim(contract, period, admin)
        db.session.commit()
        upstream.submit_claim(claim, admin, accept_unmapped=True)
        db.session.commit()
        upstream.approve_claim(claim, admin)
        db.session.commit()
        db.session.expunge_all()
        gen.log(f"claimed period {k}")


def generate(size: Size, seed: int = 2024, today: date | None = None) -> Generator:
    """Fill the app's (empty, migrated) database; needs an app context."""
    if db.session.scalar(sa.select(sa.func.count(Project.id))):
        raise SystemExit("The database is not empty: use --reset.")
    gen = Generator(size, seed, today)
    gen.rows()
    store_carries(gen)
    reset_sequences()
    db.session.commit()
    if size.export_history:
        export_history(gen)
    if size.claim_history:
        claim_history(gen)
    if db.engine.dialect.name == "postgresql":
        db.session.commit()
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
            c.execute(sa.text("VACUUM ANALYZE"))
    else:
        db.session.execute(sa.text("ANALYZE"))
        db.session.commit()
    gen.log("done")
    return gen


def check(sample: int = 60, seed: int = 7) -> list[str]:
    """Recompute a sample of frozen figures with the product's ``figures.freeze``.

    Returns the problems found (none when the generated history is consistent).
    """
    from portal.billing import figures

    problems = []
    ids = list(
        db.session.scalars(
            sa.select(Billing.id)
            .where(Billing.approved_figures.is_not(None))
            .order_by(Billing.id)
        )
    )
    rng = random.Random(seed)
    for billing_id in sorted(rng.sample(ids, min(sample, len(ids)))):
        billing = db.session.get(Billing, billing_id)
        if figures.freeze(billing) != billing.approved_figures:
            problems.append(f"billing {billing_id}: frozen figures differ")
    db.session.rollback()
    return problems


# --------------------------------------------------------------- fixtures


@dataclass(frozen=True)
class Fixture:
    """Where the benchmarks find their subjects in a generated database."""

    project_id: int
    open_period_id: int
    last_closed_period_id: int
    contract_id: int
    admin_id: int
    finance_id: int
    review_big_id: int  # under review, the most lines (500)
    review_mid_id: int  # under review, the second most (100)
    approved_big_id: int  # the most lines, last history period
    review_20_id: int
    contact_id: int
    contact_billing_id: int
    export_ids: list[int]


def find_fixture(export_count: int = 1000) -> Fixture:
    """Look the benchmark subjects up by their generated names (app context)."""
    s = db.session
    project = s.scalar(sa.select(Project).where(Project.number == PROJECT_NUMBER))
    if project is None:
        raise SystemExit("No generated project here: run benchmarks.generate first.")
    periods = s.scalars(
        sa.select(BillingPeriod)
        .where(BillingPeriod.project_id == project.id)
        .order_by(BillingPeriod.sequence)
    ).all()
    open_period = next(p for p in periods if p.status == "open")
    closed = [p for p in periods if p.status == "closed"]

    big = s.scalars(
        sa.select(Commitment)
        .where(
            Commitment.project_id == project.id,
            Commitment.number.like(f"{BIG_PREFIX}%"),
        )
        .order_by(Commitment.id)
    ).all()
    big = sorted(big, key=lambda c: -int(c.number[len(BIG_PREFIX) :]))

    def billing_of(commitment: Commitment, period: BillingPeriod) -> int:
        return s.scalar(
            sa.select(Billing.id).where(
                Billing.commitment_id == commitment.id,
                Billing.period_id == period.id,
                Billing.status != "void",
            )
        )

    lines = (
        sa.select(sa.func.count(BillingLine.id))
        .where(BillingLine.billing_id == Billing.id)
        .scalar_subquery()
    )
    review_20 = s.scalar(
        sa.select(Billing.id)
        .join(Commitment)
        .where(
            Billing.period_id == open_period.id,
            Billing.status == "under_review",
            Commitment.number.like("SC-0%"),
            lines >= 20,
        )
        .order_by(Billing.id)
        .limit(1)
    )
    draft = s.scalar(
        sa.select(Billing)
        .join(Commitment)
        .where(
            Billing.period_id == open_period.id,
            Billing.status == "draft",
            Commitment.number.like("SC-0%"),
        )
        .order_by(Billing.id)
        .limit(1)
    )
    export_ids = list(
        s.scalars(
            sa.select(Billing.id)
            .where(
                Billing.status.in_(["approved", "approved_as_noted"]),
                Billing.export_batch_id.is_(None),
            )
            .order_by(Billing.id)
            .limit(export_count)
        )
    )
    contract = s.scalar(
        sa.select(ClientContract.id).where(ClientContract.project_id == project.id)
    )
    return Fixture(
        project_id=project.id,
        open_period_id=open_period.id,
        last_closed_period_id=closed[-1].id,
        contract_id=contract,
        admin_id=s.scalar(sa.select(User.id).where(User.email == ADMIN_EMAIL)),
        finance_id=s.scalar(sa.select(User.id).where(User.email == FINANCE_EMAIL)),
        review_big_id=billing_of(big[0], open_period),
        review_mid_id=billing_of(big[min(1, len(big) - 1)], open_period),
        approved_big_id=billing_of(big[0], closed[-1]),
        review_20_id=review_20,
        contact_id=draft.created_by_contact_id,
        contact_billing_id=draft.id,
        export_ids=export_ids,
    )


# --------------------------------------------------------------- databases


def prepare_database(url: str, reset: bool) -> str:
    """Create (or re-create with ``reset``) the database; return its URL."""
    parsed = make_url(url)
    if parsed.drivername.startswith("postgres"):
        if parsed.drivername in ("postgresql", "postgres"):
            parsed = parsed.set(drivername="postgresql+psycopg")
        admin = sa.create_engine(
            parsed.set(database="postgres"), isolation_level="AUTOCOMMIT"
        )
        with admin.connect() as conn:
            exists = conn.scalar(
                sa.text("SELECT 1 FROM pg_database WHERE datname = :n"),
                {"n": parsed.database},
            )
            if exists and reset:
                conn.execute(
                    sa.text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = :n AND pid <> pg_backend_pid()"
                    ),
                    {"n": parsed.database},
                )
                conn.execute(sa.text(f'DROP DATABASE "{parsed.database}"'))
            if not exists or reset:
                conn.execute(sa.text(f'CREATE DATABASE "{parsed.database}"'))
        admin.dispose()
        return parsed.render_as_string(hide_password=False)
    if parsed.drivername.startswith("sqlite") and reset and parsed.database:
        import os

        for suffix in ("", "-wal", "-shm", "-journal"):
            if os.path.exists(parsed.database + suffix):
                os.remove(parsed.database + suffix)
    return url


def bench_config(url: str, **extra: Any) -> dict[str, Any]:
    """Settings of the benchmark app (test-like: no CSRF, no rate limits)."""
    config = {
        "TESTING": True,
        "SECRET_KEY": "benchmark-secret-key-not-for-production",
        "SQLALCHEMY_DATABASE_URI": url,
        "WTF_CSRF_ENABLED": False,
        "RATELIMIT_ENABLED": False,
        "MAIL_SUPPRESS_SEND": True,
        "PUBLIC_BASE_URL": "http://bench.test",
        "SERVER_NAME": None,
    }
    config.update(extra)
    return config


def migrate(url: str) -> None:
    """Upgrade the database to the latest schema."""
    from flask_migrate import upgrade

    app = create_app(bench_config(url))
    with app.app_context():
        upgrade(revision="heads")
        db.engine.dispose()


def main(argv: Iterable[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--reset", action="store_true", help="drop and re-create")
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--commitments", type=int)
    parser.add_argument("--lines", type=int)
    parser.add_argument("--periods", type=int)
    parser.add_argument("--contacts", type=int)
    parser.add_argument("--big-lines", default="500,100")
    parser.add_argument("--no-exports", action="store_true")
    parser.add_argument("--no-claims", action="store_true")
    parser.add_argument("--seed", type=int, default=2024)
    args = parser.parse_args(list(argv) if argv is not None else None)
    size = Size(
        big_lines=tuple(int(n) for n in args.big_lines.split(",") if n),
        export_history=not args.no_exports,
        claim_history=not args.no_claims,
    ).scaled(args.scale)
    overrides = {
        name: getattr(args, name)
        for name in ("commitments", "lines", "periods", "contacts")
        if getattr(args, name) is not None
    }
    size = dataclasses.replace(size, **overrides)
    url = prepare_database(args.database_url, args.reset)
    migrate(url)
    app = create_app(bench_config(url))
    started = time.perf_counter()
    with app.app_context():
        generate(size, args.seed)
        problems = check()
        if problems:
            raise SystemExit("Inconsistent data:\n" + "\n".join(problems))
        counts = {
            name: db.session.scalar(sa.select(sa.func.count()).select_from(model))
            for name, model in (
                ("commitments", Commitment),
                ("sov lines", SovLine),
                ("contacts", Contact),
                ("billings", Billing),
                ("billing lines", BillingLine),
                ("audit events", AuditEvent),
                ("outbox messages", OutboxMessage),
            )
        }
    print(f"Generated in {time.perf_counter() - started:.0f} s: {size}")
    for name, n in counts.items():
        print(f"  {name:>16}: {n:,}")


if __name__ == "__main__":
    main()
