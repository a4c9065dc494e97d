"""Races, for real (SPEC §3, §6, §7): requests from several threads, each with
its own app and connection pool, held until all have read the same state.
Exactly one wins each time, and nothing is lost or doubled.

Every race runs on the suite's engine and on PostgreSQL (``pg_url``). Each
kind of race also runs once with a deliberately naive read-then-write helper
(used only here), to show the same checks catch a double apply.

Other races of the product are tested where they live: N admins approving at
the domain level (tests/test_workflow.py), two export batches through the
domain and the API (tests/exports/test_concurrency.py).
"""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from portal import audit
from portal.accounts import tokens
from portal.billing import billings
from portal.extensions import db
from portal.models import (
    AuditEvent,
    Billing,
    BillingLine,
    BillingPeriod,
    Commitment,
    Contact,
    ExportBatch,
    Invitation,
    LoginLink,
    OutboxMessage,
    RevisionSnapshot,
    User,
)
from portal.timeutil import utcnow

from .. import factories as f
from ..clock import pinned_today
from ..conftest import Auth, _empty_all_tables, make_test_app
from ..helpers import build_world
from .race import race

ENGINES = ["suite", "postgresql"]


@pytest.fixture(params=ENGINES)
def engine(request, database_url, tmp_path):
    """(url, app) on the suite's database or on PostgreSQL; emptied afterwards."""
    url = (
        database_url if request.param == "suite" else request.getfixturevalue("pg_url")
    )
    app = make_test_app(url, tmp_path / "main")
    yield url, app
    with app.app_context():
        db.session.remove()
        _empty_all_tables()
        db.session.remove()
        db.engine.dispose()


# ------------------------------------------------------------------ helpers


def _outcome(client) -> str:
    """'won' when the request did what it asked, else 'refused'."""
    with client.session_transaction() as sess:
        categories = {c for c, _ in sess.pop("_flashes", [])}
    return "refused" if categories & {"danger", "warning"} else "won"


def post_as(kind: str, who: int, url: str, data: dict) -> Callable[[Flask], str]:
    """A job: sign in as a user or contact and post the form."""

    def job(app: Flask) -> str:
        client = app.test_client()
        auth = Auth(app, client)
        auth.login_contact(who) if kind == "contact" else auth.login_user(who)
        response = client.post(url, data=data)
        if response.status_code >= 500:
            return f"error {response.status_code}"
        if response.status_code >= 400:
            return "refused"
        return _outcome(client)

    return job


def _count(model, *where) -> int:
    return db.session.scalar(
        sa.select(sa.func.count()).select_from(model).where(*where)
    )


def _actions(action: str, object_id: int | None = None) -> int:
    where = [AuditEvent.action == action]
    if object_id is not None:
        where.append(AuditEvent.object_id == object_id)
    return _count(AuditEvent, *where)


def one_winner(results: list[Any], effects: dict[str, int]) -> list[str]:
    """The race's problems: anything but one 'won', errors, effects not once."""
    problems = []
    errors = [r for r in results if r not in ("won", "refused")]
    if errors:
        problems.append(f"errors: {errors}")
    if results.count("won") != 1:
        problems.append(f"{results.count('won')} winners: {results}")
    problems += [f"{name} happened {n} times" for name, n in effects.items() if n != 1]
    return problems


def _billing(app: Flask, status: str, admins: int = 1) -> SimpleNamespace:
    """The worked example's commitment with a billing brought to ``status``."""
    with app.app_context():
        world = build_world(pinned_today())
        extra = [f.make_user("admin").id for _ in range(admins - 1)]
        contact = db.session.get(Contact, world.contact_id)
        admin = db.session.get(User, world.admin_id)
        commitment = db.session.get(Commitment, world.commitment_id)
        period = db.session.get(BillingPeriod, world.period1_id)
        billing = billings.create_billing(commitment, period, contact)
        billings.save_billing(
            billing,
            contact,
            billings.BillingInput(lines={world.line_ids[0]: ("20000.00", "0")}),
            billing.version,
        )
        if status in ("under_review", "revise_and_resubmit"):
            billings.submit_billing(billing, contact, billing.version)
        if status == "revise_and_resubmit":
            billings.send_back(billing, admin, billing.version, "Attach the waiver.")
        db.session.commit()
        out = SimpleNamespace(
            **vars(world),
            admin_ids=[world.admin_id, *extra],
            billing_id=billing.id,
            version=billing.version,
            line_id=billing.lines[0].id,
            sov_id=world.line_ids[0],
        )
        db.session.remove()
    return out


