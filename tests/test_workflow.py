"""SPEC §3: every allowed and refused move, audit and outbox, and races."""

from __future__ import annotations

import threading
from datetime import timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from portal.billing import billings, figures
from portal.billing.billings import TRANSITIONS, BillingError, BillingInput, LineReview
from portal.core.statuses import BillingStatus as S
from portal.extensions import db
from portal.models import (
    AuditEvent,
    Billing,
    BillingPeriod,
    Commitment,
    Contact,
    OutboxMessage,
    RevisionSnapshot,
    User,
)

from .conftest import make_test_app

D = Decimal
pytestmark = [pytest.mark.usefixtures("ctx"), pytest.mark.calendar]
ACTIONS = sorted({action for _, action in TRANSITIONS} | {"approve"})


def _objs(world):
    return (
        db.session.get(Commitment, world.commitment_id),
        db.session.get(BillingPeriod, world.period1_id),
        db.session.get(User, world.admin_id),
        db.session.get(Contact, world.contact_id),
    )


def _lines(commitment: Commitment, amounts: dict[int, tuple[str, str]]) -> dict:
    return {
        line.id: amounts.get(line.line_number, ("0", "0"))
        for line in commitment.sov_lines
    }


def billing_in(world, status: S) -> Billing:
    """A billing of the worked example's commitment brought to ``status``."""
    commitment, period, admin, contact = _objs(world)
    billing = billings.create_billing(commitment, period, contact)
    billings.save_billing(
        billing,
        contact,
        BillingInput(
            lines=_lines(commitment, {1: ("20000.00", "0"), 2: ("0", "6000.00")})
        ),
        billing.version,
    )
    if status == S.DRAFT:
        return billing
    if status == S.VOID:
        billings.void_billing(billing, admin, billing.version, "duplicate")
        return billing
    billings.submit_billing(billing, contact, billing.version)
    if status == S.UNDER_REVIEW:
        return billing
    if status == S.REVISE_AND_RESUBMIT:
        billings.send_back(billing, admin, billing.version, "Attach the lien waiver.")
    elif status == S.PENDING_OWNER_APPROVAL:
        billings.hold_for_owner(billing, admin, billing.version)
    elif status in (S.APPROVED, S.APPROVED_AS_NOTED):
        if status == S.APPROVED_AS_NOTED:
            line = billing.lines[0]
            billings.review_lines(
                billing,
                admin,
                {line.id: LineReview("19000.00", "0", "approved", "Measured on site")},
                billing.version,
            )
        billings.approve_billing(billing, admin, billing.version)
    assert billing.status == status
    return billing


def do(action: str, billing: Billing, world) -> None:
    _, _, admin, contact = _objs(world)
    v = billing.version
    if action == "save":
        billings.save_billing(billing, contact, BillingInput(lines={}), v)
    elif action in ("submit", "resubmit"):
        # The verb goes to the workflow, which alone decides whether it fits.
        billings.submit_billing(billing, contact, v, action=action)
    elif action == "review":
        billings.review_lines(billing, admin, {}, v)
    elif action == "approve":
        billings.approve_billing(billing, admin, v)
    elif action == "hold_for_owner":
        billings.hold_for_owner(billing, admin, v)
    elif action == "send_back":
        billings.send_back(billing, admin, v, "Please fix line 1.")
    elif action == "void":
        billings.void_billing(billing, admin, v, "entered twice")
    else:  # pragma: no cover
        raise AssertionError(action)


CASES = [(status, action) for status in S for action in ACTIONS]


@pytest.mark.parametrize(("status", "action"), CASES)
def test_every_move(world, status: S, action: str) -> None:
    """Allowed moves land on the table's status; every other move is refused."""
    billing = billing_in(world, status)
    version = billing.version
    expected = TRANSITIONS.get((status, action))
    if expected is None:
        # Refused by the transition table, not for some other reason.
        with pytest.raises(BillingError, match="cannot be"):
            do(action, billing, world)
        db.session.rollback()
        db.session.expire_all()
        again = db.session.get(Billing, billing.id)
        assert again is None or again.status == status
        return
    do(action, billing, world)
    if action == "approve":
        assert billing.status == S.APPROVED
    else:
        assert billing.status == expected
    assert billing.version == version + 1


