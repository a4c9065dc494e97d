"""Change generations (portal.generations): every write bumps the counter of
what it changes, in its own transaction, and nothing else."""

from __future__ import annotations

from decimal import Decimal

import pytest
import sqlalchemy as sa

from portal import generations, models
from portal.billing import billings as wf
from portal.extensions import Base, db
from portal.models import (
    Billing,
    BillingPeriod,
    Comment,
    Commitment,
    Contact,
    LoginLink,
    Project,
    SovLine,
    User,
)
from portal.timeutil import utcnow

from . import factories as f

pytestmark = pytest.mark.usefixtures("ctx")
D = Decimal


def _gens(world) -> tuple[int, int, int, int]:
    """(commitment, other commitment, project, global) counters, as committed."""
    db.session.commit()
    row = db.session.execute(
        sa.select(Commitment.cache_gen).where(Commitment.id == world.commitment_id)
    ).scalar_one()
    other = db.session.execute(
        sa.select(Commitment.cache_gen).where(
            Commitment.id == world.other_commitment_id
        )
    ).scalar_one()
    project = db.session.execute(
        sa.select(Project.cache_gen).where(Project.id == world.project_id)
    ).scalar_one()
    return row, other, project, generations.global_generation()


def _changed(before, after) -> tuple[bool, ...]:
    return tuple(a != b for a, b in zip(before, after, strict=True))


def test_every_model_has_a_scope() -> None:
    """A new model must say what it belongs to (or that no page shows it)."""
    mapped = {
        mapper.class_
        for mapper in Base.registry.mappers
        if mapper.class_.__module__ == models.__name__
    }
    known = set(generations.SCOPES) | generations.GLOBAL | generations.UNSHOWN
    assert mapped - known == set()
    assert not (set(generations.SCOPES) & generations.UNSHOWN)


def test_writes_bump_their_scope_only(world) -> None:
    contact = db.session.get(Contact, world.contact_id)
    commitment = db.session.get(Commitment, world.commitment_id)
    period = db.session.get(BillingPeriod, world.period1_id)

    before = _gens(world)
    billing = wf.create_billing(commitment, period, contact)
    after = _gens(world)
    assert _changed(before, after) == (True, False, False, False)

    before = after
    wf.add_comment(billing, contact, "a question")
    after = _gens(world)
    assert _changed(before, after) == (True, False, False, False)

    # A status change by compare-and-set: the billing's commitment, not everything.
    wf.save_billing(
        billing,
        contact,
        wf.BillingInput(lines={bl.sov_line_id: ("10", "0") for bl in billing.lines}),
        billing.version,
    )
    before = _gens(world)
    wf.submit_billing(billing, contact, billing.version)
    after = _gens(world)
    assert _changed(before, after) == (True, False, False, False)

    before = after
    f.approve_change_order(commitment, db.session.get(SovLine, world.line_ids[0]), "10")
    after = _gens(world)
    assert _changed(before, after) == (True, False, False, False)

    before = after
    db.session.get(Project, world.project_id).name = "Renamed project"
    after = _gens(world)
    assert _changed(before, after) == (False, False, True, False)

    before = after
    db.session.get(User, world.admin_id).name = "Someone Else"
    after = _gens(world)
    assert _changed(before, after) == (False, False, False, True)


def test_bookkeeping_and_unshown_writes_bump_nothing(world) -> None:
    before = _gens(world)
    admin = db.session.get(User, world.admin_id)
    admin.last_login_at = utcnow()
    admin.failed_logins = 3
    contact = db.session.get(Contact, world.contact_id)
    from portal.accounts import tokens

    tokens.issue_link(contact, None)
    tokens.revoke_contact_links(contact)
    assert db.session.scalar(sa.select(sa.func.count(LoginLink.id))) >= 1
    assert _gens(world) == before


def test_bulk_statements_bump_the_global_counter(world) -> None:
    before = _gens(world)
    db.session.execute(
        sa.update(Billing).where(Billing.id == -1).values(vendor_invoice_number="x")
    )
    after = _gens(world)
    assert _changed(before, after)[3]


def test_rolled_back_writes_bump_nothing(world) -> None:
    before = _gens(world)
    contact = db.session.get(Contact, world.contact_id)
    commitment = db.session.get(Commitment, world.commitment_id)
    billing = wf.create_billing(
        commitment, db.session.get(BillingPeriod, world.period1_id), contact
    )
    db.session.add(Comment(billing=billing, body="x", author_contact_id=contact.id))
    db.session.flush()
    db.session.rollback()
    assert _gens(world) == before


def test_deleted_rows_bump_their_scope(world) -> None:
    contact = db.session.get(Contact, world.contact_id)
    commitment = db.session.get(Commitment, world.commitment_id)
    billing = wf.create_billing(
        commitment, db.session.get(BillingPeriod, world.period1_id), contact
    )
    wf.add_comment(billing, contact, "to delete")
    before = _gens(world)
    db.session.delete(db.session.scalars(sa.select(Comment)).first())
    after = _gens(world)
    assert _changed(before, after) == (True, False, False, False)


def test_export_marks_bump_the_billings_commitments(world) -> None:
    """Marking billings exported (a bulk UPDATE) bumps their commitments and
    leaves the global counter alone (concurrent batches do not queue on it)."""
    contact = db.session.get(Contact, world.contact_id)
    commitment = db.session.get(Commitment, world.commitment_id)
    billing = wf.create_billing(
        commitment, db.session.get(BillingPeriod, world.period1_id), contact
    )
    db.session.flush()
    before = _gens(world)
    db.session.execute(
        sa.update(Billing)
        .where(Billing.id == billing.id)
        .values(vendor_invoice_number="EXP-1")
        .execution_options(**generations.COVERED_OPTIONS)
    )
    generations.touch_billings([billing.id])
    after = _gens(world)
    assert _changed(before, after) == (True, False, False, False)