# ------------------------------------------------------------------ N admins approve


def _approve_effects(app: Flask, b: SimpleNamespace) -> dict[str, int]:
    with app.app_context():
        billing = db.session.get(Billing, b.billing_id)
        effects = {
            "approval event": _actions("billing.approve", b.billing_id),
            "approval mail": _count(
                OutboxMessage, OutboxMessage.kind == "billing_approved"
            ),
            "status change": int(billing.status == "approved")
            * int(billing.version == b.version + 1),
        }
        db.session.remove()
    return effects


def test_n_admins_approving_through_the_pages(engine, tmp_path) -> None:
    url, app = engine
    b = _billing(app, "under_review", admins=4)
    jobs = [
        post_as(
            "user",
            admin_id,
            f"/admin/billings/{b.billing_id}/decide",
            {"version": str(b.version), "decision": "approve"},
        )
        for admin_id in b.admin_ids
    ]
    results = race(url, tmp_path, jobs)
    assert one_winner(results, _approve_effects(app, b)) == []


def naive_approve(billing_id: int, admin_id: int) -> Callable[[Flask], str]:
    """Read the status, then write it without a compare-and-set (test only)."""

    def job(app: Flask) -> str:
        with app.app_context():
            billing = db.session.get(Billing, billing_id)
            if billing.status != "under_review":
                return "refused"
            db.session.execute(
                sa.update(Billing)
                .where(Billing.id == billing_id)
                .values(status="approved", version=Billing.version + 1)
            )
            audit.record(db.session.get(User, admin_id), "billing.approve", billing)
            db.session.commit()
            return "won"

    return job


def test_naive_approval_is_caught(engine, tmp_path) -> None:
    url, app = engine
    b = _billing(app, "under_review", admins=2)
    jobs = [naive_approve(b.billing_id, a) for a in b.admin_ids]
    results = race(url, tmp_path, jobs)
    problems = one_winner(results, _approve_effects(app, b))
    assert any("2 winners" in p for p in problems), (results, problems)
    assert any("approval event happened 2 times" in p for p in problems)


# ------------------------------------------------------------------ double submit


def _submit_effects(app: Flask, b: SimpleNamespace, admins: int) -> dict[str, int]:
    with app.app_context():
        billing = db.session.get(Billing, b.billing_id)
        mails = _count(OutboxMessage, OutboxMessage.kind == "billing_submitted")
        effects = {
            "submit event": _actions("billing.submit", b.billing_id),
            "snapshot": _count(
                RevisionSnapshot, RevisionSnapshot.billing_id == b.billing_id
            ),
            "set of admin mails": mails // admins if mails % admins == 0 else 0,
            "under_review": int(billing.status == "under_review"),
        }
        db.session.remove()
    return effects


def test_double_clicked_submit(engine, tmp_path) -> None:
    """The same browser posts the same draft twice at once."""
    url, app = engine
    b = _billing(app, "draft", admins=2)
    data = {"version": str(b.version), "action": "submit"}
    job = post_as("contact", b.contact_id, f"/portal/billings/{b.billing_id}", data)
    results = race(url, tmp_path, [job, job])
    assert one_winner(results, _submit_effects(app, b, admins=2)) == []