def test_contact_cannot_take_admin_actions(world) -> None:
    billing = billing_in(world, S.UNDER_REVIEW)
    contact = db.session.get(Contact, world.contact_id)
    with pytest.raises(BillingError, match="not allowed"):
        billings.approve_billing(billing, contact, billing.version)  # type: ignore[arg-type]


def test_viewer_and_finance_cannot_decide(world) -> None:
    billing = billing_in(world, S.UNDER_REVIEW)
    from .factories import make_user

    for role in ("viewer", "finance"):
        with pytest.raises(BillingError):
            billings.approve_billing(billing, make_user(role), billing.version)


def test_other_contact_cannot_bill(world) -> None:
    commitment, period, _, _ = _objs(world)
    other = db.session.get(Contact, world.other_contact_id)
    with pytest.raises(BillingError, match="not a billing contact"):
        billings.create_billing(commitment, period, other)


def test_stale_version_refused(world) -> None:
    billing = billing_in(world, S.UNDER_REVIEW)
    _, _, admin, _ = _objs(world)
    with pytest.raises(billings.StaleBilling, match="changed"):
        billings.approve_billing(billing, admin, billing.version - 1)


def test_transitions_write_audit_and_outbox_and_do_not_commit(world) -> None:
    billing = billing_in(world, S.DRAFT)
    db.session.commit()
    _, _, admin, contact = _objs(world)
    billings.submit_billing(billing, contact, billing.version)
    actions = db.session.scalars(
        sa.select(AuditEvent.action).where(AuditEvent.object_id == billing.id)
    ).all()
    assert "billing.submit" in actions
    mails = db.session.scalars(sa.select(OutboxMessage)).all()
    assert [m.recipient for m in mails] == [admin.email]
    assert mails[0].kind == "billing_submitted"
    snapshot = db.session.scalars(sa.select(RevisionSnapshot)).one()
    assert snapshot.data["lines"][str(world.line_ids[0])]["work"] == "20000.00"
    # Nothing was committed by the domain: a rollback undoes all of it.
    db.session.rollback()
    db.session.expire_all()
    assert db.session.get(Billing, billing.id).status == S.DRAFT
    assert db.session.scalar(sa.select(sa.func.count(OutboxMessage.id))) == 0
    assert (
        db.session.scalar(
            sa.select(sa.func.count(AuditEvent.id)).where(
                AuditEvent.action == "billing.submit"
            )
        )
        == 0
    )


def test_send_back_needs_a_reason(world) -> None:
    billing = billing_in(world, S.UNDER_REVIEW)
    _, _, admin, _ = _objs(world)
    with pytest.raises(BillingError, match="revise"):
        billings.send_back(billing, admin, billing.version, "")


def test_send_back_mails_contact_every_reason(world) -> None:
    billing = billing_in(world, S.UNDER_REVIEW)
    _, _, admin, contact = _objs(world)
    line = billing.lines[0]
    billings.review_lines(
        billing,
        admin,
        {line.id: LineReview("20000.00", "0", "revise", "Show the pour tickets.")},
        billing.version,
    )
    billings.send_back(billing, admin, billing.version, "Also attach the waiver.")
    mail = db.session.scalars(
        sa.select(OutboxMessage).where(OutboxMessage.kind == "revise_and_resubmit")
    ).one()
    assert mail.recipient == contact.email
    assert "Show the pour tickets." in mail.body_text
    assert "Also attach the waiver." in mail.body_text
    assert "Show the pour tickets." in mail.body_html


