"""Upstream claims: the small summary a claim stores for its pages (issue 16 item 3).

Showing a claim used to gather its downstream billings again (a thousand
billings' frozen figures, eleven thousand source lines), every commitment's
latest counted billing and every earlier claim's frozen trace. What those pages
show depends on the downstream side only through a few sums, so the claim keeps
them in ``ClientClaim.summary`` when it is generated, submitted or approved:

* ``by_code``: Σ work and Σ materials of the claim's source lines per downstream
  cost code (a draft places them with today's mappings, as a regeneration would);
* ``resolved``: the line each code was placed on (a frozen claim keeps it);
* ``downstream_by_code``: Σ G of every commitment's latest counted billing per
  cost code (the reconciliation's totals to date);
* ``mapped_work``: Σ work this claim placed on lines (later claims' to date);
* ``included_total``: Σ E + F of the included billings (the period overview);
* ``certificates``: G702 line 6 as claimed and as approved (the next claim's
  line 7);
* ``unmapped_groups``: per unmapped cost code its count, total and first lines;
* ``at``: when it was computed.

The sums hold while no downstream billing of the project up to the claim's
period changed since ``at`` (:func:`fresh`, one indexed query on
``billings.updated_at``); when one did, the pages compute as before, so every
figure shown is the one a full computation gives.

``updated_at`` is the changing transaction's own clock reading, taken before it
commits: a change still in flight when the summary was written can commit later
with a time before ``at``. So the summary also keeps ``window``, a fingerprint
of the billings whose ``updated_at`` is at most :data:`MARGIN` before ``at`` (as
the writing transaction saw them, its own changes included); the sums hold only
while that window is unchanged: such a late commit adds a billing to it, or
changes one's time.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import defer

from portal.billing.figures import frozen_columns
from portal.billing.figures import sheet as billing_sheet
from portal.core import money
from portal.extensions import db
from portal.models import Billing, BillingPeriod, ClientClaim, Commitment, SovLine
from portal.timeutil import aware, utcnow
from portal.upstream.common import COUNTING_CLAIM_STATUSES, ZERO, C
from portal.upstream.generate import (
    SourceLine,
    _earlier_claims,
    latest_counted,
    line_resolver,
)

VERSION = 1
#: How long before ``at`` a change can have read its clock and still commit after
#: the summary is written: more than a request transaction can last (gunicorn
#: kills a worker after 30 s; the app's statement timeout is below that), with
#: room for clock skew between app servers. A billing changed within it before
#: ``at`` may or may not be in the sums, so the sums keep a fingerprint of those.
MARGIN = timedelta(minutes=2)
#: Unmapped lines listed per cost code on the claim page (the trace lists all).
UNMAPPED_SHOWN = 10


def _text(value: Decimal) -> str:
    return str(money.to_cents(value))


def _num(raw: Any) -> Decimal:
    return money.to_cents(str(raw))


def approved_g(billing: Billing) -> dict[int, Decimal]:
    """G (total completed and stored to date) per SOV line of a counted billing."""
    stored = frozen_columns(billing, ("total_completed_and_stored",))
    if stored is not None:
        return {sov_id: g for sov_id, (g,) in stored}
    sheet = billing_sheet(billing, "approved")
    return {r.sov.id: r.figures.total_completed_and_stored for r in sheet.rows}


def downstream_by_code(
    claim: ClientClaim, latest: Mapping[int, Billing] | None = None
) -> dict[str, Decimal]:
    """Σ G per downstream cost code of every commitment's latest counted billing
    as of the claim's period (SPEC §9 totals to date, before any mapping);
    ``latest``: those billings, when the caller has them already."""
    if latest is None:
        latest = latest_counted(claim.contract.project_id, claim.period)
    rows = [approved_g(b) for b in latest.values()]
    # The codes of those commitments' SOV lines, selected by commitment: an IN
    # list of every line id (11,000 at full size) cost more to build and send
    # than the lines themselves.
    codes = dict(
        db.session.execute(
            sa.select(SovLine.id, SovLine.cost_code).where(
                SovLine.commitment_id.in_(
                    sorted({b.commitment_id for b in latest.values()}) or [0]
                )
            )
        ).all()
    )
    out: dict[str, Decimal] = {}
    for row in rows:
        for sov_id, g in row.items():
            code = codes.get(sov_id)
            if code is not None:
                out[code] = out.get(code, ZERO) + g
    return out


def write(
    claim: ClientClaim,
    sources: Iterable[SourceLine],
    included_ids: Iterable[int],
    *,
    latest: Mapping[int, Billing] | None = None,
    **extra: Any,
) -> None:
    """Store the summary of ``sources`` (the claim's downstream lines as now)."""
    included = set(included_ids)
    by_code: dict[str, list[Decimal]] = {}
    resolved: dict[str, int | None] = {}
    mapped_work = included_total = ZERO
    unmapped: dict[str, dict[str, Any]] = {}
    for s in sources:
        if s.client_sov_line_id is None:
            group = unmapped.setdefault(
                s.cost_code,
                {"cost_code": s.cost_code, "items": [], "count": 0, "total": ZERO},
            )
            if len(group["items"]) < UNMAPPED_SHOWN:
                group["items"].append(s.to_dict())
            group["count"] += 1
            group["total"] += s.amount
        sums = by_code.setdefault(s.cost_code, [ZERO, ZERO])
        sums[0] += s.work
        sums[1] += s.materials
        resolved[s.cost_code] = s.client_sov_line_id
        if s.client_sov_line_id is not None:
            mapped_work += s.work
        if s.billing_id in included:
            included_total += s.work + s.materials
    at = utcnow()
    claim.summary = {
        "v": VERSION,
        "at": at.isoformat(),
        "window": _window(claim, at),
        "by_code": {k: [_text(w), _text(m)] for k, (w, m) in by_code.items()},
        "resolved": resolved,
        "downstream_by_code": {
            k: _text(v) for k, v in downstream_by_code(claim, latest).items()
        },
        "mapped_work": _text(mapped_work),
        "included_total": _text(included_total),
        "certificates": {},
        # The unmapped lines as the claim page lists them (claim.unmapped holds
        # every one: a line per billing for a code every commitment bills).
        "unmapped_groups": [
            {**g, "total": _text(g["total"])} for g in unmapped.values()
        ],
        **extra,
    }


def update(claim: ClientClaim, *, refresh_to_date: bool = False, **values: Any) -> None:
    """Change some keys of the stored summary (a new dict: JSON columns do not
    track in-place changes); ``refresh_to_date`` recomputes the totals to date
    and the time they hold from (after the claim's own billings changed)."""
    if not claim.summary:
        return
    data = dict(claim.summary)
    data.update(values)
    if refresh_to_date:
        data["downstream_by_code"] = {
            k: _text(v) for k, v in downstream_by_code(claim).items()
        }
        at = utcnow()
        data["at"] = at.isoformat()
        data["window"] = _window(claim, at)
    claim.summary = data


def _window(claim: ClientClaim, at: datetime) -> str:
    """A fingerprint of the project's billings up to the claim's period whose
    ``updated_at`` is within :data:`MARGIN` before ``at`` or later: their ids
    and times (the claim's own billings, just taken, are among them)."""
    rows = db.session.execute(
        sa.select(Billing.id, Billing.updated_at)
        .join(Commitment, Commitment.id == Billing.commitment_id)
        .join(BillingPeriod, BillingPeriod.id == Billing.period_id)
        .where(
            Billing.updated_at >= at - MARGIN,
            Commitment.project_id == claim.contract.project_id,
            BillingPeriod.sequence <= claim.period.sequence,
        )
    ).all()
    digest = hashlib.sha256()
    for billing_id, updated_at in sorted(rows):
        digest.update(f"{billing_id}:{aware(updated_at).isoformat()};".encode())
    return f"{len(rows)}:{digest.hexdigest()}"


def fresh(claim: ClientClaim) -> bool:
    """Whether the stored sums still hold: a summary of this version, and no
    downstream billing of the project up to the claim's period changed since
    (approved, held, voided, included elsewhere: each bumps ``updated_at``),
    including a change that read its clock before ``at`` but committed after
    the summary was written (the window of :data:`MARGIN` is as it was then)."""
    data = claim.summary
    if not data or data.get("v") != VERSION or "at" not in data:
        return False
    if claim.status == C.VOID or "window" not in data:
        return False
    at = datetime.fromisoformat(data["at"])
    return bool(_window(claim, at) == data["window"])


def placement(
    claim: ClientClaim, resolve: dict[str, tuple[int, bool]] | None = None
) -> dict[str, int | None]:
    """cost code → the client line its amounts land on (None = unmapped): as
    frozen for a submitted or approved claim, with today's mappings for a draft."""
    data = claim.summary or {}
    if claim.status in COUNTING_CLAIM_STATUSES:
        return dict(data.get("resolved", {}))
    if resolve is None:
        resolve = line_resolver(claim.contract)
    return {
        code: (resolve[code][0] if code in resolve else None)
        for code in data.get("by_code", {})
    }


def sums(
    claim: ClientClaim, placed_on: dict[str, int | None]
) -> tuple[Decimal, Decimal, dict[int, tuple[Decimal, Decimal]]]:
    """(Σ downstream, Σ unmapped, placed per client line) from the stored sums."""
    total = unmapped = ZERO
    per_line: dict[int, tuple[Decimal, Decimal]] = {}
    for code, (raw_w, raw_m) in (claim.summary or {}).get("by_code", {}).items():
        work, materials = _num(raw_w), _num(raw_m)
        total += work + materials
        line_id = placed_on.get(code)
        if line_id is None:
            unmapped += work + materials
            continue
        w, m = per_line.get(line_id, (ZERO, ZERO))
        per_line[line_id] = (w + work, m + materials)
    return money.to_cents(total), money.to_cents(unmapped), per_line


def generated(
    per_line: dict[int, tuple[Decimal, Decimal]], markup_pct: Decimal
) -> dict[int, tuple[Decimal, Decimal]]:
    """Per client line: Σ placed × (1 + markup), rounded per line (as rollup)."""
    items = [
        money.UpstreamSource(
            cost_code=str(line_id), approved_work=w, approved_materials=m
        )
        for line_id, (w, m) in per_line.items()
    ]
    return {
        int(key): value
        for key, value in money.rollup_by_cost_code(items, markup_pct).items()
    }


def downstream_to_date(
    claim: ClientClaim, resolve: dict[str, tuple[int, bool]]
) -> Decimal:
    """Σ G of the latest counted billings on codes the contract places now."""
    stored = (claim.summary or {}).get("downstream_by_code", {})
    return money.to_cents(
        sum((_num(g) for code, g in stored.items() if code in resolve), ZERO)
    )


def earlier_mapped_work(claim: ClientClaim) -> Decimal:
    """Σ work the earlier counting claims placed on lines (their stored sums;
    an earlier claim without one is read from its frozen trace)."""
    from portal.upstream.figures import trace_sources

    rows = db.session.execute(
        _earlier_claims(claim, COUNTING_CLAIM_STATUSES).with_only_columns(
            ClientClaim.id, ClientClaim.summary
        )
    ).all()
    total = ZERO
    for claim_id, data in rows:
        if data and "mapped_work" in data:
            total += _num(data["mapped_work"])
            continue
        earlier = db.session.get(ClientClaim, claim_id)
        if earlier is None:  # voided and purged meanwhile: it adds nothing
            continue
        total += sum(
            (
                s.work
                for s in trace_sources(earlier)
                if s.client_sov_line_id is not None
            ),
            ZERO,
        )
    return total


def previous_claim(claim: ClientClaim) -> ClientClaim | None:
    """The latest earlier counting claim, without its frozen figures and trace
    (loaded only if its summary lacks the certificate)."""
    return db.session.scalars(
        _earlier_claims(claim, COUNTING_CLAIM_STATUSES)
        .options(defer(ClientClaim.submitted_figures))
        .limit(1)
    ).first()


def unmapped_groups(claim: ClientClaim) -> list[dict[str, Any]]:
    """Per unmapped cost code: its count, total and first lines, as generated
    (stored, else from ``claim.unmapped``, which lists every line)."""
    data = claim.summary or {}
    if "unmapped_groups" in data:
        return [{**g, "total": _num(g["total"])} for g in data["unmapped_groups"]]
    groups: dict[str, dict[str, Any]] = {}
    for item in claim.unmapped or []:
        group = groups.setdefault(
            item["cost_code"],
            {"cost_code": item["cost_code"], "items": [], "count": 0, "total": ZERO},
        )
        if len(group["items"]) < UNMAPPED_SHOWN:
            group["items"].append(item)
        group["count"] += 1
        group["total"] += Decimal(item["amount"])
    return list(groups.values())


def certificate(claim: ClientClaim, which: str) -> Decimal | None:
    """G702 line 6 of a counting claim as stored, else None."""
    raw = ((claim.summary or {}).get("certificates") or {}).get(which)
    return None if raw is None else _num(raw)