def naive_submit(billing_id: int) -> Callable[[Flask], str]:
    def job(app: Flask) -> str:
        with app.app_context():
            billing = db.session.get(Billing, billing_id)
            if billing.status != "draft":
                return "refused"
            db.session.execute(
                sa.update(Billing)
                .where(Billing.id == billing_id)
                .values(status="under_review")
            )
            # (No snapshot: its unique key would catch this naive code anyway.)
            audit.record(billing.created_by_contact, "billing.submit", billing)
            db.session.commit()
            return "won"

    return job


def test_naive_submit_is_caught(engine, tmp_path) -> None:
    url, app = engine
    b = _billing(app, "draft", admins=1)
    results = race(url, tmp_path, [naive_submit(b.billing_id)] * 2)
    problems = one_winner(results, _submit_effects(app, b, admins=1))
    assert any("2 winners" in p for p in problems), (results, problems)
    assert any("submit event happened 2 times" in p for p in problems)


# ------------------------------------------------------------------ link exchanges


def _link(app: Flask) -> tuple[SimpleNamespace, str]:
    with app.app_context():
        world = build_world(pinned_today())
        _, token = tokens.issue_link(db.session.get(Contact, world.contact_id))
        db.session.commit()
        db.session.remove()
    return world, token


def _link_effects(app: Flask) -> dict[str, int]:
    with app.app_context():
        effects = {
            "link use": _count(LoginLink, LoginLink.used_at.is_not(None)),
            "sign-in event": _actions("contact.sign_in"),
        }
        db.session.remove()
    return effects


def _exchange(token: str) -> Callable[[Flask], str]:
    def job(app: Flask) -> str:
        response = app.test_client().post(f"/portal/link/{token}")
        return {302: "won", 410: "refused"}.get(
            response.status_code, f"error {response.status_code}"
        )

    return job


def test_two_exchanges_of_the_same_link(engine, tmp_path) -> None:
    url, app = engine
    _, token = _link(app)
    results = race(url, tmp_path, [_exchange(token)] * 4)
    assert one_winner(results, _link_effects(app)) == []


def naive_exchange(token: str) -> Callable[[Flask], str]:
    def job(app: Flask) -> str:
        with app.app_context():
            link = tokens.resolve_link(token)  # "unused": go on
            db.session.execute(
                sa.update(LoginLink)
                .where(LoginLink.id == link.id)
                .values(used_at=utcnow())
            )
            audit.record(link.contact, "contact.sign_in", link.contact)
            db.session.commit()
            return "won"

    return job


def test_naive_exchange_is_caught(engine, tmp_path) -> None:
    url, app = engine
    _, token = _link(app)
    results = race(url, tmp_path, [naive_exchange(token)] * 2)
    problems = one_winner(results, _link_effects(app))
    assert any("2 winners" in p for p in problems), (results, problems)


# ------------------------------------------------------------------ edit during approval


def test_review_edit_during_approval(engine, tmp_path) -> None:
    """One admin changes an approved amount while another approves: either the
    billing is approved with the amounts it had (frozen), or it stays under
    review with the edit. Never approved figures that miss the edit."""
    url, app = engine
    b = _billing(app, "under_review", admins=2)
    edit = post_as(
        "user",
        b.admin_ids[0],
        f"/admin/billings/{b.billing_id}/decide",
        {
            "version": str(b.version),
            "decision": "save",
            f"line-{b.line_id}-work": "15000.00",
            f"line-{b.line_id}-materials": "0",
            f"line-{b.line_id}-status": "approved",
            f"line-{b.line_id}-comment": "measured on site",
        },
    )
    approve = post_as(
        "user",
        b.admin_ids[1],
        f"/admin/billings/{b.billing_id}/decide",
        {"version": str(b.version), "decision": "approve"},
    )
    results = race(url, tmp_path, [edit, approve])
    with app.app_context():
        billing = db.session.get(Billing, b.billing_id)
        line = db.session.get(BillingLine, b.line_id)
        edited = line.approved_work == f.D("15000.00")
        approved = billing.status == "approved"
        effects = {"one of edit or approval": int(edited) + int(approved)}
        if approved:
            frozen = billing.approved_figures["figures"]["lines"][0]["work_this_period"]
            assert f.D(frozen) == line.approved_work == f.D("20000.00")
            assert _actions("billing.review", b.billing_id) == 0
        else:
            assert billing.status == "under_review" and billing.approved_figures is None
            assert _actions("billing.approve", b.billing_id) == 0
        db.session.remove()
    assert one_winner(results, effects) == []