def test_resubmit_keeps_untouched_approved_lines(world) -> None:
    billing = billing_in(world, S.UNDER_REVIEW)
    commitment, _, admin, contact = _objs(world)
    l1, l2 = billing.lines[0], billing.lines[1]
    billings.review_lines(
        billing,
        admin,
        {
            l1.id: LineReview("20000.00", "0", "approved", ""),
            l2.id: LineReview(
                "0", "6000.00", "revise", "Invoice for the stored fixtures?"
            ),
        },
        billing.version,
    )
    billings.send_back(billing, admin, billing.version)
    billings.save_billing(
        billing,
        contact,
        BillingInput(lines={commitment.sov_lines[1].id: ("0", "5500.00")}),
        billing.version,
    )
    billings.submit_billing(billing, contact, billing.version)
    assert billing.status == S.UNDER_REVIEW and billing.revision == 1
    assert l1.status == "approved"
    assert l2.status == "pending" and l2.approved_materials == D("5500.00")
    revisions = [s.revision for s in billing.snapshots]
    assert revisions == [0, 1]


def test_worked_example_through_the_database(world) -> None:
    """SPEC §4 to the cent, with the figures frozen on approval."""
    commitment, period1, admin, contact = _objs(world)
    b1 = billing_in(world, S.APPROVED)
    t1 = figures.billing_figures(b1).totals
    assert t1.total_completed_and_stored == D("26000.00")
    assert t1.retainage == D("2300.00")
    assert t1.total_earned_less_retainage == D("23700.00")
    assert t1.current_payment_due == D("23700.00")
    period1.status = "closed"
    db.session.flush()
    from .factories import make_period

    period2 = make_period(
        commitment.project,
        2,
        start=period1.end_date.replace(day=28),
        due=period1.due_date + timedelta(days=28),
    )
    b2 = billings.create_billing(commitment, period2, contact)
    billings.save_billing(
        b2,
        contact,
        BillingInput(
            lines=_lines(
                commitment,
                {1: ("15,000.00", ""), 2: ("4000", ""), 3: ("12345.67", "0")},
            ),
            # F carries (SPEC §4): 3,500.00 of L2's 6,000.00 is installed this
            # period (part of its 4,000.00 work), leaving 2,500.00 stored.
            installed={commitment.sov_lines[1].id: "$3,500.00"},
        ),
        b2.version,
    )
    billings.submit_billing(b2, contact, b2.version)
    l3 = next(bl for bl in b2.lines if bl.sov_line.line_number == 3)
    billings.review_lines(
        b2,
        admin,
        {l3.id: LineReview("10000.00", "0", "approved", "Per site walk")},
        b2.version,
    )
    assert billings.approve_billing(b2, admin, b2.version) == S.APPROVED_AS_NOTED
    db.session.commit()
    db.session.expire_all()
    b2 = db.session.get(Billing, b2.id)
    sheet = figures.sheet(b2)
    t = sheet.totals
    assert (
        t.original_contract_sum,
        t.net_change_by_change_orders,
        t.contract_sum_to_date,
        t.total_completed_and_stored,
        t.retainage,
        t.total_earned_less_retainage,
        t.previous_certificates,
        t.current_payment_due,
        t.balance_to_finish_including_retainage,
    ) == tuple(
        D(x)
        for x in (
            "100000.00",
            "5000.00",
            "105000.00",
            "51500.00",
            "5025.00",
            "46475.00",
            "23700.00",
            "22775.00",
            "58525.00",
        )
    )
    assert (t.retainage_on_work, t.retainage_on_materials) == (
        D("4900.00"),
        D("125.00"),
    )
    rows = {r.sov.line_number: r.figures for r in sheet.rows}
    assert (rows[1].previous_work, rows[1].total_completed_and_stored) == (
        D("20000.00"),
        D("35000.00"),
    )
    assert (rows[1].percent_complete, rows[1].balance_to_finish, rows[1].retainage) == (
        D("70.00"),
        D("15000.00"),
        D("3500.00"),
    )
    assert (rows[2].scheduled_value, rows[2].percent_complete, rows[2].retainage) == (
        D("35000.00"),
        D("18.57"),
        D("525.00"),
    )
    assert (rows[3].total_completed_and_stored, rows[3].retainage) == (
        D("10000.00"),
        D("1000.00"),
    )
    # Approved figures never change afterwards, even if the SOV does.
    commitment.sov_lines[0].original_value = D("60000.00")
    db.session.commit()
    db.session.expire_all()
    again = figures.billing_figures(db.session.get(Billing, b2.id)).totals
    assert again.contract_sum_to_date == D("105000.00")