def test_contact_and_admin_edit_the_same_draft(engine, tmp_path) -> None:
    """The contact saves while an admin saves on the contact's behalf."""
    url, app = engine
    b = _billing(app, "draft")
    field = f"line-{b.sov_id}-work"
    contact = post_as(
        "contact",
        b.contact_id,
        f"/portal/billings/{b.billing_id}",
        {
            "version": str(b.version),
            "action": "save",
            field: "1111.00",
            "notes": "contact",
        },
    )
    admin = post_as(
        "user",
        b.admin_id,
        f"/admin/billings/{b.billing_id}/edit",
        {
            "version": str(b.version),
            "action": "save",
            field: "2222.00",
            "notes": "admin",
        },
    )
    results = race(url, tmp_path, [contact, admin])
    with app.app_context():
        billing = db.session.get(Billing, b.billing_id)
        line = next(bl for bl in billing.lines if bl.sov_line_id == b.sov_id)
        # Whoever won, their whole form is what is stored (amount and notes).
        pair = (line.claimed_work, billing.notes)
        effects = {
            "complete save": int(
                pair in ((f.D("1111.00"), "contact"), (f.D("2222.00"), "admin"))
            ),
            "version bump": billing.version - b.version,
        }
        db.session.remove()
    assert one_winner(results, effects) == []


def naive_save(billing_id: int, notes: str) -> Callable[[Flask], str]:
    def job(app: Flask) -> str:
        with app.app_context():
            billing = db.session.get(Billing, billing_id)
            seen = billing.version
            db.session.execute(
                sa.update(Billing)
                .where(Billing.id == billing_id)
                .values(notes=notes, version=seen + 1)
            )
            db.session.commit()
            return "won"

    return job


def test_naive_concurrent_edit_is_caught(engine, tmp_path) -> None:
    """Last writer wins silently: two winners, one edit lost."""
    url, app = engine
    b = _billing(app, "draft")
    jobs = [naive_save(b.billing_id, "contact"), naive_save(b.billing_id, "admin")]
    results = race(url, tmp_path, jobs)
    with app.app_context():
        version = db.session.get(Billing, b.billing_id).version
        db.session.remove()
    problems = one_winner(results, {"version bump": version - b.version})
    assert any("2 winners" in p for p in problems), (results, problems)


def test_resubmit_during_void(engine, tmp_path) -> None:
    """The contact resubmits a sent-back billing while an admin voids it."""
    url, app = engine
    b = _billing(app, "revise_and_resubmit")
    resubmit = post_as(
        "contact",
        b.contact_id,
        f"/portal/billings/{b.billing_id}",
        {"version": str(b.version), "action": "submit"},
    )
    void = post_as(
        "user",
        b.admin_id,
        f"/admin/billings/{b.billing_id}/void",
        {"version": str(b.version), "reason": "Duplicate of another billing"},
    )
    results = race(url, tmp_path, [resubmit, void])
    with app.app_context():
        billing = db.session.get(Billing, b.billing_id)
        snapshots = _count(
            RevisionSnapshot, RevisionSnapshot.billing_id == b.billing_id
        )
        resubmitted = billing.status == "under_review" and billing.revision == 1
        voided = billing.status == "void" and billing.void_reason.startswith(
            "Duplicate"
        )
        effects = {"one outcome": int(resubmitted) + int(voided)}
        assert snapshots == (2 if resubmitted else 1)
        db.session.remove()
    assert one_winner(results, effects) == []


# ------------------------------------------------------------------ exports


def _approved(app: Flask) -> SimpleNamespace:
    with app.app_context():
        example = build_world(
            pinned_today(), staff=("admin", "finance"), approved=True, erp=True
        )
        example.finance_ids = [example.finance_id, f.make_user("finance").id]
        db.session.commit()
        db.session.remove()
    return example


def _export_effects(app: Flask, example: SimpleNamespace) -> dict[str, int]:
    with app.app_context():
        batches = _count(ExportBatch)
        owner = {
            db.session.get(Billing, i).export_batch_id
            for i in (example.billing1_id, example.billing2_id)
        }
        db.session.remove()
    return {"batch": batches, "owning batch": len(owner - {None})}


def test_two_exports_of_the_same_billings_through_the_pages(engine, tmp_path) -> None:
    url, app = engine
    example = _approved(app)
    data = {
        "format": "csv",
        "billing_id": [str(example.billing1_id), str(example.billing2_id)],
    }
    jobs = [
        post_as("user", who, "/exports/batches", data) for who in example.finance_ids
    ]
    results = race(url, tmp_path, jobs)
    assert one_winner(results, _export_effects(app, example)) == []


def naive_export(billing_ids: list[int], user_id: int) -> Callable[[Flask], str]:
    def job(app: Flask) -> str:
        with app.app_context():
            if _count(
                Billing,
                Billing.id.in_(billing_ids),
                Billing.export_batch_id.is_not(None),
            ):
                return "refused"
            batch = ExportBatch(
                format="csv",
                created_by_id=user_id,
                filename="x.csv",
                content_type="text/csv",
                content=b"",
                sha256="0" * 64,
                billing_count=len(billing_ids),
                total_amount=f.D("0"),
            )
            db.session.add(batch)
            db.session.flush()
            db.session.execute(
                sa.update(Billing)
                .where(Billing.id.in_(billing_ids))
                .values(export_batch_id=batch.id)
            )
            db.session.commit()
            return "won"

    return job


def test_naive_export_is_caught(engine, tmp_path) -> None:
    url, app = engine
    example = _approved(app)
    ids = [example.billing1_id, example.billing2_id]
    jobs = [naive_export(ids, who) for who in example.finance_ids]
    results = race(url, tmp_path, jobs)
    problems = one_winner(results, _export_effects(app, example))
    assert any("2 winners" in p for p in problems), (results, problems)


# ------------------------------------------------------------------ issue 17


def _world(app: Flask, admins: int = 1) -> SimpleNamespace:
    with app.app_context():
        world = build_world(pinned_today())
        extra = [f.make_user("admin").id for _ in range(admins - 1)]
        db.session.commit()
        out = SimpleNamespace(**vars(world), admin_ids=[world.admin_id, *extra])
        db.session.remove()
    return out


def _invite(admin_id: int, period_id: int, commitment_id: int):
    return post_as(
        "user",
        admin_id,
        f"/admin/periods/{period_id}/bulk",
        {"action": "invite", "commitment_ids": str(commitment_id)},
    )


def _invite_effects(app: Flask) -> dict[str, int]:
    with app.app_context():
        effects = {
            "live invitation": _count(Invitation, Invitation.revoked_at.is_(None)),
            "invite mail": _count(OutboxMessage, OutboxMessage.kind == "invite"),
            "invite event": _actions("invitation.send"),
        }
        db.session.remove()
    return effects


def test_double_clicked_invite(engine, tmp_path) -> None:
    """The second click answers as a click after the first: "already invited"."""
    url, app = engine
    w = _world(app)
    job = _invite(w.admin_id, w.period1_id, w.commitment_id)
    results = race(url, tmp_path, [job, job])
    assert one_winner(results, _invite_effects(app)) == []