def test_cannot_approve_while_an_earlier_billing_is_undecided(world) -> None:
    commitment, period1, admin, contact = _objs(world)
    b1 = billing_in(world, S.UNDER_REVIEW)
    period1.status = "closed"
    from .factories import make_period

    period2 = make_period(
        commitment.project,
        2,
        start=period1.end_date.replace(day=28),
        due=period1.due_date + timedelta(days=28),
    )
    b2 = billings.create_billing(commitment, period2, admin)
    billings.save_billing(
        b2, admin, BillingInput(lines=_lines(commitment, {3: ("100", "0")})), b2.version
    )
    billings.submit_billing(b2, admin, b2.version)
    with pytest.raises(BillingError, match="earlier billing"):
        billings.approve_billing(b2, admin, b2.version)
    assert b1.status == S.UNDER_REVIEW


@pytest.mark.parametrize(
    ("amounts", "field", "message"),
    [
        ({1: ("abc", "0")}, "work", "Enter an amount"),
        ({1: ("1.234", "0")}, "work", "2 decimal places"),
        ({1: ("NaN", "0")}, "work", "NaN"),
        ({2: ("0", "-5")}, "materials", "negative"),
        ({1: ("-1.00", "0")}, "work", "below zero"),
        ({1: ("50000.01", "0")}, "work", "overbilling"),
    ],
)
def test_bad_amounts_refused_nothing_saved(world, amounts, field, message) -> None:
    commitment, period, _, contact = _objs(world)
    billing = billings.create_billing(commitment, period, contact)
    db.session.commit()
    version = billing.version
    with pytest.raises(billings.ValidationFailed) as info:
        billings.save_billing(
            billing, contact, BillingInput(lines=_lines(commitment, amounts)), version
        )
    line_no = next(iter(amounts))
    key = f"line-{commitment.sov_lines[line_no - 1].id}-{field}"
    assert message.lower() in info.value.errors[key].lower()
    db.session.rollback()
    db.session.expire_all()
    fresh = db.session.get(Billing, billing.id)
    assert fresh.version == version
    assert all(bl.claimed_work == 0 and bl.claimed_materials == 0 for bl in fresh.lines)


def test_overbilling_allowed_by_project_is_flagged(world) -> None:
    commitment, period, _, contact = _objs(world)
    commitment.project.overbilling_allowed = True
    billing = billings.create_billing(commitment, period, contact)
    flagged = billings.save_billing(
        billing,
        contact,
        BillingInput(lines=_lines(commitment, {1: ("50000.01", "0")})),
        billing.version,
    )
    assert flagged == [commitment.sov_lines[0].id]


def _race(
    url: str, tmp_path, billing_id: int, admin_id: int, version: int, n: int = 4
) -> list[str]:
    """n admins approve the same billing at once, each on its own connection."""
    barrier = threading.Barrier(n)
    results: list[str] = []
    lock = threading.Lock()
    # Apps are built here, not in the threads: building URL rules compiles code
    # with ast, which is not thread-safe on CPython 3.11 (a SystemError "AST
    # constructor recursion depth mismatch" now and then).
    apps = [make_test_app(url, tmp_path / f"w{i}") for i in range(n)]

    def worker(i: int) -> None:
        outcome = "error: worker did not finish"
        try:
            app = apps[i]
            with app.app_context():
                try:
                    billing = db.session.get(Billing, billing_id)
                    admin = db.session.get(User, admin_id)
                    billing.lines  # noqa: B018 - load before the race
                    # A worker that fails before here must not hang the others.
                    barrier.wait(timeout=30)
                    billings.approve_billing(billing, admin, version)
                    db.session.commit()
                    outcome = "won"
                except BillingError:
                    db.session.rollback()
                    outcome = "lost"
                except Exception as exc:
                    db.session.rollback()
                    outcome = f"error {type(exc).__name__}: {exc}"
                finally:
                    db.session.remove()
                    db.engine.dispose()
        except Exception as exc:
            outcome = f"error {type(exc).__name__}: {exc}"
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