def test_contact_removed_and_added_back_is_invited_again(engine, tmp_path) -> None:
    url, app = engine
    w = _world(app)
    client = app.test_client()
    Auth(app, client).login_user(w.admin_id)
    invite = {"action": "invite", "commitment_ids": str(w.commitment_id)}
    assert (
        client.post(f"/admin/periods/{w.period1_id}/bulk", data=invite).status_code
        == 302
    )
    with app.app_context():
        from portal.contracts import commitments as setup

        admin = db.session.get(User, w.admin_id)
        commitment = db.session.get(Commitment, w.commitment_id)
        contact = db.session.get(Contact, w.contact_id)
        setup.remove_commitment_contact(admin, commitment, contact)
        db.session.commit()
        setup.add_commitment_contact(admin, commitment, contact)
        db.session.commit()
        db.session.remove()
    for _ in range(2):  # invited again; then "already invited", never a 500
        response = client.post(f"/admin/periods/{w.period1_id}/bulk", data=invite)
        assert response.status_code == 302
    with app.app_context():
        live = db.session.scalars(
            sa.select(Invitation).where(Invitation.revoked_at.is_(None))
        ).all()
        assert len(live) == 1 and live[0].status == "invited"
        assert _count(OutboxMessage, OutboxMessage.kind == "invite") == 2
        db.session.remove()


def test_two_periods_opened_at_once(engine, tmp_path) -> None:
    """Both clicks do what two clicks in a row would: the later one's period
    ends up open, the other closed; never two open, never a 500."""
    url, app = engine
    w = _world(app, admins=2)
    with app.app_context():
        from tests.clock import pinned_today

        project = db.session.get(BillingPeriod, w.period1_id).project
        start = pinned_today().replace(day=1)
        ids = [
            f.make_period(
                project,
                n,
                start=start.replace(year=start.year + n),
                due=start.replace(year=start.year + n, day=28),
                status="closed",
            ).id
            for n in (2, 3)
        ]
        db.session.commit()
        db.session.remove()
    jobs = [
        post_as("user", admin, f"/admin/periods/{pid}/open", {})
        for admin, pid in zip(w.admin_ids, ids, strict=True)
    ]
    results = race(url, tmp_path, jobs)
    assert results == ["won", "won"], results
    with app.app_context():
        open_ids = db.session.scalars(
            sa.select(BillingPeriod.id).where(BillingPeriod.status == "open")
        ).all()
        assert len(open_ids) == 1 and open_ids[0] in ids
        assert _actions("period.open") == 2
        db.session.remove()


def test_two_admins_demoting_each_other(engine, tmp_path) -> None:
    url, app = engine
    w = _world(app, admins=2)
    first, second = w.admin_ids
    with app.app_context():
        people = {u.id: u for u in db.session.scalars(sa.select(User))}
        forms = {
            uid: {
                "email": people[uid].email,
                "name": people[uid].name,
                "role": "finance",
                "active": "1",
            }
            for uid in (first, second)
        }
        db.session.remove()
    jobs = [
        post_as("user", first, f"/admin/users/{second}", forms[second]),
        post_as("user", second, f"/admin/users/{first}", forms[first]),
    ]
    results = race(url, tmp_path, jobs)
    with app.app_context():
        admins = _count(User, User.role == "admin", User.active.is_(True))
        db.session.remove()
    assert one_winner(results, {"admin left": admins}) == []


def test_twenty_fresh_link_requests_at_once(engine, tmp_path) -> None:
    """FRESH_LINKS_PER_HOUR (3) is exact under 20 simultaneous requests."""
    url, app = engine
    _, token = _link(app)

    def fresh(app: Flask) -> str:
        response = app.test_client().post(
            f"/portal/link/{token}", data={"action": "fresh"}
        )
        return "won" if response.status_code == 200 else f"error {response.status_code}"

    results = race(url, tmp_path, [fresh] * 20)
    assert results == ["won"] * 20, results
    with app.app_context():
        mails = _count(OutboxMessage, OutboxMessage.kind == "new_link")
        db.session.remove()
    assert mails == 3