def _prepare_race(app) -> tuple[int, int, int]:
    from .clock import pinned_today
    from .helpers import build_world

    with app.app_context():
        world = build_world(pinned_today())
        billing = billing_in(world, S.UNDER_REVIEW)
        db.session.commit()
        out = billing.id, world.admin_id, billing.version
        db.session.remove()
    return out


def _check_race(app, billing_id: int, results: list[str]) -> None:
    assert sorted(results) == ["lost"] * (len(results) - 1) + ["won"], results
    with app.app_context():
        approvals = db.session.scalar(
            sa.select(sa.func.count(AuditEvent.id)).where(
                AuditEvent.action == "billing.approve",
                AuditEvent.object_id == billing_id,
            )
        )
        mails = db.session.scalar(
            sa.select(sa.func.count(OutboxMessage.id)).where(
                OutboxMessage.kind == "billing_approved"
            )
        )
        assert approvals == 1
        assert mails == 1  # one contact, one mail: the losers wrote nothing


def test_concurrent_approvals_exactly_one_wins(app, database_url, tmp_path) -> None:
    billing_id, admin_id, version = _prepare_race(app)
    results = _race(database_url, tmp_path, billing_id, admin_id, version)
    _check_race(app, billing_id, results)


@pytest.mark.postgres
def test_concurrent_approvals_on_postgresql(pg_url, tmp_path) -> None:
    app = make_test_app(pg_url, tmp_path)
    try:
        billing_id, admin_id, version = _prepare_race(app)
        results = _race(pg_url, tmp_path, billing_id, admin_id, version, n=6)
        _check_race(app, billing_id, results)
    finally:
        with app.app_context():
            from .conftest import _empty_all_tables

            _empty_all_tables()
            db.engine.dispose()


def test_naive_update_would_double_approve(world) -> None:
    """The race test can fail: a read-then-write approval lets both admins win."""
    billing = billing_in(world, S.UNDER_REVIEW)
    db.session.commit()
    seen = [billing.status, billing.status]  # both admins read 'under_review'
    wins = 0
    for status in seen:
        if status == S.UNDER_REVIEW:  # naive check, no compare-and-set
            db.session.execute(
                sa.update(Billing)
                .where(Billing.id == billing.id)
                .values(status=S.APPROVED)
            )
            wins += 1
    assert wins == 2  # what the compare-and-set in billings._cas prevents


def test_an_approved_amount_that_differs_needs_its_reason(world) -> None:
    """Issue 14 item 7: the payment schedule prints why an approved amount
    differs, so a changed line without a reason is refused at that line, and
    a reason left on a line set back to the claim is dropped (it would print
    as the reason for a difference that is gone)."""
    billing = billing_in(world, S.UNDER_REVIEW)
    _, _, admin, _ = _objs(world)
    line = billing.lines[0]
    claimed = str(line.claimed_work)
    with pytest.raises(billings.ValidationFailed) as refused:
        billings.review_lines(
            billing,
            admin,
            {line.id: LineReview("1.00", "0", "approved", "")},
            billing.version,
        )
    assert refused.value.errors == {
        f"line-{line.id}-comment": "Say why the approved amount differs from the claim."
    }
    billings.review_lines(
        billing,
        admin,
        {line.id: LineReview("1.00", "0", "approved", "Measured on site")},
        billing.version,
    )
    assert line.reviewer_comment == "Measured on site"
    billings.review_lines(
        billing,
        admin,
        {line.id: LineReview(claimed, "0", "approved", "Measured on site")},
        billing.version,
    )
    assert line.approved_work == line.claimed_work
    assert line.reviewer_comment == ""
